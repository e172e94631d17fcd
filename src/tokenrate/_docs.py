"""Links to the documentation that work for a pip user too: the repository's ``docs/`` is not in the wheel."""

from __future__ import annotations

REPOSITORY_URL = "https://github.com/tokenrate/tokenrate"
"""The project's home, as in ``pyproject.toml``'s URLs."""


def doc_url(path: str, anchor: str | None = None) -> str:
    """The web address of ``path`` (relative to the repository root), e.g. ``doc_url("docs/cost.md")``."""
    return f"{REPOSITORY_URL}/blob/main/{path}" + (f"#{anchor}" if anchor else "")

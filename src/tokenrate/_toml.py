"""TOML for tokenrate's own files (price file, budgets file): ``tomllib`` (3.11+), else ``tomli`` if installed."""

from __future__ import annotations

from typing import Any


def toml_module() -> Any:
    """``tomllib`` or ``tomli``, or None on Python 3.10 without tomli (callers then explain and carry on)."""
    try:
        import tomllib

        return tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli  # type: ignore[import-not-found]

            return tomli
        except ImportError:
            return None

"""Small readers every adapter uses on what an SDK hands back: SDK model objects or plain JSON dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenrate import provider_numbers


def field(obj: Any, name: str) -> Any:
    """``obj.name`` for SDK models, ``obj[name]`` for raw JSON dicts; ``None`` when absent."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def count(obj: Any, name: str) -> int | None:
    """A token or request count, ``None`` when absent; an invalid one raises (readers are `usage_reader`s)."""
    return provider_numbers.count(field(obj, name), name)

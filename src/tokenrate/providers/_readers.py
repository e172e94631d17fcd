"""Small readers every adapter uses on what an SDK hands back: SDK model objects or plain JSON dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def field(obj: Any, name: str) -> Any:
    """``obj.name`` for SDK models, ``obj[name]`` for raw JSON dicts; ``None`` when absent."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def count(obj: Any, name: str) -> int | None:
    """An integer token count, or ``None`` when the field is absent or not a number."""
    value = field(obj, name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)

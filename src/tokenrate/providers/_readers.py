"""Small readers every adapter uses on what an SDK hands back: SDK model objects or plain JSON dicts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenrate import provider_numbers

_mapping_types: dict[type, bool] = {dict: True}
_MAX_TYPES = 512
_MAX_COUNT = provider_numbers.MAX_COUNT


def is_mapping(obj: Any) -> bool:
    """``isinstance(obj, Mapping)``, known once per type: the ABC check costs several times a dict lookup, and
    every chunk and usage block of every call asks it (for SDK models it is the slow, negative case)."""
    kind = type(obj)
    known = _mapping_types.get(kind)
    if known is None:
        known = isinstance(obj, Mapping)
        if len(_mapping_types) < _MAX_TYPES:  # bounded: SDKs have a few hundred model types
            _mapping_types[kind] = known
    return known


def field(obj: Any, name: str) -> Any:
    """``obj.name`` for SDK models, ``obj[name]`` for raw JSON dicts; ``None`` when absent."""
    if obj is None:
        return None
    if is_mapping(obj):
        return obj.get(name)
    return getattr(obj, name, None)


def count(obj: Any, name: str) -> int | None:
    """A token or request count, ``None`` when absent; an invalid one raises (readers are `usage_reader`s)."""
    if obj is None:
        return None
    value = obj.get(name) if is_mapping(obj) else getattr(obj, name, None)
    if type(value) is int and 0 <= value <= _MAX_COUNT:  # the usual answer, checked here (a usage block has several)
        return value
    return provider_numbers.count(value, name)

"""Reading tokenrate's ``TOKENRATE_*`` environment variables: one forgiving parser per type.

A malformed value never raises: it is logged once and the default is used, so a typo in the environment
cannot break the user's program.
"""

from __future__ import annotations

import os

from tokenrate._safety import warn_once

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    warn_once(f"env:{name}", "tokenrate: %s=%r is not a boolean (true/false); using %s", name, raw, default)
    return default


def env_float(name: str, default: float | None) -> float | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        return float(raw)
    except ValueError:
        warn_once(f"env:{name}", "tokenrate: %s=%r is not a number; using %s", name, raw, default)
        return default


def env_str(name: str, default: str | None = None) -> str | None:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    return raw.strip()

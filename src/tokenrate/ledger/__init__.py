"""The usage ledger: every call as one row in an embedded SQLite file, for reports and budgets across runs.

Opt-in: ``TOKENRATE_LEDGER=path`` (``tokenrate run`` turns it on with `default_ledger_path`). The ledger
records counts, cost and timings only, never prompt or completion content. Writes happen on a background
thread (`tokenrate.ledger.writer`); reads go through `tokenrate.ledger.query`. Several processes may share
one file (SQLite WAL mode, busy timeout, retries).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from tokenrate._env import setting
from tokenrate.ledger.query import LedgerMissingError, Totals, period_totals, summarize
from tokenrate.ledger.schema import SCHEMA_VERSION, LedgerTooNewError
from tokenrate.ledger.writer import Ledger

__all__ = [
    "ENV_LEDGER",
    "SCHEMA_VERSION",
    "Ledger",
    "LedgerMissingError",
    "LedgerTooNewError",
    "Totals",
    "configure_ledger",
    "configure_ledger_from_env",
    "default_ledger_path",
    "flush",
    "get_ledger",
    "ledger_path_from_env",
    "period_totals",
    "summarize",
]

ENV_LEDGER = "TOKENRATE_LEDGER"
LEDGER_FILENAME = "ledger.sqlite3"


def default_ledger_path() -> Path:
    """Where ``tokenrate run`` keeps the ledger: the user's data directory.

    ``$XDG_DATA_HOME/tokenrate/ledger.sqlite3``, else ``~/.local/share/tokenrate/ledger.sqlite3``
    (on Windows ``%LOCALAPPDATA%\\tokenrate\\ledger.sqlite3``).
    """
    xdg = os.environ.get("XDG_DATA_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "tokenrate" / LEDGER_FILENAME
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "tokenrate" / LEDGER_FILENAME
    return Path.home() / ".local" / "share" / "tokenrate" / LEDGER_FILENAME


def ledger_path_from_env() -> Path | None:
    """The path in ``TOKENRATE_LEDGER`` (``~`` expanded), or None when the ledger is off."""
    return setting(ENV_LEDGER)


_lock = threading.Lock()
_ledger: Ledger | None = None


def get_ledger() -> Ledger | None:
    """The process-wide ledger, if one is configured."""
    return _ledger


def configure_ledger(path: str | Path | None, *, register: bool = True) -> Ledger | None:
    """Open (lazily: the file is touched on the writer thread) the process-wide ledger; idempotent per path.

    ``register`` adds it to the pipeline's local sinks. ``path=None`` turns the ledger off.
    """
    global _ledger
    from tokenrate.pipeline import add_local_sink, remove_local_sink

    with _lock:
        if path is None:
            if _ledger is not None:
                remove_local_sink(_ledger)
                _ledger.close()
                _ledger = None
            return None
        path = Path(path).expanduser()
        if _ledger is not None and _ledger.path == path:
            if register:
                add_local_sink(_ledger)
            return _ledger
        if _ledger is not None:
            remove_local_sink(_ledger)
            _ledger.close()
        _ledger = Ledger(path)
        if register:
            add_local_sink(_ledger)
        return _ledger


def configure_ledger_from_env() -> Ledger | None:
    path = ledger_path_from_env()
    if path is None:
        return get_ledger()
    return configure_ledger(path)


def flush(timeout_s: float | None = 10.0) -> bool:
    """Write the process-wide ledger's queued rows now; True when done (or when there is no ledger)."""
    ledger = _ledger
    return True if ledger is None else ledger.flush(timeout_s)

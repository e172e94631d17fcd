"""Process-wide set-up shared by every instrumentor: the local view and the opt-in local features.

Runs once, the first time any tokenrate instrumentor is enabled. Each feature is independent: one that fails
to start is logged once and the others (and the telemetry) carry on.
"""

from __future__ import annotations

import threading

from tokenrate._env import setting
from tokenrate._safety import report

SUMMARY_ENV = "TOKENRATE_SUMMARY"

_lock = threading.Lock()
_done = False


def configure_local() -> None:
    global _done
    with _lock:
        if _done:
            return
        _done = True
    _start("attribution", _start_attribution)
    _start("local view", _start_view)
    _start("cost, budgets and ledger", _start_cost)


def _start(what: str, step) -> None:
    try:
        step()
    except Exception as exc:
        report(f"starting the {what}", exc)


def _start_attribution() -> None:
    from tokenrate.attribution import configure_from_env

    configure_from_env()


def _start_view() -> None:
    from tokenrate import view

    view.get_view()
    if setting(SUMMARY_ENV):
        view.install_summary_at_exit()
    view.maybe_start_publishing_from_env()

    from tokenrate.runner import start_run_reporting

    start_run_reporting()


def _start_cost() -> None:
    from tokenrate.cost import configure_from_env

    configure_from_env()

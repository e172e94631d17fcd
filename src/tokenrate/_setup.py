"""The composition root: process-wide set-up shared by every instrumentor, the one place features are wired.

`configure_local` runs once, the first time any tokenrate instrumentor is enabled: attribution settings, the
local view (summary, publishing, ``tokenrate run`` reporting), then pricing, the ledger and budgets
(`configure_from_env`). Each feature is independent: one that fails to start is logged once and the others
(and the telemetry) carry on. The feature packages (`tokenrate.cost`, `tokenrate.ledger`, `tokenrate.budget`)
do not import each other to set themselves up; what one needs from another is handed to it here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tokenrate._env import setting
from tokenrate._safety import report

if TYPE_CHECKING:
    from tokenrate.budget import Budget
    from tokenrate.cost import Pricer
    from tokenrate.ledger import Ledger

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
    configure_from_env()


@dataclass(frozen=True, slots=True)
class Setup:
    """What `configure_from_env` set up."""

    pricer: Pricer | None
    ledger: Ledger | None
    budget: Budget | None


_setup: Setup | None = None
_setup_lock = threading.Lock()


def configure_from_env(*, force: bool = False) -> Setup:
    """Set up pricing, the ledger and budgets from ``TOKENRATE_*`` (idempotent; ``force`` re-reads the env).

    Never raises: a part that fails is logged once and left off.
    """
    global _setup
    with _setup_lock:
        if _setup is not None and not force:
            return _setup
        pricer = ledger = budget = None
        try:
            from tokenrate.cost import configure_pricing_from_env

            pricer = configure_pricing_from_env()
        except Exception as exc:
            report("configure: pricing", exc)
        try:
            ledger = _configure_ledger()
        except Exception as exc:
            report("configure: ledger", exc)
        try:
            from tokenrate.budget import budget_from_env, budget_store_from_env, set_budget, share

            budget = budget_from_env()
            if budget is not None:
                share(budget, budget_store_from_env(ledger))
            set_budget(budget)
        except Exception as exc:
            report("configure: budgets", exc)
        _setup = Setup(pricer, ledger, budget)
        return _setup


def _configure_ledger() -> Ledger | None:
    """The ledger from ``TOKENRATE_LEDGER``, its status shown by the view (summary, ``tokenrate run``)."""
    from tokenrate.ledger import configure_ledger_from_env
    from tokenrate.view import set_ledger_provider

    ledger = configure_ledger_from_env()
    set_ledger_provider(None if ledger is None else ledger.status)
    return ledger

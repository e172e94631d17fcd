"""The process-wide budget set: built from the configuration, registered as a sink, shown by the view."""

from __future__ import annotations

import atexit
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tokenrate._env import setting
from tokenrate._safety import report, warn_once
from tokenrate.budget.config import (
    BudgetFileError,
    budget_file_from_env,
    budget_specs_from_env,
    budget_tz_from_env,
    load_budgets_file,
    thresholds_from_env,
)
from tokenrate.budget.core import Budget, SpendStore
from tokenrate.budget.spec import BudgetSpec
from tokenrate.budget.stores import LedgerStore, RedisStore, redact_url
from tokenrate.records import BudgetLine

if TYPE_CHECKING:
    from tokenrate.ledger import Ledger

logger = logging.getLogger("tokenrate.budget")

ENV_ENFORCE = "TOKENRATE_BUDGET_ENFORCE"
ENV_STORE = "TOKENRATE_BUDGET_STORE"
ENV_STALENESS = "TOKENRATE_BUDGET_STALENESS"
ENV_STORE_TIMEOUT = "TOKENRATE_BUDGET_STORE_TIMEOUT"
REDIS_SCHEMES = {"redis": "redis", "rediss": "rediss", "valkey": "redis", "valkeys": "rediss"}


def budget_specs_from_file(path: str | Path | None) -> list[BudgetSpec]:
    """The budgets file's budgets; a malformed file is one ERROR naming the line, and no budgets from it."""
    if path is None:
        return []
    try:
        return load_budgets_file(path)
    except BudgetFileError as exc:
        warn_once(f"budget:file:{path}", "tokenrate: %s. Its budgets are off; calls are not affected.", exc)
        return []


def budget_from_env() -> Budget | None:
    """A `Budget` from ``TOKENRATE_BUDGET_*`` and the ``TOKENRATE_BUDGETS`` file, or None without any budget."""
    specs = [*budget_specs_from_env(), *budget_specs_from_file(budget_file_from_env())]
    if not specs:
        return None
    return Budget(specs, thresholds=thresholds_from_env(), tz=budget_tz_from_env(), enforce=setting(ENV_ENFORCE))


def budget_store_from_env(ledger: Ledger | None) -> SpendStore | None:
    """Redis when ``TOKENRATE_BUDGET_STORE`` names one, else the ledger when there is one, else None (local)."""
    staleness = setting(ENV_STALENESS)
    url = setting(ENV_STORE)
    if url:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in REDIS_SCHEMES:
            warn_once(
                "budget:store-url",
                "tokenrate: TOKENRATE_BUDGET_STORE=%s is not a redis://, rediss://, valkey:// or valkeys:// URL; "
                "budgets are not shared across machines.",
                redact_url(url),
            )
        else:
            url = REDIS_SCHEMES[scheme] + url[len(scheme) :]
            return RedisStore(url, staleness_s=staleness, timeout_s=setting(ENV_STORE_TIMEOUT))
    if ledger is not None:
        return LedgerStore(ledger, staleness_s=staleness)
    return None


def share(budget: Budget, store: SpendStore | None) -> None:
    """Give the budget its store: load what it already holds, then keep it in sync in the background."""
    budget.store = store
    if isinstance(store, LedgerStore):
        try:
            store.load(budget)
        except Exception as exc:
            warn_once(
                f"budget:ledger-load:{store.ledger.path}",
                "tokenrate: cannot read this period's spend from the ledger at %s (%s: %s); budgets start from 0.",
                store.ledger.path,
                type(exc).__name__,
                exc,
            )
        budget.announce_standing()
    elif isinstance(store, RedisStore):
        store.connect()  # bounded by the store timeout; unreachable: one WARNING, local accounting until it is back
    budget.start_sharing()
    if store is not None:
        atexit.register(_close_at_exit, budget)  # the last spend reaches the store


def _close_at_exit(budget: Budget) -> None:
    try:
        budget.close()
    except Exception as exc:
        report("budget: closing the store at exit", exc)


# -- the process-wide budget set -----------------------------------------------------------------------------------

_budget: Budget | None = None


def get_budget() -> Budget | None:
    return _budget


def set_budget(budget: Budget | None, *, register: bool = True) -> None:
    """Make ``budget`` the process-wide one: a local sink, shown by the view. None removes it."""
    global _budget
    from tokenrate.pipeline import add_local_sink, remove_local_sink

    old, _budget = _budget, budget
    if old is not None and old is not budget:
        remove_local_sink(old)
        old.close()
    if budget is not None and register:
        add_local_sink(budget)
    _register_with_view(budget is not None)


def _register_with_view(on: bool) -> None:
    try:
        from tokenrate.view import set_budget_provider

        set_budget_provider(budget_lines if on else None)
    except Exception as exc:
        report("budget: registering with the view", exc)


def budget_lines() -> list[BudgetLine]:
    """Where each configured budget stands now (empty without budgets). For the status line, summary, top."""
    budget = _budget
    return [] if budget is None else budget.lines()


def budget_utilization() -> list[tuple[dict[str, str], float]]:
    """``[(attributes, spent / limit), ...]`` for the ``tokenrate.budget.utilization`` gauge."""
    budget = _budget
    return [] if budget is None else budget.utilization()


def describe_store(store: Any) -> str:
    """For diagnostics: where budgets are shared (the URL without its password)."""
    if isinstance(store, RedisStore):
        return f"redis {store.display_url} ({'reachable' if store.available else 'unreachable: local accounting'})"
    if isinstance(store, LedgerStore):
        return f"ledger {store.ledger.path}"
    return "local (this process only)"

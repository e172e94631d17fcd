"""Budgets (daily/monthly, USD/tokens) and `configure_from_env`, which sets up cost, ledger and budgets.

Environment (all optional; a malformed value is logged once and ignored):

* ``TOKENRATE_BUDGET_DAILY_USD``, ``TOKENRATE_BUDGET_MONTHLY_USD``: limits in US dollars;
* ``TOKENRATE_BUDGET_DAILY_TOKENS``, ``TOKENRATE_BUDGET_MONTHLY_TOKENS``: limits in billed tokens (input + output);
* ``TOKENRATE_BUDGET_THRESHOLDS=75,90,100``: percents that log a WARNING once per period (100 is always added);
* ``TOKENRATE_BUDGET_TZ=Europe/Paris``: the IANA time zone of days and months (default: local time);
* ``TOKENRATE_BUDGET_ENFORCE=true``: refuse calls (`BudgetExceededError`) while a budget is exceeded.

With the ledger on (``TOKENRATE_LEDGER``), budgets start from what the ledger already holds for the current
day/month, so they survive restarts and add up every process writing that ledger (as of start-up).
"""

from __future__ import annotations

import logging
from datetime import tzinfo

from tokenrate._env import setting
from tokenrate._safety import report
from tokenrate.budget.core import (
    DAY,
    DEFAULT_THRESHOLDS,
    MONTH,
    STATE_ALERT,
    STATE_EXCEEDED,
    STATE_OK,
    STATE_WARNING,
    TOKENS,
    USD,
    Budget,
    BudgetSpec,
    normalize_thresholds,
    period_bounds,
    state_for,
)
from tokenrate.errors import BudgetExceededError
from tokenrate.records import BudgetLine

__all__ = [
    "DAY",
    "DEFAULT_THRESHOLDS",
    "MONTH",
    "STATE_ALERT",
    "STATE_EXCEEDED",
    "STATE_OK",
    "STATE_WARNING",
    "TOKENS",
    "USD",
    "Budget",
    "BudgetExceededError",
    "BudgetSpec",
    "budget_from_env",
    "budget_lines",
    "budget_specs_from_env",
    "budget_tz_from_env",
    "budget_utilization",
    "get_budget",
    "normalize_thresholds",
    "period_bounds",
    "set_budget",
    "state_for",
    "thresholds_from_env",
]

logger = logging.getLogger("tokenrate.budget")

ENV_LIMITS: dict[str, tuple[str, str]] = {
    "TOKENRATE_BUDGET_DAILY_USD": (DAY, USD),
    "TOKENRATE_BUDGET_MONTHLY_USD": (MONTH, USD),
    "TOKENRATE_BUDGET_DAILY_TOKENS": (DAY, TOKENS),
    "TOKENRATE_BUDGET_MONTHLY_TOKENS": (MONTH, TOKENS),
}
ENV_THRESHOLDS = "TOKENRATE_BUDGET_THRESHOLDS"
ENV_TZ = "TOKENRATE_BUDGET_TZ"
ENV_ENFORCE = "TOKENRATE_BUDGET_ENFORCE"


# -- reading the environment -----------------------------------------------------------------------------------


def budget_specs_from_env() -> list[BudgetSpec]:
    specs = []
    for name, (period, unit) in ENV_LIMITS.items():
        limit = setting(name)  # a positive, finite number, or None (unset or invalid: that budget is off)
        if limit is not None:
            specs.append(BudgetSpec(period, unit, limit))
    return specs


def thresholds_from_env() -> tuple[float, ...]:
    return normalize_thresholds(setting(ENV_THRESHOLDS))


def budget_tz_from_env() -> tzinfo | None:
    """The ``TOKENRATE_BUDGET_TZ`` zone, or None (local time) when unset or unknown."""
    return setting(ENV_TZ)


def budget_from_env() -> Budget | None:
    """A `Budget` from the environment, or None when no limit is set."""
    specs = budget_specs_from_env()
    if not specs:
        return None
    return Budget(
        specs,
        thresholds=thresholds_from_env(),
        tz=budget_tz_from_env(),
        enforce=setting(ENV_ENFORCE),
    )


# -- the process-wide budget -----------------------------------------------------------------------------------

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
    if budget is not None and register:
        add_local_sink(budget)
    _register_with_view(budget is not None)


def _register_with_view(on: bool) -> None:
    try:
        from tokenrate.view import set_budget_provider
    except ImportError:  # the view is optional
        return
    try:
        set_budget_provider(budget_lines if on else None)
    except Exception as exc:
        report("budget: registering with the view", exc)


def budget_lines() -> list[BudgetLine]:
    """Where each configured budget stands now (empty without budgets). For the status line, summary, top."""
    budget = _budget
    return [] if budget is None else budget.lines()


def budget_utilization() -> list[tuple[dict[str, str], float]]:
    """``[(attributes, spent / limit), ...]`` for the ``tokenrate.budget.utilization`` gauge.

    Attributes are ``tokenrate.budget.period`` (``day``/``month``) and ``tokenrate.budget.unit``
    (``USD``/``tokens``).
    """
    budget = _budget
    return [] if budget is None else budget.utilization()

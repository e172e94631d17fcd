"""Budgets: limits in USD and/or tokens per period, global or per scope, local or shared across processes.

* `tokenrate.budget.spec` — `BudgetSpec` (one limit), thresholds and states;
* `tokenrate.budget.period` / `tokenrate.budget.scope` — periods (day, week, month, rolling ``1h``) and scopes
  (attributes, provider, model; ``"*"`` = a budget per distinct value);
* `tokenrate.budget.config` — ``TOKENRATE_BUDGET_*`` (the global budgets) and the ``TOKENRATE_BUDGETS`` file;
* `tokenrate.budget.core` — `Budget`, the sink that counts and enforces;
* `tokenrate.budget.stores` — sharing through the ledger (one machine) or Redis/Valkey (a fleet);
* `tokenrate.budget.process` — the process-wide budget set, built by `tokenrate._setup`.
"""

from __future__ import annotations

from tokenrate.budget.config import (
    ENV_FILE,
    ENV_LIMITS,
    ENV_THRESHOLDS,
    ENV_TZ,
    BudgetFileError,
    budget_file_from_env,
    budget_specs_from_env,
    budget_tz_from_env,
    load_budgets_file,
    parse_budgets,
    thresholds_from_env,
)
from tokenrate.budget.core import MAX_SCOPES, Budget, Spend
from tokenrate.budget.period import DAY, MONTH, WEEK, Period, parse_period, period_bounds
from tokenrate.budget.process import (
    ENV_ENFORCE,
    ENV_STALENESS,
    ENV_STORE,
    ENV_STORE_TIMEOUT,
    budget_from_env,
    budget_lines,
    budget_store_from_env,
    budget_utilization,
    get_budget,
    set_budget,
    share,
)
from tokenrate.budget.scope import Scope
from tokenrate.budget.spec import (
    DEFAULT_THRESHOLDS,
    STATE_ALERT,
    STATE_EXCEEDED,
    STATE_OK,
    STATE_WARNING,
    TOKENS,
    USD,
    BudgetSpec,
    normalize_thresholds,
    state_for,
)
from tokenrate.errors import BudgetExceededError

__all__ = [
    "DAY",
    "DEFAULT_THRESHOLDS",
    "ENV_ENFORCE",
    "ENV_FILE",
    "ENV_LIMITS",
    "ENV_STALENESS",
    "ENV_STORE",
    "ENV_STORE_TIMEOUT",
    "ENV_THRESHOLDS",
    "ENV_TZ",
    "MAX_SCOPES",
    "MONTH",
    "STATE_ALERT",
    "STATE_EXCEEDED",
    "STATE_OK",
    "STATE_WARNING",
    "TOKENS",
    "USD",
    "WEEK",
    "Budget",
    "BudgetExceededError",
    "BudgetFileError",
    "BudgetSpec",
    "Period",
    "Scope",
    "Spend",
    "budget_file_from_env",
    "budget_from_env",
    "budget_lines",
    "budget_specs_from_env",
    "budget_store_from_env",
    "budget_tz_from_env",
    "budget_utilization",
    "get_budget",
    "load_budgets_file",
    "normalize_thresholds",
    "parse_budgets",
    "parse_period",
    "period_bounds",
    "set_budget",
    "share",
    "state_for",
    "thresholds_from_env",
]

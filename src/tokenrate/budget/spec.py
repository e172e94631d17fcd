"""`BudgetSpec`: one limit (USD or tokens) over one period for one scope, with its thresholds and enforcement."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from tokenrate.budget.period import DAY, MONTH, Period, parse_period
from tokenrate.budget.scope import GLOBAL, Scope

USD = "USD"
TOKENS = "tokens"
DEFAULT_THRESHOLDS: tuple[float, ...] = (75.0, 90.0, 100.0)

STATE_OK = "ok"
STATE_WARNING = "warning"
STATE_ALERT = "alert"
STATE_EXCEEDED = "exceeded"


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """``limit`` USD or tokens per ``period`` for the calls in ``scope``.

    ``BudgetSpec("day", "USD", 5)`` is the global daily budget ``TOKENRATE_BUDGET_DAILY_USD=5`` makes. ``None``
    thresholds / enforce use the budget set's defaults (``TOKENRATE_BUDGET_THRESHOLDS`` / ``..._ENFORCE``).
    """

    period: str
    unit: str
    limit: float
    name: str | None = None
    scope: Scope = GLOBAL
    thresholds: tuple[float, ...] | None = None
    enforce: bool | None = None
    window: Period = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", parse_period(self.period))
        object.__setattr__(self, "period", self.window.name)
        if self.unit not in (USD, TOKENS):
            raise ValueError(f"budget unit must be 'USD' or 'tokens', not {self.unit!r}")
        if not (isinstance(self.limit, (int, float)) and math.isfinite(self.limit) and self.limit > 0):
            raise ValueError(f"budget limit must be a finite number > 0, not {self.limit!r}")
        if self.name is None:
            object.__setattr__(self, "name", self._default_name())
        if self.thresholds is not None:
            object.__setattr__(self, "thresholds", normalize_thresholds(self.thresholds))

    def _default_name(self) -> str:
        if self.scope.is_global and self.period in (DAY, MONTH, "week"):
            return f"{self.window.word}_{self.unit.lower()}"  # daily_usd, as TOKENRATE_BUDGET_DAILY_USD
        return f"{'+'.join(self.scope.keys) or 'all'} {self.period}"

    @property
    def label(self) -> str:
        """``daily USD budget`` (the global ones), ``budget 'per-user' (daily USD)`` for the others."""
        if self.scope.is_global and self.name == f"{self.window.word}_{self.unit.lower()}":
            return f"{self.window.word} {self.unit} budget"
        return f"budget {self.name!r} ({self.window.word} {self.unit})"


def normalize_thresholds(values: Iterable[float]) -> tuple[float, ...]:
    """Sorted, unique, positive percents, with 100 always included (crossing a limit is always worth a line)."""
    cleaned = {float(v) for v in values if float(v) > 0}
    cleaned.add(100.0)
    return tuple(sorted(cleaned))


def state_for(percent: float, thresholds: Iterable[float]) -> str:
    """``ok`` / ``warning`` / ``alert`` / ``exceeded`` for a utilization in percent."""
    if percent >= 100.0:
        return STATE_EXCEEDED
    below = [t for t in thresholds if t < 100.0]
    if len(below) >= 2 and percent >= below[-1]:
        return STATE_ALERT
    if below and percent >= below[0]:
        return STATE_WARNING
    return STATE_OK


def percent(spent: float, limit: float) -> float:
    """Utilization in percent, rounded so that float sums like 10 x $0.10 reach exactly 100."""
    return round(spent / limit * 100.0, 9)


def amount(value: float, spec: BudgetSpec) -> str:
    if spec.unit == USD:
        return f"${value:,.2f}" if spec.limit >= 10 else f"${value:,.4f}"
    return f"{value:,.0f} tokens"

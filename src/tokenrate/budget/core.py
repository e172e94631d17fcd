"""`Budget`: daily and monthly spending limits in USD and/or tokens, as a local pipeline sink.

Each finished call adds its cost (``cost_usd``; a call with an unknown cost adds nothing) or its billed tokens
(input + output) to the period it *started* in (a calendar day or month in the configured time zone).
Crossing a threshold (percent of the limit; default 75, 90, 100) logs ONE WARNING on the ``tokenrate.budget``
logger per threshold per period. When one call jumps over several thresholds, one line names the highest and
the lower ones count as fired. States: ``ok`` below the first threshold, ``warning`` from it, ``alert`` from
the highest threshold below 100 (when there are two or more), ``exceeded`` from 100 %.

Enforcement (opt-in) refuses new calls in ``call_started`` while any budget is exceeded: the SDK never sends
the request and the user gets `tokenrate.errors.BudgetExceededError`. Calls already in flight finish, so
spend can overshoot the limit by what they cost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenrate._safety import warn_once
from tokenrate.errors import BudgetExceededError
from tokenrate.records import BudgetLine

if TYPE_CHECKING:
    from tokenrate.recording import ActiveCall
    from tokenrate.records import CallRecord, RetryRecord

logger = logging.getLogger("tokenrate.budget")

DAY = "day"
MONTH = "month"
USD = "USD"
TOKENS = "tokens"
DEFAULT_THRESHOLDS: tuple[float, ...] = (75.0, 90.0, 100.0)

STATE_OK = "ok"
STATE_WARNING = "warning"
STATE_ALERT = "alert"
STATE_EXCEEDED = "exceeded"

_PERIOD_WORD = {DAY: "daily", MONTH: "monthly"}


@dataclass(frozen=True, slots=True)
class BudgetSpec:
    """One limit: ``limit`` USD or tokens per calendar ``period`` (``day`` or ``month``)."""

    period: str
    unit: str
    limit: float

    def __post_init__(self) -> None:
        if self.period not in (DAY, MONTH):
            raise ValueError(f"budget period must be 'day' or 'month', not {self.period!r}")
        if self.unit not in (USD, TOKENS):
            raise ValueError(f"budget unit must be 'USD' or 'tokens', not {self.unit!r}")
        if not self.limit > 0:
            raise ValueError(f"budget limit must be > 0, not {self.limit!r}")

    @property
    def name(self) -> str:
        """``daily_usd``, ``monthly_tokens``, ..."""
        return f"{_PERIOD_WORD[self.period]}_{self.unit.lower()}"

    @property
    def label(self) -> str:
        """``daily USD budget``, for messages."""
        return f"{_PERIOD_WORD[self.period]} {self.unit} budget"


def period_bounds(ts: float, period: str, tz: tzinfo | None) -> tuple[str, float, float]:
    """The calendar period containing ``ts``: (key, start, end) with start/end as Unix times; DST-safe."""
    moment = datetime.fromtimestamp(ts, tz) if tz is not None else datetime.fromtimestamp(ts)
    if period == DAY:
        first = moment.date()
        following = first + timedelta(days=1)
        key = first.isoformat()
    else:
        first = date(moment.year, moment.month, 1)
        following = date(moment.year + (moment.month == 12), moment.month % 12 + 1, 1)
        key = f"{moment.year:04d}-{moment.month:02d}"
    return key, _midnight(first, tz), _midnight(following, tz)


def _midnight(day: date, tz: tzinfo | None) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def normalize_thresholds(values: Iterable[float]) -> tuple[float, ...]:
    """Sorted, unique, positive percents, with 100 always included (crossing a limit is always worth a line)."""
    cleaned = {float(v) for v in values if float(v) > 0}
    cleaned.add(100.0)
    return tuple(sorted(cleaned))


def state_for(percent: float, thresholds: Sequence[float]) -> str:
    """``ok`` / ``warning`` / ``alert`` / ``exceeded`` for a utilization in percent."""
    if percent >= 100.0:
        return STATE_EXCEEDED
    below = [t for t in thresholds if t < 100.0]
    if len(below) >= 2 and percent >= below[-1]:
        return STATE_ALERT
    if below and percent >= below[0]:
        return STATE_WARNING
    return STATE_OK


@dataclass(slots=True)
class _Tally:
    spec: BudgetSpec
    key: str = ""
    start: float = 0.0
    end: float = float("-inf")
    spent: float = 0.0
    fired: set[float] = field(default_factory=set)
    unknown_cost_calls: int = 0


class Budget:
    """Period-to-date spend against limits; a `tokenrate.pipeline.Sink`. Thread-safe."""

    def __init__(
        self,
        specs: Iterable[BudgetSpec],
        *,
        thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
        tz: tzinfo | None = None,
        enforce: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.specs = tuple(specs)
        self.thresholds = normalize_thresholds(thresholds)
        self.tz = tz
        self.enforce = enforce
        self._clock = clock
        self._lock = threading.Lock()
        self._tallies = [_Tally(spec) for spec in self.specs]
        now = clock()
        for tally in self._tallies:
            self._roll(tally, now)

    @property
    def tz_name(self) -> str:
        if self.tz is None:
            return "local time"
        return str(getattr(self.tz, "key", None) or self.tz)

    # -- the Sink protocol --------------------------------------------------------------------------------------

    def call_started(self, call: ActiveCall) -> None:
        """With enforcement on, refuse the call (before any request is sent) while a budget is exceeded."""
        if not self.enforce:
            return None
        now = self._clock()
        with self._lock:
            over = None
            for tally in self._tallies:
                if now >= tally.end:
                    self._roll(tally, now)
                if _percent(tally.spent, tally.spec.limit) >= 100.0:
                    over = (tally.spec, tally.key, tally.spent)
                    break
        if over is not None:
            spec, key, spent = over
            raise BudgetExceededError(
                f"tokenrate: the {spec.label} is exceeded ({_amount(spent, spec)} of "
                f"{_amount(spec.limit, spec)} spent in {key}, {self.tz_name}); this "
                f"{call.info.provider} call was not sent because TOKENRATE_BUDGET_ENFORCE is on. "
                f"It resets when the {spec.period} ends; raise the limit or turn enforcement off to continue.",
                budget=spec.name,
                spent=spent,
                limit=spec.limit,
            )
        return None

    def retry(self, token: Any, retry: RetryRecord) -> None:
        return None

    def call_ended(self, token: Any, record: CallRecord) -> None:
        self.add(record)

    # -- accounting ---------------------------------------------------------------------------------------------

    def add(self, record: CallRecord) -> None:
        """Count one finished call in the period it started in."""
        ts = record.started_unix
        tokens = record.usage.total or 0
        cost = record.cost_usd
        messages: list[tuple[BudgetSpec, float, str, float]] = []
        unknown_cost = False
        with self._lock:
            for tally in self._tallies:
                if ts >= tally.end:
                    self._roll(tally, ts)
                elif ts < tally.start:
                    continue  # a call that started in a period that is already over
                if tally.spec.unit == USD:
                    if cost is None:
                        if tokens:
                            tally.unknown_cost_calls += 1
                            unknown_cost = True
                        continue
                    amount = cost
                else:
                    amount = float(tokens)
                if amount <= 0:
                    continue
                tally.spent += amount
                crossed = self._newly_crossed(tally)
                if crossed is not None:
                    messages.append((tally.spec, crossed, tally.key, tally.spent))
        for spec, threshold, key, spent in messages:
            self._log_crossing(spec, threshold, key, spent)
        if unknown_cost:
            warn_once(
                "budget:unknown-cost",
                "tokenrate: some calls have an unknown cost (see the earlier 'no price known' warning); USD "
                "budgets do not count them. Token budgets still do.",
            )

    def _newly_crossed(self, tally: _Tally) -> float | None:
        percent = _percent(tally.spent, tally.spec.limit)
        crossed = [t for t in self.thresholds if percent >= t and t not in tally.fired]
        if not crossed:
            return None
        tally.fired.update(crossed)
        return crossed[-1]

    def _roll(self, tally: _Tally, ts: float) -> None:
        key, start, end = period_bounds(ts, tally.spec.period, self.tz)
        if key != tally.key:
            tally.key, tally.start, tally.end = key, start, end
            tally.spent = 0.0
            tally.fired = set()
            tally.unknown_cost_calls = 0

    def _log_crossing(
        self, spec: BudgetSpec, threshold: float, key: str, spent: float, *, at_start: bool = False
    ) -> None:
        percent = _percent(spent, spec.limit)
        if threshold >= 100.0:
            what = "exceeded"
            after = (
                "new calls will be refused (TOKENRATE_BUDGET_ENFORCE is on)"
                if self.enforce
                else "calls continue (set TOKENRATE_BUDGET_ENFORCE=true to refuse them)"
            )
        else:
            what = f"{threshold:g}% used"
            after = None
        logger.warning(
            "tokenrate: %s %s: %s of %s spent (%.0f%%) %s %s (%s)%s%s",
            spec.label,
            what,
            _amount(spent, spec),
            _amount(spec.limit, spec),
            percent,
            "on" if spec.period == DAY else "in",
            key,
            self.tz_name,
            ", counted from the ledger at start-up" if at_start else "",
            f"; {after}." if after else ".",
            extra={
                "tokenrate.budget.name": spec.name,
                "tokenrate.budget.period": spec.period,
                "tokenrate.budget.unit": spec.unit,
                "tokenrate.budget.threshold": threshold,
                "tokenrate.budget.spent": spent,
                "tokenrate.budget.limit": spec.limit,
            },
        )

    # -- start-up from the ledger -------------------------------------------------------------------------------

    def load_period_totals(self, totals_for: Callable[[float, float], tuple[float, float]]) -> None:
        """Start from what was already spent this period (e.g. from the ledger).

        ``totals_for(start, end)`` returns (USD, tokens) for calls that started in [start, end). Thresholds
        already crossed count as fired; one WARNING per budget says where it stands if it is past the first.
        """
        now = self._clock()
        cache: dict[tuple[float, float], tuple[float, float]] = {}
        lines: list[tuple[BudgetSpec, float, str, float]] = []
        with self._lock:
            for tally in self._tallies:
                self._roll(tally, now)
                span = (tally.start, tally.end)
                if span not in cache:
                    cache[span] = totals_for(*span)
                usd, tokens = cache[span]
                tally.spent = float(usd if tally.spec.unit == USD else tokens)
                crossed = self._newly_crossed(tally)
                if crossed is not None:
                    lines.append((tally.spec, crossed, tally.key, tally.spent))
        for spec, threshold, key, spent in lines:
            self._log_crossing(spec, threshold, key, spent, at_start=True)

    def load_from_ledger(self, path: str | Path) -> None:
        from tokenrate.ledger.query import period_totals

        def totals_for(start: float, end: float) -> tuple[float, float]:
            totals = period_totals(path, start, end)
            return totals.cost_usd, float(totals.total_tokens or 0)

        self.load_period_totals(totals_for)

    # -- display ---------------------------------------------------------------------------------------------------

    def lines(self) -> list[BudgetLine]:
        """Where each budget stands now (a period that has ended shows as empty)."""
        now = self._clock()
        out: list[BudgetLine] = []
        with self._lock:
            for tally in self._tallies:
                if now >= tally.end:
                    self._roll(tally, now)
                spec = tally.spec
                percent = _percent(tally.spent, spec.limit)
                out.append(
                    BudgetLine(
                        name=spec.name,
                        period=spec.period,
                        unit=spec.unit,
                        spent=tally.spent,
                        limit=spec.limit,
                        state=state_for(percent, self.thresholds),
                    )
                )
        return out

    def utilization(self) -> list[tuple[dict[str, str], float]]:
        """``[(attributes, spent / limit), ...]`` for a ``tokenrate.budget.utilization`` gauge."""
        return [
            ({"tokenrate.budget.period": line.period, "tokenrate.budget.unit": line.unit}, line.utilization)
            for line in self.lines()
        ]

    def exceeded(self) -> list[BudgetLine]:
        return [line for line in self.lines() if line.state == STATE_EXCEEDED]


def _percent(spent: float, limit: float) -> float:
    """Utilization in percent, rounded so that float sums like 10 x $0.10 reach exactly 100."""
    return round(spent / limit * 100.0, 9)


def _amount(value: float, spec: BudgetSpec) -> str:
    if spec.unit == USD:
        return f"${value:,.2f}" if spec.limit >= 10 else f"${value:,.4f}"
    return f"{value:,.0f} tokens"

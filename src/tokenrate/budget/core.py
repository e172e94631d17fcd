"""`Budget`: spend against limits, per scope and period, as a local pipeline sink; optionally shared.

Each finished call adds its cost (``cost_usd``; a call with an unknown cost adds nothing to USD budgets) or its
billed tokens (input + output) to every budget whose scope it is in, in the bucket of the period it *started*
in (a calendar day, week or month in the configured time zone, or a slice of a rolling window). A budget whose
scope has ``*`` keys keeps one counter per distinct value (a budget per user); at most `MAX_SCOPES` values per
budget, later ones share one ``_other`` counter.

Crossing a threshold (percent of the limit; default 75, 90, 100) logs ONE WARNING on the ``tokenrate.budget``
logger per (budget, scope value, threshold) per period. States: ``ok`` below the first threshold, ``warning``
from it, ``alert`` from the highest threshold below 100 (when there are two or more), ``exceeded`` from 100 %.

Enforcement (per budget; opt-in) refuses new calls in ``call_started`` while a matching budget is exceeded:
the SDK never sends the request and the user gets `tokenrate.errors.BudgetExceededError`. Calls already in
flight finish, so spend can overshoot the limit by what they cost.

Sharing: every counter is ``own`` (this process's spend not yet in the shared figure) + ``shared`` (what a
`tokenrate.budget.stores` store last said: other processes' spend from the ledger, or everyone's from Redis).
The store reads and writes off the call path; `Budget` only ever touches memory under its lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from tokenrate._safety import warn_once
from tokenrate.budget.period import Bucket
from tokenrate.budget.scope import ScopeValues
from tokenrate.budget.spec import (
    DEFAULT_THRESHOLDS,
    STATE_EXCEEDED,
    USD,
    BudgetSpec,
    amount,
    normalize_thresholds,
    percent,
    state_for,
)
from tokenrate.errors import BudgetExceededError
from tokenrate.records import NO_ATTRIBUTES, BudgetLine

if TYPE_CHECKING:
    from tokenrate.recording import ActiveCall
    from tokenrate.records import CallRecord, RetryRecord

logger = logging.getLogger("tokenrate.budget")

MAX_SCOPES = 10_000
"""Distinct scope values one budget keeps counters for; later values share the `OVERFLOW_SCOPE` counter."""
OVERFLOW_SCOPE = "_other"
MAX_LINES_PER_BUDGET = 20
"""Scope values per budget that `Budget.lines` shows (the most used first); the rest are counted in `hidden`."""


class Spend(NamedTuple):
    """What a budget needs from one call: when it started, what it was for, what it cost."""

    ts: float
    provider: str
    model: str | None
    attributes: Mapping[str, str]
    cost_usd: float | None
    tokens: int


class CounterRef(NamedTuple):
    """One counter: budget (index in `Budget.specs`), scope values, bucket key."""

    spec: int
    scope: ScopeValues
    bucket: str


class SpendStore(Protocol):
    """Where a budget's counters are shared (`tokenrate.budget.stores`); every method is safe to call often."""

    name: str

    def start(self, budget: Budget) -> None: ...

    def refresh(self, budget: Budget, refs: list[CounterRef]) -> None:
        """Read these counters now (the call path waits, at most the store's timeout)."""

    def spent(self) -> None:
        """This process added spend: share it soon."""

    def close(self) -> None: ...


class _Counter:
    __slots__ = ("end", "own", "read_at", "seq", "shared", "start")

    def __init__(self, bucket: Bucket) -> None:
        self.start = bucket.start
        self.end = bucket.end
        self.own = 0.0
        """This process's spend not (yet) included in ``shared``."""
        self.shared = 0.0
        """The store's figure: other processes' spend (ledger), or everyone's flushed spend (Redis)."""
        self.read_at: float | None = None
        """``time.monotonic()`` of the last read of ``shared`` (None: never read)."""
        self.seq = 0
        """Bumped by every flush: a read started before a flush must not overwrite what the flush returned."""


class _Scoped:
    """One budget for one scope value: its counters by bucket, and the thresholds already announced."""

    __slots__ = ("buckets", "fired", "fired_key")

    def __init__(self) -> None:
        self.buckets: dict[str, _Counter] = {}
        self.fired: set[float] = set()
        self.fired_key = ""


@dataclass(slots=True)
class _State:
    spec: BudgetSpec
    thresholds: tuple[float, ...]
    enforce: bool
    scopes: dict[ScopeValues, _Scoped]
    enforce_hint: str
    current: Bucket | None = None
    """The latest calendar bucket computed (time-zone arithmetic is slow; nearly every call falls in it)."""


class Budget:
    """Spend against a set of budgets; a `tokenrate.pipeline.Sink`. Thread-safe."""

    def __init__(
        self,
        specs: Iterable[BudgetSpec],
        *,
        thresholds: Iterable[float] = DEFAULT_THRESHOLDS,
        tz: tzinfo | None = None,
        enforce: bool = False,
        clock: Callable[[], float] = time.time,
        store: SpendStore | None = None,
        max_scopes: int = MAX_SCOPES,
    ) -> None:
        self.specs = tuple(specs)
        self.thresholds = normalize_thresholds(thresholds)
        self.tz = tz
        self.enforce = enforce
        self.store = store
        self._clock = clock
        self._latest = float("-inf")
        """The latest call start seen: "now" never runs behind the calls already counted (a lagging clock)."""
        self._max_scopes = max(1, max_scopes)
        self._lock = threading.Lock()
        self._states = [
            _State(
                spec=spec,
                thresholds=spec.thresholds or self.thresholds,
                enforce=enforce if spec.enforce is None else spec.enforce,
                scopes={},
                enforce_hint="TOKENRATE_BUDGET_ENFORCE is on"
                if spec.enforce is None
                else "enforce = true in the budgets file",
            )
            for spec in self.specs
        ]
        self._any_enforced = any(state.enforce for state in self._states)
        for state in self._states:  # scopes without '*' always show, from 0
            if not state.spec.scope.each:
                state.scopes[()] = _Scoped()

    def _now(self) -> float:
        return max(self._clock(), self._latest)

    @property
    def tz_name(self) -> str:
        if self.tz is None:
            return "local time"
        return str(getattr(self.tz, "key", None) or self.tz)

    def start_sharing(self) -> None:
        """Start the store's background work (after any start-up load)."""
        if self.store is not None:
            self.store.start(self)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    # -- the Sink protocol ----------------------------------------------------------------------------------------

    def call_started(self, call: ActiveCall) -> None:
        """Refuse the call (before any request is sent) while an enforced budget in its scope is exceeded."""
        if not self._any_enforced:
            return None
        info = call.info
        attributes = getattr(call, "attributes", NO_ATTRIBUTES)
        now = self._now()
        matches = [
            (index, values)
            for index, state in enumerate(self._states)
            if state.enforce
            and (values := state.spec.scope.values_for(attributes, info.provider, info.request_model)) is not None
        ]
        if not matches:
            return None
        if self.store is not None:
            with self._lock:
                refs = [ref for index, values in matches for ref in self._window_refs(index, values, now)]
            self.store.refresh(self, refs)
        over = None
        with self._lock:
            for index, values in matches:
                state = self._states[index]
                spent = self._spent_locked(state, self._scope_key(state, values, create=False), now)
                if percent(spent, state.spec.limit) >= 100.0:
                    over = (state, values, spent)
                    break
        if over is not None:
            raise self._refusal(*over, provider=info.provider, now=now)
        return None

    def retry(self, token: Any, retry: RetryRecord) -> None:
        return None

    def call_ended(self, token: Any, record: CallRecord) -> None:
        self.add(record)

    # -- accounting -------------------------------------------------------------------------------------------------

    def add(self, record: CallRecord) -> None:
        """Count one finished call of this process in the period it started in."""
        spend = Spend(
            record.started_unix,
            record.info.provider,
            record.info.request_model,
            record.attributes,
            record.cost_usd,
            record.usage.total or 0,
        )
        if self.count(spend, own=True) and self.store is not None:
            self.store.spent()

    def count(self, spend: Spend, *, own: bool, announce: bool = True) -> bool:
        """Add one call's spend (``own``: this process's; else another process's, read from a store).

        Returns whether any budget counted it.
        """
        if self._latest < spend.ts < self._clock() + 86_400.0:  # never trust a far-future time to move "now"
            self._latest = spend.ts
        now = self._now()
        messages: list[tuple[_State, ScopeValues, float, float, str]] = []
        unknown_cost = counted = False
        with self._lock:
            for state in self._states:
                spec = state.spec
                values = spec.scope.values_for(spend.attributes, spend.provider, spend.model)
                if values is None:
                    continue
                if spec.unit == USD:
                    if spend.cost_usd is None:
                        unknown_cost = unknown_cost or spend.tokens > 0
                        continue
                    value = spend.cost_usd
                else:
                    value = float(spend.tokens)
                if not value > 0:
                    continue
                bucket = self._bucket(state, spend.ts)
                if bucket.end <= self._window_start(state, now):
                    continue  # a call that started in a period that is already over
                key = self._scope_key(state, values, create=True)
                counter = self._counter_locked(state.scopes[key], bucket)
                if own:
                    counter.own += value
                else:
                    counter.shared += value
                counted = True
                if announce:
                    spent = self._spent_locked(state, key, now)
                    crossed = self._newly_crossed_locked(state, key, spent, now)
                    if crossed is not None:
                        messages.append((state, key, crossed, spent, ""))
        for state, key, threshold, spent, note in messages:
            self._log_crossing(state, key, threshold, spent, now, note)
        if unknown_cost and own:
            warn_once(
                "budget:unknown-cost",
                "tokenrate: some calls have an unknown cost (see the earlier 'no price known' warning); USD "
                "budgets do not count them. Token budgets still do.",
            )
        return counted

    def announce_standing(self) -> None:
        """After a start-up load: one WARNING per budget and scope value already past a threshold."""
        now = self._now()
        messages = []
        with self._lock:
            for state in self._states:
                for key in list(state.scopes):
                    spent = self._spent_locked(state, key, now)
                    crossed = self._newly_crossed_locked(state, key, spent, now)
                    if crossed is not None:
                        messages.append((state, key, crossed, spent))
        for state, key, threshold, spent in messages:
            self._log_crossing(state, key, threshold, spent, now, ", counted from the ledger at start-up")

    # -- what stores use --------------------------------------------------------------------------------------------

    def active_refs(self) -> list[CounterRef]:
        """Every counter in a current window (what a store keeps fresh)."""
        now = self._now()
        with self._lock:
            self._prune_locked(now)
            return [
                CounterRef(index, key, bucket)
                for index, state in enumerate(self._states)
                for key, scoped in state.scopes.items()
                for bucket in scoped.buckets
            ]

    def stale(self, refs: Iterable[CounterRef], max_age_s: float) -> list[CounterRef]:
        """The counters among ``refs`` whose shared figure is older than ``max_age_s`` (or was never read)."""
        now = time.monotonic()
        out = []
        with self._lock:
            for ref in refs:
                counter = self._find_locked(ref)
                if counter is None or counter.read_at is None or now - counter.read_at > max_age_s:
                    out.append(ref)
        return out

    def read_marks(self, refs: Iterable[CounterRef]) -> list[int]:
        """The flush sequence of each counter, taken before a read (see `apply_read`)."""
        with self._lock:
            return [counter.seq if (counter := self._find_locked(ref)) is not None else 0 for ref in refs]

    def apply_read(self, ref: CounterRef, total: float, mark: int) -> None:
        """A store read ``total`` for this counter; ignored when a flush happened since the read started."""
        with self._lock:
            counter = self._find_locked(ref, create=True)
            if counter is not None and counter.seq == mark:
                counter.shared = total
                counter.read_at = time.monotonic()

    def take_own(self) -> list[tuple[CounterRef, float]]:
        """This process's unshared spend per counter, to add to the store (`flushed` says it is done)."""
        with self._lock:
            return [
                (CounterRef(index, key, bucket), counter.own)
                for index, state in enumerate(self._states)
                for key, scoped in state.scopes.items()
                for bucket, counter in scoped.buckets.items()
                if counter.own > 0
            ]

    def flushed(self, ref: CounterRef, amount_added: float, total: float) -> None:
        """The store added ``amount_added`` of our spend to the counter, which now holds ``total``."""
        with self._lock:
            counter = self._find_locked(ref)
            if counter is None:
                return
            counter.own = max(0.0, counter.own - amount_added)
            counter.shared = total
            counter.read_at = time.monotonic()
            counter.seq += 1

    def ttl_s(self, ref: CounterRef) -> float:
        """How long a store should keep the counter: until its bucket leaves every window, plus a day."""
        spec = self._states[ref.spec].spec
        with self._lock:
            counter = self._find_locked(ref)
            end = counter.end if counter is not None else self._now()
        span = spec.window.rolling_s or 0.0
        return max(60.0, end + span - self._now() + 86_400.0)

    def store_key(self, ref: CounterRef) -> tuple[str, str, tuple[str, ...], str]:
        """What names a counter across processes: budget name, unit, scope values, bucket key."""
        spec = self._states[ref.spec].spec
        return (spec.name or "", spec.unit, ref.scope, ref.bucket)

    def earliest_window_start(self) -> float:
        now = self._now()
        with self._lock:
            return min((self._window_start(state, now) for state in self._states), default=now)

    # -- display ---------------------------------------------------------------------------------------------------

    def lines(self) -> list[BudgetLine]:
        """Where each budget stands now, per scope value (the `MAX_LINES_PER_BUDGET` most used of each)."""
        now = self._now()
        out: list[BudgetLine] = []
        with self._lock:
            self._prune_locked(now)
            for state in self._states:
                spec = state.spec
                rows = []
                for key in state.scopes:
                    spent = self._spent_locked(state, key, now)
                    if spec.scope.each and spent <= 0:
                        continue
                    rows.append((spent, key))
                rows.sort(key=lambda row: -row[0])
                for spent, key in rows[:MAX_LINES_PER_BUDGET]:
                    out.append(
                        BudgetLine(
                            name=spec.name or "",
                            period=spec.period,
                            unit=spec.unit,
                            spent=spent,
                            limit=spec.limit,
                            state=state_for(percent(spent, spec.limit), state.thresholds),
                            scope=spec.scope.describe(key),
                        )
                    )
        return out

    def utilization(self) -> list[tuple[dict[str, str], float]]:
        """``[(attributes, spent / limit), ...]`` for the ``tokenrate.budget.utilization`` gauge.

        The global ``TOKENRATE_BUDGET_*`` budgets carry period and unit; the others also their name and scope
        attributes (`scope_attributes` decides which may go on a metric). One observation per distinct set of
        attributes: the highest utilization among the scope values it stands for.
        """
        from tokenrate.attribution import metric_policy

        policy = metric_policy()
        now = self._now()
        best: dict[tuple[tuple[str, str], ...], float] = {}
        with self._lock:
            for state in self._states:
                spec = state.spec
                base = {"tokenrate.budget.period": spec.period, "tokenrate.budget.unit": spec.unit}
                if not (spec.scope.is_global and spec.label.endswith(" budget")):
                    base["tokenrate.budget.name"] = spec.name or ""
                for key in state.scopes:
                    attributes = dict(base)
                    for name, value in spec.scope.attributes(key).items():
                        if name in policy.keys:
                            attributes[name] = policy.admit(name, value)
                    identity = tuple(sorted(attributes.items()))
                    value = self._spent_locked(state, key, now) / spec.limit
                    best[identity] = max(value, best.get(identity, 0.0))
        return [(dict(identity), value) for identity, value in best.items()]

    def exceeded(self) -> list[BudgetLine]:
        return [line for line in self.lines() if line.state == STATE_EXCEEDED]

    # -- start-up from the ledger -----------------------------------------------------------------------------------

    def load_from_ledger(self, path: str | Path) -> None:
        """Start from what the ledger holds for the current periods (every process's calls), then announce."""
        from tokenrate.budget.stores import replay_ledger

        replay_ledger(self, path)
        self.announce_standing()

    # -- internals (lock held) ----------------------------------------------------------------------------------------

    def _scope_key(self, state: _State, values: ScopeValues, *, create: bool) -> ScopeValues:
        if values in state.scopes:
            return values
        if len(state.scopes) >= self._max_scopes:
            overflow = tuple(OVERFLOW_SCOPE for _ in values)
            if create and overflow not in state.scopes:
                state.scopes[overflow] = _Scoped()
                warn_once(
                    f"budget:scopes:{state.spec.name}",
                    "tokenrate: %s has %d scope values; later ones share one counter (%s).",
                    state.spec.label,
                    self._max_scopes,
                    OVERFLOW_SCOPE,
                )
            return overflow
        if create:
            state.scopes[values] = _Scoped()
        return values

    def _bucket(self, state: _State, ts: float) -> Bucket:
        window = state.spec.window
        if window.rolling_s is not None:
            return window.bucket(ts, self.tz)
        current = state.current
        if current is not None and current.start <= ts < current.end:
            return current
        bucket = window.bucket(ts, self.tz)
        if current is None or bucket.start > current.start:
            state.current = bucket
        return bucket

    def _window_start(self, state: _State, now: float) -> float:
        window = state.spec.window
        if window.rolling_s is not None:
            return window.window_start(now, self.tz)
        return self._bucket(state, now).start

    def _counter_locked(self, scoped: _Scoped, bucket: Bucket) -> _Counter:
        counter = scoped.buckets.get(bucket.key)
        if counter is None:
            counter = scoped.buckets[bucket.key] = _Counter(bucket)
        return counter

    def _find_locked(self, ref: CounterRef, *, create: bool = False) -> _Counter | None:
        state = self._states[ref.spec]
        scoped = state.scopes.get(ref.scope)
        if scoped is None:
            if not create:
                return None
            scoped = state.scopes[ref.scope] = _Scoped()
        counter = scoped.buckets.get(ref.bucket)
        if counter is None and create:
            now = self._now()
            bucket = self._bucket(state, now)
            if bucket.key != ref.bucket:
                return None  # a bucket of the past: no longer counted
            counter = scoped.buckets[ref.bucket] = _Counter(bucket)
        return counter

    def _window_refs(self, index: int, values: ScopeValues, now: float) -> list[CounterRef]:
        state = self._states[index]
        key = self._scope_key(state, values, create=False)
        current = self._bucket(state, now).key
        scoped = state.scopes.get(key)
        keys = {current} | (set(scoped.buckets) if scoped is not None else set())
        return [CounterRef(index, key, bucket) for bucket in keys]

    def _spent_locked(self, state: _State, key: ScopeValues, now: float) -> float:
        scoped = state.scopes.get(key)
        if scoped is None:
            return 0.0
        if state.spec.window.rolling_s is None:  # a calendar period: only its current bucket counts
            counter = scoped.buckets.get(self._bucket(state, now).key)
            return 0.0 if counter is None else counter.own + counter.shared
        start = self._window_start(state, now)
        return sum(c.own + c.shared for c in scoped.buckets.values() if c.end > start and c.start <= now)

    def _prune_locked(self, now: float) -> None:
        """Forget buckets that left their window, and scope values left with none (memory stays bounded)."""
        for state in self._states:
            start = self._window_start(state, now)
            for key in list(state.scopes):
                scoped = state.scopes[key]
                for bucket in [b for b, c in scoped.buckets.items() if c.end <= start and c.own <= 0]:
                    del scoped.buckets[bucket]
                if not scoped.buckets and state.spec.scope.each:
                    del state.scopes[key]

    def _newly_crossed_locked(self, state: _State, key: ScopeValues, spent: float, now: float) -> float | None:
        scoped = state.scopes[key]
        window = state.spec.window
        used = percent(spent, state.spec.limit)
        if used < state.thresholds[0] and not scoped.fired:
            return None  # the common case: below the first threshold, nothing to re-arm
        if window.rolling_s is None:
            period_key = self._bucket(state, now).key
            if scoped.fired_key != period_key:
                scoped.fired_key = period_key
                scoped.fired = set()
        else:
            scoped.fired = {t for t in scoped.fired if t <= used}  # a rolling window re-arms as spend ages out
        crossed = [t for t in state.thresholds if used >= t and t not in scoped.fired]
        if not crossed:
            return None
        scoped.fired.update(crossed)
        return crossed[-1]

    # -- messages --------------------------------------------------------------------------------------------------

    def _where(self, state: _State, key: ScopeValues, now: float) -> str:
        window = state.spec.window
        if window.rolling_s is not None:
            return f"in the last {window.name}"
        word = "on" if window.name == "day" else "in"
        return f"{word} {window.window_key(now, self.tz)} ({self.tz_name})"

    def _log_crossing(
        self, state: _State, key: ScopeValues, threshold: float, spent: float, now: float, note: str = ""
    ) -> None:
        spec = state.spec
        scope = spec.scope.describe(key)
        if threshold >= 100.0:
            what = "exceeded"
            after = (
                f"new calls{' in this scope' if scope else ''} will be refused ({state.enforce_hint})"
                if state.enforce
                else "calls continue (set TOKENRATE_BUDGET_ENFORCE=true to refuse them)"
            )
        else:
            what = f"{threshold:g}% used"
            after = None
        logger.warning(
            "tokenrate: %s%s %s: %s of %s spent (%.0f%%) %s%s%s",
            spec.label,
            f" for {scope}" if scope else "",
            what,
            amount(spent, spec),
            amount(spec.limit, spec),
            percent(spent, spec.limit),
            self._where(state, key, now),
            note,
            f"; {after}." if after else ".",
            extra={
                "tokenrate.budget.name": spec.name,
                "tokenrate.budget.scope": scope,
                "tokenrate.budget.period": spec.period,
                "tokenrate.budget.unit": spec.unit,
                "tokenrate.budget.threshold": threshold,
                "tokenrate.budget.spent": spent,
                "tokenrate.budget.limit": spec.limit,
            },
        )

    def _refusal(
        self, state: _State, values: ScopeValues, spent: float, *, provider: str, now: float
    ) -> BudgetExceededError:
        spec = state.spec
        scope = spec.scope.describe(values)
        window = spec.window
        resets = (
            f"It frees up as spend leaves the rolling {window.name} window"
            if window.rolling_s is not None
            else f"It resets when the {window.name} ends"
        )
        return BudgetExceededError(
            f"tokenrate: the {spec.label}{f' for {scope}' if scope else ''} is exceeded ({amount(spent, spec)} of "
            f"{amount(spec.limit, spec)} spent {self._where(state, values, now)}); this {provider} call was not "
            f"sent because {state.enforce_hint}. {resets}; raise the limit or turn enforcement off to continue.",
            budget=spec.name,
            spent=spent,
            limit=spec.limit,
            scope=spec.scope.attributes(values),
        )

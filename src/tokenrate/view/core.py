"""`View`: the in-process aggregation of call records into rolling TPM/RPM and session totals.

The view is a local `tokenrate.pipeline.Sink`: it sees the same `CallRecord`/`RetryRecord` stream as telemetry
and needs no OTel SDK. Everything is bounded: one-second rings of fixed size, at most ``max_keys``
(provider, model) rows plus one overflow row, capped error/reason tables, so memory does not grow with the
session. Recording is O(1) per call and a snapshot costs the same after a thousand calls as after a million.

Definitions (what the figures mean):

* **Times.** Buckets use the records' own ``time.monotonic()`` stamps (``started_at``, ``ended_at``, a retry's
  ``at``); the injected clocks only give "now" at snapshot time and wall-clock stamps for display. Tokens,
  requests and the final attempt are attributed to the second the call *ended*; a retry's failed attempt to
  the second the SDK started waiting.
* **TPM** = input + output tokens of calls that ended in the last 60 one-second buckets (the current second
  included), which is what providers' TPM limits count. **RPM** = logical calls that ended in the window,
  failed ones included (one user call = one request however many retries). **APM** = HTTP attempts in the
  window, retries included: closer to what the provider saw. Calls refused before sending (``CallRejected``,
  e.g. an enforced budget) never reached the provider and are counted only as ``rejected``. Calls the user
  cancelled (Ctrl-C, task cancellation) are requests, not errors, and are also counted as ``cancelled``.
* **Provider time** = the union of the intervals during which at least one call was in flight (start of the
  user's call to the end of its result, so 429 waits inside a call count; tool/idle time between calls does
  not). **Active TPM** = tokens per minute of provider time, for the session and for the rolling window.
* **Unknown values.** A call that did not fail but reported neither input nor output tokens counts in
  ``unknown_usage_calls``; a call without a price counts in ``unknown_cost_calls``. A failed call that reported
  no usage is assumed unbilled and counts in neither.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from tokenrate._safety import report
from tokenrate.pipeline import add_local_sink
from tokenrate.recording import OUTCOME_CANCELLED
from tokenrate.records import (
    THROTTLE_STATUS_CODES,
    TOKEN_TYPES,
    BudgetLine,
    CallRecord,
    RateLimits,
    RateLimitWindow,
    RetryRecord,
)
from tokenrate.view._ring import WINDOW_S, BusyRing, CallRing, second_of
from tokenrate.view.snapshot import (
    OVERFLOW_VALUE,
    GroupRow,
    LedgerStatus,
    ModelRow,
    RateLimitState,
    Rates,
    Snapshot,
    ThrottleTotals,
    TokenTotals,
)

MAX_KEYS = 128
"""Distinct (provider, model) rows kept; later ones are summed into the overflow row."""
MAX_COUNT_KEYS = 32
"""Distinct error types / retry reasons kept; later ones are summed under ``other``."""
MAX_LIMIT_WINDOWS = 64
"""Distinct (provider, window kind) rate-limit entries kept."""
MAX_NAME_LEN = 128
MAX_GROUP_KEYS = 8
"""Distinct attribute keys the view groups by; calls' further keys are not grouped (spans and the ledger keep them)."""
MAX_GROUP_VALUES = 64
"""Distinct values per attribute key; later ones are summed into the ``_other`` row of that key."""
OTHER = "other"
OVERFLOW_KEY = (OTHER, OTHER)
UNKNOWN_MODEL = "unknown"
REJECTED_ERROR = "CallRejected"

BudgetProvider = Callable[[], Sequence[BudgetLine]]
LedgerProvider = Callable[[], "LedgerStatus | None"]

_N_TYPES = len(TOKEN_TYPES)


class _Stats:
    """Cumulative figures for the session or for one (provider, model), plus its rolling window."""

    __slots__ = (
        "cost",
        "errors",
        "requests",
        "retries",
        "retry_wait",
        "reported",
        "ring",
        "throttle_events",
        "throttle_until",
        "throttle_wait",
        "throttle_wall",
        "tokens",
        "unknown_cost",
        "unknown_usage",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.tokens = [0] * _N_TYPES  # TOKEN_TYPES order
        self.reported = 0  # bit i set: some call reported TOKEN_TYPES[i] (unknown is not 0)
        self.unknown_usage = 0
        self.throttle_events = 0
        self.throttle_wait = 0.0
        self.throttle_wall = 0.0
        self.throttle_until = -math.inf
        self.retries = 0
        self.retry_wait = 0.0
        self.cost = 0.0
        self.unknown_cost = 0
        self.ring = CallRing()

    def add_retry(self, wait: float, throttled: bool, at: float) -> None:
        """One retry: a failed attempt at ``at`` after which the SDK waited ``wait`` seconds."""
        self.retries += 1
        if throttled:
            self.throttle_events += 1
        self.add_retry_time(wait, throttled, at)

    def add_retry_time(self, wait: float, throttled: bool, at: float) -> None:
        """A retry's waits and failed attempt, without its counts (all the session row keeps of it)."""
        self.retry_wait += wait
        if throttled:
            self.throttle_wait += wait
            if wait:
                self.add_throttle_wait(at, wait)
        self.ring.add_attempt(second_of(at))

    def add_throttle_wait(self, start: float, seconds: float) -> None:
        """Grow the union of throttle-wait intervals: O(1), exact while waits are recorded in start order (they
        are: the SDK reports each one as it begins to sleep); a late one inside covered time adds nothing."""
        end = start + seconds
        if end > self.throttle_until:
            self.throttle_wall += end - max(start, self.throttle_until)
            self.throttle_until = end

    def freeze(self, now: float) -> Figures:
        """The figures at ``now``, immutable (the ring must have been advanced to the snapshot's second)."""
        r = self.ring
        reported = self.reported
        return Figures(
            requests=self.requests,
            attempts=self.requests + self.retries,  # each call's final attempt, plus one per retry
            errors=self.errors,
            tokens=tuple(v if reported >> i & 1 else None for i, v in enumerate(self.tokens)),
            unknown_usage=self.unknown_usage,
            throttle_events=self.throttle_events,
            throttle_wait=self.throttle_wait,
            # the union so far, without the part of a wait still ahead of now
            throttle_wall=max(0.0, self.throttle_wall - max(0.0, self.throttle_until - now)),
            retries=self.retries,
            retry_wait=self.retry_wait,
            cost=self.cost,
            unknown_cost=self.unknown_cost,
            window_input=r.sum_in,
            window_output=r.sum_out,
            window_total=r.sum_total,
            window_calls=r.sum_calls,
            window_attempts=r.sum_attempts,
            peak_total=r.peak_total,
            peak_calls=r.peak_calls,
        )


class Figures(NamedTuple):
    """One `_Stats` frozen under the view's lock, turned into snapshot rows outside it."""

    requests: int
    attempts: int
    errors: int
    tokens: tuple[int | None, ...]
    """``None``: no call reported that type."""
    unknown_usage: int
    throttle_events: int
    throttle_wait: float
    throttle_wall: float
    retries: int
    retry_wait: float
    cost: float
    unknown_cost: int
    window_input: int
    window_output: int
    window_total: int
    window_calls: int
    window_attempts: int
    peak_total: int
    peak_calls: int

    def row_fields(self) -> dict[str, Any]:
        """The `UsageFigures` fields of a model or group row."""
        return {
            "requests": self.requests,
            "attempts": self.attempts,
            "errors": self.errors,
            "tokens": TokenTotals(*self.tokens),
            "unknown_usage_calls": self.unknown_usage,
            "tpm": self.window_total,
            "tpm_input": self.window_input,
            "tpm_output": self.window_output,
            "rpm": self.window_calls,
            "apm": self.window_attempts,
            "peak_tpm": self.peak_total,
            "peak_rpm": self.peak_calls,
            "throttle_events": self.throttle_events,
            "throttle_wait_s": self.throttle_wait,
            "throttle_wall_s": self.throttle_wall,
            "retries": self.retries,
            "cost_usd": self.cost,
            "unknown_cost_calls": self.unknown_cost,
        }


class _Flight:
    """The view's token for one in-flight call (three fields: every call makes one; retries are rare)."""

    __slots__ = ("gen", "info", "retried")

    def __init__(self, info: Any, gen: int) -> None:
        self.info = info
        self.gen = gen
        self.retried: _LiveRetries | None = None
        """What of the call's retries `View.retry` already counted; None until the first one."""


class _LiveRetries:
    """What of one call's retries was already counted live (by `View.retry`), and in which row."""

    __slots__ = ("accounted", "live_key", "seen_events", "seen_retries", "seen_retry_wait", "seen_wait")

    def __init__(self) -> None:
        self.accounted = 0
        """How many of the call's retries were already counted, in any session."""
        self.live_key: _Stats | None = None
        self.seen_retries = 0
        self.seen_events = 0
        self.seen_wait = 0.0
        self.seen_retry_wait = 0.0


def _wait(value: float | None) -> float:
    if value is None or not (value >= 0.0) or value == math.inf:
        return 0.0
    return float(value)


def _count_retries(stats: _Stats, retries: Sequence[RetryRecord]) -> None:
    """A group row counts a call's retries when the call ends (model rows count them live)."""
    for retry in retries:
        stats.add_retry(_wait(retry.wait_s), retry.throttled, retry.at)


def _bump(table: dict[str, int], name: str, by: int = 1) -> None:
    if name not in table and len(table) >= MAX_COUNT_KEYS:
        name = OTHER
    table[name] = table.get(name, 0) + by


_UNSET: Any = object()
_budget_provider: BudgetProvider | None = None


def set_budget_provider(fn: BudgetProvider | None) -> None:
    """Register (or clear, with ``None``) the callable that returns the budget lines shown in snapshots."""
    global _budget_provider
    _budget_provider = fn


_ledger_provider: LedgerProvider | None = None


def set_ledger_provider(fn: LedgerProvider | None) -> None:
    """Register (or clear) the callable that returns the usage ledger's status shown in snapshots."""
    global _ledger_provider
    _ledger_provider = fn


class View:
    """Rolling TPM/RPM, provider time and session totals from the pipeline's records (a local sink)."""

    def __init__(
        self,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        max_keys: int = MAX_KEYS,
        budget_provider: BudgetProvider | None = _UNSET,
    ) -> None:
        self._mono = monotonic
        self._wall = wall
        self._max_keys = max(1, int(max_keys))
        self._budget_provider = budget_provider
        self._lock = threading.Lock()
        self._in_flight = 0
        self._gen = 0
        self._reset_locked()

    # -- state -------------------------------------------------------------------------------------------

    def _reset_locked(self) -> None:
        self._gen += 1
        now_m = self._mono()
        now_w = self._wall()
        self._start_mono = now_m
        self._start_wall = now_w
        self._wall_offset = now_w - now_m
        self._total = _Stats()
        """The session row keeps only what depends on the order of events: its rolling window (peaks), cost and
        wait times (float sums). Its counts are the sums of the model rows' (`_session_figures`), which count
        every call and retry the session does: one row fewer to count into on every call."""
        self._keys: dict[tuple[str, str], _Stats] = {}
        self._real_keys = 0
        self._groups: dict[str, dict[str, _Stats]] = {}
        """Attribute key -> value -> figures of the calls that carried it."""
        self._errors: dict[str, int] = {}
        self._reasons: dict[str, int] = {}
        self._rejected = 0
        self._cancelled = 0
        self._reported = 0  # bit i set: some call reported TOKEN_TYPES[i] (unknown is not 0)
        self._limits: dict[str, dict[str, tuple[RateLimitWindow, float]]] = {}
        """Provider -> window kind -> the newest answer's window and when it was observed (names cut to
        MAX_NAME_LEN; at most MAX_LIMIT_WINDOWS windows in all)."""
        self._limit_count = 0
        self._busy_ring = BusyRing()
        self._busy_closed = 0.0
        self._last_close = now_m
        # Calls in flight across a reset keep the new session busy from the reset on.
        self._busy_open_at: float | None = now_m if self._in_flight > 0 else None

    def reset(self) -> None:
        """Start a new session: zero every figure (calls in flight stay in flight)."""
        with self._lock:
            self._reset_locked()

    def _after_fork_in_child(self) -> None:
        """A forked child starts its own session; the parent's lock may have been held by another thread."""
        self._lock = threading.Lock()
        self._in_flight = 0
        self._reset_locked()

    def _stats_for(self, provider: str, model: str) -> _Stats:
        key = (provider[:MAX_NAME_LEN], model[:MAX_NAME_LEN])
        stats = self._keys.get(key)
        if stats is None:
            if self._real_keys >= self._max_keys:
                key = OVERFLOW_KEY
                stats = self._keys.get(key)
            if stats is None:
                stats = self._keys[key] = _Stats()
                if key != OVERFLOW_KEY:
                    self._real_keys += 1
        return stats

    # -- the Sink protocol ---------------------------------------------------------------------------------

    def call_started(self, call: Any) -> _Flight:
        """A call entered the SDK: it is in flight (provider time) from ``call.started_at``."""
        started_at = call.started_at
        lock = self._lock
        lock.acquire()  # not `with`: see call_ended
        try:
            flight = _Flight(call.info, self._gen)
            if self._in_flight == 0:
                self._busy_open_at = started_at if started_at > self._last_close else self._last_close
            self._in_flight += 1
        finally:
            lock.release()
        return flight

    def retry(self, token: Any, retry: RetryRecord) -> None:
        """The SDK is about to wait and retry: count it now, so throttling shows before the call ends."""
        if not isinstance(token, _Flight):
            return
        with self._lock:
            if token.gen != self._gen:
                self._rebase_locked(token)
            live = token.retried
            if live is None:
                live = token.retried = _LiveRetries()
            stats = live.live_key
            if stats is None:
                stats = live.live_key = self._stats_for(token.info.provider, token.info.request_model or UNKNOWN_MODEL)
            wait = _wait(retry.wait_s)
            self._count_retry_locked(stats, retry, wait)
            live.accounted += 1
            live.seen_retries += 1
            live.seen_retry_wait += wait
            if retry.throttled:
                live.seen_events += 1
                live.seen_wait += wait

    def call_ended(self, token: Any, record: CallRecord) -> None:
        """A call's result is complete: attribute its tokens, cost and final attempt to the end second.

        Every call's path: counts are read one by one rather than in loops, and the common call (succeeded,
        reported usage, priced, not throttled) takes one branch per row."""
        usage = record.usage
        reported = 0  # bit i set: the call reported TOKEN_TYPES[i] (unknown is not 0)
        inp = usage.input
        if inp is None:
            inp = 0
        else:
            reported = 1
        out = usage.output
        if out is None:
            out = 0
        else:
            reported |= 2
        read = usage.cache_read
        if read is None:
            read = 0
        else:
            reported |= 4
        write = usage.cache_write
        if write is None:
            write = 0
        else:
            reported |= 8
        reasoning = usage.reasoning
        if reasoning is None:
            reasoning = 0
        else:
            reported |= 16
        tool_use = usage.tool_use
        if tool_use is None:
            tool_use = 0
        else:
            reported |= 32
        error_type = record.error_type
        failed = error_type is not None
        billable = not failed or reported != 0
        usage_unknown = billable and not reported & 3
        cost = record.cost_usd
        cost_known = cost is not None and math.isfinite(cost)
        final_throttled = record.status_code in THROTTLE_STATUS_CODES
        plain = cost_known and not (failed or usage_unknown or final_throttled)
        ended_at = record.ended_at
        sec = int(ended_at // 1)  # second_of, inlined
        info = record.info
        provider = info.provider
        model = info.request_model or record.response_model or UNKNOWN_MODEL
        flight = token if isinstance(token, _Flight) else None
        retries = record.retries
        attributes = record.attributes

        lock = self._lock
        lock.acquire()  # not `with`: it looks up and binds __enter__ and __exit__ on every call
        try:
            if flight is not None:
                in_flight = self._in_flight - 1
                if in_flight > 0:
                    self._in_flight = in_flight
                else:
                    self._in_flight = 0
                    self._close_busy_locked(ended_at)
                if flight.gen != self._gen:
                    self._rebase_locked(flight)
            if failed and error_type == REJECTED_ERROR:
                self._rejected += 1
                return
            if record.outcome == OUTCOME_CANCELLED:
                self._cancelled += 1
            self._reported |= reported
            stats = self._keys.get((provider, model))  # names longer than MAX_NAME_LEN: `_stats_for` cuts them
            if stats is None:
                stats = self._stats_for(provider, model)
            if retries or (flight is not None and flight.retried is not None):
                self._count_final_retries_locked(flight, stats, retries)
            total = self._total
            if cost_known:
                total.cost += cost  # type: ignore[operator]
            ring = total.ring
            if ring.head == sec:  # CallRing.add_call, inlined for the common case
                ring.head_in += inp
                ring.head_out += out
                ring.head_calls += 1
            else:
                ring.add_call(sec, inp, out)
            targets: tuple[_Stats, ...] = (stats,)
            if attributes:
                groups = self._group_stats_locked(attributes)
                for group in groups:
                    _count_retries(group, retries)
                targets = (stats, *groups)

            for s in targets:
                s.requests += 1
                s.reported |= reported
                tokens = s.tokens
                if inp:
                    tokens[0] += inp
                if out:
                    tokens[1] += out
                if read:
                    tokens[2] += read
                if write:
                    tokens[3] += write
                if reasoning:
                    tokens[4] += reasoning
                if tool_use:
                    tokens[5] += tool_use
                if plain:
                    s.cost += cost  # type: ignore[operator]
                else:
                    if usage_unknown:
                        s.unknown_usage += 1
                    if failed:
                        s.errors += 1
                    if final_throttled:
                        s.throttle_events += 1
                    if cost_known:
                        s.cost += cost  # type: ignore[operator]
                    elif billable:
                        s.unknown_cost += 1
                ring = s.ring
                if ring.head == sec:  # CallRing.add_call, inlined for the common case
                    ring.head_in += inp
                    ring.head_out += out
                    ring.head_calls += 1
                else:
                    ring.add_call(sec, inp, out)
            if failed:
                _bump(self._errors, error_type[:MAX_NAME_LEN])  # type: ignore[index]
            if record.rate_limits:
                self._note_limits_locked(provider, record.rate_limits, ended_at)
        finally:
            lock.release()

    def _count_final_retries_locked(
        self, flight: _Flight | None, stats: _Stats, retries: Sequence[RetryRecord]
    ) -> None:
        """The call's retries not yet counted live, into its row; those counted live move there if needed."""
        start = 0
        live = flight.retried if flight is not None else None
        if live is not None:
            start = live.accounted
            live_stats = live.live_key
            if live_stats is not None and live_stats is not stats:
                self._move_live_locked(live, live_stats, stats)
        for i in range(start, len(retries)):
            self._count_retry_locked(stats, retries[i], _wait(retries[i].wait_s))

    # -- helpers (lock held) --------------------------------------------------------------------------------

    def _group_stats_locked(self, attributes: Mapping[str, str]) -> list[_Stats]:
        """The group rows a call with these attributes counts in (capped keys and values per key)."""
        out = []
        groups = self._groups
        for key, value in attributes.items():
            table = groups.get(key)
            if table is None:
                if len(groups) >= MAX_GROUP_KEYS:
                    continue
                table = groups[key] = {}
            stats = table.get(value)
            if stats is None:
                if len(table) - (OVERFLOW_VALUE in table) >= MAX_GROUP_VALUES:
                    value = OVERFLOW_VALUE
                    stats = table.get(value)
                if stats is None:
                    stats = table[value] = _Stats()
            out.append(stats)
        return out

    def _rebase_locked(self, flight: _Flight) -> None:
        """The view was reset while the call was in flight: what it counted belongs to the old session."""
        flight.gen = self._gen
        live = flight.retried
        if live is not None:
            live.live_key = None
            live.seen_retries = 0
            live.seen_events = 0
            live.seen_wait = 0.0
            live.seen_retry_wait = 0.0

    @staticmethod
    def _move_live_locked(flight: _LiveRetries, live: _Stats, stats: _Stats) -> None:
        """The model became known only at the end: move what retries counted live to the right row."""
        live.retries -= flight.seen_retries
        live.retry_wait -= flight.seen_retry_wait
        live.throttle_events -= flight.seen_events
        live.throttle_wait -= flight.seen_wait
        stats.retries += flight.seen_retries
        stats.retry_wait += flight.seen_retry_wait
        stats.throttle_events += flight.seen_events
        stats.throttle_wait += flight.seen_wait
        # The wall-clock union cannot be split per call: the right row gets the waits as one interval ending now
        # (the hidden live row keeps its share; the session's union is exact either way).
        if flight.seen_wait:
            stats.add_throttle_wait(time.monotonic() - flight.seen_wait, flight.seen_wait)

    def _count_retry_locked(self, stats: _Stats, retry: RetryRecord, wait: float) -> None:
        throttled = retry.throttled
        self._total.add_retry_time(wait, throttled, retry.at)
        stats.add_retry(wait, throttled, retry.at)
        _bump(self._reasons, retry.reason)
        if retry.rate_limits:
            self._note_limits_locked(retry.info.provider, retry.rate_limits, retry.at)

    def _close_busy_locked(self, ended_at: float) -> None:
        opened = self._busy_open_at
        self._busy_open_at = None
        if opened is None:
            return
        end = ended_at if ended_at > opened else opened
        self._busy_closed += end - opened
        self._busy_ring.add_span(opened, end)
        if end > self._last_close:
            self._last_close = end

    def _note_limits_locked(self, provider: str, limits: RateLimits, at: float) -> None:
        observed = self._wall_offset + at
        kinds = self._limits.get(provider)  # a name longer than MAX_NAME_LEN: its cut form is found below
        if kinds is None:
            for window in limits.windows:
                self._note_new_limit_locked(provider, window, observed)
            return
        for window in limits.windows:
            kind = window.kind
            current = kinds.get(kind)
            if current is None:
                self._note_new_limit_locked(provider, window, observed)
            elif current[1] <= observed:  # an older answer arriving late must not hide a newer one
                kinds[kind] = (window, observed)

    def _note_new_limit_locked(self, provider: str, window: RateLimitWindow, observed: float) -> None:
        """A window not found under its full names: look under the cut names, else add it (within the cap)."""
        provider = provider[:MAX_NAME_LEN]
        kind = window.kind[:MAX_NAME_LEN]
        kinds = self._limits.get(provider)
        current = None if kinds is None else kinds.get(kind)
        if current is None:
            if self._limit_count >= MAX_LIMIT_WINDOWS:
                return
            self._limit_count += 1
            if kinds is None:
                kinds = self._limits[provider] = {}
        elif current[1] > observed:
            return
        kinds[kind] = (window, observed)  # type: ignore[index]

    # -- reading ---------------------------------------------------------------------------------------------

    def _budgets(self) -> tuple[BudgetLine, ...]:
        provider = _budget_provider if self._budget_provider is _UNSET else self._budget_provider
        if provider is None:
            return ()
        try:
            return tuple(
                BudgetLine(b.name, b.period, b.unit, float(b.spent), float(b.limit), b.state, b.scope)
                for b in provider()
                if isinstance(b, BudgetLine)
            )
        except Exception as exc:
            report("budget provider", exc)
            return ()

    @staticmethod
    def _ledger_status() -> LedgerStatus | None:
        provider = _ledger_provider
        if provider is None:
            return None
        try:
            status = provider()
        except Exception as exc:
            report("ledger status provider", exc)
            return None
        return status if isinstance(status, LedgerStatus) else None

    def snapshot(self) -> Snapshot:
        """An immutable picture of the session now; cost is independent of how many calls were recorded."""
        budgets = self._budgets()  # outside the lock: it may be slow or read the view itself
        with self._lock:
            now_m = self._mono()
            now_w = self._wall()
            sec = second_of(now_m)
            total = self._total
            total.ring.advance(sec)
            busy_ring = self._busy_ring
            busy_ring.advance(sec)
            head = busy_ring.head if busy_ring.head is not None else sec
            window_start = float(head - WINDOW_S + 1)
            busy_s = self._busy_closed
            window_busy = busy_ring.total()
            opened = self._busy_open_at
            if opened is not None and now_m > opened:
                busy_s += now_m - opened
                window_busy += max(0.0, now_m - max(opened, window_start))
            rows = []
            for (provider, model), s in self._keys.items():
                s.ring.advance(sec)
                rows.append((provider, model, s.freeze(now_m)))
            groups = []
            for key, table in self._groups.items():
                for value, s in table.items():
                    s.ring.advance(sec)
                    groups.append((key, value, s.freeze(now_m)))
            figures = _session_figures(total.freeze(now_m), [f for _, _, f in rows])
            averages = _averages(total.ring, figures, sec - second_of(self._start_mono) + 1)
            errors = tuple(sorted(self._errors.items()))
            reasons = tuple(sorted(self._reasons.items()))
            limits = [
                ((provider, kind), entry) for provider, kinds in self._limits.items() for kind, entry in kinds.items()
            ]
            rejected = self._rejected
            cancelled = self._cancelled
            reported = self._reported
            in_flight = self._in_flight
            duration = max(0.0, now_m - self._start_mono)
            started_wall = self._start_wall

        return _build_snapshot(
            now_w=now_w,
            started_wall=started_wall,
            duration=duration,
            figures=figures,
            rows=rows,
            errors=errors,
            reasons=reasons,
            limits=limits,
            rejected=rejected,
            cancelled=cancelled,
            reported=tuple(name for i, name in enumerate(TOKEN_TYPES) if reported >> i & 1),
            in_flight=in_flight,
            busy_s=busy_s,
            window_busy=window_busy,
            averages=averages,
            budgets=budgets,
            groups=groups,
            ledger=self._ledger_status(),
        )


def _session_figures(own: Figures, rows: list[Figures]) -> Figures:
    """The session row: its own window, cost and times, with the counts summed over the model rows."""
    tokens = tuple(
        None if all(v is None for v in column) else sum(v for v in column if v is not None)
        for column in zip(*(f.tokens for f in rows), strict=True)
    )
    return own._replace(
        requests=sum(f.requests for f in rows),
        attempts=sum(f.attempts for f in rows),
        errors=sum(f.errors for f in rows),
        tokens=tokens or own.tokens,
        unknown_usage=sum(f.unknown_usage for f in rows),
        throttle_events=sum(f.throttle_events for f in rows),
        retries=sum(f.retries for f in rows),
        unknown_cost=sum(f.unknown_cost for f in rows),
    )


def _averages(r: CallRing, session: Figures, seconds: int) -> tuple[float, float]:
    """Average TPM and RPM: the mean of the rolling window's sums over the session's ``seconds`` one-second samples.

    An event counts in the window sampled at each second from its own to 59 seconds later (or now): events older
    than the window are in all 60 of their samples; those still in it, in ``now - second + 1``. The mean of those
    samples can never exceed their maximum, the peak.
    """
    if seconds <= 0:
        return 0.0, 0.0
    recent_tokens, recent_calls = r.recent_weighted()
    session_tokens = (session.tokens[0] or 0) + (session.tokens[1] or 0)
    tokens = WINDOW_S * (session_tokens - r.sum_total) + recent_tokens
    calls = WINDOW_S * (session.requests - r.sum_calls) + recent_calls
    # A record dated in the past (an abandoned stream ends at its last chunk) lands in seconds whose window was
    # already sampled for the peak: the cap keeps "never above the peak" true for those too.
    return min(tokens / seconds, float(r.peak_total)), min(calls / seconds, float(r.peak_calls))


def _opt_float(value: float | None) -> float | None:
    """Floats throughout, so a snapshot's JSON reads back to the same text."""
    return None if value is None else float(value)


def _per_minute(amount: float, seconds: float) -> float | None:
    return amount * 60.0 / seconds if seconds > 0 else None


def _build_snapshot(
    *,
    now_w: float,
    started_wall: float,
    duration: float,
    figures: Figures,
    rows: list[tuple[str, str, Figures]],
    errors: tuple[tuple[str, int], ...],
    reasons: tuple[tuple[str, int], ...],
    reported: tuple[str, ...],
    limits: list[tuple[tuple[str, str], tuple[RateLimitWindow, float]]],
    rejected: int,
    cancelled: int,
    in_flight: int,
    busy_s: float,
    window_busy: float,
    averages: tuple[float, float],
    budgets: tuple[BudgetLine, ...],
    groups: list[tuple[str, str, Figures]],
    ledger: LedgerStatus | None,
) -> Snapshot:
    token_totals = TokenTotals(*figures.tokens)
    rates = Rates(
        window_s=WINDOW_S,
        tpm=figures.window_total,
        tpm_input=figures.window_input,
        tpm_output=figures.window_output,
        rpm=figures.window_calls,
        apm=figures.window_attempts,
        active_tpm=_per_minute(figures.window_total, window_busy),
        window_busy_s=window_busy,
        peak_tpm=figures.peak_total,
        peak_rpm=figures.peak_calls,
        avg_tpm=averages[0],
        avg_rpm=averages[1],
        session_active_tpm=_per_minute(token_totals.total, busy_s),
        busy_s=busy_s,
    )
    models = [
        ModelRow(provider=provider, model=model, **f.row_fields())
        for provider, model, f in rows
        # a row that only held live retries later moved to the call's real model
        if f.requests or f.retries or f.throttle_events
    ]
    models.sort(key=lambda m: (-m.tokens.total, -m.requests, m.provider, m.model))
    rate_limits = tuple(
        RateLimitState(
            provider=provider,
            kind=kind,
            limit=_opt_float(w.limit),
            remaining=_opt_float(w.remaining),
            reset_s=_opt_float(w.reset_s),
            used_fraction=_opt_float(w.used_fraction),
            observed_at=observed,
        )
        for (provider, kind), (w, observed) in sorted(limits, key=lambda item: item[0])
    )
    return Snapshot(
        updated_at=float(now_w),
        session_started_at=float(started_wall),
        duration_s=duration,
        requests=figures.requests,
        attempts=figures.attempts,
        errors=figures.errors,
        errors_by_type=errors,
        rejected=rejected,
        cancelled=cancelled,
        in_flight=in_flight,
        tokens=token_totals,
        reported_token_types=reported,
        unknown_usage_calls=figures.unknown_usage,
        rates=rates,
        throttle=ThrottleTotals(
            events=figures.throttle_events,
            wait_s=figures.throttle_wait,
            wall_s=figures.throttle_wall,
            retries=figures.retries,
            retry_wait_s=figures.retry_wait,
            retries_by_reason=reasons,
        ),
        cost_usd=float(figures.cost),
        unknown_cost_calls=figures.unknown_cost,
        rate_limits=rate_limits,
        models=tuple(models),
        budgets=budgets,
        groups=tuple(GroupRow(key=key, value=value, **f.row_fields()) for key, value, f in groups),
        ledger=ledger,
    )


# -- the process-wide view ------------------------------------------------------------------------------------

_singleton: View | None = None
_singleton_lock = threading.Lock()


def get_view() -> View:
    """The process-wide view, registered as a local sink the first time it is asked for."""
    global _singleton
    view = _singleton
    if view is not None:
        return view
    with _singleton_lock:
        view = _singleton
        if view is None:
            view = _singleton = View()
            add_local_sink(view)
    return view


def snapshot() -> Snapshot:
    """A snapshot of the process-wide view."""
    return get_view().snapshot()


def reset() -> None:
    """Zero the process-wide view (a new session)."""
    get_view().reset()


def _after_fork_in_child() -> None:
    view = _singleton
    if view is not None:
        view._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

"""The normalized records every provider adapter produces and every sink consumes.

Nothing in here knows a provider. An adapter turns one SDK call into one `CallRecord` (plus one `RetryRecord`
per retry the SDK made); telemetry, the local view, cost, budgets and the ledger only ever read these.

Token rule, the same for every provider: ``input + output`` are all billed tokens; ``cache_read``,
``cache_write`` and ``tool_use`` are parts of ``input``; ``reasoning`` is part of ``output``. A field the
provider did not report is ``None`` ("unknown"), never 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from operator import attrgetter
from types import MappingProxyType
from typing import Any

TOKEN_TYPES: tuple[str, ...] = ("input", "output", "cache_read", "cache_write", "reasoning", "tool_use")
"""Every token type, in display order. The first two are the billed totals; the rest are parts of them.

Code that handles every type iterates over this tuple (and `PART_OF`); the typed records that name each type
(`TokenUsage`, the view's ``TokenTotals``, the simulator's ``UsagePlan``) are checked against it by a test."""

BILLED_TYPES: tuple[str, ...] = ("input", "output")
"""The billed totals: ``input + output`` is every billed token."""

PART_OF: Mapping[str, str] = MappingProxyType(
    {"cache_read": "input", "cache_write": "input", "reasoning": "output", "tool_use": "input"}
)
"""Each part type and the billed total it is included in."""

THROTTLE_STATUS_CODES: frozenset[int] = frozenset({429, 529})
"""HTTP statuses that mean "slow down": 429 Too Many Requests and Anthropic's 529 Overloaded."""

# Why an attempt was retried. Low-cardinality on purpose: these become metric attributes.
REASON_THROTTLED = "throttled"
REASON_SERVER_ERROR = "server_error"
REASON_TIMEOUT = "timeout"
REASON_CONNECTION = "connection_error"
REASON_OTHER = "other"

NO_COUNTS: Mapping[str, int] = MappingProxyType({})
"""An empty, read-only count mapping (the default for per-request charges)."""

NO_ATTRIBUTES: Mapping[str, str] = MappingProxyType({})
"""No attribution (the default): see `tokenrate.attribution`."""


def retry_reason(status_code: int | None, error_kind: str | None = None) -> str:
    """Classify a retried attempt: throttling stays distinct from server errors and network trouble."""
    if status_code is not None:
        if status_code in THROTTLE_STATUS_CODES:
            return REASON_THROTTLED
        if status_code >= 500 or status_code == 408:
            return REASON_SERVER_ERROR
        return REASON_OTHER
    if error_kind == REASON_TIMEOUT:
        return REASON_TIMEOUT
    if error_kind == REASON_CONNECTION:
        return REASON_CONNECTION
    return REASON_OTHER


def network_error_kind(error: BaseException | None) -> str | None:
    """``timeout`` or ``connection_error`` for an attempt that failed without an HTTP status (``None``: no error).

    The SDKs only retry such attempts for their HTTP client's timeout and transport errors, named accordingly.
    """
    if error is None:
        return None
    return REASON_TIMEOUT if "timeout" in type(error).__name__.lower() else REASON_CONNECTION


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Tokens of one call by type; ``None`` means the provider did not say."""

    input: int | None = None
    output: int | None = None
    cache_read: int | None = None
    cache_write: int | None = None
    reasoning: int | None = None
    tool_use: int | None = None

    def items(self) -> Iterator[tuple[str, int]]:
        """(type, count) for every known type, in `TOKEN_TYPES` order."""
        for name in TOKEN_TYPES:
            value = getattr(self, name)
            if value is not None:
                yield name, value

    @property
    def total(self) -> int | None:
        """All billed tokens (input + output), from what is known; ``None`` when neither is."""
        if self.input is None and self.output is None:
            return None
        return (self.input or 0) + (self.output or 0)

    @property
    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in TOKEN_TYPES)

    def __add__(self, other: TokenUsage) -> TokenUsage:
        """Sum two usages; unknown + unknown stays unknown, unknown + n is n."""
        if not isinstance(other, TokenUsage):
            return NotImplemented
        return TokenUsage(*(_add_optional(getattr(self, n), getattr(other, n)) for n in TOKEN_TYPES))

    def as_dict(self) -> dict[str, int | None]:
        return {name: getattr(self, name) for name in TOKEN_TYPES}

    def as_tuple(self) -> tuple[int | None, ...]:
        """Every count in `TOKEN_TYPES` order (one C-level call: it is on every call's path)."""
        return _token_values(self)


def _add_optional(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


_token_values = attrgetter(*TOKEN_TYPES)
EMPTY_USAGE = TokenUsage()


@dataclass(frozen=True, slots=True)
class RateLimitWindow:
    """One of the provider's rate-limit windows as its headers described it on one response."""

    kind: str
    """What is limited: ``requests``, ``tokens``, ``input_tokens`` or ``output_tokens``."""
    limit: float | None = None
    remaining: float | None = None
    reset_s: float | None = None
    """Seconds until the window is full again, counted from when the response arrived."""

    @property
    def used_fraction(self) -> float | None:
        """How much of the limit is used (0..1); ``None`` when limit or remaining is unknown."""
        if self.limit is None or self.remaining is None or self.limit <= 0:
            return None
        return min(1.0, max(0.0, 1.0 - self.remaining / self.limit))


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The rate-limit headers of one response, parsed into numbers and seconds."""

    windows: tuple[RateLimitWindow, ...] = ()
    retry_after_s: float | None = None

    def get(self, kind: str) -> RateLimitWindow | None:
        for window in self.windows:
            if window.kind == kind:
                return window
        return None

    def __bool__(self) -> bool:
        return bool(self.windows) or self.retry_after_s is not None


@dataclass(frozen=True, slots=True)
class CallInfo:
    """What is known about a call when it starts; shared by the call's record and its retries."""

    provider: str
    """Semconv ``gen_ai.provider.name``: ``openai``, ``anthropic``, ``gcp.gemini``, ..."""
    operation: str
    """Semconv ``gen_ai.operation.name``: ``chat``, ``embeddings``, ``generate_content``, ..."""
    request_model: str | None = None
    server_address: str | None = None
    server_port: int | None = None
    stream: bool = False


@dataclass(frozen=True, slots=True)
class RetryRecord:
    """One retry the SDK made: an attempt failed, the SDK slept ``wait_s`` and tried again."""

    info: CallInfo
    attempt: int
    """1-based number of the attempt that failed (1 is the first try)."""
    status_code: int | None
    """HTTP status of the failed attempt; ``None`` for a timeout or connection error."""
    reason: str
    """``throttled``, ``server_error``, ``timeout``, ``connection_error`` or ``other``."""
    wait_s: float | None
    """Seconds the SDK waited before the next attempt, as the SDK computed them."""
    at: float
    """``time.monotonic()`` when the SDK started waiting."""
    rate_limits: RateLimits | None = None

    @property
    def throttled(self) -> bool:
        return self.reason == REASON_THROTTLED


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One logical call, from the user's call into the SDK until its result (or stream) is finished."""

    info: CallInfo
    started_at: float
    """``time.monotonic()`` at the start of the call."""
    ended_at: float
    started_unix: float
    """Wall-clock start (``time.time()``), for calendars: days, months, ledgers."""
    usage: TokenUsage = EMPTY_USAGE
    response_model: str | None = None
    time_to_first_chunk_s: float | None = None
    retries: tuple[RetryRecord, ...] = ()
    rate_limits: RateLimits | None = None
    """Rate limits from the final response (or the final error response)."""
    status_code: int | None = None
    """HTTP status of the final response, when there was one."""
    error_type: str | None = None
    """Low-cardinality error name (exception class, e.g. ``RateLimitError``); ``None`` on success."""
    outcome: str = "ok"
    """``ok``, ``error``, ``closed`` (stream closed before its end), ``abandoned`` (stream dropped) or
    ``cancelled`` (the user stopped the call: Ctrl-C, task cancellation; not an error, ``error_type`` is None)."""
    server_tool_requests: Mapping[str, int] = field(default_factory=lambda: NO_COUNTS)
    """Provider-side tool requests billed per request (e.g. ``web_search``), never tokens."""
    cost_usd: float | None = None
    """Set by the cost stage; ``None`` means unknown (not free)."""
    attributes: Mapping[str, str] = field(default_factory=lambda: NO_ATTRIBUTES)
    """Who or what the call was for (``user.id``, ``tokenrate.feature``, ...): `tokenrate.attributes` blocks and
    allow-listed Baggage in force when the call started. Per call, so never part of `CallInfo` (a low-cardinality
    description of the kind of call, used as a cache key)."""
    rate_limiter_wait_s: float = 0.0
    """Seconds the SDK's own client-side rate limiter held the call's requests before sending them (botocore's
    adaptive retry mode, after a throttle). Not a retry: no request failed for it."""

    @property
    def duration_s(self) -> float:
        return max(0.0, self.ended_at - self.started_at)

    @property
    def throttle_events(self) -> int:
        """429/529 responses seen by this call: every throttled retry, plus the final one if it failed so."""
        count = sum(1 for r in self.retries if r.throttled) if self.retries else 0  # most calls: no retry
        if self.status_code in THROTTLE_STATUS_CODES:
            count += 1
        return count

    @property
    def throttle_wait_s(self) -> float:
        """Seconds the SDK slept before retrying throttled attempts."""
        return sum(r.wait_s or 0.0 for r in self.retries if r.throttled)

    @property
    def retry_wait_s(self) -> float:
        """Seconds the SDK slept before any retry (throttled or not)."""
        return sum(r.wait_s or 0.0 for r in self.retries)

    @property
    def failed(self) -> bool:
        return self.error_type is not None


class _CallRecordDraft:
    """`CallRecord`'s slot layout without the frozen dataclass ``__init__`` (one ``object.__setattr__`` per field):
    filled by plain slot stores, then made a `CallRecord` by assigning ``__class__``, which Python allows between
    classes of the same layout. Only `new_call_record` uses it; nothing ever sees a draft."""

    __slots__ = CallRecord.__slots__


def record_with_cost(record: CallRecord, cost_usd: float | None) -> CallRecord:
    """``dataclasses.replace(record, cost_usd=cost_usd)`` at a tenth of its price: the cost stage copies every
    priced call. The copy is an ordinary, frozen `CallRecord` (a test checks every field is copied)."""
    return new_call_record(
        record.info,
        record.started_at,
        record.ended_at,
        record.started_unix,
        record.usage,
        record.response_model,
        record.time_to_first_chunk_s,
        record.retries,
        record.rate_limits,
        record.status_code,
        record.error_type,
        record.outcome,
        record.server_tool_requests,
        cost_usd,
        record.attributes,
        record.rate_limiter_wait_s,
    )


def new_call_record(
    info: CallInfo,
    started_at: float,
    ended_at: float,
    started_unix: float,
    usage: TokenUsage,
    response_model: str | None,
    time_to_first_chunk_s: float | None,
    retries: tuple[RetryRecord, ...],
    rate_limits: RateLimits | None,
    status_code: int | None,
    error_type: str | None,
    outcome: str,
    server_tool_requests: Mapping[str, int],
    cost_usd: float | None,
    attributes: Mapping[str, str],
    rate_limiter_wait_s: float,
) -> CallRecord:
    """``CallRecord(...)`` with every field given in order, without one ``object.__setattr__`` per field: every call's
    end makes one (`tokenrate.recording.ActiveCall.finish`) and the cost stage another. The same frozen record (a
    test compares it with the constructor's)."""
    draft: Any = _new_object(_CallRecordDraft)
    draft.info = info
    draft.started_at = started_at
    draft.ended_at = ended_at
    draft.started_unix = started_unix
    draft.usage = usage
    draft.response_model = response_model
    draft.time_to_first_chunk_s = time_to_first_chunk_s
    draft.retries = retries
    draft.rate_limits = rate_limits
    draft.status_code = status_code
    draft.error_type = error_type
    draft.outcome = outcome
    draft.server_tool_requests = server_tool_requests
    draft.cost_usd = cost_usd
    draft.attributes = attributes
    draft.rate_limiter_wait_s = rate_limiter_wait_s
    draft.__class__ = CallRecord
    return draft


_new_object = object.__new__


@dataclass(frozen=True, slots=True)
class BudgetLine:
    """Where one budget stands: shown by the status line, the summary, ``top`` and ``report``."""

    name: str
    """e.g. ``daily_usd``, ``monthly_tokens``, or the name of a budget in the budgets file."""
    period: str
    """``day``, ``week``, ``month`` or a rolling window (``1h``)."""
    unit: str
    """``USD`` or ``tokens``."""
    spent: float
    limit: float
    state: str
    """``ok``, ``warning``, ``alert`` or ``exceeded``."""
    scope: str = ""
    """Whose spend this line is: ``user.id=alice``; ``""`` for a budget over every call."""

    @property
    def remaining(self) -> float:
        return max(0.0, self.limit - self.spent)

    @property
    def utilization(self) -> float:
        return self.spent / self.limit if self.limit > 0 else 0.0

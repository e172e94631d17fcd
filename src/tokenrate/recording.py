"""Where a record is born: `ActiveCall`, the state of one call while it is in flight.

A provider adapter creates an `ActiveCall` when the user's call enters the SDK, feeds it what it learns
(usage, response model, rate-limit headers, retries, first chunk) and calls `ActiveCall.finish` once the result
is complete: the call returned, raised, or its stream ended, was closed or was dropped. `finish` is idempotent
and thread-safe, so every path that might end a call can simply call it; the first one wins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from tokenrate.attribution.context import current_attributes
from tokenrate.pipeline import Pipeline
from tokenrate.records import (
    EMPTY_USAGE,
    NO_COUNTS,
    CallInfo,
    CallRecord,
    RateLimits,
    RetryRecord,
    TokenUsage,
    new_call_record,
    retry_reason,
)

current_call: ContextVar[ActiveCall | None] = ContextVar("tokenrate_current_call", default=None)
"""The call whose SDK request is running in this thread/task; retry hooks use it to find their call."""

OUTCOME_OK = "ok"
OUTCOME_ERROR = "error"
OUTCOME_CLOSED = "closed"
OUTCOME_ABANDONED = "abandoned"
OUTCOME_CANCELLED = "cancelled"
"""The user stopped the call (Ctrl-C, task cancellation): not an error of the call, and no ``error.type``."""

_CANCELLATION_NAMES = frozenset({"CancelledError", "Cancelled"})
"""asyncio's, concurrent.futures' and trio's cancellation exceptions, recognised without importing them."""


def is_cancellation(error: BaseException) -> bool:
    """Whether ``error`` means the user (or their event loop) stopped the call rather than the call failing."""
    if isinstance(error, (KeyboardInterrupt, GeneratorExit)):
        return True
    return any(cls.__name__ in _CANCELLATION_NAMES for cls in type(error).__mro__)


class ActiveCall:
    """One logical call in flight. Adapters write to it; `finish` turns it into a `CallRecord` exactly once."""

    __slots__ = (
        "attributes",
        "info",
        "started_at",
        "started_unix",
        "usage",
        "response_model",
        "first_chunk_at",
        "last_chunk_at",
        "rate_limits",
        "status_code",
        "server_tool_requests",
        "rate_limiter_wait_s",
        "adapter_state",
        "native_span",
        "_pipeline",
        "_started",
        "_retries",
        "_finished",
        "_lock",
        "_undo",
        "_context",
        "__weakref__",
    )

    def __init__(self, pipeline: Pipeline, info: CallInfo, *, native_span: bool = False) -> None:
        self.info = info
        self.native_span = native_span
        """The SDK makes its own span for this call and keeps it: sinks enrich that one instead of adding a second."""
        self.attributes = current_attributes()
        """Who or what the call is for, fixed when it starts (sinks may scope on them in ``call_started``)."""
        self.started_at = time.monotonic()
        self.started_unix = time.time()
        self.usage: TokenUsage = EMPTY_USAGE
        self.response_model: str | None = None
        self.first_chunk_at: float | None = None
        self.last_chunk_at: float | None = None
        self.rate_limits: RateLimits | None = None
        self.status_code: int | None = None
        self.server_tool_requests: Mapping[str, int] | None = None
        self.rate_limiter_wait_s = 0.0
        self.adapter_state: Any = None
        """Free slot for the adapter's own bookkeeping (e.g. the retry wait the SDK just computed)."""
        self._pipeline = pipeline
        self._retries: list[RetryRecord] = []
        self._finished = False
        self._lock = threading.Lock()
        self._undo: list[Any] = []
        self._context: Any = None
        self._started = pipeline.call_started(self)  # may raise CallRejected, on purpose

    # -- while the SDK sends the request -------------------------------------------------------------------

    def __enter__(self) -> ActiveCall:
        """``with call:`` while the SDK works on it: the call is current (for retry hooks) and so is its span."""
        self._context = current_call.set(self)
        self.activate()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.deactivate()
        current_call.reset(self._context)

    def activate(self) -> None:
        """Make the call's context (its span) current while the SDK works; pair with `deactivate`."""
        self._undo = self._pipeline.activate(self._started)

    def deactivate(self) -> None:
        undo, self._undo = self._undo, []
        self._pipeline.deactivate(undo)

    # -- what the adapter learns ------------------------------------------------------------------------------

    def mark_chunk(self) -> None:
        """A streamed item arrived: the first one sets time to first chunk."""
        now = time.monotonic()
        if self.first_chunk_at is None:
            self.first_chunk_at = now
        self.last_chunk_at = now

    def add_retry(
        self,
        *,
        status_code: int | None,
        error_kind: str | None,
        wait_s: float | None,
        rate_limits: RateLimits | None = None,
    ) -> RetryRecord:
        """The SDK is about to sleep and retry: record it and tell the sinks now (a live view sees the wait)."""
        record = RetryRecord(
            info=self.info,
            attempt=len(self._retries) + 1,
            status_code=status_code,
            reason=retry_reason(status_code, error_kind),
            wait_s=wait_s,
            at=time.monotonic(),
            rate_limits=rate_limits,
        )
        self._retries.append(record)
        self._pipeline.retry(self._started, record)
        return record

    def add_rate_limiter_wait(self, seconds: float) -> None:
        """The SDK's own client-side rate limiter held a request of this call for ``seconds`` before sending it."""
        if seconds > 0:
            self.rate_limiter_wait_s += seconds

    @property
    def retry_count(self) -> int:
        return len(self._retries)

    @property
    def finished(self) -> bool:
        return self._finished

    # -- the end ------------------------------------------------------------------------------------------

    def finish(
        self,
        *,
        error: BaseException | None = None,
        error_type: str | None = None,
        outcome: str | None = None,
        ended_at: float | None = None,
    ) -> CallRecord | None:
        """End the call (first caller wins) and send its record down the pipeline.

        ``ended_at`` backdates the end (an abandoned stream ended at its last chunk, not when it was collected).
        """
        with self._lock:
            if self._finished:
                return None
            self._finished = True
        if ended_at is None:
            ended_at = time.monotonic()
        if error is not None and outcome is None and is_cancellation(error):
            outcome, error = OUTCOME_CANCELLED, None
        if error is not None and error_type is None:
            error_type = type(error).__qualname__
        if outcome is None:
            outcome = OUTCOME_ERROR if error_type is not None else OUTCOME_OK
        record = new_call_record(
            self.info,
            self.started_at,
            ended_at,
            self.started_unix,
            self.usage,
            self.response_model,
            self.first_chunk_at - self.started_at if self.first_chunk_at is not None else None,
            tuple(self._retries),
            self.rate_limits,
            self.status_code,
            error_type,
            outcome,
            self.server_tool_requests or NO_COUNTS,
            None,
            self.attributes,
            self.rate_limiter_wait_s,
        )
        return self._pipeline.call_ended(self._started, record)

    def rejected_record(self) -> CallRecord:
        """The record sinks see for a call that a later sink refused before it was sent (it cost nothing: it was
        never sent, so the ledger does not count it as a call of unknown cost)."""
        now = time.monotonic()
        return CallRecord(
            info=self.info,
            started_at=self.started_at,
            ended_at=now,
            started_unix=self.started_unix,
            error_type="CallRejected",
            outcome=OUTCOME_ERROR,
            cost_usd=0.0,
            attributes=self.attributes,
        )

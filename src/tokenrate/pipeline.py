"""The one pipeline every provider feeds: call start, retries, call end, fanned out to sinks.

A *sink* turns records into something: OTel metrics and spans (`tokenrate.telemetry`), the local rolling view
(`tokenrate.view`), cost, budgets, the ledger. Sinks never see an SDK object and never learn a provider's name
except as the ``provider`` string in `CallInfo`.

Two kinds of sinks:

* the **telemetry sink** belongs to an instrumentor (it holds that instrumentor's tracer and meter);
* **local sinks** are process-wide (one view, one ledger), registered with `add_local_sink`, and see every
  call from every instrumentor.

*Enrichers* run once per finished call before the sinks (e.g. pricing sets ``cost_usd``).

A failing sink is logged once and skipped; it never reaches the user's call. The one exception on purpose is
`tokenrate.errors.CallRejected` from ``call_started``, which stops the call before its request is sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from tokenrate._safety import report
from tokenrate.errors import CallRejected

if TYPE_CHECKING:
    from tokenrate.recording import ActiveCall
    from tokenrate.records import CallRecord, RetryRecord

Enricher = Callable[["CallRecord"], "CallRecord"]


@runtime_checkable
class Sink(Protocol):
    """Receives every call's life cycle. ``call_started`` returns a token handed back to the other two."""

    def call_started(self, call: ActiveCall) -> Any: ...

    def retry(self, token: Any, retry: RetryRecord) -> None: ...

    def call_ended(self, token: Any, record: CallRecord) -> None: ...


class ActivatingSink(Sink, Protocol):
    """A sink that makes something current while the SDK sends the request (the call's span)."""

    def activate(self, token: Any) -> Callable[[], None] | None: ...


_lock = threading.Lock()
_local_sinks: tuple[Sink, ...] = ()
_enrichers: tuple[Enricher, ...] = ()


def add_local_sink(sink: Sink) -> None:
    """Register a process-wide sink (idempotent). It sees calls that start after this."""
    global _local_sinks
    with _lock:
        if sink not in _local_sinks:
            _local_sinks = (*_local_sinks, sink)


def remove_local_sink(sink: Sink) -> None:
    global _local_sinks
    with _lock:
        _local_sinks = tuple(s for s in _local_sinks if s is not sink)


def add_enricher(enricher: Enricher) -> None:
    """Register a process-wide enricher (idempotent); it may return a changed copy of the record."""
    global _enrichers
    with _lock:
        if enricher not in _enrichers:
            _enrichers = (*_enrichers, enricher)


def remove_enricher(enricher: Enricher) -> None:
    global _enrichers
    with _lock:
        _enrichers = tuple(e for e in _enrichers if e is not enricher)


def local_sinks() -> tuple[Sink, ...]:
    return _local_sinks


class Pipeline:
    """Fans one instrumentor's calls out to its telemetry sink and to the process-wide local sinks."""

    __slots__ = ("telemetry",)

    def __init__(self, telemetry: Sink | None) -> None:
        self.telemetry = telemetry

    def sinks(self) -> tuple[Sink, ...]:
        if self.telemetry is None:
            return _local_sinks
        return (self.telemetry, *_local_sinks)

    def call_started(self, call: ActiveCall) -> list[tuple[Sink, Any]]:
        """Tell every sink; returns (sink, token) pairs. May raise `CallRejected` and nothing else."""
        started: list[tuple[Sink, Any]] = []
        for sink in self.sinks():
            try:
                started.append((sink, sink.call_started(call)))
            except CallRejected:
                # The call will not happen: close what the earlier sinks opened, then let the refusal through.
                for opened, token in started:
                    _end_rejected(opened, token, call)
                raise
            except Exception as exc:
                report(f"{type(sink).__name__}.call_started", exc)
        return started

    @staticmethod
    def activate(started: list[tuple[Sink, Any]]) -> list[Callable[[], None]]:
        """Make sinks' per-call context current (the span); returns the undo callables."""
        undo: list[Callable[[], None]] = []
        for sink, token in started:
            activate = getattr(sink, "activate", None)
            if activate is None:
                continue
            try:
                done = activate(token)
            except Exception as exc:
                report(f"{type(sink).__name__}.activate", exc)
                continue
            if done is not None:
                undo.append(done)
        return undo

    @staticmethod
    def deactivate(undo: list[Callable[[], None]]) -> None:
        for done in reversed(undo):
            try:
                done()
            except Exception as exc:
                report("deactivate", exc)

    @staticmethod
    def retry(started: list[tuple[Sink, Any]], retry: RetryRecord) -> None:
        for sink, token in started:
            try:
                sink.retry(token, retry)
            except Exception as exc:
                report(f"{type(sink).__name__}.retry", exc)

    @staticmethod
    def call_ended(started: list[tuple[Sink, Any]], record: CallRecord) -> CallRecord:
        for enrich in _enrichers:
            try:
                record = enrich(record)
            except Exception as exc:
                report(f"enricher {getattr(enrich, '__qualname__', enrich)!s}", exc)
        for sink, token in started:
            try:
                sink.call_ended(token, record)
            except Exception as exc:
                report(f"{type(sink).__name__}.call_ended", exc)
        return record


def _end_rejected(sink: Sink, token: Any, call: ActiveCall) -> None:
    """A sink that saw a call start must also see it end, even when a later sink rejected it."""
    try:
        sink.call_ended(token, call.rejected_record())
    except Exception as exc:
        report(f"{type(sink).__name__}.call_ended", exc)

"""Where a record becomes telemetry: OTel metrics and one CLIENT span per call.

Uses only the OTel API (`get_tracer`/`get_meter` or the providers handed to ``instrument()``), so whatever the
user configured decides where it goes; with no SDK installed everything here is a cheap no-op.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider, get_meter, get_meter_provider
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider, get_tracer

from tokenrate import __version__
from tokenrate.attribution import PickedAttributes, metric_policy
from tokenrate.records import (
    THROTTLE_STATUS_CODES,
    TOKEN_TYPES,
    CallInfo,
    CallRecord,
    RateLimits,
    RetryRecord,
    TokenUsage,
)
from tokenrate.telemetry import instruments as names
from tokenrate.telemetry.instruments import Instruments, create_instruments
from tokenrate.telemetry.observed import CounterSeries, GaugeSeries

SCOPE_NAME = "tokenrate"

_SPAN_USAGE_ATTRIBUTES = {
    "input": names.GEN_AI_USAGE_INPUT_TOKENS,
    "output": names.GEN_AI_USAGE_OUTPUT_TOKENS,
    "cache_read": names.GEN_AI_USAGE_CACHE_READ,
    "cache_write": names.GEN_AI_USAGE_CACHE_CREATION,
    "reasoning": names.GEN_AI_USAGE_REASONING,
    "tool_use": names.TOKENRATE_USAGE_TOOL_USE,
}
_MAX_CACHED_ATTRIBUTE_SETS = 512
_MAX_VARIANTS = 64
"""Cached variants per kind of call (response models, error types, tools, retry reasons): a bound, not a limit."""


def _cache(variants: dict[Any, Any], key: Any, value: Any) -> Any:
    """Keep ``value`` as a cached variant (the cache starts over when full: bounded memory, still correct)."""
    if len(variants) >= _MAX_VARIANTS:
        variants.clear()
    variants[key] = value
    return value


class _Typed:
    """One token type of an `_Ended`: its metric attributes and series, its span attribute, whether semconv has it."""

    __slots__ = ("attributes", "semconv", "series", "span_attribute")

    def __init__(self, attributes: dict[str, Any], series: CounterSeries, token_type: str) -> None:
        self.attributes = attributes
        self.series = series
        self.span_attribute = _SPAN_USAGE_ATTRIBUTES[token_type]
        self.semconv = token_type in names.SEMCONV_TOKEN_TYPES


class _Ended:
    """The attribute sets and counter series of calls of one kind that ended with one response model."""

    __slots__ = ("_kind", "attributes", "cost", "outcomes", "tools", "typed")

    def __init__(self, kind: _CallKind, attributes: dict[str, Any]) -> None:
        self._kind = kind
        self.attributes = attributes
        self.typed: list[_Typed | None] = [None] * len(TOKEN_TYPES)
        """Per token type, in `TOKEN_TYPES` order (as `TokenUsage.as_tuple` gives the counts), made when first seen."""
        self.outcomes: dict[str | None, tuple[dict[str, Any], CounterSeries]] = {}
        self.tools: dict[str, CounterSeries] = {}
        self.cost: CounterSeries | None = None

    def typed_usage(self, usage: TokenUsage) -> list[tuple[_Typed, int]]:
        """(token type's attributes and series, count) for every type the usage knows."""
        typed = self.typed
        found = []
        for index, count in enumerate(usage.as_tuple()):
            if count is not None:
                entry = typed[index]
                if entry is None:
                    entry = typed[index] = self._typed(TOKEN_TYPES[index])
                found.append((entry, count))
        return found

    def _typed(self, token_type: str) -> _Typed:
        attributes = {**self.attributes, names.GEN_AI_TOKEN_TYPE: token_type}
        return _Typed(attributes, self._kind.instruments.usage_tokens.series(attributes), token_type)

    def outcome_for(self, error_type: str | None) -> tuple[dict[str, Any], CounterSeries]:
        found = self.outcomes.get(error_type)
        if found is None:
            attributes = self.attributes
            if error_type is not None:
                attributes = {**attributes, names.ERROR_TYPE: error_type}
            found = _cache(self.outcomes, error_type, (attributes, self._kind.instruments.requests.series(attributes)))
        return found

    def tool_for(self, tool: str) -> CounterSeries:
        found = self.tools.get(tool)
        if found is None:
            attributes = {**self.attributes, names.TOKENRATE_SERVER_TOOL: tool}
            found = _cache(self.tools, tool, self._kind.instruments.server_tool_requests.series(attributes))
        return found

    def cost_series(self) -> CounterSeries:
        found = self.cost
        if found is None:
            found = self.cost = self._kind.instruments.cost.series(self.attributes)
        return found


class _CallKind:
    """One kind of call (its `CallInfo` and allow-listed attributes): attribute sets and series, built once."""

    __slots__ = (
        "attributes",
        "ended",
        "info",
        "instruments",
        "retried",
        "span_attributes",
        "span_name",
        "throttled",
        "windows",
    )

    def __init__(self, info: CallInfo, attributes: dict[str, Any], instruments: Instruments) -> None:
        self.info = info
        self.instruments = instruments
        self.attributes = attributes
        """Metric attributes shared by every instrument for this kind of call; never mutated."""
        self.span_name = f"{info.operation} {info.request_model}" if info.request_model else info.operation
        self.span_attributes = {**attributes, names.GEN_AI_REQUEST_STREAM: info.stream}
        self.ended: dict[str | None, _Ended] = {}
        self.retried: dict[tuple[str, int | None], tuple[dict[str, Any], CounterSeries]] = {}
        self.throttled: dict[tuple[int | None, bool], tuple[dict[str, Any], CounterSeries]] = {}
        self.windows: dict[str, tuple[GaugeSeries, GaugeSeries, GaugeSeries]] = {}

    def ended_for(self, response_model: str | None) -> _Ended:
        found = self.ended.get(response_model)
        if found is None:
            attributes = self.attributes
            if response_model:
                attributes = {**attributes, names.GEN_AI_RESPONSE_MODEL: response_model}
            found = _cache(self.ended, response_model, _Ended(self, attributes))
        return found

    def retry_for(self, reason: str, status_code: int | None) -> tuple[dict[str, Any], CounterSeries]:
        found = self.retried.get((reason, status_code))
        if found is None:
            attributes = {**self.attributes, names.TOKENRATE_RETRY_REASON: reason}
            if status_code is not None:
                attributes[names.HTTP_RESPONSE_STATUS_CODE] = status_code
            found = _cache(
                self.retried, (reason, status_code), (attributes, self.instruments.retries.series(attributes))
            )
        return found

    def throttle_for(self, status_code: int | None, retried: bool) -> tuple[dict[str, Any], CounterSeries]:
        found = self.throttled.get((status_code, retried))
        if found is None:
            attributes = {
                **self.attributes,
                names.HTTP_RESPONSE_STATUS_CODE: status_code,
                names.TOKENRATE_RETRIED: retried,
            }
            series = self.instruments.throttle_events.series(attributes)
            found = _cache(self.throttled, (status_code, retried), (attributes, series))
        return found

    def window_for(self, window_kind: str) -> tuple[GaugeSeries, GaugeSeries, GaugeSeries]:
        """The (remaining, limit, reset) gauge series of one rate-limit window of this provider and model."""
        found = self.windows.get(window_kind)
        if found is None:
            info, inst = self.info, self.instruments
            attributes: dict[str, Any] = {names.GEN_AI_PROVIDER_NAME: info.provider}
            if info.request_model:
                attributes[names.GEN_AI_REQUEST_MODEL] = info.request_model
            if info.server_address:
                attributes[names.SERVER_ADDRESS] = info.server_address
            attributes[names.TOKENRATE_RATELIMIT_KIND] = window_kind
            series = (
                inst.ratelimit_remaining.series(attributes),
                inst.ratelimit_limit.series(attributes),
                inst.ratelimit_reset.series(attributes),
            )
            found = _cache(self.windows, window_kind, series)
        return found


class _CallTelemetry:
    """Per-call state: the span (``None`` when the SDK's own span is kept) and the call's kind."""

    __slots__ = ("kind", "span")

    def __init__(self, span: trace.Span | None, kind: _CallKind) -> None:
        self.span = span
        self.kind = kind

    @property
    def attributes(self) -> dict[str, Any]:
        """The call's base metric attributes."""
        return self.kind.attributes


_registry_lock = threading.Lock()
_instruments_by_provider: weakref.WeakKeyDictionary[Any, Instruments] = weakref.WeakKeyDictionary()
_unweakrefable_providers: dict[int, tuple[Any, Instruments]] = {}
_first_global: tuple[Any, Instruments] | None = None
"""The global meter provider when a sink first used it, and its instruments: if that was the API's proxy, its
instruments now forward to the provider set since, which must not get a second set."""


def instruments_for(meter_provider: MeterProvider | None) -> Instruments:
    """The instruments of ``meter_provider`` (the global one when ``None``), created once per provider.

    Every sink on a provider shares them: counters kept in-process must be registered once (the OTel SDK keeps
    only the first callback of a name) and keep counting across re-instrumentation, as the SDK's would.
    """
    global _first_global
    current_global = get_meter_provider()
    provider = meter_provider if meter_provider is not None else current_global
    with _registry_lock:
        found = _lookup(provider)
        if found is None and _first_global is not None and provider is current_global:
            then_provider, then_instruments = _first_global
            if then_provider is not current_global:  # the proxy then: its instruments forward here now
                found = then_instruments
        if found is None:
            found = create_instruments(get_meter(SCOPE_NAME, __version__, provider))
        _remember(provider, found)
        if meter_provider is None and _first_global is None:
            _first_global = (provider, found)
    return found


def _lookup(provider: Any) -> Instruments | None:
    try:
        return _instruments_by_provider.get(provider)
    except TypeError:  # a provider that cannot be weakly referenced
        entry = _unweakrefable_providers.get(id(provider))
        return entry[1] if entry is not None and entry[0] is provider else None


def _remember(provider: Any, instruments: Instruments) -> None:
    try:
        _instruments_by_provider[provider] = instruments
    except TypeError:
        _unweakrefable_providers[id(provider)] = (provider, instruments)


class TelemetrySink:
    """Turns call life cycles into OTel metrics and spans. One per (tracer provider, meter provider)."""

    @classmethod
    def create(
        cls, tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
    ) -> TelemetrySink:
        """A sink on these providers (the global ones when ``None``); instruments are created once per provider."""
        tracer = get_tracer(SCOPE_NAME, __version__, tracer_provider)
        return cls(tracer, instruments_for(meter_provider))

    def __init__(self, tracer: trace.Tracer, instruments: Instruments) -> None:
        self._tracer = tracer
        self._instruments = instruments
        self._kinds: dict[Any, _CallKind] = {}
        self._cache_lock = threading.Lock()

    # -- Sink protocol ----------------------------------------------------------------------------------------

    def call_started(self, call: Any) -> _CallTelemetry:
        info: CallInfo = call.info
        call_attributes = call.attributes
        picked = metric_policy().pick(call_attributes) if call_attributes else ()
        kind = self._kind(info, picked)
        if call.native_span:
            return _CallTelemetry(None, kind)
        if call_attributes:
            span_attributes = {**kind.attributes, **call_attributes, names.GEN_AI_REQUEST_STREAM: info.stream}
        else:
            span_attributes = kind.span_attributes
        span = self._tracer.start_span(kind.span_name, kind=SpanKind.CLIENT, attributes=span_attributes)
        return _CallTelemetry(span, kind)

    def activate(self, token: _CallTelemetry) -> Callable[[], None] | None:
        if token.span is None:
            return None
        attached = otel_context.attach(trace.set_span_in_context(token.span))
        return lambda: otel_context.detach(attached)

    def retry(self, token: _CallTelemetry, retry: RetryRecord) -> None:
        inst = self._instruments
        kind = token.kind
        retry_attributes, retries = kind.retry_for(retry.reason, retry.status_code)
        throttle_attributes, throttles = kind.throttle_for(retry.status_code, True) if retry.throttled else (None, None)
        with inst.lock:
            retries.added += 1
            if throttles is not None:
                throttles.added += 1
        if retry.wait_s is not None:
            inst.retry_wait.record(retry.wait_s, retry_attributes)
            if throttle_attributes is not None:
                inst.throttle_wait.record(retry.wait_s, throttle_attributes)
        if retry.rate_limits:
            _set_rate_limits(kind, retry.rate_limits)
        # With the SDK's own span kept, the retry event goes on that span: it is current while the SDK retries.
        span = token.span if token.span is not None else trace.get_current_span()
        if span.is_recording():
            event: dict[str, Any] = {
                names.TOKENRATE_RETRY_ATTEMPT: retry.attempt,
                names.TOKENRATE_RETRY_REASON: retry.reason,
            }
            if retry.status_code is not None:
                event[names.HTTP_RESPONSE_STATUS_CODE] = retry.status_code
            if retry.wait_s is not None:
                event[names.TOKENRATE_RETRY_WAIT] = retry.wait_s
            if retry.rate_limits is not None and retry.rate_limits.retry_after_s is not None:
                event[names.TOKENRATE_RETRY_AFTER] = retry.rate_limits.retry_after_s
            span.add_event(names.RETRY_EVENT_NAME, event)

    def call_ended(self, token: _CallTelemetry, record: CallRecord) -> None:
        inst = self._instruments
        kind = token.kind
        ended = kind.ended_for(record.response_model)
        attributes = ended.attributes
        outcome_attributes, requests = ended.outcome_for(record.error_type)
        typed = ended.typed_usage(record.usage)
        cost = record.cost_usd
        cost_series = ended.cost_series() if cost is not None else None
        tools = [(ended.tool_for(tool), count) for tool, count in record.server_tool_requests.items()]
        final_throttle = (
            kind.throttle_for(record.status_code, False)[1] if record.status_code in THROTTLE_STATUS_CODES else None
        )

        with inst.lock:  # every counter of the call in one go
            requests.added += 1
            for typed_usage, count in typed:
                typed_usage.series.added += count
            if cost_series is not None:
                cost_series.added += cost  # type: ignore[operator]
            for series, count in tools:
                series.added += count
            if final_throttle is not None:
                final_throttle.added += 1

        inst.operation_duration.record(record.duration_s, outcome_attributes)
        if record.info.stream and record.time_to_first_chunk_s is not None:
            inst.time_to_first_chunk.record(record.time_to_first_chunk_s, attributes)
        for typed_usage, count in typed:
            if typed_usage.semconv:
                inst.token_usage.record(count, typed_usage.attributes)
        inst.retries_per_call.record(len(record.retries), attributes)
        if record.rate_limiter_wait_s > 0:
            inst.rate_limiter_wait.record(record.rate_limiter_wait_s, attributes)
        if record.rate_limits:
            _set_rate_limits(kind, record.rate_limits)
        if token.span is not None:
            _end_span(token.span, record, typed)

    # -- helpers ----------------------------------------------------------------------------------------------

    def _kind(self, info: CallInfo, picked: PickedAttributes = ()) -> _CallKind:
        """This kind of call with its allow-listed call attributes (``TOKENRATE_METRIC_ATTRIBUTES``, already capped
        by the cardinality guard); cached."""
        key = (info, picked) if picked else info
        cached = self._kinds.get(key)  # a dict read is atomic: no lock on the path every call takes
        if cached is not None:
            return cached
        attributes: dict[str, Any] = {
            names.GEN_AI_OPERATION_NAME: info.operation,
            names.GEN_AI_PROVIDER_NAME: info.provider,
        }
        if info.request_model:
            attributes[names.GEN_AI_REQUEST_MODEL] = info.request_model
        if info.server_address:
            attributes[names.SERVER_ADDRESS] = info.server_address
            if info.server_port is not None:
                attributes[names.SERVER_PORT] = info.server_port
        attributes.update(picked)
        kind = _CallKind(info, attributes, self._instruments)
        with self._cache_lock:
            if len(self._kinds) >= _MAX_CACHED_ATTRIBUTE_SETS:
                self._kinds = {}  # bounded: starts over (the series live on in the instruments' stores)
            self._kinds[key] = kind
        return kind


def _set_rate_limits(kind: _CallKind, limits: RateLimits) -> None:
    """The rate-limit gauges: the last value each window reported (one attribute store each, no lock)."""
    for window in limits.windows:
        remaining, limit, reset = kind.window_for(window.kind)
        if window.remaining is not None:
            remaining.value = window.remaining
        if window.limit is not None:
            limit.value = window.limit
        if window.reset_s is not None:
            reset.value = window.reset_s


_WINDOW_SPAN_ATTRIBUTES: dict[str, tuple[str, str, str]] = {}
_TOOL_SPAN_ATTRIBUTES: dict[str, str] = {}


def _window_span_attributes(window_kind: str) -> tuple[str, str, str]:
    """The (limit, remaining, reset) span attribute names of a rate-limit window."""
    found = _WINDOW_SPAN_ATTRIBUTES.get(window_kind)
    if found is None:
        prefix = f"tokenrate.ratelimit.{window_kind}"
        found = (f"{prefix}.limit", f"{prefix}.remaining", f"{prefix}.reset")
        if len(_WINDOW_SPAN_ATTRIBUTES) < _MAX_VARIANTS:
            _WINDOW_SPAN_ATTRIBUTES[window_kind] = found
    return found


def _tool_span_attribute(tool: str) -> str:
    found = _TOOL_SPAN_ATTRIBUTES.get(tool)
    if found is None:
        found = f"tokenrate.usage.server_tool_requests.{tool}"
        if len(_TOOL_SPAN_ATTRIBUTES) < _MAX_VARIANTS:
            _TOOL_SPAN_ATTRIBUTES[tool] = found
    return found


def _end_span(span: trace.Span, record: CallRecord, typed: list[tuple[_Typed, int]]) -> None:
    if not span.is_recording():
        span.end()
        return
    attributes: dict[str, Any] = {}
    if record.response_model:
        attributes[names.GEN_AI_RESPONSE_MODEL] = record.response_model
    for typed_usage, count in typed:
        attributes[typed_usage.span_attribute] = count
    if record.time_to_first_chunk_s is not None:
        attributes[names.GEN_AI_RESPONSE_TTFC] = record.time_to_first_chunk_s
    if record.retries:
        attributes[names.HTTP_REQUEST_RESEND_COUNT] = len(record.retries)
    throttle_events = record.throttle_events
    if throttle_events:
        attributes[names.TOKENRATE_THROTTLE_EVENTS] = throttle_events
        attributes[names.TOKENRATE_THROTTLE_WAIT] = record.throttle_wait_s
    if record.rate_limiter_wait_s > 0:
        attributes[names.TOKENRATE_RATE_LIMITER_WAIT] = record.rate_limiter_wait_s
    if record.status_code is not None:
        attributes[names.HTTP_RESPONSE_STATUS_CODE] = record.status_code
    if record.cost_usd is not None:
        attributes[names.TOKENRATE_USAGE_COST] = record.cost_usd
    for tool, count in record.server_tool_requests.items():
        attributes[_tool_span_attribute(tool)] = count
    if record.rate_limits:
        for window in record.rate_limits.windows:
            limit_name, remaining_name, reset_name = _window_span_attributes(window.kind)
            if window.limit is not None:
                attributes[limit_name] = window.limit
            if window.remaining is not None:
                attributes[remaining_name] = window.remaining
            if window.reset_s is not None:
                attributes[reset_name] = window.reset_s
    if record.outcome not in ("ok", "error"):
        attributes[names.TOKENRATE_OUTCOME] = record.outcome
    if record.error_type is not None:
        attributes[names.ERROR_TYPE] = record.error_type
        span.set_attributes(attributes)
        span.set_status(Status(StatusCode.ERROR, record.error_type))
    else:
        span.set_attributes(attributes)
    span.end(end_time=_monotonic_to_epoch_ns(record.ended_at))


def _monotonic_to_epoch_ns(monotonic: float) -> int:
    return time.time_ns() - int((time.monotonic() - monotonic) * 1e9)

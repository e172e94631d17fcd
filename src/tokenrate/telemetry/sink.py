"""Where a record becomes telemetry: OTel metrics and one CLIENT span per call.

Uses only the OTel API (`get_tracer`/`get_meter` or the providers handed to ``instrument()``), so whatever the
user configured decides where it goes; with no SDK installed everything here is a cheap no-op.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import MeterProvider, get_meter
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider, get_tracer

from tokenrate import __version__
from tokenrate.attribution import PickedAttributes, metric_policy
from tokenrate.records import THROTTLE_STATUS_CODES, CallInfo, CallRecord, RateLimits, RetryRecord
from tokenrate.telemetry import instruments as names
from tokenrate.telemetry.instruments import Instruments, create_instruments

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


class _CallTelemetry:
    """Per-call state: the span (``None`` when the SDK's own span is kept) and the call's base metric attributes."""

    __slots__ = ("attributes", "span")

    def __init__(self, span: trace.Span | None, attributes: dict[str, Any]) -> None:
        self.span = span
        self.attributes = attributes


class TelemetrySink:
    """Turns call life cycles into OTel metrics and spans. One per (tracer provider, meter provider)."""

    @classmethod
    def create(
        cls, tracer_provider: TracerProvider | None = None, meter_provider: MeterProvider | None = None
    ) -> TelemetrySink:
        """A sink on these providers (the global ones when ``None``), its instruments created once, here."""
        tracer = get_tracer(SCOPE_NAME, __version__, tracer_provider)
        meter = get_meter(SCOPE_NAME, __version__, meter_provider)
        return cls(tracer, create_instruments(meter))

    def __init__(self, tracer: trace.Tracer, instruments: Instruments) -> None:
        self._tracer = tracer
        self._instruments = instruments
        self._attribute_cache: OrderedDict[Any, dict[str, Any]] = OrderedDict()
        self._cache_lock = threading.Lock()

    # -- Sink protocol ----------------------------------------------------------------------------------------

    def call_started(self, call: Any) -> _CallTelemetry:
        info: CallInfo = call.info
        call_attributes = call.attributes
        picked = metric_policy().pick(call_attributes) if call_attributes else ()
        attributes = self._base_attributes(info, picked)
        if call.native_span:
            return _CallTelemetry(None, attributes)
        span = self._tracer.start_span(
            f"{info.operation} {info.request_model}" if info.request_model else info.operation,
            kind=SpanKind.CLIENT,
            attributes={**attributes, **call_attributes} if call_attributes else attributes,
        )
        if span.is_recording():
            span.set_attribute(names.GEN_AI_REQUEST_STREAM, info.stream)
        return _CallTelemetry(span, attributes)

    def activate(self, token: _CallTelemetry) -> Callable[[], None] | None:
        if token.span is None:
            return None
        attached = otel_context.attach(trace.set_span_in_context(token.span))
        return lambda: otel_context.detach(attached)

    def retry(self, token: _CallTelemetry, retry: RetryRecord) -> None:
        inst = self._instruments
        retry_attributes = {**token.attributes, names.TOKENRATE_RETRY_REASON: retry.reason}
        if retry.status_code is not None:
            retry_attributes[names.HTTP_RESPONSE_STATUS_CODE] = retry.status_code
        inst.retries.add(1, retry_attributes)
        if retry.wait_s is not None:
            inst.retry_wait.record(retry.wait_s, retry_attributes)
        if retry.throttled:
            throttle_attributes = {
                **token.attributes,
                names.HTTP_RESPONSE_STATUS_CODE: retry.status_code,
                names.TOKENRATE_RETRIED: True,
            }
            inst.throttle_events.add(1, throttle_attributes)
            if retry.wait_s is not None:
                inst.throttle_wait.record(retry.wait_s, throttle_attributes)
        if retry.rate_limits:
            self._record_rate_limits(retry.info, retry.rate_limits)
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
        attributes = token.attributes
        if record.response_model:
            attributes = {**attributes, names.GEN_AI_RESPONSE_MODEL: record.response_model}
        outcome_attributes = attributes
        if record.error_type is not None:
            outcome_attributes = {**attributes, names.ERROR_TYPE: record.error_type}

        inst.requests.add(1, outcome_attributes)
        inst.operation_duration.record(record.duration_s, outcome_attributes)
        if record.info.stream and record.time_to_first_chunk_s is not None:
            inst.time_to_first_chunk.record(record.time_to_first_chunk_s, attributes)
        for token_type, count in record.usage.items():
            typed = {**attributes, names.GEN_AI_TOKEN_TYPE: token_type}
            inst.usage_tokens.add(count, typed)
            if token_type in names.SEMCONV_TOKEN_TYPES:
                inst.token_usage.record(count, typed)
        if record.cost_usd is not None:
            inst.cost.add(record.cost_usd, attributes)
        for tool, count in record.server_tool_requests.items():
            inst.server_tool_requests.add(count, {**attributes, names.TOKENRATE_SERVER_TOOL: tool})
        if record.status_code in THROTTLE_STATUS_CODES:
            inst.throttle_events.add(
                1,
                {
                    **token.attributes,
                    names.HTTP_RESPONSE_STATUS_CODE: record.status_code,
                    names.TOKENRATE_RETRIED: False,
                },
            )
        inst.retries_per_call.record(len(record.retries), attributes)
        if record.rate_limiter_wait_s > 0:
            inst.rate_limiter_wait.record(record.rate_limiter_wait_s, attributes)
        if record.rate_limits:
            self._record_rate_limits(record.info, record.rate_limits)
        if token.span is not None:
            self._end_span(token.span, record)

    # -- helpers ----------------------------------------------------------------------------------------------

    def _base_attributes(self, info: CallInfo, picked: PickedAttributes = ()) -> dict[str, Any]:
        """Metric attributes shared by every instrument for this kind of call and its allow-listed call attributes
        (``TOKENRATE_METRIC_ATTRIBUTES``, already capped by the cardinality guard); cached, never mutated."""
        key = (info, picked) if picked else info
        with self._cache_lock:
            cached = self._attribute_cache.get(key)
            if cached is not None:
                self._attribute_cache.move_to_end(key)
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
        with self._cache_lock:
            self._attribute_cache[key] = attributes
            if len(self._attribute_cache) > _MAX_CACHED_ATTRIBUTE_SETS:
                self._attribute_cache.popitem(last=False)
        return attributes

    def _record_rate_limits(self, info: CallInfo, limits: RateLimits) -> None:
        inst = self._instruments
        base: dict[str, Any] = {names.GEN_AI_PROVIDER_NAME: info.provider}
        if info.request_model:
            base[names.GEN_AI_REQUEST_MODEL] = info.request_model
        if info.server_address:
            base[names.SERVER_ADDRESS] = info.server_address
        for window in limits.windows:
            attributes = {**base, names.TOKENRATE_RATELIMIT_KIND: window.kind}
            if window.remaining is not None:
                inst.ratelimit_remaining.set(window.remaining, attributes)  # type: ignore[attr-defined]
            if window.limit is not None:
                inst.ratelimit_limit.set(window.limit, attributes)  # type: ignore[attr-defined]
            if window.reset_s is not None:
                inst.ratelimit_reset.set(window.reset_s, attributes)  # type: ignore[attr-defined]

    @staticmethod
    def _end_span(span: trace.Span, record: CallRecord) -> None:
        if not span.is_recording():
            span.end()
            return
        attributes: dict[str, Any] = {}
        if record.response_model:
            attributes[names.GEN_AI_RESPONSE_MODEL] = record.response_model
        for token_type, count in record.usage.items():
            attributes[_SPAN_USAGE_ATTRIBUTES[token_type]] = count
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
            attributes[f"tokenrate.usage.server_tool_requests.{tool}"] = count
        if record.rate_limits:
            for window in record.rate_limits.windows:
                prefix = f"tokenrate.ratelimit.{window.kind}"
                if window.limit is not None:
                    attributes[f"{prefix}.limit"] = window.limit
                if window.remaining is not None:
                    attributes[f"{prefix}.remaining"] = window.remaining
                if window.reset_s is not None:
                    attributes[f"{prefix}.reset"] = window.reset_s
        if record.outcome not in ("ok", "error"):
            attributes[names.TOKENRATE_OUTCOME] = record.outcome
        span.set_attributes(attributes)
        if record.error_type is not None:
            span.set_attribute(names.ERROR_TYPE, record.error_type)
            span.set_status(Status(StatusCode.ERROR, record.error_type))
        span.end(end_time=_monotonic_to_epoch_ns(record.ended_at))


def _monotonic_to_epoch_ns(monotonic: float) -> int:
    return time.time_ns() - int((time.monotonic() - monotonic) * 1e9)

"""The AWS Bedrock adapter: boto3's ``bedrock-runtime`` calls, recorded inside botocore.

Calls are the four model operations, ``Converse``, ``ConverseStream``, ``InvokeModel`` and
``InvokeModelWithResponseStream``; every other operation of every other botocore client passes straight through
(one dictionary miss on the operation name).

Token arithmetic (as in Anthropic's own API, Bedrock reports the *uncached* input apart from its cache parts):

=============  ======================================================================================
tokenrate      Bedrock
=============  ======================================================================================
input          ``inputTokens + cacheReadInputTokens + cacheWriteInputTokens`` (Converse ``usage``,
               ConverseStream ``metadata.usage``); InvokeModel's ``x-amzn-bedrock-input-token-count`` plus
               the ``-cache-read-`` / ``-cache-write-input-token-count`` headers; InvokeModelWithResponseStream's
               ``amazon-bedrock-invocationMetrics`` (``inputTokenCount`` + the cache counts)
output         ``outputTokens`` / ``-output-token-count`` / ``outputTokenCount``
cache_read     ``cacheReadInputTokens`` / ``-cache-read-input-token-count`` / ``cacheReadInputTokenCount``
cache_write    ``cacheWriteInputTokens`` / ``-cache-write-input-token-count`` / ``cacheWriteInputTokenCount``
reasoning      unknown (Bedrock does not split it out; it is part of output)
tool_use       unknown
=============  ======================================================================================

Without the InvokeModel headers (a proxy that drops them), the model's own body is read as the user reads it:
Anthropic-on-Bedrock ``usage`` (see `tokenrate.providers.anthropic`); a streamed Anthropic answer without
invocation metrics falls back to its ``message_start`` / ``message_delta`` usage in the same way.

Hooks (botocore's call path is in ``../shared/research/SDK_INTERNALS_MORE.md``; contract tests pin each one):

* ``BaseClient._make_api_call``: one logical call (retries included). A stream operation's result keeps the
  SDK's ``EventStream`` behind a transparent proxy that observes its events: the call ends when the stream is
  exhausted, raises (a mid-stream exception frame: a throttle event when it is ``throttlingException``; botocore
  never retries it), is ``close()``-d, or is garbage-collected (abandoned, at its last event).
* ``Endpoint._needs_retry``: a failed attempt; the retry mode's own delay function reports the exact seconds
  botocore is about to sleep (``RetryPolicy.compute_retry_delay`` in the standard and adaptive modes,
  ``retryhandler.RetryHandler.__call__`` in legacy mode), recorded before the sleep. botocore's retries stay as
  configured.
* ``TokenBucket.acquire``: in adaptive mode, the client-side rate limiter blocks sends (first attempts too) after a
  throttle; the time it held each request is the call's ``rate_limiter_wait_s``, not a retry.
* ``Endpoint.prepare_request``: each attempt's request, already signed, carries tokenrate's span as its trace
  context (``traceparent`` by the global propagator; botocore has no tracing of its own). Written after SigV4
  signing, where the OTel botocore instrumentation writes its X-Ray header: proxies rewrite trace headers hop by
  hop, so they must stay out of the signature (recent botocore, 1.44 here, never signs ``traceparent``,
  ``tracestate`` or ``baggage``; the oldest supported, 1.37.24, signs every header present when it signs). A
  trace header something else already wrote is left as it is.

``gen_ai.provider.name`` is ``aws.bedrock``; the request model is the ``modelId`` as passed (a foundation model, an
inference-profile id or ARN: genai-prices resolves those prefixes for cost); ``server.address`` is the endpoint's
host. Bedrock sends no rate-limit headers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import wrapt

from tokenrate._safety import report
from tokenrate.provider_numbers import InvalidProviderValue, count, usage_reader
from tokenrate.providers._lifecycle import (
    AdapterState,
    CallHooks,
    StreamObserver,
    abandon,
    attempt_failed,
    discard_retry,
    observe_sync,
    record_retry,
    server_of,
    watch,
)
from tokenrate.providers._patching import Hook
from tokenrate.providers._propagation import add_if_absent, inject_trace_context
from tokenrate.providers.anthropic import message_usage
from tokenrate.recording import ActiveCall, current_call
from tokenrate.records import CallInfo, TokenUsage, network_error_kind

PROVIDER = "aws.bedrock"
SERVICE = "bedrock-runtime"

CONVERSE = "Converse"
CONVERSE_STREAM = "ConverseStream"
INVOKE_MODEL = "InvokeModel"
INVOKE_MODEL_STREAM = "InvokeModelWithResponseStream"

STREAM_KEYS: dict[str, str | None] = {
    CONVERSE: None,
    CONVERSE_STREAM: "stream",
    INVOKE_MODEL: None,
    INVOKE_MODEL_STREAM: "body",
}
"""The operations that are calls, and for stream operations the result key holding the ``EventStream``."""

_HEADER = "x-amzn-bedrock-{}-token-count"
INPUT_HEADER = _HEADER.format("input")
OUTPUT_HEADER = _HEADER.format("output")
CACHE_READ_HEADER = _HEADER.format("cache-read-input")
CACHE_WRITE_HEADER = _HEADER.format("cache-write-input")
INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"
_METRICS_MARK = INVOCATION_METRICS.encode()
THROTTLING_STREAM_ERROR = "throttlingException"
MAX_BODY_OBSERVED = 4 * 1024 * 1024
"""Bytes of an InvokeModel body kept to read its usage when the headers are missing (a larger one is not read)."""


# -- usage readers ---------------------------------------------------------------------------------------------


def _bedrock_usage(
    uncached: int | None, output: int | None, cache_read: int | None, cache_write: int | None
) -> TokenUsage | None:
    """Bedrock's split counts as tokenrate's: input is the uncached part plus both cache parts."""
    if uncached is None and cache_read is None and cache_write is None:
        return None if output is None else TokenUsage(output=output)
    total_input = (uncached or 0) + (cache_read or 0) + (cache_write or 0)
    return TokenUsage(input=total_input, output=output, cache_read=cache_read, cache_write=cache_write)


CONVERSE_FIELDS = ("inputTokens", "outputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
METRICS_FIELDS = ("inputTokenCount", "outputTokenCount", "cacheReadInputTokenCount", "cacheWriteInputTokenCount")
"""(uncached input, output, cache read, cache write) as Converse's ``usage`` and the invocation metrics name them."""


def _usage_block(block: Any, fields: tuple[str, str, str, str]) -> TokenUsage | None:
    if not isinstance(block, Mapping):
        return None
    uncached, output, cache_read, cache_write = fields
    return _bedrock_usage(
        count(block.get(uncached), uncached),
        count(block.get(output), output),
        count(block.get(cache_read), cache_read),
        count(block.get(cache_write), cache_write),
    )


@usage_reader("bedrock Converse usage")
def converse_usage(usage: Any) -> TokenUsage | None:
    """Converse ``usage`` / ConverseStream ``metadata.usage`` (``TokenUsage``)."""
    return _usage_block(usage, CONVERSE_FIELDS)


@usage_reader("bedrock InvokeModel usage headers")
def header_usage(headers: Mapping[str, str]) -> TokenUsage | None:
    """InvokeModel's ``x-amzn-bedrock-*-token-count`` headers (botocore lower-cases header names)."""
    return _bedrock_usage(
        _header_count(headers, INPUT_HEADER),
        _header_count(headers, OUTPUT_HEADER),
        _header_count(headers, CACHE_READ_HEADER),
        _header_count(headers, CACHE_WRITE_HEADER),
    )


def _header_count(headers: Mapping[str, str], name: str) -> int | None:
    raw = headers.get(name)
    if raw is None:
        return None
    text = raw.strip() if isinstance(raw, str) else ""
    if not text.isascii() or not text.isdigit() or len(text) > 20:
        raise InvalidProviderValue(name, raw)
    return count(int(text), name)


@usage_reader("bedrock invocation metrics")
def invocation_metrics_usage(metrics: Any) -> TokenUsage | None:
    """``amazon-bedrock-invocationMetrics`` of InvokeModelWithResponseStream's last chunk."""
    return _usage_block(metrics, METRICS_FIELDS)


def operation_name(model_id: Any, operation: str) -> str:
    """Semconv ``gen_ai.operation.name``: the Converse API is chat; InvokeModel is chat, or embeddings for an
    embedding model (Titan / Cohere / Nova ``...embed...`` ids)."""
    if operation.startswith("Invoke") and isinstance(model_id, str) and "embed" in model_id.lower():
        return "embeddings"
    return "chat"


# -- per-call state ----------------------------------------------------------------------------------------------


class BedrockState(AdapterState):
    """One Bedrock call's bookkeeping: its client (to tell its retries from a nested call's) and the operation."""

    __slots__ = ("client", "deciding", "operation")

    def __init__(self, client: Any, operation: str) -> None:
        super().__init__()
        self.client = client
        self.operation = operation
        self.deciding = False
        """botocore is deciding whether to retry this call's failed attempt (inside ``Endpoint._needs_retry``)."""


_infos: dict[tuple[str, str, str | None], CallInfo] = {}
_MAX_INFOS = 256
"""`CallInfo` per (endpoint, operation, model): the same few for a whole session; bounded, starts over when full."""


def _call_info(endpoint_url: str, operation: str, model: str | None) -> CallInfo:
    server = server_of(endpoint_url)
    return CallInfo(
        provider=PROVIDER,
        operation=operation_name(model, operation),
        request_model=model,
        server_address=server.address,
        server_port=server.port,
        stream=STREAM_KEYS[operation] is not None,
    )


# -- the hooks -----------------------------------------------------------------------------------------------------


class BedrockHooks(CallHooks):
    """The botocore hook functions, bound to one pipeline."""

    sdk = "botocore"

    def hooks(self) -> list[Hook]:
        return [
            Hook(
                "botocore.client",
                "BaseClient._make_api_call",
                self._make_api_call,
                "calls",
                ("operation_name", "api_params"),
            ),
            Hook(
                "botocore.endpoint",
                "Endpoint._needs_retry",
                self._needs_retry,
                "retries/throttling",
                ("attempts", "operation_model", "request_dict", "response", "caught_exception"),
            ),
            Hook(
                "botocore.retries.standard",
                "RetryPolicy.compute_retry_delay",
                self._retry_delay,
                "exact retry waits (standard and adaptive retry modes)",
                ("context",),
            ),
            Hook(
                "botocore.retryhandler",
                "RetryHandler.__call__",
                self._retry_delay,
                "exact retry waits (legacy retry mode)",
                ("attempts", "response", "caught_exception"),
            ),
            Hook(
                "botocore.retries.bucket",
                "TokenBucket.acquire",
                self._acquire,
                "client-side rate limiter waits (adaptive retry mode)",
                ("amount", "block"),
            ),
            Hook(
                "botocore.endpoint",
                "Endpoint.prepare_request",
                self._prepare_request,
                "trace context (traceparent) of tokenrate's span on each attempt, after signing",
                ("request",),
            ),
        ]

    # -- the call ---------------------------------------------------------------------------------------------

    def _make_api_call(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        operation = args[0] if args else kwargs.get("operation_name")
        if operation not in STREAM_KEYS or _service(instance) != SERVICE:
            if current_call.get() is None:
                return wrapped(*args, **kwargs)
            return _outside_any_call(wrapped, args, kwargs)
        call = self.open(self._info(instance, operation, args, kwargs), BedrockState(instance, operation))
        return self.run(call, wrapped, args, kwargs)

    def _info(self, client: Any, operation: str, args: tuple, kwargs: dict) -> CallInfo | None:
        try:
            params = args[1] if len(args) > 1 else kwargs.get("api_params")
            model = params.get("modelId") if isinstance(params, Mapping) else None
            endpoint_url = client.meta.endpoint_url
            key = (endpoint_url, operation, model if isinstance(model, str) else None)
            info = _infos.get(key)
            if info is None:
                info = _call_info(*key)
                if len(_infos) >= _MAX_INFOS:
                    _infos.clear()
                _infos[key] = info
            return info
        except Exception as exc:
            report("botocore call start", exc)
            return None

    def read_result(self, call: ActiveCall, result: Any) -> bool:
        state: BedrockState = call.adapter_state
        metadata = result.get("ResponseMetadata") or {}
        status = metadata.get("HTTPStatusCode")
        if isinstance(status, int):
            call.status_code = status
        operation = state.operation
        if operation == CONVERSE:
            call.usage = converse_usage(result.get("usage")) or call.usage
            return True
        if operation == INVOKE_MODEL:
            usage = header_usage(metadata.get("HTTPHeaders") or {})
            if usage is not None:
                call.usage = usage
                return True
            return not _observe_body(call, result)
        key = STREAM_KEYS[operation]
        stream = result.get(key)
        if stream is None:
            return True
        observer: EventStreamObserver = (
            ConverseStreamObserver(call) if operation == CONVERSE_STREAM else InvokeStreamObserver(call)
        )
        proxy = ObservedEventStream(stream, observer)
        watch(proxy, observer.abandoned)
        result[key] = proxy
        return False

    def read_error(self, call: ActiveCall, error: BaseException) -> None:
        response = getattr(error, "response", None)
        if isinstance(response, Mapping):
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            if isinstance(status, int):
                call.status_code = status

    def _prepare_request(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = self.current()
        if call is not None:
            _propagate_trace_context(call, instance, args[0] if args else kwargs.get("request"))
        return wrapped(*args, **kwargs)

    # -- retries ----------------------------------------------------------------------------------------------

    def _needs_retry(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = self.current()
        if call is None or not _attempt_failed(call, instance, args, kwargs):
            return wrapped(*args, **kwargs)
        state: BedrockState = call.adapter_state
        state.deciding = True
        retried = False
        try:
            retried = wrapped(*args, **kwargs)
            return retried
        finally:
            state.deciding = False
            _decided(call, bool(retried))

    def _retry_delay(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        delay = wrapped(*args, **kwargs)
        if delay is None or delay is False:
            return delay
        call = self.current()
        if call is not None and call.adapter_state.deciding:
            try:
                record_retry(call, wait_s=float(delay))
            except Exception as exc:
                report("botocore retry wait", exc)
        return delay

    def _acquire(self, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = self.current()
        if call is None:
            return wrapped(*args, **kwargs)
        began = time.monotonic()
        try:
            return wrapped(*args, **kwargs)
        finally:
            try:
                call.add_rate_limiter_wait(time.monotonic() - began)
            except Exception as exc:
                report("botocore rate limiter wait", exc)


def _service(client: Any) -> str | None:
    try:
        return client.meta.service_model.service_name
    except Exception:
        return None


def _outside_any_call(wrapped: Callable, args: tuple, kwargs: dict) -> Any:
    """Run another botocore call made inside a recorded call (an STS credential refresh...) as its own thing:
    its retries and rate-limiter waits must not be counted for the enclosing call."""
    token = current_call.set(None)
    try:
        return wrapped(*args, **kwargs)
    finally:
        current_call.reset(token)


def _propagate_trace_context(call: ActiveCall, endpoint: Any, request: Any) -> None:
    """Write tokenrate's span into a signed attempt of the call's own client (not a credential refresh's)."""
    try:
        if call.adapter_state.client._endpoint is endpoint:
            inject_trace_context(request.headers, add_if_absent)
    except Exception as exc:
        report("botocore trace context", exc)


def _attempt_failed(call: ActiveCall, endpoint: Any, args: tuple, kwargs: dict) -> bool:
    """Note a failed attempt of the call's own client; False for a success or another client's request (a
    credential refresh inside the call, say)."""
    try:
        if call.adapter_state.client._endpoint is not endpoint:
            return False
        failed = _failed_attempt(args, kwargs)
        if failed is None:
            return False
        status, error = failed
        error_kind = network_error_kind(error) if status is None else None
        attempt_failed(call, status=status, error_kind=error_kind, rate_limits=None, error=error)
        return True
    except Exception as exc:
        report("botocore retry", exc)
        return False


def _decided(call: ActiveCall, retried: bool) -> None:
    """botocore decided: a retry is recorded (by the delay hook before the sleep; if that hook did not fire, with
    the time measured since the attempt failed), a final failure is not a retry."""
    try:
        if retried:
            record_retry(call)
        else:
            discard_retry(call)
    except Exception as exc:
        report("botocore retry", exc)


def _failed_attempt(args: tuple, kwargs: dict) -> tuple[int | None, BaseException | None] | None:
    """(HTTP status, exception) of the attempt ``Endpoint._needs_retry`` is looking at; ``None`` if it succeeded."""
    response = args[3] if len(args) > 3 else kwargs.get("response")
    error = args[4] if len(args) > 4 else kwargs.get("caught_exception")
    status = None
    if response is not None:
        status = getattr(response[0], "status_code", None)
        if not isinstance(status, int):
            status = None
    if error is None and (status is None or status < 300):
        return None
    return status, error


# -- streams -------------------------------------------------------------------------------------------------------


class EventStreamObserver(StreamObserver):
    """A Bedrock event stream. Each ``for`` over botocore's ``EventStream`` is a new iterator over one shared
    event source, so leaving a loop early does not end the call: the stream's ``close()``, its exhaustion, an
    exception frame, or its collection (`abandoned`) does."""

    __slots__ = ()

    def dropped(self) -> None:
        """One loop over the stream was left early; a later loop may go on where it stopped."""

    def abandoned(self) -> None:
        """The stream object itself was collected before its end."""
        abandon(self.call)

    def failed(self, error: BaseException) -> None:
        """A mid-stream exception frame (``EventStreamError``): its code names the error; a throttling one is the
        429 botocore's model gives it (HTTP said 200 when the stream began), so it counts as a throttle event."""
        call = self.call
        code = _error_code(error)
        if call is not None and code is not None:
            if code == THROTTLING_STREAM_ERROR:
                call.status_code = 429
            self._end(error=error, error_type=code)
            return
        self._end(error=error)


def _error_code(error: BaseException) -> str | None:
    """The modeled stream error's name (``throttlingException``...), if it is a short identifier."""
    response = getattr(error, "response", None)
    code = (response.get("Error") or {}).get("Code") if isinstance(response, Mapping) else None
    if isinstance(code, str) and 0 < len(code) <= 64 and code.isascii() and code.isalnum():
        return code
    return None


class ConverseStreamObserver(EventStreamObserver):
    """ConverseStream events: usage in the ``metadata`` event, the last one."""

    __slots__ = ()

    def observe(self, item: Any) -> bool:
        metadata = item.get("metadata")
        if metadata is not None:
            self.complete = True
            usage = converse_usage(metadata.get("usage"))
            if usage is not None:
                self.call.usage = usage
        return True


class InvokeStreamObserver(EventStreamObserver):
    """InvokeModelWithResponseStream chunks: the model's own JSON, base64-decoded by botocore.

    Only chunks that can carry usage are parsed: the one with ``amazon-bedrock-invocationMetrics`` (the last),
    and for Anthropic models ``message_start`` (the response model, input side) and ``message_delta``
    (cumulative counts) as a fallback.
    """

    __slots__ = ("_anthropic_usage", "_from_metrics")

    def __init__(self, call: ActiveCall | None) -> None:
        super().__init__(call)
        self._anthropic_usage: dict[str, Any] = {}
        self._from_metrics = False

    def observe(self, item: Any) -> bool:
        chunk = item.get("chunk")
        data = chunk.get("bytes") if chunk is not None else None
        if not isinstance(data, bytes | bytearray):
            return True
        if _METRICS_MARK in data:
            self._read_metrics(data)
        elif not self._from_metrics and (b'"message_start"' in data or b'"message_delta"' in data):
            self._read_anthropic(data)
        return True

    def _read_metrics(self, data: bytes | bytearray) -> None:
        payload = json.loads(data)
        if not isinstance(payload, Mapping):
            return
        usage = invocation_metrics_usage(payload.get(INVOCATION_METRICS))
        self.complete = True
        if usage is not None:
            self.call.usage = usage
            self._from_metrics = True
        else:
            self._read_anthropic(data, payload)

    def _read_anthropic(self, data: bytes | bytearray, payload: Any = None) -> None:
        event = json.loads(data) if payload is None else payload
        if not isinstance(event, Mapping):
            return
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            if not isinstance(message, Mapping):
                return
            model = message.get("model")
            if isinstance(model, str) and len(model) <= 256:
                self.call.response_model = model
            usage = message.get("usage")
        elif kind == "message_delta":
            usage = event.get("usage")
        else:
            return
        if isinstance(usage, Mapping):
            self._anthropic_usage.update(usage)  # message_delta counts are cumulative: the last one wins
            tokens = message_usage({"usage": self._anthropic_usage})
            if tokens is not None:
                self.call.usage = tokens


class ObservedEventStream(wrapt.ObjectProxy):
    """botocore's ``EventStream`` as the user gets it (``isinstance`` still holds), its events observed."""

    def __init__(self, stream: Any, observer: EventStreamObserver) -> None:
        super().__init__(stream)
        self._self_observer = observer

    def __iter__(self) -> Any:
        return observe_sync(iter(self.__wrapped__), self._self_observer)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_observer.closed()


# -- an InvokeModel body without usage headers -------------------------------------------------------------------


def _observe_body(call: ActiveCall, result: Any) -> bool:
    """Observe the ``StreamingBody`` of an InvokeModel answer that came without usage headers; False if not."""
    body = result.get("body")
    if body is None or not callable(getattr(body, "read", None)):
        return False
    proxy = ObservedBody(body, call)
    watch(proxy, abandon, call)
    result["body"] = proxy
    return True


class ObservedBody(wrapt.ObjectProxy):
    """An InvokeModel ``StreamingBody`` read through: at its end the model's own usage is read from what the user
    read (Anthropic-on-Bedrock ``usage``). ``read``, iteration, ``iter_chunks``/``iter_lines``, ``close`` and
    ``with`` are observed; ``readinto``/``readlines`` pass through (the call then ends without usage at close)."""

    def __init__(self, body: Any, call: ActiveCall) -> None:
        super().__init__(body)
        self._self_call = call
        self._self_seen = bytearray()

    def read(self, amt: int | None = None) -> bytes:
        try:
            data = self.__wrapped__.read(amt)
        except BaseException as exc:
            self._self_end(error=exc)
            raise
        if data and len(self._self_seen) + len(data) <= MAX_BODY_OBSERVED:
            self._self_seen += data
        if amt is None or not data:
            self._self_end(complete=True)
        return data

    def iter_chunks(self, chunk_size: int = 1024) -> Any:
        while True:
            chunk = self.read(chunk_size)
            if not chunk:
                return
            yield chunk

    def iter_lines(self, chunk_size: int = 1024, keepends: bool = False) -> Any:
        return type(self.__wrapped__).iter_lines(self, chunk_size, keepends)

    def __iter__(self) -> Any:
        return self.iter_chunks()

    def __next__(self) -> bytes:
        chunk = self.read(1024)
        if chunk:
            return chunk
        raise StopIteration

    def __enter__(self) -> Any:
        return self.__wrapped__.__enter__()

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self.__wrapped__.__exit__(*exc_info)
        finally:
            self._self_end()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_end()

    def _self_end(self, *, complete: bool = False, error: BaseException | None = None) -> None:
        call = self._self_call
        if call.finished:
            return
        try:
            if complete:
                body = json.loads(bytes(self._self_seen)) if self._self_seen else None
                usage = message_usage(body) if isinstance(body, Mapping) else None
                if usage is not None:
                    call.usage = usage
        except (ValueError, TypeError):
            pass  # not JSON, or not a body with Anthropic usage: the usage stays unknown
        except Exception as exc:
            report("bedrock InvokeModel body", exc)
        try:
            if error is not None:
                call.finish(error=error)
            else:
                call.finish(outcome=None if complete else "closed")
        except Exception as exc:
            report("bedrock InvokeModel body end", exc)

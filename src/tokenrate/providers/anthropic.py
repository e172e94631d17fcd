"""The Anthropic adapter: which ``anthropic`` SDK requests are calls, and how to read their usage and headers.

Token arithmetic (Anthropic reports the *uncached* input separately from its cache parts):

=============  =====================================================================================
tokenrate      Anthropic ``Usage``
=============  =====================================================================================
input          ``input_tokens + cache_read_input_tokens + cache_creation_input_tokens``
output         ``output_tokens``
cache_read     ``cache_read_input_tokens``
cache_write    ``cache_creation_input_tokens``
reasoning      ``output_tokens_details.thinking_tokens`` (unknown when absent)
tool_use       unknown (Anthropic does not report it)
=============  =====================================================================================

``server_tool_use`` holds *request counts* (web searches, web fetches), billed per request: they become
``server_tool_requests``, never tokens.

Streams: ``message_start`` carries the input side and a provisional output count; every ``message_delta``
carries *cumulative* counts (the last one wins, never summed), so output is counted once.

Spans: the anthropic SDK makes its own span per call when a tracer provider is set. A trace should show one
span per call, so by default tokenrate's span (a superset: usage, throttling, rate limits, cost) replaces the
SDK's for the calls tokenrate records. ``TOKENRATE_ANTHROPIC_SPANS=native`` keeps the SDK's span instead:
tokenrate then adds no span, puts its retry events on the SDK's span, and still records all its metrics.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace

from tokenrate._env import setting
from tokenrate.provider_numbers import count as valid_count
from tokenrate.provider_numbers import usage_reader
from tokenrate.providers._lifecycle import StreamObserver
from tokenrate.providers._patching import Hook
from tokenrate.providers._readers import count, field, is_mapping
from tokenrate.providers._stainless import Endpoint, StainlessHooks, StainlessProvider
from tokenrate.ratelimits import RateLimitReader, parse_reset_time
from tokenrate.recording import ActiveCall, current_call
from tokenrate.records import RateLimits, TokenUsage

SPANS_ENV = "TOKENRATE_ANTHROPIC_SPANS"

_RATE_LIMIT_HEADERS = tuple(
    (
        kind.replace("-", "_"),
        f"anthropic-ratelimit-{kind}-limit",
        f"anthropic-ratelimit-{kind}-remaining",
        f"anthropic-ratelimit-{kind}-reset",
    )
    for kind in ("requests", "tokens", "input-tokens", "output-tokens")
)


@usage_reader("anthropic usage")
def _usage(usage: Any) -> TokenUsage | None:
    if usage is None:
        return None
    uncached = count(usage, "input_tokens")
    cache_read = count(usage, "cache_read_input_tokens")
    cache_write = count(usage, "cache_creation_input_tokens")
    return TokenUsage(
        input=None if uncached is None else uncached + (cache_read or 0) + (cache_write or 0),
        output=count(usage, "output_tokens"),
        cache_read=cache_read,
        cache_write=cache_write,
        reasoning=count(field(usage, "output_tokens_details"), "thinking_tokens"),
    )


def message_usage(result: Any) -> TokenUsage | None:
    """Usage of a ``Message`` (or its raw JSON)."""
    return _usage(field(result, "usage"))


@usage_reader("anthropic server tool requests")
def server_tool_requests(usage: Any) -> dict[str, int] | None:
    """``{"web_search": 2, ...}`` from ``server_tool_use`` (every ``*_requests`` count, zeros left out)."""
    server_tool_use = field(usage, "server_tool_use")
    if server_tool_use is None:
        return None
    fields = _items(server_tool_use)
    counts = {
        name.removesuffix("_requests"): valid_count(value, name) for name, value in fields if name.endswith("_requests")
    }
    return {name: n for name, n in counts.items() if n} or None


class MessageStreamState(StreamObserver):
    """Raw message stream events: input side from ``message_start``, cumulative totals from ``message_delta``."""

    __slots__ = ("_start_usage",)

    kind_field = "type"
    observed_kinds = frozenset({"message_start", "message_delta", "message_stop"})
    """The events that carry the model, usage or the end: content deltas, the bulk of a stream, are not read."""

    def __init__(self, call: ActiveCall) -> None:
        super().__init__(call)
        self._start_usage: Any = None

    def observe(self, item: Any) -> bool:
        kind = item.get("type") if is_mapping(item) else getattr(item, "type", None)
        if kind == "message_start":
            message = field(item, "message")
            model = field(message, "model")
            if isinstance(model, str):
                self.call.response_model = model
            self._start_usage = field(message, "usage")
            self._update(self._start_usage)
        elif kind == "message_delta":
            self._update(_merged(self._start_usage, field(item, "usage")))
        elif kind == "message_stop":
            self.complete = True
        return True

    def _update(self, usage: Any) -> None:
        tokens = _usage(usage)
        if tokens is not None:
            self.call.usage = tokens
        requests = server_tool_requests(usage)
        if requests:
            self.call.server_tool_requests = requests


def _merged(start: Any, delta: Any) -> dict[str, Any]:
    """The delta's cumulative counts over the start's, field by field (the delta may omit input fields)."""
    merged: dict[str, Any] = {}
    for source in (start, delta):
        if source is None:
            continue
        merged.update((name, value) for name, value in _items(source) if value is not None)
    return merged


def _items(obj: Any) -> list[tuple[str, Any]]:
    """The fields of a JSON object or an SDK model; none for anything else a server may put there (``0``)."""
    if isinstance(obj, Mapping):
        return list(obj.items())
    return list(getattr(obj, "__dict__", {}).items())


_MESSAGES = Endpoint("chat", message_usage, MessageStreamState)


class AnthropicProvider(StainlessProvider):
    package = "anthropic"

    def __init__(self) -> None:
        self.keep_native_spans = setting(SPANS_ENV) == "native"
        self._read_rate_limits = RateLimitReader(_RATE_LIMIT_HEADERS, parse_reset_time)

    def endpoint(self, method: str, path: str, body: Any) -> Endpoint | None:
        if method.lower() != "post":
            return None
        # /v1/messages (also the beta variant, ?beta=true); count_tokens and batches are not generations.
        return _MESSAGES if path.split("?", 1)[0].rstrip("/") == "/v1/messages" else None

    def provider_name(self, client: Any) -> str:
        # Recent SDKs name their own semconv provider per client class (anthropic, aws.bedrock, gcp.vertex_ai);
        # older ones do not, and their client classes say it instead.
        name = getattr(type(client), "_gen_ai_provider_name", None)
        if isinstance(name, str) and name:
            return name
        class_name = type(client).__name__
        if "Vertex" in class_name:
            return "gcp.vertex_ai"
        if "Bedrock" in class_name:
            return "aws.bedrock"
        return "anthropic"

    def rate_limits(self, headers: Mapping[str, str]) -> RateLimits | None:
        return self._read_rate_limits(headers)

    def extras(self, call: ActiveCall, result: Any) -> None:
        requests = server_tool_requests(field(result, "usage"))
        if requests:
            call.server_tool_requests = requests

    def native_span(self, client: Any) -> bool:
        return self.keep_native_spans

    def propagates(self, client: Any) -> bool | None:
        """The SDK propagates the span of each call it traces. For a client that signs its requests (Bedrock,
        Vertex: their ``_prepare_request``) it keeps doing so with tokenrate's span (`_stand_in_for_native_span`): it
        writes the trace context after signing. Any other client's span, if the SDK traces the call, is handed to
        tokenrate (None: decided when the SDK asks for its span), which writes the same context the same way and
        spares the SDK's tracing of a span that would record nothing."""
        if self.keep_native_spans or _signs_requests(type(client)):
            return False
        return None

    def extra_hooks(self, hooks: StainlessHooks) -> list[Hook]:
        if self.keep_native_spans or importlib.util.find_spec("anthropic._tracing") is None:
            return []  # kept on purpose, or an SDK release without native spans (before 1.14): nothing to replace
        return [
            Hook(
                "anthropic._base_client",
                "start_api_call_span",
                _stand_in_for_native_span,
                "one span per call (tokenrate's replaces the SDK's own, and is the one propagated)",
                ("tracer", "base_url", "options", "propagation"),
            )
        ]


def _stand_in_for_native_span(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """The SDK asks to start its span for a call tokenrate records: tokenrate's span takes its place.

    A client that signs its requests gets tokenrate's span as a non-recording view: the SDK then does with it
    exactly what it does with its own span: propagates its context on every attempt (``traceparent``, after the
    signing, as the client's ``propagation`` option says) and makes it current, so HTTP-client spans nest under
    tokenrate's. Whatever it records on it is dropped (a non-recording span), so the trace shows one span per call.
    Any other client gets no span (the SDK then traces nothing of the call), and tokenrate writes the trace context
    into each attempt itself if the client's ``propagation`` option says so. No valid span (tracing off): the SDK
    sends the call without one.
    """
    call = current_call.get()
    if call is None:
        return wrapped(*args, **kwargs)
    state = call.adapter_state
    if getattr(state, "propagate", False) is None:
        state.propagate = bool(kwargs.get("propagation", True))
        return None
    context = trace.get_current_span().get_span_context()
    return trace.NonRecordingSpan(context) if context.is_valid else None


_SIGNING: dict[type, bool] = {}


def _signs_requests(client_type: type) -> bool:
    """Whether the client changes its requests after they are built (its own ``_prepare_request``: a signature)."""
    known = _SIGNING.get(client_type)
    if known is None:
        from anthropic._base_client import AsyncAPIClient, SyncAPIClient

        prepare = getattr(client_type, "_prepare_request", None)
        known = prepare is not SyncAPIClient._prepare_request and prepare is not AsyncAPIClient._prepare_request
        if len(_SIGNING) < 64:
            _SIGNING[client_type] = known
    return known

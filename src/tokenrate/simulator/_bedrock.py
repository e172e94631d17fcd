"""Amazon Bedrock Runtime's wire protocol (REST-JSON, as boto3's ``bedrock-runtime`` client speaks it).

Routes (``botocore/data/bedrock-runtime/2023-09-30/service-2.json``): ``POST /model/{modelId}/converse``,
``/converse-stream``, ``/invoke`` and ``/invoke-with-response-stream``; the model id is URL-encoded in the path
(``...-v1%3A0``, an ARN's ``/`` as ``%2F``). SigV4 signatures are accepted, never checked.

Token arithmetic. Converse ``TokenUsage``: as in Anthropic's own API, ``inputTokens`` excludes the cache reads and
writes (``inputTokens = input - cache_read - cache_write``), ``cacheReadInputTokens`` / ``cacheWriteInputTokens``
are separate and ``totalTokens = input + output`` counts everything; ``outputTokens`` includes any reasoning
(Bedrock reports no split; nor tool-use prompt tokens). InvokeModel sends the same counts as headers
(``x-amzn-bedrock-input-token-count``, ``-output-token-count``, ``-cache-read-input-token-count``,
``-cache-write-input-token-count``) next to the model's own body; InvokeModelWithResponseStream puts them in the
last chunk's ``amazon-bedrock-invocationMetrics`` (``inputTokenCount``, ``outputTokenCount``,
``cacheReadInputTokenCount``, ``cacheWriteInputTokenCount``).

Model bodies (InvokeModel*): an Anthropic model (its id names ``anthropic.``, or the body has
``anthropic_version``) answers Anthropic Messages JSON and stream events, base64 in ``chunk.bytes`` (reusing
`tokenrate.simulator._anthropic`); any other model a Llama-style body (``generation``, ``prompt_token_count``,
``generation_token_count``, ``stop_reason``).

Errors: a JSON ``{"message": ...}`` body and the code in ``x-amzn-ErrorType`` (``ThrottlingException:<uri>``): 429
``ThrottlingException`` (no Retry-After: Bedrock sends none), 503 ``ServiceUnavailableException``, 500
``InternalServerException``, 400 ``ValidationException``; `Step.code` picks another, e.g. 429
``ModelNotReadyException``. Bedrock sends no rate-limit headers. A ``stream_error`` step ends a stream with an
event-stream exception frame (`tokenrate.simulator._eventstream`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Any
from urllib.parse import unquote

from tokenrate.simulator import _anthropic, _eventstream
from tokenrate.simulator._model import UsagePlan
from tokenrate.simulator._ratelimit import Window
from tokenrate.simulator._wire import Call, Reply, SSEEvent, count_items, drop_none, minus, spread

PROTOCOL = "bedrock"
SENDS_RETRY_AFTER = False
"""Bedrock's throttling answers carry no Retry-After; botocore computes its own backoff."""

_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<action>converse|converse-stream|invoke|invoke-with-response-stream)$")
ACTIONS: dict[str, str] = {
    "converse": "converse",
    "converse-stream": "converse_stream",
    "invoke": "invoke_model",
    "invoke-with-response-stream": "invoke_model_with_response_stream",
}
STREAM_ENDPOINTS = frozenset({"converse_stream", "invoke_model_with_response_stream"})
WORDS_PER_CHUNK = 4
"""Llama-style stream chunks carry a few words each."""
LATENCY_MS = 1
"""Latency figures the simulator reports (``metrics.latencyMs``, invocation latency): it answers at once."""
ERROR_NAMESPACE = "http://internal.amazon.com/coral/com.amazon.bedrock/"
INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"


def route(method: str, path: str) -> tuple[str, str | None] | None:
    match = _PATH.match(path)
    if match is None or method != "POST":
        return None
    return ACTIONS[match.group("action")], unquote(match.group("model"))


def is_stream(endpoint: str, body: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    return endpoint in STREAM_ENDPOINTS


def max_tokens(endpoint: str, body: Mapping[str, Any]) -> int | None:
    if endpoint.startswith("converse"):
        config = body.get("inferenceConfig")
        value = config.get("maxTokens") if isinstance(config, Mapping) else None
    else:  # the model's own field: Anthropic max_tokens, Llama max_gen_len
        value = body.get("max_tokens", body.get("max_gen_len"))
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def tool_results(endpoint: str, body: Mapping[str, Any]) -> int:
    """Converse ``toolResult`` content blocks (Anthropic bodies: ``tool_result`` blocks) over every message."""
    if not endpoint.startswith("converse"):
        return _anthropic.tool_results(endpoint, body)
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0
    return sum(
        count_items(message.get("content"), lambda block: "toolResult" in block)
        for message in messages
        if isinstance(message, Mapping)
    )


# -- usage arithmetic -------------------------------------------------------------------------------------------


def token_usage(plan: UsagePlan) -> dict[str, Any] | None:
    """Converse ``TokenUsage`` (see the module docstring for the arithmetic)."""
    data: dict[str, Any] = drop_none(
        {
            "inputTokens": minus(plan.input, plan.cache_read, plan.cache_write),
            "outputTokens": plan.output,
            "totalTokens": plan.total,
            "cacheReadInputTokens": plan.cache_read,
            "cacheWriteInputTokens": plan.cache_write,
        }
    )
    if plan.cache_write:
        data["cacheDetails"] = [{"ttl": "5m", "inputTokens": plan.cache_write}]
    return data or None


def token_count_headers(plan: UsagePlan) -> dict[str, str]:
    """InvokeModel's usage headers: the same split as Converse (input without the cache parts)."""
    counts = {
        "input": minus(plan.input, plan.cache_read, plan.cache_write),
        "output": plan.output,
        "cache-read-input": plan.cache_read,
        "cache-write-input": plan.cache_write,
    }
    headers = {f"x-amzn-bedrock-{name}-token-count": str(value) for name, value in counts.items() if value is not None}
    headers["x-amzn-bedrock-invocation-latency"] = str(LATENCY_MS)
    return headers


def invocation_metrics(plan: UsagePlan) -> dict[str, Any]:
    """``amazon-bedrock-invocationMetrics`` of an InvokeModelWithResponseStream's last chunk."""
    return drop_none(
        {
            "inputTokenCount": minus(plan.input, plan.cache_read, plan.cache_write),
            "outputTokenCount": plan.output,
            "invocationLatency": LATENCY_MS,
            "firstByteLatency": LATENCY_MS,
            "cacheReadInputTokenCount": plan.cache_read,
            "cacheWriteInputTokenCount": plan.cache_write,
        }
    )


# -- answers ----------------------------------------------------------------------------------------------------


def success(call: Call, *, with_usage_in_stream: bool = True) -> Reply:
    if call.endpoint == "converse":
        return Reply(200, json=_converse(call))
    if call.endpoint == "invoke_model":
        return Reply(200, headers=token_count_headers(call.plan), json=_invoke_body(call))
    return _event_stream(call, _frames(call))


def stream_error(call: Call, code: str, after_events: int) -> Reply:
    """A stream that fails after ``after_events`` events with an exception frame (HTTP status stays 200)."""
    frames = _frames(call)[:after_events]
    frames.append(SSEEvent(_eventstream.exception(code, f"{_message_for(code)} (simulated)")))
    return _event_stream(call, frames)


def stream_error_event() -> bytes:
    """What an `error_event` step sends in place of the next event: an exception frame (``EventStreamError``)."""
    code = "serviceUnavailableException"
    return _eventstream.exception(code, f"{_message_for(code)} (simulated)")


def _frames(call: Call) -> list[SSEEvent]:
    """A stream operation's framed events, each with the output tokens it stands for (the server paces by them)."""
    if call.endpoint == "converse_stream":
        return [SSEEvent(_eventstream.event(kind, payload), tokens) for kind, payload, tokens in _converse_events(call)]
    return [SSEEvent(_eventstream.event("chunk", payload), tokens) for payload, tokens in _invoke_chunks(call)]


def _event_stream(call: Call, frames: list[SSEEvent]) -> Reply:
    headers = {"x-amzn-bedrock-content-type": "application/json"} if call.endpoint.startswith("invoke") else {}
    return Reply(200, headers=headers, events=frames, content_type=_eventstream.CONTENT_TYPE)


def _stop_reason(call: Call) -> str:
    if call.tool is not None:
        return "tool_use"
    return "max_tokens" if call.truncated else "end_turn"


def _converse(call: Call) -> dict[str, Any]:
    if call.tool is not None:
        block: dict[str, Any] = {
            "toolUse": {"toolUseId": _tool_use_id(call), "name": call.tool.name, "input": dict(call.tool.arguments)}
        }
    else:
        block = {"text": call.text}
    data: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": [block]}},
        "stopReason": _stop_reason(call),
        "metrics": {"latencyMs": LATENCY_MS},
    }
    usage = token_usage(call.plan)
    if usage is not None:
        data["usage"] = usage
    return data


def _tool_use_id(call: Call) -> str:
    return f"tooluse_{call.request_id}"


def _converse_events(call: Call) -> list[tuple[str, dict[str, Any], float]]:
    """ConverseStream events as (event type, payload, output tokens it stands for)."""
    thinking = float(call.plan.reasoning or 0)
    events: list[tuple[str, dict[str, Any], float]] = [("messageStart", {"role": "assistant"}, thinking)]
    if call.tool is not None:
        start = {"toolUse": {"toolUseId": _tool_use_id(call), "name": call.tool.name}}
        events.append(("contentBlockStart", {"start": start, "contentBlockIndex": 0}, 0.0))
        deltas = [{"toolUse": {"input": piece}} for piece in call.tool.argument_pieces()]
    else:
        deltas = [{"text": piece} for piece in call.words]
    for delta, weight in zip(deltas, spread(call.answer_tokens, len(deltas)), strict=True):
        events.append(("contentBlockDelta", {"delta": delta, "contentBlockIndex": 0}, float(weight)))
    events.append(("contentBlockStop", {"contentBlockIndex": 0}, 0.0))
    events.append(("messageStop", {"stopReason": _stop_reason(call)}, 0.0))
    metadata: dict[str, Any] = {"metrics": {"latencyMs": LATENCY_MS}}
    usage = token_usage(call.plan)
    if usage is not None:
        metadata["usage"] = usage
    events.append(("metadata", metadata, 0.0))
    return events


def is_anthropic(call: Call) -> bool:
    body = call.body if isinstance(call.body, Mapping) else {}
    return "anthropic." in call.model.lower() or "anthropic_version" in body


def anthropic_model_name(model_id: str) -> str:
    """The name Claude gives itself in a body: ``us.anthropic.claude-3-5-haiku-20241022-v1:0`` → the part after
    ``anthropic.`` without the ``-v1:0`` version (an ARN's last path segment first)."""
    name = model_id.rsplit("/", 1)[-1]
    name = name.split("anthropic.", 1)[-1]
    return re.sub(r"-v\d+(?::\d+)*$", "", name)


def _as_anthropic(call: Call) -> Call:
    return replace(call, model=anthropic_model_name(call.model))


def _invoke_body(call: Call) -> dict[str, Any]:
    if is_anthropic(call):
        return _anthropic.message(_as_anthropic(call), done=True)
    return _llama_chunk(call, call.text, prompt=True, generated=call.plan.output, final=True)


def _llama_chunk(call: Call, text: str, *, prompt: bool, generated: int | None, final: bool) -> dict[str, Any]:
    return {
        "generation": text,
        "prompt_token_count": call.plan.input if prompt else None,
        "generation_token_count": generated,
        "stop_reason": ("length" if call.truncated else "stop") if final else None,
    }


def _invoke_chunks(call: Call) -> list[tuple[dict[str, Any], float]]:
    """InvokeModelWithResponseStream ``chunk`` payloads (``bytes``: the model's JSON, base64) and their tokens."""
    if is_anthropic(call):
        native = [
            (payload, tokens)
            for payload, tokens in _anthropic.stream_events(_as_anthropic(call))
            if payload["type"] != "ping"  # Bedrock forwards the model's events, without keep-alive pings
        ]
    else:
        groups = [call.words[i : i + WORDS_PER_CHUNK] for i in range(0, len(call.words), WORDS_PER_CHUNK)] or [[]]
        weights = spread(call.answer_tokens, len(groups))
        native, so_far = [], 0
        for i, (group, weight) in enumerate(zip(groups, weights, strict=True)):
            so_far += weight
            last = i == len(groups) - 1
            generated = call.plan.output if last else so_far
            chunk = _llama_chunk(call, "".join(group), prompt=i == 0, generated=generated, final=last)
            native.append((chunk, float(weight)))
    native[-1][0][INVOCATION_METRICS] = invocation_metrics(call.plan)
    return [({"bytes": base64.b64encode(json.dumps(payload).encode()).decode()}, w) for payload, w in native]


# -- errors and headers -----------------------------------------------------------------------------------------

ERROR_STATUS: dict[str, int] = {
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "ServiceUnavailableException": 503,
    "InternalServerException": 500,
    "ValidationException": 400,
    "ServiceQuotaExceededException": 400,
    "AccessDeniedException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
}
"""HTTP status of each modeled error (the shapes' ``error.httpStatusCode``)."""

_KIND_CODES = {
    "rate_limited": "ThrottlingException",
    "overloaded": "ServiceUnavailableException",
    "server_error": "InternalServerException",
    "bad_request": "ValidationException",
    "not_found": "UnknownOperationException",
}

_MESSAGES = {
    "throttlingexception": "Too many requests, please wait before trying again.",
    "modelnotreadyexception": "Model is not ready to serve inference requests. Try again.",
    "serviceunavailableexception": "Bedrock is unable to process your request.",
    "internalserverexception": "The server encountered an internal error.",
    "validationexception": "Malformed input request, please reformat your input and try again.",
    "unknownoperationexception": "Unknown path (simulated provider).",
}


def error_code(kind: str, status: int, code: str | None) -> str:
    """The error code sent for a step: its own ``code``, else the kind's (a 503 server error is unavailable)."""
    if code:
        return code
    if kind == "server_error" and status == 503:
        return "ServiceUnavailableException"
    return _KIND_CODES.get(kind, "InternalServerException")


def error_status(kind: str, status: int, code: str | None) -> int:
    """A scripted 5xx keeps its status; otherwise a known code's own status wins over the kind's."""
    if kind == "server_error" or not code:
        return status
    return ERROR_STATUS.get(code, status)


def _message_for(code: str) -> str:
    return _MESSAGES.get(code.lower(), f"{code}.")


def error(kind: str, status: int, *, code: str | None = None, **_: Any) -> dict[str, Any]:
    """The REST-JSON error body: just ``{"message": ...}`` (the code travels in ``x-amzn-ErrorType``)."""
    return {"message": f"{_message_for(error_code(kind, status, code))} (simulated)"}


def error_headers(kind: str, status: int, code: str | None) -> dict[str, str]:
    return {"x-amzn-ErrorType": f"{error_code(kind, status, code)}:{ERROR_NAMESPACE}"}


def limit_headers(windows: Mapping[str, Window], request_id: str) -> dict[str, str]:
    """Bedrock sends no rate-limit headers; only its request id."""
    return {"x-amzn-RequestId": f"{request_id}-0000-4000-8000-000000000000"}

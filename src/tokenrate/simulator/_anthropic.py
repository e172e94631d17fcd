"""Anthropic's wire protocol (``/v1/messages``, ``/v1/messages/count_tokens``; also Claude on Vertex AI:
``.../publishers/anthropic/models/{model}:rawPredict`` and ``:streamRawPredict``, the same bodies without
``model``, as ``anthropic.AnthropicVertex`` sends them).

Shapes follow ``anthropic`` 2.12: ``types/message.py``, ``types/usage.py``, ``types/message_delta_usage.py``,
``types/raw_message_*_event.py`` and the accumulation in ``lib/streaming/_messages.py`` (message_delta usage
counts are cumulative totals that overwrite the message_start ones).

Tool calls (a ``tool_call`` step): ``content`` is one ``tool_use {id, name, input}`` block (``types/tool_use_block.py``)
and ``stop_reason`` is ``"tool_use"``. Streamed, the block starts with an empty ``input`` and the arguments follow as
``input_json_delta`` pieces of JSON (an empty one first, as the API sends it), which the SDK's
``accumulate_event`` joins and parses with ``jiter`` in partial mode. Results come back as ``tool_result`` blocks
in a user message (`tool_results` counts them).
"""

from __future__ import annotations

import datetime as _dt
import re
import time
from collections.abc import Mapping
from typing import Any

from tokenrate.simulator._model import UsagePlan
from tokenrate.simulator._ratelimit import Window
from tokenrate.simulator._wire import Call, Reply, SSEEvent, count_items, drop_none, minus, spread, sse

PROTOCOL = "anthropic"
SENDS_RETRY_AFTER = True
"""Whether its 429/overloaded answers carry ``retry-after`` (and ``retry-after-ms`` when scripted)."""

ROUTES: dict[str, str] = {"/v1/messages": "messages", "/v1/messages/count_tokens": "count_tokens"}
VERTEX_ROUTE = re.compile(
    r"^(?:/v1)?/projects/[^/]+/locations/[^/]+/publishers/anthropic/models/(?P<model>[^/:]+):(?:stream)?rawPredict$"
)


def route(method: str, path: str) -> tuple[str, str | None] | None:
    if method != "POST":
        return None
    endpoint = ROUTES.get(path.rstrip("/"))
    if endpoint:
        return endpoint, None
    vertex = VERTEX_ROUTE.match(path)
    if vertex is None:
        return None
    model = vertex.group("model")
    return ("count_tokens", None) if model == "count-tokens" else ("messages", model)


def is_stream(endpoint: str, body: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    return endpoint == "messages" and body.get("stream") is True


def max_tokens(endpoint: str, body: Mapping[str, Any]) -> int | None:
    value = body.get("max_tokens")
    return value if isinstance(value, int) else None


def tool_results(endpoint: str, body: Mapping[str, Any]) -> int:
    """``tool_result`` content blocks over every message."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0
    return sum(
        count_items(message.get("content"), lambda block: block.get("type") == "tool_result")
        for message in messages
        if isinstance(message, Mapping)
    )


# -- usage arithmetic -------------------------------------------------------------------------------------------


def usage(plan: UsagePlan, *, start: bool = False) -> dict[str, Any]:
    """``Usage``: ``input_tokens`` is only the uncached part (input - cache_read - cache_write).

    ``output_tokens`` is inclusive of thinking; ``output_tokens_details.thinking_tokens`` (present in the 2.12
    types) breaks the reasoning part out.
    """
    # message_start carries a provisional output count (the real API sends 1 or so); the final one comes later.
    out = plan.output if not start or plan.output is None else min(1, plan.output)
    data: dict[str, Any] = drop_none(
        {
            "input_tokens": minus(plan.input, plan.cache_read, plan.cache_write),
            "cache_creation_input_tokens": plan.cache_write,
            "cache_read_input_tokens": plan.cache_read,
            "output_tokens": out,
        }
    )
    if plan.cache_write is not None:
        data["cache_creation"] = {"ephemeral_5m_input_tokens": plan.cache_write, "ephemeral_1h_input_tokens": 0}
    if plan.web_search_requests:
        data["server_tool_use"] = {"web_search_requests": plan.web_search_requests, "web_fetch_requests": 0}
    if plan.reasoning is not None and not start:
        data["output_tokens_details"] = {"thinking_tokens": plan.reasoning}
    data["service_tier"] = "standard"
    return data


def delta_usage(plan: UsagePlan) -> dict[str, Any]:
    """``MessageDeltaUsage``: the cumulative final counts, input/cache fields repeated as the API now does."""
    data = usage(plan)
    data.pop("cache_creation", None)
    data.pop("service_tier", None)
    return data


# -- answers ----------------------------------------------------------------------------------------------------


def success(call: Call, *, with_usage_in_stream: bool = True) -> Reply:
    if call.endpoint == "count_tokens":
        return Reply(200, json={"input_tokens": call.plan.input if call.plan.input is not None else 0})
    return _stream(call) if call.stream else Reply(200, json=message(call, done=True))


def _stop_reason(call: Call) -> str:
    if call.tool is not None:
        return "tool_use"
    return "max_tokens" if call.truncated else "end_turn"


def _block(call: Call, *, done: bool) -> dict[str, Any]:
    """The answer's content block: text, or a ``tool_use`` whose ``input`` is empty until the stream fills it."""
    if call.tool is None:
        return {"type": "text", "text": call.text if done else "", **({"citations": None} if done else {})}
    arguments = dict(call.tool.arguments) if done else {}
    return {"type": "tool_use", "id": f"toolu_{call.request_id}", "name": call.tool.name, "input": arguments}


def message(call: Call, *, done: bool) -> dict[str, Any]:
    """A ``Message`` (``done=False``: the empty one ``message_start`` carries)."""
    return {
        "id": f"msg_{call.request_id}",
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": [_block(call, done=True)] if done else [],
        "stop_reason": _stop_reason(call) if done else None,
        "stop_sequence": None,
        "usage": usage(call.plan, start=not done),
    }


def _stream(call: Call) -> Reply:
    events = [SSEEvent(sse(payload, event=payload["type"]), tokens=tokens) for payload, tokens in stream_events(call)]
    return Reply(200, events=events)


def stream_events(call: Call) -> list[tuple[dict[str, Any], float]]:
    """The stream's events as (payload, output tokens it stands for); Claude on Bedrock sends the same payloads."""
    events: list[tuple[dict[str, Any], float]] = []

    def add(payload: dict[str, Any], tokens: float = 0.0) -> None:
        events.append((payload, tokens))

    add({"type": "message_start", "message": message(call, done=False)})
    add(
        {"type": "content_block_start", "index": 0, "content_block": _block(call, done=False)},
        tokens=call.plan.reasoning or 0,
    )
    add({"type": "ping"})
    if call.tool is not None:
        pieces = ["", *call.tool.argument_pieces()]
        for piece, weight in zip(pieces, spread(call.answer_tokens, len(pieces)), strict=True):
            delta = {"type": "input_json_delta", "partial_json": piece}
            add({"type": "content_block_delta", "index": 0, "delta": delta}, tokens=weight)
    for piece, weight in zip(call.words, spread(call.answer_tokens, len(call.words)), strict=True):
        add({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}, tokens=weight)
    add({"type": "content_block_stop", "index": 0})
    add(
        {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(call), "stop_sequence": None},
            "usage": delta_usage(call.plan),
        }
    )
    add({"type": "message_stop"})
    return events


# -- errors and headers -----------------------------------------------------------------------------------------

_ERROR_TYPES = {
    "rate_limited": ("rate_limit_error", "Number of request tokens has exceeded your rate limit (simulated)."),
    "overloaded": ("overloaded_error", "Overloaded (simulated)."),
    "server_error": ("api_error", "Internal server error (simulated)."),
    "bad_request": ("invalid_request_error", "Invalid request (simulated)."),
    "not_found": ("not_found_error", "Unknown path (simulated provider)."),
}


def error(
    kind: str,
    status: int,
    *,
    reason: str | None = None,
    model: str | None = None,
    retry_after: float | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}, "request_id"}``."""
    type_, message = _ERROR_TYPES.get(kind, ("api_error", "Error (simulated)."))
    if kind == "rate_limited" and reason == "requests":
        message = "Number of requests has exceeded your per-minute rate limit (simulated)."
    body: dict[str, Any] = {"type": "error", "error": {"type": type_, "message": message}}
    if request_id:
        body["request_id"] = f"req_{request_id}"
    return body


def stream_error_event() -> bytes:
    """``event: error`` with an ``overloaded_error`` body, as the API sends when it fails mid-stream."""
    return sse(error("overloaded", 529), event="error")


def rfc3339(seconds_from_now: float) -> str:
    """Wall-clock UTC time ``seconds_from_now`` ahead, RFC 3339 at whole seconds (rounded up)."""
    moment = _dt.datetime.fromtimestamp(int(-(-(time.time() + seconds_from_now) // 1)), tz=_dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def limit_headers(windows: Mapping[str, Window], request_id: str) -> dict[str, str]:
    headers = {"request-id": f"req_{request_id}", "anthropic-organization-id": "00000000-simulated"}
    for kind in ("requests", "tokens", "input_tokens", "output_tokens"):
        window = windows.get(kind)
        if window is None:
            continue
        name = kind.replace("_", "-")
        headers[f"anthropic-ratelimit-{name}-limit"] = str(window.limit)
        headers[f"anthropic-ratelimit-{name}-remaining"] = str(window.remaining)
        headers[f"anthropic-ratelimit-{name}-reset"] = rfc3339(window.reset_s)
    return headers

"""OpenAI's wire protocol (``/v1/chat/completions``, ``/v1/responses``, ``/v1/embeddings``, ``/v1/completions``).

Shapes follow the types of ``openai`` 3.54 (``types/chat/chat_completion*.py``, ``types/responses/*``,
``types/completion_usage.py``, ``types/create_embedding_response.py``) and the SSE handling of its
``_streaming.Stream`` and ``lib/streaming`` helpers.

Tool calls (a ``tool_call`` step). Chat completions: the message has ``content: null`` and one ``tool_calls``
entry ``{id, type: "function", function: {name, arguments}}``
(``types/chat/chat_completion_message_function_tool_call.py``; ``arguments`` is a JSON string) and
``finish_reason`` is ``"tool_calls"``; streamed, the first delta carries the call's index, id, type, name and
empty arguments and later deltas only ``{index, function: {arguments}}`` pieces, which
``lib/streaming/chat/_completions.py`` concatenates. Responses: the output is one ``function_call`` item
``{id, call_id, name, arguments, status}`` (``types/responses/response_function_tool_call.py``); streamed as
``output_item.added`` / ``function_call_arguments.delta`` / ``.done`` / ``output_item.done``. Results come back
as ``tool`` messages or ``function_call_output`` input items (`tool_results` counts them).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tokenrate.simulator._model import UsagePlan
from tokenrate.simulator._ratelimit import Window, go_duration
from tokenrate.simulator._wire import Call, Reply, SSEEvent, count_items, drop_none, spread, sse

PROTOCOL = "openai"
SENDS_RETRY_AFTER = True
"""Whether its 429/overloaded answers carry ``retry-after`` (and ``retry-after-ms`` when scripted)."""

ROUTES: dict[str, str] = {
    "/v1/chat/completions": "chat.completions",
    "/v1/completions": "completions",
    "/v1/responses": "responses",
    "/v1/embeddings": "embeddings",
}


def route(method: str, path: str) -> tuple[str, str | None] | None:
    endpoint = ROUTES.get(path.rstrip("/"))
    return (endpoint, None) if endpoint and method == "POST" else None


def mounted_route(prefix: str) -> Callable[[str, str], tuple[str, str | None] | None]:
    """`route` for a provider serving OpenAI's paths under ``prefix`` (Groq's ``/openai``, ``/cerebras``...)."""

    def route_under_prefix(method: str, path: str) -> tuple[str, str | None] | None:
        if not path.startswith(prefix + "/v1/"):
            return None
        return route(method, path[len(prefix) :])

    return route_under_prefix


def is_stream(endpoint: str, body: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    return endpoint != "embeddings" and body.get("stream") is True


def include_usage(endpoint: str, body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return bool(body.get("stream") is True and isinstance(options, Mapping) and options.get("include_usage"))


def max_tokens(endpoint: str, body: Mapping[str, Any]) -> int | None:
    keys = ("max_output_tokens",) if endpoint == "responses" else ("max_completion_tokens", "max_tokens")
    for key in keys:
        value = body.get(key)
        if isinstance(value, int):
            return value
    return None


def input_count(endpoint: str, body: Mapping[str, Any]) -> int | None:
    return None


RESULT_ITEM_TYPES = frozenset({"function_call_output", "custom_tool_call_output"})


def tool_results(endpoint: str, body: Mapping[str, Any]) -> int:
    """``tool`` (or legacy ``function``) messages; for Responses, ``function_call_output`` input items."""
    if endpoint == "responses":
        return count_items(body.get("input"), lambda item: item.get("type") in RESULT_ITEM_TYPES)
    return count_items(body.get("messages"), lambda message: message.get("role") in ("tool", "function"))


# -- usage arithmetic -------------------------------------------------------------------------------------------


def chat_usage(plan: UsagePlan) -> dict[str, Any] | None:
    """``CompletionUsage``: prompt_tokens is all input (cache and tool use included); completion all output."""
    usage: dict[str, Any] = drop_none(
        {"prompt_tokens": plan.input, "completion_tokens": plan.output, "total_tokens": plan.total}
    )
    prompt_details = drop_none({"cached_tokens": plan.cache_read, "cache_write_tokens": plan.cache_write})
    if prompt_details:
        usage["prompt_tokens_details"] = prompt_details
    if plan.reasoning is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": plan.reasoning}
    return usage or None


def responses_usage(plan: UsagePlan) -> dict[str, Any] | None:
    """``ResponseUsage``: input_tokens / output_tokens with cached and reasoning details."""
    usage: dict[str, Any] = drop_none(
        {"input_tokens": plan.input, "output_tokens": plan.output, "total_tokens": plan.total}
    )
    input_details = drop_none({"cached_tokens": plan.cache_read, "cache_write_tokens": plan.cache_write})
    if input_details:
        usage["input_tokens_details"] = input_details
    if plan.reasoning is not None:
        usage["output_tokens_details"] = {"reasoning_tokens": plan.reasoning}
    return usage or None


def embeddings_usage(plan: UsagePlan) -> dict[str, Any] | None:
    return drop_none({"prompt_tokens": plan.input, "total_tokens": plan.input}) or None


# -- answers ----------------------------------------------------------------------------------------------------


def _no_fields(call: Call) -> dict[str, Any]:
    return {}


@dataclass(frozen=True)
class Flavour:
    """How an OpenAI-compatible provider's chat and text completions differ from OpenAI's own.

    Groq, Cerebras and Together answer OpenAI's protocol with their own additions: a vendor block on every
    answer (``x_groq``, ``time_info``, Together's ``prompt``), and usage on a stream's last chunk without
    ``stream_options.include_usage`` being asked. Their protocol modules pass one of these to `success`.
    """

    usage_on_final_chunk: bool = False
    """A stream's last chunk (the one with ``finish_reason``) carries ``usage`` unasked (Cerebras, Together)."""
    null_usage_on_chunks: bool = False
    """Every other chunk says ``"usage": null`` unasked (Together)."""
    usage: Callable[[UsagePlan], dict[str, Any] | None] = chat_usage
    """The provider's usage block (Together's has no details)."""
    answer_fields: Callable[[Call], dict[str, Any]] = _no_fields
    """Added to a whole (not streamed) answer."""
    final_chunk_fields: Callable[[Call], dict[str, Any]] = _no_fields
    """Added to a stream's last chunk."""


OPENAI = Flavour()


def success(call: Call, *, with_usage_in_stream: bool, flavour: Flavour = OPENAI) -> Reply:
    if call.endpoint == "chat.completions":
        if call.stream:
            return _chat_stream(call, with_usage_in_stream, flavour)
        return Reply(200, json=_chat(call, flavour))
    if call.endpoint == "completions":
        if call.stream:
            return _completion_stream(call, with_usage_in_stream, flavour)
        return Reply(200, json=_completion(call, flavour))
    if call.endpoint == "responses":
        return _responses_stream(call) if call.stream else Reply(200, json=_response(call, done=True))
    return Reply(200, json=_embeddings(call))


def _finish(call: Call) -> str:
    if call.tool is not None:
        return "tool_calls"
    return "length" if call.truncated else "stop"


def _call_id(call: Call) -> str:
    return f"call_{call.request_id}"


def _chat_message(call: Call) -> dict[str, Any]:
    if call.tool is None:
        return {"role": "assistant", "content": _structured_content(call), "refusal": None, "annotations": []}
    function = {"name": call.tool.name, "arguments": call.tool.arguments_json}
    return {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "annotations": [],
        "tool_calls": [{"id": _call_id(call), "type": "function", "function": function}],
    }


def _chat(call: Call, flavour: Flavour) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{call.request_id}",
        "object": "chat.completion",
        "created": call.created,
        "model": call.model,
        "choices": [
            {
                "index": 0,
                "message": _chat_message(call),
                "logprobs": None,
                "finish_reason": _finish(call),
            }
        ],
        "usage": flavour.usage(call.plan),
        "service_tier": "default",
        "system_fingerprint": "fp_tokenrate_sim",
        **flavour.answer_fields(call),
    }


def _last_chunk(call: Call, chunk: dict[str, Any], flavour: Flavour) -> dict[str, Any]:
    """A stream's last chunk (the one that ends the choice), with what the flavour adds to it."""
    if flavour.usage_on_final_chunk:
        chunk["usage"] = flavour.usage(call.plan)
    return {**chunk, **flavour.final_chunk_fields(call)}


def _usage_chunk_follows(with_usage: bool, flavour: Flavour) -> bool:
    """OpenAI's separate usage chunk (no choices), sent when asked unless the last chunk already had it."""
    return with_usage and not flavour.usage_on_final_chunk


def _chunk(call: Call, choices: list[dict[str, Any]], with_usage: bool, usage: Any = None) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": f"chatcmpl-{call.request_id}",
        "object": "chat.completion.chunk",
        "created": call.created,
        "model": call.model,
        "service_tier": "default",
        "system_fingerprint": "fp_tokenrate_sim",
        "choices": choices,
    }
    if with_usage:
        chunk["usage"] = usage
    return chunk


def _chat_stream(call: Call, asked_usage: bool, flavour: Flavour) -> Reply:
    with_usage = asked_usage or flavour.null_usage_on_chunks  # every chunk has a "usage" key
    first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
    if call.tool is not None:
        pieces = call.tool.argument_pieces()
        function = {"name": call.tool.name, "arguments": ""}
        head = {"index": 0, "id": _call_id(call), "type": "function", "function": function}
        first = {"role": "assistant", "content": None, "tool_calls": [head], "refusal": None}
    else:
        pieces = _pieces(call)
    weights = spread(call.answer_tokens, len(pieces))
    opening = {"index": 0, "delta": first, "logprobs": None, "finish_reason": None}
    events = [SSEEvent(sse(_chunk(call, [opening], with_usage)), tokens=call.plan.reasoning or 0)]
    for piece, weight in zip(pieces, weights, strict=True):
        if call.tool is not None:
            delta: dict[str, Any] = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
        else:
            delta = {"content": piece}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        events.append(SSEEvent(sse(_chunk(call, [choice], with_usage)), tokens=weight))
    final = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": _finish(call)}
    events.append(SSEEvent(sse(_last_chunk(call, _chunk(call, [final], with_usage), flavour))))
    if _usage_chunk_follows(asked_usage, flavour):
        events.append(SSEEvent(sse(_chunk(call, [], True, flavour.usage(call.plan)))))
    events.append(SSEEvent(sse("[DONE]")))
    return Reply(200, events=events)


def _completion(call: Call, flavour: Flavour) -> dict[str, Any]:
    return {
        "id": f"cmpl-{call.request_id}",
        "object": "text_completion",
        "created": call.created,
        "model": call.model,
        "choices": [{"text": call.text, "index": 0, "logprobs": None, "finish_reason": _finish(call)}],
        "usage": flavour.usage(call.plan),
        "system_fingerprint": "fp_tokenrate_sim",
        **flavour.answer_fields(call),
    }


def _completion_stream(call: Call, asked_usage: bool, flavour: Flavour) -> Reply:
    with_usage = asked_usage or flavour.null_usage_on_chunks

    def chunk(choices: list[dict[str, Any]], usage: Any = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": f"cmpl-{call.request_id}",
            "object": "text_completion",
            "created": call.created,
            "model": call.model,
            "choices": choices,
            "system_fingerprint": "fp_tokenrate_sim",
        }
        if with_usage:
            data["usage"] = usage
        return data

    weights = spread(call.answer_tokens, len(call.words))
    events = []
    last = len(call.words) - 1
    for i, (piece, weight) in enumerate(zip(call.words, weights, strict=True)):
        choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": _finish(call) if i == last else None}
        data = _last_chunk(call, chunk([choice]), flavour) if i == last else chunk([choice])
        events.append(SSEEvent(sse(data), tokens=weight))
    if _usage_chunk_follows(asked_usage, flavour):
        events.append(SSEEvent(sse(chunk([], flavour.usage(call.plan)))))
    events.append(SSEEvent(sse("[DONE]")))
    return Reply(200, events=events)


def _message_item(call: Call, text: str, *, done: bool) -> dict[str, Any]:
    return {
        "id": f"msg_{call.request_id}",
        "type": "message",
        "role": "assistant",
        "status": "completed" if done else "in_progress",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}] if done else [],
    }


def _function_call_item(call: Call, *, done: bool) -> dict[str, Any]:
    assert call.tool is not None
    return {
        "id": f"fc_{call.request_id}",
        "type": "function_call",
        "status": "completed" if done else "in_progress",
        "arguments": call.tool.arguments_json if done else "",
        "call_id": _call_id(call),
        "name": call.tool.name,
    }


def _output_item(call: Call) -> dict[str, Any]:
    if call.tool is not None:
        return _function_call_item(call, done=True)
    return _message_item(call, call.text, done=True)


def _response(call: Call, *, done: bool, status: str | None = None) -> dict[str, Any]:
    body = call.body if isinstance(call.body, Mapping) else {}
    finished_status = "incomplete" if call.truncated else "completed"
    return {
        "id": f"resp_{call.request_id}",
        "object": "response",
        "created_at": call.created,
        "status": status or (finished_status if done else "in_progress"),
        "background": False,
        "completed_at": int(time.time()) if done else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if done and call.truncated else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": body.get("metadata") or {},
        "model": call.model,
        "output": [_output_item(call)] if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": responses_usage(call.plan) if done else None,
        "user": None,
    }


def _responses_stream(call: Call) -> Reply:
    events: list[SSEEvent] = []

    def add(kind: str, payload: dict[str, Any], tokens: float = 0.0) -> None:
        payload = {"type": kind, "sequence_number": len(events), **payload}
        events.append(SSEEvent(sse(payload, event=kind), tokens=tokens))

    add("response.created", {"response": _response(call, done=False)})
    add("response.in_progress", {"response": _response(call, done=False)}, tokens=call.plan.reasoning or 0)
    if call.tool is not None:
        item_id = f"fc_{call.request_id}"
        add("response.output_item.added", {"output_index": 0, "item": _function_call_item(call, done=False)})
        pieces = call.tool.argument_pieces()
        for piece, weight in zip(pieces, spread(call.answer_tokens, len(pieces)), strict=True):
            delta = {"item_id": item_id, "output_index": 0, "delta": piece}
            add("response.function_call_arguments.delta", delta, tokens=weight)
        done = {"item_id": item_id, "output_index": 0, "arguments": call.tool.arguments_json}
        add("response.function_call_arguments.done", done)
        add("response.output_item.done", {"output_index": 0, "item": _function_call_item(call, done=True)})
        add("response.completed", {"response": _response(call, done=True)})
        return Reply(200, events=events)
    item_id = f"msg_{call.request_id}"
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    add("response.output_item.added", {"output_index": 0, "item": _message_item(call, "", done=False)})
    add("response.content_part.added", {"item_id": item_id, "output_index": 0, "content_index": 0, "part": part})
    weights = spread(call.answer_tokens, len(call.words))
    for piece, weight in zip(call.words, weights, strict=True):
        delta = {"item_id": item_id, "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []}
        add("response.output_text.delta", delta, tokens=weight)
    text = call.text
    add(
        "response.output_text.done",
        {"item_id": item_id, "output_index": 0, "content_index": 0, "text": text, "logprobs": []},
    )
    add(
        "response.content_part.done",
        {"item_id": item_id, "output_index": 0, "content_index": 0, "part": {**part, "text": text}},
    )
    add("response.output_item.done", {"output_index": 0, "item": _message_item(call, text, done=True)})
    final = _response(call, done=True)
    add("response.incomplete" if call.truncated else "response.completed", {"response": final})
    return Reply(200, events=events)


def _embedding_inputs(body: Any) -> list[Any]:
    raw = body.get("input") if isinstance(body, Mapping) else None
    if isinstance(raw, list) and raw and not all(isinstance(x, int) for x in raw):
        return raw
    return [raw]


def _embeddings(call: Call) -> dict[str, Any]:
    body = call.body if isinstance(call.body, Mapping) else {}
    dims = body.get("dimensions") if isinstance(body.get("dimensions"), int) else 16
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, item in enumerate(_embedding_inputs(call.body)):
        vector = embedding_vector(repr(item), dims)
        value: Any = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": value})
    return {"object": "list", "data": data, "model": call.model, "usage": embeddings_usage(call.plan)}


def embedding_vector(seed_text: str, dims: int) -> list[float]:
    """A deterministic unit vector derived from the input (exactly representable as float32)."""
    digest = hashlib.sha256(seed_text.encode()).digest()
    raw = [((digest[i % len(digest)] + 7 * i) % 255 - 127) / 128.0 for i in range(max(1, dims))]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [struct.unpack("<f", struct.pack("<f", v / norm))[0] for v in raw]


def _pieces(call: Call) -> list[str]:
    content = _structured_content(call)
    if content == call.text:
        return call.words
    return [content[i : i + 16] for i in range(0, len(content), 16)] or [""]


def _structured_content(call: Call) -> str:
    """With ``response_format`` json_schema / json_object, answer JSON (so ``.parse()`` works)."""
    body = call.body if isinstance(call.body, Mapping) else {}
    fmt = body.get("response_format")
    if not isinstance(fmt, Mapping):
        return call.text
    if fmt.get("type") == "json_object":
        return '{"answer": "simulated"}'
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        return json.dumps(instance_of(schema, schema))
    return call.text


def instance_of(schema: Any, root: Any, depth: int = 0) -> Any:
    """A minimal value valid for a (pydantic-generated) JSON schema: strings, zeros, false, empty lists."""
    if not isinstance(schema, Mapping) or depth > 12:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return instance_of(target, root, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            non_null = [o for o in options if not (isinstance(o, Mapping) and o.get("type") == "null")]
            return instance_of((non_null or options)[0], root, depth + 1)
    if schema.get("enum"):
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {name: instance_of(sub, root, depth + 1) for name, sub in props.items()}
    if kind == "array":
        return []
    if kind == "string":
        return "simulated"
    if kind == "integer":
        return 0
    if kind == "number":
        return 0.0
    if kind == "boolean":
        return False
    return None


# -- errors and headers -----------------------------------------------------------------------------------------


def error(
    kind: str, status: int, *, reason: str | None = None, model: str | None = None, retry_after: float | None = None
) -> dict[str, Any]:
    """OpenAI's error document: ``{"error": {"message", "type", "param", "code"}}``."""
    if kind == "rate_limited":
        window = reason if reason in ("requests", "tokens") else "requests"
        what = "requests per min (RPM)" if window == "requests" else "tokens per min (TPM)"
        wait = f" Please try again in {go_duration(retry_after)}." if retry_after is not None else ""
        return _err(
            f"Rate limit reached for {model or 'model'} on {what} (simulated).{wait}", window, "rate_limit_exceeded"
        )
    if kind == "overloaded":
        return _err("The server is overloaded (simulated). Please retry.", "server_error", "overloaded")
    if kind == "server_error":
        return _err("The server had an error while processing your request (simulated).", "server_error", None)
    if kind == "bad_request":
        return _err("Invalid request (simulated).", "invalid_request_error", "invalid_request")
    if kind == "not_found":
        return _err("Unknown path (simulated provider).", "invalid_request_error", "unknown_url")
    return _err("Error (simulated).", "server_error", None)


def stream_error_event() -> bytes:
    """The error a stream can carry in place of its next chunk: ``data: {"error": ...}`` (``APIError``)."""
    return sse(error("overloaded", 529))


def _err(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def limit_headers(windows: Mapping[str, Window], request_id: str) -> dict[str, str]:
    headers = {"x-request-id": f"req_{request_id}", "openai-processing-ms": "1", "openai-version": "2020-10-01"}
    for kind in ("requests", "tokens"):
        window = windows.get(kind)
        if window is None:
            continue
        headers[f"x-ratelimit-limit-{kind}"] = str(window.limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(window.remaining)
        headers[f"x-ratelimit-reset-{kind}"] = go_duration(window.reset_s)
    return headers

"""The Gemini API wire protocol (``/v1beta/models/{model}:generateContent`` and friends).

Shapes follow ``google-genai`` 3.4: ``types.GenerateContentResponse`` / ``GenerateContentResponseUsageMetadata``
and the camelCase ``_from_mldev`` converters in ``models.py``; SSE parsing is ``_api_client._iter_response_stream``
(``data: `` lines). Vertex-style paths (``/v1beta1/projects/{p}/locations/{l}/publishers/google/models/{m}:...``)
are accepted too.

Token arithmetic. google-genai 3.4 ``types.py`` documents ``total_token_count`` as "the sum of
``prompt_token_count``, ``candidates_token_count``, ``tool_use_prompt_token_count`` and ``thoughts_token_count``",
and ``prompt_token_count`` as including the cached content. So the prompt count *excludes* the tool-use prompt
and *includes* cached tokens, and the candidates count excludes thoughts:
``promptTokenCount = input - tool_use``, ``cachedContentTokenCount = cache_read``,
``toolUsePromptTokenCount = tool_use``, ``candidatesTokenCount = output - reasoning``,
``thoughtsTokenCount = reasoning``, ``totalTokenCount = input + output``.

Function calls (a ``tool_call`` step): the candidate's content is one ``functionCall {name, args}`` part with
finishReason STOP, the shape google-genai 3.4's automatic function calling acts on
(``_extra_utils.get_function_response_parts``: it reads ``candidates[0].content.parts[*].function_call`` and,
in the sync client, needs ``args`` to be present). The Gemini API sends a function call whole, so a stream has
one chunk. The SDK then sends the result back as a ``functionResponse {name, response: {"result": ...}}`` part
in a ``user`` turn (``types.Part.from_function_response``), which `tool_results` counts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from tokenrate.simulator._model import UsagePlan
from tokenrate.simulator._openai import embedding_vector
from tokenrate.simulator._ratelimit import Window, proto_duration
from tokenrate.simulator._wire import Call, Reply, SSEEvent, count_items, drop_none, minus, spread, sse

PROTOCOL = "gemini"
SENDS_RETRY_AFTER = False
"""The Gemini API puts its retry delay in the error body (RetryInfo), never in a header."""

_PATH = re.compile(r"^/(?:v1|v1beta|v1alpha|v1beta1)/(?:[^:]*/)?(?:models|tunedModels)/([^/:]+):([A-Za-z]+)$")

METHODS: dict[str, str] = {
    "generateContent": "generate_content",
    "streamGenerateContent": "stream_generate_content",
    "embedContent": "embed_content",
    "batchEmbedContents": "embed_content",
    "countTokens": "count_tokens",
}

WORDS_PER_CHUNK = 4


def route(method: str, path: str) -> tuple[str, str | None] | None:
    match = _PATH.match(path)
    if match is None or method != "POST":
        return None
    endpoint = METHODS.get(match.group(2))
    return (endpoint, match.group(1)) if endpoint else None


def is_stream(endpoint: str, body: Mapping[str, Any], query: Mapping[str, str]) -> bool:
    return endpoint == "stream_generate_content"


def max_tokens(endpoint: str, body: Mapping[str, Any]) -> int | None:
    config = body.get("generationConfig")
    value = config.get("maxOutputTokens") if isinstance(config, Mapping) else None
    return value if isinstance(value, int) else None


def tool_results(endpoint: str, body: Mapping[str, Any]) -> int:
    """``functionResponse`` parts over every turn of ``contents`` (snake_case too, as Vertex accepts it)."""
    contents = body.get("contents")
    if not isinstance(contents, list):
        return 0
    return sum(
        count_items(turn.get("parts"), lambda part: "functionResponse" in part or "function_response" in part)
        for turn in contents
        if isinstance(turn, Mapping)
    )


# -- usage arithmetic -------------------------------------------------------------------------------------------


def usage_metadata(plan: UsagePlan, *, candidates: int | None = None) -> dict[str, Any] | None:
    """``usageMetadata`` for the plan (see the module docstring for the arithmetic and its source).

    ``candidates`` overrides the candidates count for an intermediate stream chunk (counts are cumulative).
    """
    cand = minus(plan.output, plan.reasoning) if candidates is None else candidates
    total = plan.total
    if candidates is not None and plan.input is not None:
        total = plan.input + (plan.reasoning or 0) + candidates
    data = drop_none(
        {
            "promptTokenCount": minus(plan.input, plan.tool_use),
            "candidatesTokenCount": cand,
            "totalTokenCount": total,
            "cachedContentTokenCount": plan.cache_read,
            "toolUsePromptTokenCount": plan.tool_use,
            "thoughtsTokenCount": plan.reasoning,
        }
    )
    if "promptTokenCount" in data:
        data["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": data["promptTokenCount"]}]
    return data or None


# -- answers ----------------------------------------------------------------------------------------------------


def success(call: Call, *, with_usage_in_stream: bool = True) -> Reply:
    if call.endpoint == "count_tokens":
        return Reply(200, json={"totalTokens": call.plan.input if call.plan.input is not None else 0})
    if call.endpoint == "embed_content":
        return Reply(200, json=_embed(call))
    if call.tool is not None:
        chunk = _response(call, "", usage_metadata(call.plan), final=True)
        if not call.stream:
            return Reply(200, json=chunk)
        if call.query.get("alt") != "sse":
            return Reply(200, json=[chunk])
        return Reply(200, events=[SSEEvent(sse(chunk, crlf=True), tokens=call.plan.output or 0)])
    if not call.stream:
        return Reply(200, json=_response(call, call.text, usage_metadata(call.plan), final=True))
    return _stream(call)


def _response(call: Call, text: str, usage: dict[str, Any] | None, *, final: bool = True) -> dict[str, Any]:
    if call.tool is not None:
        part: dict[str, Any] = {"functionCall": {"name": call.tool.name, "args": dict(call.tool.arguments)}}
    else:
        part = {"text": text}
    candidate: dict[str, Any] = {"content": {"parts": [part], "role": "model"}, "index": 0}
    if final:
        candidate["finishReason"] = "MAX_TOKENS" if call.truncated else "STOP"
    data: dict[str, Any] = {"candidates": [candidate]}
    if usage is not None:
        data["usageMetadata"] = usage
    data["modelVersion"] = call.model
    data["responseId"] = call.request_id
    return data


def _stream(call: Call) -> Reply:
    groups = [call.words[i : i + WORDS_PER_CHUNK] for i in range(0, len(call.words), WORDS_PER_CHUNK)] or [[""]]
    weights = spread(call.answer_tokens, len(groups))
    events: list[SSEEvent] = []
    chunks: list[dict[str, Any]] = []
    so_far = 0
    for i, (group, weight) in enumerate(zip(groups, weights, strict=True)):
        so_far += weight
        # Every chunk carries the usage so far (cumulative); the last one is the plan exactly.
        partial = None if call.plan.output is None or i == len(groups) - 1 else so_far
        chunk = _response(call, "".join(group), usage_metadata(call.plan, candidates=partial), final=partial is None)
        chunks.append(chunk)
        thinking = (call.plan.reasoning or 0) if i == 0 else 0
        events.append(SSEEvent(sse(chunk, crlf=True), tokens=weight + thinking))
    if call.query.get("alt") != "sse":  # without alt=sse the API streams one JSON array
        return Reply(200, json=chunks)
    return Reply(200, events=events)


def _embed(call: Call) -> dict[str, Any]:
    body = call.body if isinstance(call.body, Mapping) else {}
    requests = body.get("requests")
    usage = drop_none({"promptTokenCount": call.plan.input, "totalTokenCount": call.plan.input}) or None
    if isinstance(requests, list):  # :batchEmbedContents (what models.embed_content uses on the Gemini API)
        dims = _dims(requests[0] if requests else {})
        data: dict[str, Any] = {
            "embeddings": [{"values": embedding_vector(repr(r.get("content")), dims)} for r in requests]
        }
    else:  # :embedContent
        data = {"embedding": {"values": embedding_vector(repr(body.get("content")), _dims(body))}}
    if usage:
        data["usageMetadata"] = usage
    return data


def _dims(request: Any) -> int:
    value = request.get("outputDimensionality") if isinstance(request, Mapping) else None
    return value if isinstance(value, int) and value > 0 else 16


# -- errors -----------------------------------------------------------------------------------------------------

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_MESSAGES = {
    "rate_limited": "Resource has been exhausted (e.g. check quota). (simulated)",
    "overloaded": "The model is overloaded. Please try again later. (simulated)",
    "server_error": "Internal error encountered. (simulated)",
    "bad_request": "Request contains an invalid argument. (simulated)",
    "not_found": "Unknown path (simulated provider).",
}


def error(
    kind: str,
    status: int,
    *,
    reason: str | None = None,
    model: str | None = None,
    retry_after: float | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    """``{"error": {"code", "message", "status", "details"}}``; a 429 carries QuotaFailure and RetryInfo."""
    err: dict[str, Any] = {
        "code": status,
        "message": _MESSAGES.get(kind, "Error (simulated)."),
        "status": STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION"),
    }
    if kind == "rate_limited":
        tokens = reason in ("tokens", "input_tokens", "output_tokens")
        metric = "input_token_count" if tokens else "requests"
        quota_id = (
            "GenerateContentInputTokensPerModelPerMinute" if tokens else "GenerateRequestsPerMinutePerProjectPerModel"
        )
        violation: dict[str, Any] = {
            "quotaMetric": f"generativelanguage.googleapis.com/generate_content_{metric}",
            "quotaId": quota_id,
            "quotaDimensions": drop_none({"location": "global", "model": model}),
        }
        if limit is not None:
            violation["quotaValue"] = str(limit)
        details: list[dict[str, Any]] = [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]}
        ]
        if retry_after is not None:
            details.append(
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": proto_duration(retry_after)}
            )
        err["details"] = details
    return {"error": err}


def stream_error_event() -> bytes:
    """A ``{"error": ...}`` chunk in place of the next one (503 overloaded); google-genai raises ``ServerError``."""
    return sse(error("overloaded", 503), crlf=True)


def limit_headers(windows: Mapping[str, Window], request_id: str) -> dict[str, str]:
    """The Gemini API sends no rate-limit headers; only a request id-ish header for debugging."""
    return {}

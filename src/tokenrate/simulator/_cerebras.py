"""Cerebras' wire protocol: OpenAI's chat and text completions, Cerebras' way.

Shapes follow cerebras-cloud-sdk 1.91 (``types/chat/chat_completion.py``, ``_streaming.py``, ``_client.py``):

* every answer carries ``time_info`` (queue, prompt, completion and total seconds);
* a stream's last chunk (the one with ``finish_reason``) carries the whole ``usage`` and ``time_info`` without
  ``stream_options.include_usage`` being asked;
* errors are flat documents (``{"message", "type", "param", "code"}``, no ``error`` wrapper), and an error in a
  stream is a chunk ``{"error": {...}, "status_code": N}`` whose status the SDK raises;
* rate-limit headers name their window: ``x-ratelimit-{limit,remaining,reset}-requests-day`` and
  ``-tokens-minute``, resets in seconds;
* creating a client sends ``GET /v1/tcp_warming`` first (unless ``warm_tcp_connection=False``): answered here,
  never a call.

The simulator serves it under ``/cerebras`` (``https://api.cerebras.ai`` itself has no prefix), so a Cerebras
client's base URL is ``<simulator>/cerebras``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tokenrate.simulator import _openai
from tokenrate.simulator._ratelimit import Window
from tokenrate.simulator._wire import Call, Reply, sse

PROTOCOL = "cerebras"
PATH_PREFIX = "/cerebras"
route = _openai.mounted_route(PATH_PREFIX)
WARMING_PATH = PATH_PREFIX + "/v1/tcp_warming"

SENDS_RETRY_AFTER = True
is_stream = _openai.is_stream
include_usage = _openai.include_usage
max_tokens = _openai.max_tokens
tool_results = _openai.tool_results
WINDOW_NAMES = {"requests": "requests-day", "tokens": "tokens-minute"}


def service_answer(method: str, path: str) -> Any | None:
    """The answer to a request that is not a call (the client's connection warm-up), else ``None``."""
    return {} if method == "GET" and path.rstrip("/") == WARMING_PATH else None


def _time_info(call: Call) -> dict[str, Any]:
    return {
        "time_info": {
            "queue_time": 0.0001,
            "prompt_time": 0.001,
            "completion_time": 0.002,
            "total_time": 0.0031,
            "created": float(call.created),
        }
    }


FLAVOUR = _openai.Flavour(usage_on_final_chunk=True, answer_fields=_time_info, final_chunk_fields=_time_info)


def success(call: Call, *, with_usage_in_stream: bool) -> Reply:
    return _openai.success(call, with_usage_in_stream=with_usage_in_stream, flavour=FLAVOUR)


_ERRORS = {
    "rate_limited": ("too_many_requests_error", "quota"),
    "overloaded": ("service_unavailable_error", None),
    "server_error": ("internal_server_error", None),
    "bad_request": ("invalid_request_error", None),
    "not_found": ("not_found_error", None),
}


def error(
    kind: str, status: int, *, reason: str | None = None, model: str | None = None, retry_after: float | None = None
) -> dict[str, Any]:
    """Cerebras' flat error document."""
    if kind == "rate_limited":
        if reason == "tokens":
            message, code = "Tokens per minute limit exceeded - too many tokens processed.", "token_quota_exceeded"
        else:
            message, code = "Requests per minute limit exceeded - too many requests sent.", "request_quota_exceeded"
    else:
        message, code = _openai.error(kind, status)["error"]["message"], None
    error_type, param = _ERRORS.get(kind, ("api_error", None))
    return {"message": message, "type": error_type, "param": param, "code": code}


def stream_error_event() -> bytes:
    """An error chunk in place of the next one: Cerebras' ``ErrorChunkResponse`` (``status_code`` in the body)."""
    return sse({"error": error("overloaded", 503), "status_code": 503})


def limit_headers(windows: Mapping[str, Window], request_id: str) -> dict[str, str]:
    headers = {"x-request-id": f"req_{request_id}"}
    for kind, name in WINDOW_NAMES.items():
        window = windows.get(kind)
        if window is None:
            continue
        headers[f"x-ratelimit-limit-{name}"] = str(window.limit)
        headers[f"x-ratelimit-remaining-{name}"] = str(window.remaining)
        headers[f"x-ratelimit-reset-{name}"] = json.dumps(round(window.reset_s, 3))
    return headers

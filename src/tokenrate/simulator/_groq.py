"""Groq's wire protocol: OpenAI's under ``/openai/v1``, plus Groq's ``x_groq`` block.

Shapes follow groq 1.7 (``types/chat/chat_completion*.py``): a streamed answer's final chunk carries the whole
usage in ``x_groq.usage`` (``chunk.usage`` only when ``stream_options.include_usage`` was asked, which the SDK's
``create`` has no argument for); every answer carries ``x_groq.id``. Rate-limit headers are OpenAI's names.
"""

from __future__ import annotations

from typing import Any

from tokenrate.simulator import _openai
from tokenrate.simulator._wire import Call, Reply

PROTOCOL = "groq"
PATH_PREFIX = "/openai"
route = _openai.mounted_route(PATH_PREFIX)

SENDS_RETRY_AFTER = True
is_stream = _openai.is_stream
include_usage = _openai.include_usage
max_tokens = _openai.max_tokens
tool_results = _openai.tool_results
error = _openai.error
limit_headers = _openai.limit_headers
stream_error_event = _openai.stream_error_event


def _x_groq(call: Call) -> dict[str, Any]:
    return {"x_groq": {"id": f"req_{call.request_id}"}}


def _x_groq_with_usage(call: Call) -> dict[str, Any]:
    return {"x_groq": {"id": f"req_{call.request_id}", "usage": _openai.chat_usage(call.plan)}}


FLAVOUR = _openai.Flavour(answer_fields=_x_groq, final_chunk_fields=_x_groq_with_usage)


def success(call: Call, *, with_usage_in_stream: bool) -> Reply:
    return _openai.success(call, with_usage_in_stream=with_usage_in_stream, flavour=FLAVOUR)

"""Hand-built provider answers for the simulator's ``raw`` step: the real wire shapes with any usage at all.

``json.dumps`` writes ``NaN`` / ``Infinity`` for non-finite floats, as a broken server could; the SDKs' JSON
parsers accept them, so these reach the SDK (and tokenrate) as written.
"""

from __future__ import annotations

import json
from typing import Any

MODEL_OPENAI = "gpt-4o-mini"
MODEL_ANTHROPIC = "claude-sonnet-4-5"
MODEL_GEMINI = "gemini-2.5-flash"


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def sse(data: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {data if isinstance(data, str) else dumps(data)}\n\n"


# -- OpenAI -------------------------------------------------------------------------------------------------------


def openai_chat_completion(usage: Any = None, *, content: str = "hi") -> str:
    return dumps(
        {
            "id": "chatcmpl-raw",
            "object": "chat.completion",
            "created": 0,
            "model": MODEL_OPENAI,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": usage,
        }
    )


def openai_chunk(choices: list[Any], **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-raw", "object": "chat.completion.chunk", "created": 0, "model": MODEL_OPENAI,
            "choices": choices, **extra}  # fmt: skip


def openai_chat_stream(usage_chunk: dict[str, Any] | None, *, usage_on_every_chunk: Any = ...) -> list[str]:
    """A chat stream: content, a final choice, then ``usage_chunk`` (a whole chunk dict, or none), then [DONE].

    ``usage_on_every_chunk`` adds ``"usage": value`` to every content chunk (some servers send ``null`` there).
    """
    extra = {} if usage_on_every_chunk is ... else {"usage": usage_on_every_chunk}
    events = [
        openai_chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}], **extra),
        openai_chunk([{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}], **extra),
        openai_chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}], **extra),
    ]
    if usage_chunk is not None:
        events.append(usage_chunk)
    return [*(sse(e) for e in events), sse("[DONE]")]


# -- Anthropic ----------------------------------------------------------------------------------------------------


def anthropic_message(usage: Any = None) -> str:
    return dumps(
        {
            "id": "msg_raw",
            "type": "message",
            "role": "assistant",
            "model": MODEL_ANTHROPIC,
            "content": [{"type": "text", "text": "hi"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": usage,
        }
    )


def anthropic_stream(start_usage: Any, delta_usage: Any) -> list[str]:
    message = {"id": "msg_raw", "type": "message", "role": "assistant", "model": MODEL_ANTHROPIC, "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": start_usage}  # fmt: skip
    events = [
        {"type": "message_start", "message": message},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": delta_usage},
        {"type": "message_stop"},
    ]
    return [sse(e, event=e["type"]) for e in events]


# -- Gemini -------------------------------------------------------------------------------------------------------


def gemini_response(usage_metadata: Any = None, *, text: str = "hi") -> dict[str, Any]:
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": usage_metadata,
        "modelVersion": MODEL_GEMINI,
    }


def gemini_stream(*usage_metadata: Any) -> list[str]:
    """One chunk per ``usage_metadata`` (running totals), as ``alt=sse`` sends them."""
    return [sse(gemini_response(u, text=f"part{i}")).replace("\n", "\r\n") for i, u in enumerate(usage_metadata)]

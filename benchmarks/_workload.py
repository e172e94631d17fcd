"""The benchmarks' workload: the real ``openai`` and ``anthropic`` SDKs over an in-process mock transport.

The transport (``httpx2.MockTransport``) answers instantly with canned bodies in each provider's real wire format
(a JSON completion/message, or an SSE stream of N content chunks with usage at the end) and the provider's
rate-limit headers, so the network does not drown what an instrumentation adds. As with the real APIs, the
``remaining`` counts and the request id change on every response (a cache keyed by the raw header values gets no
free ride). Needs only the SDKs (no tokenrate): the peer benchmark imports it in every contender's venv.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import httpx2

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-sonnet-4-5"
SHORT_STREAM_CHUNKS = 10
LONG_STREAM_CHUNKS = 200

OPENAI_USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 20},
    "completion_tokens_details": {"reasoning_tokens": 8},
}
ANTHROPIC_USAGE = {
    "input_tokens": 100,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 20,
    "output_tokens": 30,
    "service_tier": "standard",
}


class StreamLength:
    """How many content chunks the next streamed answer has (set by the caller, so requests stay as users send)."""

    def __init__(self) -> None:
        self.chunks = SHORT_STREAM_CHUNKS


# -- openai --------------------------------------------------------------------------------------------------------


def _openai_headers(n: int, content_type: str) -> dict[str, str]:
    return {
        "content-type": content_type,
        "x-request-id": f"req_{n:08d}",
        "openai-processing-ms": "12",
        "x-ratelimit-limit-requests": "10000",
        "x-ratelimit-remaining-requests": str(9999 - n % 9999),
        "x-ratelimit-reset-requests": "6ms",
        "x-ratelimit-limit-tokens": "2000000",
        "x-ratelimit-remaining-tokens": str(1999850 - 150 * (n % 10000)),
        "x-ratelimit-reset-tokens": "4ms",
    }


_OPENAI_COMPLETION = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
        "usage": OPENAI_USAGE,
    }
).encode()


def _openai_chunk(content: str | None, finish: str | None = None, usage: dict | None = None) -> bytes:
    choices = [] if usage else [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def openai_stream_body(chunks: int, *, include_usage: bool) -> list[bytes]:
    """``chunks`` content chunks (the last with ``finish_reason``), then the usage chunk if asked, then [DONE]."""
    parts = [_openai_chunk(f"w{i} ") for i in range(chunks - 1)] + [_openai_chunk("end", "stop")]
    if include_usage:
        parts.append(_openai_chunk(None, usage=OPENAI_USAGE))
    parts.append(b"data: [DONE]\n\n")
    return parts


def _streamed(parts: list[bytes]) -> Any:
    """A body that arrives part by part, as over a network: ``content=bytes`` would make a response that is already
    read, which no real stream is (and which an instrumentation observing the body would never see arrive)."""
    return iter(parts)


def _openai_handler(length: StreamLength) -> Callable[[httpx2.Request], httpx2.Response]:
    counter = itertools.count()
    streams: dict[tuple[int, bool], list[bytes]] = {}

    def handle(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        n = next(counter)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = length.chunks
            key = (chunks, include_usage)
            if key not in streams:
                streams[key] = openai_stream_body(chunks, include_usage=include_usage)
            headers = _openai_headers(n, "text/event-stream")
            return httpx2.Response(200, headers=headers, content=_streamed(streams[key]))
        return httpx2.Response(200, headers=_openai_headers(n, "application/json"), content=_OPENAI_COMPLETION)

    return handle


def openai_client(length: StreamLength) -> Any:
    import openai

    return openai.OpenAI(
        api_key="sk-bench",
        base_url="http://bench.invalid/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(_openai_handler(length))),
        max_retries=0,
    )


_MESSAGES = [{"role": "user", "content": "hi"}]


def openai_json_call(client: Any) -> None:
    client.chat.completions.create(model=OPENAI_MODEL, messages=_MESSAGES)


def openai_stream_call(client: Any) -> int:
    """One streamed completion (usage asked for, as a user counting tokens does); returns the chunks read."""
    seen = 0
    for _ in client.chat.completions.create(
        model=OPENAI_MODEL, messages=_MESSAGES, stream=True, stream_options={"include_usage": True}
    ):
        seen += 1
    return seen


# -- anthropic -----------------------------------------------------------------------------------------------------

_RESET = "2026-01-01T00:00:01Z"


def _anthropic_headers(n: int, content_type: str) -> dict[str, str]:
    headers = {"content-type": content_type, "request-id": f"req_{n:08d}", "anthropic-organization-id": "org-bench"}
    for kind, limit, step in (
        ("requests", 4000, 1),
        ("tokens", 2000000, 130),
        ("input-tokens", 1600000, 100),
        ("output-tokens", 400000, 30),
    ):
        headers[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
        headers[f"anthropic-ratelimit-{kind}-remaining"] = str(limit - step * (1 + n % 1000))
        headers[f"anthropic-ratelimit-{kind}-reset"] = _RESET
    return headers


def _anthropic_message(*, done: bool) -> dict[str, Any]:
    return {
        "id": "msg_bench",
        "type": "message",
        "role": "assistant",
        "model": ANTHROPIC_MODEL,
        "content": [{"type": "text", "text": "hello", "citations": None}] if done else [],
        "stop_reason": "end_turn" if done else None,
        "stop_sequence": None,
        "usage": ANTHROPIC_USAGE if done else {**ANTHROPIC_USAGE, "output_tokens": 1},
    }


_ANTHROPIC_MESSAGE = json.dumps(_anthropic_message(done=True)).encode()


def _sse(payload: dict[str, Any]) -> bytes:
    return f"event: {payload['type']}\ndata: {json.dumps(payload)}\n\n".encode()


def anthropic_stream_body(chunks: int) -> list[bytes]:
    """message_start, content_block_start, ping, ``chunks`` text deltas, content_block_stop, message_delta, stop."""
    events = [
        {"type": "message_start", "message": _anthropic_message(done=False)},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        *(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": f"w{i} "}}
            for i in range(chunks)
        ),
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {
                "input_tokens": 100,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 20,
                "output_tokens": 30,
            },
        },
        {"type": "message_stop"},
    ]
    return [_sse(event) for event in events]


def _anthropic_handler(length: StreamLength) -> Callable[[httpx2.Request], httpx2.Response]:
    counter = itertools.count()
    streams: dict[int, list[bytes]] = {}

    def handle(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        n = next(counter)
        if body.get("stream"):
            chunks = length.chunks
            if chunks not in streams:
                streams[chunks] = anthropic_stream_body(chunks)
            headers = _anthropic_headers(n, "text/event-stream")
            return httpx2.Response(200, headers=headers, content=_streamed(streams[chunks]))
        return httpx2.Response(200, headers=_anthropic_headers(n, "application/json"), content=_ANTHROPIC_MESSAGE)

    return handle


def anthropic_client(length: StreamLength) -> Any:
    import anthropic

    return anthropic.Anthropic(
        api_key="sk-ant-bench",
        base_url="http://bench.invalid",
        http_client=httpx2.Client(transport=httpx2.MockTransport(_anthropic_handler(length))),
        max_retries=0,
    )


def anthropic_json_call(client: Any) -> None:
    client.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, messages=_MESSAGES)


def anthropic_stream_call(client: Any) -> int:
    """One streamed message, read event by event (``messages.create(stream=True)``); returns the events read."""
    seen = 0
    for _ in client.messages.create(model=ANTHROPIC_MODEL, max_tokens=256, messages=_MESSAGES, stream=True):
        seen += 1
    return seen


class Workload:
    """One SDK's client and calls, by name: ``openai`` or ``anthropic``."""

    def __init__(self, sdk: str) -> None:
        self._length = StreamLength()
        if sdk == "openai":
            self.client, self._json, self._stream = openai_client(self._length), openai_json_call, openai_stream_call
        elif sdk == "anthropic":
            self.client = anthropic_client(self._length)
            self._json, self._stream = anthropic_json_call, anthropic_stream_call
        else:
            raise ValueError(f"unknown sdk {sdk!r}")
        self.sdk = sdk

    def json_call(self) -> None:
        self._json(self.client)

    def stream_call(self, chunks: int) -> int:
        """A streamed call whose answer has ``chunks`` content chunks; returns the chunks/events the user read."""
        self._length.chunks = chunks
        return self._stream(self.client)

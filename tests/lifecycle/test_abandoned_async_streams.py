"""An async stream the user drops unread is recorded as abandoned, and asyncio stays quiet about it.

asyncio closes a collected async generator itself (its async-generator finalizer hook). tokenrate's observing
generator wraps the SDK's; if it closed the SDK's generator too, the two closes would race and asyncio would
log "Task exception was never retrieved ... aclose(): asynchronous generator is already running", once per
dropped stream. Without tokenrate there is no such message, so with it there must be none either.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from lifecycle_clients import make_client

DROPPED = 2
MESSAGES = [{"role": "user", "content": "Say hello"}]


async def _openai_chat(client: Any) -> Any:
    return await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)


async def _openai_responses(client: Any) -> Any:
    return await client.responses.create(model="gpt-4.1-mini", input="hello", stream=True)


async def _anthropic(client: Any) -> Any:
    return await client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, stream=True)


async def _gemini(client: Any) -> Any:
    return await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="hello")


OPENERS: dict[str, tuple[str, Callable[[Any], Awaitable[Any]]]] = {
    "openai chat": ("openai", _openai_chat),
    "openai responses": ("openai", _openai_responses),
    "anthropic messages": ("anthropic", _anthropic),
    "gemini": ("google-genai", _gemini),
}


async def _settle() -> None:
    """Collect the dropped stream, then let asyncio run the close tasks its finalizer hook scheduled."""
    gc.collect()  # a full collection takes a while with three SDKs loaded: once per stream is enough
    for _ in range(5):
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("kind", sorted(OPENERS))
async def test_dropped_async_streams_are_abandoned_without_asyncio_errors(kind, sim, telemetry, records):
    sdk, open_stream = OPENERS[kind]
    client = make_client(sdk, sim, telemetry, is_async=True)
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        for _ in range(DROPPED):
            stream = await open_stream(client)
            async for _ in stream:
                break
            del stream
            await _settle()
        await _settle()  # the finished close tasks are collected too: a failed one reports its exception then
    finally:
        loop.set_exception_handler(previous)
    assert [context.get("message") for context in reported] == []
    assert [record.outcome for record in records.calls] == ["abandoned"] * DROPPED
    assert all(record.time_to_first_chunk_s is not None for record in records.calls)

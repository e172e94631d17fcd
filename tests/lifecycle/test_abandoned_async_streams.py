"""An async stream the user drops unread is recorded as abandoned, and asyncio stays quiet about it.

asyncio closes a collected async generator itself (its async-generator finalizer hook). tokenrate's observing
generator wraps the SDK's; if it closed the SDK's generator too, the two closes would race and asyncio would
log "Task exception was never retrieved ... aclose(): asynchronous generator is already running", once per
dropped stream. Without tokenrate there is no such message, so with it there must be none either. And whichever
of the stream's generators asyncio closes first, the drop is recorded as such, never as the user's close.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
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


STAINLESS_OPENERS = {kind: OPENERS[kind] for kind in ("openai chat", "openai responses", "anthropic messages")}


async def _break_and_drop(open_stream: Callable[[], Awaitable[Any]]) -> tuple[list[Any], float]:
    """Read one item of a new stream and drop it; its async generators (tokenrate's, the SDK's, httpx's), in
    the order they started, still open, as asyncio's ``shutdown_asyncgens`` finds them at loop close."""
    opened: list[Any] = []
    firstiter, finalizer = sys.get_asyncgen_hooks()

    def note(agen: Any) -> None:
        opened.append(agen)
        firstiter(agen)

    sys.set_asyncgen_hooks(firstiter=note, finalizer=finalizer)
    try:
        stream = await open_stream()
        async for _ in stream:
            break
    finally:
        sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=finalizer)
    return opened, time.monotonic()


@pytest.mark.parametrize("kind", sorted(STAINLESS_OPENERS))
async def test_a_dropped_stream_is_abandoned_whichever_generator_asyncio_closes_first(kind, sim, telemetry, records):
    """asyncio closes a dropped stream's async generators itself, in no set order (its finalizer hook as each
    is collected; ``shutdown_asyncgens`` at loop close, every one still open). The SDK's generator closes the
    response in its ``finally``, and so does httpx's when its body iterators are closed: before tokenrate's
    generator hears of the drop, that must not read as the user's ``close()``. Each generator closed first in
    turn, the others after it, innermost first."""
    sdk, open_stream = STAINLESS_OPENERS[kind]
    client = make_client(sdk, sim, telemetry, is_async=True)
    generators, dropped_at = await _break_and_drop(lambda: open_stream(client))
    for first in range(len(generators)):
        if first:
            generators, dropped_at = await _break_and_drop(lambda: open_stream(client))
        for agen in [generators[first], *reversed(generators[:first] + generators[first + 1 :])]:
            await agen.aclose()  # as asyncio closes them: each on its own, the others still open
        record = records.last
        assert record.outcome == "abandoned", f"{generators[first]!r} closed first"
        assert record.time_to_first_chunk_s is not None
        assert record.ended_at <= dropped_at  # ended at its last chunk, not when asyncio closed it
    assert len(records.calls) == len(generators)

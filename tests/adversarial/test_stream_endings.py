"""Every stream kind x every way a user can end it: recorded exactly once, with the right outcome.

The endings a user chooses: read to the end (with or without ``with``), ``close()`` early, ``break`` inside a
``with`` block, ``break`` and drop the stream (garbage-collected), never iterate it, raise inside the loop.
The endings the server chooses (dropped connection, in-stream error event, read timeout) are the same matrix
in ``tests/lifecycle/test_stream_failures.py``: an error of the user's exception type, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
from sdk_support import HAS_GENAI

MESSAGES = [{"role": "user", "content": "Say hello"}]


def make_client(sdk: str, sim: Any, telemetry: Any, *, is_async: bool = False) -> Any:
    """A client of ``sdk`` on the simulator, without SDK retries."""
    if sdk == "openai":
        cls = openai.AsyncOpenAI if is_async else openai.OpenAI
        return cls(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    if sdk == "anthropic":
        cls = anthropic.AsyncAnthropic if is_async else anthropic.Anthropic
        return cls(base_url=sim.anthropic_base_url, api_key="sk-ant-test", max_retries=0)
    if not HAS_GENAI:
        pytest.skip("google-genai 3.x needs Python >= 3.11")
    from google import genai
    from google.genai import types

    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=sim.gemini_base_url))


class UserError(Exception):
    """Raised by the user's own loop body."""


@dataclass(frozen=True)
class Kind:
    sdk: str
    open: Callable[[Any], Any]
    """Returns the stream object (a context manager for helpers), as the user gets it."""
    lazy: bool = False
    """Nothing is sent until the user starts it (helpers send on ``__enter__``, Gemini on the first step)."""
    helper: bool = False
    """A ``.stream()`` helper: only usable as a ``with`` block."""
    context: bool = True
    """Usable as a ``with`` block (google-genai hands back a bare generator)."""
    usage: bool = True
    """Reports usage when read to the end (a legacy completions stream does only when the user asks)."""


SYNC_KINDS = {
    "openai chat": Kind("openai", lambda c: c.chat.completions.create(model="m", messages=MESSAGES, stream=True)),
    "openai chat .stream()": Kind(
        "openai", lambda c: c.chat.completions.stream(model="m", messages=MESSAGES), lazy=True, helper=True
    ),
    "openai responses": Kind("openai", lambda c: c.responses.create(model="m", input="hi", stream=True)),
    "openai completions": Kind(
        "openai", lambda c: c.completions.create(model="m", prompt="hi", stream=True), usage=False
    ),
    "anthropic create": Kind(
        "anthropic", lambda c: c.messages.create(model="c", max_tokens=50, messages=MESSAGES, stream=True)
    ),
    "anthropic .stream()": Kind(
        "anthropic", lambda c: c.messages.stream(model="c", max_tokens=50, messages=MESSAGES), lazy=True, helper=True
    ),
    "gemini": Kind(
        "google-genai", lambda c: c.models.generate_content_stream(model="g", contents="hi"), lazy=True, context=False
    ),
}


def _full(stream):
    list(stream)


def _with_full(stream):
    with stream as s:
        list(s)


def _close_early(stream):
    iterator = iter(stream)
    next(iterator)
    stream.close()


def _with_break(stream):
    with stream as s:
        for _ in s:
            break


def _break_and_drop(stream):
    for _ in stream:
        break


def _never_iterated(stream):
    pass


def _raise_in_loop(stream):
    for _ in stream:
        raise UserError


def _raise_in_with(stream):
    with stream as s:
        for _ in s:
            raise UserError


# ending -> (outcome, usable with plain streams, usable with helpers)
SYNC_ENDINGS: dict[str, tuple[Callable[[Any], None], str, bool, bool]] = {
    "read to the end": (_full, "ok", True, False),
    "with, read to the end": (_with_full, "ok", True, True),
    "close() early": (_close_early, "closed", True, False),
    "with, break": (_with_break, "closed", True, True),
    "break and drop": (_break_and_drop, "abandoned", True, False),
    "never iterated, dropped": (_never_iterated, "abandoned", True, True),
    "user exception, dropped": (_raise_in_loop, "abandoned", True, False),
    "user exception in with": (_raise_in_with, "closed", True, True),
}


def _end(ending: Callable[[Any], None], stream: Any) -> None:
    with contextlib.suppress(UserError):
        ending(stream)


@pytest.mark.parametrize("ending", list(SYNC_ENDINGS))
@pytest.mark.parametrize("kind", list(SYNC_KINDS))
def test_sync_stream_endings_are_recorded_once(kind, ending, sim, telemetry, records):
    stream_kind = SYNC_KINDS[kind]
    end, outcome, plain, helper = SYNC_ENDINGS[ending]
    if not (helper if stream_kind.helper else plain) or ("with" in ending and not stream_kind.context):
        pytest.skip("not a way this kind of stream can be used")
    client = make_client(stream_kind.sdk, sim, telemetry)

    _end(end, stream_kind.open(client))
    gc.collect()

    expect_record(sim, telemetry, records, stream_kind, ending, outcome)


def expect_record(sim, telemetry, records, kind: Kind, ending: str, outcome: str) -> None:
    if kind.lazy and ending.startswith("never iterated"):
        assert sim.served == []  # nothing was sent, so nothing is recorded
        assert records.calls == []
        return
    assert len(records.calls) == 1
    assert records.last.error_type is None
    assert telemetry.total("tokenrate.requests") == 1
    assert len(telemetry.spans()) == 1
    assert records.last.outcome == outcome
    if outcome == "ok" and kind.usage:
        assert records.last.usage.input is not None


# -- async ------------------------------------------------------------------------------------------------------


async def _aopen_chat(c):
    return await c.chat.completions.create(model="m", messages=MESSAGES, stream=True)


async def _aopen_anthropic(c):
    return await c.messages.create(model="c", max_tokens=50, messages=MESSAGES, stream=True)


async def _aopen_gemini(c):
    return await c.aio.models.generate_content_stream(model="g", contents="hi")


ASYNC_KINDS = {
    "async openai chat": Kind("openai", _aopen_chat),
    "async anthropic create": Kind("anthropic", _aopen_anthropic),
    "async gemini": Kind("google-genai", _aopen_gemini, lazy=True),
}


async def _afull(stream):
    async for _ in stream:
        pass


async def _aclose_early(stream):
    await stream.__anext__()
    await stream.aclose() if hasattr(stream, "aclose") else await stream.close()


async def _abreak_and_drop(stream):
    async for _ in stream:
        break


async def _anever(stream):
    pass


async def _araise(stream):
    async for _ in stream:
        raise UserError


ASYNC_ENDINGS = {
    "read to the end": (_afull, "ok"),
    "close early": (_aclose_early, "closed"),
    "break and drop": (_abreak_and_drop, "abandoned"),
    "never iterated, dropped": (_anever, "abandoned"),
    "user exception, dropped": (_araise, "abandoned"),
}


@pytest.mark.parametrize("ending", list(ASYNC_ENDINGS))
@pytest.mark.parametrize("kind", list(ASYNC_KINDS))
def test_async_stream_endings_are_recorded_once(kind, ending, sim, telemetry, records):
    stream_kind = ASYNC_KINDS[kind]
    end, outcome = ASYNC_ENDINGS[ending]

    async def scenario():
        client = make_client(stream_kind.sdk, sim, telemetry, is_async=True)
        stream = await stream_kind.open(client)
        with contextlib.suppress(UserError):
            await end(stream)
        del stream
        gc.collect()
        await asyncio.sleep(0)  # let the loop run what the collection scheduled

    asyncio.run(scenario())
    gc.collect()

    expect_record(sim, telemetry, records, stream_kind, ending, outcome)

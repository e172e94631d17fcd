"""A stream that ends with an exception is an error of that exception's type, with the usage seen so far.

Every stream kind of every instrumented SDK, sync and async, against the three ways a stream fails part-way:
the server drops the connection, sends the provider's in-stream error event, or stalls past the read timeout.
The record, the metrics, the span (ERROR status) and the local view all say so, once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from lifecycle_clients import make_client
from opentelemetry.trace import StatusCode

import tokenrate
from tokenrate.records import TokenUsage
from tokenrate.simulator import Step, UsagePlan

PLAN = UsagePlan(input=120, output=30, cache_read=20)
MESSAGES = [{"role": "user", "content": "Say hello"}]
READ_TIMEOUT_S = 0.5
"""The clients' timeout in the stall cases; the simulator stalls far longer (and stops at once at teardown)."""

FAILURES = {
    "dropped connection": lambda: Step.drop_mid_stream(after_events=2),
    "error event": lambda: Step.error_event(after_events=2),
    "read timeout": lambda: Step.stall_mid_stream(60, after_events=2),
}


@dataclass(frozen=True)
class StreamKind:
    sdk: str
    is_async: bool
    consume: Callable[[Any, list], Any]
    """Reads the whole stream as a user would, appending each item to the list (a coroutine for async kinds)."""


def _openai_chat(client, seen):
    seen.extend(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))


def _openai_chat_helper(client, seen):
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        seen.extend(stream)


def _openai_responses(client, seen):
    seen.extend(client.responses.create(model="gpt-4.1-mini", input="hello", stream=True))


def _openai_completions(client, seen):
    seen.extend(client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hello", stream=True))


def _anthropic_create(client, seen):
    seen.extend(client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, stream=True))


def _anthropic_helper(client, seen):
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES) as stream:
        seen.extend(stream)


def _gemini(client, seen):
    seen.extend(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hello"))


async def _aopenai_chat(client, seen):
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    async for chunk in stream:
        seen.append(chunk)


async def _aopenai_responses_helper(client, seen):
    async with client.responses.stream(model="gpt-4.1-mini", input="hello") as stream:
        async for event in stream:
            seen.append(event)


async def _aanthropic_create(client, seen):
    stream = await client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, stream=True)
    async for event in stream:
        seen.append(event)


async def _aanthropic_helper(client, seen):
    async with client.messages.stream(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES) as stream:
        async for event in stream:
            seen.append(event)


async def _agemini(client, seen):
    stream = await client.aio.models.generate_content_stream(model="gemini-2.5-flash", contents="hello")
    async for chunk in stream:
        seen.append(chunk)


KINDS = {
    "openai chat": StreamKind("openai", False, _openai_chat),
    "openai chat .stream()": StreamKind("openai", False, _openai_chat_helper),
    "openai responses": StreamKind("openai", False, _openai_responses),
    "openai completions": StreamKind("openai", False, _openai_completions),
    "anthropic create": StreamKind("anthropic", False, _anthropic_create),
    "anthropic .stream()": StreamKind("anthropic", False, _anthropic_helper),
    "gemini": StreamKind("google-genai", False, _gemini),
    "async openai chat": StreamKind("openai", True, _aopenai_chat),
    "async openai responses .stream()": StreamKind("openai", True, _aopenai_responses_helper),
    "async anthropic create": StreamKind("anthropic", True, _aanthropic_create),
    "async anthropic .stream()": StreamKind("anthropic", True, _aanthropic_helper),
    "async gemini": StreamKind("google-genai", True, _agemini),
}


async def _read(kind: StreamKind, client: Any, seen: list) -> None:
    if kind.is_async:
        await kind.consume(client, seen)
    else:
        kind.consume(client, seen)


def usage_so_far(sdk: str, seen: list) -> TokenUsage:
    """What the items the user received say about usage, in tokenrate's terms (each provider's rule)."""
    if sdk == "anthropic":  # message_start: the input side, uncached input apart, and a provisional output
        usage = next(event.message.usage for event in seen if event.type == "message_start")
        cache_read, cache_write = usage.cache_read_input_tokens, usage.cache_creation_input_tokens
        return TokenUsage(
            input=usage.input_tokens + (cache_read or 0) + (cache_write or 0),
            output=usage.output_tokens,
            cache_read=cache_read,
            cache_write=cache_write,
        )
    if sdk == "google-genai":  # each chunk: the running totals, thoughts part of output
        usage = seen[-1].usage_metadata
        thoughts = usage.thoughts_token_count
        return TokenUsage(
            input=usage.prompt_token_count,
            output=usage.candidates_token_count + (thoughts or 0),
            cache_read=usage.cached_content_token_count,
            reasoning=thoughts,
        )
    assert all(getattr(item, "usage", None) is None for item in seen)  # OpenAI: usage comes last
    return TokenUsage()


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_a_stream_that_fails_part_way_is_an_error(kind, failure, sim, telemetry, records):
    stream_kind = KINDS[kind]
    sim.usage = PLAN
    timeout = READ_TIMEOUT_S if failure == "read timeout" else 10.0
    client = make_client(stream_kind.sdk, sim, telemetry, timeout=timeout, is_async=stream_kind.is_async)
    tokenrate.reset()
    sim.script(FAILURES[failure]())

    seen: list = []
    with pytest.raises(Exception) as raised:  # noqa: PT011 - whatever the SDK raises, tokenrate must record it
        await _read(stream_kind, client, seen)
    error_type = type(raised.value).__qualname__

    (record,) = records.calls
    assert (record.outcome, record.error_type) == ("error", error_type)
    assert seen  # events did arrive before the failure
    assert record.usage == usage_so_far(stream_kind.sdk, seen)
    assert record.time_to_first_chunk_s is not None
    (span,) = telemetry.spans()
    assert span.status.status_code is StatusCode.ERROR
    assert dict(span.attributes)["error.type"] == error_type
    assert telemetry.total("tokenrate.requests", error__type=error_type) == 1
    snapshot = tokenrate.snapshot()
    assert (snapshot.errors, dict(snapshot.errors_by_type)) == (1, {error_type: 1})


def test_a_raw_streamed_body_that_fails_part_way_is_an_error(sim, telemetry, records):
    """``with_streaming_response``: the user reads the bytes; the HTTP client's exception is the call's error."""
    client = make_client("openai", sim, telemetry)
    sim.script(Step.drop_mid_stream(after_events=2))
    with (
        pytest.raises(Exception) as raised,  # noqa: PT011
        client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        ) as response,
    ):
        for _ in response.iter_lines():
            pass
    (record,) = records.calls
    assert (record.outcome, record.error_type) == ("error", type(raised.value).__qualname__)


def test_a_stream_read_to_its_end_is_still_ok(sim, telemetry, records):
    """The counterpart: the same kinds, no failure scripted, are recorded as ``ok`` with their whole usage."""
    sim.usage = PLAN
    client = make_client("openai", sim, telemetry)
    _openai_chat(client, [])
    _openai_chat_helper(client, [])
    assert [(r.outcome, r.error_type) for r in records.calls] == [("ok", None), ("ok", None)]
    assert records.last.usage == TokenUsage(input=120, output=30, cache_read=20)

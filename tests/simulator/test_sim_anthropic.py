"""The Anthropic wire protocol, proven with the real ``anthropic`` SDK."""

from __future__ import annotations

import json
from typing import Any

import anthropic

from tokenrate.simulator import UsagePlan

PLAN = UsagePlan(input=120, output=30, cache_read=20, cache_write=10, reasoning=8, tool_use=5)
CLAUDE = "claude-haiku-4-5"
HI = [{"role": "user", "content": "hi"}]


def assert_anthropic_usage(usage: Any, plan: UsagePlan) -> None:
    """Anthropic arithmetic: input_tokens is only the uncached part; output is inclusive of thinking."""
    assert usage.input_tokens == plan.input - plan.cache_read - plan.cache_write
    assert usage.cache_read_input_tokens == plan.cache_read
    assert usage.cache_creation_input_tokens == plan.cache_write
    assert usage.output_tokens == plan.output
    assert usage.output_tokens_details.thinking_tokens == plan.reasoning


def test_messages_create(sim, claude) -> None:
    sim.usage = PLAN
    message = claude.messages.create(model=CLAUDE, max_tokens=100, messages=HI)
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.stop_reason == "end_turn"
    assert message.model == CLAUDE
    assert len(message.content[0].text.split()) == PLAN.output - PLAN.reasoning
    assert_anthropic_usage(message.usage, PLAN)
    assert message.usage.server_tool_use is None  # web_search_requests 0 → omitted
    (served,) = sim.served
    assert (served.protocol, served.endpoint, served.stream, served.status) == ("anthropic", "messages", False, 200)
    # anthropic 2.12 sends the key as a bearer token (older versions used x-api-key).
    assert served.headers.get("x-api-key") == "x" or served.headers.get("authorization") == "Bearer x"
    assert served.headers["anthropic-version"]


async def test_async_messages_create(sim) -> None:
    sim.usage = PLAN
    async with anthropic.AsyncAnthropic(base_url=sim.anthropic_base_url, api_key="x") as client:
        message = await client.messages.create(model=CLAUDE, max_tokens=100, messages=HI)
    assert_anthropic_usage(message.usage, PLAN)


def test_raw_event_stream(sim, claude) -> None:
    sim.usage = PLAN
    events = list(claude.messages.create(model=CLAUDE, max_tokens=100, messages=HI, stream=True))
    types = [event.type for event in events]
    assert types[:2] == ["message_start", "content_block_start"]
    assert set(types[2:-3]) == {"content_block_delta"}
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start, delta = events[0], events[-2]
    # message_start: input and cache counts, a provisional output count.
    assert start.message.usage.input_tokens == PLAN.input - PLAN.cache_read - PLAN.cache_write
    assert start.message.usage.cache_read_input_tokens == PLAN.cache_read
    assert start.message.usage.output_tokens == 1
    # message_delta: the cumulative final counts (input/cache repeated, as the API now does).
    assert delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == PLAN.output
    assert delta.usage.input_tokens == PLAN.input - PLAN.cache_read - PLAN.cache_write
    assert delta.usage.cache_creation_input_tokens == PLAN.cache_write
    assert delta.usage.output_tokens_details.thinking_tokens == PLAN.reasoning


def test_raw_stream_has_ping_and_event_lines(sim, claude) -> None:
    with claude.messages.with_streaming_response.create(
        model=CLAUDE, max_tokens=100, messages=HI, stream=True
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    data = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert [d["type"] for d in data] == names


def test_stream_helper(sim, claude) -> None:
    sim.usage = PLAN
    with claude.messages.stream(model=CLAUDE, max_tokens=100, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == final.content[0].text
    assert len(text.split()) == PLAN.output - PLAN.reasoning
    assert_anthropic_usage(final.usage, PLAN)
    assert sim.served[0].stream is True


def test_with_raw_response_headers(sim, claude) -> None:
    raw = claude.messages.with_raw_response.create(model=CLAUDE, max_tokens=100, messages=HI)
    assert raw.headers["x-tokenrate-simulated"] == "true"
    assert raw.headers["request-id"].startswith("req_")
    assert int(raw.headers["anthropic-ratelimit-requests-limit"]) > 0
    assert raw.parse().usage.output_tokens > 0


def test_web_search_requests(sim, claude) -> None:
    sim.usage = UsagePlan(input=40, output=10, web_search_requests=2)
    message = claude.messages.create(model=CLAUDE, max_tokens=100, messages=HI)
    assert message.usage.server_tool_use.web_search_requests == 2
    with claude.messages.stream(model=CLAUDE, max_tokens=100, messages=HI) as stream:
        final = stream.get_final_message()
    assert final.usage.server_tool_use.web_search_requests == 2


def test_unknown_fields_are_omitted(sim, claude) -> None:
    sim.usage = UsagePlan(input=40, output=10)
    raw = claude.messages.with_raw_response.create(model=CLAUDE, max_tokens=100, messages=HI)
    usage = json.loads(raw.text())["usage"]
    assert usage["input_tokens"] == 40
    assert usage["output_tokens"] == 10
    assert not {"cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens_details"} & set(usage)


def test_max_tokens_stop_reason(sim, claude) -> None:
    message = claude.messages.create(model=CLAUDE, max_tokens=2, messages=HI)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 2


def test_count_tokens(sim, claude) -> None:
    sim.usage = PLAN
    count = claude.messages.count_tokens(model=CLAUDE, messages=HI)
    assert count.input_tokens == PLAN.input
    (served,) = sim.served
    assert served.endpoint == "count_tokens"
    assert served.usage is None

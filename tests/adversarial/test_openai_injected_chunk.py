"""The usage chunk tokenrate asks OpenAI for: hidden exactly when it exists only because tokenrate asked.

A server that honours ``stream_options.include_usage`` marks every chunk ``"usage": null`` and adds one
choice-less chunk at the end: that one is tokenrate's, whatever it carries. A server that sends a usage chunk
unasked sends it to the user with or without tokenrate, so tokenrate must not hide it.
"""

from __future__ import annotations

import openai
import pytest
from wire_bodies import openai_chat_stream, openai_chunk, sse

import tokenrate
from tokenrate.records import TokenUsage
from tokenrate.simulator import Step

MESSAGES = [{"role": "user", "content": "hi"}]
VALID = {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}


def stream(sim) -> list:
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    return list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))


def visible(chunks) -> list:
    """What user code reads off the chunks (``to_json`` aside: see the README's documented changes)."""
    return [(c.choices[0].delta.content, c.choices[0].finish_reason, c.usage) for c in chunks]


@pytest.mark.parametrize(
    "usage",
    [None, {"prompt_tokens": float("nan")}, {"prompt_tokens": -1, "completion_tokens": 2}, "garbage", VALID],
    ids=["null", "nan", "negative", "not-an-object", "valid"],
)
def test_the_injected_chunk_is_hidden_whatever_it_carries(sim, telemetry, records, usage):
    # An honouring server: "usage": null on every chunk, then the choice-less usage chunk.
    sim.script(Step.raw(events=openai_chat_stream(openai_chunk([], usage=usage), usage_on_every_chunk=None)))

    chunks = stream(sim)

    assert [c.choices[0].delta.content for c in chunks] == ["", "hi", None]  # chunk.choices[0] never fails
    assert records.last.usage == (TokenUsage(input=7, output=2) if usage is VALID else TokenUsage())
    assert records.last.outcome == "ok"
    assert sim.served[-1].body["stream_options"] == {"include_usage": True}


def test_a_usage_chunk_the_server_sends_unasked_reaches_the_user(sim, telemetry, records):
    # This server ignores stream_options and always ends with a usage chunk: the user gets it either way.
    events = openai_chat_stream(openai_chunk([], usage=VALID))
    sim.script(Step.raw(events=events, times=2))

    with_tokenrate = stream(sim)
    tokenrate.uninstrument()
    without = stream(sim)

    assert len(with_tokenrate) == len(without) == 4
    assert [c.model_dump() for c in with_tokenrate] == [c.model_dump() for c in without]
    assert records.last.usage == TokenUsage(input=7, output=2)


def test_a_leading_choiceless_chunk_is_the_users(sim, telemetry, records):
    # Azure opens with prompt-filter results and no choices; it is not the usage chunk, even marked usage: null.
    opening = openai_chunk([], usage=None, prompt_filter_results=[{"prompt_index": 0}])
    events = [sse(opening), *openai_chat_stream(openai_chunk([], usage=VALID), usage_on_every_chunk=None)]
    sim.script(Step.raw(events=events))

    chunks = stream(sim)

    assert [len(c.choices) for c in chunks] == [0, 1, 1, 1]
    assert records.last.usage == TokenUsage(input=7, output=2)


def test_against_the_simulator_the_user_sees_what_they_would_without_tokenrate(sim, telemetry, records):
    with_tokenrate = stream(sim)
    tokenrate.uninstrument()
    without = stream(sim)

    assert visible(with_tokenrate) == visible(without)
    assert records.last.usage.input is not None

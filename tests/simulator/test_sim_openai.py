"""The OpenAI wire protocol, proven with the real ``openai`` SDK (sync and async)."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import openai
import pydantic
import pytest

from tokenrate.simulator import UsagePlan

PLAN = UsagePlan(input=120, output=30, cache_read=20, cache_write=10, reasoning=8, tool_use=5)
GPT = "gpt-4o-mini"
HI = [{"role": "user", "content": "hi"}]


def assert_chat_usage(usage: Any, plan: UsagePlan) -> None:
    """OpenAI arithmetic: prompt_tokens is all input (cache included), completion_tokens all output."""
    assert usage.prompt_tokens == plan.input
    assert usage.completion_tokens == plan.output
    assert usage.total_tokens == plan.input + plan.output
    assert usage.prompt_tokens_details.cached_tokens == plan.cache_read
    assert usage.prompt_tokens_details.cache_write_tokens == plan.cache_write
    assert usage.completion_tokens_details.reasoning_tokens == plan.reasoning


def test_chat_json_usage_follows_the_plan(sim, oai) -> None:
    sim.usage = PLAN
    completion = oai.chat.completions.create(model=GPT, messages=HI)
    assert completion.object == "chat.completion"
    assert completion.model == GPT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.role == "assistant"
    # One word per visible output token: output minus reasoning.
    assert len(completion.choices[0].message.content.split()) == PLAN.output - PLAN.reasoning
    assert_chat_usage(completion.usage, PLAN)
    (served,) = sim.served
    assert (served.protocol, served.endpoint, served.model, served.stream, served.status) == (
        "openai",
        "chat.completions",
        GPT,
        False,
        200,
    )
    assert served.usage == PLAN
    assert served.body["messages"] == HI
    assert served.headers["authorization"] == "Bearer sk-test"


async def test_async_chat_json_and_stream(sim) -> None:
    sim.usage = PLAN
    async with openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test") as client:
        completion = await client.chat.completions.create(model=GPT, messages=HI)
        assert_chat_usage(completion.usage, PLAN)
        stream = await client.chat.completions.create(
            model=GPT, messages=HI, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == []
    assert_chat_usage(chunks[-1].usage, PLAN)
    assert [s.stream for s in sim.served] == [False, True]


def test_chat_stream_with_include_usage(sim, oai) -> None:
    sim.usage = PLAN
    stream = oai.chat.completions.create(model=GPT, messages=HI, stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    *body, last = chunks
    assert all(chunk.usage is None for chunk in body)
    assert last.choices == []
    assert_chat_usage(last.usage, PLAN)
    assert body[0].choices[0].delta.role == "assistant"
    assert body[-1].choices[0].finish_reason == "stop"
    text = "".join(chunk.choices[0].delta.content or "" for chunk in body)
    assert len(text.split()) == PLAN.output - PLAN.reasoning
    assert sim.served[0].include_usage is True


def test_chat_stream_without_include_usage_has_no_usage_on_the_wire(sim, oai) -> None:
    sim.usage = PLAN
    with oai.chat.completions.with_streaming_response.create(model=GPT, messages=HI, stream=True) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert chunks
    assert all("usage" not in chunk for chunk in chunks)
    assert all(chunk["choices"] for chunk in chunks)
    assert sim.served[0].include_usage is False


def test_chat_stream_with_include_usage_sends_null_usage_then_a_usage_chunk(sim, oai) -> None:
    sim.usage = PLAN
    with oai.chat.completions.with_streaming_response.create(
        model=GPT, messages=HI, stream=True, stream_options={"include_usage": True}
    ) as response:
        lines = [line for line in response.iter_lines() if line]
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert all(chunk["usage"] is None for chunk in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["prompt_tokens"] == PLAN.input


def test_stream_helper_final_completion(sim, oai) -> None:
    sim.usage = PLAN
    with oai.chat.completions.stream(model=GPT, messages=HI, stream_options={"include_usage": True}) as stream:
        deltas = [event.delta for event in stream if event.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == final.choices[0].message.content
    assert_chat_usage(final.usage, PLAN)


def test_parse_with_a_pydantic_format(sim, oai) -> None:
    class Answer(pydantic.BaseModel):
        city: str
        population: int
        tags: list[str]

    sim.usage = PLAN
    completion = oai.chat.completions.parse(model=GPT, messages=HI, response_format=Answer)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Answer)
    assert_chat_usage(completion.usage, PLAN)


def test_none_fields_are_left_off_the_wire(sim, oai) -> None:
    sim.usage = UsagePlan(input=50, output=7)
    raw = oai.chat.completions.with_raw_response.create(model=GPT, messages=HI)
    usage = json.loads(raw.text)["usage"]
    assert usage == {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57}


def test_default_usage_is_derived_exactly_from_the_request(sim, oai) -> None:
    first = oai.chat.completions.create(model=GPT, messages=HI)
    second = oai.chat.completions.create(model=GPT, messages=HI)
    served = sim.served
    assert first.usage.prompt_tokens == 10 + served[0].body_size // 20
    assert first.usage.completion_tokens == len(first.choices[0].message.content.split())
    assert first.usage.prompt_tokens_details is None  # the default plan knows only input and output
    assert second.usage == first.usage  # reproducible
    assert served[0].usage == UsagePlan(input=first.usage.prompt_tokens, output=first.usage.completion_tokens)


def test_max_tokens_cuts_the_answer(sim, oai) -> None:
    completion = oai.chat.completions.create(model=GPT, messages=HI, max_completion_tokens=3)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3
    assert len(completion.choices[0].message.content.split()) == 3


def test_responses_json(sim, oai) -> None:
    sim.usage = PLAN
    response = oai.responses.create(model=GPT, input="hi")
    assert response.status == "completed"
    assert len(response.output_text.split()) == PLAN.output - PLAN.reasoning
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (120, 30, 150)
    assert usage.input_tokens_details.cached_tokens == PLAN.cache_read
    assert usage.output_tokens_details.reasoning_tokens == PLAN.reasoning
    assert sim.served[0].endpoint == "responses"


def test_responses_stream_helper(sim, oai) -> None:
    sim.usage = PLAN
    with oai.responses.stream(model=GPT, input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    types = [event.type for event in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert set(types[4:-4]) == {"response.output_text.delta"}
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert final.output_text == "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert (final.usage.input_tokens, final.usage.output_tokens) == (PLAN.input, PLAN.output)
    assert final.usage.input_tokens_details.cached_tokens == PLAN.cache_read
    assert final.usage.output_tokens_details.reasoning_tokens == PLAN.reasoning


async def test_async_responses_stream(sim) -> None:
    sim.usage = PLAN
    client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    async with client, client.responses.stream(model=GPT, input="hi") as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_response()
    assert final.usage.total_tokens == PLAN.input + PLAN.output


@pytest.mark.parametrize("encoding_format", [None, "float", "base64"])
def test_embeddings(sim, oai, encoding_format) -> None:
    sim.usage = UsagePlan(input=42, output=99)
    kwargs = {"encoding_format": encoding_format} if encoding_format else {}
    result = oai.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"], dimensions=8, **kwargs)
    assert [item.index for item in result.data] == [0, 1]
    vectors = [item.embedding for item in result.data]
    if encoding_format == "base64":  # asked for explicitly, the SDK hands the base64 text back as is
        vectors = [list(struct.unpack("<8f", base64.b64decode(v))) for v in vectors]
    assert all(len(v) == 8 for v in vectors)
    assert vectors[0] != vectors[1]
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (42, 42)
    served = sim.served[0]
    # The SDK asks for base64 unless told otherwise, and decodes it back to floats.
    assert served.body["encoding_format"] == (encoding_format or "base64")
    assert served.usage == UsagePlan(input=42)


def test_embeddings_are_the_same_in_both_encodings(sim, oai) -> None:
    as_float = oai.embeddings.create(model="text-embedding-3-small", input="alpha", encoding_format="float")
    as_b64 = oai.embeddings.create(model="text-embedding-3-small", input="alpha")
    assert as_float.data[0].embedding == as_b64.data[0].embedding


def test_legacy_completions(sim, oai) -> None:
    sim.usage = UsagePlan(input=11, output=4)
    completion = oai.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi")
    assert len(completion.choices[0].text.split()) == 4
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 4)
    chunks = list(
        oai.completions.create(
            model="gpt-3.5-turbo-instruct", prompt="hi", stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage.completion_tokens == 4
    assert sim.served[0].endpoint == "completions"

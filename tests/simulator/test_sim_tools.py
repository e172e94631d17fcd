"""Tool / function calls (`Step.tool_call`) in each wire protocol, proven with the real SDKs.

Each answer must parse into the SDK's own tool-call objects (and its stream accumulators), and the follow-up
request that carries the result back must show up in ``ServedRequest.tool_results``.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import openai
import pydantic
import pytest

from tokenrate.simulator import ServedRequest, SimulatorClient, Step, UsagePlan

GPT = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
GEMINI = "gemini-2.5-flash"
PLAN = UsagePlan(input=90, output=14, cache_read=30, reasoning=4)
ARGS = {"city": 'São "Paulo"', "days": 3}
"""Quotes and non-ASCII: the streamed pieces cut through escapes and multi-byte characters."""


class GetWeather(pydantic.BaseModel):
    """The weather in a city."""

    city: str
    days: int


OPENAI_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": GetWeather.model_json_schema(),
    },
}
RESPONSES_TOOL = {"type": "function", "name": "get_weather", "parameters": GetWeather.model_json_schema()}
ANTHROPIC_TOOL = {"name": "get_weather", "description": "The weather.", "input_schema": GetWeather.model_json_schema()}
ASK = [{"role": "user", "content": "Weather in São Paulo?"}]


# -- OpenAI chat completions ----------------------------------------------------------------------------------


def test_openai_chat_tool_call_and_result(sim, oai) -> None:
    sim.script(Step.tool_call("get_weather", ARGS, usage=PLAN))
    completion = oai.chat.completions.create(model=GPT, messages=ASK, tools=[OPENAI_TOOL])
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == ARGS
    assert completion.usage.prompt_tokens == PLAN.input
    assert completion.usage.completion_tokens == PLAN.output

    # The result goes back as a tool message; the next answer is text again.
    follow_up = [
        *ASK,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    answer = oai.chat.completions.create(model=GPT, messages=follow_up, tools=[OPENAI_TOOL])
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].message.content
    assert not answer.choices[0].message.tool_calls
    first, second = sim.served
    assert (first.outcome, first.tool_results, first.usage) == ("tool_call", 0, PLAN)
    assert (second.outcome, second.tool_results) == ("ok", 1)


def test_openai_chat_stream_helper_accumulates_the_tool_call(sim, oai) -> None:
    sim.script(Step.tool_call("get_weather", ARGS, usage=PLAN))
    with oai.chat.completions.stream(
        model=GPT,
        messages=ASK,
        tools=[openai.pydantic_function_tool(GetWeather, name="get_weather")],
        stream_options={"include_usage": True},
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.delta" in kinds
    assert "tool_calls.function.arguments.done" in kinds
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == ARGS
    assert call.function.parsed_arguments == GetWeather(**ARGS)
    assert call.id == f"call_{sim.served[0].response_headers['x-request-id'].removeprefix('req_')}"
    assert final.usage.completion_tokens == PLAN.output
    assert final.usage.prompt_tokens_details.cached_tokens == PLAN.cache_read


def test_openai_raw_chat_stream_deltas(sim, oai) -> None:
    """Only the first delta names the call (index, id, type, name); the rest carry argument pieces."""
    sim.script(Step.tool_call("get_weather", ARGS))
    chunks = list(oai.chat.completions.create(model=GPT, messages=ASK, tools=[OPENAI_TOOL], stream=True))
    calls = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert calls[0].id == f"call_{sim.served[0].response_headers['x-request-id'].removeprefix('req_')}"
    assert calls[0].function.name == "get_weather"
    assert calls[0].function.arguments == ""
    assert len(calls) > 2
    assert all(c.index == 0 and c.id is None and c.function.name is None for c in calls[1:])
    assert json.loads("".join(c.function.arguments for c in calls)) == ARGS
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


# -- OpenAI Responses -----------------------------------------------------------------------------------------


def test_openai_responses_function_call_and_output(sim, oai) -> None:
    sim.script(Step.tool_call("get_weather", ARGS, usage=PLAN))
    response = oai.responses.create(model=GPT, input="Weather in São Paulo?", tools=[RESPONSES_TOOL])
    (item,) = response.output
    assert item.type == "function_call"
    assert item.name == "get_weather"
    assert json.loads(item.arguments) == ARGS
    assert item.call_id.startswith("call_")
    assert item.status == "completed"
    assert response.output_text == ""
    assert response.usage.output_tokens == PLAN.output

    follow_up = [
        {"role": "user", "content": "Weather in São Paulo?"},
        item.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": item.call_id, "output": "sunny"},
    ]
    answer = oai.responses.create(model=GPT, input=follow_up, tools=[RESPONSES_TOOL])
    assert answer.output_text
    assert [s.tool_results for s in sim.served] == [0, 1]


def test_openai_responses_stream_function_call(sim, oai) -> None:
    sim.script(Step.tool_call("get_weather", ARGS, usage=PLAN))
    with oai.responses.stream(model=GPT, input="Weather?", tools=[RESPONSES_TOOL]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.function_call_arguments.delta" in kinds
    assert "response.function_call_arguments.done" in kinds
    (item,) = final.output
    assert (item.type, item.name) == ("function_call", "get_weather")
    assert json.loads(item.arguments) == ARGS
    assert final.usage.output_tokens == PLAN.output


# -- Anthropic ------------------------------------------------------------------------------------------------


def test_anthropic_tool_use_and_result(sim, claude) -> None:
    sim.script(Step.tool_call("get_weather", ARGS, usage=PLAN))
    message = claude.messages.create(model=CLAUDE, max_tokens=100, messages=ASK, tools=[ANTHROPIC_TOOL])
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert block.input == ARGS
    assert block.id.startswith("toolu_")
    assert message.usage.output_tokens == PLAN.output
    assert message.usage.cache_read_input_tokens == PLAN.cache_read

    follow_up = [
        *ASK,
        {"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny"}]},
    ]
    answer = claude.messages.create(model=CLAUDE, max_tokens=100, messages=follow_up, tools=[ANTHROPIC_TOOL])
    assert answer.stop_reason == "end_turn"
    assert answer.content[0].type == "text"
    assert [s.tool_results for s in sim.served] == [0, 1]


def test_anthropic_stream_accumulates_tool_input(sim, claude) -> None:
    sim.script(Step.tool_call("get_weather", ARGS, usage=PLAN))
    with claude.messages.stream(model=CLAUDE, max_tokens=100, messages=ASK, tools=[ANTHROPIC_TOOL]) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    assert kinds.count("input_json") > 2
    assert final.stop_reason == "tool_use"
    (block,) = final.content
    assert (block.type, block.name) == ("tool_use", "get_weather")
    assert block.input == ARGS
    assert final.usage.output_tokens == PLAN.output
    assert final.usage.cache_read_input_tokens == PLAN.cache_read


def test_anthropic_tool_call_skips_count_tokens(sim, claude) -> None:
    """A tool_call step only answers generation endpoints; token counting on the way leaves it queued."""
    sim.script(Step.tool_call("get_weather", match="anthropic"))
    counted = claude.messages.count_tokens(model=CLAUDE, messages=ASK, tools=[ANTHROPIC_TOOL])
    assert counted.input_tokens > 0
    assert len(sim.pending_steps) == 1
    message = claude.messages.create(model=CLAUDE, max_tokens=100, messages=ASK, tools=[ANTHROPIC_TOOL])
    assert message.content[0].type == "tool_use"
    assert message.content[0].input == {}
    assert [s.outcome for s in sim.served] == ["ok", "tool_call"]
    assert not sim.pending_steps


# -- Gemini ---------------------------------------------------------------------------------------------------


def test_gemini_function_call_without_afc(sim, gemini) -> None:
    types = pytest.importorskip("google.genai.types")
    calls: list[str] = []

    def get_weather(city: str, days: int) -> str:
        """The weather in a city."""
        calls.append(city)
        return "sunny"

    sim.script(Step.tool_call("get_weather", ARGS, usage=PLAN))
    config = types.GenerateContentConfig(
        tools=[get_weather], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    response = gemini.models.generate_content(model=GEMINI, contents="Weather?", config=config)
    (call,) = response.function_calls
    assert call.name == "get_weather"
    assert call.args == ARGS
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata.total_token_count == PLAN.total
    assert calls == []  # AFC disabled: the SDK hands the call to the caller
    (served,) = sim.served
    assert served.outcome == "tool_call"
    assert served.body["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"


def test_gemini_afc_calls_the_function_and_sends_its_result(sim, gemini) -> None:
    types = pytest.importorskip("google.genai.types")
    calls: list[tuple[str, int]] = []

    def get_weather(city: str, days: int) -> str:
        """The weather in a city."""
        calls.append((city, days))
        return f"sunny in {city}"

    sim.script(Step.tool_call("get_weather", ARGS))
    config = types.GenerateContentConfig(tools=[get_weather])
    response = gemini.models.generate_content(model=GEMINI, contents="Weather?", config=config)
    assert calls == [(ARGS["city"], ARGS["days"])]
    assert response.text  # the second round trip's text answer
    assert response.function_calls is None
    history = response.automatic_function_calling_history
    assert [content.role for content in history] == ["user", "model", "user"]
    assert history[1].parts[0].function_call.name == "get_weather"
    first, second = sim.served
    assert (first.outcome, first.tool_results) == ("tool_call", 0)
    assert (second.outcome, second.tool_results) == ("ok", 1)
    (result,) = [p["functionResponse"] for p in second.body["contents"][-1]["parts"]]
    assert result == {"name": "get_weather", "response": {"result": f"sunny in {ARGS['city']}"}}


def test_gemini_afc_stream(sim, gemini) -> None:
    types = pytest.importorskip("google.genai.types")
    calls: list[str] = []

    def get_weather(city: str, days: int) -> str:
        """The weather in a city."""
        calls.append(city)
        return "sunny"

    sim.script(Step.tool_call("get_weather", ARGS, usage=PLAN))
    config = types.GenerateContentConfig(tools=[get_weather])
    chunks = list(gemini.models.generate_content_stream(model=GEMINI, contents="Weather?", config=config))
    assert chunks[0].function_calls[0].args == ARGS
    assert chunks[0].usage_metadata.total_token_count == PLAN.total
    assert "".join(chunk.text or "" for chunk in chunks[1:])
    assert calls == [ARGS["city"]]
    assert [(s.query.get("alt"), s.outcome, s.tool_results) for s in sim.served] == [
        ("sse", "tool_call", 0),
        ("sse", "ok", 1),
    ]


def test_gemini_stream_without_sse_is_one_json_chunk(sim) -> None:
    sim.script(Step.tool_call("lookup", {"q": 1}))
    request = urllib.request.Request(
        f"{sim.gemini_base_url}/v1beta/models/{GEMINI}:streamGenerateContent",
        data=json.dumps({"contents": [{"role": "user", "parts": [{"text": "x"}]}]}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        (chunk,) = json.loads(answer.read())
    assert chunk["candidates"][0]["content"]["parts"] == [{"functionCall": {"name": "lookup", "args": {"q": 1}}}]
    assert chunk["candidates"][0]["finishReason"] == "STOP"


# -- scripting ------------------------------------------------------------------------------------------------


def test_tool_call_step_round_trips_and_validates() -> None:
    args: dict[str, Any] = {"city": "Paris", "nested": {"k": [1, 2]}}
    step = Step.tool_call("get_weather", args, times=2, match="gemini", usage=PLAN)
    args["nested"]["k"].append(3)  # the step keeps its own copy
    assert step.tool_arguments == {"city": "Paris", "nested": {"k": [1, 2]}}
    data = json.loads(json.dumps(step.to_dict()))
    assert Step.from_dict(data) == step
    assert Step.tool_call("noop").tool_arguments == {}
    assert hash(step) == hash(Step.from_dict(data))
    with pytest.raises(ValueError, match="tool_name"):
        Step.tool_call("")
    with pytest.raises(ValueError, match="JSON"):
        Step.tool_call("f", {"when": object()})
    with pytest.raises(ValueError, match="string keys"):
        Step.tool_call("f", {1: "x"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="cannot answer with a tool call"):
        Step.tool_call("f", match="embeddings")
    with pytest.raises(ValueError, match="tool_call steps only"):
        Step.from_dict({"kind": "ok", "tool_name": "f"})


def test_tool_call_scripted_over_the_admin_endpoint(sim, oai) -> None:
    control = SimulatorClient(sim.base_url)
    assert control.script(Step.tool_call("get_weather", ARGS, match="chat.completions")) == 1
    assert sim.pending_steps == [Step.tool_call("get_weather", ARGS, match="chat.completions")]
    oai.embeddings.create(model="text-embedding-3-small", input="x")  # does not consume it
    completion = oai.chat.completions.create(model=GPT, messages=ASK, tools=[OPENAI_TOOL])
    assert json.loads(completion.choices[0].message.tool_calls[0].function.arguments) == ARGS
    served = control.served()
    assert [s.outcome for s in served] == ["ok", "tool_call"]
    # Without a plan the usage is derived from the request, exactly as served.
    assert completion.usage.completion_tokens == served[1].usage.output > 0
    assert completion.usage.prompt_tokens == served[1].usage.input
    assert ServedRequest.from_dict(served[1].to_dict()) == served[1]

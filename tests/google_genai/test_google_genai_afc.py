"""Automatic function calling: one logical call, two HTTP round-trips, every round-trip's tokens counted once.

The SDK returns the last round-trip's ``usage_metadata`` only; tokenrate sums them (per-hop hooks). The simulator
answers the first request with a ``functionCall`` (`Step.tool_call`, its own usage) and the SDK's follow-up,
which carries the function's result, with text (the provider's usage plan).
"""

from __future__ import annotations

import pytest
import tenacity
from google import genai
from google.genai import types

from tokenrate.records import TokenUsage
from tokenrate.simulator import Step, UsagePlan

MODEL = "gemini-2.5-flash"
HOP_1 = TokenUsage(input=40, output=10, reasoning=4)
HOP_2 = TokenUsage(input=75, output=12, cache_read=30, tool_use=5)
BOTH = TokenUsage(input=115, output=22, cache_read=30, reasoning=4, tool_use=5)
CALL_PLAN = UsagePlan(input=40, output=10, reasoning=4)
"""Hop 1 (the model asks for the function), served as HOP_1."""
ANSWER_PLAN = UsagePlan(input=75, output=12, cache_read=30, tool_use=5)
"""Hop 2 (the final text answer), served as HOP_2."""
ASK_WEATHER = Step.tool_call("get_weather", {"city": "Paris"}, usage=CALL_PLAN)


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.fixture
def client(sim, telemetry):
    sim.usage = ANSWER_PLAN
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=sim.gemini_base_url))


CONFIG = types.GenerateContentConfig(tools=[get_weather])


def assert_two_hops(served, *, first: int = 0) -> None:
    """Hop 1 answered with the function call; hop 2 carried its result back and was answered with text."""
    call, answer = served[first], served[first + 1]
    assert (call.outcome, call.tool_results, call.usage) == ("tool_call", 0, CALL_PLAN)
    assert (answer.outcome, answer.tool_results, answer.usage) == ("ok", 1, ANSWER_PLAN)
    (result,) = [part["functionResponse"] for part in answer.body["contents"][-1]["parts"]]
    assert result == {"name": "get_weather", "response": {"result": "sunny in Paris"}}


def test_afc_sums_every_round_trip_into_one_call(client, sim, telemetry, records):
    sim.script(ASK_WEATHER)
    response = client.models.generate_content(model=MODEL, contents="Weather in Paris?", config=CONFIG)

    assert response.text  # the final text answer of hop 2 ...
    assert response.function_calls is None  # ... not hop 1's function call
    assert len(sim.served) == 2
    assert_two_hops(sim.served)
    assert response.usage_metadata.total_token_count == 87  # the SDK's object: the last round-trip only
    assert len(records.calls) == 1
    record = records.last
    assert record.usage == BOTH
    assert record.usage == HOP_1 + HOP_2
    assert record.outcome == "ok"
    assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type="input") == 115
    assert telemetry.total("gen_ai.client.token.usage", gen_ai__token__type="output") == 22
    assert telemetry.total("tokenrate.requests") == 1
    (span,) = telemetry.spans()
    assert dict(span.attributes)["gen_ai.usage.input_tokens"] == 115


def test_afc_stream_sums_every_round_trip(client, sim, records):
    sim.script(ASK_WEATHER)
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Weather in Paris?", config=CONFIG))
    assert len(sim.served) == 2
    assert_two_hops(sim.served)
    assert chunks[-1].usage_metadata.total_token_count == 87
    assert len(records.calls) == 1
    assert records.last.usage == BOTH
    assert records.last.info.stream is True


async def test_aio_afc_and_aio_stream_afc(client, sim, records):
    sim.script(ASK_WEATHER)
    response = await client.aio.models.generate_content(model=MODEL, contents="Weather in Paris?", config=CONFIG)
    assert response.text
    assert response.function_calls is None
    sim.script(ASK_WEATHER)
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents="Weather?", config=CONFIG)
    async for _ in stream:
        pass
    assert len(sim.served) == 4
    assert_two_hops(sim.served)
    assert_two_hops(sim.served, first=2)
    assert [r.usage for r in records.calls] == [BOTH, BOTH]


def test_tenacity_inside_an_afc_function_is_not_a_retry_of_the_call(client, sim, records):
    tries = []

    @tenacity.retry(wait=tenacity.wait_exponential_jitter(initial=0.01, jitter=0), stop=tenacity.stop_after_attempt(3))
    def get_weather(city: str) -> str:
        """The weather in a city (a flaky backend, retried by the user's own tenacity)."""
        tries.append(city)
        if len(tries) < 2:
            raise ConnectionError("backend hiccup")
        return f"sunny in {city}"

    sim.script(ASK_WEATHER)
    config = types.GenerateContentConfig(tools=[get_weather])
    client.models.generate_content(model=MODEL, contents="Weather in Paris?", config=config)
    assert tries == ["Paris", "Paris"]
    assert_two_hops(sim.served)
    assert records.retries == []
    assert records.last.retries == ()
    assert records.last.usage == BOTH

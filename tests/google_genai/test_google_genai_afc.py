"""Automatic function calling: one logical call, two HTTP round-trips, every round-trip's tokens counted once.

The SDK returns the last round-trip's ``usage_metadata`` only; tokenrate sums them (per-hop hooks). The package's
simulator cannot answer a function call yet, so these use `genai_afc_server` (a minimal Gemini endpoint).
"""

from __future__ import annotations

import pytest
import tenacity
from genai_afc_server import afc_server
from google import genai
from google.genai import types

from tokenrate.records import TokenUsage

MODEL = "gemini-2.5-flash"
HOP_1 = TokenUsage(input=40, output=10, reasoning=4)
HOP_2 = TokenUsage(input=75, output=12, cache_read=30, tool_use=5)
BOTH = TokenUsage(input=115, output=22, cache_read=30, reasoning=4, tool_use=5)


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.fixture
def server():
    with afc_server() as running:
        yield running


@pytest.fixture
def client(server, telemetry):
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=server.base_url))


CONFIG = types.GenerateContentConfig(tools=[get_weather])


def test_afc_sums_every_round_trip_into_one_call(client, server, telemetry, records):
    response = client.models.generate_content(model=MODEL, contents="Weather in Paris?", config=CONFIG)

    assert response.text == "It is sunny in Paris."
    assert len(server.requests) == 2
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


def test_afc_stream_sums_every_round_trip(client, server, records):
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="Weather in Paris?", config=CONFIG))
    assert len(server.requests) == 2
    assert chunks[-1].usage_metadata.total_token_count == 87
    assert len(records.calls) == 1
    assert records.last.usage == BOTH
    assert records.last.info.stream is True


async def test_aio_afc_and_aio_stream_afc(client, server, records):
    response = await client.aio.models.generate_content(model=MODEL, contents="Weather in Paris?", config=CONFIG)
    assert response.text == "It is sunny in Paris."
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents="Weather?", config=CONFIG)
    async for _ in stream:
        pass
    assert len(server.requests) == 4
    assert [r.usage for r in records.calls] == [BOTH, BOTH]


def test_tenacity_inside_an_afc_function_is_not_a_retry_of_the_call(client, server, records):
    tries = []

    @tenacity.retry(wait=tenacity.wait_exponential_jitter(initial=0.01, jitter=0), stop=tenacity.stop_after_attempt(3))
    def get_weather(city: str) -> str:
        """The weather in a city (a flaky backend, retried by the user's own tenacity)."""
        tries.append(city)
        if len(tries) < 2:
            raise ConnectionError("backend hiccup")
        return f"sunny in {city}"

    config = types.GenerateContentConfig(tools=[get_weather])
    client.models.generate_content(model=MODEL, contents="Weather in Paris?", config=config)
    assert tries == ["Paris", "Paris"]
    assert records.retries == []
    assert records.last.retries == ()
    assert records.last.usage == BOTH

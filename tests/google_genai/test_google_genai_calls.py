"""The real google-genai SDK against the simulated provider: calls, tokens by type, metrics, spans, streams."""

from __future__ import annotations

import gc
import inspect

import pytest
from google import genai
from google.genai import types

from tokenrate.records import TokenUsage
from tokenrate.simulator import UsagePlan

MODEL = "gemini-2.5-flash"
PROMPT = "Tell me a short story about a lighthouse keeper and a cat"
PLAN = UsagePlan(input=120, output=30, cache_read=20, reasoning=8, tool_use=6)
EXPECTED = TokenUsage(input=120, output=30, cache_read=20, cache_write=None, reasoning=8, tool_use=6)
SPAN_USAGE = {
    "gen_ai.usage.input_tokens": 120,
    "gen_ai.usage.output_tokens": 30,
    "gen_ai.usage.cache_read.input_tokens": 20,
    "gen_ai.usage.reasoning.output_tokens": 8,
    "tokenrate.usage.tool_use.input_tokens": 6,
}


class Stop(Exception):
    """Thrown into a stream by the user."""


@pytest.fixture
def client(sim, telemetry):
    sim.usage = PLAN
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=sim.gemini_base_url))


def test_generate_content_records_tokens_by_type_on_record_metrics_and_span(client, sim, telemetry, records):
    response = client.models.generate_content(model=MODEL, contents=PROMPT)

    assert response.usage_metadata.prompt_token_count == 114  # the wire excludes the tool-use prompt
    assert len(records.calls) == 1
    record = records.last
    assert record.usage == EXPECTED
    assert record.info.provider == "gcp.gemini"
    assert record.info.operation == "generate_content"
    assert record.info.request_model == MODEL
    assert record.info.stream is False
    assert record.info.server_address == "127.0.0.1"
    assert record.info.server_port == sim.port
    assert record.response_model == response.model_version
    assert record.status_code == 200
    assert record.outcome == "ok"
    assert record.error_type is None
    assert record.retries == ()

    for token_type, expected in EXPECTED.items():
        assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type=token_type) == expected
    assert not telemetry.points("tokenrate.usage.tokens", gen_ai__token__type="cache_write")  # unknown, not 0
    assert telemetry.total("gen_ai.client.token.usage", gen_ai__token__type="input") == 120
    assert telemetry.total("gen_ai.client.token.usage", gen_ai__token__type="output") == 30
    assert telemetry.samples("gen_ai.client.token.usage") == 2
    assert telemetry.total("tokenrate.requests") == 1
    assert telemetry.samples("gen_ai.client.operation.duration") == 1
    assert not telemetry.points("gen_ai.client.operation.time_to_first_chunk")
    (point,) = telemetry.points("tokenrate.requests")
    assert point.attributes == {
        "gen_ai.operation.name": "generate_content",
        "gen_ai.provider.name": "gcp.gemini",
        "gen_ai.request.model": MODEL,
        "gen_ai.response.model": response.model_version,
        "server.address": "127.0.0.1",
        "server.port": sim.port,
    }

    (span,) = telemetry.spans()
    assert span.name == f"generate_content {MODEL}"
    assert span.kind.name == "CLIENT"
    attributes = dict(span.attributes)
    for key, value in SPAN_USAGE.items():
        assert attributes[key] == value
    assert "gen_ai.usage.cache_creation.input_tokens" not in attributes
    assert attributes["gen_ai.provider.name"] == "gcp.gemini"
    assert attributes["gen_ai.request.stream"] is False
    assert attributes["http.response.status_code"] == 200
    assert span.status.status_code.name == "UNSET"


@pytest.mark.parametrize(
    "plan",
    [
        PLAN,
        UsagePlan(input=50, output=10),
        UsagePlan(input=900, output=300, cache_read=512, reasoning=250),
        UsagePlan(input=77, output=5, tool_use=70),
        UsagePlan(input=33, output=0),
    ],
    ids=["all-parts", "plain", "cached-thinking", "mostly-tool-use", "no-output"],
)
def test_input_plus_output_is_the_total_token_count(client, sim, records, plan):
    """The identity google-genai documents: total = prompt + candidates + tool_use_prompt + thoughts."""
    sim.usage = plan
    meta = client.models.generate_content(model=MODEL, contents=PROMPT).usage_metadata
    usage = records.last.usage
    assert usage.input + usage.output == meta.total_token_count
    assert usage.input == meta.prompt_token_count + (meta.tool_use_prompt_token_count or 0)
    assert usage.output == (meta.candidates_token_count or 0) + (meta.thoughts_token_count or 0)
    assert usage == TokenUsage(
        input=plan.input,
        output=plan.output,
        cache_read=plan.cache_read,
        reasoning=plan.reasoning,
        tool_use=plan.tool_use,
    )


def test_unknown_parts_stay_unknown(client, sim, telemetry, records):
    sim.usage = UsagePlan(input=40, output=9)
    client.models.generate_content(model=MODEL, contents=PROMPT)
    usage = records.last.usage
    assert (usage.cache_read, usage.cache_write, usage.reasoning, usage.tool_use) == (None, None, None, None)
    assert {p.attributes["gen_ai.token.type"] for p in telemetry.points("tokenrate.usage.tokens")} == {
        "input",
        "output",
    }


def test_vertex_client_is_its_own_provider(sim, telemetry, records):
    sim.usage = PLAN
    client = genai.Client(vertexai=True, api_key="test-key", http_options=types.HttpOptions(base_url=sim.base_url))
    client.models.generate_content(model=f"publishers/google/models/{MODEL}", contents=PROMPT)
    assert sim.served[0].path.startswith("/v1beta1/")
    record = records.last
    assert record.info.provider == "gcp.vertex_ai"
    assert record.info.request_model == MODEL  # the resource path is not part of the model name
    assert record.usage == EXPECTED
    assert telemetry.total("tokenrate.requests", gen_ai__provider__name="gcp.vertex_ai") == 1


def test_stream_sends_nothing_before_the_first_step_then_records_once(client, sim, telemetry, records):
    stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
    assert inspect.isgenerator(stream)  # the user's object is still a generator
    assert sim.served == []
    assert records.calls == []

    chunks = list(stream)
    assert len(chunks) > 1
    assert chunks[-1].usage_metadata.total_token_count == 150
    assert len(records.calls) == 1
    record = records.last
    assert record.usage == EXPECTED  # the last running total, not a sum of chunks
    assert record.info.stream is True
    assert record.outcome == "ok"
    assert record.status_code == 200
    assert 0 < record.time_to_first_chunk_s <= record.duration_s
    assert telemetry.samples("gen_ai.client.operation.time_to_first_chunk") == 1
    assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type="output") == 30
    (span,) = telemetry.spans()
    assert span.name == f"generate_content {MODEL}"
    assert dict(span.attributes)["gen_ai.request.stream"] is True
    assert dict(span.attributes)["gen_ai.usage.output_tokens"] == 30


def test_stream_early_break_and_close_records_once(client, sim, records):
    stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
    for chunk in stream:
        first = chunk
        break
    stream.close()
    assert len(records.calls) == 1
    record = records.last
    assert record.outcome == "closed"
    assert record.time_to_first_chunk_s is not None
    # What the first chunk said so far: the whole prompt, a part of the answer.
    assert record.usage.input == 120
    assert record.usage.output == first.usage_metadata.candidates_token_count + 8
    assert record.usage.output < 30
    del stream
    gc.collect()
    assert len(records.calls) == 1


def test_abandoned_stream_is_recorded_once_when_collected(client, records):
    stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
    next(stream)
    assert records.calls == []
    del stream
    gc.collect()
    assert [r.outcome for r in records.calls] == ["abandoned"]
    record = records.last
    # It ended at its last (here: first) chunk, not when it was collected.
    assert record.ended_at == pytest.approx(record.started_at + record.time_to_first_chunk_s, abs=1e-9)
    assert record.usage.input == 120


def test_stream_error_mid_way_is_passed_through_and_recorded(client, sim, records):
    stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
    next(stream)
    with pytest.raises(Stop):
        stream.throw(Stop())
    assert [r.outcome for r in records.calls] == ["error"]
    assert records.last.error_type == "Stop"


def test_embed_content_counts_input_only(client, sim, telemetry, records):
    sim.usage = UsagePlan(input=12)
    result = client.models.embed_content(model="gemini-embedding-001", contents=["one", "two"])
    assert len(result.embeddings) == 2
    record = records.last
    assert record.info.operation == "embeddings"
    assert record.info.request_model == "gemini-embedding-001"
    assert record.usage == TokenUsage(input=12)
    assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type="input", gen_ai__operation__name="embeddings")
    assert not telemetry.points("tokenrate.usage.tokens", gen_ai__token__type="output")
    (span,) = telemetry.spans()
    assert span.name == "embeddings gemini-embedding-001"


def test_count_tokens_is_not_a_call(client, sim, telemetry, records):
    assert client.models.count_tokens(model=MODEL, contents=PROMPT).total_tokens == 120
    assert [s.endpoint for s in sim.served] == ["count_tokens"]
    assert records.calls == []
    assert not telemetry.points("tokenrate.usage.tokens")
    assert not telemetry.points("tokenrate.requests")
    assert telemetry.spans() == []


def test_chats_go_through_the_same_calls(client, records):
    chat = client.chats.create(model=MODEL)
    chat.send_message("hello")
    chat.send_message("again")
    assert [r.usage for r in records.calls] == [EXPECTED, EXPECTED]


def test_per_request_base_url_is_the_server(client, sim, records):
    other = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url="http://localhost:9"))
    config = types.GenerateContentConfig(http_options=types.HttpOptions(base_url=sim.gemini_base_url))
    other.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    assert (records.last.info.server_address, records.last.info.server_port) == ("127.0.0.1", sim.port)


# -- client.aio ------------------------------------------------------------------------------------------------


async def test_aio_generate_content(client, telemetry, records):
    response = await client.aio.models.generate_content(model=MODEL, contents=PROMPT)
    assert response.usage_metadata.total_token_count == 150
    record = records.last
    assert record.usage == EXPECTED
    assert record.info.stream is False
    assert record.status_code == 200
    (span,) = telemetry.spans()
    assert span.name == f"generate_content {MODEL}"


async def test_aio_stream_exhausted_early_break_and_abandoned(client, sim, telemetry, records):
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=PROMPT)
    assert inspect.isasyncgen(stream)
    assert sim.served == []  # the first __anext__ sends the request
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage_metadata.total_token_count == 150
    assert records.last.usage == EXPECTED
    assert records.last.outcome == "ok"
    assert records.last.time_to_first_chunk_s is not None

    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=PROMPT)
    async for _ in stream:
        break
    await stream.aclose()
    assert records.last.outcome == "closed"
    assert records.last.usage.input == 120

    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=PROMPT)
    await stream.__anext__()
    del stream
    gc.collect()
    assert [r.outcome for r in records.calls] == ["ok", "closed", "abandoned"]
    assert len(telemetry.spans()) == 3
    assert telemetry.samples("gen_ai.client.operation.time_to_first_chunk") == 3


async def test_aio_embed_content(client, sim, records):
    sim.usage = UsagePlan(input=7)
    await client.aio.models.embed_content(model="gemini-embedding-001", contents="one")
    assert records.last.info.operation == "embeddings"
    assert records.last.usage == TokenUsage(input=7)


async def test_aio_count_tokens_is_not_a_call(client, records):
    await client.aio.models.count_tokens(model=MODEL, contents=PROMPT)
    assert records.calls == []

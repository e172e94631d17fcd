"""The real openai SDK against the simulated provider: calls, tokens by type, metrics and spans."""

from __future__ import annotations

import gc

import openai
import pytest

from tokenrate.records import TokenUsage
from tokenrate.simulator import UsagePlan

PLAN = UsagePlan(input=120, output=30, cache_read=20, cache_write=10, reasoning=8)
EXPECTED = TokenUsage(input=120, output=30, cache_read=20, cache_write=10, reasoning=8, tool_use=None)
MESSAGES = [{"role": "user", "content": "Say hello"}]


@pytest.fixture
def client(sim, telemetry):
    sim.usage = PLAN
    return openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")


@pytest.fixture
def aclient(sim, telemetry):
    sim.usage = PLAN
    return openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test")


def test_chat_records_tokens_by_type_on_record_metrics_and_span(client, sim, telemetry, records):
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert completion.usage.prompt_tokens == 120
    record = records.last
    assert len(records.calls) == 1
    assert record.usage == EXPECTED
    assert record.info.provider == "openai"
    assert record.info.operation == "chat"
    assert record.info.request_model == "gpt-4o-mini"
    assert record.response_model == completion.model
    assert record.info.server_address == "127.0.0.1"
    assert record.info.server_port == sim.port
    assert record.outcome == "ok"
    assert record.status_code == 200

    for token_type, expected in EXPECTED.items():
        assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type=token_type) == expected
    assert not telemetry.points("tokenrate.usage.tokens", gen_ai__token__type="tool_use")
    assert telemetry.total("gen_ai.client.token.usage", gen_ai__token__type="input") == 120
    assert telemetry.total("gen_ai.client.token.usage", gen_ai__token__type="output") == 30
    assert telemetry.samples("gen_ai.client.token.usage") == 2
    assert telemetry.total("tokenrate.requests") == 1
    assert telemetry.samples("gen_ai.client.operation.duration") == 1
    assert not telemetry.points("gen_ai.client.operation.time_to_first_chunk")  # not a stream
    point = telemetry.points("tokenrate.requests")[0]
    assert point.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": completion.model,
        "server.address": "127.0.0.1",
        "server.port": sim.port,
    }

    (span,) = telemetry.spans()
    assert span.name == "chat gpt-4o-mini"
    assert span.kind.name == "CLIENT"
    attributes = dict(span.attributes)
    assert attributes["gen_ai.usage.input_tokens"] == 120
    assert attributes["gen_ai.usage.output_tokens"] == 30
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 20
    assert attributes["gen_ai.usage.cache_creation.input_tokens"] == 10
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 8
    assert attributes["gen_ai.request.stream"] is False
    assert "http.request.resend_count" not in attributes
    # No content, ever: no attribute carries the prompt or the answer.
    text = completion.choices[0].message.content
    for value in attributes.values():
        assert "Say hello" not in str(value)
        assert not text or text not in str(value)


def test_rate_limit_headers_become_gauges_and_span_attributes(client, sim, telemetry, records):
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    served = sim.served[-1].response_headers
    limits = records.last.rate_limits
    assert limits is not None

    requests = limits.get("requests")
    tokens = limits.get("tokens")
    assert requests.limit == float(served["x-ratelimit-limit-requests"])
    assert requests.remaining == float(served["x-ratelimit-remaining-requests"])
    assert tokens.limit == float(served["x-ratelimit-limit-tokens"])
    assert tokens.remaining == float(served["x-ratelimit-remaining-tokens"])
    assert requests.reset_s is not None
    assert requests.reset_s >= 0

    remaining = {
        p.attributes["tokenrate.ratelimit.kind"]: p.value for p in telemetry.points("tokenrate.ratelimit.remaining")
    }
    assert remaining == {"requests": requests.remaining, "tokens": tokens.remaining}
    limit = {p.attributes["tokenrate.ratelimit.kind"]: p.value for p in telemetry.points("tokenrate.ratelimit.limit")}
    assert limit == {"requests": requests.limit, "tokens": tokens.limit}
    assert {p.attributes["tokenrate.ratelimit.kind"] for p in telemetry.points("tokenrate.ratelimit.reset")} == {
        "requests",
        "tokens",
    }
    attributes = dict(telemetry.spans()[0].attributes)
    assert attributes["tokenrate.ratelimit.requests.remaining"] == requests.remaining
    assert attributes["tokenrate.ratelimit.tokens.limit"] == tokens.limit


def test_chat_stream_injects_include_usage_and_hides_the_usage_chunk(client, sim, telemetry, records):
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    chunks = list(stream)

    assert sim.served[-1].include_usage is True  # tokenrate asked for usage...
    assert all(chunk.choices for chunk in chunks)  # ...and the user never sees the usage-only chunk
    assert all(chunk.usage is None for chunk in chunks)
    record = records.last
    assert record.usage == EXPECTED
    assert record.info.stream is True
    assert record.outcome == "ok"
    assert record.time_to_first_chunk_s is not None
    assert 0 < record.time_to_first_chunk_s <= record.duration_s
    assert telemetry.samples("gen_ai.client.operation.time_to_first_chunk") == 1
    assert dict(telemetry.spans()[0].attributes)["gen_ai.request.stream"] is True


def test_chat_stream_user_asked_for_usage_sees_it(client, sim, records):
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.prompt_tokens == 120
    assert records.last.usage == EXPECTED


def test_injection_can_be_turned_off(sim, monkeypatch, records):
    import tokenrate
    from tokenrate.providers.openai import INJECT_STREAM_USAGE_ENV

    monkeypatch.setenv(INJECT_STREAM_USAGE_ENV, "false")
    tokenrate.uninstrument()
    tokenrate.instrument(["openai"])
    try:
        sim.usage = PLAN
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
        list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    finally:
        tokenrate.uninstrument()
    assert sim.served[-1].include_usage is False
    assert records.last.usage.is_empty  # unknown, not zero
    assert records.last.outcome == "ok"


def test_stream_early_break_and_close_records_once(client, sim, records):
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    for _ in stream:
        break
    stream.close()
    assert len(records.calls) == 1
    assert records.last.outcome == "closed"
    assert records.last.time_to_first_chunk_s is not None
    del stream
    gc.collect()
    assert len(records.calls) == 1


def test_stream_context_manager_exit_records_once(client, records):
    with client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True) as stream:
        next(iter(stream))
    assert [r.outcome for r in records.calls] == ["closed"]


def test_abandoned_stream_is_recorded_once_when_collected(client, records):
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert records.calls == []
    del stream
    gc.collect()
    assert [r.outcome for r in records.calls] == ["abandoned"]


def test_stream_helper_full_and_early_break(client, records):
    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        for _ in stream:
            pass
        final = stream.get_final_completion()
    assert final.choices[0].message.content
    assert records.last.usage == EXPECTED
    assert records.last.outcome == "ok"

    with client.chat.completions.stream(model="gpt-4o-mini", messages=MESSAGES) as stream:
        for _ in stream:
            break
    # The helper closes the HTTP response directly (not the Stream): still recorded, once, at exit.
    assert len(records.calls) == 2
    assert records.last.outcome == "closed"


def test_responses_json_and_stream_helper(client, records):
    response = client.responses.create(model="gpt-4.1-mini", input="hello")
    assert response.usage.input_tokens == 120
    assert records.last.usage == EXPECTED
    assert records.last.info.operation == "chat"

    with client.responses.stream(model="gpt-4.1-mini", input="hello") as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    assert final.usage.output_tokens == 30
    assert records.last.usage == EXPECTED
    assert records.last.info.stream is True
    assert records.last.outcome == "ok"
    assert len(records.calls) == 2


def test_embeddings_count_input_only(client, sim, telemetry, records):
    sim.usage = UsagePlan(input=42)
    result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(result.data) == 2
    assert records.last.info.operation == "embeddings"
    assert records.last.usage == TokenUsage(input=42)
    assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type="input") == 42
    assert not telemetry.points("tokenrate.usage.tokens", gen_ai__token__type="output")
    assert telemetry.spans()[0].name == "embeddings text-embedding-3-small"


def test_with_raw_response_reads_usage_without_changing_the_result(client, records):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert records.last.usage == EXPECTED  # recorded before the user parses
    assert raw.parse().usage.completion_tokens == 30
    assert raw.headers["x-tokenrate-simulated"] == "true"
    assert len(records.calls) == 1


def test_with_raw_response_stream(client, sim, records):
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    assert sim.served[-1].include_usage is False  # raw bytes are the user's: sent unchanged
    chunks = list(raw.parse())
    assert chunks
    assert len(records.calls) == 1
    assert records.last.outcome == "ok"


def test_unknown_usage_is_unknown_not_zero(client, sim, telemetry, records):
    sim.usage = UsagePlan(input=50, output=5)  # no details on the wire
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert records.last.usage == TokenUsage(input=50, output=5)
    assert not telemetry.points("tokenrate.usage.tokens", gen_ai__token__type="cache_read")
    attributes = dict(telemetry.spans()[0].attributes)
    assert "gen_ai.usage.cache_read.input_tokens" not in attributes


async def test_async_chat_stream_and_early_break(aclient, records, telemetry):
    completion = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.usage.total_tokens == 150
    assert records.last.usage == EXPECTED

    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(chunk.choices for chunk in chunks)
    assert records.last.usage == EXPECTED
    assert records.last.outcome == "ok"

    stream = await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    async for _ in stream:
        break
    await stream.close()
    assert records.last.outcome == "closed"

    async with aclient.responses.stream(model="gpt-4.1-mini", input="hi") as rstream:
        async for _ in rstream:
            pass
    assert records.last.usage == EXPECTED
    assert len(records.calls) == 4
    assert len(telemetry.spans()) == 4


def test_stream_dropped_after_partial_iteration_is_abandoned(client, records):
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    for _ in stream:
        break
    assert records.calls == []  # still open: the user may go on reading
    del stream
    gc.collect()
    record = records.last
    assert record.outcome == "abandoned"
    assert len(records.calls) == 1
    # An abandoned stream ended at its last chunk, not when the garbage collector came by.
    assert record.ended_at == pytest.approx(record.started_at + record.time_to_first_chunk_s)


def test_each_kind_of_call_keeps_its_own_call_info(client, sim, records):
    """`CallInfo` is made once per kind of call and reused: every call still carries its own model and stream."""
    for model in ("gpt-4o-mini", "gpt-4o", "gpt-4o-mini"):
        client.chat.completions.create(model=model, messages=MESSAGES)
        for _ in client.chat.completions.create(model=model, messages=MESSAGES, stream=True):
            pass
    infos = [record.info for record in records.calls]
    assert [(i.request_model, i.stream) for i in infos] == [
        (model, stream) for model in ("gpt-4o-mini", "gpt-4o", "gpt-4o-mini") for stream in (False, True)
    ]
    assert infos[0] is infos[4]  # the same kind: the same (immutable) info
    assert infos[0] is not infos[1]
    assert infos[0].server_port == sim.port


def test_kept_call_infos_are_bounded():
    from tokenrate.pipeline import Pipeline
    from tokenrate.providers._stainless import _MAX_INFOS, StainlessHooks
    from tokenrate.providers.openai import OpenAIProvider

    hooks = StainlessHooks(OpenAIProvider(), Pipeline(None))
    for n in range(_MAX_INFOS * 2 + 1):
        info = hooks._info(("openai", "chat", f"model-{n}", False, "127.0.0.1", 80))
        assert info.request_model == f"model-{n}"
        assert len(hooks._infos) <= _MAX_INFOS


def test_raw_responses_are_read_and_parsed_results_never_asked_for_http_response(client, records):
    """A parsed SDK model is known by its type; a raw response (``with_raw_response``) still has its usage read."""
    from tokenrate.providers._stainless import _is_sdk_model

    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert records.last.usage == EXPECTED
    assert not _is_sdk_model(raw)
    assert _is_sdk_model(raw.parse())
    assert not _is_sdk_model({"usage": None})

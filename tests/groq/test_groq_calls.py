"""The real groq SDK against the simulated provider: tokens by type, streams, retries with the exact wait, spans."""

from __future__ import annotations

import gc

import groq
import httpx
import pytest

from tokenrate.records import TokenUsage
from tokenrate.simulator import Step, UsagePlan

PLAN = UsagePlan(input=120, output=30, cache_read=20, reasoning=6)
EXPECTED = TokenUsage(input=120, output=30, cache_read=20, reasoning=6)
MESSAGES = [{"role": "user", "content": "Say hello"}]
MODEL = "llama-3.1-8b-instant"


@pytest.fixture
def client(sim, telemetry):
    sim.usage = PLAN
    return groq.Groq(base_url=sim.base_url_for("groq"), api_key="gsk-test")


def test_chat_records_tokens_by_type_on_record_metrics_and_span(client, sim, telemetry, records):
    completion = client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.usage.prompt_tokens == 120  # (groq < 1.0 leaves prompt_tokens_details a plain dict)
    assert [s.path for s in sim.served] == ["/openai/v1/chat/completions"]
    record = records.last
    assert (record.info.provider, record.info.operation, record.info.request_model) == ("groq", "chat", MODEL)
    assert record.usage == EXPECTED
    assert (record.outcome, record.status_code, record.response_model) == ("ok", 200, MODEL)
    assert {w.kind for w in record.rate_limits.windows} == {"requests", "tokens"}
    for token_type, count in EXPECTED.items():
        assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type=token_type) == count
    (span,) = telemetry.spans()
    assert span.name == f"chat {MODEL}"
    attributes = dict(span.attributes)
    assert (attributes["gen_ai.provider.name"], attributes["gen_ai.usage.output_tokens"]) == ("groq", 30)
    assert attributes["server.address"] == "127.0.0.1"


def test_stream_usage_comes_from_x_groq_of_the_final_chunk(client, sim, telemetry, records):
    chunks = list(client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True))
    assert chunks[-1].x_groq.usage.completion_tokens == 30  # what the user's last chunk says
    assert all(chunk.usage is None for chunk in chunks)  # the request was sent unchanged: no include_usage
    assert "stream_options" not in sim.served[-1].body
    record = records.last
    assert (record.usage, record.outcome, record.info.stream) == (EXPECTED, "ok", True)
    assert record.time_to_first_chunk_s is not None
    assert telemetry.samples("gen_ai.client.operation.time_to_first_chunk") == 1


def test_stream_closed_early_and_dropped_are_recorded_once(client, records):
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    stream = client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    assert [r.outcome for r in records.calls] == ["closed", "abandoned"]


def test_429_then_200_records_the_exact_wait_groq_slept(client, sim, telemetry, records):
    sim.script(Step.rate_limited(retry_after=0.25), Step.ok())
    client.chat.completions.create(model=MODEL, messages=MESSAGES)
    assert [s.status for s in sim.served] == [429, 200]
    assert [s.retry_count for s in sim.served] == [0, 1]
    (retry,) = records.retries
    assert (retry.attempt, retry.status_code, retry.reason, retry.wait_s) == (1, 429, "throttled", 0.25)
    record = records.last
    assert (record.outcome, record.throttle_events, record.retries) == ("ok", 1, (retry,))
    assert telemetry.total("tokenrate.throttle.wait") == pytest.approx(0.25)
    (span,) = telemetry.spans()
    assert [event.name for event in span.events] == ["tokenrate.retry"]
    assert dict(span.events[0].attributes)["tokenrate.retry.wait"] == 0.25


def test_retries_run_out(client, sim, telemetry, records):
    sim.script(Step.rate_limited(retry_after=0.05, times=3))
    with pytest.raises(groq.RateLimitError):
        client.with_options(max_retries=2).chat.completions.create(model=MODEL, messages=MESSAGES)
    assert [r.wait_s for r in records.retries] == [0.05, 0.05]
    record = records.last
    assert (record.outcome, record.error_type, record.status_code) == ("error", "RateLimitError", 429)
    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=True) == 2
    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=False) == 1
    assert len(telemetry.spans()) == 1


def test_a_stream_that_fails_part_way_is_an_error(client, sim, records):
    sim.script(Step.drop_mid_stream(after_events=2))
    stream = client.with_options(max_retries=0).chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    with pytest.raises(httpx.RemoteProtocolError):  # groq's stream passes httpx's own error through
        list(stream)
    record = records.last
    assert (record.outcome, record.error_type) == ("error", "RemoteProtocolError")
    assert record.usage == TokenUsage()  # the usage would have come with the final chunk


async def test_async_chat_and_stream(sim, telemetry, records):
    sim.usage = PLAN
    aclient = groq.AsyncGroq(base_url=sim.base_url_for("groq"), api_key="gsk-test")
    await aclient.chat.completions.create(model=MODEL, messages=MESSAGES)
    stream = await aclient.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    async for _ in stream:
        pass
    assert [(r.usage, r.outcome, r.info.stream) for r in records.calls] == [
        (EXPECTED, "ok", False),
        (EXPECTED, "ok", True),
    ]
    assert len(telemetry.spans()) == 2

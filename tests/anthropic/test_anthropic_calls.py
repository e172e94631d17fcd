"""The real anthropic SDK against the simulated provider: arithmetic, streams, retries, headers, one span."""

from __future__ import annotations

import gc
import inspect

import anthropic
import pytest

import tokenrate
from tokenrate.records import TokenUsage
from tokenrate.simulator import Step, UsagePlan

# Anthropic wire: input_tokens = 120 - 20 - 10 = 90 (uncached), cache read 20, cache creation 10.
PLAN = UsagePlan(input=120, output=30, cache_read=20, cache_write=10, reasoning=6, web_search_requests=2)
EXPECTED = TokenUsage(input=120, output=30, cache_read=20, cache_write=10, reasoning=6, tool_use=None)
MESSAGES = [{"role": "user", "content": "Say hello"}]
MODEL = "claude-sonnet-4-6"


# anthropic >= 1.14 makes its own spans (the `open_telemetry` client option); older releases have none.
NATIVE_SPANS = "open_telemetry" in inspect.signature(anthropic.Anthropic.__init__).parameters


def _otel(telemetry) -> dict:
    """The SDK's own spans go to the same provider as tokenrate's, so "one span per call" is really checked."""
    return {"open_telemetry": {"tracer_provider": telemetry.tracer_provider}} if NATIVE_SPANS else {}


def _client(sim, telemetry, **kwargs) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-ant-test", **_otel(telemetry), **kwargs)


@pytest.fixture
def client(sim, telemetry):
    sim.usage = PLAN
    return _client(sim, telemetry)


def test_message_arithmetic_and_server_tools(client, sim, telemetry, records):
    message = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert message.usage.input_tokens == 90  # the wire really carries the uncached part only

    record = records.last
    assert record.usage == EXPECTED
    assert record.usage.input == message.usage.input_tokens + 20 + 10
    assert record.server_tool_requests == {"web_search": 2}
    assert record.info.provider == "anthropic"
    assert record.info.operation == "chat"
    assert record.response_model == message.model

    assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type="input") == 120
    assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type="cache_write") == 10
    assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type="reasoning") == 6
    assert telemetry.total("tokenrate.usage.server_tool_requests", tokenrate__server_tool__name="web_search") == 2
    assert not telemetry.points("tokenrate.usage.tokens", gen_ai__token__type="tool_use")

    (span,) = telemetry.spans()  # tokenrate's span replaces the SDK's own: one span per call
    assert span.name == f"chat {MODEL}"
    assert span.instrumentation_scope.name == "tokenrate"
    attributes = dict(span.attributes)
    assert attributes["gen_ai.usage.input_tokens"] == 120
    assert attributes["gen_ai.usage.cache_creation.input_tokens"] == 10
    assert attributes["tokenrate.usage.server_tool_requests.web_search"] == 2


def test_stream_counts_output_once(client, sim, records):
    stream = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    events = list(stream)
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start"
    assert "message_delta" in kinds
    assert kinds[-1] == "message_stop"
    record = records.last
    assert record.usage == EXPECTED  # message_start's provisional output is overwritten, never added
    assert record.server_tool_requests == {"web_search": 2}
    assert record.outcome == "ok"
    assert record.time_to_first_chunk_s is not None


def test_stream_helper_text_stream_and_final_message(client, records, telemetry):
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text
    assert final.usage.output_tokens == 30
    assert records.last.usage == EXPECTED
    assert len(records.calls) == 1
    assert len(telemetry.spans()) == 1


def test_stream_early_break_and_abandon(client, records):
    with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as stream:
        for _ in stream:
            break
    assert [r.outcome for r in records.calls] == ["closed"]
    # message_start was seen: the input side is known even though the stream was cut short.
    assert records.last.usage.input == 120

    stream = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    del stream
    gc.collect()
    assert [r.outcome for r in records.calls] == ["closed", "abandoned"]


def test_raw_response_and_count_tokens(client, records, telemetry):
    raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert records.last.usage == EXPECTED
    assert raw.parse().usage.output_tokens == 30

    counted = client.messages.count_tokens(model=MODEL, messages=MESSAGES)
    assert counted.input_tokens > 0
    assert len(records.calls) == 1  # counting tokens is not a generation
    assert telemetry.total("tokenrate.requests") == 1


def test_rate_limit_headers_all_four_kinds(client, sim, telemetry, records):
    client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    headers = sim.served[-1].response_headers
    limits = records.last.rate_limits
    for kind in ("requests", "tokens", "input_tokens", "output_tokens"):
        window = limits.get(kind)
        header = kind.replace("_", "-")
        assert window.limit == float(headers[f"anthropic-ratelimit-{header}-limit"])
        assert window.remaining == float(headers[f"anthropic-ratelimit-{header}-remaining"])
        assert window.reset_s is not None
        assert 0 <= window.reset_s <= 61  # RFC 3339 reset time → seconds from now
    kinds = {p.attributes["tokenrate.ratelimit.kind"] for p in telemetry.points("tokenrate.ratelimit.remaining")}
    assert kinds == {"requests", "tokens", "input_tokens", "output_tokens"}


def test_429_then_200_and_529_backoff(client, sim, telemetry, records):
    sim.script(Step.rate_limited(retry_after=1), Step.ok())
    client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    (retry,) = records.retries
    assert (retry.status_code, retry.reason, retry.wait_s) == (429, "throttled", 1.0)
    assert records.last.throttle_events == 1

    sim.script(Step.overloaded(retry_after=None), Step.ok())
    client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    retry = records.retries[-1]
    assert retry.status_code == 529
    assert retry.reason == "throttled"
    assert 0.375 <= retry.wait_s <= 0.5  # the SDK's first backoff, as it drew it
    assert telemetry.total("tokenrate.throttle.events", http__response__status_code=529) == 1
    assert telemetry.samples("tokenrate.throttle.wait") == 2
    spans = telemetry.spans()
    assert len(spans) == 2
    assert [len(s.events) for s in spans] == [1, 1]


def test_retries_exhausted_with_529(client, sim, records, telemetry):
    sim.script(Step.overloaded(retry_after=0.01, retry_after_ms=True, times=3))
    with pytest.raises(anthropic.APIStatusError) as raised:  # OverloadedError (an InternalServerError from 2.5)
        client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert raised.value.status_code == 529
    assert records.last.error_type == type(raised.value).__qualname__
    assert records.last.throttle_events == 3
    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=False) == 1


def test_middleware_attempts_are_retries_not_calls(sim, telemetry, records):
    seen: list[int] = []

    def observe(request, call_next):
        response = call_next(request)
        seen.append(response.http_response.status_code)
        return response

    sim.usage = PLAN
    client = _client(sim, telemetry, middleware=[observe])
    sim.script(Step.rate_limited(retry_after=0.01, retry_after_ms=True), Step.ok())
    client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert seen == [429, 200]
    assert len(records.calls) == 1
    assert len(records.retries) == 1
    assert records.last.usage == EXPECTED
    assert records.last.status_code == 200


async def test_async_create_stream_and_helper(sim, telemetry, records):
    sim.usage = PLAN
    client = anthropic.AsyncAnthropic(base_url=sim.anthropic_base_url, api_key="sk-ant-test", **_otel(telemetry))
    sim.script(Step.rate_limited(retry_after=0.05, retry_after_ms=True), Step.ok())
    message = await client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert message.usage.output_tokens == 30
    assert records.last.usage == EXPECTED
    assert records.retries[-1].wait_s == pytest.approx(0.05)

    stream = await client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES, stream=True)
    async for _ in stream:
        pass
    assert records.last.usage == EXPECTED

    async with client.messages.stream(model=MODEL, max_tokens=100, messages=MESSAGES) as helper:
        async for _ in helper:
            break
    assert records.last.outcome == "closed"
    assert len(records.calls) == 3
    assert len(telemetry.spans()) == 3


@pytest.mark.skipif(not NATIVE_SPANS, reason="this anthropic release makes no spans of its own")
def test_native_span_mode_keeps_the_sdk_span(sim, monkeypatch, telemetry, records):
    from tokenrate.providers.anthropic import SPANS_ENV

    monkeypatch.setenv(SPANS_ENV, "native")
    tokenrate.uninstrument()
    tokenrate.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    sim.usage = PLAN
    client = _client(sim, telemetry)
    sim.script(Step.rate_limited(retry_after=0.01, retry_after_ms=True), Step.ok())
    client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)

    (span,) = telemetry.spans()  # still one span per call: the SDK's
    assert span.instrumentation_scope.name != "tokenrate"
    assert [e.name for e in span.events] == ["tokenrate.retry"]  # tokenrate's retry event on the SDK's span
    assert records.last.usage == EXPECTED  # metrics and records unchanged
    assert telemetry.total("tokenrate.throttle.events") == 1


def test_claude_on_vertex_is_its_own_provider(sim, telemetry, records):
    sim.usage = PLAN
    client = anthropic.AnthropicVertex(
        region="us-east5",
        project_id="demo-project",
        access_token="test-token",
        base_url=f"{sim.base_url}/v1",
        **_otel(telemetry),
    )
    message = client.messages.create(model=MODEL, max_tokens=100, messages=MESSAGES)
    assert message.usage.output_tokens == 30
    assert sim.served[-1].path.endswith(f"/publishers/anthropic/models/{MODEL}:rawPredict")
    record = records.last
    assert record.info.provider == "gcp.vertex_ai"
    assert record.info.request_model == MODEL  # read before the Vertex client moves it into the URL
    assert record.usage == EXPECTED
    (span,) = telemetry.spans()
    assert dict(span.attributes)["gen_ai.provider.name"] == "gcp.vertex_ai"
    assert telemetry.total("tokenrate.requests", gen_ai__provider__name="gcp.vertex_ai") == 1

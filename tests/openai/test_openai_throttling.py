"""Throttling through the openai SDK's own retry loop: one record per retry, the exact seconds it slept."""

from __future__ import annotations

import time

import openai
import pytest

from tokenrate.simulator import Step, UsagePlan

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def client(sim, telemetry):
    sim.usage = UsagePlan(input=10, output=5)
    return openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")


def test_429_retry_after_1_then_200(client, sim, telemetry, records):
    sim.script(Step.rate_limited(retry_after=1), Step.ok())
    began = time.monotonic()
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    elapsed = time.monotonic() - began

    assert [s.status for s in sim.served] == [429, 200]
    assert [s.headers.get("x-stainless-retry-count") for s in sim.served] == ["0", "1"]
    (retry,) = records.retries
    assert retry.attempt == 1
    assert retry.status_code == 429
    assert retry.reason == "throttled"
    assert retry.wait_s == 1.0  # exactly what the SDK computed from retry-after
    assert elapsed >= 1.0
    assert retry.rate_limits is not None
    assert retry.rate_limits.retry_after_s == 1.0

    record = records.last
    assert record.retries == (retry,)
    assert record.throttle_events == 1
    assert record.throttle_wait_s == 1.0
    assert record.duration_s >= 1.0

    assert telemetry.total("tokenrate.throttle.events", http__response__status_code=429, tokenrate__retried=True) == 1
    assert telemetry.samples("tokenrate.throttle.wait") == 1
    assert telemetry.total("tokenrate.throttle.wait") == 1.0
    assert telemetry.total("tokenrate.retries", tokenrate__retry__reason="throttled") == 1
    assert telemetry.total("tokenrate.requests") == 1  # one logical call, not two
    assert telemetry.total("tokenrate.call.retries") == 1

    (span,) = telemetry.spans()
    attributes = dict(span.attributes)
    assert attributes["http.request.resend_count"] == 1
    assert attributes["tokenrate.throttle.events"] == 1
    assert attributes["tokenrate.throttle.wait"] == 1.0
    (event,) = span.events
    assert event.name == "tokenrate.retry"
    assert dict(event.attributes) == {
        "tokenrate.retry.attempt": 1,
        "tokenrate.retry.reason": "throttled",
        "http.response.status_code": 429,
        "tokenrate.retry.wait": 1.0,
        "tokenrate.retry.retry_after": 1.0,
    }


def test_retries_run_out(client, sim, telemetry, records):
    sim.script(Step.rate_limited(retry_after=0.05, retry_after_ms=True, times=3))
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert raised.value.status_code == 429

    assert [s.status for s in sim.served] == [429, 429, 429]
    assert [r.attempt for r in records.retries] == [1, 2]
    assert all(r.wait_s == pytest.approx(0.05) for r in records.retries)
    record = records.last
    assert record.error_type == "RateLimitError"
    assert record.status_code == 429
    assert record.outcome == "error"
    assert record.throttle_events == 3  # two retried, plus the last one the SDK gave up on
    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=True) == 2
    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=False) == 1
    assert telemetry.total("tokenrate.requests", error__type="RateLimitError") == 1
    assert telemetry.samples("gen_ai.client.operation.duration", error__type="RateLimitError") == 1
    (span,) = telemetry.spans()
    assert span.status.status_code.name == "ERROR"
    assert dict(span.attributes)["error.type"] == "RateLimitError"
    assert len(span.events) == 2


def test_529_without_retry_after_uses_the_sdk_backoff(client, sim, records, telemetry):
    sim.script(Step.overloaded(retry_after=None), Step.ok())
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (retry,) = records.retries
    assert retry.status_code == 529
    assert retry.reason == "throttled"
    # openai's first backoff: 0.5 s minus up to 25 % jitter, exactly as the SDK drew it.
    assert 0.375 <= retry.wait_s <= 0.5
    assert telemetry.total("tokenrate.throttle.events", http__response__status_code=529) == 1


def test_server_error_retry_is_not_throttling(client, sim, records, telemetry):
    sim.script(Step.server_error(500), Step.ok())
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (retry,) = records.retries
    assert retry.reason == "server_error"
    assert retry.status_code == 500
    assert records.last.throttle_events == 0
    assert not telemetry.points("tokenrate.throttle.events")
    assert telemetry.total("tokenrate.retries", tokenrate__retry__reason="server_error") == 1
    assert telemetry.samples("tokenrate.retry.wait", tokenrate__retry__reason="server_error") == 1


def test_bad_request_is_recorded_as_an_error_without_retries(client, sim, records, telemetry):
    sim.script(Step.bad_request())
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert records.retries == []
    assert records.last.error_type == "BadRequestError"
    assert records.last.status_code == 400
    assert records.last.throttle_events == 0
    assert telemetry.total("tokenrate.requests", error__type="BadRequestError") == 1


def test_timeout_retries_are_recorded_as_timeouts(sim, telemetry, records):
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", timeout=0.3, max_retries=1)
    sim.script(Step.delay(2.0, times=2))
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (retry,) = records.retries
    assert retry.reason == "timeout"
    assert retry.status_code is None
    assert records.last.error_type == "APITimeoutError"
    assert telemetry.total("tokenrate.retries", tokenrate__retry__reason="timeout") == 1


def test_dropped_connection_retry(sim, telemetry, records):
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    sim.script(Step.drop_connection(), Step.ok())
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (retry,) = records.retries
    assert retry.reason == "connection_error"
    assert records.last.outcome == "ok"


async def test_async_429_then_200(sim, telemetry, records):
    client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    sim.script(Step.rate_limited(retry_after=0.2, retry_after_ms=True), Step.ok())
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
    async for _ in stream:
        pass
    (retry,) = records.retries
    assert retry.wait_s == pytest.approx(0.2)
    record = records.last
    assert record.throttle_events == 1
    # Time to first chunk includes the throttle wait: it is what the user waited for.
    assert record.time_to_first_chunk_s >= 0.2
    assert telemetry.total("tokenrate.throttle.wait") == pytest.approx(0.2)

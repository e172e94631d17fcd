"""Throttling through botocore's own retry path: one record per retried attempt, with the exact delay botocore
computed (standard, legacy and adaptive modes), and adaptive mode's client-side rate limiter waits."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import boto3
import pytest
import wrapt
from bedrock_support import CLAUDE, HI, bedrock_client
from botocore.exceptions import ClientError
from opentelemetry.instrumentation.utils import unwrap

import tokenrate
from tokenrate.recording import current_call
from tokenrate.simulator import Step


@pytest.mark.parametrize("mode", ["standard", "legacy", "adaptive"])
def test_a_throttled_attempt_then_success_with_botocores_exact_delay(sim, telemetry, records, botocore_delays, mode):
    client = bedrock_client(sim.bedrock_endpoint_url, mode=mode)
    sim.script(Step.rate_limited())
    response = client.converse(modelId=CLAUDE, messages=HI)
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    assert [s.status for s in sim.served] == [429, 200]

    (delay,) = botocore_delays.delays  # what the retry mode computed, and botocore then slept
    (retry,) = records.retries
    assert retry.wait_s == delay
    assert (retry.attempt, retry.status_code, retry.reason) == (1, 429, "throttled")
    record = records.last
    assert record.retries == (retry,)
    assert (record.outcome, record.status_code, record.throttle_events) == ("ok", 200, 1)
    assert record.throttle_wait_s == delay

    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=True, http__response__status_code=429) == 1
    assert telemetry.total("tokenrate.throttle.wait") == delay
    assert telemetry.total("tokenrate.requests") == 1
    (span,) = telemetry.spans()
    assert span.attributes["http.request.resend_count"] == 1
    (event,) = span.events
    assert event.name == "tokenrate.retry"
    assert dict(event.attributes) == {
        "tokenrate.retry.attempt": 1,
        "tokenrate.retry.reason": "throttled",
        "http.response.status_code": 429,
        "tokenrate.retry.wait": delay,
    }


def test_retries_exhausted_end_in_a_final_throttle_event(sim, telemetry, records, botocore_delays) -> None:
    """ModelNotReadyException: a 429 that botocore's standard mode retries with its short transient backoff."""
    client = bedrock_client(sim.bedrock_endpoint_url)
    sim.script(Step.rate_limited(code="ModelNotReadyException", times=3))
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=CLAUDE, messages=HI)
    assert type(caught.value).__name__ == "ModelNotReadyException"
    assert caught.value.response["ResponseMetadata"]["MaxAttemptsReached"] is True
    assert len(sim.served) == 3  # botocore's own default: 3 attempts in total

    record = records.last
    assert [r.wait_s for r in record.retries] == botocore_delays.delays
    assert [(r.attempt, r.status_code, r.reason) for r in record.retries] == [
        (1, 429, "throttled"),
        (2, 429, "throttled"),
    ]
    assert (record.outcome, record.error_type, record.status_code) == ("error", "ModelNotReadyException", 429)
    assert record.throttle_events == 3
    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=True) == 2
    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=False) == 1
    (span,) = telemetry.spans()
    assert len(span.events) == 2


def test_service_unavailable_is_a_server_error_retry(sim, records, botocore_delays) -> None:
    client = bedrock_client(sim.bedrock_endpoint_url)
    sim.script(Step.overloaded())
    client.converse(modelId=CLAUDE, messages=HI)
    (retry,) = records.retries
    assert (retry.status_code, retry.reason, retry.wait_s) == (503, "server_error", botocore_delays.delays[0])
    assert records.last.throttle_events == 0


def test_a_dropped_connection_is_a_connection_error_retry(sim, records, botocore_delays) -> None:
    client = bedrock_client(sim.bedrock_endpoint_url)
    sim.script(Step.drop_connection())
    client.converse(modelId=CLAUDE, messages=HI)
    (retry,) = records.retries
    assert (retry.status_code, retry.reason, retry.wait_s) == (None, "connection_error", botocore_delays.delays[0])


def test_no_retries_configured_is_one_final_throttle(sim, telemetry, records) -> None:
    client = bedrock_client(sim.bedrock_endpoint_url, total_max_attempts=1)
    sim.script(Step.rate_limited())
    with pytest.raises(ClientError):
        client.converse(modelId=CLAUDE, messages=HI)
    record = records.last
    assert (record.retries, record.status_code, record.throttle_events) == ((), 429, 1)
    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=False) == 1


def test_adaptive_mode_rate_limiter_waits_are_recorded(sim, telemetry, records) -> None:
    """After a throttle, botocore's adaptive limiter holds every send (first attempts too) for a token; the time it
    held each call is the call's rate_limiter_wait_s, never a retry."""
    held: list[tuple[Any, float]] = []

    def measure(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        began = time.monotonic()
        try:
            return wrapped(*args, **kwargs)
        finally:
            held.append((current_call.get(), time.monotonic() - began))

    # Inside tokenrate's hook: tokenrate's figure includes at least what this inner measure saw.
    tokenrate.uninstrument()
    wrapt.wrap_function_wrapper("botocore.retries.bucket", "TokenBucket.acquire", measure)
    try:
        tokenrate.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
        client = bedrock_client(sim.bedrock_endpoint_url, mode="adaptive")
        sim.script(Step.rate_limited())
        for _ in range(3):  # the limiter's bucket holds one token: back-to-back sends must wait for it
            client.converse(modelId=CLAUDE, messages=HI)
    finally:
        tokenrate.uninstrument()
        import botocore.retries.bucket

        unwrap(botocore.retries.bucket.TokenBucket, "acquire")

    first, *later = records.calls
    assert len(first.retries) == 1
    assert all(record.retries == () for record in later)
    assert len(held) == 3  # the retried attempt and the two later calls' sends; none before the first throttle
    waited = [seconds for _, seconds in held]
    assert sum(waited) > 0
    for record in records.calls:
        assert record.rate_limiter_wait_s >= 0
        assert record.rate_limiter_wait_s <= record.duration_s
    assert sum(r.rate_limiter_wait_s for r in records.calls) >= sum(waited)
    waiting = [r for r in records.calls if r.rate_limiter_wait_s > 0]
    assert telemetry.samples("tokenrate.rate_limiter.wait") == len(waiting) > 0
    assert telemetry.total("tokenrate.rate_limiter.wait") == pytest.approx(sum(r.rate_limiter_wait_s for r in waiting))
    spans = [s for s in telemetry.spans() if "tokenrate.rate_limiter.wait" in s.attributes]
    assert len(spans) == len(waiting)


def test_a_nested_call_of_another_client_is_not_this_calls(sim, telemetry, records) -> None:
    """botocore calls made inside a Bedrock call (here from a before-send handler; in real life an STS credential
    refresh) are not the Bedrock call: they run with no current call, so their retries are not counted for it."""
    seen: list[Any] = []
    other = boto3.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1").client(
        "dynamodb", endpoint_url=sim.base_url
    )
    other.meta.events.register("before-send", lambda **_: seen.append(current_call.get()))

    def nested(**_: Any) -> None:
        with contextlib.suppress(ClientError):
            other.list_tables()

    client = bedrock_client(sim.bedrock_endpoint_url)
    client.meta.events.register("before-send.bedrock-runtime.Converse", nested)
    client.converse(modelId=CLAUDE, messages=HI)
    assert seen == [None]
    (record,) = records.calls
    assert record.retries == ()

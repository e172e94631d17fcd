"""Throttling with google-genai: a 429 fails at once by default; with ``HttpRetryOptions`` tenacity retries.

Each retry is one `RetryRecord` with the exact seconds tenacity computed; the 429 body's ``RetryInfo`` is the
retry-after (Gemini sends no rate-limit headers).
"""

from __future__ import annotations

import logging
import re
import socket
import time

import httpx2
import pytest
import tenacity
from google import genai
from google.genai import errors, types

from tokenrate.simulator import Step, UsagePlan

MODEL = "gemini-2.5-flash"
PROMPT = "hello"
SDK_LOGGER = "google_genai._api_client"
SLEEP_ANNOUNCEMENT = re.compile(r"Retrying .* in ([0-9.e+-]+) seconds as it ")


def retrying(attempts: int, initial_delay: float) -> types.GenerateContentConfig:
    """Per-request retry options, without jitter so the waits are known: initial * 2 ** (retry - 1)."""
    options = types.HttpRetryOptions(attempts=attempts, initial_delay=initial_delay, jitter=0)
    return types.GenerateContentConfig(http_options=types.HttpOptions(retry_options=options))


@pytest.fixture
def client(sim, telemetry):
    sim.usage = UsagePlan(input=10, output=5)
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=sim.gemini_base_url))


def test_429_without_retry_options_is_one_throttle_event_not_retried(client, sim, telemetry, records):
    sim.script(Step.rate_limited(retry_after=2))
    with pytest.raises(errors.ClientError) as raised:
        client.models.generate_content(model=MODEL, contents=PROMPT)
    assert raised.value.code == 429
    assert [s.status for s in sim.served] == [429]

    assert records.retries == []
    record = records.last
    assert record.status_code == 429
    assert record.error_type == "ClientError"
    assert record.outcome == "error"
    assert record.rate_limits is not None
    assert record.rate_limits.retry_after_s == 2.0  # google.rpc.RetryInfo.retryDelay "2s"
    assert record.throttle_events == 1
    assert record.usage.is_empty

    assert telemetry.total("tokenrate.throttle.events", http__response__status_code=429, tokenrate__retried=False) == 1
    assert not telemetry.points("tokenrate.throttle.events", tokenrate__retried=True)
    assert telemetry.total("tokenrate.requests", error__type="ClientError") == 1
    assert telemetry.samples("gen_ai.client.operation.duration", error__type="ClientError") == 1
    assert not telemetry.points("tokenrate.retries")
    (span,) = telemetry.spans()
    assert span.status.status_code.name == "ERROR"
    attributes = dict(span.attributes)
    assert attributes["error.type"] == "ClientError"
    assert attributes["http.response.status_code"] == 429
    assert attributes["tokenrate.throttle.events"] == 1
    assert attributes["gen_ai.provider.name"] == "gcp.gemini"


def slept_as_the_sdk_said(caplog: pytest.LogCaptureFixture) -> list[float]:
    """The waits google-genai announced before each sleep (tenacity's ``before_sleep_log``, at INFO): the values
    tenacity then slept, as the SDK itself reports them (no clock involved)."""
    return [
        float(match.group(1))
        for record in caplog.records
        if record.name == SDK_LOGGER and (match := SLEEP_ANNOUNCEMENT.match(record.getMessage()))
    ]


def test_retry_options_each_retry_has_the_wait_tenacity_computed(client, sim, telemetry, records, caplog):
    sim.script(Step.rate_limited(retry_after=1, times=2), Step.ok())
    with caplog.at_level(logging.INFO, logger=SDK_LOGGER):
        response = client.models.generate_content(model=MODEL, contents=PROMPT, config=retrying(3, 0.2))
    assert response.usage_metadata.total_token_count == 15

    served = sim.served
    assert [s.status for s in served] == [429, 429, 200]
    assert [(r.attempt, r.status_code, r.reason) for r in records.retries] == [
        (1, 429, "throttled"),
        (2, 429, "throttled"),
    ]
    assert [r.wait_s for r in records.retries] == [0.2, 0.4]  # exactly 0.2 * 2 ** (n - 1), no jitter
    assert [r.wait_s for r in records.retries] == pytest.approx(slept_as_the_sdk_said(caplog), rel=1e-3)
    assert all(r.rate_limits.retry_after_s == 1.0 for r in records.retries)  # RetryInfo, which tenacity ignores

    record = records.last
    assert len(records.calls) == 1
    assert record.retries == tuple(records.retries)
    assert record.outcome == "ok"
    assert record.status_code == 200
    assert record.throttle_events == 2
    assert record.throttle_wait_s == pytest.approx(0.6)
    assert record.usage.input == 10

    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=True, http__response__status_code=429) == 2
    assert not telemetry.points("tokenrate.throttle.events", tokenrate__retried=False)
    assert telemetry.samples("tokenrate.throttle.wait") == 2
    assert telemetry.total("tokenrate.throttle.wait") == pytest.approx(0.6)
    assert telemetry.total("tokenrate.retries", tokenrate__retry__reason="throttled") == 2
    assert telemetry.total("tokenrate.requests") == 1
    assert telemetry.total("tokenrate.call.retries") == 2

    (span,) = telemetry.spans()
    assert span.name == f"generate_content {MODEL}"
    attributes = dict(span.attributes)
    assert attributes["http.request.resend_count"] == 2
    assert attributes["tokenrate.throttle.events"] == 2
    assert [event.name for event in span.events] == ["tokenrate.retry", "tokenrate.retry"]
    assert dict(span.events[0].attributes) == {
        "tokenrate.retry.attempt": 1,
        "tokenrate.retry.reason": "throttled",
        "http.response.status_code": 429,
        "tokenrate.retry.wait": 0.2,
        "tokenrate.retry.retry_after": 1.0,
    }


def test_retries_run_out(client, sim, telemetry, records):
    sim.script(Step.rate_limited(retry_after=1, times=2))
    with pytest.raises(errors.ClientError):
        client.models.generate_content(model=MODEL, contents=PROMPT, config=retrying(2, 0.05))
    assert [s.status for s in sim.served] == [429, 429]
    # Tenacity computes a wait after the last attempt too, then gives up: that is not a retry.
    assert [(r.attempt, r.wait_s) for r in records.retries] == [(1, 0.05)]
    record = records.last
    assert record.error_type == "ClientError"
    assert record.status_code == 429
    assert record.throttle_events == 2
    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=True) == 1
    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=False) == 1
    (span,) = telemetry.spans()
    assert len(span.events) == 1


async def test_client_retry_options_with_an_aio_stream(sim, telemetry, records):
    sim.usage = UsagePlan(input=10, output=5)
    options = types.HttpRetryOptions(attempts=3, initial_delay=0.1, jitter=0)
    client = genai.Client(
        api_key="test-key", http_options=types.HttpOptions(base_url=sim.gemini_base_url, retry_options=options)
    )
    sim.script(Step.rate_limited(retry_after=1))
    stream = await client.aio.models.generate_content_stream(model=MODEL, contents=PROMPT)
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage_metadata.total_token_count == 15
    assert [s.status for s in sim.served] == [429, 200]
    (retry,) = records.retries
    assert (retry.status_code, retry.wait_s) == (429, 0.1)
    record = records.last
    assert record.retries == (retry,)
    assert record.info.stream is True
    assert record.usage.output == 5
    assert record.time_to_first_chunk_s >= 0.1  # the first chunk waited for the retry
    (span,) = telemetry.spans()
    assert [event.name for event in span.events] == ["tokenrate.retry"]


def test_sync_stream_retry(client, sim, records):
    sim.script(Step.rate_limited(retry_after=1))
    chunks = list(client.models.generate_content_stream(model=MODEL, contents=PROMPT, config=retrying(2, 0.05)))
    assert chunks[-1].usage_metadata.total_token_count == 15
    assert [(r.status_code, r.wait_s) for r in records.retries] == [(429, 0.05)]
    assert records.last.throttle_events == 1


def test_server_error_retry_is_not_throttling(client, sim, telemetry, records):
    sim.script(Step.overloaded(), Step.ok())  # Gemini: 503 UNAVAILABLE
    client.models.generate_content(model=MODEL, contents=PROMPT, config=retrying(2, 0.05))
    (retry,) = records.retries
    assert (retry.status_code, retry.reason) == (503, "server_error")
    assert records.last.throttle_events == 0
    assert not telemetry.points("tokenrate.throttle.events")
    assert telemetry.total("tokenrate.retries", tokenrate__retry__reason="server_error") == 1


def test_bad_request_is_an_error_without_retries(client, sim, telemetry, records):
    sim.script(Step.bad_request())
    with pytest.raises(errors.ClientError):
        client.models.generate_content(model=MODEL, contents=PROMPT, config=retrying(3, 0.05))
    assert records.retries == []
    assert (records.last.status_code, records.last.error_type) == (400, "ClientError")
    assert records.last.throttle_events == 0


def test_dropped_connection_is_an_error_without_a_status(client, sim, records):
    sim.script(Step.drop_connection())
    with pytest.raises(httpx2.RemoteProtocolError):  # not one of the transient errors the SDK would retry
        client.models.generate_content(model=MODEL, contents=PROMPT, config=retrying(2, 0.05))
    assert records.retries == []
    record = records.last
    assert record.error_type == "RemoteProtocolError"
    assert record.status_code is None
    assert record.outcome == "error"


def test_tenacity_is_untouched_outside_genai_calls(telemetry, records):
    attempts = []

    @tenacity.retry(
        wait=tenacity.wait_exponential_jitter(initial=0.01, jitter=0),
        stop=tenacity.stop_after_attempt(3),
        reraise=True,
    )
    def flaky() -> str:
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise ValueError("not yet")
        return "done"

    assert flaky() == "done"
    assert flaky.statistics["idle_for"] == pytest.approx(0.03)  # 0.01 + 0.02, as without tokenrate
    assert records.retries == []
    assert records.calls == []


def test_connection_errors_retried_by_the_sdk_are_connection_retries(telemetry, records):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=f"http://127.0.0.1:{port}"))
    with pytest.raises(httpx2.ConnectError):
        client.models.generate_content(model=MODEL, contents=PROMPT, config=retrying(2, 0.05))
    (retry,) = records.retries
    assert (retry.status_code, retry.reason, retry.wait_s) == (None, "connection_error", 0.05)
    record = records.last
    assert (record.error_type, record.status_code, record.throttle_events) == ("ConnectError", None, 0)
    assert telemetry.total("tokenrate.retries", tokenrate__retry__reason="connection_error") == 1

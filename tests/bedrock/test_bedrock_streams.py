"""Bedrock event streams keep botocore's ``EventStream`` API and end their call exactly once, however they end."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from bedrock_support import CACHED_PLAN as PLAN
from bedrock_support import CLAUDE, HI, anthropic_body
from botocore.eventstream import EventStream
from botocore.exceptions import EventStreamError

from tokenrate.records import TokenUsage
from tokenrate.simulator import Step

FULL = TokenUsage(input=PLAN.input, output=PLAN.output, cache_read=PLAN.cache_read, cache_write=PLAN.cache_write)


def open_stream(client: Any, operation: str) -> Any:
    if operation == "converse_stream":
        return client.converse_stream(modelId=CLAUDE, messages=HI)["stream"]
    return client.invoke_model_with_response_stream(modelId=CLAUDE, body=anthropic_body())["body"]


OPERATIONS = pytest.mark.parametrize("operation", ["converse_stream", "invoke_model_with_response_stream"])


@OPERATIONS
def test_the_stream_keeps_its_type_and_api(client, records, operation) -> None:
    stream = open_stream(client, operation)
    assert isinstance(stream, EventStream)
    assert callable(stream.close)
    assert callable(stream.get_initial_response)
    assert len(list(stream)) > 3
    assert list(stream) == []  # as botocore's own: one event source, already used up
    assert len(records.calls) == 1


@OPERATIONS
def test_breaking_out_then_going_on_is_one_complete_call(client, records, operation) -> None:
    stream = open_stream(client, operation)
    for _ in stream:
        break
    assert records.calls == []  # a loop left early does not end the stream
    assert len(list(stream)) > 2  # the next loop goes on where the first stopped
    (record,) = records.calls
    assert (record.outcome, record.usage) == ("ok", FULL)


@OPERATIONS
def test_closed_early(client, records, telemetry, operation) -> None:
    stream = open_stream(client, operation)
    first = next(iter(stream))
    assert first
    stream.close()
    stream.close()
    (record,) = records.calls
    assert record.outcome == "closed"
    if operation == "converse_stream":
        assert record.usage == TokenUsage()  # the usage comes at the end, which was never read
    else:  # Claude's message_start: the input side and a provisional output count, as seen so far
        assert (record.usage.input, record.usage.cache_read, record.usage.output) == (PLAN.input, PLAN.cache_read, 1)
    assert record.time_to_first_chunk_s is not None
    (span,) = telemetry.spans()
    assert span.attributes["tokenrate.call.outcome"] == "closed"


@OPERATIONS
def test_closed_after_the_end_is_ok(client, records, operation) -> None:
    stream = open_stream(client, operation)
    list(stream)
    stream.close()
    (record,) = records.calls
    assert (record.outcome, record.usage) == ("ok", FULL)


@OPERATIONS
def test_abandoned_after_a_break(client, records, operation) -> None:
    response_stream = open_stream(client, operation)
    for _ in response_stream:
        break
    del response_stream
    gc.collect()
    (record,) = records.calls
    assert record.outcome == "abandoned"
    assert record.ended_at == pytest.approx(record.started_at + record.time_to_first_chunk_s)  # at its last chunk


def test_abandoned_unread(client, records) -> None:
    client.converse_stream(modelId=CLAUDE, messages=HI)
    gc.collect()
    (record,) = records.calls
    assert record.outcome == "abandoned"
    assert record.time_to_first_chunk_s is None


@OPERATIONS
def test_a_mid_stream_throttling_exception_is_a_throttle_event_not_retried(sim, client, records, telemetry, operation):
    sim.script(Step.stream_error("throttlingException", after_events=2))
    stream = open_stream(client, operation)
    received: list[Any] = []
    with pytest.raises(EventStreamError) as caught:
        received.extend(stream)
    assert len(received) == 2
    assert caught.value.response["Error"]["Code"] == "throttlingException"  # the user's exception, unchanged
    assert len(sim.served) == 1  # botocore does not retry it (HTTP said 200)
    (record,) = records.calls
    assert (record.outcome, record.error_type, record.status_code) == ("error", "throttlingException", 429)
    assert record.retries == ()
    assert record.throttle_events == 1
    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=False, http__response__status_code=429) == 1
    (span,) = telemetry.spans()
    assert span.attributes["error.type"] == "throttlingException"


def test_another_mid_stream_exception_is_an_error_not_a_throttle(sim, client, records, telemetry) -> None:
    sim.script(Step.stream_error("modelStreamErrorException", after_events=1))
    with pytest.raises(EventStreamError):
        list(open_stream(client, "invoke_model_with_response_stream"))
    (record,) = records.calls
    assert (record.outcome, record.error_type, record.status_code) == ("error", "modelStreamErrorException", 200)
    assert record.throttle_events == 0
    assert telemetry.total("tokenrate.throttle.events") == 0


@OPERATIONS
def test_a_throttled_start_is_retried_by_botocore_then_streams(sim, client, records, botocore_delays, operation):
    """A 429 before the stream begins is an ordinary HTTP error: botocore retries it like any call."""
    sim.script(Step.rate_limited())
    assert len(list(open_stream(client, operation))) > 3
    (record,) = records.calls
    (retry,) = record.retries
    assert (retry.status_code, retry.reason, retry.wait_s) == (429, "throttled", botocore_delays.delays[0])
    assert (record.outcome, record.usage, record.status_code) == ("ok", FULL, 200)

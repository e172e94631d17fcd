"""Streams read in ways that bypass what tokenrate's stream observer reads per item.

* The user holds the SDK's stream but reads its HTTP body as bytes (``stream.response.iter_lines()``): the stream
  observer never steps, so the body's own observer must see how the reading ended (read to the end: ``ok``; the
  connection dropped: an error), as it does for ``with_streaming_response``.
* The stream's items are plain JSON dicts (``cast_to=object``), not SDK models: the observers skip items by their
  kind read as an attribute, which a dict does not have, so every dict must still be read (usage, model).
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from lifecycle_clients import make_client

from tokenrate.records import TokenUsage
from tokenrate.simulator import Step, UsagePlan

PLAN = UsagePlan(input=120, output=30, cache_read=20)
MESSAGES = [{"role": "user", "content": "Say hello"}]


def _create(client: Any, sdk: str) -> Any:
    if sdk == "openai":
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    return client.messages.create(model="claude-haiku-4-5", max_tokens=100, messages=MESSAGES, stream=True)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_stream_whose_body_the_user_reads_as_bytes_is_ok_at_its_end(sdk, sim, telemetry, records):
    stream = _create(make_client(sdk, sim, telemetry), sdk)
    lines = list(stream.response.iter_lines())
    assert any(line.startswith("data: ") for line in lines)
    stream.close()
    assert [(record.outcome, record.error_type) for record in records.calls] == [("ok", None)]


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_an_async_stream_whose_body_the_user_reads_as_bytes_is_ok_at_its_end(sdk, sim, telemetry, records):
    stream = await _create(make_client(sdk, sim, telemetry, is_async=True), sdk)
    lines = [line async for line in stream.response.aiter_lines()]
    assert any(line.startswith("data: ") for line in lines)
    await stream.close()
    assert [(record.outcome, record.error_type) for record in records.calls] == [("ok", None)]


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_stream_whose_body_the_user_reads_as_bytes_fails_as_an_error(sdk, sim, telemetry, records):
    sim.script(Step.drop_mid_stream(after_events=2))
    stream = _create(make_client(sdk, sim, telemetry), sdk)
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the HTTP client's own exception type
        for _ in stream.response.iter_lines():
            pass
    (record,) = records.calls
    assert (record.outcome, record.error_type) == ("error", type(raised.value).__qualname__)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
async def test_an_async_stream_whose_body_the_user_reads_as_bytes_fails_as_an_error(sdk, sim, telemetry, records):
    sim.script(Step.drop_mid_stream(after_events=2))
    stream = await _create(make_client(sdk, sim, telemetry, is_async=True), sdk)
    with pytest.raises(Exception) as raised:  # noqa: PT011 - the HTTP client's own exception type
        async for _ in stream.response.aiter_lines():
            pass
    (record,) = records.calls
    assert (record.outcome, record.error_type) == ("error", type(raised.value).__qualname__)


def _post_raw(client: Any, sdk: str) -> Any:
    """The same streamed call through the client's generic ``post``, its items left as JSON dicts."""
    if sdk == "openai":
        body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
        return client.post(
            "/chat/completions", body=body, cast_to=object, stream=True, stream_cls=openai.Stream[object]
        )
    body = {"model": "claude-haiku-4-5", "max_tokens": 100, "messages": MESSAGES, "stream": True}
    return client.post("/v1/messages", body=body, cast_to=object, stream=True, stream_cls=anthropic.Stream[object])


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_stream_of_plain_dicts_is_read_for_usage_and_model(sdk, sim, telemetry, records):
    sim.usage = PLAN
    items = list(_post_raw(make_client(sdk, sim, telemetry), sdk))
    assert items
    assert all(isinstance(item, dict) for item in items)
    (record,) = records.calls
    assert record.outcome == "ok"
    assert record.usage == TokenUsage(input=120, output=30, cache_read=20)
    assert record.response_model is not None
    assert record.time_to_first_chunk_s is not None

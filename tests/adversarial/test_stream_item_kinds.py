"""Stream events whose kind (``type``) is not a string: the user gets exactly what the SDK makes of them.

tokenrate reads a stream item's kind to skip the ones it has no use for; a broken provider or proxy can put
anything there (the SDKs build their event models from it as sent: a list, an object, a number). Reading it must
neither fail the stream nor report an internal error (the suite-wide guard fails the test if one is reported),
and the call is still recorded, once, with the usage the well-formed events carried.
"""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from wire_bodies import MODEL_ANTHROPIC, anthropic_stream, sse

import tokenrate
from tokenrate.simulator import Step

MESSAGES = [{"role": "user", "content": "hi"}]
USAGE = {"input_tokens": 7, "output_tokens": 3}
HOSTILE_KINDS = [["content_block_delta"], {"kind": "message_stop"}, 12, None]


def _seen(events: list[Any]) -> list[tuple[str, Any]]:
    return [(type(event).__name__, event.type) for event in events]


def _without_tokenrate(telemetry: Any, read: Any) -> Any:
    tokenrate.uninstrument()
    try:
        return read()
    finally:
        tokenrate.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)


@pytest.mark.parametrize("kind", HOSTILE_KINDS, ids=repr)
def test_anthropic_events_of_any_kind_reach_the_user_as_without_tokenrate(kind, sim, telemetry, records):
    events = anthropic_stream(USAGE, USAGE)
    hostile = sse({"type": kind, "index": 0, "delta": {"type": "text_delta", "text": "x"}}, event="content_block_delta")
    events.insert(3, hostile)
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-ant-test", max_retries=0)

    def read() -> list[Any]:
        return list(client.messages.create(model="c", max_tokens=5, messages=MESSAGES, stream=True))

    sim.script(Step.raw(events=events), Step.raw(events=events))
    seen = _seen(read())
    assert seen == _seen(_without_tokenrate(telemetry, read))
    assert kind in [event_kind for _, event_kind in seen]
    (record,) = records.calls
    assert (record.outcome, record.response_model) == ("ok", MODEL_ANTHROPIC)
    assert (record.usage.input, record.usage.output) == (7, 3)


@pytest.mark.parametrize("kind", HOSTILE_KINDS, ids=repr)
def test_openai_responses_events_of_any_kind_reach_the_user_as_without_tokenrate(kind, sim, telemetry, records):
    events = [
        sse({"type": kind, "sequence_number": 0, "delta": "x", "item_id": "i", "output_index": 0}),
        sse({"type": "response.output_text.delta", "sequence_number": 1, "delta": "hi", "item_id": "i"}),
    ]
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)

    def read() -> list[Any]:
        return list(client.responses.create(model="m", input="hi", stream=True))

    sim.script(Step.raw(events=events), Step.raw(events=events))
    seen = _seen(read())
    assert seen == _seen(_without_tokenrate(telemetry, read))
    assert kind in [event_kind for _, event_kind in seen]
    (record,) = records.calls
    assert record.outcome == "ok"

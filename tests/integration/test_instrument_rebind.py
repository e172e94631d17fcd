"""A second ``tokenrate.instrument(meter_provider=..., tracer_provider=...)`` re-binds: the last ones win."""

from __future__ import annotations

import openai

import tokenrate

MESSAGES = [{"role": "user", "content": "hi"}]


def test_a_second_instrument_with_other_providers_rebinds(sim, telemetry, other_telemetry):
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert "openai" in tokenrate.instrument(meter_provider=other_telemetry.meter_provider)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert telemetry.total("tokenrate.requests") == 1
    assert other_telemetry.total("tokenrate.requests") == 2
    # Only the meter provider was given: spans stay on the first tracer provider.
    assert len(telemetry.spans()) == 3
    assert other_telemetry.spans() == []

    tokenrate.instrument(tracer_provider=other_telemetry.tracer_provider)
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert (len(telemetry.spans()), len(other_telemetry.spans())) == (3, 1)
    assert other_telemetry.total("tokenrate.requests") == 3


def test_instrument_again_without_providers_changes_nothing(sim, telemetry):
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    tokenrate.instrument()
    tokenrate.instrument(["openai"])
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert telemetry.total("tokenrate.requests") == 1
    assert len(telemetry.spans()) == 1

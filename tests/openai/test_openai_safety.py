"""Never break the user's call: identical results and exceptions, failures inside tokenrate contained."""

from __future__ import annotations

import threading

import openai
import pytest

import tokenrate
from tokenrate.pipeline import add_local_sink, remove_local_sink
from tokenrate.simulator import Step, UsagePlan

MESSAGES = [{"role": "user", "content": "hi"}]


def _calls(client: openai.OpenAI, sim) -> dict:
    """A fixed sequence of calls, returning everything the user can observe of them."""
    out: dict = {}
    out["chat"] = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).model_dump(
        exclude={"id", "created"}
    )
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    out["stream"] = [c.model_dump(exclude={"id", "created"}) for c in chunks]
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    out["raw_type"] = type(raw).__name__
    out["raw_status"] = raw.status_code
    sim.script(Step.rate_limited(retry_after=0.01, retry_after_ms=True, times=3))
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    out["error"] = (type(raised.value), raised.value.status_code, str(raised.value), raised.value.body)
    sim.script(Step.bad_request())
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    out["bad"] = (type(raised.value), str(raised.value), raised.value.body)
    return out


def test_results_and_exceptions_are_identical_with_and_without_tokenrate(sim):
    sim.usage = UsagePlan(input=10, output=5, cache_read=2)
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    tokenrate.uninstrument()
    without = _calls(client, sim)
    tokenrate.instrument(["openai"])
    try:
        with_tokenrate = _calls(client, sim)
    finally:
        tokenrate.uninstrument()
    assert with_tokenrate == without


class _Exploding:
    def call_started(self, call):
        raise RuntimeError("sink bug at start")

    def retry(self, token, retry):
        raise RuntimeError("sink bug at retry")

    def call_ended(self, token, record):
        raise RuntimeError("sink bug at end")


@pytest.mark.tokenrate_errors_expected
def test_a_failing_sink_never_reaches_the_user(sim, telemetry, records, caplog):
    sink = _Exploding()
    add_local_sink(sink)
    try:
        sim.script(Step.rate_limited(retry_after=0.01, retry_after_ms=True), Step.ok())
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
        completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert completion.choices
        assert len(list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))) > 0
    finally:
        remove_local_sink(sink)
    assert len(records.calls) == 2  # the other sinks still got everything
    assert len(records.retries) == 1
    assert any("sink bug" in r.getMessage() for r in caplog.records)


@pytest.mark.tokenrate_errors_expected
def test_a_failing_usage_reader_degrades_to_unknown_usage(sim, telemetry, records, monkeypatch, swallowed_errors):
    from tokenrate.providers import openai as adapter

    def broken(result):
        raise ValueError("reader bug")

    # The endpoint table holds the reader: swap in an endpoint whose reader fails.
    monkeypatch.setitem(adapter._ENDPOINTS, "/chat/completions", adapter.Endpoint("chat", broken))
    tokenrate.uninstrument()
    tokenrate.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.choices
    assert records.last.usage.is_empty
    assert records.last.outcome == "ok"
    assert swallowed_errors.places() == ["openai result"]


def test_uninstrument_restores_the_sdk(sim, records):
    from openai._base_client import AsyncAPIClient, SyncAPIClient
    from openai._streaming import Stream

    originals = (SyncAPIClient.request, AsyncAPIClient.request, SyncAPIClient._sleep_for_retry, Stream.__stream__)
    tokenrate.instrument(["openai"])
    assert SyncAPIClient.request is not originals[0]
    tokenrate.uninstrument()
    assert (SyncAPIClient.request, AsyncAPIClient.request, SyncAPIClient._sleep_for_retry, Stream.__stream__) == (
        originals
    )
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert records.calls == []


def test_concurrent_calls_are_each_recorded_exactly_once(sim, telemetry, records):
    sim.usage = UsagePlan(input=7, output=3)
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for i in range(5):
                if i % 2:
                    list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
                else:
                    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(records.calls) == 40
    assert telemetry.total("tokenrate.requests") == 40
    assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type="input") == 40 * 7
    assert len(telemetry.spans()) == 40

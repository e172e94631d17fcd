"""tokenrate never breaks a google-genai call, and degrades to less data (not wrong data) when a hook is gone."""

from __future__ import annotations

import logging

import pytest
from google import genai
from google.genai import types

import tokenrate
from tokenrate.errors import CallRejected
from tokenrate.pipeline import Pipeline, add_local_sink, remove_local_sink
from tokenrate.providers import google_genai as adapter
from tokenrate.providers._patching import Patcher
from tokenrate.records import TokenUsage
from tokenrate.simulator import Step, UsagePlan

MODEL = "gemini-2.5-flash"
PROMPT = "Tell me a short story about a lighthouse keeper and a cat"
PLAN = UsagePlan(input=50, output=20, reasoning=5)


@pytest.fixture
def client(sim):
    sim.usage = PLAN
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=sim.gemini_base_url))


@pytest.mark.tokenrate_errors_expected
def test_a_failing_usage_reader_leaves_the_call_untouched(client, telemetry, records, monkeypatch, caplog):
    def broken(metadata):
        raise RuntimeError("tokenrate bug")

    monkeypatch.setattr(adapter, "generate_usage", broken)
    with caplog.at_level(logging.DEBUG, logger="tokenrate"):  # WARNING once per process, then DEBUG
        response = client.models.generate_content(model=MODEL, contents=PROMPT)
        chunks = list(client.models.generate_content_stream(model=MODEL, contents=PROMPT))
    assert response.usage_metadata.total_token_count == 70
    assert chunks[-1].usage_metadata.total_token_count == 70
    assert [r.outcome for r in records.calls] == ["ok", "ok"]
    assert all(r.usage.is_empty for r in records.calls)
    assert "tokenrate bug" in caplog.text


def test_a_rejected_call_is_never_sent(client, sim, telemetry, records):
    class Refuse:
        def call_started(self, call):
            raise CallRejected("budget exhausted")

        def retry(self, token, retry):  # pragma: no cover - never reached
            pass

        def call_ended(self, token, record):
            pass

    refuse = Refuse()
    add_local_sink(refuse)
    try:
        with pytest.raises(CallRejected):
            client.models.generate_content(model=MODEL, contents=PROMPT)
        stream = client.models.generate_content_stream(model=MODEL, contents=PROMPT)
        with pytest.raises(CallRejected):
            next(stream)
    finally:
        remove_local_sink(refuse)
    assert sim.served == []


def _patch_without(*missing: str) -> Patcher:
    """The adapter's hooks minus some, as if an SDK release had moved them."""
    tokenrate.uninstrument()
    hooks = [h for h in adapter.GenAIHooks(Pipeline(None)).hooks() if not h.target.endswith(missing)]
    patcher = Patcher(hooks)
    patcher.apply()
    return patcher


def test_without_the_wait_hook_the_next_attempt_records_the_measured_wait(client, sim, records):
    patcher = _patch_without("wait_exponential_jitter.__call__")
    try:
        sim.script(Step.rate_limited(retry_after=1))
        options = types.HttpRetryOptions(attempts=2, initial_delay=0.1, jitter=0)
        config = types.GenerateContentConfig(http_options=types.HttpOptions(retry_options=options))
        client.models.generate_content(model=MODEL, contents=PROMPT, config=config)
    finally:
        patcher.revert()
    (retry,) = records.retries
    assert retry.status_code == 429
    assert retry.wait_s >= 0.1  # measured: the sleep plus a little
    assert records.last.throttle_events == 1


def test_without_the_per_hop_hooks_usage_comes_from_the_users_object(client, records):
    patcher = _patch_without("._generate_content", "._generate_content_stream")
    try:
        assert len(patcher.applied) == len(patcher.hooks) == 9
        client.models.generate_content(model=MODEL, contents=PROMPT)
        list(client.models.generate_content_stream(model=MODEL, contents=PROMPT))
    finally:
        patcher.revert()
    expected = TokenUsage(input=50, output=20, reasoning=5)
    assert [r.usage for r in records.calls] == [expected, expected]
    assert records.calls[0].response_model == MODEL

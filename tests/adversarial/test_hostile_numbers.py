"""Extreme provider numbers through the real SDKs: recorded as unknown, and no public surface ever raises.

The simulator's ``raw`` step sends exactly what a broken provider or proxy could: counts of ``1e308`` or ``-7``,
a 311-character reset duration. The user's result is untouched (the SDK parses what it parses); tokenrate's
records hold only sane numbers, and the view, its JSON, the status line, the summary and ``top`` publishing
all keep working.
"""

from __future__ import annotations

import io
import json
import time

import anthropic
import openai
import pytest
from wire_bodies import anthropic_message, openai_chat_completion

import tokenrate
from tokenrate.provider_numbers import MAX_COUNT
from tokenrate.simulator import Step
from tokenrate.view import format_status, read_published, render_summary, start_publishing, stop_publishing

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def openai_client(sim, telemetry):
    tokenrate.reset()
    return openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)


def every_public_surface(tmp_path) -> dict:
    """Use everything a user can look at; returns the snapshot's JSON (all of it must work)."""
    snap = tokenrate.snapshot()
    data = json.loads(snap.to_json())
    assert format_status(snap)
    out = io.StringIO()
    render_summary(snap, out)
    assert out.getvalue()
    start_publishing(tmp_path, interval_s=3600)
    try:
        deadline = time.monotonic() + 30
        while not read_published(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        published = read_published(tmp_path)
    finally:
        stop_publishing()
    assert published, "the view was not published for tokenrate top"
    return data


def test_huge_token_counts_and_reset_durations_break_no_public_surface(openai_client, sim, records, tmp_path):
    huge_reset = "1" * 310 + "s"  # a 311-character Go duration: float() of it is inf
    body = openai_chat_completion(usage={"prompt_tokens": 1e308, "completion_tokens": 5, "total_tokens": 1e308})
    headers = {"x-ratelimit-limit-requests": "100", "x-ratelimit-reset-requests": huge_reset}
    sim.script(Step.raw(body, headers=headers, times=2))

    for _ in range(2):
        completion = openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert completion.usage.prompt_tokens == 1e308  # the user's result is what the server sent

    assert [r.usage.is_empty for r in records.calls] == [True, True]  # the usage block is distrusted as a whole
    window = records.last.rate_limits.get("requests")
    assert (window.limit, window.reset_s) == (100, None)
    data = every_public_surface(tmp_path)
    assert data["requests"] == 2
    assert data["unknown_usage_calls"] == 2


def test_negative_counts_are_unknown_and_view_and_metrics_agree(openai_client, sim, telemetry, records):
    body = openai_chat_completion(usage={"prompt_tokens": 10, "completion_tokens": -7, "total_tokens": 3})
    sim.script(Step.raw(body))

    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert records.last.usage.is_empty
    tokens = tokenrate.snapshot().tokens
    for token_type, in_view in tokens.to_dict().items():
        assert in_view is None  # no call reported it: unknown in the view, and nothing recorded in metrics
        assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type=token_type) == 0


@pytest.mark.parametrize(
    "bad",
    [-1, 1.5, MAX_COUNT + 1, 1e30, "twelve", float("nan"), float("inf")],
    ids=["negative", "fractional", "over-cap", "1e30", "string", "nan", "inf"],
)
def test_anthropic_invalid_count_makes_the_usage_unknown_never_partial(sim, telemetry, records, bad):
    usage = {"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": bad}
    sim.script(Step.raw(anthropic_message(usage=usage)))
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-test", max_retries=0)

    client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=MESSAGES)

    assert records.last.usage.is_empty
    assert records.last.outcome == "ok"


def test_anthropic_server_tool_counts_are_validated(sim, telemetry, records):
    usage = {"input_tokens": 10, "output_tokens": 4, "server_tool_use": {"web_search_requests": 1e300}}
    sim.script(Step.raw(anthropic_message(usage=usage)))
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-test", max_retries=0)

    client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=MESSAGES)

    assert dict(records.last.server_tool_requests) == {}


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 500}},
        {"prompt_tokens": 100, "completion_tokens": 5, "completion_tokens_details": {"reasoning_tokens": 6}},
    ],
    ids=["cache-read-over-input", "reasoning-over-output"],
)
def test_parts_larger_than_their_total_make_the_usage_unknown(openai_client, sim, records, usage):
    sim.script(Step.raw(openai_chat_completion(usage=usage)))

    openai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert records.last.usage.is_empty
    assert records.last.cost_usd is None

"""Scripted behaviour (`Step`) as the real SDKs experience it: retries, errors, timeouts, dropped connections."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tokenrate.simulator import SimulatedProvider, Step, UsagePlan

GPT = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
HI = [{"role": "user", "content": "hi"}]


def test_429_with_retry_after_then_200(sim, oai) -> None:
    sim.usage = UsagePlan(input=10, output=5)
    sim.script(Step.rate_limited(retry_after=1), Step.ok())
    completion = oai.chat.completions.create(model=GPT, messages=HI)
    assert completion.usage.completion_tokens == 5
    served = sim.served
    assert [s.status for s in served] == [429, 200]
    assert [s.headers["x-stainless-retry-count"] for s in served] == ["0", "1"]
    assert [s.retry_count for s in served] == [0, 1]
    assert served[0].response_headers["retry-after"] == "1"
    assert "retry-after-ms" not in served[0].response_headers
    assert served[0].usage is None
    assert served[1].usage == UsagePlan(input=10, output=5)
    assert [s.outcome for s in served] == ["rate_limited", "ok"]
    assert not sim.pending_steps


def test_openai_429_error_body(sim, oai) -> None:
    sim.script(Step.rate_limited(retry_after=0.05, retry_after_ms=True))
    with pytest.raises(openai.RateLimitError) as caught:
        oai.with_options(max_retries=0).chat.completions.create(model=GPT, messages=HI)
    error = caught.value
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    headers = error.response.headers
    assert headers["retry-after-ms"] == "50"
    assert headers["retry-after"] == "1"  # whole seconds, rounded up, alongside the exact ms
    assert headers["x-ratelimit-remaining-requests"] == "0"


def test_retries_exhausted_raise_rate_limit_error(sim, oai) -> None:
    sim.script(Step.rate_limited(retry_after=0.02, retry_after_ms=True, times=3))
    with pytest.raises(openai.RateLimitError):
        oai.chat.completions.create(model=GPT, messages=HI)
    assert [s.status for s in sim.served] == [429, 429, 429]  # 1 try + the SDK's default 2 retries
    assert [s.retry_count for s in sim.served] == [0, 1, 2]
    assert not sim.pending_steps


def test_anthropic_429_then_200(sim, claude) -> None:
    sim.script(Step.rate_limited(retry_after=0.05, retry_after_ms=True))
    message = claude.messages.create(model=CLAUDE, max_tokens=50, messages=HI)
    assert message.usage.output_tokens > 0
    assert [s.status for s in sim.served] == [429, 200]
    assert [s.retry_count for s in sim.served] == [0, 1]


def test_anthropic_rate_limit_error_body(sim, claude) -> None:
    sim.script(Step.rate_limited(retry_after=1))
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.with_options(max_retries=0).messages.create(model=CLAUDE, max_tokens=50, messages=HI)
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert caught.value.response.headers["retry-after"] == "1"


def test_anthropic_529_is_retried_with_backoff(sim, claude) -> None:
    sim.script(Step.overloaded())  # no retry-after: the SDK backs off by itself
    message = claude.messages.create(model=CLAUDE, max_tokens=50, messages=HI)
    assert message.stop_reason == "end_turn"
    first, second = sim.served
    assert (first.status, second.status) == (529, 200)
    assert "retry-after" not in first.response_headers
    assert first.outcome == "overloaded"
    # The SDK slept its own backoff (0.375-0.5 s for a first retry) before the second attempt.
    assert second.started - first.started >= 0.375


def test_anthropic_overloaded_error_type(sim, claude) -> None:
    sim.script(Step.overloaded(retry_after=1))
    with pytest.raises(anthropic.APIStatusError) as caught:
        claude.with_options(max_retries=0).messages.create(model=CLAUDE, max_tokens=50, messages=HI)
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert caught.value.response.headers["retry-after"] == "1"


def test_openai_529_overloaded(sim, oai) -> None:
    sim.script(Step.overloaded())
    with pytest.raises(openai.APIStatusError) as caught:
        oai.with_options(max_retries=0).chat.completions.create(model=GPT, messages=HI)
    assert caught.value.status_code == 529


def test_bad_request_is_not_retried(sim, oai, claude) -> None:
    sim.script(Step.bad_request(match="openai"), Step.bad_request(match="anthropic"))
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model=GPT, messages=HI)
    assert caught.value.type == "invalid_request_error"
    with pytest.raises(anthropic.BadRequestError) as caught_a:
        claude.messages.create(model=CLAUDE, max_tokens=50, messages=HI)
    assert caught_a.value.body["error"]["type"] == "invalid_request_error"
    assert [s.status for s in sim.served] == [400, 400]


def test_server_error_is_retried(sim, oai) -> None:
    sim.script(Step.server_error(503))
    oai.with_options(max_retries=1).chat.completions.create(model=GPT, messages=HI)
    assert [s.status for s in sim.served] == [503, 200]
    assert sim.served[0].outcome == "server_error"


def test_dropped_connection_is_a_connection_error_that_is_retried(sim, oai) -> None:
    sim.script(Step.drop_connection())
    oai.with_options(max_retries=1).chat.completions.create(model=GPT, messages=HI)
    served = sim.served
    assert [s.status for s in served] == [None, 200]
    assert served[0].outcome == "drop_connection"
    assert [s.retry_count for s in served] == [0, 1]


def test_dropped_connection_without_retries(sim, oai) -> None:
    sim.script(Step.drop_connection())
    with pytest.raises(openai.APIConnectionError):
        oai.with_options(max_retries=0).chat.completions.create(model=GPT, messages=HI)


def test_delay_provokes_a_client_timeout(sim, oai) -> None:
    sim.script(Step.delay(5))
    with pytest.raises(openai.APITimeoutError):
        oai.with_options(max_retries=0, timeout=0.2).chat.completions.create(model=GPT, messages=HI)
    # The server still answers once the delay is over (to a client that has gone): stop() cuts that short.


def test_match_restricts_a_step_to_a_protocol_or_endpoint(sim, oai, claude) -> None:
    sim.script(Step.rate_limited(retry_after=1, match="messages"))
    oai.chat.completions.create(model=GPT, messages=HI)  # does not match: served normally, step stays queued
    assert [s.status for s in sim.served] == [200]
    assert [step.kind for step in sim.pending_steps] == ["rate_limited"]
    with pytest.raises(anthropic.RateLimitError):
        claude.with_options(max_retries=0).messages.create(model=CLAUDE, max_tokens=50, messages=HI)
    assert [s.status for s in sim.served] == [200, 429]
    assert sim.pending_steps == []


def test_steps_are_fifo_and_times_counts_down(sim, oai) -> None:
    sim.script(Step.server_error(500, times=2), Step.ok(usage=UsagePlan(input=1, output=1)))
    assert [(s.kind, s.times) for s in sim.pending_steps] == [("server_error", 2), ("ok", 1)]
    client = oai.with_options(max_retries=0)
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model=GPT, messages=HI)
    assert client.chat.completions.create(model=GPT, messages=HI).usage.total_tokens == 2
    assert [s.status for s in sim.served] == [500, 500, 200]


def test_reset_clears_script_and_log(sim, oai) -> None:
    sim.script(Step.ok(), Step.bad_request())
    oai.chat.completions.create(model=GPT, messages=HI)
    sim.reset()
    assert sim.served == []
    assert sim.pending_steps == []


def test_invalid_steps_and_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="match"):
        Step.ok(match="nope")
    with pytest.raises(ValueError, match="times"):
        Step.rate_limited(times=0)
    with pytest.raises(ValueError, match="parts of input"):
        UsagePlan(input=5, cache_read=6)
    with pytest.raises(ValueError, match="reasoning"):
        UsagePlan(output=1, reasoning=2)
    with pytest.raises(TypeError):
        SimulatedProvider().script("not a step")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="after_events"):
        Step.drop_mid_stream(after_events=-1)
    with pytest.raises(ValueError, match="stall"):
        Step.stall_mid_stream(-1)


# -- streams that fail part-way --------------------------------------------------------------------------------


def test_a_dropped_stream_delivers_its_first_events_then_a_connection_error(sim, oai) -> None:
    sim.script(Step.drop_mid_stream(after_events=2))
    received: list = []
    stream = oai.with_options(max_retries=0).chat.completions.create(model=GPT, messages=HI, stream=True)
    with pytest.raises(openai.APIConnectionError):
        received.extend(stream)
    assert len(received) == 2
    (served,) = sim.wait_for_served(1)
    assert (served.status, served.outcome, served.complete, served.usage) == (200, "drop_mid_stream", False, None)


def test_an_error_event_is_the_providers_own(sim, oai, claude) -> None:
    sim.script(Step.error_event(after_events=1, match="openai"), Step.error_event(after_events=1, match="anthropic"))
    with pytest.raises(openai.APIError, match="overloaded"):
        list(oai.chat.completions.create(model=GPT, messages=HI, stream=True))
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        list(claude.messages.create(model=CLAUDE, max_tokens=10, messages=HI, stream=True))
    assert [s.outcome for s in sim.wait_for_served(2)] == ["error_event", "error_event"]


def test_a_stall_mid_stream_is_a_read_timeout(sim, oai) -> None:
    sim.script(Step.stall_mid_stream(30, after_events=1))
    client = oai.with_options(max_retries=0, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        list(client.chat.completions.create(model=GPT, messages=HI, stream=True))


def test_a_mid_stream_step_waits_for_a_streamed_request(sim, oai) -> None:
    sim.script(Step.drop_mid_stream())
    oai.chat.completions.create(model=GPT, messages=HI)  # not streamed: answered normally, the step stays queued
    assert [s.kind for s in sim.pending_steps] == ["drop_mid_stream"]
    with pytest.raises(openai.APIConnectionError):
        list(oai.with_options(max_retries=0).chat.completions.create(model=GPT, messages=HI, stream=True))
    assert sim.pending_steps == []


def test_steps_round_trip_through_json() -> None:
    steps = [
        Step.ok(usage=UsagePlan(input=3, output=2, cache_read=1)),
        Step.rate_limited(retry_after=0.5, times=2, retry_after_ms=True, match="openai"),
        Step.overloaded(),
        Step.server_error(502),
        Step.bad_request(),
        Step.delay(0.1),
        Step.drop_connection(),
        Step.drop_mid_stream(after_events=3),
        Step.error_event(match="anthropic"),
        Step.stall_mid_stream(2.5, after_events=0),
    ]
    assert [Step.from_dict(step.to_dict()) for step in steps] == steps

"""The rate-limit model (token buckets with an injected clock, no sleeping) and the rate-limit headers."""

from __future__ import annotations

import datetime as dt
import re

import anthropic
import openai
import pytest

from tokenrate.simulator import RateLimitModel, SimulatedProvider, Step, UsagePlan, go_duration
from tokenrate.simulator._ratelimit import RateLimiter, proto_duration

GPT = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
HI = [{"role": "user", "content": "hi"}]
KEY = ("openai", GPT)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def parse_go_duration(text: str) -> float:
    """Parse Go's Duration.String() output (what OpenAI's reset headers use)."""
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)", text)
    assert match, text
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds)


def parse_rfc3339(text: str) -> dt.datetime:
    assert text.endswith("Z"), text
    return dt.datetime.fromisoformat(text[:-1] + "+00:00")


# -- the buckets, unit-tested with a fake clock -----------------------------------------------------------------


def test_requests_bucket_exhausts_refills_and_gives_the_exact_wait() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitModel(rpm=60, tpm=1_000_000), clock)
    for _ in range(60):
        assert limiter.admit(KEY, 10, 5).allowed
    refused = limiter.admit(KEY, 10, 5)
    assert not refused.allowed
    assert refused.reason == "requests"
    assert refused.retry_after_s == 1.0  # 60 RPM refill one request per second
    assert refused.windows["requests"].remaining == 0
    clock.advance(0.25)
    assert limiter.admit(KEY, 10, 5).retry_after_s == 0.75
    clock.advance(0.75)
    allowed = limiter.admit(KEY, 10, 5)
    assert allowed.allowed
    assert allowed.windows["requests"].remaining == 0
    assert allowed.windows["requests"].reset_s == 60.0  # empty again: a full minute to refill completely


def test_tokens_bucket_charges_input_plus_output() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitModel(rpm=1000, tpm=6000), clock)  # 100 tokens per second
    first = limiter.admit(KEY, 4000, 1000)
    assert first.allowed
    assert first.windows["tokens"].remaining == 1000
    assert first.windows["tokens"].reset_s == 50.0
    refused = limiter.admit(KEY, 1500, 500)
    assert (refused.allowed, refused.reason) == (False, "tokens")
    assert refused.retry_after_s == 10.0  # 1000 more tokens at 100/s
    assert refused.windows["tokens"].remaining == 0
    assert refused.windows["requests"].remaining == 999  # not binding: the truth (refusals are not charged)
    clock.advance(9.999)
    assert not limiter.admit(KEY, 1500, 500).allowed
    clock.advance(0.001)
    assert limiter.admit(KEY, 1500, 500).allowed


def test_a_request_larger_than_the_limit_waits_for_a_full_bucket_then_goes_into_debt() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitModel(rpm=1000, tpm=600), clock)  # 10 tokens per second
    assert limiter.admit(KEY, 900, 0).allowed  # a full bucket admits it; the level goes to -300
    assert limiter.admit(KEY, 900, 0).windows["tokens"].remaining == 0
    assert limiter.admit(KEY, 1, 0).retry_after_s == 30.1  # 301 tokens to refill at 10/s


def test_separate_input_and_output_windows() -> None:
    limiter = RateLimiter(RateLimitModel(rpm=100, tpm=10_000, input_tpm=120, output_tpm=6000), FakeClock())
    assert limiter.admit(KEY, 100, 10).allowed
    refused = limiter.admit(KEY, 100, 10)
    assert refused.reason == "input_tokens"
    assert refused.retry_after_s == 40.0  # 80 more input tokens at 2/s


def test_keys_are_independent() -> None:
    limiter = RateLimiter(RateLimitModel(rpm=1, tpm=1000), FakeClock())
    assert limiter.admit(("openai", "a"), 1, 1).allowed
    assert not limiter.admit(("openai", "a"), 1, 1).allowed
    assert limiter.admit(("openai", "b"), 1, 1).allowed
    assert limiter.admit(("anthropic", "a"), 1, 1).allowed


def test_report_only_mode_never_refuses_and_stops_at_zero() -> None:
    limiter = RateLimiter(RateLimitModel(rpm=2, tpm=10), FakeClock(), enforce=False)
    results = [limiter.admit(KEY, 50, 50) for _ in range(5)]
    assert all(r.allowed for r in results)
    assert [r.windows["requests"].remaining for r in results] == [1, 0, 0, 0, 0]
    assert results[-1].windows["tokens"].remaining == 0


def test_report_only_mode_counts_down_per_minute() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitModel(rpm=10_000, tpm=1_000_000), clock, enforce=False)
    remaining = []
    for _ in range(3):
        remaining.append(limiter.admit(KEY, 10, 5).windows["requests"].remaining)
        clock.advance(1.0)  # a continuous bucket would have refilled 166 requests by now
    assert remaining == [9999, 9998, 9997]
    assert limiter.windows(KEY)["requests"].reset_s == 57.0
    assert limiter.windows(KEY)["tokens"].remaining == 1_000_000 - 45
    clock.advance(57.0)
    assert limiter.windows(KEY)["requests"].remaining == 10_000
    assert limiter.windows(KEY)["requests"].reset_s == 0.0


def test_overload_bursts_are_seeded_and_reproducible() -> None:
    def run(seed: int) -> list[bool]:
        model = RateLimitModel(rpm=10_000, tpm=10_000_000, overload_rate=0.2, overload_burst=2, seed=seed)
        limiter = RateLimiter(model, FakeClock())
        return [limiter.admit(KEY, 1, 1).reason == "overloaded" for _ in range(200)]

    first = run(7)
    assert first == run(7)
    assert 10 < sum(first) < 120
    # A burst is at least two consecutive overloads.
    runs = re.findall(r"1+", "".join("1" if hit else "0" for hit in first))
    assert all(len(r) >= 2 for r in runs)
    assert run(8) != first


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.02, "20ms"),
        (0.0201, "21ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (17.28, "17.28s"),
        (60, "1m0s"),
        (360, "6m0s"),
        (3723.5, "1h2m3.5s"),
        (7200, "2h0m0s"),
    ],
)
def test_go_duration(seconds: float, text: str) -> None:
    assert go_duration(seconds) == text
    assert parse_go_duration(text) == pytest.approx(seconds, abs=0.001)


def test_proto_duration() -> None:
    assert [proto_duration(s) for s in (1, 37, 0.25, 1.5)] == ["1s", "37s", "0.25s", "1.5s"]


# -- the model behind the HTTP server, seen by the SDKs ----------------------------------------------------------


def test_model_429_through_the_sdk_with_exact_retry_after_and_refill() -> None:
    clock = FakeClock()
    plan = UsagePlan(input=10, output=5)
    with SimulatedProvider(rate_limits=RateLimitModel(rpm=2, tpm=40_000), clock=clock, usage=plan) as sim:
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
        first = client.chat.completions.with_raw_response.create(model=GPT, messages=HI)
        assert first.headers["x-ratelimit-remaining-requests"] == "1"
        assert first.headers["x-ratelimit-remaining-tokens"] == str(40_000 - 15)
        client.chat.completions.create(model=GPT, messages=HI)
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model=GPT, messages=HI)
        headers = caught.value.response.headers
        assert headers["retry-after-ms"] == "30000"  # 2 RPM: one request refills in 30 s
        assert headers["retry-after"] == "30"
        assert headers["x-ratelimit-remaining-requests"] == "0"
        assert headers["x-ratelimit-reset-requests"] == "1m0s"
        assert caught.value.type == "requests"
        # Another model has its own buckets.
        client.chat.completions.create(model="gpt-4o", messages=HI)
        clock.advance(30)
        client.chat.completions.create(model=GPT, messages=HI)
        served = sim.served
        assert [s.status for s in served] == [200, 200, 429, 200, 200]
        assert served[2].outcome == "model_rate_limited"
        assert served[2].usage is None


def test_model_429_anthropic_headers() -> None:
    clock = FakeClock()
    with SimulatedProvider(
        rate_limits=RateLimitModel(rpm=1, tpm=40_000), clock=clock, usage=UsagePlan(input=10, output=5)
    ) as sim:
        client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="x", max_retries=0)
        client.messages.create(model=CLAUDE, max_tokens=50, messages=HI)
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model=CLAUDE, max_tokens=50, messages=HI)
    headers = caught.value.response.headers
    assert headers["retry-after"] == "60"
    assert headers["retry-after-ms"] == "60000"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert caught.value.body["error"]["type"] == "rate_limit_error"


def test_scripted_steps_take_precedence_over_the_model() -> None:
    clock = FakeClock()
    with SimulatedProvider(rate_limits=RateLimitModel(rpm=1, tpm=40_000), clock=clock) as sim:
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
        sim.script(Step.ok(times=3))
        for _ in range(3):
            client.chat.completions.create(model=GPT, messages=HI)
        assert [s.status for s in sim.served] == [200, 200, 200]
        with pytest.raises(openai.RateLimitError):  # the script is used up; the (over-drawn) model refuses
            client.chat.completions.create(model=GPT, messages=HI)


def test_model_overload_answers_529() -> None:
    model = RateLimitModel(rpm=1000, tpm=1_000_000, overload_rate=1.0, overload_burst=1)
    with SimulatedProvider(rate_limits=model, clock=FakeClock()) as sim:
        client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="x", max_retries=0)
        with pytest.raises(anthropic.APIStatusError) as caught:
            client.messages.create(model=CLAUDE, max_tokens=50, messages=HI)
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"
    assert sim.served[0].outcome == "model_overloaded"


# -- headers on every answer ---------------------------------------------------------------------------------------


def test_openai_headers_are_present_parsable_and_count_down(sim, oai) -> None:
    sim.script(Step.ok(), Step.ok(), Step.bad_request())
    responses = [oai.chat.completions.with_raw_response.create(model=GPT, messages=HI) for _ in range(2)]
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model=GPT, messages=HI)
    all_headers = [r.headers for r in responses] + [caught.value.response.headers]
    for headers in all_headers:
        assert headers["x-tokenrate-simulated"] == "true"
        assert headers["x-request-id"].startswith("req_")
        for kind in ("requests", "tokens"):
            assert int(headers[f"x-ratelimit-limit-{kind}"]) >= int(headers[f"x-ratelimit-remaining-{kind}"]) >= 0
            assert parse_go_duration(headers[f"x-ratelimit-reset-{kind}"]) >= 0
    remaining = [int(h["x-ratelimit-remaining-requests"]) for h in all_headers]
    assert remaining[0] > remaining[1]  # generous, but meaningful: one request fewer


def test_anthropic_headers_are_present_and_parsable(sim, claude) -> None:
    sim.script(Step.ok(), Step.overloaded(retry_after=0.5))
    raw = claude.messages.with_raw_response.create(model=CLAUDE, max_tokens=50, messages=HI)
    with pytest.raises(anthropic.APIStatusError) as caught:
        claude.with_options(max_retries=0).messages.create(model=CLAUDE, max_tokens=50, messages=HI)
    now = dt.datetime.now(dt.timezone.utc)
    for headers in (raw.headers, caught.value.response.headers):
        assert headers["x-tokenrate-simulated"] == "true"
        assert headers["request-id"].startswith("req_")
        for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
            assert int(headers[f"anthropic-ratelimit-{kind}-limit"]) > 0
            assert int(headers[f"anthropic-ratelimit-{kind}-remaining"]) >= 0
            reset = parse_rfc3339(headers[f"anthropic-ratelimit-{kind}-reset"])
            assert now - dt.timedelta(seconds=5) < reset < now + dt.timedelta(minutes=2)
    assert caught.value.response.headers["retry-after"] == "0.5"


def test_gemini_sends_no_rate_limit_headers(sim, gemini) -> None:
    response = gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    headers = response.sdk_http_response.headers
    assert headers["x-tokenrate-simulated"] == "true"
    assert not [name for name in headers if "ratelimit" in name.lower()]

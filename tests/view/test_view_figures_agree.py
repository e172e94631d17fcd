"""Figures that never contradict each other, checked over many random sessions (fixed seeds: reproducible).

* average TPM/RPM is the mean of the rolling figure over the session, so it is never above the peak (and a
  session shorter than a minute is not extrapolated);
* throttled wall-clock time (at least one call waiting out a 429/529) is the union of the waits: never more than
  the summed waits, the provider time or the session; exact against a brute-force union;
* the rolling figure now is never above its peak.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest
from view_helpers import Clock, info, make_view, record, retry, start

from tokenrate.records import TokenUsage

EPS = 1e-9
MODELS = [info("openai", "gpt-4o-mini"), info("anthropic", "claude-haiku-4-5"), info("gcp.gemini", "gemini-2.5")]


def _session(rng: random.Random) -> list[tuple[float, str, dict]]:
    """Calls (some throttled, some concurrent) as a time-ordered list of (time, event, details)."""
    events = []
    t = 0.0
    for n in range(rng.randint(1, 60)):
        t += rng.choice([rng.uniform(0, 0.5), rng.uniform(0, 5), rng.uniform(20, 90)])  # bursts and pauses
        call_info = rng.choice(MODELS)
        begin = t + rng.uniform(0, 2)
        waits, at = [], begin + rng.uniform(0, 0.3)
        for _ in range(rng.choice([0, 0, 1, 2, 3])):
            wait = rng.choice([0.0, rng.uniform(0.1, 3), rng.uniform(5, 40)])
            waits.append((at, wait, rng.random() < 0.8))
            at += wait + rng.uniform(0, 0.3)
        end = at + rng.uniform(0.05, 4)
        usage = rng.choice([TokenUsage(rng.randint(1, 5000), rng.randint(0, 900)), TokenUsage(), TokenUsage(800)])
        events.append((begin, "start", {"id": n, "info": call_info}))
        for attempt, (when, wait, throttled) in enumerate(waits, 1):
            r = retry(
                call_info,
                at=when,
                wait=wait,
                attempt=attempt,
                status=429 if throttled else 500,
                reason="throttled" if throttled else "server_error",
            )
            events.append((when, "retry", {"id": n, "retry": r}))
        events.append((end, "end", {"id": n, "info": call_info, "start": begin, "usage": usage, "waits": waits}))
    events.sort(key=lambda e: (e[0], {"start": 0, "retry": 1, "end": 2}[e[1]]))
    return events


def _union(intervals: list[tuple[float, float]], now: float) -> float:
    covered, until = 0.0, float("-inf")
    for a, b in sorted((a, min(b, now)) for a, b in intervals if a < now):
        if b > until:
            covered += b - max(a, until)
            until = b
    return covered


@pytest.mark.parametrize("seed", range(200))
def test_no_two_figures_contradict(seed):
    rng = random.Random(seed)
    origin = 0.0 if seed % 2 else rng.uniform(0, 5)  # sessions starting on and off a second boundary
    clock = Clock(origin)
    view = make_view(clock)
    tokens, throttle_waits, ended = {}, [], []
    for offset, kind, details in _session(rng):
        when = origin + offset
        clock.t = max(clock.t, when)
        if kind == "start":
            tokens[details["id"]] = start(view, when, details["info"])
        elif kind == "retry":
            r = replace(details["retry"], at=when)
            view.retry(tokens[details["id"]], r)
            if r.throttled and r.wait_s:
                throttle_waits.append((r.at, r.at + r.wait_s))
        else:
            retries = tuple(
                retry(details["info"], at=origin + a, wait=w, attempt=i, status=429 if th else 500)
                for i, (a, w, th) in enumerate(details["waits"], 1)
            )
            begin = origin + details["start"]
            view.call_ended(
                tokens.pop(details["id"]),
                record(details["info"], start=begin, end=when, usage=details["usage"], retries=retries),
            )
            ended.append((int(when // 1), details["usage"].total or 0))
        if rng.random() < 0.3:
            _check(view.snapshot(), _union(throttle_waits, clock.t), _mean_of_windows(ended, origin, clock.t))
    clock.t += rng.uniform(0, 120)
    _check(view.snapshot(), _union(throttle_waits, clock.t), _mean_of_windows(ended, origin, clock.t))


def _mean_of_windows(ended: list[tuple[int, int]], origin: float, now: float) -> tuple[float, float]:
    """Brute force: the rolling 60 s sums sampled at every second of the session, averaged."""
    first, last = int(origin // 1), int(now // 1)
    tokens_at, calls_at = Counter(), Counter()
    for sec, tok in ended:
        tokens_at[sec] += tok
        calls_at[sec] += 1
    window_tokens = window_calls = sum_tokens = sum_calls = 0
    for t in range(first, last + 1):  # slide the window one second at a time
        window_tokens += tokens_at[t] - tokens_at[t - 60]
        window_calls += calls_at[t] - calls_at[t - 60]
        sum_tokens += window_tokens
        sum_calls += window_calls
    samples = last - first + 1
    return sum_tokens / samples, sum_calls / samples


def _check(snap, expected_wall: float, expected_average: tuple[float, float]) -> None:
    rates = snap.rates
    assert rates.avg_tpm == pytest.approx(expected_average[0])
    assert rates.avg_rpm == pytest.approx(expected_average[1])
    assert rates.avg_tpm <= rates.peak_tpm + EPS, rates
    assert rates.avg_rpm <= rates.peak_rpm + EPS, rates
    assert rates.tpm <= rates.peak_tpm
    assert rates.rpm <= rates.peak_rpm
    assert snap.tokens.total >= rates.tpm
    throttle = snap.throttle
    assert throttle.wall_s == pytest.approx(expected_wall, abs=1e-6)
    assert throttle.wall_s <= throttle.wait_s + EPS
    assert throttle.wall_s <= rates.busy_s + EPS
    assert throttle.wall_s <= snap.duration_s + EPS
    assert sum(m.throttle_wait_s for m in snap.models) == pytest.approx(throttle.wait_s)
    for m in snap.models:
        assert m.throttle_wall_s <= m.throttle_wait_s + EPS
        assert m.throttle_wall_s <= throttle.wall_s + EPS


def test_a_short_session_is_not_extrapolated():
    clock = Clock()
    view = make_view(clock)
    for second in range(10):  # 100 tokens a second for 10 s
        token = start(view, float(second))
        view.call_ended(token, record(start=float(second), end=second + 0.5, inp=100, out=0))
    clock.t = 9.9
    rates = view.snapshot().rates
    assert (rates.tpm, rates.peak_tpm) == (1000, 1000)
    assert rates.avg_tpm <= rates.peak_tpm  # was 6,000: 1,000 tokens in 10 s, extrapolated to a minute


def test_a_record_dated_long_ago_keeps_the_average_under_the_peak():
    clock = Clock()
    view = make_view(clock)
    token = start(view, 0.0)
    clock.t = 200.0
    view.snapshot()  # the window has moved on
    view.call_ended(token, record(start=0.0, end=1.0, inp=5000, out=0))  # an abandoned stream, dated to its end
    rates = view.snapshot().rates
    assert rates.avg_tpm <= rates.peak_tpm


def test_concurrent_waits_are_summed_and_their_union_is_wall_clock():
    clock = Clock()
    view = make_view(clock)
    a, b = start(view, 0.0), start(view, 0.0)
    view.retry(a, retry(at=1.0, wait=10.0))
    view.retry(b, retry(at=2.0, wait=10.0))
    clock.t = 20.0
    view.call_ended(a, record(start=0.0, end=12.0, inp=10, out=1, retries=(retry(at=1.0, wait=10.0),)))
    view.call_ended(b, record(start=0.0, end=13.0, inp=10, out=1, retries=(retry(at=2.0, wait=10.0),)))
    snap = view.snapshot()
    assert snap.throttle.wait_s == 20.0  # summed over the two calls
    assert snap.throttle.wall_s == 11.0  # [1, 12]: at least one of them waiting
    assert snap.models[0].throttle_wall_s == 11.0

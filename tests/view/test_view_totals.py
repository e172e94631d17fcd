"""Session totals: tokens, requests, errors, throttling, retries, cost, rate limits, per-model rows, budgets."""

from __future__ import annotations

import os
import time

import pytest
from view_helpers import WALL0, Clock, call, info, limits, make_view, record, retry, start

from tokenrate.errors import CallRejected
from tokenrate.pipeline import Pipeline, local_sinks, remove_local_sink
from tokenrate.recording import ActiveCall
from tokenrate.records import BudgetLine, RateLimits, RateLimitWindow, TokenUsage
from tokenrate.view import View, format_status, get_view, set_budget_provider
from tokenrate.view import reset as reset_view
from tokenrate.view import snapshot as view_snapshot


def test_six_token_types_sum_known_values_and_count_unknown_usage():
    clock = Clock()
    view = make_view(clock)
    call(view, start_at=0, end=1, usage=TokenUsage(100, 40, cache_read=30, reasoning=10), cost=0.5)
    call(view, start_at=1, end=2, usage=TokenUsage(50, 5, cache_write=20, tool_use=7), cost=0.25)
    call(view, start_at=2, end=3, usage=TokenUsage(output=9))  # input unknown: not counted as 0, not "unknown"
    call(view, start_at=3, end=4, usage=TokenUsage())  # succeeded but reported nothing
    call(view, start_at=4, end=5, usage=TokenUsage(), status=500, error="InternalServerError")  # unbilled
    clock.t = 5
    snap = view.snapshot()
    t = snap.tokens
    assert (t.input, t.output, t.cache_read, t.cache_write, t.reasoning, t.tool_use) == (150, 54, 30, 20, 10, 7)
    assert t.total == 204
    assert snap.unknown_usage_calls == 1
    assert (snap.requests, snap.attempts, snap.errors) == (5, 5, 1)
    assert snap.errors_by_type == (("InternalServerError", 1),)
    assert snap.cost_usd == 0.75
    assert snap.unknown_cost_calls == 2  # the output-only call and the empty success; not the failure


def test_model_is_request_model_then_response_model_then_unknown():
    clock = Clock()
    view = make_view(clock)
    call(view, start_at=0, end=1, call_info=info(model="asked"), response_model="answered", inp=1, out=0)
    call(view, start_at=0, end=1, call_info=info(model=None), response_model="answered", inp=2, out=0)
    call(view, start_at=0, end=1, call_info=info(model=None), inp=4, out=0)
    rows = {(m.provider, m.model): m.tokens.input for m in view.snapshot().models}
    assert rows == {("openai", "asked"): 1, ("openai", "answered"): 2, ("openai", "unknown"): 4}


def test_key_cap_sends_new_models_to_the_overflow_row_and_totals_stay_exact():
    clock = Clock()
    view = make_view(clock, max_keys=3)
    for i in range(7):
        call(view, start_at=0, end=1, call_info=info(model=f"m{i}"), inp=10 + i, out=1, cost=0.01)
    call(view, start_at=0, end=1, call_info=info(model="m0"), inp=1000, out=0)  # known key still has its row
    snap = view.snapshot()
    rows = {(m.provider, m.model): m for m in snap.models}
    assert set(rows) == {("openai", "m0"), ("openai", "m1"), ("openai", "m2"), ("other", "other")}
    assert rows["openai", "m0"].tokens.input == 1010
    assert rows["other", "other"].requests == 4
    assert rows["other", "other"].tokens.input == 13 + 14 + 15 + 16
    assert snap.tokens.input == sum(10 + i for i in range(7)) + 1000
    assert sum(m.requests for m in snap.models) == snap.requests == 8


def test_totals_continue_across_provider_switches():
    clock = Clock()
    view = make_view(clock)
    call(view, start_at=0, end=1, call_info=info("openai", "gpt-4o"), inp=10, out=1)
    call(view, start_at=1, end=2, call_info=info("anthropic", "claude-sonnet-4"), inp=20, out=2)
    call(view, start_at=2, end=3, call_info=info("gcp.gemini", "gemini-2.5-flash"), inp=30, out=3)
    clock.t = 3
    snap = view.snapshot()
    assert (snap.requests, snap.tokens.total, snap.rates.tpm) == (3, 66, 66)
    assert [m.provider for m in snap.models] == ["gcp.gemini", "anthropic", "openai"]  # most tokens first


def test_error_types_are_capped():
    clock = Clock()
    view = make_view(clock)
    for i in range(40):
        call(view, start_at=0, end=1, error=f"Error{i:02d}", status=400)
    snap = view.snapshot()
    table = dict(snap.errors_by_type)
    assert len(table) == 33
    assert table["other"] == 8
    assert sum(table.values()) == snap.errors == 40


def test_throttling_is_visible_live_and_not_counted_twice_at_the_end():
    clock = Clock()
    view = make_view(clock)
    token = start(view, 0.0)
    r1 = retry(at=1.0, wait=2.0)
    r2 = retry(at=3.5, wait=4.0, attempt=2)
    view.retry(token, r1)
    view.retry(token, r2)
    clock.t = 5.0
    live = view.snapshot()
    assert (live.throttle.events, live.throttle.wait_s, live.throttle.retries) == (2, 6.0, 2)
    assert live.in_flight == 1
    assert live.requests == 0

    view.call_ended(token, record(start=0.0, end=8.0, inp=10, out=5, retries=(r1, r2)))
    done = view.snapshot()
    assert (done.throttle.events, done.throttle.wait_s, done.throttle.retries) == (2, 6.0, 2)
    assert done.throttle.retries_by_reason == (("throttled", 2),)
    assert (done.requests, done.attempts) == (1, 3)
    row = done.models[0]
    assert (row.throttle_events, row.throttle_wait_s, row.retries, row.attempts) == (2, 6.0, 2, 3)


def test_retries_not_reported_live_are_counted_at_the_end_with_the_final_429():
    clock = Clock()
    view = make_view(clock)
    retries = (
        retry(at=1.0, wait=0.5, status=503, reason="server_error"),
        retry(at=2.0, wait=1.5, attempt=2),
    )
    token = start(view, 0.0)
    view.retry(token, retries[0])  # only the first was seen live
    view.call_ended(token, record(start=0, end=4, retries=retries, status=429, error="RateLimitError"))
    snap = view.snapshot()
    # throttle events = the throttled retry + the final 429; waits only for throttled retries
    assert (snap.throttle.events, snap.throttle.wait_s) == (2, 1.5)
    assert (snap.throttle.retries, snap.throttle.retry_wait_s) == (2, 2.0)
    assert snap.throttle.retries_by_reason == (("server_error", 1), ("throttled", 1))
    assert (snap.requests, snap.attempts, snap.errors) == (1, 3, 1)
    assert snap.errors_by_type == (("RateLimitError", 1),)
    assert snap.unknown_cost_calls == 0  # a failed call without usage is not billed


def test_live_retries_move_to_the_model_known_only_at_the_end():
    clock = Clock()
    view = make_view(clock)
    no_model = info(model=None)
    token = start(view, 0.0, no_model)
    r = retry(no_model, at=1.0, wait=3.0)
    view.retry(token, r)
    live_rows = {m.model: m.throttle_events for m in view.snapshot().models}
    assert live_rows == {"unknown": 1}
    view.call_ended(token, record(no_model, start=0, end=5, response_model="gpt-5", retries=(r,), inp=1, out=1))
    snap = view.snapshot()
    assert [(m.model, m.throttle_events, m.throttle_wait_s, m.retries, m.attempts) for m in snap.models] == [
        ("gpt-5", 1, 3.0, 1, 2)
    ]
    assert (snap.throttle.events, snap.attempts) == (1, 2)


def test_rejected_calls_are_not_requests():
    clock = Clock()
    view = make_view(clock)
    token = start(view, 0.0)
    view.call_ended(token, record(start=0, end=0.001, error="CallRejected", status=None))
    snap = view.snapshot()
    assert (snap.requests, snap.attempts, snap.errors, snap.rejected, snap.in_flight) == (0, 0, 0, 1, 0)
    assert snap.rates.rpm == 0
    assert snap.models == ()


def test_rate_limits_latest_per_provider_and_kind_from_responses_and_429s():
    clock = Clock()
    view = make_view(clock)
    call(view, start_at=0, end=1, limits=limits("tokens", 1000, 900, 60.0), inp=1, out=1)
    token = start(view, 2.0)
    fresh = RateLimits(windows=(RateLimitWindow("tokens", 1000, 0, 10.0), RateLimitWindow("requests", 50, 49)))
    view.retry(token, retry(at=3.0, wait=1.0, limits=fresh))
    clock.t = 3.5
    snap = view.snapshot()
    by_kind = {(w.provider, w.kind): w for w in snap.rate_limits}
    assert by_kind["openai", "tokens"].remaining == 0
    assert by_kind["openai", "tokens"].used_fraction == 1.0
    assert by_kind["openai", "tokens"].observed_at == WALL0 + 3.0
    assert by_kind["openai", "tokens"].resets_at == WALL0 + 13.0
    assert by_kind["openai", "requests"].used_fraction == pytest.approx(0.02)
    assert snap.limit_used_max == 1.0

    # The call's final response was read before the 429 (an older answer): it must not hide the 429's news.
    view.call_ended(token, record(start=2.0, end=2.5, limits=limits("tokens", 1000, 800, 60.0), inp=1, out=1))
    assert {(w.kind, w.remaining) for w in view.snapshot().rate_limits} == {("tokens", 0), ("requests", 49)}

    clock.t = 14.0  # the tokens window has refilled (reset 10 s after t=3); only "requests" is still current
    assert view.snapshot().limit_used_max == pytest.approx(0.02)


def test_cost_sums_known_values_per_model():
    clock = Clock()
    view = make_view(clock)
    call(view, start_at=0, end=1, call_info=info(model="a"), inp=1, out=1, cost=0.125)
    call(view, start_at=0, end=1, call_info=info(model="a"), inp=1, out=1, cost=0.25)
    call(view, start_at=0, end=1, call_info=info(model="b"), inp=1, out=1, cost=None)
    call(view, start_at=0, end=1, call_info=info(model="b"), inp=1, out=1, cost=float("nan"))
    snap = view.snapshot()
    rows = {m.model: (m.cost_usd, m.unknown_cost_calls) for m in snap.models}
    assert rows == {"a": (0.375, 0), "b": (0.0, 2)}
    assert (snap.cost_usd, snap.unknown_cost_calls) == (0.375, 2)


def test_zero_call_snapshot_is_all_zeros():
    clock = Clock(5.0)
    view = make_view(clock)
    clock.t = 7.5
    snap = view.snapshot()
    assert (snap.requests, snap.attempts, snap.errors, snap.rejected, snap.in_flight) == (0, 0, 0, 0, 0)
    assert snap.tokens.total == 0
    assert (snap.cost_usd, snap.unknown_cost_calls, snap.unknown_usage_calls) == (0.0, 0, 0)
    assert (snap.rates.tpm, snap.rates.rpm, snap.rates.peak_tpm, snap.rates.avg_rpm) == (0, 0, 0, 0.0)
    assert snap.throttle.events == 0
    assert (snap.models, snap.rate_limits, snap.budgets, snap.errors_by_type) == ((), (), (), ())
    assert snap.limit_used_max is None
    assert (snap.session_started_at, snap.updated_at, snap.duration_s) == (WALL0 + 5.0, WALL0 + 7.5, 2.5)


def test_reset_starts_a_new_session_and_keeps_calls_in_flight():
    clock = Clock()
    view = make_view(clock)
    call(view, start_at=0, end=1, inp=100, out=1)
    token = start(view, 2.0)
    r = retry(at=3.0, wait=1.0)
    view.retry(token, r)  # counted in the old session
    clock.t = 4.0
    view.reset()
    snap = view.snapshot()
    assert (snap.requests, snap.tokens.total, snap.throttle.events, snap.in_flight) == (0, 0, 0, 1)
    assert snap.session_started_at == WALL0 + 4.0
    clock.t = 6.0
    view.call_ended(token, record(start=2.0, end=6.0, inp=7, out=0, retries=(r,)))
    snap = view.snapshot()
    assert (snap.requests, snap.attempts, snap.tokens.total, snap.throttle.events) == (1, 1, 7, 0)
    assert (snap.in_flight, snap.rates.busy_s) == (0, 2.0)  # busy from the reset (4) to the end (6)


@pytest.mark.tokenrate_errors_expected
def test_budget_lines_come_from_the_registered_provider(swallowed_errors):
    clock = Clock()
    lines = (BudgetLine("daily_usd", "day", "USD", 4.2, 10.0, "ok"),)
    view = View(monotonic=clock, wall=clock.wall)  # uses the process-wide budget provider
    try:
        set_budget_provider(lambda: lines)
        assert view.snapshot().budgets == lines

        def broken() -> list[BudgetLine]:
            raise RuntimeError("budget store unavailable")

        set_budget_provider(broken)
        assert view.snapshot().budgets == ()  # logged, not raised
        assert swallowed_errors.places() == ["budget provider"]
        set_budget_provider(None)
        assert view.snapshot().budgets == ()
    finally:
        set_budget_provider(None)


def test_process_view_is_one_registered_sink_fed_by_real_active_calls():
    view = get_view()
    assert get_view() is view
    assert sum(1 for s in local_sinks() if s is view) == 1
    reset_view()
    try:
        pipeline = Pipeline(None)
        active = ActiveCall(pipeline, info(model="gpt-4o-mini"))
        active.add_retry(status_code=429, error_kind=None, wait_s=0.25, rate_limits=limits())
        assert view_snapshot().throttle.events == 1  # live, before the call ends
        active.usage = TokenUsage(input=12, output=3, cache_read=2)
        active.response_model = "gpt-4o-mini-2024-07-18"
        active.status_code = 200
        active.finish()

        rejecting = _Rejecting()
        from tokenrate.pipeline import add_local_sink

        add_local_sink(rejecting)
        try:
            with pytest.raises(CallRejected):
                ActiveCall(pipeline, info(model="gpt-4o-mini"))
        finally:
            remove_local_sink(rejecting)

        snap = view_snapshot()
        assert (snap.requests, snap.attempts, snap.rejected, snap.in_flight) == (1, 2, 1, 0)
        assert (snap.tokens.input, snap.tokens.output, snap.tokens.cache_read) == (12, 3, 2)
        assert (snap.throttle.events, snap.throttle.wait_s) == (1, 0.25)
        assert [(m.model, m.requests) for m in snap.models] == [("gpt-4o-mini", 1)]
        assert snap.rates.busy_s > 0
        assert format_status(snap).startswith("TPM 15 · RPM 1 · 15 tok")
    finally:
        reset_view()


class _Rejecting:
    """A later sink that refuses calls (like an enforced budget)."""

    def call_started(self, call: object) -> None:
        raise CallRejected("budget exhausted")

    def retry(self, token: object, retry: object) -> None:
        pass

    def call_ended(self, token: object, record: object) -> None:
        pass


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_starts_its_own_session():
    view = get_view()
    reset_view()
    try:
        call(view, start_at=time.monotonic(), end=time.monotonic(), inp=5, out=5)
        assert view_snapshot().requests == 1
        pid = os.fork()
        if pid == 0:  # child: report through the exit code only
            ok = view_snapshot().requests == 0 and view_snapshot().in_flight == 0
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert view_snapshot().requests == 1  # the parent keeps its own
    finally:
        reset_view()

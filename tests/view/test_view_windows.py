"""Rolling TPM/RPM windows, peaks and provider time, with a hand-moved clock."""

from __future__ import annotations

import pytest
from view_helpers import Clock, call, make_view, record, retry, start


@pytest.mark.parametrize(
    ("ended_at", "last_in", "first_out"),
    [
        (0.0, 59.999, 60.0),  # a call at t=0 counts while t < 60 and not at t >= 60
        (0.999, 59.999, 60.0),  # same one-second bucket as t=0
        (1.0, 60.999, 61.0),  # the next bucket
        (59.5, 118.999, 119.0),
    ],
)
def test_call_stays_in_window_for_exactly_its_bucket_minute(ended_at: float, last_in: float, first_out: float):
    clock = Clock()
    view = make_view(clock)
    call(view, start_at=ended_at, end=ended_at, inp=100, out=50)

    clock.t = last_in
    rates = view.snapshot().rates
    assert (rates.tpm, rates.tpm_input, rates.tpm_output, rates.rpm, rates.apm) == (150, 100, 50, 1, 1)

    clock.t = first_out
    rates = view.snapshot().rates
    assert (rates.tpm, rates.tpm_input, rates.tpm_output, rates.rpm, rates.apm) == (0, 0, 0, 0, 0)


def test_window_slides_second_by_second():
    clock = Clock()
    view = make_view(clock)
    for end, tokens in [(0.2, 10), (30.0, 200), (59.9, 3000)]:
        call(view, start_at=end, end=end, inp=tokens, out=0)

    expected = {59.9: 3210, 60.0: 3200, 89.999: 3200, 90.0: 3000, 118.999: 3000, 119.0: 0}
    for t, tpm in expected.items():
        clock.t = t
        assert view.snapshot().rates.tpm == tpm, t


def test_a_long_gap_clears_the_whole_window():
    clock = Clock()
    view = make_view(clock)
    for end in range(60):
        call(view, start_at=end, end=end + 0.5, inp=1, out=1)
    clock.t = 59.9
    assert view.snapshot().rates.rpm == 60
    call(view, start_at=500.0, end=500.0, inp=7, out=0)  # jump far ahead without any snapshot in between
    clock.t = 500.0
    rates = view.snapshot().rates
    assert (rates.tpm, rates.rpm) == (7, 1)


def test_late_record_inside_window_counts_and_one_outside_only_in_totals():
    clock = Clock()
    view = make_view(clock)
    call(view, start_at=100.0, end=100.0, inp=10, out=0)
    call(view, start_at=45.0, end=45.0, inp=20, out=0)  # arrives late but second 45 is still in 41..100
    call(view, start_at=40.0, end=40.0, inp=40, out=0)  # second 40 already left the window
    clock.t = 100.5
    snap = view.snapshot()
    assert snap.rates.tpm == 30
    assert snap.tokens.input == 70
    assert snap.requests == 3


def test_attempts_per_minute_counts_retries_at_their_own_second():
    clock = Clock()
    view = make_view(clock)
    token = start(view, 0.0)
    retries = (retry(at=1.0, wait=2.0), retry(at=3.5, wait=1.0, attempt=2))
    for r in retries:
        view.retry(token, r)
    clock.t = 4.0
    rates = view.snapshot().rates
    assert (rates.rpm, rates.apm) == (0, 2)  # failed attempts show before the call ends

    view.call_ended(token, record(start=0.0, end=5.0, inp=5, out=5, retries=retries))
    expected = {5.0: (1, 3), 60.999: (1, 3), 61.0: (1, 2), 63.0: (1, 1), 65.0: (0, 0)}
    for t, (rpm, apm) in expected.items():
        clock.t = t
        rates = view.snapshot().rates
        assert (rates.rpm, rates.apm) == (rpm, apm), t


def test_peak_is_the_largest_rolling_value_and_survives_the_window():
    clock = Clock()
    view = make_view(clock)
    for i in range(5):  # a burst: 5 calls of 1,000 tokens in 5 s, never snapshotted during the burst
        call(view, start_at=i, end=i + 0.5, inp=600, out=400)
    call(view, start_at=70.0, end=70.0, inp=100, out=0)  # burst has left the window by now

    clock.t = 200.0
    rates = view.snapshot().rates
    assert (rates.tpm, rates.rpm) == (0, 0)
    assert (rates.peak_tpm, rates.peak_rpm) == (5000, 5)

    for i in range(10):  # more calls but fewer tokens: RPM peak rises, TPM peak stays
        call(view, start_at=300 + i, end=300 + i, inp=10, out=0)
    clock.t = 310.0
    rates = view.snapshot().rates
    assert (rates.tpm, rates.rpm) == (100, 10)
    assert (rates.peak_tpm, rates.peak_rpm) == (5000, 10)


def test_per_model_rows_have_their_own_windows_and_peaks():
    clock = Clock()
    view = make_view(clock)
    from view_helpers import info

    a, b = info(model="model-a"), info(model="model-b")
    call(view, start_at=0, end=1, call_info=a, inp=100, out=0)
    call(view, start_at=0, end=2, call_info=b, inp=30, out=0)
    call(view, start_at=0, end=61.5, call_info=a, inp=5, out=0)
    clock.t = 61.5
    rows = {m.model: m for m in view.snapshot().models}
    assert (rows["model-a"].tpm, rows["model-a"].rpm, rows["model-a"].peak_tpm) == (5, 1, 100)
    assert (rows["model-b"].tpm, rows["model-b"].rpm, rows["model-b"].peak_tpm) == (30, 1, 30)


# -- provider time (active TPM) ---------------------------------------------------------------------------------


def test_tool_time_between_calls_is_not_provider_time():
    """10 s calling the model, 50 s running tools: the model is not slow, the agent is busy elsewhere."""
    clock = Clock()
    view = make_view(clock)
    call(view, start_at=0.0, end=10.0, inp=600, out=400)
    clock.t = 60.0 - 1e-9  # ~one minute later, the call still in the window
    rates = view.snapshot().rates
    assert rates.tpm == 1000
    assert rates.busy_s == 10.0
    assert rates.window_busy_s == 10.0
    assert rates.session_active_tpm == pytest.approx(6000.0)
    assert rates.active_tpm == pytest.approx(6000.0)
    # The mean of the rolling TPM over the 60 one-second samples 0..59: 0 before the call ended at second 10,
    # 1000 in the 50 samples from then on.
    assert rates.avg_tpm == pytest.approx(1000.0 * 50 / 60)


def test_overlapping_calls_count_their_union_once():
    clock = Clock()
    view = make_view(clock)
    a = start(view, 0.0)
    b = start(view, 5.0)
    view.call_ended(a, record(start=0.0, end=10.0, inp=1, out=0))
    view.call_ended(b, record(start=5.0, end=20.0, inp=1, out=0))
    c = start(view, 30.0)
    inner = start(view, 31.0)  # nested inside c
    view.call_ended(inner, record(start=31.0, end=32.0, inp=1, out=0))
    view.call_ended(c, record(start=30.0, end=35.0, inp=1, out=0))
    clock.t = 40.0
    rates = view.snapshot().rates
    assert rates.busy_s == 25.0  # [0, 20] + [30, 35]
    assert rates.window_busy_s == pytest.approx(25.0)


def test_a_call_in_flight_counts_up_to_now():
    clock = Clock()
    view = make_view(clock)
    token = start(view, 2.0)
    clock.t = 14.5
    snap = view.snapshot()
    assert snap.in_flight == 1
    assert snap.rates.busy_s == 12.5
    assert snap.rates.window_busy_s == 12.5
    assert snap.rates.session_active_tpm == 0.0
    clock.t = 20.0
    view.call_ended(token, record(start=2.0, end=20.0, inp=90, out=0))
    snap = view.snapshot()
    assert (snap.in_flight, snap.rates.busy_s) == (0, 18.0)
    assert snap.rates.session_active_tpm == pytest.approx(300.0)


def test_throttle_waits_inside_a_call_are_provider_time():
    clock = Clock()
    view = make_view(clock)
    token = start(view, 0.0)
    r = retry(at=1.0, wait=8.0)
    view.retry(token, r)
    view.call_ended(token, record(start=0.0, end=10.0, inp=100, out=20, retries=(r,)))
    clock.t = 10.0
    snap = view.snapshot()
    assert snap.rates.busy_s == 10.0
    assert snap.throttle.wait_s == 8.0


def test_window_provider_time_keeps_only_the_seconds_in_the_window():
    clock = Clock()
    view = make_view(clock)
    call(view, start_at=0.0, end=10.0, inp=1000, out=0)
    clock.t = 65.0  # window is seconds 6..65: 4 busy seconds (6, 7, 8, 9) remain
    rates = view.snapshot().rates
    assert rates.window_busy_s == 4.0
    assert rates.tpm == 1000
    assert rates.active_tpm == pytest.approx(15000.0)
    assert rates.busy_s == 10.0


def test_long_call_only_its_last_minute_is_in_the_window():
    clock = Clock()
    view = make_view(clock)
    call(view, start_at=0.0, end=300.25, inp=10, out=0)
    clock.t = 300.25
    rates = view.snapshot().rates
    assert rates.window_busy_s == pytest.approx(59.25)  # seconds 241..299 whole, plus 0.25 of second 300
    assert rates.busy_s == 300.25


def test_no_calls_means_no_active_rate():
    clock = Clock()
    view = make_view(clock)
    clock.t = 30.0
    rates = view.snapshot().rates
    assert rates.active_tpm is None
    assert rates.session_active_tpm is None
    assert (rates.busy_s, rates.window_busy_s, rates.avg_tpm) == (0.0, 0.0, 0.0)


def test_short_calls_within_one_second_add_up():
    clock = Clock()
    view = make_view(clock)
    for begin, end in [(0.125, 0.25), (0.5, 0.75), (0.75, 0.875), (1.5, 2.25)]:
        call(view, start_at=begin, end=end, inp=1, out=0)
    clock.t = 3.0
    rates = view.snapshot().rates
    assert rates.busy_s == 1.25
    assert rates.window_busy_s == 1.25


def test_the_call_ring_equals_a_recount_of_its_events_at_every_step():
    """`CallRing`'s window sums and peaks (counted lazily: a second is folded in when the window moves on) equal
    a recount from the events themselves after every event, including late ones, retries and long gaps."""
    import random

    from tokenrate.view._ring import WINDOW_S, CallRing

    rng = random.Random(3)
    ring = CallRing()
    events: list[tuple[int, int, int, int]] = []  # (second, input, output, calls) that counted
    head: int | None = None
    peak_total = peak_calls = 0
    for _ in range(5_000):
        step = rng.choice((0, 0, 0, 1, 1, 2, -1, -3, -59, -60, 61, 200))
        sec = (head or 0) + step
        kind = rng.choice(("call", "call", "call", "attempt", "advance"))
        late = head is not None and sec <= head - WINDOW_S
        if kind == "advance":
            ring.advance(sec)
        elif kind == "attempt":
            ring.add_attempt(sec)
            if not late:
                events.append((sec, 0, 0, 0))
        else:
            inp, out = rng.randint(0, 500), rng.randint(0, 100)
            ring.add_call(sec, inp, out)
            if not late:
                events.append((sec, inp, out, 1))
        if head is None or sec > head:
            head = sec
        window = [e for e in events if head - WINDOW_S < e[0] <= head]
        total = sum(e[1] + e[2] for e in window)
        calls = sum(e[3] for e in window)
        if kind == "call":
            peak_total, peak_calls = max(peak_total, total), max(peak_calls, calls)
        assert (ring.sum_in, ring.sum_out, ring.sum_total) == (
            sum(e[1] for e in window),
            sum(e[2] for e in window),
            total,
        )
        assert (ring.sum_calls, ring.sum_attempts) == (calls, len(window))
        assert (ring.peak_total, ring.peak_calls) == (peak_total, peak_calls)

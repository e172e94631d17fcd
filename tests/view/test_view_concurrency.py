"""Exact totals when many threads and asyncio tasks record at once (and snapshots run meanwhile)."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator

import pytest
from view_helpers import Clock, info, make_view, record, retry, start

from tokenrate.view import View

THREADS = 8
CALLS = 1500
MODELS = [info(model=f"model-{i}") for i in range(3)]


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    """Make the interpreter switch threads far more often than usual, to provoke interleavings."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def record_calls(view: View, worker: int, calls: int) -> None:
    for i in range(calls):
        call_info = MODELS[(worker + i) % len(MODELS)]
        token = start(view, 0.0, call_info)
        retries = ()
        if i % 5 == 0:
            r = retry(call_info, at=0.5, wait=0.25)
            view.retry(token, r)
            retries = (r,)
        view.call_ended(token, record(call_info, start=0.0, end=1.0, inp=i, out=2, retries=retries, cost=0.125))


def expected_totals(workers: int, calls: int) -> dict[str, float]:
    n = workers * calls
    throttled = workers * len(range(0, calls, 5))
    return {
        "requests": n,
        "attempts": n + throttled,
        "input": workers * sum(range(calls)),
        "output": 2 * n,
        "throttle_events": throttled,
        "throttle_wait": 0.25 * throttled,
        "cost": 0.125 * n,
    }


def check(view: View, workers: int, calls: int) -> None:
    snap = view.snapshot()
    want = expected_totals(workers, calls)
    got = {
        "requests": snap.requests,
        "attempts": snap.attempts,
        "input": snap.tokens.input,
        "output": snap.tokens.output,
        "throttle_events": snap.throttle.events,
        "throttle_wait": snap.throttle.wait_s,
        "cost": snap.cost_usd,
    }
    assert got == want
    assert snap.in_flight == 0
    assert (snap.rates.rpm, snap.rates.tpm) == (want["requests"], want["input"] + want["output"])
    assert snap.rates.apm == want["attempts"]
    assert sum(m.requests for m in snap.models) == want["requests"]
    assert sum(m.tokens.input for m in snap.models) == want["input"]
    assert sum(m.throttle_events for m in snap.models) == want["throttle_events"]
    assert snap.rates.busy_s == 1.0  # every call spans [0, 1]: their union is one second


def test_threads_record_exact_totals_while_snapshots_run():
    clock = Clock(0.0)
    view = make_view(clock)
    clock.t = 1.0
    barrier = threading.Barrier(THREADS + 1)
    done = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not done.is_set():
                seen.append(view.snapshot().requests)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    def worker(n: int) -> None:
        barrier.wait()
        record_calls(view, n, CALLS)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    snapshotter = threading.Thread(target=reader)
    snapshotter.start()
    barrier.wait()
    for t in threads:
        t.join()
    done.set()
    snapshotter.join()

    assert errors == []
    assert seen == sorted(seen)  # requests never go backwards
    check(view, THREADS, CALLS)


async def _task(view: View, worker: int, calls: int, in_flight_seen: list[int]) -> None:
    for i in range(calls):
        call_info = MODELS[(worker + i) % len(MODELS)]
        token = start(view, 0.0, call_info)
        await asyncio.sleep(0)
        retries = ()
        if i % 5 == 0:
            r = retry(call_info, at=0.5, wait=0.25)
            view.retry(token, r)
            retries = (r,)
            await asyncio.sleep(0)
        in_flight_seen.append(view.snapshot().in_flight)
        view.call_ended(token, record(call_info, start=0.0, end=1.0, inp=i, out=2, retries=retries, cost=0.125))


def test_asyncio_tasks_record_exact_totals():
    clock = Clock(0.0)
    view = make_view(clock)
    clock.t = 1.0
    tasks, calls = 50, 40
    in_flight_seen: list[int] = []

    async def main() -> None:
        await asyncio.gather(*(_task(view, n, calls, in_flight_seen) for n in range(tasks)))

    asyncio.run(main())
    assert max(in_flight_seen) > 1  # the calls really overlapped
    check(view, tasks, calls)


def test_event_loops_in_several_threads():
    clock = Clock(0.0)
    view = make_view(clock)
    clock.t = 1.0
    loops, tasks, calls = 4, 10, 30

    def run_loop(n: int) -> None:
        async def main() -> None:
            await asyncio.gather(*(_task(view, n * tasks + k, calls, []) for k in range(tasks)))

        asyncio.run(main())

    threads = [threading.Thread(target=run_loop, args=(n,)) for n in range(loops)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(view, loops * tasks, calls)

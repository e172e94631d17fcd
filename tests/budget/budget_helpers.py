"""Small shared pieces of the budget tests: a settable clock and waiting for a background thread's result."""

from __future__ import annotations

import time
from collections.abc import Callable

from tokenrate.records import CallInfo, CallRecord, TokenUsage


class Clock:
    """A wall clock the test sets by hand (budgets read ``time.time()``-like values)."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    """Poll until ``predicate()``; fail naming ``what`` after ``timeout`` seconds (threads, stores, ledgers)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def call(ts: float, *, cost: float | None = 0.1, tokens: int = 100, **attributes: str) -> CallRecord:
    """A finished call that started at ``ts``; attributes as keywords, dots spelled ``__`` (``user__id=``)."""
    return CallRecord(
        info=CallInfo(provider="openai", operation="chat", request_model="gpt-4o"),
        started_at=0.0,
        ended_at=1.0,
        started_unix=ts,
        usage=TokenUsage(input=tokens - tokens // 5, output=tokens // 5),
        cost_usd=cost,
        attributes={k.replace("__", "."): v for k, v in attributes.items()},
    )

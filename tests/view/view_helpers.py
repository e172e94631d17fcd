"""Builders for view tests: a settable clock and records made directly from `tokenrate.records` types."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tokenrate.records import CallInfo, CallRecord, RateLimits, RateLimitWindow, RetryRecord, TokenUsage
from tokenrate.view import View

WALL0 = 1_700_000_000.0
"""Wall-clock time at monotonic 0 in tests."""

INFO = CallInfo(provider="openai", operation="chat", request_model="gpt-4o-mini")


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def wall(self) -> float:
        return WALL0 + self.t


def make_view(clock: Clock, **kwargs: Any) -> View:
    kwargs.setdefault("budget_provider", None)
    return View(monotonic=clock, wall=clock.wall, **kwargs)


def info(provider: str = "openai", model: str | None = "gpt-4o-mini") -> CallInfo:
    return CallInfo(provider=provider, operation="chat", request_model=model)


def start(view: View, at: float, call_info: CallInfo = INFO) -> Any:
    """What the pipeline does when a call enters the SDK (the view reads only ``info`` and ``started_at``)."""
    return view.call_started(SimpleNamespace(info=call_info, started_at=at))


def retry(
    call_info: CallInfo = INFO,
    *,
    at: float,
    status: int | None = 429,
    reason: str = "throttled",
    wait: float | None = 1.0,
    attempt: int = 1,
    limits: RateLimits | None = None,
) -> RetryRecord:
    return RetryRecord(
        info=call_info,
        attempt=attempt,
        status_code=status,
        reason=reason,
        wait_s=wait,
        at=at,
        rate_limits=limits,
    )


def record(
    call_info: CallInfo = INFO,
    *,
    start: float = 0.0,
    end: float = 0.0,
    usage: TokenUsage | None = None,
    inp: int | None = None,
    out: int | None = None,
    response_model: str | None = None,
    retries: tuple[RetryRecord, ...] = (),
    limits: RateLimits | None = None,
    status: int | None = 200,
    error: str | None = None,
    cost: float | None = None,
    attributes: dict[str, str] | None = None,
) -> CallRecord:
    return CallRecord(
        info=call_info,
        started_at=start,
        ended_at=end,
        started_unix=WALL0 + start,
        usage=usage if usage is not None else TokenUsage(input=inp, output=out),
        response_model=response_model,
        retries=retries,
        rate_limits=limits,
        status_code=status,
        error_type=error,
        outcome="error" if error else "ok",
        cost_usd=cost,
        attributes=attributes or {},
    )


def call(view: View, *, start_at: float, end: float, call_info: CallInfo = INFO, **kwargs: Any) -> CallRecord:
    """A whole call: started, (retries reported live), ended."""
    token = start(view, start_at, call_info)
    for r in kwargs.get("retries", ()):
        view.retry(token, r)
    rec = record(call_info, start=start_at, end=end, **kwargs)
    view.call_ended(token, rec)
    return rec


def limits(kind: str = "tokens", limit: float = 1000, remaining: float = 250, reset: float | None = 30.0) -> RateLimits:
    return RateLimits(windows=(RateLimitWindow(kind=kind, limit=limit, remaining=remaining, reset_s=reset),))

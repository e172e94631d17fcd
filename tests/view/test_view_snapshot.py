"""Snapshots are immutable and survive dict/JSON round trips exactly."""

from __future__ import annotations

import dataclasses
import json

import pytest
from view_helpers import Clock, call, info, limits, make_view, retry, start

from tokenrate.records import BudgetLine, TokenUsage
from tokenrate.view import Snapshot


def full_snapshot() -> Snapshot:
    clock = Clock()
    budgets = (
        BudgetLine("daily_usd", "day", "USD", 0.3, 10.0, "ok"),
        BudgetLine("m", "month", "tokens", 7, 9, "alert"),
    )
    view = make_view(clock, budget_provider=lambda: budgets)
    call(view, start_at=0.1, end=1.7, usage=TokenUsage(120, 33, cache_read=11, reasoning=3), cost=0.1 + 0.2)
    call(
        view,
        start_at=2.0,
        end=5.3,
        call_info=info("anthropic", "claude-sonnet-4"),
        retries=(retry(info("anthropic", "claude-sonnet-4"), at=2.5, wait=1.3, limits=limits("input_tokens")),),
        status=529,
        error="OverloadedError",
    )
    call(view, start_at=6, end=7, call_info=info(model=None), inp=5, out=None, limits=limits(reset=None))
    start(view, 8.0)  # one still in flight
    clock.t = 9.25
    return view.snapshot()


def test_dict_round_trip_is_exact():
    snap = full_snapshot()
    for populated in (
        snap.models,
        snap.rate_limits,
        snap.budgets,
        snap.errors_by_type,
        snap.throttle.retries_by_reason,
    ):
        assert populated
    assert Snapshot.from_dict(snap.to_dict()) == snap


def test_json_round_trip_is_exact():
    snap = full_snapshot()
    text = snap.to_json()
    again = Snapshot.from_dict(json.loads(text))
    assert again == snap
    assert again.to_json() == text
    assert Snapshot.from_json(text) == snap


def test_zero_snapshot_round_trips():
    snap = make_view(Clock()).snapshot()
    assert Snapshot.from_dict(json.loads(snap.to_json())) == snap


def test_snapshot_is_immutable():
    snap = full_snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.requests = 7  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.rates.tpm = 7  # type: ignore[misc]
    assert isinstance(snap.models, tuple)
    assert isinstance(snap.errors_by_type, tuple)


def test_from_dict_tolerates_missing_and_unknown_fields():
    snap = Snapshot.from_dict({"requests": 3, "tokens": {"input": 9}, "future_field": [1, 2], "rates": "bad"})
    assert (snap.requests, snap.tokens.input, snap.tokens.output, snap.rates.tpm) == (3, 9, None, 0)
    assert snap.models == ()

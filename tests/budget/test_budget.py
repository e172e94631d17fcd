"""Budgets: thresholds once per period, day/month roll-over, time zones, start-up from the ledger, enforcement."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from budget_helpers import Clock, call

import tokenrate.budget as budget_mod
from tokenrate import _safety
from tokenrate.budget import (
    Budget,
    BudgetSpec,
    budget_from_env,
    budget_lines,
    budget_utilization,
    period_bounds,
    set_budget,
    state_for,
    thresholds_from_env,
)
from tokenrate.errors import BudgetExceededError, CallRejected
from tokenrate.ledger import Ledger
from tokenrate.pipeline import Pipeline, add_local_sink, remove_local_sink
from tokenrate.recording import ActiveCall
from tokenrate.records import CallInfo

UTC = ZoneInfo("UTC")
NOON = datetime(2026, 3, 14, 12, 0, tzinfo=timezone.utc).timestamp()
HOUR = 3600.0
DAY = 86_400.0


def budget_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tokenrate.budget"]


@pytest.fixture(autouse=True)
def _budget_logs(caplog):
    caplog.set_level(logging.WARNING, logger="tokenrate")


def test_each_threshold_fires_exactly_once_per_day_and_again_after_the_day_rolls_over(caplog):
    clock = Clock(NOON)
    budget = Budget([BudgetSpec("day", "USD", 1.0)], tz=UTC, clock=clock)

    for i in range(15):  # $0.10 each: 75 % at the 8th, 90 % at the 9th, 100 % at the 10th
        budget.add(call(NOON + i))
    day1 = budget_warnings(caplog)
    assert len(day1) == 3
    assert "daily USD budget 75% used" in day1[0]
    assert "$0.8000 of $1.0000" in day1[0]
    assert "2026-03-14" in day1[0]
    assert "daily USD budget 90% used" in day1[1]
    assert "daily USD budget exceeded" in day1[2]
    assert "TOKENRATE_BUDGET_ENFORCE" in day1[2]
    (line,) = budget.lines()
    assert line.spent == pytest.approx(1.5)
    assert line.state == "exceeded"

    # Midnight UTC: a new day, a new period.
    clock.t = NOON + 12 * HOUR
    (line,) = budget.lines()
    assert line.spent == 0
    assert line.state == "ok"
    caplog.clear()
    for i in range(12):
        budget.add(call(clock.t + i))
    day2 = budget_warnings(caplog)
    assert len(day2) == 3
    assert all("2026-03-15" in message for message in day2)


def test_monthly_budget_keeps_counting_across_days_and_resets_with_the_month(caplog):
    clock = Clock(datetime(2026, 3, 30, 12, tzinfo=timezone.utc).timestamp())
    budget = Budget([BudgetSpec("month", "tokens", 1_000)], tz=UTC, clock=clock)

    budget.add(call(clock.t, tokens=400))
    clock.t += DAY  # March 31
    budget.add(call(clock.t, tokens=400))
    assert budget.lines()[0].spent == 800
    assert len(budget_warnings(caplog)) == 1  # 75 %
    clock.t += DAY  # April 1
    assert budget.lines()[0].spent == 0
    budget.add(call(clock.t, tokens=950))  # 0 -> 95 % at once: one line, for 90 %
    messages = budget_warnings(caplog)
    assert len(messages) == 2
    assert "monthly tokens budget 75% used" in messages[0]
    assert "2026-03" in messages[0]
    assert "monthly tokens budget 90% used" in messages[1]
    assert "950 tokens of 1,000 tokens" in messages[1]
    assert "2026-04" in messages[1]


def test_a_jump_over_several_thresholds_is_one_line_naming_the_highest(caplog):
    budget = Budget([BudgetSpec("day", "USD", 1.0)], tz=UTC, clock=Clock(NOON))
    budget.add(call(NOON, cost=0.5))
    budget.add(call(NOON, cost=0.7))  # 50 % -> 120 %
    budget.add(call(NOON, cost=0.1))
    messages = budget_warnings(caplog)
    assert len(messages) == 1
    assert "exceeded" in messages[0]


def test_a_call_that_started_in_a_past_period_does_not_count_in_the_new_one():
    clock = Clock(NOON)
    budget = Budget([BudgetSpec("day", "USD", 1.0)], tz=UTC, clock=clock)
    budget.add(call(NOON + 12 * HOUR + 5, cost=0.2))  # tomorrow's first call finished
    budget.add(call(NOON + 12 * HOUR - 5, cost=0.3))  # a call that started before midnight ends now
    clock.t = NOON + 12 * HOUR + 10
    assert budget.lines()[0].spent == pytest.approx(0.2)


def test_states_follow_the_thresholds():
    default = (75.0, 90.0, 100.0)
    assert [state_for(p, default) for p in (0, 74.9, 75, 89.9, 90, 99.99, 100, 250)] == [
        "ok",
        "ok",
        "warning",
        "warning",
        "alert",
        "alert",
        "exceeded",
        "exceeded",
    ]
    assert [state_for(p, (50.0, 100.0)) for p in (49, 50, 99, 100)] == ["ok", "warning", "warning", "exceeded"]
    assert [state_for(p, (50.0, 80.0, 95.0, 100.0)) for p in (60, 85, 96)] == ["warning", "warning", "alert"]
    budget = Budget([BudgetSpec("day", "USD", 1.0)], thresholds=(80,), tz=UTC, clock=Clock(NOON))
    assert budget.thresholds == (80.0, 100.0)  # crossing the limit always gets its line


def test_float_sums_reach_the_limit_exactly(caplog):
    budget = Budget([BudgetSpec("day", "USD", 1.0)], tz=UTC, clock=Clock(NOON))
    for _ in range(10):
        budget.add(call(NOON, cost=0.1))  # 0.1 * 10 == 0.9999999999999999 in floats
    assert budget.lines()[0].state == "exceeded"
    assert "exceeded" in budget_warnings(caplog)[-1]


def test_days_are_calendar_days_in_the_budget_time_zone():
    new_york = ZoneInfo("America/New_York")
    at = datetime(2026, 3, 14, 3, 0, tzinfo=timezone.utc).timestamp()  # 23:00 on the 13th in New York
    key, start, end = period_bounds(at, "day", new_york)
    assert key == "2026-03-13"
    assert datetime.fromtimestamp(start, new_york).hour == 0
    assert end - start == DAY
    # DST: 8 March 2026 has 23 hours in New York, 1 November 2026 has 25.
    spring = datetime(2026, 3, 8, 12, tzinfo=new_york).timestamp()
    autumn = datetime(2026, 11, 1, 12, tzinfo=new_york).timestamp()
    assert period_bounds(spring, "day", new_york)[2] - period_bounds(spring, "day", new_york)[1] == 23 * HOUR
    assert period_bounds(autumn, "day", new_york)[2] - period_bounds(autumn, "day", new_york)[1] == 25 * HOUR
    key, start, end = period_bounds(at, "month", new_york)
    assert key == "2026-03"
    assert datetime.fromtimestamp(end, new_york).day == 1
    assert datetime.fromtimestamp(end, new_york).month == 4
    assert period_bounds(datetime(2026, 12, 31, tzinfo=UTC).timestamp(), "month", UTC)[0] == "2026-12"

    budget = Budget([BudgetSpec("day", "USD", 1.0)], tz=new_york, clock=Clock(at))
    budget.add(call(at - 3600, cost=0.25))  # 22:00 on the 13th in New York (02:00 on the 14th, UTC)
    budget.add(call(at + 2 * 3600, cost=0.5))  # 01:00 on the 14th in New York: a new day there
    assert budget.lines()[0].spent == pytest.approx(0.5)  # in UTC both would be the 14th: 0.75
    assert budget.tz_name == "America/New_York"


def test_start_up_from_the_ledger_counts_this_period_only(tmp_path, caplog):
    path = tmp_path / "ledger.sqlite3"
    led = Ledger(path, register_atexit=False)
    for ts, cost in ((NOON - DAY, 5.0), (NOON - HOUR, 0.30), (NOON - 2 * HOUR, 0.50), (NOON - 20 * DAY, 9.0)):
        led.call_ended(None, call(ts, cost=cost, tokens=1_000))
    assert led.flush()
    led.close()

    clock = Clock(NOON)
    specs = [BudgetSpec("day", "USD", 1.0), BudgetSpec("month", "USD", 20.0), BudgetSpec("day", "tokens", 10_000)]
    budget = Budget(specs, tz=UTC, clock=clock)
    budget.load_from_ledger(path)

    lines = {line.name: line for line in budget.lines()}
    assert lines["daily_usd"].spent == pytest.approx(0.80)
    assert lines["monthly_usd"].spent == pytest.approx(5.80)  # 20 days ago was February
    assert lines["daily_tokens"].spent == 2_000
    messages = budget_warnings(caplog)
    assert len(messages) == 1  # daily USD is past 75 %: one line says so
    assert "counted from the ledger at start-up" in messages[0]
    budget.add(call(NOON, cost=0.05))  # 85 %: nothing new
    assert len(budget_warnings(caplog)) == 1
    budget.add(call(NOON, cost=0.05))  # 90 %: fires
    assert "90% used" in budget_warnings(caplog)[-1]


def test_no_ledger_file_yet_starts_from_zero(tmp_path):
    budget = Budget([BudgetSpec("day", "USD", 1.0)], tz=UTC, clock=Clock(NOON))
    budget.load_from_ledger(tmp_path / "missing.sqlite3")
    assert budget.lines()[0].spent == 0
    assert not (tmp_path / "missing.sqlite3").exists()  # reading never creates it


def test_unknown_costs_are_not_counted_in_usd_but_are_in_tokens(caplog, monkeypatch):
    monkeypatch.setattr(_safety, "_reported", set())  # the warning is once per process: start this test afresh
    budget = Budget([BudgetSpec("day", "USD", 1.0), BudgetSpec("day", "tokens", 1_000)], tz=UTC, clock=Clock(NOON))
    budget.add(call(NOON, cost=None, tokens=500))
    budget.add(call(NOON, cost=None, tokens=100))
    usd, tokens = budget.lines()
    assert usd.spent == 0
    assert tokens.spent == 600
    unknown = [r for r in caplog.records if "USD budgets do not count them" in r.getMessage()]
    assert len(unknown) == 1  # once, not once per call


def rejected_pipeline(budget: Budget) -> Pipeline:
    add_local_sink(budget)
    return Pipeline(None)


def test_enforcement_refuses_calls_once_exceeded_and_not_before(caplog):
    # ActiveCall stamps records with the real time.time(), so this budget's clock starts there too.
    now = time.time()
    clock = Clock(now)
    budget = Budget([BudgetSpec("day", "USD", 1.0)], tz=UTC, clock=clock, enforce=True)
    add_local_sink(budget)
    try:
        info = CallInfo(provider="openai", operation="chat", request_model="gpt-4o")
        ActiveCall(Pipeline(None), info).finish()  # under the limit: allowed
        budget.add(call(now, cost=0.99))
        ActiveCall(Pipeline(None), info).finish()  # 99 %: still allowed
        budget.add(call(now, cost=0.02))
        with pytest.raises(BudgetExceededError) as excinfo:
            ActiveCall(Pipeline(None), info)
        assert isinstance(excinfo.value, CallRejected)
        assert excinfo.value.budget == "daily_usd"
        assert excinfo.value.limit == 1.0
        message = str(excinfo.value)
        assert "daily USD budget is exceeded" in message
        assert "was not sent" in message
        assert "TOKENRATE_BUDGET_ENFORCE" in message
        assert "refused (TOKENRATE_BUDGET_ENFORCE is on)" in budget_warnings(caplog)[-1]
        # The next day, calls are allowed again.
        clock.t += DAY
        ActiveCall(Pipeline(None), info).finish()
    finally:
        remove_local_sink(budget)


def test_without_enforcement_an_exceeded_budget_refuses_nothing():
    budget = Budget([BudgetSpec("day", "USD", 1.0)], tz=UTC, clock=Clock(NOON))
    add_local_sink(budget)
    try:
        budget.add(call(NOON, cost=5.0))
        assert budget.lines()[0].state == "exceeded"
        ActiveCall(Pipeline(None), CallInfo(provider="openai", operation="chat")).finish()
    finally:
        remove_local_sink(budget)


def test_module_level_lines_and_utilization():
    budget = Budget([BudgetSpec("day", "USD", 2.0), BudgetSpec("month", "tokens", 1_000)], tz=UTC, clock=Clock(NOON))
    set_budget(budget, register=False)
    try:
        budget.add(call(NOON, cost=0.5, tokens=250))
        assert [(b.name, b.spent, b.state) for b in budget_lines()] == [
            ("daily_usd", 0.5, "ok"),
            ("monthly_tokens", 250.0, "ok"),
        ]
        assert budget_utilization() == [
            ({"tokenrate.budget.period": "day", "tokenrate.budget.unit": "USD"}, 0.25),
            ({"tokenrate.budget.period": "month", "tokenrate.budget.unit": "tokens"}, 0.25),
        ]
    finally:
        set_budget(None)
    assert budget_lines() == []
    assert budget_utilization() == []


def test_environment(monkeypatch, caplog):
    for name in [*budget_mod.ENV_LIMITS, "TOKENRATE_BUDGET_THRESHOLDS", "TOKENRATE_BUDGET_TZ"]:
        monkeypatch.delenv(name, raising=False)
    assert budget_from_env() is None
    monkeypatch.setenv("TOKENRATE_BUDGET_DAILY_USD", "5")
    monkeypatch.setenv("TOKENRATE_BUDGET_MONTHLY_TOKENS", "2e6")
    monkeypatch.setenv("TOKENRATE_BUDGET_MONTHLY_USD", "-3")
    monkeypatch.setenv("TOKENRATE_BUDGET_THRESHOLDS", "50, 80%")
    monkeypatch.setenv("TOKENRATE_BUDGET_TZ", "Europe/Paris")
    monkeypatch.setenv("TOKENRATE_BUDGET_ENFORCE", "true")
    budget = budget_from_env()
    assert budget is not None
    assert [(s.name, s.limit) for s in budget.specs] == [("daily_usd", 5.0), ("monthly_tokens", 2e6)]
    assert budget.thresholds == (50.0, 80.0, 100.0)
    assert budget.tz_name == "Europe/Paris"
    assert budget.enforce is True
    assert any("TOKENRATE_BUDGET_MONTHLY_USD" in r.getMessage() for r in caplog.records)

    monkeypatch.setenv("TOKENRATE_BUDGET_THRESHOLDS", "lots")
    assert thresholds_from_env() == (75.0, 90.0, 100.0)
    monkeypatch.setenv("TOKENRATE_BUDGET_TZ", "Mars/Olympus_Mons")
    assert budget_from_env().tz is None
    assert any("Mars/Olympus_Mons" in r.getMessage() for r in caplog.records)

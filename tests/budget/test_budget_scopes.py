"""Budgets per scope from the budgets file: per user, per feature, rolling windows, enforcement, the gauge."""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from budget_helpers import Clock
from budget_helpers import call as helpers_call

import tokenrate
from tokenrate import attribution
from tokenrate.budget import Budget, BudgetSpec, Scope, budget_from_env, parse_budgets, parse_period
from tokenrate.budget.config import BudgetFileError
from tokenrate.errors import BudgetExceededError
from tokenrate.pipeline import Pipeline, add_local_sink, remove_local_sink
from tokenrate.recording import ActiveCall
from tokenrate.records import CallInfo, CallRecord

UTC = ZoneInfo("UTC")
NOON = datetime(2026, 3, 14, 12, 0, tzinfo=timezone.utc).timestamp()

ISSUE_EXAMPLE = """
[[budget]]            # every user: $5 a day, hard stop
scope = { "user.id" = "*" }
period = "day"
limit_usd = 5
enforce = true

[[budget]]            # the search feature: 2M tokens a month, warn only
scope = { "tokenrate.feature" = "search" }
period = "month"
limit_tokens = 2_000_000
"""


def call(ts: float, **kwargs) -> CallRecord:
    kwargs.setdefault("cost", 1.0)
    return helpers_call(ts, **kwargs)


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "tokenrate.budget"]


@pytest.fixture(autouse=True)
def _logs(caplog):
    caplog.set_level(logging.WARNING, logger="tokenrate.budget")


def test_the_issue_example_parses():
    per_user, search = parse_budgets(ISSUE_EXAMPLE)
    assert (per_user.scope.each, per_user.period, per_user.unit, per_user.limit, per_user.enforce) == (
        ("user.id",),
        "day",
        "USD",
        5.0,
        True,
    )
    assert search.scope.fixed == (("tokenrate.feature", frozenset({"search"})),)
    assert (search.period, search.unit, search.limit, search.enforce) == ("month", "tokens", 2e6, None)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[[budget]]\nperiod = "fortnight"\nlimit_usd = 1\n', 2, "fortnight"),
        ('[[budget]]\nperiod = "day"\nlimit_usd = 1\n\n[[budget]]\nperiod = "day"\nlimt_usd = 2\n', 7, "limt_usd"),
        ('[[budget]]\nperiod = "day"\nlimit_usd = -1\n', 3, "limit_usd"),
        ('[[budget]]\nperiod = "day"\nscope = { "user.id" = 3 }\nlimit_usd = 1\n', 3, "scope"),
        ('[[budget]]\nperiod = "day"\n', 1, "limit_usd and/or limit_tokens"),
        ('[[budget]]\nperiod = "day"\nlimit_usd = 1\nenforce = "yes"\n', 4, "enforce"),
        ('[[budget]]\nperiod = "day"\nlimit_usd = = 1\n', 3, "not valid TOML"),
    ],
)
def test_a_malformed_file_names_the_line(text, line, words):
    with pytest.raises(BudgetFileError) as excinfo:
        parse_budgets(text, source="budgets.toml")
    message = str(excinfo.value)
    assert f"line {line}" in message
    assert words in message


def test_a_malformed_file_is_one_error_budgets_off_calls_unaffected(tmp_path, monkeypatch, caplog):
    path = tmp_path / "budgets.toml"
    path.write_text('[[budget]]\nperiod = "day"\nlimit_usd = "five"\n', encoding="utf-8")
    for name in ("TOKENRATE_BUDGET_DAILY_USD", "TOKENRATE_BUDGET_MONTHLY_USD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TOKENRATE_BUDGETS", str(path))
    with caplog.at_level(logging.WARNING, logger="tokenrate"):
        assert budget_from_env() is None
        assert budget_from_env() is None
    errors = [r.getMessage() for r in caplog.records if "budgets.toml" in r.getMessage()]
    assert len(errors) == 1
    assert "line 3" in errors[0]
    assert "Its budgets are off" in errors[0]


def test_periods():
    assert parse_period("1h").rolling_s == 3600
    assert parse_period("7d").rolling_s == 7 * 86_400
    week = parse_period("week").bucket(NOON, UTC)  # Saturday 14 March 2026: ISO week 11, from Monday the 9th
    assert week.key == "2026-W11"
    assert datetime.fromtimestamp(week.start, UTC).day == 9
    for bad in ("fortnight", "10s", "1y", "", 5):
        with pytest.raises(ValueError, match="period"):
            parse_period(bad)


def test_a_budget_per_user_counts_each_user_apart_and_warns_once_per_user_and_threshold(caplog):
    spec = BudgetSpec("day", "USD", 4.0, name="per-user", scope=Scope.parse({"user.id": "*"}))
    budget = Budget([spec], tz=UTC, clock=Clock(NOON))
    for _ in range(3):
        budget.add(call(NOON, user__id="alice"))  # 25, 50, 75 %
    budget.add(call(NOON, user__id="bob"))
    budget.add(call(NOON))  # no user: not in this budget
    budget.add(call(NOON, user__id="alice"))  # 100 %
    budget.add(call(NOON, user__id="alice"))  # 125 %: nothing new
    lines = {line.scope: (line.spent, line.state) for line in budget.lines()}
    assert lines == {"user.id=alice": (5.0, "exceeded"), "user.id=bob": (1.0, "ok")}
    messages = warnings(caplog)
    assert len(messages) == 2  # alice 75 %, alice exceeded; never bob, never twice
    assert all("per-user" in m and "user.id=alice" in m for m in messages)
    assert "75% used" in messages[0]
    assert "exceeded" in messages[1]


def test_a_fixed_scope_counts_only_its_calls_and_shows_from_zero():
    (search,) = parse_budgets(
        '[[budget]]\nname = "search"\nscope = { "tokenrate.feature" = "search", provider = "openai" }\n'
        'period = "month"\nlimit_tokens = 1000\n'
    )
    budget = Budget([search], tz=UTC, clock=Clock(NOON))
    assert [(line.name, line.spent, line.scope) for line in budget.lines()] == [
        ("search", 0.0, "tokenrate.feature=search, gen_ai.provider.name=openai")
    ]
    budget.add(call(NOON, tokens=300, tokenrate__feature="search"))
    budget.add(call(NOON, tokens=500, tokenrate__feature="chat"))
    assert budget.lines()[0].spent == 300


def test_a_rolling_window_forgets_old_spend():
    clock = Clock(NOON)
    spec = BudgetSpec("1h", "USD", 10.0)
    budget = Budget([spec], tz=UTC, clock=clock)
    budget.add(call(NOON, cost=4.0))
    clock.t += 30 * 60
    budget.add(call(clock.t, cost=3.0))
    assert budget.lines()[0].spent == 7.0
    clock.t = NOON + 61 * 60  # the first call's 5-minute bucket left the last hour
    assert budget.lines()[0].spent == 3.0
    clock.t = NOON + 2 * 3600
    assert budget.lines()[0].spent == 0.0


def test_enforcement_stops_one_user_not_the_others():
    spec = BudgetSpec("day", "USD", 2.0, name="per-user", scope=Scope.parse({"user.id": "*"}), enforce=True)
    budget = Budget([spec], tz=UTC)
    add_local_sink(budget)
    info = CallInfo(provider="openai", operation="chat", request_model="gpt-4o")
    try:
        budget.add(call(time.time(), cost=2.5, user__id="alice"))
        with tokenrate.attributes(user_id="alice"), pytest.raises(BudgetExceededError) as excinfo:
            ActiveCall(Pipeline(None), info)
        error = excinfo.value
        assert (error.budget, error.scope, error.limit) == ("per-user", {"user.id": "alice"}, 2.0)
        assert "per-user" in str(error)
        assert "user.id=alice" in str(error)
        assert "enforce = true in the budgets file" in str(error)
        with tokenrate.attributes(user_id="bob"):
            ActiveCall(Pipeline(None), info).finish()  # bob is under his budget
        ActiveCall(Pipeline(None), info).finish()  # a call for no user is in no per-user budget
    finally:
        remove_local_sink(budget)


def test_scopes_per_budget_are_bounded():
    spec = BudgetSpec("day", "tokens", 1e9, scope=Scope.parse({"user.id": "*"}))
    budget = Budget([spec], tz=UTC, clock=Clock(NOON), max_scopes=3)
    for i in range(10):
        budget.add(call(NOON, tokens=10, user__id=f"u{i}"))
    lines = {line.scope: line.spent for line in budget.lines()}
    assert len(lines) == 4
    assert lines["user.id=_other"] == 70
    assert sum(lines.values()) == 100


def test_utilization_carries_only_allow_listed_scope_attributes():
    spec = BudgetSpec("day", "USD", 10.0, name="per-user", scope=Scope.parse({"user.id": "*"}))
    budget = Budget([spec], tz=UTC, clock=Clock(NOON))
    budget.add(call(NOON, cost=5.0, user__id="alice"))
    budget.add(call(NOON, cost=2.0, user__id="bob"))
    attribution.configure()
    try:
        # not allow-listed: one point, the most used user's utilization
        assert budget.utilization() == [
            (
                {"tokenrate.budget.period": "day", "tokenrate.budget.unit": "USD", "tokenrate.budget.name": "per-user"},
                0.5,
            )
        ]
        attribution.configure(metric_attributes=("user.id",), metric_attribute_limit=1)
        by_user = {attrs["user.id"]: value for attrs, value in budget.utilization()}
        assert by_user == {"alice": 0.5, "_other": 0.2}  # the same cardinality guard as the call metrics
    finally:
        attribution.configure_from_env(force=True)


def test_budget_lines_keep_their_scope_through_a_snapshot():
    spec = BudgetSpec("day", "USD", 4.0, name="per-user", scope=Scope.parse({"user.id": "*"}))
    budget = Budget([spec], tz=UTC, clock=Clock(NOON))
    budget.add(call(NOON, user__id="alice"))
    (line,) = budget.lines()
    from tokenrate.view import Snapshot, format_status

    snap = Snapshot(budgets=(line,))
    assert Snapshot.from_json(snap.to_json()).budgets == (line,)
    assert "per-user[user.id=alice] 25%" in format_status(snap)
    assert dataclasses.replace(line, scope="").scope == ""

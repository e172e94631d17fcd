"""Attributes in the ledger (schema 2), ledgers written by schema 1, and ``report --by <attribute>``."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from ledger_helpers import DAY, T0, make_record, rows

from tokenrate.cli.report import build_report, render_csv, render_table
from tokenrate.ledger import SCHEMA_VERSION, Ledger, summarize
from tokenrate.ledger.query import OTHER_KEY, parse_grouping

V1_LEDGER = Path(__file__).parent / "data" / "ledger_v1.sqlite3"
"""Written by tokenrate before attributes existed (schema version 1): 7 calls, none with attributes."""


def attributed(record, **attributes: str):
    return dataclasses.replace(record, attributes=attributes)


USERS = {"alice": 0.05, "bob": 0.02, "carol": 0.01, "dave": 0.001}
CALLS = [
    attributed(make_record(ts=T0 + day * DAY + i, input=100, output=10, cost=cost), **{"user.id": user})
    for day in range(3)
    for i, (user, cost) in enumerate(USERS.items())
] + [
    attributed(make_record(ts=T0 + 5, cost=0.5), **{"user.id": "alice", "tokenrate.feature": "search"}),
    make_record(ts=T0 + 6, cost=0.25),  # no attributes
]


@pytest.fixture(scope="module")
def ledger_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("attributes") / "ledger.sqlite3"
    led = Ledger(path, register_atexit=False)
    for record in CALLS:
        led.append(record)
    assert led.flush()
    led.close()
    return path


def expected_cost(by_user_day: bool = False) -> dict[tuple[str, ...], float]:
    sums: dict[tuple[str, ...], float] = defaultdict(float)
    for record in CALLS:
        user = record.attributes.get("user.id", "(none)")
        day = "2026-03-0" + str(1 + int((record.started_unix - T0) // DAY))
        sums[(user, day) if by_user_day else (user,)] += record.cost_usd
    return sums


def test_attributes_are_a_json_object_and_null_without_any(ledger_path):
    stored = rows(ledger_path, "SELECT attributes FROM calls ORDER BY ts")
    values = [None if r["attributes"] is None else json.loads(r["attributes"]) for r in stored]
    assert {"user.id": "alice", "tokenrate.feature": "search"} in values
    assert values.count(None) == 1
    assert sum(1 for v in values if v and v.get("user.id") == "bob") == 3


def test_report_by_an_attribute_key(ledger_path):
    report = build_report(ledger_path, by="user.id", since=None, until=None, tz=None)
    got = {g["key"]: g["cost_usd"] for g in report["groups"]}
    assert got == pytest.approx({k[0]: v for k, v in expected_cost().items()})
    assert report["total"]["calls"] == len(CALLS)
    # one trend per user, costliest first
    assert [t["scope"] for t in report["scope_trends"]] == ["alice", "(none)", "bob", "carol", "dave"]
    alice = report["scope_trends"][0]
    assert [p["key"] for p in alice["trend"]] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert alice["cost_usd"] == pytest.approx(0.5 + 3 * 0.05)


def test_report_by_attribute_and_day_daily_totals_per_user(ledger_path):
    report = build_report(ledger_path, by="user.id,day", since=None, until=None, tz=None)
    got = {(g["user.id"], g["day"]): g["cost_usd"] for g in report["groups"]}
    assert got == pytest.approx(expected_cost(by_user_day=True))
    table = list(render_csv(report).splitlines())
    assert table[0].startswith("user.id,day,calls,")
    assert len(table) == 1 + len(got)
    text = render_table(report)
    assert "cost per day, user.id = alice" in text
    assert "cost per day, user.id = dave" in text


def test_an_attribute_grouping_is_bounded_with_an_other_row(ledger_path):
    groups, total = summarize(ledger_path, by="user.id", limit=2)
    keys = [g.key for g in groups]
    assert keys == ["alice", "bob", "(none)", OTHER_KEY]  # the two costliest users, calls without one, the rest
    assert sum(g.calls for g in groups) == total.calls
    assert sum(g.cost_usd for g in groups) == pytest.approx(total.cost_usd)


def test_where_filters_on_an_attribute(ledger_path):
    report = build_report(ledger_path, by="day", since=None, until=None, tz=None, where={"tokenrate.feature": "search"})
    assert report["total"]["calls"] == 1
    assert report["total"]["cost_usd"] == pytest.approx(0.5)


def test_groupings_are_checked():
    assert parse_grouping("user.id, day") == ("user.id", "day")
    for bad, why in (
        ("", "at least one"),
        ("day,month", "one time grouping"),
        ("user id", "attribute key"),
        ("a,a", "twice"),
        ("a,b,c,d", "at most"),
    ):
        with pytest.raises(ValueError, match=why):
            parse_grouping(bad)


def test_a_schema_1_ledger_is_read_as_it_is_and_migrated_by_a_writer(tmp_path):
    path = tmp_path / "old.sqlite3"
    shutil.copy(V1_LEDGER, path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        before = conn.execute("SELECT COUNT(*), TOTAL(cost_usd), SUM(input_tokens) FROM calls").fetchone()

    # read-only: the report works on the old schema, attribute groupings find no attributes
    groups, total = summarize(path, by="user.id")
    assert [(g.key, g.calls) for g in groups] == [("(none)", before[0])]
    assert (total.calls, total.cost_usd, total.tokens["input"]) == (before[0], pytest.approx(before[1]), before[2])
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1  # reading never migrates

    led = Ledger(path, register_atexit=False)
    led.append(attributed(make_record(ts=T0 + 3 * DAY, cost=0.125), **{"user.id": "new"}))
    assert led.flush()
    led.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    groups, total = summarize(path, by="user.id")
    assert {g.key: g.calls for g in groups} == {"(none)": before[0], "new": 1}
    assert total.cost_usd == pytest.approx(before[1] + 0.125)
    by_day, _ = summarize(path, by="day")
    assert sum(g.calls for g in by_day) == before[0] + 1


def test_report_shows_limit_status_per_budget_scope(ledger_path, tmp_path, monkeypatch):
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(
        '[[budget]]\nname = "per-user"\nscope = { "user.id" = "*" }\nperiod = "day"\nlimit_usd = 0.04\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("TOKENRATE_BUDGETS", str(budgets))
    day3 = T0 + 2 * DAY + 3600
    report = build_report(ledger_path, by="user.id", since=None, until=None, tz=ZoneInfo("UTC"), now=day3)
    lines = {b["scope"]: b for b in report["budgets"] if b["name"] == "per-user"}
    assert set(lines) == {f"user.id={user}" for user in USERS}
    assert lines["user.id=alice"]["state"] == "exceeded"
    assert lines["user.id=alice"]["spent"] == pytest.approx(USERS["alice"])  # day 3 only
    assert lines["user.id=bob"]["utilization"] == pytest.approx(USERS["bob"] / 0.04)
    assert lines["user.id=alice"]["period_key"] == "2026-03-03"
    assert "per-user        [user.id=alice]" in render_table(report)

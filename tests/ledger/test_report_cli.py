"""``tokenrate report`` as a user runs it (``python -m tokenrate report``), on a ledger written by the writer."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from ledger_helpers import DAY, T0, make_record

from tokenrate.ledger import Ledger
from tokenrate.ledger.schema import connect, migrate

SRC = str(Path(__file__).resolve().parents[2] / "src")

RECORDS = [
    make_record(
        ts=T0,
        provider="openai",
        model="gpt-4o",
        input=1_000,
        output=200,
        cache_read=300,
        cost=0.01,
        throttled_waits=(1.0, 2.0),
    ),
    make_record(
        ts=T0 + 60, provider="anthropic", model="claude-sonnet-4", input=500, output=50, cache_write=100, cost=0.02
    ),
    make_record(
        ts=T0 + DAY,
        provider="openai",
        model="text-embedding-3-small",
        operation="embeddings",
        input=800,
        output=None,
        cost=0.0001,
    ),
    make_record(ts=T0 + DAY + 5, provider="openai", model="mystery-model", input=10, output=5, cost=None),
    make_record(
        ts=T0 + 2 * DAY,
        provider="gcp.gemini",
        model="gemini-2.5-flash",
        operation="generate_content",
        input=2_000,
        output=300,
        reasoning=100,
        cost=0.005,
    ),
    make_record(
        ts=T0 + 2 * DAY + 1,
        provider="gcp.gemini",
        model="gemini-2.5-flash",
        operation="generate_content",
        input=None,
        output=None,
        cost=0.0,
        error_type="RateLimitError",
        status_code=429,
        throttled_waits=(0.5,),
    ),
    make_record(
        ts=T0 + 9 * DAY,
        provider="openai",
        model="gpt-4o",
        response_model="gpt-4o-2024-08-06",
        input=4_000,
        output=1_000,
        cost=0.02,
    ),
]


@pytest.fixture(scope="module")
def ledger_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "ledger.sqlite3"
    led = Ledger(path, register_atexit=False)
    for record in RECORDS:
        led.call_ended(None, record)
    assert led.flush()
    led.close()
    return path


def report(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENRATE_")}
    full_env.update({"PYTHONPATH": SRC, **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "tokenrate", "report", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=full_env,
    )


def key_of(record, by: str) -> str:
    moment = datetime.fromtimestamp(record.started_unix, timezone.utc)
    if by == "day":
        return moment.date().isoformat()
    if by == "month":
        return f"{moment.year}-{moment.month:02d}"
    if by == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    if by == "model":
        return record.response_model or record.info.request_model
    return getattr(record.info, by)


def expected_groups(records, by: str) -> dict[str, dict[str, float]]:
    groups: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in records:
        g = groups[key_of(r, by)]
        g["calls"] += 1
        g["errors"] += r.error_type is not None
        g["input_tokens"] += r.usage.input or 0
        g["output_tokens"] += r.usage.output or 0
        g["cache_read_tokens"] += r.usage.cache_read or 0
        g["cost_usd"] += r.cost_usd or 0.0
        g["unknown_cost_calls"] += r.cost_usd is None
        g["throttle_events"] += r.throttle_events
        g["throttle_wait_s"] += r.throttle_wait_s
        g["retries"] += len(r.retries)
    return groups


CHECKED = (
    "calls",
    "errors",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cost_usd",
    "unknown_cost_calls",
    "throttle_events",
    "throttle_wait_s",
    "retries",
)


@pytest.mark.parametrize("by", ["day", "week", "month", "provider", "model", "operation"])
def test_json_groups_and_totals_match_the_calls(ledger_path, by):
    result = report("--ledger", str(ledger_path), "--tz", "UTC", "--by", by, "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)

    expected = expected_groups(RECORDS, by)
    got = {g["key"]: g for g in data["groups"]}
    assert set(got) == set(expected)
    for key, sums in expected.items():
        for name in CHECKED:
            assert (got[key][name] or 0) == pytest.approx(sums[name]), (key, name)
    total = data["total"]
    assert total["calls"] == len(RECORDS)
    assert total["cost_usd"] == pytest.approx(sum(r.cost_usd or 0 for r in RECORDS))
    assert total["unknown_cost_calls"] == 1
    assert total["throttle_wait_s"] == pytest.approx(3.5)
    assert total["reasoning_tokens"] == 100
    assert total["tool_use_tokens"] is None  # nobody reported it: unknown, not 0
    assert data["by"] == by
    assert data["timezone"] == "UTC"


def test_csv_rows_sum_to_the_calls(ledger_path):
    result = report("--ledger", str(ledger_path), "--tz", "UTC", "--by", "provider", "--format", "csv")
    assert result.returncode == 0, result.stderr
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert table[0].keys() >= {"provider", "calls", "cost_usd", "throttle_wait_s", "input_tokens"}
    expected = expected_groups(RECORDS, "provider")
    assert {row["provider"] for row in table} == set(expected)
    for row in table:
        sums = expected[row["provider"]]
        assert int(row["calls"]) == sums["calls"]
        assert float(row["cost_usd"]) == pytest.approx(sums["cost_usd"])
        assert float(row["throttle_wait_s"]) == pytest.approx(sums["throttle_wait_s"])
        assert int(row["input_tokens"] or 0) == sums["input_tokens"]
    assert sum(int(row["calls"]) for row in table) == len(RECORDS)


def test_table_shows_groups_totals_and_a_trend_chart(ledger_path):
    result = report("--ledger", str(ledger_path), "--tz", "UTC")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for day in ("2026-03-01", "2026-03-02", "2026-03-03", "2026-03-10"):
        assert day in out
    assert "total" in out
    assert "cost per day" in out
    assert "█" in out
    assert "unknown cost" in out  # the mystery model
    no_chart = report("--ledger", str(ledger_path), "--tz", "UTC", "--no-chart")
    assert "cost per day" not in no_chart.stdout


def test_since_and_until_are_inclusive_days(ledger_path):
    result = report(
        "--ledger",
        str(ledger_path),
        "--tz",
        "UTC",
        "--since",
        "2026-03-02",
        "--until",
        "2026-03-03",
        "--format",
        "json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    inside = [r for r in RECORDS if T0 + DAY - 36_000 <= r.started_unix < T0 + 3 * DAY - 36_000]
    assert [g["key"] for g in data["groups"]] == ["2026-03-02", "2026-03-03"]
    assert data["total"]["calls"] == len(inside) == 4
    assert data["total"]["cost_usd"] == pytest.approx(sum(r.cost_usd or 0 for r in inside))


def test_days_are_calendar_days_in_the_chosen_time_zone(ledger_path):
    # 10:00 UTC is already the next day at UTC+14 (Pacific/Kiritimati): every call moves one day later.
    utc = json.loads(report("--ledger", str(ledger_path), "--tz", "UTC", "--format", "json").stdout)
    line_islands = json.loads(
        report("--ledger", str(ledger_path), "--tz", "Pacific/Kiritimati", "--format", "json").stdout
    )
    zone = ZoneInfo("Pacific/Kiritimati")
    expected = sorted({datetime.fromtimestamp(r.started_unix, zone).date().isoformat() for r in RECORDS})
    assert [g["key"] for g in line_islands["groups"]] == expected
    assert expected[0] == "2026-03-02"
    assert utc["groups"][0]["key"] == "2026-03-01"
    assert [g["calls"] for g in line_islands["groups"]] == [g["calls"] for g in utc["groups"]]


def test_budget_status_comes_from_the_ledger(tmp_path):
    path = tmp_path / "now.sqlite3"
    led = Ledger(path, register_atexit=False)
    now = time.time()
    for cost in (0.30, 0.25, 0.25):
        led.call_ended(None, make_record(ts=now, cost=cost, input=1_000, output=0))
    assert led.flush()
    led.close()
    env = {"TOKENRATE_BUDGET_DAILY_USD": "1.0", "TOKENRATE_BUDGET_MONTHLY_TOKENS": "2000"}
    data = json.loads(report("--ledger", str(path), "--format", "json", env=env).stdout)
    budgets = {b["name"]: b for b in data["budgets"]}
    assert budgets["daily_usd"]["spent"] == pytest.approx(0.80)
    assert budgets["daily_usd"]["state"] == "warning"  # 80 %: past 75, below 90
    assert budgets["monthly_tokens"]["spent"] == 3_000
    assert budgets["monthly_tokens"]["state"] == "exceeded"
    table = report("--ledger", str(path), env=env).stdout
    assert "daily_usd" in table
    assert "exceeded" in table


def test_missing_ledger_is_a_clear_message_and_exit_1(tmp_path):
    result = report("--ledger", str(tmp_path / "nope.sqlite3"))
    assert result.returncode == 1
    assert "no ledger at" in result.stderr
    assert "TOKENRATE_LEDGER" in result.stderr
    # Without --ledger, TOKENRATE_LEDGER is where it looks.
    result = report(env={"TOKENRATE_LEDGER": str(tmp_path / "from-env.sqlite3")})
    assert result.returncode == 1
    assert str(tmp_path / "from-env.sqlite3") in result.stderr


def test_empty_ledger_is_exit_0_with_empty_output(tmp_path):
    path = tmp_path / "empty.sqlite3"
    conn = connect(path)
    migrate(conn)
    conn.close()
    table = report("--ledger", str(path))
    assert table.returncode == 0
    assert "no calls recorded" in table.stdout
    data = json.loads(report("--ledger", str(path), "--format", "json").stdout)
    assert data["groups"] == []
    assert data["total"]["calls"] == 0
    lines = report("--ledger", str(path), "--format", "csv").stdout.splitlines()
    assert lines == [lines[0]]
    assert lines[0].startswith("day,calls,")


def test_bad_arguments_exit_2(tmp_path):
    assert report("--ledger", str(tmp_path / "x"), "--since", "last tuesday").returncode == 2
    # any attribute key is a grouping (--by user.id); these are not groupings:
    for by in ("day,week", "user id", "model,model", "a,b,c,d"):
        assert report("--ledger", str(tmp_path / "x"), "--by", by).returncode == 2, by
    assert report("--ledger", str(tmp_path / "x"), "--where", "user.id").returncode == 2
    assert report("--ledger", str(tmp_path / "x"), "--tz", "Mars/Olympus").returncode == 2

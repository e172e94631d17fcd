"""Totals by call attribute in the view: ``snapshot().by("user.id")``, bounded, exact, across processes."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys

import pytest
from view_helpers import Clock, call, make_view, retry

from tokenrate.records import TokenUsage
from tokenrate.view import (
    FIGURE_COLUMNS,
    OVERFLOW_VALUE,
    LedgerStatus,
    Snapshot,
    SnapshotPublisher,
    process_rows,
    render_summary,
    set_ledger_provider,
)
from tokenrate.view.core import MAX_GROUP_KEYS, MAX_GROUP_VALUES


def test_totals_by_attribute_value_costliest_first():
    clock = Clock()
    view = make_view(clock)
    alice = {"user.id": "alice", "tokenrate.feature": "search"}
    call(view, start_at=0, end=1, usage=TokenUsage(100, 10, cache_read=40), cost=0.5, attributes=alice)
    call(
        view,
        start_at=1,
        end=3,
        inp=50,
        out=5,
        cost=0.25,
        attributes={"user.id": "bob"},
        retries=(retry(at=1.5, wait=1.0),),
    )
    call(view, start_at=2, end=3, inp=10, out=1, cost=1.0, attributes={"user.id": "bob"}, error="APIError")
    call(view, start_at=3, end=4, inp=7, out=7, cost=2.0)  # no attributes: in no group
    clock.t = 4
    snap = view.snapshot()

    users = snap.by("user.id")
    assert [(g.value, g.requests, g.errors) for g in users] == [("bob", 2, 1), ("alice", 1, 0)]
    bob, alice_row = users
    assert bob.cost_usd == 1.25
    assert (bob.tokens.input, bob.tokens.output, bob.tokens.total) == (60, 6, 66)
    assert (bob.retries, bob.attempts, bob.throttle_events, bob.throttle_wait_s) == (1, 3, 1, 1.0)
    assert (bob.tpm, bob.rpm) == (66, 2)
    assert alice_row.tokens.cache_read == 40
    assert [(g.value, g.requests) for g in snap.by("tokenrate.feature")] == [("search", 1)]
    assert snap.by("tenant.id") == ()
    assert snap.group_keys == ("tokenrate.feature", "user.id")
    assert sum(g.requests for g in users) == snap.requests - 1


def test_values_beyond_the_cap_are_summed_into_one_overflow_row_and_keys_are_capped():
    clock = Clock()
    view = make_view(clock)
    users = MAX_GROUP_VALUES + 10
    for i in range(users):
        attributes = {"user.id": f"u{i:03d}", **{f"k{j}": "v" for j in range(MAX_GROUP_KEYS + 3)}}
        call(view, start_at=i, end=i, inp=1, out=1, cost=0.001 * (i + 1), attributes=attributes)
    clock.t = users
    snap = view.snapshot()
    rows = snap.by("user.id")
    assert len(rows) == MAX_GROUP_VALUES + 1
    assert rows[-1].value == OVERFLOW_VALUE
    assert rows[-1].requests == 10
    assert sum(r.requests for r in rows) == users
    assert sum(r.cost_usd for r in rows) == pytest.approx(snap.cost_usd)
    assert len(snap.group_keys) == MAX_GROUP_KEYS


def test_groups_and_ledger_status_survive_json(monkeypatch):
    clock = Clock()
    view = make_view(clock)
    call(view, start_at=0, end=1, inp=3, out=4, cost=0.5, attributes={"user.id": "alice"})
    status = LedgerStatus(path="x.sqlite3", written=5, dropped=2, invalid_values=1, last_problem="input_tokens=...")
    set_ledger_provider(lambda: status)
    try:
        snap = view.snapshot()
    finally:
        set_ledger_provider(None)
    assert snap.ledger == status
    again = Snapshot.from_json(snap.to_json())
    assert again == snap
    assert again.by("user.id")[0].tokens.total == 7
    assert view.snapshot().ledger is None


def _snapshot_with_users() -> Snapshot:
    clock = Clock()
    view = make_view(clock)
    call(view, start_at=0, end=1, inp=1000, out=100, cost=0.5, attributes={"user.id": "alice"})
    call(view, start_at=0, end=1, inp=10, out=1, cost=0.01, attributes={"user.id": "bob"})
    clock.t = 1
    return view.snapshot()


def test_summary_adds_a_table_per_attribute_key_asked_for():
    snap = _snapshot_with_users()
    out = io.StringIO()
    render_summary(snap, out, by=("user.id", "tenant.id"))
    text = out.getvalue()
    header = next(line for line in text.splitlines() if line.strip().startswith("user.id"))
    assert "requests" in header
    alice = next(line for line in text.splitlines() if line.strip().startswith("alice"))
    assert "$0.50" in alice
    assert "1.1k" in alice
    assert text.index("alice") < text.index("bob")  # costliest first
    assert "tenant.id" not in text  # no such attribute: no empty table
    plain = io.StringIO()
    render_summary(snap, plain, by=())
    assert "alice" not in plain.getvalue()


def test_summary_reports_what_the_ledger_dropped():
    snap = dataclasses.replace(
        _snapshot_with_users(),
        ledger=LedgerStatus(path="l.sqlite3", written=98, dropped=2, invalid_values=3, last_problem="input_tokens=-7"),
    )
    out = io.StringIO()
    render_summary(snap, out, by=())
    line = next(line for line in out.getvalue().splitlines() if line.strip().startswith("ledger"))
    assert "98 calls written" in line
    assert "2 calls dropped" in line
    assert "3 values" in line
    assert "input_tokens=-7" in line
    quiet = io.StringIO()
    render_summary(dataclasses.replace(snap, ledger=LedgerStatus(written=100)), quiet, by=())
    assert "ledger" not in quiet.getvalue()


def test_table_rows_per_model_or_per_attribute_value():
    snap = _snapshot_with_users()
    by_model = process_rows(snap)
    assert [r.label for r in by_model] == ["all", "openai/gpt-4o-mini"]
    by_user = process_rows(snap, by="user.id")
    assert [(r.label, r.is_total) for r in by_user] == [
        ("all (2)", True),
        ("user.id=alice", False),
        ("user.id=bob", False),
    ]
    assert len(by_user[1].cells) == len(FIGURE_COLUMNS)
    assert by_user[1].cells[FIGURE_COLUMNS.index("cost")] == "$0.50"


def test_top_shows_a_row_per_attribute_value(tmp_path):
    snap = _snapshot_with_users()
    publisher = SnapshotPublisher(tmp_path, 1.0, lambda: snap)
    publisher.publish_once()  # this (live) process's file, as a publishing program writes it
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tokenrate", "top", "--once", "--dir", str(tmp_path), "--by", "user.id"],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "200"},
        )
    finally:
        publisher.stop()
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert any(line.split()[:1] == ["PID"] and "user.id" in line for line in lines)
    alice = next(line for line in lines if "user.id=alice" in line)
    assert "$0.50" in alice
    assert any("user.id=bob" in line for line in lines)

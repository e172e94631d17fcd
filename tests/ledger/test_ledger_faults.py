"""The ledger writer survives any single bad record: out-of-range values are stored as unknown, the rest is kept.

Before: one usage count of 2**63 raised OverflowError inside the writer thread, which died, and every later
row (healthy calls too) was lost, without being counted as dropped.
"""

from __future__ import annotations

import logging
import math

import pytest
from ledger_helpers import T0, make_record, rows

from tokenrate.ledger import Ledger
from tokenrate.ledger.rows import MAX_TOKENS, RowBuilder
from tokenrate.records import CallInfo, CallRecord, TokenUsage

BAD_USAGES = [
    {"input": 2**63, "output": 5},
    {"input": 2**64 + 7, "output": 5},
    {"input": 1e30, "output": 5},
    {"input": 10, "output": math.inf},
    {"input": 10, "output": math.nan},
    {"input": -7, "output": 5},
    {"input": MAX_TOKENS + 1, "output": 5},
]


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(tmp_path / "ledger.sqlite3", register_atexit=False)
    yield led
    led.close()


def test_6000_calls_with_a_few_impossible_counts_are_all_written(ledger, caplog):
    records = [make_record(ts=T0 + i, input=100, output=20) for i in range(6000)]
    bad_at = {i * 857 + 3: usage for i, usage in enumerate(BAD_USAGES)}
    for index, usage in bad_at.items():
        records[index] = make_record(ts=T0 + index, **usage)
    records[4000] = make_record(ts=T0 + 4000, cost=float("nan"))
    records[4001] = make_record(ts=T0 + 4001, cost=1e300)

    with caplog.at_level(logging.WARNING, logger="tokenrate"):
        for record in records:
            ledger.append(record)
        assert ledger.flush(30)

    stored = rows(ledger.path, "SELECT ts, input_tokens, output_tokens, cost_usd FROM calls ORDER BY ts")
    assert len(stored) == 6000
    stats = ledger.stats()
    assert stats["written"] == 6000
    assert stats["dropped"] == 0
    assert stats["broken"] is None
    assert stats["invalid_values"] == len(BAD_USAGES) + 2
    for index, usage in bad_at.items():
        row = stored[index]
        for name in ("input", "output"):
            value = usage[name]
            sound = isinstance(value, int) and 0 <= value <= MAX_TOKENS
            assert row[f"{name}_tokens"] == (value if sound else None), (index, name)
    assert stored[4000]["cost_usd"] is None
    assert stored[4001]["cost_usd"] is None
    healthy = [r for i, r in enumerate(stored) if i not in bad_at and i not in (4000, 4001)]
    assert {(r["input_tokens"], r["output_tokens"]) for r in healthy} == {(100, 20)}
    warnings = [r.getMessage() for r in caplog.records if "out of range" in r.getMessage()]
    assert len(warnings) == 1  # one WARNING per ledger; the rest are counted


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def test_a_record_that_cannot_become_a_row_is_dropped_and_counted_the_others_are_written(ledger):
    broken = CallRecord(
        info=CallInfo(provider=_Unprintable(), operation="chat"),  # type: ignore[arg-type]
        started_at=0.0,
        ended_at=1.0,
        started_unix=T0,
        usage=TokenUsage(input=1, output=1),
    )
    for i in range(300):
        ledger.append(broken if i == 150 else make_record(ts=T0 + i))
    assert ledger.flush(10)
    assert len(rows(ledger.path)) == 299
    stats = ledger.stats()
    assert (stats["written"], stats["dropped"], stats["dropped_invalid"]) == (299, 1, 1)
    assert "no text for you" in stats["last_problem"]


class _BuilderWithAGiant(RowBuilder):
    """Builds one row with a value SQLite cannot bind, as a bug in the checks would."""

    __slots__ = ()

    def row(self, record):
        row, problems = super().row(record)
        if record.started_unix == T0 + 7:
            row = (*row[:9], 2**70, *row[10:])
        return row, problems


def test_a_row_sqlite_refuses_is_dropped_alone(ledger):
    """Defense in depth: even a row that got past the checks and cannot be bound costs only itself."""
    old = ledger._builder
    ledger._builder = _BuilderWithAGiant(old.session, old.pid, old.process, old.service)
    for i in range(20):
        ledger.append(make_record(ts=T0 + i))
    assert ledger.flush(10)
    assert [r["ts"] for r in rows(ledger.path)] == [T0 + i for i in range(20) if i != 7]
    stats = ledger.stats()
    assert (stats["written"], stats["dropped_invalid"], stats["broken"]) == (19, 1, None)

    ledger.append(make_record(ts=T0 + 100))  # the writer is still alive
    assert ledger.flush(10)
    assert len(rows(ledger.path)) == 20

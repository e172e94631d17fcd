"""Reading the ledger: period totals (budgets at start-up) and grouped summaries (``tokenrate report``).

Reads open the file read-only and never create it. Time buckets (day, ISO week, month) are computed in a
given time zone (``None`` = the machine's local time), matching how budgets count their periods.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from tokenrate.ledger.schema import SCHEMA_VERSION, LedgerTooNewError, connect

GROUPINGS: tuple[str, ...] = ("day", "week", "month", "provider", "model", "operation")
TIME_GROUPINGS = frozenset({"day", "week", "month"})


class LedgerMissingError(FileNotFoundError):
    """No ledger file at the path."""


@dataclass(slots=True)
class Totals:
    """Sums over a set of calls. Token sums are None when no call in the set reported that type."""

    key: str = ""
    calls: int = 0
    errors: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    tool_use_tokens: int | None = None
    cost_usd: float = 0.0
    """Sum of the known costs."""
    unknown_cost_calls: int = 0
    """Calls whose cost is unknown (not included in ``cost_usd``)."""
    throttle_events: int = 0
    throttle_wait_s: float = 0.0
    retries: int = 0
    duration_s: float = 0.0
    first_ts: float | None = None
    last_ts: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_tokens(self) -> int | None:
        if self.input_tokens is None and self.output_tokens is None:
            return None
        return (self.input_tokens or 0) + (self.output_tokens or 0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "calls": self.calls,
            "errors": self.errors,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "tool_use_tokens": self.tool_use_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": round(self.cost_usd, 10),
            "unknown_cost_calls": self.unknown_cost_calls,
            "throttle_events": self.throttle_events,
            "throttle_wait_s": round(self.throttle_wait_s, 6),
            "retries": self.retries,
            "duration_s": round(self.duration_s, 6),
        }


_AGGREGATES = """
    COUNT(*),
    SUM(error_type IS NOT NULL),
    SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens), SUM(cache_write_tokens),
    SUM(reasoning_tokens), SUM(tool_use_tokens),
    TOTAL(cost_usd), SUM(cost_usd IS NULL),
    TOTAL(throttle_events), TOTAL(throttle_wait_s), TOTAL(retries), TOTAL(duration_s),
    MIN(ts), MAX(ts)
"""


def _totals(key: str, row: tuple[Any, ...]) -> Totals:
    return Totals(
        key=key,
        calls=int(row[0] or 0),
        errors=int(row[1] or 0),
        input_tokens=row[2],
        output_tokens=row[3],
        cache_read_tokens=row[4],
        cache_write_tokens=row[5],
        reasoning_tokens=row[6],
        tool_use_tokens=row[7],
        cost_usd=float(row[8] or 0.0),
        unknown_cost_calls=int(row[9] or 0),
        throttle_events=int(row[10] or 0),
        throttle_wait_s=float(row[11] or 0.0),
        retries=int(row[12] or 0),
        duration_s=float(row[13] or 0.0),
        first_ts=row[14],
        last_ts=row[15],
    )


@contextmanager
def open_ledger(path: str | Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection; `LedgerMissingError` when there is no file, `LedgerTooNewError` if too new."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise LedgerMissingError(f"no ledger at {path}")
    conn = connect(path, readonly=True)
    try:
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.OperationalError:
            # A WAL ledger on read-only storage cannot be opened normally (its -shm file cannot be created):
            # read it as immutable, which sees what was checkpointed into the main file.
            conn.close()
            conn = connect(path, readonly=True, immutable=True)
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise LedgerTooNewError(
                f"ledger schema version {version} is newer than this tokenrate understands ({SCHEMA_VERSION})"
            )
        yield conn
    finally:
        conn.close()


def has_calls_table(conn: sqlite3.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'calls'").fetchone()
    return row is not None


def period_totals(path: str | Path, start_unix: float, end_unix: float) -> Totals:
    """Totals of the calls that started in [start, end); empty totals when the ledger does not exist yet."""
    try:
        with open_ledger(path) as conn:
            if not has_calls_table(conn):
                return Totals()
            row = conn.execute(
                f"SELECT {_AGGREGATES} FROM calls WHERE ts >= ? AND ts < ?", (start_unix, end_unix)
            ).fetchone()
            return _totals("", row)
    except LedgerMissingError:
        return Totals()


def bucket_key(ts: float, by: str, tz: tzinfo | None) -> str:
    """The day (``2025-01-31``), ISO week (``2025-W05``) or month (``2025-01``) of a Unix time in ``tz``."""
    moment = datetime.fromtimestamp(ts, tz) if tz is not None else datetime.fromtimestamp(ts)
    if by == "day":
        return moment.strftime("%Y-%m-%d")
    if by == "month":
        return moment.strftime("%Y-%m")
    if by == "week":
        year, week, _ = moment.isocalendar()
        return f"{year:04d}-W{week:02d}"
    raise ValueError(f"not a time grouping: {by!r}")


def summarize(
    path: str | Path,
    *,
    by: str = "day",
    since_unix: float | None = None,
    until_unix: float | None = None,
    tz: tzinfo | None = None,
) -> tuple[list[Totals], Totals]:
    """Grouped totals (sorted by key) and the grand total of the calls in [since, until)."""
    if by not in GROUPINGS:
        raise ValueError(f"--by must be one of {', '.join(GROUPINGS)}")
    where = "WHERE ts >= ? AND ts < ?"
    params = (since_unix if since_unix is not None else float("-inf"), until_unix or float("inf"))
    with open_ledger(path) as conn:
        if not has_calls_table(conn):
            return [], Totals(key="total")
        if by in TIME_GROUPINGS:
            conn.create_function("tr_bucket", 1, lambda ts: bucket_key(ts, by, tz), deterministic=True)
            key_sql = "tr_bucket(ts)"
        elif by == "model":
            key_sql = "COALESCE(response_model, request_model, '(none)')"
        else:
            key_sql = f"COALESCE({by}, '(none)')"
        rows = conn.execute(
            f"SELECT {key_sql} AS k, {_AGGREGATES} FROM calls {where} GROUP BY k ORDER BY k", params
        ).fetchall()
        total_row = conn.execute(f"SELECT {_AGGREGATES} FROM calls {where}", params).fetchone()
    groups = [_totals(str(row[0]), row[1:]) for row in rows]
    return groups, _totals("total", total_row)

"""Reading the ledger: period totals (budgets) and grouped summaries (``tokenrate report``).

Reads open the file read-only and never create it; every schema version this tokenrate knows can be read
(a column an older ledger lacks reads as NULL). Rows can be grouped by up to three dimensions at once: a time
bucket (day, ISO week, month, in a given time zone; ``None`` = the machine's local time, as budgets count), a
column (provider, model, operation) or any call attribute key (``user.id``, ``tokenrate.feature``...). An
attribute dimension is bounded: past ``limit`` values, the ones with the least cost are summed into one
`OTHER_KEY` row.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from tokenrate.ledger.schema import SCHEMA_VERSION, TOKEN_COLUMNS, LedgerTooNewError, connect
from tokenrate.records import BILLED_TYPES, TOKEN_TYPES

TIME_GROUPINGS: tuple[str, ...] = ("day", "week", "month")
COLUMN_GROUPINGS: tuple[str, ...] = ("provider", "model", "operation")
GROUPINGS: tuple[str, ...] = TIME_GROUPINGS + COLUMN_GROUPINGS
"""The named groupings; any other name groups by that call attribute (``user.id``, ``tenant.id``, ...)."""
MAX_DIMENSIONS = 3
NONE_KEY = "(none)"
"""The group of calls without that value (no model, no such attribute)."""
OTHER_KEY = "(other)"
"""The group that sums an attribute's values beyond the limit."""
KEY_SEPARATOR = " · "


class LedgerMissingError(FileNotFoundError):
    """No ledger file at the path."""


def parse_grouping(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"user.id,day"`` (or a sequence) as dimensions; `ValueError` with the reason when it is not one."""
    parts = [p.strip() for p in text.split(",")] if isinstance(text, str) else [str(p).strip() for p in text]
    dims = tuple(p for p in parts if p)
    if not dims:
        raise ValueError("--by needs at least one grouping")
    if len(dims) > MAX_DIMENSIONS:
        raise ValueError(f"--by takes at most {MAX_DIMENSIONS} groupings, not {len(dims)}")
    if len(set(dims)) != len(dims):
        raise ValueError("--by names a grouping twice")
    if sum(d in TIME_GROUPINGS for d in dims) > 1:
        raise ValueError("--by takes one time grouping (day, week or month) at most")
    for dim in dims:
        if dim not in GROUPINGS and (len(dim) > 128 or any(c.isspace() or c == "," for c in dim)):
            raise ValueError(f"--by {dim!r} is neither {', '.join(GROUPINGS)} nor an attribute key")
    return dims


def is_attribute(dimension: str) -> bool:
    return dimension not in GROUPINGS


@dataclass(slots=True)
class Totals:
    """Sums over a set of calls. A token sum is None when no call in the set reported that type (unknown)."""

    key: str = ""
    """The group's name: its ``keys`` joined with `KEY_SEPARATOR` (``total`` for the grand total)."""
    calls: int = 0
    errors: int = 0
    tokens: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(TOKEN_TYPES))
    """Summed tokens by `tokenrate.records.TOKEN_TYPES` name."""
    cost_usd: float = 0.0
    """Sum of the known costs."""
    unknown_cost_calls: int = 0
    """Calls whose cost is unknown (not included in ``cost_usd``)."""
    unknown_usage_calls: int = 0
    """Of those, the calls that reported no usage at all (e.g. cancelled): no price would help them."""
    cancelled: int = 0
    """Calls the user cancelled (``outcome`` ``cancelled``): not errors."""
    throttle_events: int = 0
    throttle_wait_s: float = 0.0
    retries: int = 0
    duration_s: float = 0.0
    first_ts: float | None = None
    last_ts: float | None = None
    keys: tuple[str, ...] = ()
    """One value per grouping dimension, in the order asked for."""

    @property
    def total_tokens(self) -> int | None:
        billed = [self.tokens.get(name) for name in BILLED_TYPES]
        if all(value is None for value in billed):
            return None
        return sum(value or 0 for value in billed)

    def add(self, other: Totals) -> None:
        """Add another group's sums into this one (unknown + n = n; unknown + unknown stays unknown)."""
        self.calls += other.calls
        self.errors += other.errors
        for name in TOKEN_TYPES:
            mine, theirs = self.tokens.get(name), other.tokens.get(name)
            self.tokens[name] = theirs if mine is None else mine if theirs is None else mine + theirs
        self.cost_usd += other.cost_usd
        self.unknown_cost_calls += other.unknown_cost_calls
        self.unknown_usage_calls += other.unknown_usage_calls
        self.cancelled += other.cancelled
        self.throttle_events += other.throttle_events
        self.throttle_wait_s += other.throttle_wait_s
        self.retries += other.retries
        self.duration_s += other.duration_s
        self.first_ts = _min(self.first_ts, other.first_ts)
        self.last_ts = _max(self.last_ts, other.last_ts)

    def as_dict(self, dimensions: Sequence[str] = ()) -> dict[str, Any]:
        """Plain data (JSON, CSV); with ``dimensions``, each dimension's value under its own name too."""
        out: dict[str, Any] = {"key": self.key}
        if len(dimensions) > 1:
            out.update(zip(dimensions, self.keys, strict=False))
        out["calls"] = self.calls
        out["errors"] = self.errors
        out.update((column, self.tokens.get(name)) for name, column in zip(TOKEN_TYPES, TOKEN_COLUMNS, strict=True))
        out.update(
            total_tokens=self.total_tokens,
            cost_usd=round(self.cost_usd, 10),
            unknown_cost_calls=self.unknown_cost_calls,
            unknown_usage_calls=self.unknown_usage_calls,
            cancelled=self.cancelled,
            throttle_events=self.throttle_events,
            throttle_wait_s=round(self.throttle_wait_s, 6),
            retries=self.retries,
            duration_s=round(self.duration_s, 6),
        )
        return out


def _min(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _token_sum(column: str) -> str:
    """NULL when no row knows the value, else the sum; TOTAL (a float) cannot overflow like SUM can."""
    return f"CASE WHEN COUNT({column}) THEN CAST(TOTAL({column}) AS INTEGER) END"


_AGGREGATES = ", ".join(
    [
        "COUNT(*)",
        "SUM(error_type IS NOT NULL)",
        *(_token_sum(column) for column in TOKEN_COLUMNS),
        "TOTAL(cost_usd)",
        "SUM(cost_usd IS NULL)",
        "TOTAL(throttle_events)",
        "TOTAL(throttle_wait_s)",
        "TOTAL(retries)",
        "TOTAL(duration_s)",
        "MIN(ts)",
        "MAX(ts)",
        "SUM(cost_usd IS NULL AND input_tokens IS NULL AND output_tokens IS NULL)",
        "SUM(outcome = 'cancelled')",
    ]
)
_N_TOKENS = len(TOKEN_COLUMNS)


def _totals(keys: tuple[str, ...], row: Sequence[Any]) -> Totals:
    tokens = row[2 : 2 + _N_TOKENS]
    (cost, unknown, events, wait, retries, duration, first, last, no_usage, cancelled) = row[2 + _N_TOKENS :]
    return Totals(
        key=KEY_SEPARATOR.join(keys),
        keys=keys,
        calls=int(row[0] or 0),
        errors=int(row[1] or 0),
        tokens=dict(zip(TOKEN_TYPES, tokens, strict=True)),
        cost_usd=float(cost or 0.0),
        unknown_cost_calls=int(unknown or 0),
        unknown_usage_calls=int(no_usage or 0),
        cancelled=int(cancelled or 0),
        throttle_events=int(events or 0),
        throttle_wait_s=float(wait or 0.0),
        retries=int(retries or 0),
        duration_s=float(duration or 0.0),
        first_ts=first,
        last_ts=last,
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


def _has_attributes(conn: sqlite3.Connection) -> bool:
    return any(row[1] == "attributes" for row in conn.execute("PRAGMA table_info(calls)"))


@functools.lru_cache(maxsize=4096)
def _parsed_attributes(text: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def attribute_value(attributes: str | None, key: str) -> str | None:
    """The value of ``key`` in a row's ``attributes`` JSON (None when absent)."""
    if not attributes:
        return None
    value = _parsed_attributes(attributes).get(key)
    return None if value is None else str(value)


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


class _Reader:
    """SQL expressions for dimensions and filters on one open ledger (its schema version, a time zone)."""

    def __init__(self, conn: sqlite3.Connection, tz: tzinfo | None) -> None:
        self.conn = conn
        attributes = "attributes" if _has_attributes(conn) else "NULL"
        self._attributes = attributes
        conn.create_function("tr_bucket", 2, lambda ts, by: bucket_key(ts, by, tz), deterministic=True)
        conn.create_function("tr_attr", 2, attribute_value, deterministic=True)

    def expression(self, dimension: str) -> str:
        if dimension in TIME_GROUPINGS:
            return f"tr_bucket(ts, '{dimension}')"
        if dimension == "model":
            return "COALESCE(response_model, request_model)"
        if dimension in COLUMN_GROUPINGS:
            return dimension
        return f"tr_attr({self._attributes}, {_literal(dimension)})"

    def where(self, since: float | None, until: float | None, match: Mapping[str, str] | None) -> tuple[str, list[Any]]:
        clauses = ["ts >= ?", "ts < ?"]
        params: list[Any] = [
            since if since is not None else float("-inf"),
            until if until is not None else float("inf"),
        ]
        for dimension, value in (match or {}).items():
            clauses.append(f"{self.expression(dimension)} = ?")
            params.append(value)
        return "WHERE " + " AND ".join(clauses), params


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def period_totals(
    path: str | Path, start_unix: float, end_unix: float, *, match: Mapping[str, str] | None = None
) -> Totals:
    """Totals of the calls that started in [start, end) (and match ``match``: dimension -> value); empty totals
    when the ledger does not exist yet."""
    try:
        with open_ledger(path) as conn:
            if not has_calls_table(conn):
                return Totals()
            reader = _Reader(conn, None)
            where, params = reader.where(start_unix, end_unix, match)
            row = conn.execute(f"SELECT {_AGGREGATES} FROM calls {where}", params).fetchone()
            return _totals((), row)
    except LedgerMissingError:
        return Totals()


def summarize(
    path: str | Path,
    *,
    by: str | Sequence[str] = "day",
    since_unix: float | None = None,
    until_unix: float | None = None,
    tz: tzinfo | None = None,
    match: Mapping[str, str] | None = None,
    limit: int | None = None,
) -> tuple[list[Totals], Totals]:
    """Grouped totals (sorted by key) and the grand total of the calls in [since, until) matching ``match``.

    ``by`` is a grouping or several (`parse_grouping`). ``limit`` bounds each attribute dimension: its values
    beyond the ``limit`` costliest are summed into `OTHER_KEY`.
    """
    dims = parse_grouping(by)
    with open_ledger(path) as conn:
        if not has_calls_table(conn):
            return [], Totals(key="total")
        reader = _Reader(conn, tz)
        where, params = reader.where(since_unix, until_unix, match)
        selected = ", ".join(f"{reader.expression(d)} AS k{i}" for i, d in enumerate(dims))
        grouped = ", ".join(f"k{i}" for i in range(len(dims)))
        rows = conn.execute(f"SELECT {selected}, {_AGGREGATES} FROM calls {where} GROUP BY {grouped}", params)
        groups = [_totals(tuple(_key(v) for v in row[: len(dims)]), row[len(dims) :]) for row in rows.fetchall()]
        total = _totals((), conn.execute(f"SELECT {_AGGREGATES} FROM calls {where}", params).fetchone())
    total.key = "total"
    if limit is not None:
        for index, dim in enumerate(dims):
            if is_attribute(dim):
                groups = _bound(groups, index, max(1, limit))
    groups.sort(key=lambda g: tuple(_sort_key(k) for k in g.keys))
    return groups, total


def _key(value: Any) -> str:
    return NONE_KEY if value is None else str(value)


def _sort_key(key: str) -> tuple[int, str]:
    return (1 if key in (NONE_KEY, OTHER_KEY) else 0, key)


def _bound(groups: list[Totals], index: int, limit: int) -> list[Totals]:
    """Keep the ``limit`` costliest values of dimension ``index`` (and `NONE_KEY`); sum the others into
    `OTHER_KEY` groups."""
    per_value: dict[str, Totals] = {}
    for group in groups:
        if group.keys[index] != NONE_KEY:
            per_value.setdefault(group.keys[index], Totals()).add(group)
    if len(per_value) <= limit:
        return groups
    ranked = sorted(per_value.items(), key=lambda kv: (-kv[1].cost_usd, -(kv[1].total_tokens or 0), -kv[1].calls))
    kept = {NONE_KEY, *(value for value, _ in ranked[:limit])}
    merged: dict[tuple[str, ...], Totals] = {}
    for group in groups:
        keys = group.keys if group.keys[index] in kept else (*group.keys[:index], OTHER_KEY, *group.keys[index + 1 :])
        target = merged.get(keys)
        if target is None:
            merged[keys] = target = Totals(key=KEY_SEPARATOR.join(keys), keys=keys)
        target.add(group)
    return list(merged.values())


SpendRow = tuple[float, str, "str | None", Mapping[str, str], "float | None", int]
"""(ts, provider, request model, attributes, cost, billed tokens) of one call, as budgets count it."""


def read_spend(
    path: str | Path, *, after_id: int = 0, since: float, skip: str | None = None
) -> tuple[list[SpendRow], int]:
    """The calls with a row id above ``after_id`` that started at ``since`` or later (not of session ``skip``),
    and the highest row id seen: what budgets shared through the ledger add from other processes."""
    try:
        with open_ledger(path) as conn:
            if not has_calls_table(conn):
                return [], after_id
            attributes = "attributes" if _has_attributes(conn) else "NULL"
            conn.execute("BEGIN")  # one snapshot for both reads: no row committed in between is skipped
            try:
                rows = conn.execute(
                    f"SELECT ts, provider, request_model, {attributes}, cost_usd, input_tokens, output_tokens, "
                    "session FROM calls WHERE id > ? AND ts >= ?",
                    (after_id, since),
                ).fetchall()
                last = conn.execute("SELECT MAX(id) FROM calls").fetchone()[0] or after_id
            finally:
                conn.execute("COMMIT")
    except LedgerMissingError:
        return [], after_id
    out: list[SpendRow] = []
    for ts, provider, model, attrs, cost, inp, outp, session in rows:
        if skip is not None and session == skip:
            continue
        parsed = _parsed_attributes(attrs) if attrs else {}
        out.append((ts, provider, model, {str(k): str(v) for k, v in parsed.items()}, cost, (inp or 0) + (outp or 0)))
    return out, max(last, after_id)

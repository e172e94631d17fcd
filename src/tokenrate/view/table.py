"""Snapshots as table cells: the public rendering API behind ``tokenrate top`` (and any table of processes).

A row is a slice of one process's calls — all of them, one (provider, model), or one value of an attribute —
rendered into the same figure columns (`FIGURE_COLUMNS`). Callers add their own identity columns (pid,
program) and their own table widget; the numbers are formatted here, the same way as the status line and the
session summary.
"""

from __future__ import annotations

from dataclasses import dataclass

from tokenrate.view._format import (
    TIMES,
    fmt_budget_short,
    fmt_cost,
    fmt_int,
    fmt_pct,
    fmt_seconds,
    fmt_tokens,
    worst_first,
)
from tokenrate.view.snapshot import Snapshot, UsageFigures

FIGURE_COLUMNS: tuple[str, ...] = ("TPM", "RPM", "tokens", "cost", "throttled", "limit", "budget")
"""The figure columns of every row, in order; ``limit`` and ``budget`` are filled for whole processes only."""


@dataclass(frozen=True)
class TableRow:
    """One row: what it is (``all (3)``, ``openai/gpt-4o``, ``user.id=alice``) and its figure cells."""

    label: str
    cells: tuple[str, ...]
    """One text per `FIGURE_COLUMNS` entry (``""`` where the column says nothing for this row)."""
    is_total: bool
    """The row of the whole process (as opposed to one of its slices)."""


def process_rows(snapshot: Snapshot, *, by: str | None = None) -> list[TableRow]:
    """The process's row, then one row per model, or per value of the attribute ``by`` when given."""
    rows = [TableRow(_total_label(snapshot, by), _total_cells(snapshot), True)]
    if by is None:
        rows.extend(TableRow(f"{m.provider}/{m.model}", _slice_cells(m), False) for m in snapshot.models)
    else:
        rows.extend(TableRow(f"{by}={g.value}", _slice_cells(g), False) for g in snapshot.by(by))
    return rows


def throttled_text(events: int, wait_s: float) -> str:
    """``0``, ``3×`` or ``3× 6.2 s``."""
    if not events:
        return "0"
    return f"{events}{TIMES} {fmt_seconds(wait_s)}" if wait_s else f"{events}{TIMES}"


def _total_label(snapshot: Snapshot, by: str | None) -> str:
    count = len(snapshot.models) if by is None else len(snapshot.by(by))
    return f"all ({count})" if count != 1 else "all"


def _total_cells(snapshot: Snapshot) -> tuple[str, ...]:
    used = snapshot.limit_used_max
    budgets = worst_first(snapshot.budgets)
    return (
        fmt_int(snapshot.rates.tpm),
        fmt_int(snapshot.rates.rpm),
        ("≥" if snapshot.unknown_usage_calls else "") + fmt_tokens(snapshot.tokens.total),
        fmt_cost(snapshot.cost_usd, snapshot.unknown_cost_calls),
        throttled_text(snapshot.throttle.events, snapshot.throttle.wall_s),
        "-" if used is None else f"{fmt_pct(used)} used",
        fmt_budget_short(budgets[0]) if budgets else "-",
    )


def _slice_cells(row: UsageFigures) -> tuple[str, ...]:
    return (
        fmt_int(row.tpm),
        fmt_int(row.rpm),
        ("≥" if row.unknown_usage_calls else "") + fmt_tokens(row.tokens.total),
        fmt_cost(row.cost_usd, row.unknown_cost_calls),
        throttled_text(row.throttle_events, row.throttle_wall_s),
        "",
        "",
    )

"""`render_summary`: the end-of-session report (a rich panel on a terminal, plain text anywhere else)."""

from __future__ import annotations

import atexit
import contextlib
import sys
import threading
from collections.abc import Callable, Sequence
from typing import IO, Any

from tokenrate._env import setting
from tokenrate._safety import report
from tokenrate.records import TOKEN_TYPES
from tokenrate.view._format import (
    TIMES,
    fmt_budget_amount,
    fmt_cost,
    fmt_int,
    fmt_pct,
    fmt_seconds,
    fmt_tokens,
    worst_first,
)
from tokenrate.view.snapshot import Snapshot, UsageFigures

TITLE = "tokenrate session summary"
SUMMARY_BY_ENV = "TOKENRATE_SUMMARY_BY"
MODEL_COLUMNS = ("model", "requests", "errors", "input", "output", "total", "peak TPM", "throttled", "cost")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _count_list(counts: tuple[tuple[str, int], ...]) -> str:
    return ", ".join(f"{name} {n}" for name, n in sorted(counts, key=lambda c: (-c[1], c[0])))


def unknown_cost_reasons(unknown_cost_calls: int, no_usage_calls: int) -> str:
    """Why costs are unknown: calls that reported no usage (cancelled, cut short) vs models without a price."""
    no_usage = min(no_usage_calls, unknown_cost_calls)
    no_price = unknown_cost_calls - no_usage
    reasons = []
    if no_usage:
        reasons.append(f"{_plural(no_usage, 'call')} without usage, e.g. cancelled")
    if no_price:
        reasons.append(f"{_plural(no_price, 'call')} of a model without a price")
    return "unknown for " + "; ".join(reasons)


def _known(value: int | None, fmt: Callable[[float], str] = fmt_int) -> str:
    return "unknown" if value is None else fmt(value)


def summary_lines(snap: Snapshot) -> list[tuple[str, str]]:
    """The summary as (label, text) pairs, shared by the plain and the rich rendering."""
    rates = snap.rates
    lines: list[tuple[str, str]] = []
    duration = fmt_seconds(snap.duration_s)
    if snap.requests == 0 and snap.rejected == 0 and snap.in_flight == 0:
        lines.append(("calls", "no LLM calls were recorded"))
    lines.append(("duration", f"{duration} (provider busy {fmt_seconds(rates.busy_s)})"))

    requests = fmt_int(snap.requests)
    details = [_plural(snap.attempts, "attempt")]
    if snap.cancelled:
        details.append(f"{snap.cancelled} cancelled")
    if snap.rejected:
        details.append(f"{snap.rejected} rejected before sending")
    if snap.in_flight:
        details.append(f"{snap.in_flight} still in flight")
    lines.append(("requests", f"{requests} ({', '.join(details)})"))

    tokens = snap.tokens
    text = f"{fmt_int(tokens.total)} = input {_known(tokens.input)} + output {_known(tokens.output)}"
    if snap.unknown_usage_calls:
        text += f" (+ {_plural(snap.unknown_usage_calls, 'call')} without usage)"
    lines.append(("tokens", text))
    parts = [f"{name} {_known(getattr(tokens, name))}" for name in TOKEN_TYPES[2:]]
    lines.append(("", " · ".join(parts)))

    lines.append(
        (
            "TPM",
            f"now {fmt_int(rates.tpm)} · peak {fmt_int(rates.peak_tpm)} · average {fmt_int(rates.avg_tpm)}",
        )
    )
    active = "-" if rates.session_active_tpm is None else fmt_int(rates.session_active_tpm)
    lines.append(("active TPM", f"{active} (tokens per minute of provider time)"))
    lines.append(
        (
            "RPM",
            f"now {fmt_int(rates.rpm)} · peak {fmt_int(rates.peak_rpm)} · average {rates.avg_rpm:.1f}",
        )
    )

    throttle = snap.throttle
    text = f"{throttle.events}{TIMES} (429/529)"
    if throttle.wait_s:
        text += f", {fmt_seconds(throttle.wall_s)} with at least one call waiting"
    lines.append(("throttled", text))
    if throttle.wait_s:
        lines.append(("", f"{fmt_seconds(throttle.wait_s)} of waits, summed over concurrent calls"))
    text = str(throttle.retries)
    if throttle.retries:
        text += f" ({_count_list(throttle.retries_by_reason)}; {fmt_seconds(throttle.retry_wait_s)} of waits, summed)"
    lines.append(("retries", text))
    text = str(snap.errors)
    if snap.errors_by_type:
        text += f" ({_count_list(snap.errors_by_type)})"
    lines.append(("errors", text))

    text = fmt_cost(snap.cost_usd, snap.unknown_cost_calls)
    if text == "?":
        text = "unknown"
    if snap.unknown_cost_calls:
        text += f" ({unknown_cost_reasons(snap.unknown_cost_calls, snap.unknown_usage_calls)})"
    lines.append(("cost", text))

    first = True
    for w in snap.rate_limits:
        if w.used_fraction is None and w.remaining is None:
            continue
        text = f"{w.provider} {w.kind}: "
        if w.used_fraction is not None:
            text += f"{fmt_pct(w.used_fraction)} used"
        if w.remaining is not None and w.limit is not None:
            text += f" ({fmt_int(w.remaining)} of {fmt_int(w.limit)} left)"
        elif w.remaining is not None:
            text += f"{fmt_int(w.remaining)} left"
        if w.reset_s is not None and w.is_current(snap.updated_at):
            text += f", resets in {fmt_seconds(max(0.0, (w.resets_at or 0) - snap.updated_at))}"
        lines.append(("rate limits" if first else "", text))
        first = False

    first = True
    for b in worst_first(snap.budgets):
        text = (
            f"{b.name}{f' [{b.scope}]' if b.scope else ''}: {fmt_budget_amount(b, b.spent)} of "
            f"{fmt_budget_amount(b, b.limit)} ({fmt_pct(b.utilization)}) {b.state}"
        )
        lines.append(("budgets" if first else "", text))
        first = False

    ledger = snap.ledger
    if ledger is not None and (ledger.dropped or ledger.invalid_values):
        text = f"{fmt_int(ledger.written)} calls written"
        if ledger.dropped:
            text += f", {_plural(ledger.dropped, 'call')} dropped"
        if ledger.invalid_values:
            text += f", {_plural(ledger.invalid_values, 'value')} out of range stored as unknown"
        if ledger.last_problem:
            text += f" (last: {ledger.last_problem})"
        lines.append(("ledger", text))
    return lines


def _figures_row(label: str, m: UsageFigures) -> tuple[str, ...]:
    throttled = f"{m.throttle_events}{TIMES}" if m.throttle_events else "0"
    if m.throttle_events and m.throttle_wall_s:
        throttled += f" {fmt_seconds(m.throttle_wall_s)}"
    return (
        label,
        fmt_int(m.requests),
        fmt_int(m.errors),
        _known(m.tokens.input, fmt_tokens),
        _known(m.tokens.output, fmt_tokens),
        fmt_tokens(m.tokens.total),
        fmt_int(m.peak_tpm),
        throttled,
        fmt_cost(m.cost_usd, m.unknown_cost_calls),
    )


def model_rows(snap: Snapshot) -> list[tuple[str, ...]]:
    return [_figures_row(f"{m.provider}/{m.model}", m) for m in snap.models]


def group_rows(snap: Snapshot, key: str) -> list[tuple[str, ...]]:
    """One row per value of the call attribute ``key`` (costliest first), as `model_rows` has per model."""
    return [_figures_row(g.value, g) for g in snap.by(key)]


def _tables(snap: Snapshot, by: Sequence[str]) -> list[tuple[tuple[str, ...], list[tuple[str, ...]]]]:
    """The per-model table, then one per attribute key asked for; empty ones left out."""
    tables = [(MODEL_COLUMNS, model_rows(snap))]
    tables.extend(((key, *MODEL_COLUMNS[1:]), group_rows(snap, key)) for key in by)
    return [(columns, rows) for columns, rows in tables if rows]


def _plain(snap: Snapshot, by: Sequence[str] = ()) -> str:
    lines = summary_lines(snap)
    width = max(len(label) for label, _ in lines)
    out = [TITLE]
    out.extend(f"  {label.ljust(width)}  {text}".rstrip() for label, text in lines)
    for columns, rows in _tables(snap, by):
        table = [columns, *rows]
        widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
        out.append("")
        for r in table:
            cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
            out.append("  " + "  ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def _rich(snap: Snapshot, file: IO[str], by: Sequence[str] = ()) -> None:
    from rich.console import Console, Group
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, text in summary_lines(snap):
        grid.add_row(escape(label), escape(text))  # names and attribute values are text, never markup
    parts: list[Any] = [grid]
    console = Console(file=file, highlight=False)
    for columns, rows in _tables(snap, by):
        keep = [i for i, name in enumerate(columns) if name not in _narrow_drops(console.width)]
        table = Table(box=None, pad_edge=False, header_style="bold")
        for i in keep:
            if i == 0:  # on a narrow terminal the model name folds; the figures never get cut
                table.add_column(columns[i], overflow="fold", ratio=1)
            else:
                table.add_column(columns[i], justify="right", no_wrap=True)
        for r in rows:
            table.add_row(*(escape(r[i]) for i in keep))
        parts.extend(["", table])
    console.print(Panel(Group(*parts), title=TITLE, expand=False))


def _narrow_drops(width: int) -> frozenset[str]:
    """Per-model columns left out on a narrow terminal, least useful first, so model names stay readable.

    What they show is still in the summary lines above (errors, peaks) or adds up to what is kept (total).
    """
    if width >= 110:
        return frozenset()
    if width >= 90:
        return frozenset({"errors", "peak TPM"})
    return frozenset({"errors", "peak TPM", "input", "output"})


def _is_terminal(file: Any) -> bool:
    try:
        return bool(file.isatty())
    except Exception:
        return False


def render_summary(snapshot: Snapshot, file: IO[str] | None = None, *, by: Sequence[str] | None = None) -> None:
    """Write the session summary to ``file`` (default ``sys.stderr``): a panel on a terminal, else plain text.

    ``by``: call attribute keys to add a table of totals per value for (default ``TOKENRATE_SUMMARY_BY``).
    """
    out = sys.stderr if file is None else file
    if out is None:
        return
    keys = tuple(setting(SUMMARY_BY_ENV) if by is None else by)
    if _is_terminal(out):
        _rich(snapshot, out, keys)
    else:
        out.write(_plain(snapshot, keys))
        out.flush()


_installed = False
_install_lock = threading.Lock()


def _summary_at_exit() -> None:
    try:
        from tokenrate.view.core import get_view

        render_summary(get_view().snapshot(), sys.stderr)
    except Exception as exc:  # interpreter shutdown: never raise
        with contextlib.suppress(Exception):
            report("session summary at exit", exc)


def install_summary_at_exit() -> None:
    """Print the session summary to stderr when the program exits (registered once, however often called)."""
    global _installed
    with _install_lock:
        if _installed:
            return
        _installed = True
    from tokenrate.view.core import get_view

    get_view()  # register the view now, so it sees every call from here on
    atexit.register(_summary_at_exit)

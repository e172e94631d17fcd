"""``tokenrate report``: tokens, cost, throttling and budgets from the usage ledger, by period or by key.

Reads the ledger (``--ledger``, else ``TOKENRATE_LEDGER``, else the default path used by ``tokenrate run``)
read-only. Days, weeks (ISO, Monday first) and months are calendar periods in ``--tz`` (default
``TOKENRATE_BUDGET_TZ``, else local time), the same periods budgets use.

Exit codes: 0 with a report (also when no call falls in the range: the table says so, JSON/CSV are empty);
1 when there is no ledger file or it cannot be read (the message says why and how to start one);
2 for bad arguments.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sqlite3
import sys
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

from tokenrate._docs import doc_url
from tokenrate.ledger.query import (
    GROUPINGS,
    TIME_GROUPINGS,
    LedgerMissingError,
    Totals,
    parse_grouping,
    summarize,
)
from tokenrate.ledger.schema import TOKEN_COLUMNS, LedgerTooNewError
from tokenrate.view._format import fmt_cost, fmt_tokens, fmt_usd

FORMATS = ("table", "json", "csv")
DEFAULT_TOP = 50
"""Values of an attribute grouping shown; the rest are summed into one ``(other)`` row."""
CHART_MAX_SCOPES = 8
"""Per-scope trend charts drawn (the costliest scopes); JSON has them all, up to ``--top``."""
CSV_FIELDS = (
    "calls",
    "errors",
    *TOKEN_COLUMNS,
    "total_tokens",
    "cost_usd",
    "unknown_cost_calls",
    "throttle_events",
    "throttle_wait_s",
    "retries",
    "duration_s",
)
CHART_MAX_BARS = 31


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="tokens, cost, throttling and budgets from the usage ledger",
        description=(
            "Summarize the usage ledger (one row per LLM call, written when TOKENRATE_LEDGER is set or under "
            "`tokenrate run`): totals by day, week, month, provider, model, operation or any call attribute "
            "(user.id, tokenrate.feature, ...); cost; time lost to throttling; budget status; trend charts."
        ),
    )
    parser.add_argument(
        "--ledger",
        default=None,
        help=f"ledger file (default: $TOKENRATE_LEDGER, else {_default_ledger_text()}, where `tokenrate run` writes)",
    )
    parser.add_argument(
        "--since",
        default=None,
        help="first day, inclusive: YYYY-MM-DD, an ISO date-time, 'today', 'yesterday' or Nd (the last N days)",
    )
    parser.add_argument(
        "--until", default=None, help="last day, inclusive: YYYY-MM-DD, an ISO date-time, 'today' or 'yesterday'"
    )
    parser.add_argument(
        "--by",
        type=_grouping,
        default=("day",),
        help=(
            f"how to group the rows: {', '.join(GROUPINGS)} or any attribute key (user.id, tokenrate.feature, ...); "
            "several, comma-separated, combine (user.id,day). Default: day"
        ),
    )
    parser.add_argument(
        "--top",
        type=int,
        default=DEFAULT_TOP,
        help=f"attribute groupings: show the N costliest values, sum the rest as (other) (default {DEFAULT_TOP})",
    )
    parser.add_argument(
        "--where",
        action="append",
        default=[],
        type=_match,
        metavar="KEY=VALUE",
        help="only calls whose grouping or attribute KEY is VALUE (e.g. user.id=u-42); repeatable",
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("--tz", default=None, help="IANA time zone for days/weeks/months (default: budget tz or local)")
    parser.add_argument("--no-chart", action="store_true", help="table format: leave out the trend chart")
    parser.set_defaults(func=run)


# -- arguments -------------------------------------------------------------------------------------------------------


def _default_ledger_text() -> str:
    from tokenrate.ledger import default_ledger_path

    path = str(default_ledger_path())
    home = os.path.expanduser("~")
    return "~" + path[len(home) :] if home not in ("", "/") and path.startswith(home + os.sep) else path


class ReportError(Exception):
    """A problem worth a one-line message and exit code 1."""


def _grouping(text: str) -> tuple[str, ...]:
    try:
        return parse_grouping(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _match(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--where {text!r}: expected KEY=VALUE, e.g. user.id=u-42")
    return key.strip(), value


def resolve_ledger_path(arg: str | None) -> Path:
    from tokenrate.ledger import default_ledger_path, ledger_path_from_env

    if arg:
        return Path(arg).expanduser()
    return ledger_path_from_env() or default_ledger_path()


def resolve_tz(arg: str | None) -> tzinfo | None:
    if arg is None:
        from tokenrate.budget import budget_tz_from_env

        return budget_tz_from_env()
    if arg.lower() == "local":
        return None
    from zoneinfo import ZoneInfo

    try:
        return ZoneInfo(arg)
    except Exception as exc:
        raise argparse.ArgumentTypeError(f"--tz {arg!r} is not a known IANA time zone ({exc})") from exc


def tz_label(tz: tzinfo | None) -> str:
    return "local time" if tz is None else str(getattr(tz, "key", None) or tz)


def _day_start(day: date, tz: tzinfo | None) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()


def _today(tz: tzinfo | None, now: float | None = None) -> date:
    now = datetime.now().timestamp() if now is None else now
    return (datetime.fromtimestamp(now, tz) if tz is not None else datetime.fromtimestamp(now)).date()


def parse_bound(text: str, *, tz: tzinfo | None, end: bool, now: float | None = None) -> float:
    """A --since/--until value as a Unix time (for --until a whole day is included)."""
    value = text.strip().lower()
    relative = re.fullmatch(r"(\d+)d", value)
    if value in ("today", "yesterday") or relative:
        day = _today(tz, now)
        if value == "yesterday":
            day -= timedelta(days=1)
        elif relative:
            day -= timedelta(days=max(0, int(relative.group(1)) - 1))
        return _day_start(day + timedelta(days=1) if end else day, tz)
    try:
        day = date.fromisoformat(text.strip())
        return _day_start(day + timedelta(days=1) if end else day, tz)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{'--until' if end else '--since'} {text!r}: expected YYYY-MM-DD, an ISO date-time, 'today', "
            "'yesterday' or Nd"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz) if tz is not None else moment
    return moment.timestamp()


# -- the report ----------------------------------------------------------------------------------------------------


def build_report(
    path: Path,
    *,
    by: str | tuple[str, ...],
    since: float | None,
    until: float | None,
    tz: tzinfo | None,
    now: float | None = None,
    top: int = DEFAULT_TOP,
    where: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Everything the three formats show, as plain data."""
    dims = parse_grouping(by)
    query = {"since_unix": since, "until_unix": until, "tz": tz, "match": where or None, "limit": top}
    try:
        groups, total = summarize(path, by=dims, **query)
        time_dims = [d for d in dims if d in TIME_GROUPINGS]
        trend_by = time_dims[0] if time_dims else "day"
        trend = groups if dims == (trend_by,) else summarize(path, by=trend_by, **query)[0]
        scope = next((d for d in dims if d not in TIME_GROUPINGS), None)
        scopes = [] if scope is None else _scope_trends(summarize(path, by=(scope, trend_by), **query)[0])
    except LedgerMissingError as exc:
        raise ReportError(
            f"no ledger at {path}. The ledger is written when TOKENRATE_LEDGER=path is set (or under "
            "`tokenrate run`); pass --ledger PATH to read another file."
        ) from exc
    except (sqlite3.Error, LedgerTooNewError, OSError) as exc:
        raise ReportError(f"cannot read the ledger at {path}: {type(exc).__name__}: {exc}") from exc
    return {
        "ledger": str(path),
        "by": ",".join(dims),
        "dimensions": list(dims),
        "where": dict(where or {}),
        "since": _iso(since, tz),
        "until": _iso(until, tz),
        "timezone": tz_label(tz),
        "groups": [g.as_dict(dims) for g in groups],
        "total": total.as_dict(),
        "budgets": _budget_status(path, tz, now),
        "trend_by": trend_by,
        "trend": [_point(t) for t in trend],
        "scope": scope,
        "scope_trends": scopes,
    }


def _point(totals: Totals) -> dict[str, Any]:
    return {
        "key": totals.keys[-1] if totals.keys else totals.key,
        "cost_usd": round(totals.cost_usd, 10),
        "unknown_cost_calls": totals.unknown_cost_calls,
        "total_tokens": totals.total_tokens,
    }


def _scope_trends(groups: list[Totals]) -> list[dict[str, Any]]:
    """One trend per scope value (``user.id`` = ``alice``: her cost per day), costliest scope first."""
    by_scope: dict[str, list[Totals]] = {}
    for group in groups:
        by_scope.setdefault(group.keys[0], []).append(group)
    trends = [
        {
            "scope": value,
            "cost_usd": round(sum(t.cost_usd for t in series), 10),
            "total_tokens": sum(t.total_tokens or 0 for t in series),
            "trend": [_point(t) for t in series],
        }
        for value, series in by_scope.items()
    ]
    trends.sort(key=lambda t: (-t["cost_usd"], -t["total_tokens"], t["scope"]))
    return trends


def _iso(ts: float | None, tz: tzinfo | None) -> str | None:
    if ts is None:
        return None
    return (datetime.fromtimestamp(ts, tz) if tz is not None else datetime.fromtimestamp(ts).astimezone()).isoformat()


def _budget_status(path: Path, tz: tzinfo | None, now: float | None) -> list[dict[str, Any]]:
    """Each budget in the environment and the budgets file against the ledger (every process), per scope value.

    The ledger is replayed through the same `tokenrate.budget.Budget` the instrumented processes run, so the
    report counts exactly what enforcement counts.
    """
    from tokenrate.budget import (
        Budget,
        budget_file_from_env,
        budget_specs_from_env,
        thresholds_from_env,
    )
    from tokenrate.budget.process import budget_specs_from_file
    from tokenrate.budget.stores import replay_ledger

    specs = [*budget_specs_from_env(), *budget_specs_from_file(budget_file_from_env())]
    if not specs:
        return []
    now = datetime.now().timestamp() if now is None else now
    budget = Budget(specs, thresholds=thresholds_from_env(), tz=tz, clock=lambda: now)
    replay_ledger(budget, path)
    windows = {spec.name: spec.window.window_key(now, tz) for spec in specs}
    return [
        {
            "name": line.name,
            "scope": line.scope,
            "period": line.period,
            "period_key": windows[line.name],
            "unit": line.unit,
            "spent": round(line.spent, 10),
            "limit": line.limit,
            "utilization": round(line.utilization, 6),
            "state": line.state,
        }
        for line in budget.lines()
    ]


# -- output ---------------------------------------------------------------------------------------------------------


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2)


def render_csv(report: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    dims = report["dimensions"]
    writer.writerow((*dims, *CSV_FIELDS))
    for group in report["groups"]:
        keys = [group[d] for d in dims] if len(dims) > 1 else [group["key"]]
        writer.writerow((*keys, *("" if group[f] is None else group[f] for f in CSV_FIELDS)))
    return buffer.getvalue()


def _int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _usd(value: float) -> str:
    return fmt_usd(value)


def _tokens_full(value: int | None) -> str:
    return _int(value)


def _tokens_compact(value: int | None) -> str:
    return "-" if value is None else fmt_tokens(value)


# (header, field, kind, drop rank): columns with a rank are left out on a narrow terminal, lowest rank first.
_COLUMNS: tuple[tuple[str, str, str, int | None], ...] = (
    ("calls", "calls", "int", None),
    ("errors", "errors", "int", 5),
    ("input", "input_tokens", "tokens", None),
    ("output", "output_tokens", "tokens", None),
    ("cache read", "cache_read_tokens", "tokens", 3),
    ("cache write", "cache_write_tokens", "tokens", 1),
    ("reasoning", "reasoning_tokens", "tokens", 2),
    ("cost", "cost_usd", "cost", None),
    ("throttled", "throttle_events", "int", None),
    ("throttle wait", "throttle_wait_s", "seconds", None),
    ("retries", "retries", "int", 4),
)
_COLUMN_GAP = 3
"""Between two columns: padding, the rule, padding."""


def _cell(row: dict[str, Any], field: str, kind: str, compact: bool) -> str:
    if kind == "cost":
        return fmt_cost(row["cost_usd"], row["unknown_cost_calls"])
    if kind == "seconds":
        return _secs(row[field])
    if kind == "tokens":
        return (_tokens_compact if compact else _tokens_full)(row[field])
    return _int(row[field])


def _fitted_table(report: dict[str, Any], width: int) -> tuple[Any, list[str]]:
    """The table at ``width``: full numbers if they fit, else compact ones, then minor columns left out."""
    from rich.table import Table

    rows = [*report["groups"], report["total"]]
    dims = report["dimensions"]
    keys = []  # one column per grouping dimension; the total row names itself in the first
    for row in rows:
        values = [str(row.get(d, "")) for d in dims] if len(dims) > 1 and row is not rows[-1] else [str(row["key"])]
        keys.append(values + [""] * (len(dims) - len(values)))
    key_columns = [(dim, [k[i] for k in keys]) for i, dim in enumerate(dims)]

    def layout(compact: bool, dropped: set[str]) -> tuple[list[tuple[str, list[str]]], int]:
        columns = list(key_columns)
        for header, field, kind, _rank in _COLUMNS:
            if header not in dropped:
                columns.append((header, [_cell(r, field, kind, compact) for r in rows]))
        needed = sum(max(len(h), *(len(c) for c in cells)) for h, cells in columns)
        return columns, needed + _COLUMN_GAP * (len(columns) - 1)

    compact, dropped = False, set()
    columns, needed = layout(compact, dropped)
    if needed > width:
        compact = True
        columns, needed = layout(compact, dropped)
    droppable = sorted((rank, header) for header, _f, _k, rank in _COLUMNS if rank is not None)
    for _rank, header in droppable:
        if needed <= width:
            break
        dropped.add(header)
        columns, needed = layout(compact, dropped)

    table = Table(show_edge=False, pad_edge=False)
    for i, (header, _cells) in enumerate(columns):
        table.add_column(header, justify="left" if i < len(dims) else "right", no_wrap=True)
    last_group = len(rows) - 2
    for r in range(len(rows)):
        table.add_row(*(cells[r] for _h, cells in columns), end_section=r == last_group)
    return table, [header for _r, header in droppable if header in dropped]


def _notes(total: dict[str, Any]) -> list[str]:
    """What the table's ``≥``/``?`` costs and the calls that are not errors mean, with the reason for each."""
    notes = []
    unknown = total["unknown_cost_calls"]
    if unknown:
        no_usage = min(total.get("unknown_usage_calls", 0), unknown)
        no_price = unknown - no_usage
        reasons = []
        if no_usage:
            reasons.append(f"{no_usage:,} reported no usage (e.g. cancelled)")
        if no_price:
            reasons.append(
                f"{no_price:,} used a model without a known price (--by model shows which; price it with "
                f"TOKENRATE_PRICES, see {doc_url('docs/cost.md', 'custom-prices-tokenrate_prices')})"
            )
        notes.append(f"≥/?: {unknown:,} call(s) have an unknown cost, not in the cost column: {'; '.join(reasons)}.")
    if total.get("cancelled"):
        notes.append(f"{total['cancelled']:,} call(s) were cancelled by the user (not errors).")
    return notes


def _secs(value: float) -> str:
    if value < 60:
        return f"{value:.1f}s"
    if value < 3600:
        return f"{value / 60:.1f}m"
    return f"{value / 3600:.1f}h"


def render_table(report: dict[str, Any], *, chart: bool = True, width: int | None = None) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(
        file=buffer, width=width or 140, force_terminal=False, color_system=None, highlight=False, markup=False
    )
    since = report["since"] or "the start"
    until = report["until"] or "now"
    console.print(f"tokenrate report: {report['ledger']}")
    where = "".join(f", {key} = {value}" for key, value in report["where"].items())
    console.print(f"calls from {since} to {until} ({report['timezone']}){where}, by {report['by']}")
    total = report["total"]
    if not total["calls"]:
        console.print("no calls recorded in this range.")
    else:
        table, left_out = _fitted_table(report, console.width)
        console.print(table)
        if left_out:
            console.print(f"(left out to fit {console.width} columns: {', '.join(left_out)}; --format json has all)")
        for note in _notes(total):
            console.print(note)
    if report["budgets"]:
        console.print()
        console.print("budgets (from the ledger, all processes):")
        for line in report["budgets"]:
            spent = _usd(line["spent"]) if line["unit"] == "USD" else f"{line['spent']:,.0f} tokens"
            limit = _usd(line["limit"]) if line["unit"] == "USD" else f"{line['limit']:,.0f} tokens"
            scope = f" [{line['scope']}]" if line["scope"] else ""
            console.print(
                f"  {line['name']:<15}{scope} {spent} of {limit} ({line['utilization'] * 100:.0f}%) "
                f"in {line['period_key']}: {line['state']}"
            )
    if chart and total["calls"] and report["trend"]:
        console.print()
        console.print(_chart(report["trend"], report["trend_by"]))
        for scope in report["scope_trends"][:CHART_MAX_SCOPES]:
            console.print()
            console.print(_chart(scope["trend"], report["trend_by"], f"{report['scope']} = {scope['scope']}"))
        hidden = len(report["scope_trends"]) - CHART_MAX_SCOPES
        if hidden > 0:
            console.print(f"({hidden} more {report['scope']} trend(s) in --format json)")
    return buffer.getvalue()


def _chart(trend: list[dict[str, Any]], trend_by: str, scope: str | None = None) -> str:
    """One bar per period: cost when any is known, else tokens (for one scope, when given)."""
    points = trend[-CHART_MAX_BARS:]
    use_cost = any(p["cost_usd"] for p in points)
    values = [p["cost_usd"] if use_cost else (p["total_tokens"] or 0) for p in points]
    top = max(values) if values else 0
    bar_width = 50
    title = f"{'cost' if use_cost else 'tokens'} per {trend_by}"
    if scope is not None:
        title += f", {scope}"
    if len(trend) > CHART_MAX_BARS:
        title += f" (last {CHART_MAX_BARS})"
    lines = [title + ":"]
    for point, value in zip(points, values, strict=True):
        length = 0 if top <= 0 else round(value / top * bar_width)
        bar = "█" * length if length else ("▏" if value > 0 else "")
        label = fmt_cost(value, point.get("unknown_cost_calls", 0)) if use_cost else f"{value:,} tokens"
        lines.append(f"  {point['key']:<10} {bar:<{bar_width}} {label}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        tz = resolve_tz(args.tz)
        since = parse_bound(args.since, tz=tz, end=False) if args.since else None
        until = parse_bound(args.until, tz=tz, end=True) if args.until else None
        if since is not None and until is not None and since >= until:
            raise argparse.ArgumentTypeError(
                f"the range is empty: --since {args.since} ({_iso(since, tz)}) is not before the end of --until "
                f"{args.until} ({_iso(until, tz)}); swap them?"
            )
    except argparse.ArgumentTypeError as exc:
        print(f"tokenrate report: {exc}", file=sys.stderr)
        return 2
    path = resolve_ledger_path(args.ledger)
    try:
        report = build_report(path, by=args.by, since=since, until=until, tz=tz, top=args.top, where=dict(args.where))
    except ReportError as exc:
        print(f"tokenrate report: {exc}", file=sys.stderr)
        return 1
    if args.format == "json":
        sys.stdout.write(render_json(report) + "\n")
    elif args.format == "csv":
        sys.stdout.write(render_csv(report))
    else:
        width = None
        if sys.stdout.isatty():
            width = max(80, os.get_terminal_size().columns)
        sys.stdout.write(render_table(report, chart=not args.no_chart, width=width))
    return 0

"""``tokenrate top``: a live table of every instrumented process that publishes its view on this machine.

Processes publish with ``tokenrate run`` or ``TOKENRATE_PUBLISH=1`` (see `tokenrate.view.publish`); this
command only reads their files, so it needs no server, no port and no OTel backend.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from tokenrate._env import bounded_interval
from tokenrate.cli._args import SECONDS, number
from tokenrate.view import FIGURE_COLUMNS, PublishedProcess, default_state_dir, process_rows, read_published

EMPTY_MESSAGE = (
    "no instrumented processes are publishing (run your program with `tokenrate run` or TOKENRATE_PUBLISH=1)"
)
COLUMNS = ("PID", "program", "model", *FIGURE_COLUMNS)
PLAIN_EVERY_S = 5.0
"""Off a terminal (redirected to a file or a pipe) the default period of the plain lines, as ``tokenrate demo``."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "top",
        help="live TPM, RPM, tokens, cost and throttling of every instrumented process",
        description=(
            "Show a live table of the processes that publish their tokenrate view "
            "(started with `tokenrate run`, or with TOKENRATE_PUBLISH=1)."
        ),
    )
    parser.add_argument(
        "--interval",
        type=SECONDS,
        default=None,
        help=f"seconds between refreshes (default 1 on a terminal; off one, a plain line per process every "
        f"{PLAIN_EVERY_S:g})",
    )
    parser.add_argument("--once", action="store_true", help="print one frame and exit")
    parser.add_argument("--dir", default=None, help=f"state directory (default {default_state_dir()})")
    parser.add_argument(
        "--stale",
        type=number(0.1, 86_400),
        default=5.0,
        help="hide processes that have not published for this many seconds (default 5)",
    )
    parser.add_argument(
        "--by",
        default=None,
        metavar="KEY",
        help="under each process, a row per value of this call attribute (e.g. user.id) instead of per model",
    )
    parser.set_defaults(func=run)


def _program(proc: PublishedProcess) -> str:
    if proc.service and proc.service != proc.program:
        return f"{proc.program} ({proc.service})"
    return proc.program


def frame_rows(processes: list[PublishedProcess], by: str | None = None) -> list[tuple[tuple[str, ...], bool]]:
    """The table's rows as text, each flagged True for a process row (False for one of its models, or of its
    values of the attribute ``by``)."""
    rows: list[tuple[tuple[str, ...], bool]] = []
    for proc in processes:
        for row in process_rows(proc.snapshot, by=by):
            identity = (str(proc.pid), _program(proc)) if row.is_total else ("", "")
            rows.append(((*identity, row.label, *row.cells), row.is_total))
    return rows


def render_frame(processes: list[PublishedProcess], *, interval: float, directory: str, by: str | None = None) -> Any:
    """One frame: the table, or the plain explanation when nobody publishes."""
    from rich import box
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    if not processes:
        return Text(EMPTY_MESSAGE)
    rows = frame_rows(processes, by)
    # "limit" and "budget" only take room when some process has something to say there.
    shown = [i for i in range(len(COLUMNS)) if i < 8 or any(cells[i] not in ("", "-") for cells, _ in rows)]
    table = Table(
        box=box.SIMPLE_HEAD,
        title="tokenrate top",
        caption=(
            f"{len(processes)} process{'es' if len(processes) != 1 else ''} · "
            f"{time.strftime('%H:%M:%S')} · every {interval:g} s · {directory}"
        ),
        header_style="bold",
        pad_edge=False,
        collapse_padding=True,
    )
    for i in shown:
        name = by if i == 2 and by is not None else COLUMNS[i]
        if i == 0 or 3 <= i <= 7:  # pid and figures are never cut
            table.add_column(name, justify="right" if i else "left", no_wrap=True)
        else:  # names fold when the terminal is narrow
            table.add_column(name, overflow="fold", min_width=min(12, len(name) + 4))
    for cells, is_process in rows:
        table.add_row(*(escape(cells[i]) for i in shown), style="bold" if is_process else None)
    return table


def plain_lines(processes: list[PublishedProcess], now: float) -> list[str]:
    """One line per process, for a log or a pipe: ``[12:00:05] 4242 app.py: TPM 2,450 · RPM 12 · …``."""
    from tokenrate.view import format_status

    stamp = time.strftime("%H:%M:%S", time.localtime(now))
    if not processes:
        return [f"[{stamp}] {EMPTY_MESSAGE}"]
    return [f"[{stamp}] {proc.pid} {_program(proc)}: {format_status(proc.snapshot)}" for proc in processes]


def _plain_loop(directory: str, stale: float, interval: float) -> int:
    """Not a terminal: periodic plain lines (a redrawn table means nothing in a file); Ctrl-C ends it."""
    last_empty = False
    try:
        while True:
            processes = read_published(directory, stale_after_s=stale)
            if processes or not last_empty:  # "nobody publishes" once, not every period
                sys.stdout.write("\n".join(plain_lines(processes, time.time())) + "\n")
                sys.stdout.flush()
            last_empty = not processes
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    directory = args.dir if args.dir is not None else str(default_state_dir())
    console = Console()
    interactive = console.is_terminal
    default_interval = 1.0 if interactive or args.once else PLAIN_EVERY_S
    interval = bounded_interval(args.interval if args.interval is not None else default_interval)
    if not interactive and not args.once:
        return _plain_loop(directory, args.stale, interval)
    if not interactive and "COLUMNS" not in os.environ:
        console = Console(width=200)  # piped output: don't squeeze the table into 80 columns

    def frame() -> Any:
        procs = read_published(directory, stale_after_s=args.stale)
        return render_frame(procs, interval=interval, directory=directory, by=args.by)

    if args.once:
        shown = frame()
        console.print(shown, soft_wrap=not hasattr(shown, "columns"))  # the empty message stays one line
        return 0

    from rich.live import Live

    try:
        with Live(frame(), console=console, auto_refresh=False, screen=False) as live:
            while True:
                time.sleep(interval)
                live.update(frame(), refresh=True)
    except KeyboardInterrupt:
        pass
    finally:
        sys.stdout.flush()
    return 0

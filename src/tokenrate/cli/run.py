"""``tokenrate run -- COMMAND ...``: run a program with tokenrate on, a live status line, and a summary at the end.

The program is started the way ``opentelemetry-instrument`` starts it (OTel's ``sitecustomize`` on
``PYTHONPATH``), so tokenrate's entry points enable themselves in every Python process it starts and the user's
own ``OTEL_*`` settings apply. On top of that, ``tokenrate run``:

* turns the usage ledger on (``TOKENRATE_LEDGER``, in the user's data directory) and publishing for
  ``tokenrate top`` (``TOKENRATE_PUBLISH``), unless the environment already says otherwise;
* sets OTel exporters to ``none`` when the user configured none and no OTLP endpoint, so nothing tries to reach
  a collector that is not there (set ``OTEL_EXPORTER_OTLP_ENDPOINT`` to export);
* reads each instrumented process's view from a private directory: ``--status`` draws it on stderr while the
  program runs, and the session summary is printed when it ends;
* exits with the program's exit code.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from tokenrate.cli._args import SECONDS
from tokenrate.runner import child_environment, read_run_dir

_EXPORTER_VARIABLES = ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_LOGS_EXPORTER")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a program with tokenrate on: live status, session summary, ledger",
        description="Run COMMAND with tokenrate's auto-instrumentation on (like opentelemetry-instrument), "
        "then print the session summary. Example: tokenrate run --status -- python app.py",
    )
    parser.add_argument("--status", action="store_true", help="show a live status line on stderr while it runs")
    parser.add_argument(
        "--interval", type=SECONDS, default=1.0, metavar="SECONDS", help="status refresh interval (default 1)"
    )
    parser.add_argument("--no-summary", action="store_true", help="do not print the session summary at the end")
    parser.add_argument("--no-ledger", action="store_true", help="do not write calls to the usage ledger")
    parser.add_argument("--no-publish", action="store_true", help="do not publish for `tokenrate top`")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the program to run, after --")
    parser.set_defaults(func=run)


def module_available(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it (False, not an error, when a parent is missing)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # ModuleNotFoundError for a missing parent package
        return False


def _auto_instrumentation_dir() -> str | None:
    try:
        spec = importlib.util.find_spec("opentelemetry.instrumentation.auto_instrumentation")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return os.path.dirname(os.path.abspath(spec.origin))


def child_env(run_dir: Path, *, ledger: bool, publish: bool, interval: float) -> dict[str, str]:
    """The program's environment: the user's, plus what tokenrate run adds (never overriding the user)."""
    env = dict(os.environ)
    auto_dir = _auto_instrumentation_dir()
    if auto_dir is None:  # a broken install: run the program anyway, without tokenrate
        print(
            "tokenrate run: opentelemetry-instrumentation is not importable here (reinstall tokenrate); "
            "running the program without instrumentation",
            file=sys.stderr,
        )
    else:
        python_path = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != auto_dir]
        if os.getcwd() not in python_path:
            python_path.insert(0, os.getcwd())
        python_path.insert(0, auto_dir)
        env["PYTHONPATH"] = os.pathsep.join(python_path)
    env.update(child_environment(run_dir))
    env["TOKENRATE_RUN_INTERVAL"] = str(interval)
    if publish:
        env.setdefault("TOKENRATE_PUBLISH", "1")
    if ledger and "TOKENRATE_LEDGER" not in env:
        from tokenrate.ledger import default_ledger_path

        env["TOKENRATE_LEDGER"] = os.fspath(default_ledger_path())
    exporting = any(key in env for key in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
    for variable in _EXPORTER_VARIABLES:
        if not exporting:
            env.setdefault(variable, "none")
    # opentelemetry-distro defaults to gRPC; use HTTP when only the HTTP exporter is installed.
    grpc_missing = not module_available("opentelemetry.exporter.otlp.proto.grpc")
    if exporting and "OTEL_EXPORTER_OTLP_PROTOCOL" not in env and grpc_missing:
        env["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf"
    return env


def _resolve(command: list[str]) -> list[str]:
    """``python``/``python3`` means this environment's Python, where tokenrate is installed."""
    if command and command[0] in ("python", "python3"):
        return [sys.executable, *command[1:]]
    return command


def _status_line(run_dir: Path) -> str | None:
    """The busiest process's status, once some process recorded a call (``None`` before that)."""
    from tokenrate.view import format_status

    reports = [r for r in read_run_dir(run_dir) if _recorded_something(r.snapshot)]
    if not reports:
        return None
    busiest = max(reports, key=lambda r: r.snapshot.requests)
    line = format_status(busiest.snapshot)
    if len(reports) > 1:
        line += f" · {len(reports)} processes"
    return line


PLAIN_EVERY_S = 5.0
"""Off a terminal (a log, a pipe) the status is a plain line: the first as soon as a call was recorded, then this
often (or every ``--interval``, if longer)."""
EXIT_NOT_FOUND = 127
EXIT_NOT_EXECUTABLE = 126
"""The shell's exit codes for a command that does not exist / cannot be executed."""


class _StatusWriter:
    """Draws the status line on a terminal (redrawn in place) or as periodic plain lines."""

    def __init__(self, stream: TextIO, interval: float) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.interval = interval
        self.last_plain = -math.inf
        self.width = shutil.get_terminal_size((100, 20)).columns

    def show(self, line: str | None) -> None:
        if line is None:
            return
        if self.tty:
            self.stream.write("\r\x1b[2K" + line[: self.width - 1])
            self.stream.flush()
        elif time.monotonic() - self.last_plain >= max(PLAIN_EVERY_S, self.interval):
            self.last_plain = time.monotonic()
            self.stream.write(f"[tokenrate] {line}\n")
            self.stream.flush()

    def clear(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()


def _recorded_something(snapshot: object) -> bool:
    return bool(snapshot.requests or snapshot.rejected or snapshot.in_flight)  # type: ignore[attr-defined]


def _summaries(run_dir: Path, stream: TextIO) -> None:
    """One summary per process that recorded a call; one line when none did, whatever the reason (one rule)."""
    from tokenrate.view import render_summary

    reports = [r for r in read_run_dir(run_dir) if _recorded_something(r.snapshot)]
    if not reports:
        stream.write(
            "[tokenrate] no instrumented LLM calls were made (is the program using openai, anthropic, "
            "google-genai or boto3's bedrock-runtime from this environment?)\n"
        )
        return
    for report in reports:
        if len(reports) > 1:
            stream.write(f"\n[tokenrate] process {report.pid} ({report.program})\n")
        render_summary(report.snapshot, stream)


def run(args: argparse.Namespace) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        print("tokenrate run: give the program to run after --, e.g. tokenrate run -- python app.py", file=sys.stderr)
        return 2
    command = _resolve(command)
    with tempfile.TemporaryDirectory(prefix="tokenrate-run-") as tmp:
        run_dir = Path(tmp)
        env = child_env(run_dir, ledger=not args.no_ledger, publish=not args.no_publish, interval=args.interval)
        try:
            child = subprocess.Popen(command, env=env)
        except OSError as exc:  # the shell's convention: 127 not found, 126 found but not executable
            missing = isinstance(exc, FileNotFoundError)
            print(f"tokenrate run: cannot start {command[0]!r}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_NOT_FOUND if missing else EXIT_NOT_EXECUTABLE
        status = _StatusWriter(sys.stderr, args.interval) if args.status else None
        # Ctrl-C reaches the whole process group: let the program decide, and wait for it.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            while child.poll() is None:
                if status is not None:
                    status.show(_status_line(run_dir))
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=args.interval)
        finally:
            signal.signal(signal.SIGINT, previous)
            if status is not None:
                status.clear()
        if not args.no_summary:
            _summaries(run_dir, sys.stderr)
    code = child.returncode
    return 128 - code if code < 0 else code

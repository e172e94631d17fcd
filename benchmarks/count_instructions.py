"""Instructions per SDK call (callgrind): bare SDK vs tokenrate vs a peer. Repeatable where CPU time is noisy.

Runs ``_peer_worker.py`` under ``valgrind --tool=callgrind`` twice per contender and workload, with a short and a
long run of the same calls after the same warm-up, and divides the difference of the instruction counts by the
difference of calls: start-up and import costs cancel out. Instruction counts do not depend on what else the
machine is doing (they do not show cache misses or branch mispredictions, so they are a proxy for CPU time, not a
replacement). The workloads: a JSON call, and streams of 200 and 10 chunks (their difference per chunk).

Run: ``.venv/bin/python benchmarks/count_instructions.py [--sdk openai|anthropic] [--peer NAME] [--streams]``
(needs valgrind; the peers' venvs are the ones ``compare_peers.py`` builds). Each run under callgrind takes about a
minute (mostly the imports), so ~6-8 minutes per SDK for JSON calls, three times that with ``--streams``.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from _workload import LONG_STREAM_CHUNKS, SHORT_STREAM_CHUNKS
from compare_peers import CONTENDERS, HERE, REPO, WORKER, python_of

# The best peer per SDK on CPU time in the last full compare_peers run (docs/performance.md), and the floor.
DEFAULT_PEERS = {"openai": ["otel-openai-v2", "floor"], "anthropic": ["anthropic-native", "floor"]}
# (workload, short run, long run): calls after the warm-up.
RUNS = {"json": (20, 220), f"stream{LONG_STREAM_CHUNKS}": (2, 12), f"stream{SHORT_STREAM_CHUNKS}": (10, 60)}


def instructions(python: str, contender: str, sdk: str, workload: str, calls: int) -> int:
    """Instructions callgrind counted for a whole worker run (start-up, warm-up and ``calls`` calls)."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict and set layouts in every run
    if python == sys.executable:
        env["PYTHONPATH"] = str(REPO / "src")
    for variable in ("ANTHROPIC_OPEN_TELEMETRY", "TOKENRATE_ANTHROPIC_SPANS"):
        env.pop(variable, None)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            python,
            str(WORKER),
            contender,
            "--sdk",
            sdk,
            "--count-only",
            workload,
            "--calls",
            str(calls),
        ]
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=HERE)
        if done.returncode != 0:
            raise SystemExit(f"{sdk}/{contender} {workload} failed:\n{done.stderr[-3000:]}")
        match = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
        if match is None:
            summary = next(line for line in out.read_text().splitlines() if line.startswith(("summary:", "totals:")))
            return int(summary.split()[1])
        return int(match.group(1))


def per_call(python: str, contender: str, sdk: str, workload: str) -> float:
    short, long = RUNS[workload]
    low = instructions(python, contender, sdk, workload, short)
    high = instructions(python, contender, sdk, workload, long)
    return (high - low) / (long - short)


@functools.cache
def counts(python: str, name: str, sdk: str, streams: bool) -> tuple[float, float, float]:
    """Instructions per JSON call, per long stream and per short stream (bare runs are shared within a venv)."""
    if not streams:
        return per_call(python, name, sdk, "json"), 0.0, 0.0
    return (
        per_call(python, name, sdk, "json"),
        per_call(python, name, sdk, f"stream{LONG_STREAM_CHUNKS}"),
        per_call(python, name, sdk, f"stream{SHORT_STREAM_CHUNKS}"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdk", choices=["openai", "anthropic"], action="append", help="default: both")
    parser.add_argument("--peer", action="append", help="a peer to count too (default: the best one per SDK)")
    parser.add_argument("--streams", action="store_true", help="per streamed chunk too (4 more runs per contender)")
    args = parser.parse_args()

    print("| SDK | instrumentation | instructions per JSON call | added | added per streamed chunk |")
    print("|---|---|---|---|---|")
    for sdk in args.sdk or ["openai", "anthropic"]:
        peers = [p for p in (args.peer or DEFAULT_PEERS[sdk]) if any(c.sdk == sdk and c.name == p for c in CONTENDERS)]
        names = ["tokenrate", *peers]
        contenders = [next(c for c in CONTENDERS if c.sdk == sdk and c.name == name) for name in names]
        for contender in contenders:
            python = python_of(contender, rebuild=False)
            bare = counts(python, "bare", sdk, args.streams)
            mine = counts(python, contender.name, sdk, args.streams)
            chunk = ((mine[1] - bare[1]) - (mine[2] - bare[2])) / (LONG_STREAM_CHUNKS - SHORT_STREAM_CHUNKS)
            print(
                f"| {sdk} | {contender.label} | {mine[0]:,.0f} (bare {bare[0]:,.0f}) | {mine[0] - bare[0]:+,.0f} "
                f"| {f'{chunk:+,.0f}' if args.streams else '(not counted: --streams)'} |",
                flush=True,
            )


if __name__ == "__main__":
    main()

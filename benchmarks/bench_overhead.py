"""What tokenrate adds to each openai and anthropic SDK call: CPU per call and per chunk, memory over a long session.

The same harness as ``compare_peers.py`` without the peers (so no venv to build): the real SDKs over an in-process
mock transport (``_workload.py``), each measurement in a process of its own (``_peer_worker.py``), interleaved
rounds in which tokenrate runs next to a bare-SDK process, process CPU time, medians over rounds. Scenarios:

* ``tokenrate``         — tokenrate's defaults (telemetry, view, cost) with an OTel SDK MeterProvider (in-memory
  reader) and TracerProvider (a processor that drops spans) installed, as in ``compare_peers.py``;
* ``tokenrate-no-sdk``  — tokenrate on, no OTel SDK installed (the API's no-op providers): the view and cost only.

Then memory over a 20k-call session (a 10-chunk stream every 4th call, the rest JSON calls; after 1k warm-up
calls), tokenrate with the OTel SDK and the view on, next to the bare SDK: tracemalloc growth per call, and the
process's RSS before and after (a separate pass without tracemalloc). Prints figures only, asserts nothing.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_overhead.py [--rounds N] [--memory-calls N]``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time

from compare_peers import FULL, Contender, package_versions, report, run_rounds, run_worker

SCENARIOS = tuple(
    contender
    for sdk in ("openai", "anthropic")
    for contender in (
        Contender("tokenrate", sdk, None, "**tokenrate** (defaults, OTel SDK installed)", "tokenrate"),
        Contender(
            "tokenrate-no-sdk", sdk, None, "tokenrate, no OTel SDK (view and cost)", "tokenrate", records_otel=False
        ),
    )
)


def memory(sdk: str, calls: int) -> None:
    print(f"| {sdk} | ", end="", flush=True)
    cells = []
    for name in ("bare", "tokenrate"):
        result = run_worker(sys.executable, name, sdk, None, memory_window=calls)
        window = result["memory_window"]
        cells.append(
            f"{window['tracemalloc_b_per_call']:.2f} | {window['rss_before_kib'] / 1024:.1f} → "
            f"{window['rss_after_kib'] / 1024:.1f} MiB"
        )
    print(" | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=FULL.rounds, help=f"timing rounds (default {FULL.rounds})")
    parser.add_argument("--memory-calls", type=int, default=20_000, help="calls in the memory window (default 20k)")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()

    started = time.monotonic()
    settings = dataclasses.replace(FULL, rounds=args.rounds, memory_calls=2000)
    contenders = list(SCENARIOS)
    pythons = {c.key: sys.executable for c in contenders}
    found = package_versions(contenders, pythons)
    results, first = run_rounds(contenders, settings, pythons)
    report(contenders, settings, results, first, found)
    if not args.skip_memory:
        print(
            f"\n## Memory over {args.memory_calls:,} calls (after 1,000 warm-up calls; every 4th a 10-chunk stream)\n"
        )
        print(
            "| SDK | bare: tracemalloc growth, B/call | bare: RSS | tokenrate: tracemalloc growth, B/call "
            "| tokenrate: RSS |"
        )
        print("|---|---|---|---|---|")
        for sdk in ("openai", "anthropic"):
            memory(sdk, args.memory_calls)
    print(f"\n({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()

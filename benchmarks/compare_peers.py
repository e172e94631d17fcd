"""tokenrate next to the other GenAI instrumentations: CPU and memory each adds to an SDK call. Prints figures.

Each contender (tokenrate from this working tree, and each peer from its own throwaway venv under
``~/.cache/tokenrate-bench/``, built on first use with the same ``openai``/``anthropic`` versions as this
interpreter) drives the real SDK over an in-process mock transport (``_workload.py``) with an OTel SDK
``MeterProvider`` and ``TracerProvider`` installed, in a process of its own (``_peer_worker.py``), with its
defaults. Rounds are interleaved: in every round each contender runs next to a bare-SDK process from the same venv
(which goes first alternates), and what it adds is its time minus that bare run's. The table gives the median over
rounds and the spread (lowest…highest round). ``floor`` is a hand-written reference: one span and the two semconv
histograms per call, nothing else (the part no instrumentation that follows the semconv can avoid).
``floor-output`` is tokenrate's own output alone, hand-written: its span with the same attributes, current while the
SDK works and written by the propagator, and its four histogram records with the same attribute sets; no hooks,
parsing, view or cost (what the OTel SDK charges any instrumentation for that output).

* per call: a JSON (non-streamed) call;
* per chunk: (added per 200-chunk stream - added per 10-chunk stream) / 190;
* memory: tracemalloc growth per JSON call over ``--memory-calls`` calls (first round only).

The anthropic SDK traces its calls itself once a TracerProvider is installed; that stays on for tokenrate (which
puts its own span in place of the SDK's) and for ``anthropic-native``, and is off for the bare SDK and the other
peers, so each of those is measured for its own work alone.

Run: ``make bench-peers`` or ``.venv/bin/python benchmarks/compare_peers.py [--quick] [--sdk openai|anthropic]
[--only NAME] [--rounds N] [--rebuild] [--list]``. About 10 minutes in full on 2 cores; ``--quick`` about 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _peer_venvs import OTEL_SDK, PEER_VENVS, SHARED, ensure, versions
from _workload import LONG_STREAM_CHUNKS, SHORT_STREAM_CHUNKS

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKER = HERE / "_peer_worker.py"
# The tokenrate the tokenrate contenders import (``--src``: another checkout's, to compare two trees).
tokenrate_src = REPO / "src"


@dataclasses.dataclass(frozen=True)
class Contender:
    name: str
    sdk: str
    venv: str | None  # a key of PEER_VENVS; None: this interpreter (tokenrate's venv)
    label: str
    package: str | None = None  # whose version the table states
    records_otel: bool = True  # False: expected to record no span and no metric (no OTel SDK installed)

    @property
    def key(self) -> str:
        return f"{self.sdk}/{self.name}"


OUTPUT_FLOOR = "tokenrate's telemetry output alone: its span and histogram records, hand-written (reference)"
CONTENDERS = (
    Contender("tokenrate", "openai", None, "**tokenrate** (working tree, defaults)", "tokenrate"),
    Contender(
        "otel-openai-v2", "openai", "otel-openai-v2", "OTel contrib openai-v2", PEER_VENVS["otel-openai-v2"].packages[0]
    ),
    Contender("otel-genai", "openai", "otel-genai", "OTel genai-openai", "opentelemetry-instrumentation-genai-openai"),
    Contender("openllmetry", "openai", "openllmetry", "OpenLLMetry openai", "opentelemetry-instrumentation-openai"),
    Contender(
        "openinference", "openai", "openinference", "OpenInference openai", "openinference-instrumentation-openai"
    ),
    Contender("floor", "openai", None, "floor: one span + the semconv histograms (hand-written reference)"),
    Contender("floor-output", "openai", None, OUTPUT_FLOOR),
    Contender("tokenrate", "anthropic", None, "**tokenrate** (working tree, defaults)", "tokenrate"),
    Contender(
        "tokenrate-native-spans",
        "anthropic",
        None,
        "tokenrate, TOKENRATE_ANTHROPIC_SPANS=native",
        "tokenrate",
    ),
    Contender("anthropic-native", "anthropic", None, "anthropic SDK's own tracing", "anthropic"),
    Contender(
        "otel-genai", "anthropic", "otel-genai", "OTel genai-anthropic", "opentelemetry-instrumentation-genai-anthropic"
    ),
    Contender(
        "openllmetry", "anthropic", "openllmetry", "OpenLLMetry anthropic", "opentelemetry-instrumentation-anthropic"
    ),
    Contender(
        "openinference",
        "anthropic",
        "openinference",
        "OpenInference anthropic",
        "openinference-instrumentation-anthropic",
    ),
    Contender("floor", "anthropic", None, "floor: one span + the semconv histograms (hand-written reference)"),
    Contender("floor-output", "anthropic", None, OUTPUT_FLOOR),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    rounds: int
    batches: int
    json_calls: int
    long_streams: int
    short_streams: int
    memory_calls: int


FULL = Settings(rounds=5, batches=5, json_calls=200, long_streams=12, short_streams=40, memory_calls=1000)
QUICK = Settings(rounds=2, batches=3, json_calls=100, long_streams=4, short_streams=20, memory_calls=300)


def python_of(contender: Contender, rebuild: bool) -> str:
    if contender.venv is None:
        return sys.executable
    return str(ensure(PEER_VENVS[contender.venv], rebuild=rebuild))


def run_worker(
    python: str, name: str, sdk: str, settings: Settings | None, *, memory: bool = False, memory_window: int = 0
) -> dict:
    """One worker process's JSON result; ``settings=None``: no timing (only the ``memory_window``, if any)."""
    env = {**os.environ, "PYTHONPATH": str(tokenrate_src)} if python == sys.executable else dict(os.environ)
    for variable in ("ANTHROPIC_OPEN_TELEMETRY", "TOKENRATE_ANTHROPIC_SPANS"):
        env.pop(variable, None)  # the worker sets what each contender needs
    command = [python, str(WORKER), name, "--sdk", sdk]
    if settings is None:
        command += ["--batches", "0"]
    else:
        command += ["--batches", str(settings.batches), "--json-calls", str(settings.json_calls)]
        command += ["--long-streams", str(settings.long_streams), "--short-streams", str(settings.short_streams)]
        command += ["--memory-calls", str(settings.memory_calls if memory else 0)]
    if memory_window:
        command += ["--memory-window", str(memory_window)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=HERE)
    if done.returncode != 0:
        raise SystemExit(f"{sdk}/{name} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _added(contender: dict, bare: dict) -> dict[str, float]:
    added_long = contender["long_us"] - bare["long_us"]
    added_short = contender["short_us"] - bare["short_us"]
    return {
        "call": contender["json_us"] - bare["json_us"],
        "ratio": contender["json_us"] / bare["json_us"],
        "chunk": (added_long - added_short) / (LONG_STREAM_CHUNKS - SHORT_STREAM_CHUNKS),
        "stream": added_long,
        "bare_call": bare["json_us"],
        "bare_chunk": (bare["long_us"] - bare["short_us"]) / (LONG_STREAM_CHUNKS - SHORT_STREAM_CHUNKS),
    }


def _spread(values: list[float], digits: int = 0) -> str:
    median = statistics.median(values)
    if len(values) < 2:
        return f"{median:+.{digits}f}"
    return f"{median:+.{digits}f} ({min(values):+.{digits}f}…{max(values):+.{digits}f})"


def table(contenders: list[Contender], results: dict[str, list[dict]], first: dict[str, dict], names: dict) -> str:
    lines = [
        "| SDK | instrumentation | version | spans/call (attributes) | metric instruments | added CPU per call, µs "
        "| ratio to bare "
        "| added per streamed chunk, µs | added per 200-chunk stream, µs | memory, B/call (bare) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for contender in contenders:
        rounds = results[contender.key]
        worker = first[contender.key]
        memory = worker.get("memory_b_per_call")
        bare_memory = first[contender.key + "/bare"].get("memory_b_per_call")
        memory_text = "" if memory is None else f"{memory:.0f} ({bare_memory:.0f})"
        lines.append(
            f"| {contender.sdk} | {contender.label} | {names.get(contender.key) or '—'} "
            f"| {worker['spans_per_call']} ({worker.get('span_attributes', 0)}) "
            f"| {len(worker['metrics'])} | {_spread([r['call'] for r in rounds])} "
            f"| {statistics.median(r['ratio'] for r in rounds):.2f}× | {_spread([r['chunk'] for r in rounds], 1)} "
            f"| {_spread([r['stream'] for r in rounds])} | {memory_text} |"
        )
    return "\n".join(lines)


def run_rounds(contenders: list[Contender], settings: Settings, pythons: dict[str, str]) -> tuple[dict, dict]:
    """Interleaved paired rounds: what each contender adds per round, and the first round's raw worker results."""
    started = time.monotonic()
    results: dict[str, list[dict]] = {c.key: [] for c in contenders}
    first: dict[str, dict] = {}
    for round_index in range(settings.rounds):
        # Rotate the order every round, so no contender always runs right after the same neighbour.
        shift = round_index % len(contenders)
        for position, contender in enumerate(contenders[shift:] + contenders[:shift]):
            python = pythons[contender.key]
            memory = round_index == 0
            runs = {}
            order = ("bare", contender.name) if (round_index + position) % 2 == 0 else (contender.name, "bare")
            for name in order:
                runs[name] = run_worker(python, name, contender.sdk, settings, memory=memory)
            if memory:
                first[contender.key] = runs[contender.name]
                first[contender.key + "/bare"] = runs["bare"]
            recorded = runs[contender.name]["spans_per_call"] or runs[contender.name]["metrics"]
            if contender.records_otel and not recorded:
                raise SystemExit(f"{contender.key} recorded nothing: is it instrumenting at all?")
            results[contender.key].append(_added(runs[contender.name], runs["bare"]))
        print(f"round {round_index + 1}/{settings.rounds} done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
    return results, first


def package_versions(contenders: list[Contender], pythons: dict[str, str]) -> dict[str, dict[str, str]]:
    """Per contender: its own package's version first, then the shared SDKs' and the OTel SDK's."""
    found_by_key = {}
    for contender in contenders:
        wanted = [p for p in (contender.package, *SHARED, *OTEL_SDK) if p]
        found = versions(pythons[contender.key], wanted)
        if contender.package == "tokenrate":
            found.setdefault("tokenrate", "working tree")
        found_by_key[contender.key] = found
    return found_by_key


def report(
    contenders: list[Contender],
    settings: Settings,
    results: dict[str, list[dict]],
    first: dict[str, dict],
    found: dict[str, dict[str, str]],
) -> None:
    """Print the table, the bare SDKs' own figures (the noise floor), the settings, the machine and the versions."""
    names = {c.key: found[c.key].get(c.package or "", "") for c in contenders}
    print(f"## Added CPU per SDK call ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)\n")
    print(table(contenders, results, first, names))
    print()
    for sdk in ("openai", "anthropic"):
        bare = [r for c in contenders if c.sdk == sdk for r in results[c.key]]
        if bare:
            calls = [r["bare_call"] for r in bare]
            chunks = [r["bare_chunk"] for r in bare]
            print(
                f"- bare {sdk} SDK: {statistics.median(calls):.0f} µs per JSON call "
                f"({min(calls):.0f}…{max(calls):.0f} over all bare runs), {statistics.median(chunks):.1f} µs per chunk "
                f"({min(chunks):.1f}…{max(chunks):.1f})"
            )
    collections = [
        f"{c.label.replace('**', '')} {first[c.key]['collect_ms']:.1f} ms ({first[c.key]['points']} points)"
        for c in contenders
        if first[c.key].get("points")
    ]
    if collections:
        print(
            "- CPU of one metric collection after the first round (a periodic reader collects once per export "
            "interval, 60 s by default; work deferred to collection is paid there): " + "; ".join(collections)
        )
    print(
        f"- {settings.rounds} rounds; per process {settings.batches} batches of {settings.json_calls} JSON calls, "
        f"{settings.long_streams} streams of {LONG_STREAM_CHUNKS} chunks and {settings.short_streams} of "
        f"{SHORT_STREAM_CHUNKS} (median batch); memory over {settings.memory_calls} JSON calls after 200 warm-up "
        "calls (first round); figures in parentheses: lowest…highest round"
    )
    print(f"- Python {platform.python_version()}, {os.cpu_count()} CPUs ({cpu_model()})")
    print("- versions:")
    for contender in contenders:
        print(f"  - {contender.key}: " + ", ".join(f"{k} {v}" for k, v in found[contender.key].items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and calls (a rough look, ~3 min)")
    parser.add_argument("--sdk", choices=["openai", "anthropic"], help="only this SDK's contenders")
    parser.add_argument("--only", action="append", metavar="NAME", help="only this contender (repeatable)")
    parser.add_argument("--rounds", type=int, help="rounds (default 5, --quick 2)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the peers' venvs")
    parser.add_argument("--list", action="store_true", help="list the contenders and exit")
    parser.add_argument("--src", type=Path, help="the tokenrate source tree to measure (default: this checkout's)")
    args = parser.parse_args()

    if args.list:
        for contender in CONTENDERS:
            print(f"{contender.sdk:<10} {contender.name:<24} {contender.label}")
        return
    if args.src:
        global tokenrate_src
        tokenrate_src = args.src.resolve()
    settings = QUICK if args.quick else FULL
    if args.rounds:
        settings = dataclasses.replace(settings, rounds=args.rounds)
    contenders = [c for c in CONTENDERS if (args.sdk in (None, c.sdk)) and (not args.only or c.name in args.only)]
    if not contenders:
        raise SystemExit("no contender matches (see --list)")

    started = time.monotonic()
    pythons = {c.key: python_of(c, args.rebuild) for c in contenders}
    found = package_versions(contenders, pythons)
    results, first = run_rounds(contenders, settings, pythons)
    report(contenders, settings, results, first, found)
    print(f"\n({time.monotonic() - started:.0f} s)")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()

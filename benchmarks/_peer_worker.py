"""One contender of the peer benchmark, in its own process: set up, measure, print one JSON line.

Run by ``compare_peers.py`` with the interpreter of the contender's venv (``benchmarks/`` on ``sys.path`` for
``_workload``). Every contender, the bare SDK included, runs with an OTel SDK ``MeterProvider`` (an in-memory
reader, collected only at the end) and ``TracerProvider`` (a span processor that only counts) set as the global
providers, so an instrumentation pays for making its spans and measurements, not for exporting them.

Times are process CPU time (``time.process_time``), batch by batch, interleaving JSON calls, long streams and short
streams; the process reports the median batch of each kind. Memory: tracemalloc growth over ``--memory-calls``
JSON calls after a warm-up, divided by the calls.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from _workload import LONG_STREAM_CHUNKS, SHORT_STREAM_CHUNKS, Workload
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider


class CountingSpanProcessor(SpanProcessor):
    """Counts ended spans (and the last one's attributes) and drops them: the cheapest processor, for everyone."""

    def __init__(self) -> None:
        self.ended = 0
        self.last_attributes = 0

    def on_end(self, span: Any) -> None:
        self.ended += 1
        self.last_attributes = len(span.attributes or ())


def _instrument_tokenrate(sdk: str) -> None:
    import tokenrate

    tokenrate.instrument([sdk])


def _instrument_floor(sdk: str) -> None:
    """The irreducible part of any GenAI instrumentation, hand-written: one CLIENT span with the semconv attributes
    a chat call needs (set once, at the end) and the two semconv histograms (input and output tokens, duration).

    No context made current, no propagation, no retries, no rate limits, no view or cost: a floor to read the
    others against, not an instrumentation anyone should use.
    """
    from opentelemetry.trace import SpanKind

    tracer = trace.get_tracer("floor")
    meter = metrics.get_meter("floor")
    token_usage = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    if sdk == "openai":
        from openai.resources.chat.completions import Completions as owner

        read_input, read_output = "prompt_tokens", "completion_tokens"
    else:
        from anthropic.resources.messages import Messages as owner

        read_input, read_output = "input_tokens", "output_tokens"
    create = owner.create
    metric_attributes = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": sdk, "server.address": "bench"}
    input_attributes = {**metric_attributes, "gen_ai.token.type": "input"}
    output_attributes = {**metric_attributes, "gen_ai.token.type": "output"}

    def finish(span: Any, started: float, model: str, response_model: str, usage: dict[str, int]) -> None:
        span.set_attributes(
            {
                **metric_attributes,
                "gen_ai.request.model": model,
                "gen_ai.response.model": response_model,
                "gen_ai.usage.input_tokens": usage.get("input", 0),
                "gen_ai.usage.output_tokens": usage.get("output", 0),
            }
        )
        span.end()
        duration.record(time.perf_counter() - started, metric_attributes)
        token_usage.record(usage.get("input", 0), input_attributes)
        token_usage.record(usage.get("output", 0), output_attributes)

    def read(usage: Any, into: dict[str, int]) -> None:
        if usage is not None:
            if getattr(usage, read_input, None) is not None:
                into["input"] = getattr(usage, read_input)
            if getattr(usage, read_output, None) is not None:
                into["output"] = getattr(usage, read_output)

    def stream(chunks: Any, span: Any, started: float, model: str) -> Any:
        usage: dict[str, int] = {}
        response_model = model
        for chunk in chunks:
            found = getattr(chunk, "usage", None)
            if found is None and sdk == "anthropic" and chunk.type == "message_start":
                found = chunk.message.usage
            read(found, usage)
            yield chunk
        finish(span, started, model, response_model, usage)

    def instrumented(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        model = kwargs.get("model", "")
        span = tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT)
        result = create(self, *args, **kwargs)
        if kwargs.get("stream"):
            return stream(result, span, started, model)
        usage: dict[str, int] = {}
        read(result.usage, usage)
        finish(span, started, model, result.model, usage)
        return result

    owner.create = instrumented


def _instrument_output_floor(sdk: str) -> None:
    """tokenrate's telemetry output alone, hand-written: the OTel calls tokenrate's documented output takes and
    nothing else. The same CLIENT span (its six attributes at the start, the rest at the end: response model,
    usage by type, status, cost, every rate-limit window's limit/remaining/reset), current while the SDK works and
    written into a carrier by the global propagator, then the same four histogram records with the same attribute
    sets (duration, input and output tokens, retries per call). No hooks, header parsing, view, cost, counters or
    gauges (those are read at collection): what any instrumentation emitting that output pays the OTel SDK.
    """
    from opentelemetry import context as otel_context
    from opentelemetry import propagate
    from opentelemetry.trace import SpanKind

    tracer = trace.get_tracer("floor-output")
    meter = metrics.get_meter("floor-output")
    token_usage = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")
    duration = meter.create_histogram("gen_ai.client.operation.duration", unit="s")
    retries = meter.create_histogram("tokenrate.call.retries", unit="{retry}")
    if sdk == "openai":
        from openai.resources.chat.completions import Completions as owner

        windows = ("requests", "tokens")
        usage_fields = {
            "gen_ai.usage.input_tokens": ("prompt_tokens",),
            "gen_ai.usage.output_tokens": ("completion_tokens",),
            "gen_ai.usage.cache_read.input_tokens": ("prompt_tokens_details", "cached_tokens"),
            "gen_ai.usage.reasoning.output_tokens": ("completion_tokens_details", "reasoning_tokens"),
        }
    else:
        from anthropic.resources.messages import Messages as owner

        windows = ("requests", "tokens", "input_tokens", "output_tokens")
        usage_fields = {
            "gen_ai.usage.input_tokens": ("input_tokens",),
            "gen_ai.usage.output_tokens": ("output_tokens",),
            "gen_ai.usage.cache_read.input_tokens": ("cache_read_input_tokens",),
            "gen_ai.usage.cache_creation.input_tokens": ("cache_creation_input_tokens",),
        }
    create = owner.create
    base = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": sdk,
        "gen_ai.request.model": "",
        "server.address": "bench.invalid",
        "server.port": 80,
    }

    def dig(usage: Any, path: tuple[str, ...]) -> Any:
        for name in path:
            usage = getattr(usage, name, None)
        return usage

    def finish(span: Any, started: float, model: str, response_model: str, usage: Any) -> None:
        ended = {**base, "gen_ai.request.model": model, "gen_ai.response.model": response_model}
        attributes: dict[str, Any] = {"gen_ai.response.model": response_model}
        for name, path in usage_fields.items():
            value = dig(usage, path)
            if value is not None:
                attributes[name] = value
        attributes["http.response.status_code"] = 200
        attributes["tokenrate.usage.cost_usd"] = 0.0001
        for window in windows:
            attributes[f"tokenrate.ratelimit.{window}.limit"] = 10000.0
            attributes[f"tokenrate.ratelimit.{window}.remaining"] = 9999.0
            attributes[f"tokenrate.ratelimit.{window}.reset"] = 0.5
        span.set_attributes(attributes)
        span.end()
        duration.record(time.perf_counter() - started, ended)
        token_usage.record(attributes.get("gen_ai.usage.input_tokens", 0), {**ended, "gen_ai.token.type": "input"})
        token_usage.record(attributes.get("gen_ai.usage.output_tokens", 0), {**ended, "gen_ai.token.type": "output"})
        retries.record(0, ended)

    def stream(chunks: Any, span: Any, started: float, model: str) -> Any:
        usage = None
        for chunk in chunks:
            found = getattr(chunk, "usage", None)
            if found is None and sdk == "anthropic" and chunk.type == "message_start":
                found = chunk.message.usage
            if found is not None:
                usage = found
            yield chunk
        finish(span, started, model, model, usage)

    def instrumented(self: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        model = kwargs.get("model", "")
        span = tracer.start_span(
            f"chat {model}",
            kind=SpanKind.CLIENT,
            attributes={**base, "gen_ai.request.model": model, "gen_ai.request.stream": bool(kwargs.get("stream"))},
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            propagate.inject({})  # what writing the span into the request's headers costs the propagator
            result = create(self, *args, **kwargs)
        finally:
            otel_context.detach(token)
        if kwargs.get("stream"):
            return stream(result, span, started, model)
        finish(span, started, model, result.model, result.usage)
        return result

    owner.create = instrumented


def _instrument_with(module: str, class_name: str) -> Callable[[str], None]:
    def instrument(sdk: str) -> None:
        import importlib

        getattr(importlib.import_module(module), class_name)().instrument()

    return instrument


# (contender, sdk) -> how to instrument; None = nothing to do (the bare SDK, or the SDK's own tracing).
SETUPS: dict[tuple[str, str], Callable[[str], None] | None] = {
    ("bare", "openai"): None,
    ("bare", "anthropic"): None,
    ("tokenrate", "openai"): _instrument_tokenrate,
    ("tokenrate", "anthropic"): _instrument_tokenrate,
    ("tokenrate-native-spans", "anthropic"): _instrument_tokenrate,
    ("tokenrate-no-sdk", "openai"): _instrument_tokenrate,
    ("tokenrate-no-sdk", "anthropic"): _instrument_tokenrate,
    ("anthropic-native", "anthropic"): None,
    ("floor", "openai"): _instrument_floor,
    ("floor", "anthropic"): _instrument_floor,
    ("floor-output", "openai"): _instrument_output_floor,
    ("floor-output", "anthropic"): _instrument_output_floor,
    ("otel-openai-v2", "openai"): _instrument_with("opentelemetry.instrumentation.openai_v2", "OpenAIInstrumentor"),
    ("otel-genai", "openai"): _instrument_with("opentelemetry.instrumentation.genai.openai", "OpenAIInstrumentor"),
    ("otel-genai", "anthropic"): _instrument_with(
        "opentelemetry.instrumentation.genai.anthropic", "AnthropicInstrumentor"
    ),
    ("openllmetry", "openai"): _instrument_with("opentelemetry.instrumentation.openai", "OpenAIInstrumentor"),
    ("openllmetry", "anthropic"): _instrument_with("opentelemetry.instrumentation.anthropic", "AnthropicInstrumentor"),
    ("openinference", "openai"): _instrument_with("openinference.instrumentation.openai", "OpenAIInstrumentor"),
    ("openinference", "anthropic"): _instrument_with(
        "openinference.instrumentation.anthropic", "AnthropicInstrumentor"
    ),
}

# The anthropic SDK traces every call itself once a recording TracerProvider is global. Only the contenders that
# are about that tracing keep it on: for the bare SDK and the other instrumentations it is off, so each peer is
# measured for its own work alone (with the SDK's default, a peer's user would pay for both spans).
KEEPS_ANTHROPIC_TRACING = {"anthropic-native", "tokenrate", "tokenrate-native-spans", "tokenrate-no-sdk"}
# Contenders run with the OTel API's no-op providers (no SDK installed): what tokenrate costs on its own.
WITHOUT_OTEL_SDK = {"tokenrate-no-sdk"}


def set_up(contender: str, sdk: str) -> tuple[CountingSpanProcessor, InMemoryMetricReader | None]:
    if sdk == "anthropic" and contender not in KEEPS_ANTHROPIC_TRACING:
        os.environ["ANTHROPIC_OPEN_TELEMETRY"] = "false"
    if contender == "tokenrate-native-spans":
        os.environ["TOKENRATE_ANTHROPIC_SPANS"] = "native"
    spans = CountingSpanProcessor()
    reader = None
    if contender not in WITHOUT_OTEL_SDK:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(spans)
        trace.set_tracer_provider(tracer_provider)
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    setup = SETUPS[(contender, sdk)]
    if setup is not None:
        setup(sdk)
    return spans, reader


def _per_call_us(call: Callable[[], Any], count: int) -> float:
    began = time.process_time()
    for _ in range(count):
        call()
    return (time.process_time() - began) / count * 1e6


def measure(work: Workload, *, batches: int, json_calls: int, long_streams: int, short_streams: int) -> dict:
    """Median over batches of CPU µs per JSON call, per long stream and per short stream."""

    def long_stream() -> None:
        work.stream_call(LONG_STREAM_CHUNKS)

    def short_stream() -> None:
        work.stream_call(SHORT_STREAM_CHUNKS)

    for _ in range(max(20, json_calls // 5)):
        work.json_call()
    for _ in range(3):
        long_stream()
        short_stream()
    json_us, long_us, short_us = [], [], []
    for _ in range(batches):
        json_us.append(_per_call_us(work.json_call, json_calls))
        long_us.append(_per_call_us(long_stream, long_streams))
        short_us.append(_per_call_us(short_stream, short_streams))
    return {
        "json_us": statistics.median(json_us),
        "long_us": statistics.median(long_us),
        "short_us": statistics.median(short_us),
    }


def memory_per_call(work: Workload, calls: int) -> float:
    """tracemalloc growth over ``calls`` JSON calls after a warm-up, in bytes per call."""
    for _ in range(200):
        work.json_call()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(calls):
        work.json_call()
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename")) / calls


def _rss_kib() -> float:
    """The process's resident set now (Linux ``/proc``), in KiB; the peak (``ru_maxrss``) elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024
    except OSError:
        import resource

        return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def memory_window(work: Workload, calls: int) -> dict[str, float]:
    """A long session (a short stream every 4th call, the rest JSON calls) after 1,000 warm-up calls: the RSS before
    and after it, then tracemalloc growth per call over a second session of the same length."""

    def session(length: int) -> None:
        for i in range(length):
            if i % 4 == 0:
                work.stream_call(SHORT_STREAM_CHUNKS)
            else:
                work.json_call()

    session(1000)
    gc.collect()
    rss_before = _rss_kib()
    session(calls)
    gc.collect()
    rss_after = _rss_kib()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    session(calls)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return {"tracemalloc_b_per_call": growth / calls, "rss_before_kib": rss_before, "rss_after_kib": rss_after}


def count_only(work: Workload, workload: str, calls: int) -> None:
    """For callgrind: a fixed warm-up, then ``calls`` calls of one workload (``json`` or ``stream<N>``), untimed."""

    def call() -> None:
        if workload == "json":
            work.json_call()
        else:
            work.stream_call(int(workload.removeprefix("stream")))

    for _ in range(20):
        call()
    for _ in range(calls):
        call()


def _package(filename: str) -> str:
    """Which package a profiled function's file belongs to (``tokenrate.telemetry``, ``opentelemetry.sdk``, ...)."""
    parts = filename.replace("\\", "/").split("/")
    for anchor, depth in (("tokenrate", 2), ("opentelemetry", 2), ("openinference", 2)):
        if anchor in parts:
            index = len(parts) - 1 - parts[::-1].index(anchor)
            return ".".join(p.removesuffix(".py") for p in parts[index : index + depth])
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    return "(stdlib and builtins)" if filename.startswith(("<", "~")) or "python3" in filename else filename


def profile(work: Workload, calls: int, out: str) -> None:
    """cProfile of ``calls`` JSON calls, then of ``calls // 10`` long streams: own time by package, top functions."""
    with open(out, "w") as f:
        for title, call, count in (
            ("JSON calls", work.json_call, calls),
            (f"streams of {LONG_STREAM_CHUNKS} chunks", lambda: work.stream_call(LONG_STREAM_CHUNKS), calls // 10),
        ):
            profiler = cProfile.Profile(time.thread_time)  # CPU time: what other processes do does not count
            profiler.enable()
            for _ in range(count):
                call()
            profiler.disable()
            stats = pstats.Stats(profiler)
            by_package: dict[str, float] = {}
            for (filename, _, _), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
                by_package[_package(filename)] = by_package.get(_package(filename), 0.0) + own
            total = sum(by_package.values())
            f.write(f"== {count} {title} (profiled, thread CPU time: inflated by the profiler; compare shares)\n")
            f.write(f"own time by package, µs per call (total {total / count * 1e6:.0f}):\n")
            for package, own in sorted(by_package.items(), key=lambda item: -item[1]):
                f.write(f"  {own / count * 1e6:9.1f}  {own / total:6.1%}  {package}\n")
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(50)
            f.write(text.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("contender")
    parser.add_argument("--sdk", required=True, choices=["openai", "anthropic"])
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--json-calls", type=int, default=200)
    parser.add_argument("--long-streams", type=int, default=10)
    parser.add_argument("--short-streams", type=int, default=40)
    parser.add_argument("--memory-calls", type=int, default=0, help="0: skip the memory measurement")
    parser.add_argument("--memory-window", type=int, default=0, help="calls in a long-session memory window (0: none)")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the calls instead of timing them")
    parser.add_argument("--count-only", metavar="WORKLOAD", help="json or stream<N>: run --calls calls, untimed")
    parser.add_argument("--calls", type=int, default=100, help="calls for --count-only")
    args = parser.parse_args()

    spans, reader = set_up(args.contender, args.sdk)
    work = Workload(args.sdk)
    if args.count_only:
        count_only(work, args.count_only, args.calls)
        return
    if args.profile:
        for _ in range(50):
            work.json_call()
        profile(work, 2000, args.profile)
        return
    spans.ended = 0
    work.json_call()
    spans_per_call = spans.ended
    span_attributes = spans.last_attributes
    result: dict[str, Any] = {}
    if args.batches:
        result |= measure(
            work,
            batches=args.batches,
            json_calls=args.json_calls,
            long_streams=args.long_streams,
            short_streams=args.short_streams,
        )
    if args.memory_calls:
        result["memory_b_per_call"] = memory_per_call(work, args.memory_calls)
    if args.memory_window:
        result["memory_window"] = memory_window(work, args.memory_window)
    # One collection, as a periodic reader makes every export interval (60 s by default): whatever an instrumentation
    # defers to collection time (observable instruments' callbacks) is paid here, not per call.
    began = time.process_time()
    data = reader.get_metrics_data() if reader is not None else None
    result["collect_ms"] = (time.process_time() - began) * 1e3
    result["points"] = sum(
        len(metric.data.data_points)
        for resource_metrics in (data.resource_metrics if data else ())
        for scope_metrics in resource_metrics.scope_metrics
        for metric in scope_metrics.metrics
    )
    result["metrics"] = sorted(
        {
            metric.name
            for resource_metrics in (data.resource_metrics if data else ())
            for scope_metrics in resource_metrics.scope_metrics
            for metric in scope_metrics.metrics
        }
    )
    result["spans_per_call"] = spans_per_call
    result["span_attributes"] = span_attributes
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

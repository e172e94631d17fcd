"""What tokenrate adds to each SDK call: time per call and memory over a long session. Prints figures only.

The real openai SDK runs over an in-process transport (``httpx2.MockTransport``) that answers instantly with
canned JSON and SSE, so the network does not drown the difference. Scenarios:

* ``baseline``          — SDK not instrumented;
* ``no-otel-sdk``       — tokenrate on, no OTel SDK configured (the API's no-op providers) + the local view;
* ``otel-sdk``          — tokenrate on, an OTel SDK MeterProvider (in-memory reader) and TracerProvider;

each for a JSON chat completion and a 20-chunk stream. Then the memory held after 1k and after 20k calls.

Run: ``make bench`` (or ``.venv/bin/python benchmarks/bench_overhead.py [--calls N]``).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
import tracemalloc

import httpx2
import openai
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import tokenrate

USAGE = {
    "prompt_tokens": 120,
    "completion_tokens": 30,
    "total_tokens": 150,
    "prompt_tokens_details": {"cached_tokens": 20},
    "completion_tokens_details": {"reasoning_tokens": 8},
}
HEADERS = {
    "x-ratelimit-limit-requests": "500",
    "x-ratelimit-remaining-requests": "499",
    "x-ratelimit-reset-requests": "120ms",
    "x-ratelimit-limit-tokens": "30000",
    "x-ratelimit-remaining-tokens": "29850",
    "x-ratelimit-reset-tokens": "300ms",
}
COMPLETION = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
        "usage": USAGE,
    }
).encode()


def _chunk(content: str | None, finish: str | None = None, usage: dict | None = None) -> bytes:
    choices = [] if usage else [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    body = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "gpt-4o-mini", "choices": choices}
    if usage is not None:
        body["usage"] = usage
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _stream_body(include_usage: bool) -> bytes:
    parts = [_chunk(f"w{i} ") for i in range(19)] + [_chunk("end", "stop")]
    if include_usage:
        parts.append(_chunk(None, usage=USAGE))
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


def _handler(request: httpx2.Request) -> httpx2.Response:
    body = json.loads(request.content)
    if body.get("stream"):
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        headers = {**HEADERS, "content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, content=_stream_body(include_usage))
    return httpx2.Response(200, headers={**HEADERS, "content-type": "application/json"}, content=COMPLETION)


def _client() -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-bench",
        base_url="http://bench.invalid/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(_handler)),
    )


MESSAGES = [{"role": "user", "content": "hi"}]


def _json_call(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def _stream_call(client: openai.OpenAI) -> None:
    for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        pass


def _per_call_us(call, client: openai.OpenAI, calls: int, rounds: int = 5) -> float:
    """Median over rounds of the mean time per call, in microseconds."""
    for _ in range(50):
        call(client)
    results = []
    for _ in range(rounds):
        began = time.perf_counter()
        for _ in range(calls):
            call(client)
        results.append((time.perf_counter() - began) / calls * 1e6)
    return statistics.median(results)


def _scenario(name: str) -> tuple[MeterProvider | None, TracerProvider | None]:
    tokenrate.uninstrument()
    if name == "baseline":
        return None, None
    if name == "no-otel-sdk":
        tokenrate.instrument(["openai"])
        return None, None
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    tracer_provider = TracerProvider()  # spans are recorded and dropped (no processor): the cost of making them
    tokenrate.instrument(["openai"], tracer_provider=tracer_provider, meter_provider=meter_provider)
    return meter_provider, tracer_provider


def _memory_after(calls: int) -> float:
    """KiB still allocated after ``calls`` instrumented calls, compared with before them."""
    client = _client()
    _json_call(client)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(calls):
        (_stream_call if i % 4 == 0 else _json_call)(client)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    growth = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    return growth / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="calls per timing round (default 400)")
    args = parser.parse_args()

    print(f"openai {openai.__version__}, tokenrate {tokenrate.__version__}; {args.calls} calls x 5 rounds, median")
    print(f"{'scenario':<14} {'json µs/call':>14} {'overhead':>10} {'stream µs/call':>16} {'overhead':>10}")
    baseline: dict[str, float] = {}
    for name in ("baseline", "no-otel-sdk", "otel-sdk"):
        providers = _scenario(name)
        client = _client()
        json_us = _per_call_us(_json_call, client, args.calls)
        stream_us = _per_call_us(_stream_call, client, args.calls)
        if name == "baseline":
            baseline = {"json": json_us, "stream": stream_us}
            print(f"{name:<14} {json_us:>14.1f} {'':>10} {stream_us:>16.1f}")
        else:
            print(
                f"{name:<14} {json_us:>14.1f} {json_us - baseline['json']:>+9.1f}µs "
                f"{stream_us:>16.1f} {stream_us - baseline['stream']:>+9.1f}µs"
            )
        meter_provider, tracer_provider = providers
        if meter_provider is not None:
            meter_provider.shutdown()
        if tracer_provider is not None:
            tracer_provider.shutdown()

    print()
    print("memory still held after N instrumented calls (no OTel SDK; the local view on):")
    _scenario("no-otel-sdk")
    for calls in (1_000, 20_000):
        print(f"  {calls:>6} calls: {_memory_after(calls):8.1f} KiB")
    tokenrate.uninstrument()


if __name__ == "__main__":
    main()

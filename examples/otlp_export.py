"""Send tokenrate's metrics and spans over OTLP/HTTP to a collector, e.g. the stack in ``collector-config/``.

    docker compose -f collector-config/docker-compose.yaml up -d   # collector, Prometheus, Jaeger, Grafana
    python examples/otlp_export.py --duration 120                  # then open Grafana → dashboard "tokenrate"

Where the data goes is decided by the standard OpenTelemetry variables, read by the OTel SDK:

* ``OTEL_EXPORTER_OTLP_ENDPOINT`` (default ``http://localhost:4318``; ``/v1/metrics`` and ``/v1/traces`` are
  appended), or per signal ``OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``;
* ``OTEL_SERVICE_NAME`` (default here ``tokenrate-example``), ``OTEL_RESOURCE_ATTRIBUTES``;
* ``OTEL_METRIC_EXPORT_INTERVAL`` in ms (default here 5000; the SDK's own default is 60000).

The LLM provider is the local *simulated* one (``tokenrate.simulator``), started here: three worker threads
drive the real openai, anthropic and google-genai SDKs against it, and it answers some calls with 429 (with
Retry-After) or 529/503 so the throttling panels have something to show. No model is called, nothing is billed.
With a real provider, drop the simulator lines and let the SDKs read their API keys as usual.

Each call runs inside ``tokenrate.attributes(user_id=..., feature=...)`` (three pseudonymous users, one feature
per SDK) and ``TOKENRATE_METRIC_ATTRIBUTES=user.id,tokenrate.feature`` lets those two keys onto the metrics, so
the dashboard's "Top users / features" panels have something to show.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import threading
import time
from collections.abc import Callable

from opentelemetry import metrics, trace
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

import tokenrate
from tokenrate.simulator import RateLimitModel, SimulatedProvider, Step, UsagePlan
from tokenrate.view import format_status


def setup_opentelemetry() -> tuple[TracerProvider, MeterProvider]:
    """Global OTel providers exporting OTLP/HTTP (cumulative temporality, the SDK default, what Prometheus needs).

    This set-up is the application's, not tokenrate's: tokenrate only uses the OTel API.
    """
    os.environ.setdefault("OTEL_SERVICE_NAME", "tokenrate-example")
    os.environ.setdefault("OTEL_METRIC_EXPORT_INTERVAL", "5000")
    resource = Resource.create()  # service.name etc. from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    meter_provider = MeterProvider(
        resource=resource, metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())]
    )
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider


def workers(sim: SimulatedProvider) -> dict[str, Callable[[int], None]]:
    """One step function per SDK: call ``i`` is streamed when ``i`` is odd."""
    import anthropic
    import openai
    from google import genai
    from google.genai import types

    messages = [{"role": "user", "content": "Explain token buckets in one paragraph."}]
    oa = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-simulated")
    an = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-simulated")
    retry = types.HttpRetryOptions(attempts=4, initial_delay=0.2, max_delay=1.0)
    gm = genai.Client(
        api_key="simulated", http_options=types.HttpOptions(base_url=sim.gemini_base_url, retry_options=retry)
    )

    def openai_step(i: int) -> None:
        if i % 2:
            stream = oa.chat.completions.create(
                model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
            )
            for _ in stream:
                pass
        else:
            oa.chat.completions.create(model="gpt-4o-mini", messages=messages)

    def anthropic_step(i: int) -> None:
        if i % 2:
            with an.messages.stream(model="claude-haiku-4-5", max_tokens=500, messages=messages) as stream:
                for _ in stream.text_stream:
                    pass
        else:
            an.messages.create(model="claude-haiku-4-5", max_tokens=500, messages=messages)

    def gemini_step(i: int) -> None:
        prompt = messages[0]["content"]
        if i % 2:
            for _ in gm.models.generate_content_stream(model="gemini-2.5-flash", contents=prompt):
                pass
        else:
            gm.models.generate_content(model="gemini-2.5-flash", contents=prompt)

    return {"openai": openai_step, "anthropic": anthropic_step, "gemini": gemini_step}


USERS = ("u-7f3a", "u-19c2", "u-d05e")
"""Pseudonymous user ids (a keyed hash of the account id in a real app: user.id is personal data)."""
FEATURES = {"openai": "chat", "anthropic": "summarize", "gemini": "search"}


def run(duration_s: float, summary_json: str | None) -> int:
    # Which call attributes metrics may carry (every value is a time series): the user and the feature.
    os.environ.setdefault("TOKENRATE_METRIC_ATTRIBUTES", "user.id,tokenrate.feature")
    tracer_provider, meter_provider = setup_opentelemetry()
    # tokenrate: hook the installed SDKs; metrics and spans go to the global providers set above.
    print("instrumented:", ", ".join(tokenrate.instrument()))
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
    print(f"exporting OTLP/HTTP to {endpoint} as service {os.environ['OTEL_SERVICE_NAME']!r}")

    limits = RateLimitModel(rpm=600, tpm=2_000_000, latency_s=0.05, tokens_per_second=4000)
    usage = UsagePlan(input=1200, output=300, cache_read=400, cache_write=100, tool_use=40, reasoning=60)
    errors: collections.Counter[str] = collections.Counter()
    with SimulatedProvider(rate_limits=limits, usage=usage) as sim:
        print(f"SIMULATED provider on {sim.base_url} (no model is called)")
        deadline = time.monotonic() + duration_s

        def loop(protocol: str, step: Callable[[int], None]) -> None:
            i = 0
            while time.monotonic() < deadline:
                # Throttle now and then: a 429 with Retry-After every 4th call, an overload every 7th.
                if i % 4 == 1:
                    sim.script(Step.rate_limited(retry_after=0.2, match=protocol))
                if i % 7 == 3:
                    sim.script(Step.overloaded(match=protocol))
                if protocol == "openai" and i == 5:
                    sim.script(Step.bad_request(match=protocol))  # one failed call: error.type on the duration
                try:
                    with tokenrate.attributes(user_id=USERS[i % len(USERS)], feature=FEATURES[protocol]):
                        step(i)
                except Exception as exc:  # the SDK raised (tokenrate recorded the call as an error)
                    errors[f"{protocol}: {type(exc).__name__}"] += 1
                i += 1

        threads = [threading.Thread(target=loop, args=item, name=f"worker-{item[0]}") for item in workers(sim).items()]
        for thread in threads:
            thread.start()
        # The local view (no backend needed): one status line a second while the workers run.
        while any(thread.is_alive() for thread in threads):
            next(thread for thread in threads if thread.is_alive()).join(timeout=1.0)
            print(format_status(tokenrate.snapshot(), width=120), flush=True)
        served = collections.Counter(str(request.status) for request in sim.served)

    snap = tokenrate.snapshot()
    # Flush: a short-lived process must shut its providers down or the last points are lost.
    tracer_provider.shutdown()
    meter_provider.shutdown()
    print(
        f"done: {snap.requests} calls ({snap.attempts} attempts), {snap.tokens.total:,} tokens, "
        f"throttled {snap.throttle.events}x; simulator answers by status: {dict(sorted(served.items()))}"
    )
    if errors:
        print("calls that raised:", dict(errors))
    if summary_json:
        with open(summary_json, "w", encoding="utf-8") as f:
            json.dump({"snapshot": snap.to_dict(), "served_by_status": served, "errors": errors}, f, indent=1)
    return 0 if snap.requests else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of workload (default 30)")
    parser.add_argument("--summary-json", metavar="PATH", help="also write the local view's final totals as JSON")
    args = parser.parse_args()
    sys.exit(run(args.duration, args.summary_json))

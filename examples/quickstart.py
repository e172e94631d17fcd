"""tokenrate in code: instrument the SDKs, print the OTel metrics and spans to the console, read the local view.

    python examples/quickstart.py

It starts the local *simulated* provider (``tokenrate.simulator``; no model is called, nothing is billed) and
points the real openai and anthropic SDKs at it. With a real provider, drop the simulator lines and create the
clients as usual (API keys from the environment).
"""

from __future__ import annotations

import sys

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

import tokenrate
from tokenrate.simulator import SimulatedProvider, Step, UsagePlan
from tokenrate.view import format_cost, format_status


def main() -> int:
    # 1. The application's OTel SDK set-up (tokenrate itself only uses the OTel API). Console exporters here;
    #    see otlp_export.py for OTLP. The metric reader exports once, at shutdown (a long interval).
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    reader = PeriodicExportingMetricReader(ConsoleMetricExporter(), export_interval_millis=3_600_000)
    meter_provider = MeterProvider(metric_readers=[reader])
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)

    # 2. One line: hook every installed, supported SDK (openai, anthropic, google-genai).
    print("instrumented:", ", ".join(tokenrate.instrument()), file=sys.stderr)

    import anthropic
    import openai

    with SimulatedProvider(usage=UsagePlan(input=1200, output=250, cache_read=800, reasoning=64)) as sim:
        sim.script(Step.rate_limited(retry_after=0.2, match="openai"))  # the first OpenAI attempt gets a 429
        oa = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-simulated")
        an = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-simulated")
        messages = [{"role": "user", "content": "Say hello."}]

        oa.chat.completions.create(model="gpt-4o-mini", messages=messages)  # retried once by the SDK
        stream = oa.chat.completions.create(
            model="gpt-4o-mini", messages=messages, stream=True, stream_options={"include_usage": True}
        )
        for _ in stream:
            pass
        an.messages.create(model="claude-haiku-4-5", max_tokens=300, messages=messages)

    # 3. The local view: the same records as the metrics, as rolling rates and session totals.
    snap = tokenrate.snapshot()
    print(format_status(snap), file=sys.stderr)
    print(f"requests: {snap.requests} ({snap.attempts} attempts)", file=sys.stderr)
    print(f"tokens by type: {snap.tokens.to_dict()}", file=sys.stderr)  # None: never reported (unknown, not 0)
    print(f"throttled: {snap.throttle.events}x, {snap.throttle.wait_s:.1f} s waiting", file=sys.stderr)
    for model in snap.models:
        print(
            f"  {model.provider}/{model.model}: requests {model.requests}, tokens {model.tokens.total:,}, "
            f"cost {format_cost(model.cost_usd, model.unknown_cost_calls)}",
            file=sys.stderr,
        )

    # 4. Shut the providers down: the console metric exporter prints its one export now (to stdout).
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return 0 if snap.requests == 3 else 1


if __name__ == "__main__":
    sys.exit(main())

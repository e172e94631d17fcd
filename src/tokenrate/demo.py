"""``tokenrate demo``: the real openai, anthropic, google-genai, boto3 (Bedrock) and groq SDKs against the simulator.

A concurrent workload runs through every installed SDK with tokenrate instrumented, against a local simulated
provider whose per-model RPM/TPM buckets are small enough that the workload *will* be throttled. The local view
is shown live, then the session summary. Nothing leaves the machine, except OTLP when
``OTEL_EXPORTER_OTLP_ENDPOINT`` is set. The provider is simulated, and the demo says so.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import tokenrate
from tokenrate._env import setting
from tokenrate.sdks import sdk_named
from tokenrate.simulator import RateLimitModel, SimulatedProvider, UsagePlan

OPENAI_MODEL = "gpt-4o-mini"
ANTHROPIC_MODEL = "claude-haiku-4-5"
GEMINI_MODEL = "gemini-2.5-flash"
BEDROCK_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
GROQ_MODEL = "llama-3.1-8b-instant"

BANNER = (
    "tokenrate demo — the provider is SIMULATED (a local server on 127.0.0.1): no model is called, nothing is "
    "billed; costs are what these token counts would cost at list prices."
)

DRAIN_S = 5.0
"""The last seconds of the run: workers start no new call, so calls in flight can finish within the duration."""
FINAL_GRACE_S = 2.0
"""Once the time is up, how long the demo still waits for calls in flight. Calls sleeping out a longer Retry-After
(that sleep is the SDK's own and cannot be cut short) are not waited for: the summary reports them as in flight.
So the demo takes its duration plus at most this, plus start-up."""
EXIT_INTERRUPTED = 130
"""The shell's code for a program ended by Ctrl-C (128 + SIGINT)."""

PROMPTS = (
    "Summarize the plot of a detective novel in three sentences.",
    "List five uses of a paperclip.",
    "Explain token buckets to a new engineer.",
    "Write a haiku about rate limits.",
)


@dataclass
class DemoOptions:
    duration_s: float = 30.0
    workers_per_sdk: int = 2
    rpm: int = 24
    tpm: int = 12_000
    overload_rate: float = 0.03
    latency_s: float = 0.3
    tokens_per_second: float = 150.0
    live: bool | None = None
    """Rich live display; ``None``: when stdout is a terminal."""


class _Workload:
    """Worker threads calling every installed SDK back to back until told to stop."""

    def __init__(self, sim: SimulatedProvider, options: DemoOptions) -> None:
        self.sim = sim
        self.options = options
        self.stop = threading.Event()
        """Set when the run is over: workers start no new call and leave their streams (calls in flight carry on)."""
        self.new_calls_until = math.inf
        """``time.monotonic()`` after which workers start no new call (the drain at the end of the run)."""
        self.errors: dict[str, int] = {}
        self._lock = threading.Lock()
        self._prompts = itertools.cycle(PROMPTS)

    def prompt(self) -> str:
        with self._lock:
            return next(self._prompts)

    def _loop(self, name: str, step: Callable[[int], None]) -> None:
        for i in itertools.count():
            if self.stop.is_set() or time.monotonic() >= self.new_calls_until:
                return
            try:
                step(i)
            except Exception as exc:  # the SDK gave up (e.g. retries ran out): tokenrate recorded it
                with self._lock:
                    key = f"{name}: {type(exc).__name__}"
                    self.errors[key] = self.errors.get(key, 0) + 1
                self.stop.wait(0.5)

    def _openai(self) -> Callable[[int], None]:
        import openai

        client = openai.OpenAI(base_url=self.sim.openai_base_url, api_key="sk-simulated", max_retries=4)
        return self._chat_completions(client, OPENAI_MODEL)

    def _chat_completions(self, client: Any, model: str) -> Callable[[int], None]:
        """Calls of an OpenAI-style ``chat.completions`` client, every other one streamed."""

        def step(i: int) -> None:
            messages = [{"role": "user", "content": self.prompt()}]
            if i % 2:
                for _ in client.chat.completions.create(model=model, messages=messages, stream=True):
                    if self.stop.is_set():
                        break
            else:
                client.chat.completions.create(model=model, messages=messages)

        return step

    def _anthropic(self) -> Callable[[int], None]:
        import anthropic

        client = anthropic.Anthropic(base_url=self.sim.anthropic_base_url, api_key="sk-simulated", max_retries=4)

        def step(i: int) -> None:
            messages = [{"role": "user", "content": self.prompt()}]
            if i % 2:
                with client.messages.stream(model=ANTHROPIC_MODEL, max_tokens=400, messages=messages) as stream:
                    for _ in stream.text_stream:
                        if self.stop.is_set():
                            break
            else:
                client.messages.create(model=ANTHROPIC_MODEL, max_tokens=400, messages=messages)

        return step

    def _groq(self) -> Callable[[int], None]:
        """An OpenAI-compatible provider through its own Stainless SDK: recorded as ``groq``, Groq's prices."""
        import groq

        client = groq.Groq(base_url=self.sim.base_url_for("groq"), api_key="gsk-simulated", max_retries=4)
        return self._chat_completions(client, GROQ_MODEL)

    def _gemini(self) -> Callable[[int], None]:
        from google import genai
        from google.genai import types

        retry = types.HttpRetryOptions(attempts=4, initial_delay=1.0, max_delay=8.0)
        client = genai.Client(
            api_key="simulated", http_options=types.HttpOptions(base_url=self.sim.gemini_base_url, retry_options=retry)
        )

        def step(i: int) -> None:
            if i % 2:
                for _ in client.models.generate_content_stream(model=GEMINI_MODEL, contents=self.prompt()):
                    if self.stop.is_set():
                        break
            else:
                client.models.generate_content(model=GEMINI_MODEL, contents=self.prompt())

        return step

    def _bedrock(self) -> Callable[[int], None]:
        import boto3
        from botocore.config import Config

        # Explicit fake keys and region (the simulator accepts any signature; no AWS profile is needed), and SigV4
        # even when AWS_BEARER_TOKEN_BEDROCK is set: botocore's bearer auth refuses a plain-http endpoint.
        session = boto3.Session(
            aws_access_key_id="AKIDSIMULATED", aws_secret_access_key="simulated", region_name="us-east-1"
        )
        config = Config(signature_version="v4", retries={"mode": "standard", "total_max_attempts": 5})
        client = session.client("bedrock-runtime", endpoint_url=self.sim.bedrock_endpoint_url, config=config)

        def step(i: int) -> None:
            messages = [{"role": "user", "content": [{"text": self.prompt()}]}]
            config = {"maxTokens": 400}
            if i % 2:
                stream = client.converse_stream(modelId=BEDROCK_MODEL, messages=messages, inferenceConfig=config)
                for _ in stream["stream"]:
                    if self.stop.is_set():
                        stream["stream"].close()
                        break
            else:
                client.converse(modelId=BEDROCK_MODEL, messages=messages, inferenceConfig=config)

        return step

    def prepare(self) -> dict[str, Callable[[int], None]]:
        """One step function per installed SDK, its client made (importing the SDKs takes a moment)."""
        makers = {
            "openai": self._openai,
            "anthropic": self._anthropic,
            "google-genai": self._gemini,
            "botocore": self._bedrock,  # boto3 bedrock-runtime
            "groq": self._groq,
        }
        # Only the SDKs that are installed (google-genai 3.x, for one, needs Python >= 3.11).
        steps = {}
        for name, make in makers.items():
            if not _installed(name):
                continue
            try:
                steps[name] = make()
            except Exception as exc:  # e.g. an AWS profile in the environment that boto3 cannot load
                self.errors[f"{name}: {type(exc).__name__} (not started)"] = 1
        return steps

    def start(self, steps: dict[str, Callable[[int], None]]) -> list[threading.Thread]:
        threads = [
            threading.Thread(target=self._loop, args=(name, step), name=f"demo-{name}-{n}", daemon=True)
            for name, step in steps.items()
            for n in range(self.options.workers_per_sdk)
        ]
        for thread in threads:
            thread.start()
        return threads


def _installed(sdk: str) -> bool:
    return sdk_named(sdk).installed()


def _otel_providers() -> tuple[Any, Any, Callable[[], None]]:
    """OTLP/HTTP export when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (the OTel SDK is the demo's extra)."""
    if not os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return None, None, lambda: None
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "tokenrate-demo")})
    # Every 5 s unless OTEL_METRIC_EXPORT_INTERVAL says otherwise (the OTel SDK reads it when given no interval).
    interval = None if os.environ.get("OTEL_METRIC_EXPORT_INTERVAL") else 5000
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter(), export_interval_millis=interval)],
    )
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))

    def shutdown() -> None:
        meter_provider.shutdown()
        tracer_provider.shutdown()

    return tracer_provider, meter_provider, shutdown


def _table(snap: Any, remaining_s: float) -> Any:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from tokenrate.view import format_status
    from tokenrate.view._format import fmt_cost

    table = Table(title=f"tokenrate demo — {remaining_s:4.0f} s left", title_justify="left", expand=False)
    for column in ("provider / model", "requests", "TPM", "RPM", "tokens", "throttled", "wait", "cost"):
        table.add_column(column, justify="left" if column == "provider / model" else "right")
    for row in snap.models:
        table.add_row(
            f"{row.provider} / {row.model}",
            f"{row.requests:,}",
            f"{row.tpm:,}",
            f"{row.rpm:,}",
            f"{row.tokens.total:,}",
            f"{row.throttle_events:,}",
            f"{row.throttle_wall_s:.1f} s",
            fmt_cost(row.cost_usd, row.unknown_cost_calls),
        )
    limits = Table(show_header=True, title="rate-limit headroom (latest headers)", title_justify="left")
    for column in ("provider", "kind", "remaining", "limit", "used"):
        limits.add_column(column, justify="left" if column in ("provider", "kind") else "right")
    for state in snap.rate_limits:
        used = "-" if state.used_fraction is None else f"{state.used_fraction:.0%}"
        limits.add_row(
            state.provider,
            state.kind,
            "-" if state.remaining is None else f"{state.remaining:,.0f}",
            "-" if state.limit is None else f"{state.limit:,.0f}",
            used,
        )
    return Group(Text(BANNER, style="bold yellow"), table, limits, Text(format_status(snap), style="bold"))


class _SecondInterruptExits:
    """While active (main thread only): the first Ctrl-C raises KeyboardInterrupt as usual, a second one exits now.

    The first stops the demo at once and prints the summary; a user who presses Ctrl-C again (e.g. while OTLP
    export flushes to an unreachable collector) wants out, without a traceback.
    """

    def __init__(self) -> None:
        self.interrupted = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.interrupted:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(EXIT_INTERRUPTED)
        self.interrupted = True
        raise KeyboardInterrupt

    def __enter__(self) -> _SecondInterruptExits:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def run_demo(options: DemoOptions, out: TextIO = sys.stdout) -> int:
    """Run the demo; returns 0 when the workload ran (throttled or not), 1 when nothing could be recorded, 130 when
    Ctrl-C stopped it (after the summary)."""
    with _SecondInterruptExits() as interrupts:
        try:
            code = _run(options, out, interrupts)
        except KeyboardInterrupt:  # before the workload started: nothing to summarize
            print("interrupted", file=out)
            return EXIT_INTERRUPTED
        return EXIT_INTERRUPTED if interrupts.interrupted else code


def _run(options: DemoOptions, out: TextIO, interrupts: _SecondInterruptExits) -> int:
    from tokenrate.view import render_summary

    tracer_provider, meter_provider, shutdown = _otel_providers()
    limits = RateLimitModel(
        rpm=options.rpm,
        tpm=options.tpm,
        overload_rate=options.overload_rate,
        latency_s=options.latency_s,
        tokens_per_second=options.tokens_per_second,
        seed=7,
    )
    live = out.isatty() if options.live is None else options.live
    with SimulatedProvider(rate_limits=limits) as sim:
        sim.usage = UsagePlan(input=900, output=220, cache_read=300, cache_write=60, reasoning=40)
        print(BANNER, file=out)
        print(f"simulated provider: {sim.base_url} · {options.rpm} RPM / {options.tpm:,} TPM per model", file=out)
        if meter_provider is not None:
            print(f"exporting OTLP to {os.environ['OTEL_EXPORTER_OTLP_ENDPOINT']}", file=out)
        tokenrate.uninstrument()
        instrumented = tokenrate.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        print(f"instrumented: {', '.join(instrumented) or 'nothing (are the SDKs installed?)'}", file=out)
        stop_publishing = _publish_for_top()
        workload = _Workload(sim, options)
        steps = workload.prepare()
        tokenrate.reset()  # the session is the run: its duration and averages leave out the set-up
        started = time.monotonic()
        workload.new_calls_until = started + options.duration_s - min(DRAIN_S, options.duration_s / 4)
        threads = workload.start(steps)
        try:
            _show(options, out, live, started)
            workload.stop.set()
            grace_until = time.monotonic() + FINAL_GRACE_S
            for thread in threads:
                thread.join(timeout=max(0.0, grace_until - time.monotonic()))
        except KeyboardInterrupt:
            print("\ninterrupted: stopping now (press Ctrl-C again to quit without the summary)", file=out)
        workload.stop.set()
        snap = tokenrate.snapshot()
        elapsed = time.monotonic() - started
        print(file=out)
        if snap.in_flight:
            waiting = "were cut short" if interrupts.interrupted else "were still waiting out a Retry-After"
            print(f"{snap.in_flight} call(s) {waiting} when the demo ended ({elapsed:.1f} s).", file=out)
        render_summary(snap, out)
        if workload.errors:
            print("calls the SDKs gave up on (recorded as errors):", file=out)
            for key, count in sorted(workload.errors.items()):
                print(f"  {key}: {count}", file=out)
        print("(simulated provider: figures show tokenrate at work, not a real provider's behaviour)", file=out)
        stop_publishing()
        tokenrate.uninstrument()
        if meter_provider is not None:
            print("sending the last telemetry to the OTLP endpoint (Ctrl-C to quit without it)", file=out)
        out.flush()
        shutdown()
    return 0 if snap.requests else 1


def _publish_for_top() -> Callable[[], None]:
    """The demo publishes its view for ``tokenrate top`` (unless ``TOKENRATE_PUBLISH`` says false); returns the stop."""
    from tokenrate.view import start_publishing, stop_publishing

    if "TOKENRATE_PUBLISH" in os.environ and not setting("TOKENRATE_PUBLISH"):
        return lambda: None
    start_publishing()
    return stop_publishing


def _show(options: DemoOptions, out: TextIO, live: bool, started: float) -> None:
    """The live view (or plain lines) until the duration is up; new calls stop `DRAIN_S` before the end."""
    from tokenrate.view import format_status

    deadline = started + options.duration_s
    if live:
        from rich.console import Console
        from rich.live import Live

        console = Console(file=out)
        with Live(console=console, refresh_per_second=4, transient=False) as display:
            while (left := deadline - time.monotonic()) > 0:
                display.update(_table(tokenrate.snapshot(), left))
                time.sleep(min(0.25, left))
        return
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(5.0, left))
        print(f"[{time.monotonic() - started:5.1f} s] {format_status(tokenrate.snapshot())}", file=out)
        out.flush()

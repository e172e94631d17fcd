"""Every OTel instrument and attribute name tokenrate emits, with units and advisory buckets.

This module and `tokenrate.telemetry.sink` are the only places that know OTel names. Semconv GenAI names
(v1.41.1) are used where a convention exists; ``tokenrate.*`` names where none does (throttling, rate limits,
per-type token counters, cost). The README's metric table documents the same list.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

from opentelemetry.metrics import CallbackOptions, Histogram, Meter, Observation

from tokenrate._safety import report
from tokenrate.telemetry.observed import ObservedCounter, ObservedGauge

# -- attribute names ----------------------------------------------------------------------------------------
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_REQUEST_STREAM = "gen_ai.request.stream"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_RESPONSE_TTFC = "gen_ai.response.time_to_first_chunk"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
HTTP_REQUEST_RESEND_COUNT = "http.request.resend_count"

TOKENRATE_USAGE_TOOL_USE = "tokenrate.usage.tool_use.input_tokens"
TOKENRATE_USAGE_COST = "tokenrate.usage.cost_usd"
TOKENRATE_SERVER_TOOL = "tokenrate.server_tool.name"
TOKENRATE_RETRIED = "tokenrate.retried"
TOKENRATE_RETRY_REASON = "tokenrate.retry.reason"
TOKENRATE_RETRY_ATTEMPT = "tokenrate.retry.attempt"
TOKENRATE_RETRY_WAIT = "tokenrate.retry.wait"
TOKENRATE_RETRY_AFTER = "tokenrate.retry.retry_after"
TOKENRATE_THROTTLE_EVENTS = "tokenrate.throttle.events"
TOKENRATE_THROTTLE_WAIT = "tokenrate.throttle.wait"
TOKENRATE_RATE_LIMITER_WAIT = "tokenrate.rate_limiter.wait"
TOKENRATE_RATELIMIT_KIND = "tokenrate.ratelimit.kind"
TOKENRATE_OUTCOME = "tokenrate.call.outcome"

RETRY_EVENT_NAME = "tokenrate.retry"

# Semconv token types for gen_ai.client.token.usage are input/output only; the tokenrate counter has all six.
SEMCONV_TOKEN_TYPES = ("input", "output")

# -- advisory bucket boundaries -------------------------------------------------------------------------------
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
# Throttle waits: SDK backoff starts around 0.4 s; Retry-After can be minutes.
WAIT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 60.0, 120.0, 300.0)
RETRIES_PER_CALL_BUCKETS = (0, 1, 2, 3, 4, 5, 8, 10)


@dataclass(frozen=True, slots=True)
class Instruments:
    """The instruments of one meter, created once.

    Histograms are synchronous OTel instruments. Counters and rate-limit gauges are kept in-process
    (`tokenrate.telemetry.observed`): calls add to their series under `lock`; observable instruments report them
    at collection time.
    """

    lock: threading.Lock
    token_usage: Histogram
    operation_duration: Histogram
    time_to_first_chunk: Histogram
    usage_tokens: ObservedCounter
    requests: ObservedCounter
    cost: ObservedCounter
    server_tool_requests: ObservedCounter
    throttle_events: ObservedCounter
    throttle_wait: Histogram
    retries: ObservedCounter
    retry_wait: Histogram
    retries_per_call: Histogram
    rate_limiter_wait: Histogram
    ratelimit_remaining: ObservedGauge
    ratelimit_limit: ObservedGauge
    ratelimit_reset: ObservedGauge


def _observe_budgets(options: CallbackOptions) -> Iterator[Observation]:
    """Each configured budget's spent/limit, when a budget is configured (``TOKENRATE_BUDGET_*``)."""
    try:
        from tokenrate.budget import budget_utilization

        observations = [Observation(value, attributes) for attributes, value in budget_utilization()]
    except Exception as exc:
        report("budget utilization gauge", exc)
        return iter(())
    return iter(observations)


def _observable_counter(
    meter: Meter, lock: threading.Lock, name: str, *, unit: str, description: str
) -> ObservedCounter:
    """A counter kept in-process, reported by an observable counter of the same name, unit and description."""
    counter = ObservedCounter(name, lock)
    meter.create_observable_counter(name, callbacks=[counter.observe], unit=unit, description=description)
    return counter


def _observable_gauge(meter: Meter, lock: threading.Lock, name: str, *, unit: str, description: str) -> ObservedGauge:
    """A gauge kept in-process (the last value set), reported by an observable gauge."""
    gauge = ObservedGauge(name, lock)
    meter.create_observable_gauge(name, callbacks=[gauge.observe], unit=unit, description=description)
    return gauge


def create_instruments(meter: Meter) -> Instruments:
    """Every instrument on ``meter``. Call once per meter: the OTel SDK keeps only the first callback of a name."""
    lock = threading.Lock()
    instruments = Instruments(
        lock=lock,
        token_usage=meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used per call (semconv).",
            explicit_bucket_boundaries_advisory=list(TOKEN_BUCKETS),
        ),
        operation_duration=meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="Duration of a GenAI call, retries and throttle waits included (semconv).",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        ),
        time_to_first_chunk=meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time from the start of a streamed call to its first chunk (semconv).",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        ),
        usage_tokens=_observable_counter(
            meter,
            lock,
            "tokenrate.usage.tokens",
            unit="{token}",
            description="Tokens by type: input, output, and their parts cache_read, cache_write, tool_use "
            "(in input) and reasoning (in output).",
        ),
        requests=_observable_counter(
            meter,
            lock,
            "tokenrate.requests",
            unit="{request}",
            description="Logical GenAI calls (one per SDK call, however many retries it took).",
        ),
        cost=_observable_counter(
            meter,
            lock,
            "tokenrate.usage.cost",
            unit="USD",
            description="Cost of calls in US dollars, from genai-prices or the user's price file.",
        ),
        server_tool_requests=_observable_counter(
            meter,
            lock,
            "tokenrate.usage.server_tool_requests",
            unit="{request}",
            description="Provider-side tool uses billed per request (e.g. Anthropic web_search).",
        ),
        throttle_events=_observable_counter(
            meter,
            lock,
            "tokenrate.throttle.events",
            unit="{event}",
            description="429/529 responses, retried by the SDK or not.",
        ),
        throttle_wait=meter.create_histogram(
            "tokenrate.throttle.wait",
            unit="s",
            description="Seconds the SDK slept before retrying a throttled (429/529) attempt.",
            explicit_bucket_boundaries_advisory=list(WAIT_BUCKETS),
        ),
        retries=_observable_counter(
            meter,
            lock,
            "tokenrate.retries",
            unit="{retry}",
            description="Retries the SDK made, by reason: throttled, server_error, timeout, connection_error.",
        ),
        retry_wait=meter.create_histogram(
            "tokenrate.retry.wait",
            unit="s",
            description="Seconds the SDK slept before any retry, by reason.",
            explicit_bucket_boundaries_advisory=list(WAIT_BUCKETS),
        ),
        retries_per_call=meter.create_histogram(
            "tokenrate.call.retries",
            unit="{retry}",
            description="Retries per logical call.",
            explicit_bucket_boundaries_advisory=list(RETRIES_PER_CALL_BUCKETS),
        ),
        rate_limiter_wait=meter.create_histogram(
            TOKENRATE_RATE_LIMITER_WAIT,
            unit="s",
            description="Seconds the SDK's own client-side rate limiter held a call before sending it (botocore "
            "adaptive retry mode), per call that waited.",
            explicit_bucket_boundaries_advisory=list(WAIT_BUCKETS),
        ),
        ratelimit_remaining=_observable_gauge(
            meter,
            lock,
            "tokenrate.ratelimit.remaining",
            unit="{count}",
            description="Requests or tokens left in the provider's current rate-limit window (from headers).",
        ),
        ratelimit_limit=_observable_gauge(
            meter,
            lock,
            "tokenrate.ratelimit.limit",
            unit="{count}",
            description="The provider's rate limit for requests or tokens per window (from headers).",
        ),
        ratelimit_reset=_observable_gauge(
            meter,
            lock,
            "tokenrate.ratelimit.reset",
            unit="s",
            description="Seconds until the provider's rate-limit window resets (from headers).",
        ),
    )
    meter.create_observable_gauge(
        "tokenrate.budget.utilization",
        callbacks=[_observe_budgets],
        unit="1",
        description="Spent / limit of each configured budget (1.0 = exhausted), by period and unit.",
    )
    return instruments

"""Counters and rate-limit gauges are kept in-process and read at collection: what readers get must not change.

The histograms are still synchronous OTel instruments with the same attribute sets, so they are the reference:
``tokenrate.requests`` must count what ``gen_ai.client.operation.duration`` sampled and
``tokenrate.usage.tokens`` must sum what ``gen_ai.client.token.usage`` recorded, per attribute set, collection
after collection, with cumulative and with delta temporality. Float sums are checked against a synchronous
counter fed the same values.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import threading
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, ObservableCounter, ObservableGauge
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader

import tokenrate
from tokenrate.pipeline import Pipeline, add_enricher, remove_enricher
from tokenrate.recording import ActiveCall
from tokenrate.records import CallInfo, CallRecord, RateLimits, RateLimitWindow, TokenUsage
from tokenrate.simulator import Step, UsagePlan
from tokenrate.telemetry.observed import MAX_SERIES, OVERFLOW_ATTRIBUTES
from tokenrate.telemetry.sink import TelemetrySink

MESSAGES = [{"role": "user", "content": "hi"}]
DELTA = AggregationTemporality.DELTA
EVERY_KIND_DELTA = dict.fromkeys((Counter, Histogram, ObservableCounter, ObservableGauge), DELTA)
TEMPORALITIES = {"cumulative": {}, "delta": EVERY_KIND_DELTA}

Key = frozenset[tuple[str, Any]]


def _points(reader: InMemoryMetricReader) -> dict[str, dict[Key, Any]]:
    """One collection: metric name → attribute set → value (counters, gauges) or (count, sum) (histograms)."""
    result: dict[str, dict[Key, Any]] = {}
    data = reader.get_metrics_data()
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points = result.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    key = frozenset(point.attributes.items())
                    assert key not in points, f"two points for one attribute set of {metric.name}"
                    points[key] = (point.count, point.sum) if hasattr(point, "bucket_counts") else point.value
    return result


def _of_type(points: dict[Key, Any], *token_types: str) -> dict[Key, Any]:
    return {key: value for key, value in points.items() if dict(key)["gen_ai.token.type"] in token_types}


@pytest.fixture(params=sorted(TEMPORALITIES))
def temporality(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def instrumented_reader(temporality: str) -> Iterator[InMemoryMetricReader]:
    """tokenrate instrumented (every installed SDK) on a meter provider whose reader prefers this temporality."""
    reader = InMemoryMetricReader(preferred_temporality=TEMPORALITIES[temporality])
    meter_provider = MeterProvider(metric_readers=[reader])
    tokenrate.uninstrument()
    tokenrate.instrument(meter_provider=meter_provider)
    try:
        yield reader
    finally:
        tokenrate.uninstrument()
        meter_provider.shutdown()


CALLS_PER_ROUND = 6


def _workload(sim: Any, round_number: int) -> None:
    """Calls of several kinds: two SDKs, json and stream, two models, a failure, a retried throttle."""
    sim.usage = UsagePlan(input=100 + round_number, output=20, cache_read=10, reasoning=5)
    oai = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    ant = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-test")
    for model in ("gpt-4o-mini", "gpt-4.1"):
        oai.chat.completions.create(model=model, messages=MESSAGES)
    for _ in oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
        pass
    ant.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=MESSAGES)
    sim.script(Step.rate_limited(retry_after=0.01, retry_after_ms=True), Step.ok())
    oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    sim.script(Step.bad_request())
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def test_counters_match_the_synchronous_histograms_collection_after_collection(
    sim, instrumented_reader, temporality, records
):
    delta = temporality == "delta"
    summed: dict[str, Tally] = {"requests": Tally(), "tokens": Tally()}
    for round_number in range(3):
        _workload(sim, round_number)
        points = _points(instrumented_reader)
        requests = points["tokenrate.requests"]
        tokens = points["tokenrate.usage.tokens"]
        # The same attribute sets as the synchronous histograms, with the same counts and sums.
        assert requests == {key: count for key, (count, _) in points["gen_ai.client.operation.duration"].items()}
        assert _of_type(tokens, "input", "output") == {
            key: total for key, (_, total) in points["gen_ai.client.token.usage"].items()
        }
        assert {dict(key)["gen_ai.token.type"] for key in tokens} >= {"input", "output", "cache_read"}
        assert all(type(value) is int for value in (*requests.values(), *tokens.values()))
        (throttle_key,) = points["tokenrate.throttle.events"]
        assert dict(throttle_key)["tokenrate.retried"] is True
        assert dict(throttle_key)["http.response.status_code"] == 429
        expected_so_far = 1 if delta else round_number + 1
        assert list(points["tokenrate.throttle.events"].values()) == [expected_so_far]
        assert list(points["tokenrate.retries"].values()) == [expected_so_far]
        summed["requests"].update(requests)
        summed["tokens"].update(tokens)

    # Every call counted once: summed over the three collections (delta) or read at the last one (cumulative).
    final_requests = summed["requests"] if delta else Tally(requests)
    final_tokens = summed["tokens"] if delta else Tally(tokens)
    assert sum(final_requests.values()) == 3 * CALLS_PER_ROUND == len(records.calls)
    for token_type in ("input", "output", "cache_read", "reasoning"):
        expected = sum(getattr(record.usage, token_type) or 0 for record in records.calls)
        assert sum(_of_type(dict(final_tokens), token_type).values()) == expected


def test_a_delta_reader_gets_zero_for_series_idle_since_the_last_collection(sim):
    """The documented difference in shape: deltas come from cumulative totals, so an idle series reads 0 where a
    synchronous counter left it out."""
    reader = InMemoryMetricReader(preferred_temporality=EVERY_KIND_DELTA)
    meter_provider = MeterProvider(metric_readers=[reader])
    tokenrate.uninstrument()
    tokenrate.instrument(meter_provider=meter_provider)
    try:
        sim.usage = UsagePlan(input=10, output=5)
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        first = _points(reader)
        second = _points(reader)
    finally:
        tokenrate.uninstrument()
        meter_provider.shutdown()
    assert list(first["tokenrate.requests"].values()) == [1]
    assert list(second["tokenrate.requests"].values()) == [0]
    assert "gen_ai.client.operation.duration" not in second  # the synchronous histogram had nothing to say


# -- the sink on its own, fed through the real recording path --------------------------------------------------

INFO = CallInfo(provider="openai", operation="chat", request_model="gpt-4o-mini", server_address="api.example")


@pytest.fixture
def reader(temporality: str) -> Iterator[InMemoryMetricReader]:
    reader = InMemoryMetricReader(preferred_temporality=TEMPORALITIES[temporality])
    meter_provider = MeterProvider(metric_readers=[reader])
    reader.meter_provider = meter_provider  # type: ignore[attr-defined]
    try:
        yield reader
    finally:
        meter_provider.shutdown()


def _sink(reader: InMemoryMetricReader) -> TelemetrySink:
    return TelemetrySink.create(meter_provider=reader.meter_provider)  # type: ignore[attr-defined]


def _call(sink: TelemetrySink, *, info: CallInfo = INFO, **learned: Any) -> None:
    """One call through the real recording path, ended with what an adapter would have learned."""
    active = ActiveCall(Pipeline(sink), info)
    active.usage = TokenUsage(input=7, output=3)
    for name, value in learned.items():
        setattr(active, name, value)
    active.finish()


@pytest.fixture
def costs() -> Iterator[list[float]]:
    """Each call ends with the next of these costs (as the pricing enricher would set them)."""
    pending: list[float] = []

    def with_cost(record: CallRecord) -> CallRecord:
        return dataclasses.replace(record, cost_usd=pending.pop(0)) if pending else record

    add_enricher(with_cost)
    try:
        yield pending
    finally:
        remove_enricher(with_cost)


def test_float_cost_sums_as_a_synchronous_counter_does(reader, temporality, costs):
    sink = _sink(reader)
    reference_reader = InMemoryMetricReader(preferred_temporality=TEMPORALITIES[temporality])
    reference_provider = MeterProvider(metric_readers=[reference_reader])
    reference = reference_provider.get_meter("reference").create_counter("reference.cost")
    try:
        for batch in ([0.1, 0.2], [0.3], [], [1e-9, 0.7, 1e6, 0.1]):
            for cost in batch:
                costs.append(cost)
                _call(sink)
                reference.add(cost)
            observed = list(_points(reader).get("tokenrate.usage.cost", {}).values())
            expected = list(_points(reference_reader).get("reference.cost", {}).values())
            if temporality == "cumulative":
                assert observed == expected  # bit for bit: the same order of additions
            elif expected:
                assert observed == pytest.approx(expected, rel=1e-12)  # a difference of two cumulative sums
            else:
                assert observed == [0.0]
    finally:
        reference_provider.shutdown()


def test_gauges_report_the_last_value_seen(reader, temporality):
    """A synchronous gauge reported it at every cumulative collection too; with delta it reported a window only in
    the collection after it was set (documented in the README)."""
    sink = _sink(reader)

    def limits(remaining: float) -> RateLimits:
        return RateLimits((RateLimitWindow("requests", limit=500, remaining=remaining, reset_s=0.5),))

    _call(sink, rate_limits=limits(499))
    _call(sink, rate_limits=limits(498))
    for _ in range(2):
        points = _points(reader)
        (key,) = points["tokenrate.ratelimit.remaining"]
        assert dict(key) == {
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "server.address": "api.example",
            "tokenrate.ratelimit.kind": "requests",
        }
        assert list(points["tokenrate.ratelimit.remaining"].values()) == [498]
        assert list(points["tokenrate.ratelimit.limit"].values()) == [500]
        assert list(points["tokenrate.ratelimit.reset"].values()) == [0.5]
    _call(sink, rate_limits=limits(10))
    assert list(_points(reader)["tokenrate.ratelimit.remaining"].values()) == [10]


def test_counts_from_many_threads_are_exact_while_readers_collect(reader, temporality):
    sink = _sink(reader)
    threads, calls_each = 8, 400
    stop = threading.Event()
    collected: list[dict[str, dict[Key, Any]]] = []

    def collect_until_stopped() -> None:
        while not stop.is_set():
            collected.append(_points(reader))

    def make_calls(worker: int) -> None:
        info = dataclasses.replace(INFO, stream=bool(worker % 2))
        for _ in range(calls_each):
            _call(sink, info=info, usage=TokenUsage(input=7, output=3, cache_read=worker))

    collector = threading.Thread(target=collect_until_stopped)
    collector.start()
    workers = [threading.Thread(target=make_calls, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    collector.join()
    collected.append(_points(reader))

    def final(name: str) -> Tally:
        def values(points: dict[str, dict[Key, Any]]) -> dict[Key, int]:
            return {key: value[0] if isinstance(value, tuple) else value for key, value in points.get(name, {}).items()}

        if temporality == "cumulative":
            return Tally(values(collected[-1]))
        summed: Tally = Tally()
        for points in collected:
            summed.update(values(points))
        return summed

    assert sum(final("tokenrate.requests").values()) == threads * calls_each
    tokens = dict(final("tokenrate.usage.tokens"))
    assert sum(_of_type(tokens, "input").values()) == 7 * threads * calls_each
    assert sum(_of_type(tokens, "cache_read").values()) == sum(range(threads)) * calls_each
    durations = final("gen_ai.client.operation.duration")
    assert sum(durations.values()) == threads * calls_each  # the synchronous reference agrees


def test_series_are_bounded_like_the_sdk_bounds_a_synchronous_counter(reader, temporality):
    """Past `MAX_SERIES` attribute sets, calls go to one overflow series: the shape the OTel SDK gives its own
    synchronous instruments (the histogram here), so memory stays bounded and totals stay whole."""
    sink = _sink(reader)
    models = MAX_SERIES + 300
    for n in range(models):
        _call(sink, info=dataclasses.replace(INFO, request_model=f"model-{n}"))
    points = _points(reader)
    requests = points["tokenrate.requests"]
    assert len(requests) == MAX_SERIES + 1
    assert requests[frozenset(OVERFLOW_ATTRIBUTES.items())] == 300
    assert sum(requests.values()) == models
    assert requests == {key: count for key, (count, _) in points["gen_ai.client.operation.duration"].items()}
    for _ in range(100):  # new kinds keep going to the overflow series; nothing more is kept
        _call(sink, info=dataclasses.replace(INFO, request_model="yet-another"))
    assert len(_points(reader)["tokenrate.requests"]) == MAX_SERIES + 1


def test_sinks_on_one_provider_share_their_counters_and_keep_counting(reader, temporality):
    """Two instrumentors on one provider, or instrumenting again: one set of instruments, totals carry on (the OTel
    SDK keeps only the first callback of an instrument name)."""
    first, second = _sink(reader), _sink(reader)
    _call(first)
    _call(second)
    assert sum(_points(reader)["tokenrate.requests"].values()) == 2
    _call(_sink(reader))
    assert sum(_points(reader)["tokenrate.requests"].values()) == (1 if temporality == "delta" else 3)


def test_sinks_made_before_and_after_the_global_meter_provider_is_set_share_one_set_of_instruments():
    """A sink made on the API's proxy provider forwards to the provider set later; a sink made after that on the
    same (global) provider must not register a second set whose counts the SDK would drop."""
    script = textwrap.dedent(
        """
        from opentelemetry import metrics
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from tokenrate.pipeline import Pipeline
        from tokenrate.recording import ActiveCall
        from tokenrate.records import CallInfo, TokenUsage
        from tokenrate.telemetry.sink import TelemetrySink

        info = CallInfo(provider="openai", operation="chat", request_model="gpt-4o-mini")
        before = TelemetrySink.create()
        reader = InMemoryMetricReader()
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        after, explicit = TelemetrySink.create(), TelemetrySink.create(meter_provider=metrics.get_meter_provider())
        for sink in (before, after, explicit):
            call = ActiveCall(Pipeline(sink), info)
            call.usage = TokenUsage(input=1, output=1)
            call.finish()
        (metric,) = [
            m for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics for m in sm.metrics
            if m.name == "tokenrate.requests"
        ]
        print(sum(point.value for point in metric.data.data_points))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3"]
    assert "has been created already" not in result.stderr

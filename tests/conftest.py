"""Shared fixtures: in-memory OTel providers, tokenrate instrumented on them, and the simulated provider."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tokenrate
from tokenrate import _safety
from tokenrate.pipeline import add_local_sink, remove_local_sink
from tokenrate.records import CallRecord, RetryRecord


@dataclass
class Point:
    attributes: dict[str, Any]
    value: float
    """Counter/gauge value, or the histogram's sum."""
    count: int | None = None
    """Histogram sample count (None for counters and gauges)."""


class Telemetry:
    """In-memory metric reader + span exporter, with small query helpers for assertions."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self._metrics: dict[str, list[Point]] | None = None

    def collect(self) -> dict[str, list[Point]]:
        """Every metric's points now (cumulative), by metric name."""
        result: dict[str, list[Point]] = {}
        data = self.reader.get_metrics_data()
        for resource_metrics in data.resource_metrics if data else ():
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    points = result.setdefault(metric.name, [])
                    for point in metric.data.data_points:
                        if hasattr(point, "bucket_counts"):
                            points.append(Point(dict(point.attributes), point.sum, point.count))
                        else:
                            points.append(Point(dict(point.attributes), point.value))
        return result

    def points(self, name: str, **match: Any) -> list[Point]:
        """Points of metric ``name`` whose attributes include ``match`` (dots spelled as ``__``)."""
        wanted = {key.replace("__", "."): value for key, value in match.items()}
        return [
            point
            for point in self.collect().get(name, [])
            if all(point.attributes.get(key) == value for key, value in wanted.items())
        ]

    def total(self, name: str, **match: Any) -> float:
        """Sum of counter values (or histogram sums) over the matching points."""
        return sum(point.value for point in self.points(name, **match))

    def samples(self, name: str, **match: Any) -> int:
        """Number of histogram samples over the matching points."""
        return sum(point.count or 0 for point in self.points(name, **match))

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


class Records:
    """A local sink that keeps every record, to assert on the normalized records themselves."""

    def __init__(self) -> None:
        self.calls: list[CallRecord] = []
        self.retries: list[RetryRecord] = []

    def call_started(self, call: Any) -> None:
        return None

    def retry(self, token: Any, retry: RetryRecord) -> None:
        self.retries.append(retry)

    def call_ended(self, token: Any, record: CallRecord) -> None:
        self.calls.append(record)

    @property
    def last(self) -> CallRecord:
        assert self.calls, "no call was recorded"
        return self.calls[-1]


ERRORS_EXPECTED_MARKER = "tokenrate_errors_expected"


class SwallowedErrors:
    """Every failure tokenrate swallowed (`tokenrate._safety.report`) while one test ran."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, BaseException]] = []
        self._lock = threading.Lock()

    def __call__(self, where: str, exc: BaseException) -> None:
        with self._lock:
            self.errors.append((where, exc))

    def places(self) -> list[str]:
        with self._lock:
            return [where for where, _ in self.errors]

    def describe(self) -> str:
        with self._lock:
            errors = list(self.errors)
        return "\n\n".join(
            f"{where}:\n{''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))}"
            for where, exc in errors
        )


@pytest.fixture(autouse=True)
def swallowed_errors(request: pytest.FixtureRequest) -> Iterator[SwallowedErrors]:
    """Fail the test if tokenrate swallowed an exception in it (production logs and carries on; tests must not).

    A test that provokes internal failures on purpose says so with ``@pytest.mark.tokenrate_errors_expected``
    (and may request this fixture to assert which places failed).
    """
    swallowed = SwallowedErrors()
    previous = _safety.set_failure_listener(swallowed)
    try:
        yield swallowed
    finally:
        _safety.set_failure_listener(previous)
    if swallowed.errors and request.node.get_closest_marker(ERRORS_EXPECTED_MARKER) is None:
        pytest.fail(
            f"tokenrate swallowed {len(swallowed.errors)} exception(s) during this test "
            f"(mark it @pytest.mark.{ERRORS_EXPECTED_MARKER} if that is the point):\n\n{swallowed.describe()}",
            pytrace=False,
        )


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """tokenrate instrumented (every installed SDK) on fresh in-memory providers; removed afterwards."""
    t = Telemetry()
    tokenrate.uninstrument()
    tokenrate.instrument(tracer_provider=t.tracer_provider, meter_provider=t.meter_provider)
    try:
        yield t
    finally:
        tokenrate.uninstrument()
        t.meter_provider.shutdown()
        t.tracer_provider.shutdown()


@pytest.fixture
def other_telemetry() -> Iterator[Telemetry]:
    """A second pair of in-memory providers, not instrumented (for re-binding tests)."""
    t = Telemetry()
    try:
        yield t
    finally:
        t.meter_provider.shutdown()
        t.tracer_provider.shutdown()


@pytest.fixture
def records() -> Iterator[Records]:
    sink = Records()
    add_local_sink(sink)
    try:
        yield sink
    finally:
        remove_local_sink(sink)


@pytest.fixture
def priced() -> Iterator[None]:
    """Calls are priced, as instrumenting registers it (the enricher removed afterwards only if this test added it)."""
    from tokenrate.cost import Pricer, price_record, set_pricer
    from tokenrate.pipeline import _enrichers, add_enricher, remove_enricher

    added = price_record not in _enrichers
    add_enricher(price_record)
    set_pricer(Pricer())
    yield
    set_pricer(None)
    if added:
        remove_enricher(price_record)


@pytest.fixture
def sim() -> Iterator[Any]:
    """A fresh simulated provider (every wire protocol) on 127.0.0.1."""
    from tokenrate.simulator import SimulatedProvider

    with SimulatedProvider() as provider:
        yield provider

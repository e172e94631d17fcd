"""Counters and gauges kept in-process and read by the OTel SDK when a reader collects.

A synchronous ``Counter.add`` costs the OTel SDK several microseconds (it cleans and hashes the attributes and
takes a lock) and tokenrate made about a dozen per call. Here a call adds to plain numbers it already holds,
under one lock; observable instruments report the totals at collection time. Observable counters report
cumulative totals, which the SDK turns into deltas for a delta-temporality reader, so every reader sees the
same sums a synchronous counter would have given it (see the README for the small differences in shape).

Memory is bounded: each instrument keeps at most `MAX_SERIES` attribute sets (the OTel SDK's default
cardinality limit), then adds to one overflow series, as the SDK itself does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation

from tokenrate._safety import report

MAX_SERIES = 2000
"""Attribute sets per instrument before the overflow series (the OTel SDK's default cardinality limit)."""

OVERFLOW_ATTRIBUTES: Mapping[str, Any] = {"otel.metric.overflow": True}
"""What the OTel SDK names the series that takes measurements past its cardinality limit."""


def _series_key(attributes: Mapping[str, Any]) -> frozenset[tuple[str, type, Any]]:
    """Attribute sets that the SDK would aggregate together (types kept: ``True`` is not ``1``)."""
    return frozenset((key, type(value), value) for key, value in attributes.items())


class CounterSeries:
    """One attribute set of an observable counter.

    ``added`` gathers what calls added since the last collection; a collection folds it into ``total`` in the
    order a synchronous counter's cumulative aggregation uses (``added + total``), so float sums match it.
    """

    __slots__ = ("added", "attributes", "total")

    def __init__(self, attributes: Mapping[str, Any]) -> None:
        self.attributes = attributes
        self.added: float = 0
        self.total: float = 0


class GaugeSeries:
    """One attribute set of an observable gauge: the last value set (``None``: never set, not reported)."""

    __slots__ = ("attributes", "value")

    def __init__(self, attributes: Mapping[str, Any]) -> None:
        self.attributes = attributes
        self.value: float | None = None


class _ObservedSeries:
    """The series of one observable instrument, one per attribute set. Callers add or set under `lock`, which the
    collection takes too."""

    series_class: type[CounterSeries] | type[GaugeSeries]

    def __init__(self, name: str, lock: threading.Lock) -> None:
        self.name = name
        self._lock = lock
        self._series: dict[frozenset[tuple[str, type, Any]], Any] = {}

    def series(self, attributes: Mapping[str, Any]) -> Any:
        """The series for this attribute set, created on first use (callers keep it: this is not the hot path)."""
        key = _series_key(attributes)
        with self._lock:
            found = self._series.get(key)
            if found is None:
                if len(self._series) >= MAX_SERIES:
                    key, attributes = _OVERFLOW_KEY, OVERFLOW_ATTRIBUTES
                    found = self._series.get(key)
                if found is None:
                    found = self._series[key] = self.series_class(dict(attributes))
        return found


class ObservedCounter(_ObservedSeries):
    """The series of one observable counter."""

    series_class = CounterSeries

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        """Every series' cumulative total (the callback the OTel SDK calls at collection time)."""
        try:
            with self._lock:
                totals = []
                for series in self._series.values():
                    series.total = series.added + series.total
                    series.added = 0
                    totals.append((series.total, series.attributes))
            return [Observation(total, attributes) for total, attributes in totals]
        except Exception as exc:
            report(f"{self.name} collection", exc)
            return ()


class ObservedGauge(_ObservedSeries):
    """The series of one observable gauge. Setting a value is one attribute store: no lock needed."""

    series_class = GaugeSeries

    def observe(self, options: CallbackOptions) -> Iterable[Observation]:
        """The last value of every series that has one."""
        try:
            with self._lock:
                values = [(series.value, series.attributes) for series in self._series.values()]
            return [Observation(value, attributes) for value, attributes in values if value is not None]
        except Exception as exc:
            report(f"{self.name} collection", exc)
            return ()


_OVERFLOW_KEY = _series_key(OVERFLOW_ATTRIBUTES)

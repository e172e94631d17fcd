"""The README's metric table is the list of instruments tokenrate actually declares: names, kinds and units."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from opentelemetry.metrics import NoOpMeter

from tokenrate.telemetry.instruments import create_instruments

ROOT = Path(__file__).resolve().parents[2]


class DeclarationsMeter(NoOpMeter):
    """An OTel API meter that notes each instrument declared on it: (kind as the README names it, unit) by name."""

    def __init__(self) -> None:
        super().__init__("readme-check")
        self.declared: dict[str, tuple[str, str]] = {}

    def _note(self, name: str, kind: str, unit: str) -> None:
        assert name not in self.declared, f"{name} declared twice"
        self.declared[name] = (kind, unit)

    def create_counter(self, name: str, unit: str = "", *args: Any, **kwargs: Any) -> Any:
        self._note(name, "Counter", unit)
        return super().create_counter(name, unit, *args, **kwargs)

    def create_up_down_counter(self, name: str, unit: str = "", *args: Any, **kwargs: Any) -> Any:
        self._note(name, "UpDownCounter", unit)
        return super().create_up_down_counter(name, unit, *args, **kwargs)

    def create_histogram(self, name: str, unit: str = "", *args: Any, **kwargs: Any) -> Any:
        self._note(name, "Histogram", unit)
        return super().create_histogram(name, unit, *args, **kwargs)

    def create_gauge(self, name: str, unit: str = "", *args: Any, **kwargs: Any) -> Any:
        self._note(name, "Gauge", unit)
        return super().create_gauge(name, unit, *args, **kwargs)

    def create_observable_counter(self, name: str, callbacks: Any = None, unit: str = "", *args: Any, **kw: Any) -> Any:
        self._note(name, "Counter (observable)", unit)
        return super().create_observable_counter(name, callbacks, unit, *args, **kw)

    def create_observable_gauge(self, name: str, callbacks: Any = None, unit: str = "", *args: Any, **kw: Any) -> Any:
        self._note(name, "Gauge (observable)", unit)
        return super().create_observable_gauge(name, callbacks, unit, *args, **kw)

    def create_observable_up_down_counter(
        self, name: str, callbacks: Any = None, unit: str = "", *args: Any, **kw: Any
    ) -> Any:
        self._note(name, "UpDownCounter (observable)", unit)
        return super().create_observable_up_down_counter(name, callbacks, unit, *args, **kw)


def _readme_metric_rows() -> dict[str, tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Metrics", 1)[1].split("\n### ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`([a-z_.]+)`\s*\|\s*([^|]+?)\s*\|\s*`([^`]+)`\s*\|", line)
        if match:
            name, kind, unit = match.groups()
            assert name not in rows, f"{name} twice in the README's table"
            rows[name] = (kind, unit)
    return rows


def test_readme_metric_table_lists_every_declared_instrument_with_its_kind_and_unit():
    meter = DeclarationsMeter()
    create_instruments(meter)
    rows = _readme_metric_rows()
    assert rows, "no table rows found: the pattern is wrong"
    assert rows == meter.declared

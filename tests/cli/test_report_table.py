"""``tokenrate report``'s table: fits the terminal, says why a cost is unknown, and counts cancelled calls apart."""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ledger"))
from ledger_helpers import DAY, T0, make_record

from tokenrate.cli.report import build_report, render_table
from tokenrate.ledger import Ledger
from tokenrate.view._format import fmt_usd

CANCELLED = replace(
    make_record(ts=T0 + 5, model="gpt-4o-mini", input=None, output=None, cost=None), outcome="cancelled"
)
UNPRICED = make_record(ts=T0 + DAY, model="mystery-model", input=10, output=5, cost=None, throttled_waits=(1.5,))
PRICED = make_record(ts=T0, model="gpt-4o-mini", input=12_345_678, output=2_345_678, cache_read=1_000_000, cost=0.00004)


def _report(tmp_path: Path, records) -> dict:
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(path, register_atexit=False)
    for record in records:
        ledger.call_ended(None, record)
    assert ledger.flush()
    ledger.close()
    from zoneinfo import ZoneInfo

    return build_report(path, by="day", since=None, until=None, tz=ZoneInfo("UTC"))


@pytest.mark.parametrize("width", [80, 100, 140])
def test_the_table_fits_the_terminal_with_unknown_costs(tmp_path, width):
    report = _report(tmp_path, [PRICED, CANCELLED, UNPRICED])
    text = render_table(report, chart=False, width=width)
    table = [line for line in text.splitlines() if "│" in line or "┃" in line]
    assert table, text
    for line in table:
        assert len(line) <= width, line
        assert "…" not in line, line  # nothing was cut
    header = table[0]
    for column in ("calls", "input", "output", "cost", "throttled", "throttle wait"):
        assert column in header


def test_unknown_cost_is_never_shown_as_zero_and_the_note_names_each_reason(tmp_path):
    report = _report(tmp_path, [PRICED, CANCELLED, UNPRICED])
    text = render_table(report, chart=True, width=140)
    rows = {line.split("│")[0].strip(): line for line in text.splitlines() if "│" in line}
    assert "≥" + fmt_usd(PRICED.cost_usd) in rows["2026-03-01"]  # known part, marked as a lower bound
    assert "?" in rows["2026-03-02"]  # nothing known that day: not $0
    assert not re.search(r"\$0\.0+(?!\d)", text), text  # no known non-zero cost reads as zero
    assert "1 reported no usage (e.g. cancelled)" in text
    assert "1 used a model without a known price" in text
    assert "https://" in text  # a link that works for pip users, not a repository path
    assert "1 call(s) were cancelled by the user (not errors)" in text


def test_a_cancelled_call_is_not_an_error_and_needs_no_price(tmp_path):
    report = _report(tmp_path, [PRICED, CANCELLED])
    assert report["total"]["errors"] == 0
    assert report["total"]["cancelled"] == 1
    text = render_table(report, chart=False, width=120)
    assert "TOKENRATE_PRICES" not in text  # the model has a price: no advice to add one
    assert "reported no usage" in text
    errors = re.search(r"^total\s+│\s+(\d+)\s+│\s+(\d+)", text, re.MULTILINE)
    assert errors, text
    assert errors.groups() == ("2", "0")

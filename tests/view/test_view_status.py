"""The one-line status: exact strings for hand-built snapshots, and narrowing to a width."""

from __future__ import annotations

import pytest

from tokenrate.records import BudgetLine
from tokenrate.view import RateLimitState, Rates, Snapshot, ThrottleTotals, TokenTotals, format_status
from tokenrate.view._format import fmt_seconds, fmt_tokens, fmt_usd

NOW = 1_700_000_000.0


def busy_session(**changes: object) -> Snapshot:
    base = Snapshot(
        updated_at=NOW,
        requests=40,
        tokens=TokenTotals(input=80_100, output=45_300, cache_read=20_000),
        rates=Rates(tpm=2450, rpm=12),
        throttle=ThrottleTotals(events=3, wait_s=9.5, wall_s=6.2, retries=3),  # the status line shows wall-clock time
        cost_usd=0.42,
        rate_limits=(
            RateLimitState("openai", "tokens", 100_000, 12_000, 20.0, 0.88, NOW - 5),
            RateLimitState("openai", "requests", 500, 450, 1.0, 0.1, NOW - 5),
        ),
    )
    return Snapshot(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def test_zero_session():
    assert format_status(Snapshot()) == "TPM 0 · RPM 0 · 0 tok · $0.00"


def test_busy_session():
    assert format_status(busy_session()) == (
        "TPM 2,450 · RPM 12 · 125.4k tok (in 80.1k / out 45.3k) · $0.42 · throttled 3× 6.2 s · limit 88% used"
    )


def test_unknowns_are_marked_not_hidden():
    snap = Snapshot(requests=3, unknown_usage_calls=3, unknown_cost_calls=3, rates=Rates(rpm=3))
    assert format_status(snap) == "TPM 0 · RPM 3 · ? tok · cost ?"
    partial = busy_session(unknown_usage_calls=1, unknown_cost_calls=2, rate_limits=())
    assert format_status(partial) == (
        "TPM 2,450 · RPM 12 · ≥125.4k tok (in 80.1k / out 45.3k) · ≥$0.42 · throttled 3× 6.2 s"
    )


def test_errors_budgets_and_a_refilled_limit_window():
    budgets = (
        BudgetLine("daily_usd", "day", "USD", 4.2, 10.0, "ok"),
        BudgetLine("monthly_tokens", "month", "tokens", 9.1e6, 1e7, "warning"),
    )
    snap = busy_session(
        errors=1,
        budgets=budgets,
        throttle=ThrottleTotals(events=1, wait_s=0.0),
        rate_limits=(RateLimitState("openai", "tokens", 1000, 0, 2.0, 1.0, NOW - 10),),  # reset 8 s ago
        tokens=TokenTotals(input=1_234_567, output=999_960),
        cost_usd=1234.5,
    )
    assert format_status(snap) == (
        "TPM 2,450 · RPM 12 · 2.2M tok (in 1.2M / out 1.0M) · $1,234.50 · throttled 1× · 1 error"
        " · budget monthly_tokens 91% warning, daily_usd 42%"
    )


@pytest.mark.parametrize(
    ("width", "expected"),
    [
        (200, "TPM 2,450 · RPM 12 · 125.4k tok (in 80.1k / out 45.3k) · $0.42 · throttled 3× 6.2 s · limit 88% used"),
        (80, "TPM 2,450 · RPM 12 · 125.4k tok · $0.42 · throttled 3× 6.2 s · limit 88% used"),
        (70, "TPM 2,450 · 125.4k tok · $0.42 · throttled 3× 6.2 s · limit 88% used"),
        (40, "TPM 2,450 · $0.42 · throttled 3× 6.2 s"),
        (25, "TPM 2,450 · $0.42"),
        (9, "TPM 2,450"),
        (5, "TPM …"),
    ],
)
def test_width_drops_the_least_important_parts_first(width: int, expected: str):
    line = format_status(busy_session(), width=width)
    assert line == expected
    assert len(line) <= width


def test_no_colour_codes():
    assert "\x1b" not in format_status(busy_session(errors=2))


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (999, "999"), (1000, "1.0k"), (125_449, "125.4k"), (999_960, "1.0M"), (3_250_000_000, "3.2B")],
)
def test_token_counts(value: int, text: str):
    assert fmt_tokens(value) == text


@pytest.mark.parametrize(("value", "text"), [(0, "$0.00"), (0.0031, "$0.0031"), (0.42, "$0.42"), (1234.5, "$1,234.50")])
def test_money(value: float, text: str):
    assert fmt_usd(value) == text


@pytest.mark.parametrize(("value", "text"), [(6.25, "6.2 s"), (245, "4m05s"), (3720, "1h02m")])
def test_durations(value: float, text: str):
    assert fmt_seconds(value) == text

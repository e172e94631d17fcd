"""The budget utilization gauge reads the configured budgets at collection time."""

from __future__ import annotations

import openai
import pytest

from tokenrate.budget import Budget, BudgetSpec, set_budget
from tokenrate.simulator import UsagePlan


@pytest.fixture
def budget():
    budget = Budget([BudgetSpec("day", "tokens", 1_000), BudgetSpec("month", "tokens", 10_000)])
    set_budget(budget)
    try:
        yield budget
    finally:
        set_budget(None)


def test_budget_utilization_gauge_follows_spend(sim, telemetry, budget):
    assert {p.value for p in telemetry.points("tokenrate.budget.utilization")} == {0.0}
    sim.usage = UsagePlan(input=150, output=50)
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    by_period = {
        p.attributes["tokenrate.budget.period"]: p.value
        for p in telemetry.points("tokenrate.budget.utilization", tokenrate__budget__unit="tokens")
    }
    assert by_period == {"day": pytest.approx(0.2), "month": pytest.approx(0.02)}


def test_no_budget_no_gauge_points(telemetry):
    assert telemetry.points("tokenrate.budget.utilization") == []

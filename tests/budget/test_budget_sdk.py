"""Budgets, cost and the ledger with the real SDKs against the simulated provider."""

from __future__ import annotations

import logging
import sqlite3

import anthropic
import openai
import pytest

import tokenrate
import tokenrate.budget as budget_mod
from tokenrate import _setup as setup_mod
from tokenrate._setup import configure_from_env
from tokenrate.budget import Budget, BudgetSpec, get_budget, set_budget
from tokenrate.cost import get_pricer, set_pricer
from tokenrate.errors import BudgetExceededError
from tokenrate.ledger import Ledger, configure_ledger
from tokenrate.pipeline import local_sinks
from tokenrate.simulator import UsagePlan

genai = pytest.importorskip("google.genai", reason="google-genai 3.x needs Python >= 3.11")
types = pytest.importorskip("google.genai.types")

genai_prices = pytest.importorskip("genai_prices")

MESSAGES = [{"role": "user", "content": "Say hello"}]


def call_openai(sim, **kwargs):
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    try:
        result = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, **kwargs)
        if kwargs.get("stream"):
            result = list(result)
        return result
    finally:
        client.close()


def call_anthropic(sim):
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="x", max_retries=0)
    try:
        return client.messages.create(model="claude-sonnet-4-6", max_tokens=50, messages=MESSAGES)
    finally:
        client.close()


def call_gemini(sim):
    client = genai.Client(api_key="x", http_options=types.HttpOptions(base_url=sim.gemini_base_url))
    return client.models.generate_content(model="gemini-2.5-flash", contents="Say hello")


CALLERS = {"openai": call_openai, "anthropic": call_anthropic, "gemini": call_gemini}


@pytest.mark.parametrize("sdk", list(CALLERS))
def test_enforced_token_budget_stops_the_next_call_before_it_is_sent(sim, telemetry, records, sdk):
    sim.usage = UsagePlan(input=120, output=30)
    budget = Budget([BudgetSpec("day", "tokens", 100)], enforce=True)
    set_budget(budget)
    try:
        CALLERS[sdk](sim)  # allowed: nothing spent yet
        sim.wait_for_served(1)
        assert budget.lines()[0].spent == 150
        assert budget.lines()[0].state == "exceeded"

        with pytest.raises(BudgetExceededError) as excinfo:
            CALLERS[sdk](sim)
        assert "daily tokens budget is exceeded" in str(excinfo.value)
        assert len(sim.served) == 1  # the refused call never reached the provider
    finally:
        set_budget(None)


def test_usd_budget_counts_real_costs_warns_at_thresholds_and_enforces(sim, telemetry, records, priced, caplog):
    sim.usage = UsagePlan(input=2_000, output=500, cache_read=1_000)
    completion = call_openai(sim)  # no budget yet: learn what one call costs
    cost = records.last.cost_usd
    expected = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=2_000, cache_read_tokens=1_000, output_tokens=500),
        completion.model,
        provider_id="openai",
    )
    assert cost == pytest.approx(float(expected.total_price), rel=1e-12)
    assert cost > 0

    caplog.set_level(logging.WARNING, logger="tokenrate.budget")
    budget = Budget([BudgetSpec("day", "USD", cost * 2.5)], enforce=True)
    set_budget(budget)
    try:
        call_openai(sim)  # 40 %
        assert [r.getMessage() for r in caplog.records if r.name == "tokenrate.budget"] == []
        call_openai(sim, stream=True)  # 80 %: a stream counts like any call
        call_openai(sim)  # 120 %
        messages = [r.getMessage() for r in caplog.records if r.name == "tokenrate.budget"]
        assert len(messages) == 2
        assert "75% used" in messages[0]
        assert "exceeded" in messages[1]
        assert budget.lines()[0].spent == pytest.approx(3 * cost)
        served = len(sim.served)
        with pytest.raises(BudgetExceededError):
            call_openai(sim, stream=True)
        assert len(sim.served) == served
    finally:
        set_budget(None)


def test_configure_from_env_sets_up_cost_ledger_and_budgets(sim, telemetry, records, tmp_path, monkeypatch):
    ledger_path = tmp_path / "ledger.sqlite3"
    prices = tmp_path / "prices.toml"
    prices.write_text('[[models]]\nmodel = "gpt-4o-mini"\ninput = 100\noutput = 400\n', encoding="utf-8")
    monkeypatch.setenv("TOKENRATE_LEDGER", str(ledger_path))
    monkeypatch.setenv("TOKENRATE_PRICES", str(prices))
    monkeypatch.setenv("TOKENRATE_BUDGET_DAILY_USD", "1.0")
    monkeypatch.setenv("TOKENRATE_BUDGET_MONTHLY_TOKENS", "1000000")
    monkeypatch.setattr(setup_mod, "_setup", None)
    try:
        setup = configure_from_env()
        assert configure_from_env() is setup  # idempotent
        assert isinstance(setup.ledger, Ledger)
        assert setup.ledger.path == ledger_path
        assert setup.budget is get_budget()
        assert setup.pricer is get_pricer()
        assert setup.budget in local_sinks()
        assert setup.ledger in local_sinks()
        assert tokenrate.snapshot().ledger.path == str(ledger_path)  # the view shows the ledger's status

        sim.usage = UsagePlan(input=1_000, output=250)
        call_openai(sim)
        expected_cost = (1_000 * 100 + 250 * 400) / 1e6  # the custom price wins: $0.20
        assert records.last.cost_usd == pytest.approx(expected_cost)
        lines = {line.name: line for line in budget_mod.budget_lines()}
        assert lines["daily_usd"].spent == pytest.approx(expected_cost)
        assert lines["monthly_tokens"].spent == 1_250
        # The view shows the same budget lines.
        assert {b.name: b.spent for b in tokenrate.snapshot().budgets} == {
            name: line.spent for name, line in lines.items()
        }

        assert setup.ledger.flush()
        conn = sqlite3.connect(str(ledger_path))
        row = conn.execute(
            "SELECT provider, request_model, input_tokens, output_tokens, cost_usd FROM calls"
        ).fetchone()
        conn.close()
        assert row == ("openai", "gpt-4o-mini", 1_000, 250, pytest.approx(expected_cost))
    finally:
        set_budget(None)
        configure_ledger(None)
        set_pricer(None)

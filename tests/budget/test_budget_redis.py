"""Budgets shared across processes through a real Redis: one limit for all, outages survived, no password shown."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import openai
import pytest
from budget_helpers import wait_for
from redis_server import PASSWORD, RedisServer

import tokenrate
from tokenrate import _setup
from tokenrate.budget import get_budget, set_budget
from tokenrate.simulator import Step, UsagePlan

WORKER = Path(__file__).with_name("budget_worker.py")
PRICE_PER_CALL = 0.1
"""100 input tokens at $1,000 per million (the test price file), output free."""
USAGE = UsagePlan(input=100, output=10)


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def budget_files(tmp_path):
    prices = tmp_path / "prices.toml"
    prices.write_text('[[models]]\nmodel = "gpt-4o-mini"\ninput = 1000\noutput = 0\n', encoding="utf-8")
    budgets = tmp_path / "budgets.toml"
    budgets.write_text(
        '[[budget]]\nname = "per-user"\nscope = { "user.id" = "*" }\nperiod = "day"\nlimit_usd = 3\nenforce = true\n',
        encoding="utf-8",
    )
    return prices, budgets


def test_two_processes_with_one_per_user_budget_stop_at_the_limit_together(sim, redis_server, budget_files):
    sim.usage = USAGE
    sim.script(Step.delay(0.05, times=1000))  # calls overlap across the two processes
    prices, budgets = budget_files
    threads = 4
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENRATE_")}
    env.update(
        TOKENRATE_PRICES=str(prices),
        TOKENRATE_BUDGETS=str(budgets),
        TOKENRATE_BUDGET_STORE=redis_server.url,
        TOKENRATE_BUDGET_STALENESS="0",  # every call checks the shared figure
        TOKENRATE_BUDGET_STORE_TIMEOUT="2",  # a loaded CI machine: a slow answer is still an answer here
    )
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), sim.openai_base_url, "alice", str(threads)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        assert PASSWORD not in err
        results.append(json.loads(out.strip().splitlines()[-1]))

    went_through = sum(r["ok"] for r in results)
    limit_calls = round(3 / PRICE_PER_CALL)
    in_flight = 2 * threads  # a call is checked when it starts: at most every thread's call overshoots
    assert all(r["refused"] >= 1 for r in results), results  # both processes were stopped
    assert all(r["ok"] >= 1 for r in results), results  # and both spent from the one budget
    assert limit_calls <= went_through <= limit_calls + in_flight, results
    # Every call that went through is in the shared counter (each process flushed before it exited).
    assert redis_server.total() == pytest.approx(went_through * PRICE_PER_CALL)


def test_redis_killed_mid_run_calls_go_on_warned_once_and_totals_reconcile(
    sim, telemetry, redis_server, budget_files, monkeypatch, caplog
):
    sim.usage = USAGE
    prices, budgets = budget_files
    budgets.write_text(
        '[[budget]]\nname = "per-user"\nscope = { "user.id" = "*" }\nperiod = "day"\nlimit_usd = 100\nenforce = true\n',
        encoding="utf-8",
    )
    for name in [k for k in os.environ if k.startswith("TOKENRATE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TOKENRATE_PRICES", str(prices))
    monkeypatch.setenv("TOKENRATE_BUDGETS", str(budgets))
    monkeypatch.setenv("TOKENRATE_BUDGET_STORE", redis_server.url)
    monkeypatch.setenv("TOKENRATE_BUDGET_STALENESS", "0.1")
    monkeypatch.setenv("TOKENRATE_BUDGET_STORE_TIMEOUT", "0.2")
    monkeypatch.setattr(_setup, "_setup", None)
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)

    def calls(n: int) -> None:
        for _ in range(n):
            with tokenrate.attributes(user_id="bob"):
                client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])

    caplog.set_level(logging.INFO, logger="tokenrate")
    try:
        _setup.configure_from_env(force=True)
        calls(5)
        wait_for(lambda: redis_server.total() == pytest.approx(0.5), "the first spend in Redis")

        redis_server.kill()
        calls(5)  # the store is gone: the calls go on, counted locally
        (line,) = get_budget().lines()
        assert line.spent == pytest.approx(1.0)
        down = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(down) == 1
        assert down[0].levelno == logging.WARNING

        redis_server.start()  # same port, same append-only file: the first 0.5 is still there
        calls(2)
        wait_for(lambda: redis_server.total() == pytest.approx(1.2), "the spend made while Redis was down")
        assert get_budget().lines()[0].spent == pytest.approx(1.2)
        assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1  # once, not per call
        assert PASSWORD not in caplog.text
    finally:
        set_budget(None)


def test_an_unreachable_store_never_shows_its_password(sim, telemetry, budget_files, monkeypatch, caplog, capsys):
    from redis_server import free_port

    from tokenrate import diagnostics

    prices, budgets = budget_files
    url = f"redis://user:{PASSWORD}@127.0.0.1:{free_port()}/0"  # nobody listens there
    for name in [k for k in os.environ if k.startswith("TOKENRATE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("TOKENRATE_PRICES", str(prices))
    monkeypatch.setenv("TOKENRATE_BUDGETS", str(budgets))
    monkeypatch.setenv("TOKENRATE_BUDGET_STORE", url)
    monkeypatch.setattr(_setup, "_setup", None)
    sim.usage = USAGE
    caplog.set_level(logging.DEBUG, logger="tokenrate")
    try:
        _setup.configure_from_env(force=True)
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
        with tokenrate.attributes(user_id="carol"):
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert get_budget().lines()[0].spent == pytest.approx(PRICE_PER_CALL)  # local accounting
        report = diagnostics.collect()
        diagnostics.render(report)
        shown = capsys.readouterr().out + json.dumps(report) + tokenrate.snapshot().to_json() + caplog.text
        assert "unreachable" in caplog.text
        assert "***@127.0.0.1" in shown
        assert PASSWORD not in shown
    finally:
        set_budget(None)

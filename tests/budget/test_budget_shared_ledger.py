"""One machine: processes writing the same ledger see each other's spend in their budgets within the staleness."""

from __future__ import annotations

import time

import pytest
from budget_helpers import wait_for

import tokenrate
from tokenrate.budget import Budget, BudgetSpec, Scope, share
from tokenrate.budget.stores import LedgerStore
from tokenrate.errors import BudgetExceededError
from tokenrate.ledger import Ledger
from tokenrate.pipeline import Pipeline, add_local_sink, remove_local_sink
from tokenrate.recording import ActiveCall
from tokenrate.records import CallInfo, CallRecord, TokenUsage

INFO = CallInfo(provider="openai", operation="chat", request_model="gpt-4o")


def spend(user: str, cost: float) -> CallRecord:
    return CallRecord(
        info=INFO,
        started_at=0.0,
        ended_at=1.0,
        started_unix=time.time(),
        usage=TokenUsage(input=100, output=10),
        cost_usd=cost,
        attributes={"user.id": user},
    )


class Process:
    """What one process has: its ledger writer (its own session) and its budgets, shared through the ledger."""

    def __init__(self, path, spec: BudgetSpec) -> None:
        self.ledger = Ledger(path, register_atexit=False, interval_s=0.05)
        self.budget = Budget([spec])
        share(self.budget, LedgerStore(self.ledger, staleness_s=0.05))

    def call(self, record: CallRecord) -> None:
        """A call ending here: counted by this process's budget and written to the ledger (as the sinks do)."""
        self.budget.add(record)
        self.ledger.append(record)

    def spent(self, user: str) -> float:
        return sum(line.spent for line in self.budget.lines() if line.scope == f"user.id={user}")

    def close(self) -> None:
        self.budget.close()
        self.ledger.close()


def test_each_process_counts_the_others_committed_spend_and_enforces_on_the_sum(tmp_path):
    spec = BudgetSpec("day", "USD", 1.0, name="per-user", scope=Scope.parse({"user.id": "*"}), enforce=True)
    path = tmp_path / "ledger.sqlite3"
    a, b = Process(path, spec), Process(path, spec)
    try:
        a.call(spend("alice", 0.3))
        a.call(spend("alice", 0.3))
        b.call(spend("alice", 0.3))
        b.call(spend("bob", 0.1))
        wait_for(lambda: a.spent("alice") == pytest.approx(0.9) and b.spent("alice") == pytest.approx(0.9), "0.9")
        assert a.spent("bob") == pytest.approx(0.1)
        assert b.spent("bob") == pytest.approx(0.1)  # its own call, counted once (the follower skips its session)

        a.call(spend("alice", 0.2))  # A takes alice past her limit: B refuses her next call
        wait_for(lambda: b.spent("alice") == pytest.approx(1.1), "B to see A's last call")
        add_local_sink(b.budget)
        try:
            with tokenrate.attributes(user_id="alice"), pytest.raises(BudgetExceededError):
                ActiveCall(Pipeline(None), INFO)
            with tokenrate.attributes(user_id="bob"):
                ActiveCall(Pipeline(None), INFO).finish()
        finally:
            remove_local_sink(b.budget)
    finally:
        a.close()
        b.close()


def test_a_process_starting_later_begins_from_what_the_ledger_holds(tmp_path):
    spec = BudgetSpec("day", "tokens", 1_000, name="per-user", scope=Scope.parse({"user.id": "*"}))
    path = tmp_path / "ledger.sqlite3"
    first = Process(path, spec)
    try:
        for _ in range(3):
            first.call(spend("carol", 0.0))
        assert first.ledger.flush()
        second = Process(path, spec)  # loads the ledger when it starts
        try:
            assert second.spent("carol") == 330
        finally:
            second.close()
    finally:
        first.close()

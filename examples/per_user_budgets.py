"""A web-app-style service: many users' requests on a thread pool, a $ budget per user, a report per user.

    python examples/per_user_budgets.py [--dir DIR]

Each request handler runs inside ``tokenrate.attributes(user_id=...)``, so every LLM call it makes carries the
user. A budgets file gives every user the same daily dollar budget, enforced: once a user has spent it, that
user's next calls raise `tokenrate.errors.BudgetExceededError` before anything is sent, while everyone else
carries on. The ledger keeps every call with its user, and ``tokenrate report --by user.id`` shows who spent
what, each user's trend and where each user stands against the budget. What is set up here (in ``DIR``, a
temporary directory by default) is what you would put in your deployment:

* ``TOKENRATE_BUDGETS=budgets.toml`` — the budgets;
* ``TOKENRATE_LEDGER=ledger.sqlite3`` — the ledger (it also shares budgets between processes on this machine;
  ``TOKENRATE_BUDGET_STORE=redis://...`` shares them across machines);
* ``TOKENRATE_PRICES=prices.toml`` — fixed prices, so the figures are the same wherever this runs.

User ids here are pseudonyms: a user id is personal data (see the README). The provider is the local
*simulated* one: no model is called and nothing is billed.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai

import tokenrate
from tokenrate.errors import BudgetExceededError
from tokenrate.simulator import SimulatedProvider, Step, UsagePlan

BUDGETS = """\
[[budget]]                      # every user: half a cent a day, hard stop
name = "per-user"
scope = { "user.id" = "*" }
period = "day"
limit_usd = 0.005
enforce = true
"""
PRICES = """\
[[models]]                      # USD per million tokens
model = "gpt-4o-mini"
input = 0.15
output = 0.60
"""
# (user, requests): one heavy user among light ones, interleaved as a web server would see them.
TRAFFIC = [("u-alice", 20), ("u-bob", 4), ("u-carol", 3), ("u-dave", 2), ("u-erin", 5), ("u-frank", 1)]


def configure(directory: Path) -> Path:
    """Write the budgets and prices files and point tokenrate at them (before it is instrumented)."""
    (directory / "budgets.toml").write_text(BUDGETS, encoding="utf-8")
    (directory / "prices.toml").write_text(PRICES, encoding="utf-8")
    ledger = directory / "ledger.sqlite3"
    os.environ["TOKENRATE_BUDGETS"] = str(directory / "budgets.toml")
    os.environ["TOKENRATE_PRICES"] = str(directory / "prices.toml")
    os.environ["TOKENRATE_LEDGER"] = str(ledger)
    return ledger


def serve(client: openai.OpenAI, user: str) -> str:
    """One request of one user: whatever LLM calls it makes are attributed to them."""
    with tokenrate.attributes(user_id=user, feature="chat"):
        try:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hello"}])
        except BudgetExceededError:
            return "refused"  # a real app would answer 429 / "daily limit reached" to this user only
    return "served"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="where the budgets, prices and ledger files go (default: temp)")
    args = parser.parse_args()
    directory = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="tokenrate-per-user-"))
    directory.mkdir(parents=True, exist_ok=True)
    ledger = configure(directory)
    tokenrate.instrument()  # reads the TOKENRATE_* settings once

    requests = [user for round_ in range(max(n for _, n in TRAFFIC)) for user, n in TRAFFIC if round_ < n]
    outcomes: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    lock = threading.Lock()
    with SimulatedProvider(usage=UsagePlan(input=2000, output=500)) as sim:
        sim.script(Step.delay(0.02, times=len(requests)))  # a little latency, so requests overlap
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-simulated")

        def handle(user: str) -> None:
            outcome = serve(client, user)
            with lock:
                outcomes[user][outcome] += 1

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(handle, requests))

    for user, _ in TRAFFIC:
        print(f"{user}: {outcomes[user]['served']} served, {outcomes[user]['refused']} refused")
    for row in tokenrate.snapshot().by("user.id"):
        print(f"  view: {row.value} {row.requests} calls, ${row.cost_usd:.4f}")

    from tokenrate.cli import main as tokenrate_cli
    from tokenrate.ledger import flush

    flush()  # the ledger writes in the background: make sure every call is in it before reading it
    print(f"\n$ tokenrate report --by user.id --ledger {ledger}", flush=True)
    return tokenrate_cli(["report", "--by", "user.id", "--ledger", str(ledger), "--no-chart"])


if __name__ == "__main__":
    sys.exit(main())

"""A daily budget: a WARNING when 50 % and 90 % are spent, then (with enforcement) calls refused at 100 %.

    python examples/budgets.py

Budgets are configured from the environment when tokenrate is first instrumented; usually you export these in
the shell or the service's deployment. They are set here (unless already set) so the example runs as is:

* ``TOKENRATE_BUDGET_DAILY_USD`` (also ``_MONTHLY_USD``, ``_DAILY_TOKENS``, ``_MONTHLY_TOKENS``);
* ``TOKENRATE_BUDGET_THRESHOLDS``: percents that log one WARNING each per period (100 is always included);
* ``TOKENRATE_BUDGET_ENFORCE=true``: refuse new calls (``BudgetExceededError``, before anything is sent) while a
  budget is exceeded. Without it, calls continue and only the warnings say so.

With ``TOKENRATE_LEDGER`` set, the budget starts from what the ledger already holds for today (see docs/cost.md).
The provider is the local *simulated* one: no model is called and nothing is billed; costs are what these token
counts would cost at list prices.
"""

from __future__ import annotations

import logging
import os
import sys

import openai

import tokenrate
from tokenrate.errors import BudgetExceededError
from tokenrate.simulator import SimulatedProvider, UsagePlan


def main() -> int:
    os.environ.setdefault("TOKENRATE_BUDGET_DAILY_USD", "0.0025")
    os.environ.setdefault("TOKENRATE_BUDGET_THRESHOLDS", "50,90")
    os.environ.setdefault("TOKENRATE_BUDGET_ENFORCE", "true")
    # Budget warnings go to the "tokenrate.budget" logger: route them wherever your logs go.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    tokenrate.instrument()  # reads TOKENRATE_BUDGET_* (and the rest of tokenrate's settings) once

    with SimulatedProvider(usage=UsagePlan(input=2000, output=500)) as sim:
        client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-simulated")
        for i in range(1, 21):
            try:
                client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
            except BudgetExceededError as exc:  # raised by tokenrate before the request is sent
                print(f"call {i}: refused: {exc}")
                break
            budget = tokenrate.snapshot().budgets[0]
            print(
                f"call {i}: {budget.name} ${budget.spent:.4f} of ${budget.limit:.4f} "
                f"({budget.utilization:.0%}, {budget.state})"
            )
        print(f"requests that reached the provider: {len(sim.served)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

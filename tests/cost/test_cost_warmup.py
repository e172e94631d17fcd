"""Calls priced while genai-prices is still loading in the background get the right price, not "unknown".

Run in a fresh interpreter: the race only exists while genai-prices is being imported for the first time.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import json, threading
    from tokenrate.cost import Pricer, configure_pricing, get_pricer
    from tokenrate.records import CallInfo, CallRecord, TokenUsage

    def record(host):
        return CallRecord(info=CallInfo("openai", "chat", "gpt-4o-mini", host, 443), started_at=0.0, ended_at=1.0,
                          started_unix=1.7e9, usage=TokenUsage(120, 30), status_code=200)

    configure_pricing(register=False)   # starts loading genai-prices in a background thread
    pricer = get_pricer()
    results = [pricer.cost(record("api.openai.com"))]   # at once, while it loads
    threads = [threading.Thread(target=lambda h=h: results.append(pricer.cost(record(h))))
               for h in ("api.openai.com", "127.0.0.1", None)]
    for t in threads: t.start()
    for t in threads: t.join()
    print(json.dumps({"results": results, "expected": Pricer().cost(record("api.openai.com")),
                      "unknown": len(pricer.unknown_cost_calls())}))
    """
)


@pytest.mark.skipif(importlib.util.find_spec("genai_prices") is None, reason="genai-prices is not installed")
def test_first_calls_during_warm_up_are_priced():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True)
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["expected"] is not None
    assert outcome["results"] == [outcome["expected"]] * 4
    assert outcome["unknown"] == 0

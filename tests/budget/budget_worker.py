"""A worker process for the shared-budget tests: calls the simulator as one user until its budget refuses.

Usage: ``python budget_worker.py BASE_URL USER THREADS``; budgets come from the environment (``TOKENRATE_*``).
Prints ``ready``, starts when a line arrives on stdin, then prints one JSON line: calls that went through and
calls that were refused.
"""

from __future__ import annotations

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import openai

import tokenrate
from tokenrate.errors import BudgetExceededError


def main() -> None:
    base_url, user, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tokenrate.instrument(["openai"])
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    print("ready", flush=True)
    sys.stdin.readline()  # start together with the other workers
    counts = {"ok": 0, "refused": 0}
    lock = threading.Lock()
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            try:
                with tokenrate.attributes(user_id=user):
                    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
                outcome = "ok"
            except BudgetExceededError:
                outcome = "refused"
                stop.set()  # the user's budget is used up: this worker's siblings stop after their call
            with lock:
                counts[outcome] += 1

    with ThreadPoolExecutor(threads) as pool:
        for _ in range(threads):
            pool.submit(work)
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()

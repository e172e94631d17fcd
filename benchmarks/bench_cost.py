"""How long the cost stage (`tokenrate.cost.price_record`) takes per call, in µs.

Cases: a model genai-prices knows (flat price: the fast path; tiered price: the full genai-prices path), a
model nobody knows (cached miss), a custom-priced model, and raw ``genai_prices.calc_price`` for comparison.
Run: ``.venv/bin/python benchmarks/bench_cost.py``
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from tokenrate.cost import Pricer, load_price_file, price_record, set_pricer
from tokenrate.records import CallInfo, CallRecord, TokenUsage

N = 20_000


def record(provider: str, model: str, **usage: int) -> CallRecord:
    return CallRecord(
        info=CallInfo(provider=provider, operation="chat", request_model=model),
        started_at=0.0,
        ended_at=1.0,
        started_unix=time.time(),
        usage=TokenUsage(**usage),
    )


def per_call_us(fn, arg, n: int = N) -> float:
    fn(arg)  # warm the caches
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(n):
            fn(arg)
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


def main() -> None:
    logging.disable(logging.WARNING)  # the unknown-model warning is expected here
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "prices.toml")
        path.write_text('[[models]]\nmodel = "acme-ft-1"\ninput = 0.5\noutput = 1.5\ncache_read = 0.05\n')
        set_pricer(Pricer(load_price_file(path)))

    cases = {
        "known model, flat price (openai gpt-4o)": record(
            "openai", "gpt-4o", input=10_000, cache_read=4_000, output=500
        ),
        "known model, flat price (anthropic claude-sonnet-4)": record(
            "anthropic", "claude-sonnet-4-20250514", input=10_000, cache_read=4_000, cache_write=2_000, output=500
        ),
        "known model, tiered price (gcp.gemini gemini-2.5-pro)": record(
            "gcp.gemini", "gemini-2.5-pro", input=10_000, output=500
        ),
        "unknown model (cached miss)": record("openai", "no-such-model-xyz", input=10_000, output=500),
        "custom price (TOKENRATE_PRICES)": record("openai", "acme-ft-1", input=10_000, cache_read=4_000, output=500),
    }
    print(f"tokenrate cost stage, best of 5 x {N} calls")
    for name, rec in cases.items():
        priced = price_record(rec)
        print(f"  {name:<55} {per_call_us(price_record, rec):7.2f} µs/call   cost={priced.cost_usd}")

    try:
        from genai_prices import Usage, calc_price
    except ImportError:
        return

    def raw(_: object) -> object:
        return calc_price(
            Usage(input_tokens=10_000, cache_read_tokens=4_000, output_tokens=500), "gpt-4o", provider_id="openai"
        )

    print(f"  {'for comparison: genai_prices.calc_price (gpt-4o)':<55} {per_call_us(raw, None, 2_000):7.2f} µs/call")


if __name__ == "__main__":
    main()

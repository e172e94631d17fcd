"""How long reading one response's rate-limit headers takes (`provider.rate_limits(headers)`), in µs per response.

The headers are the benchmark workload's (``_workload.py``): real openai / anthropic header sets as the SDKs see
them (httpx2 ``Headers``), whose ``remaining`` counts change on every response as real APIs' do, read in order by
the adapter's own reader. Also: a set whose resets change too (a cache miss for every value), one with a
``retry-after`` (always read afresh), and plain ``dict`` headers (the generic path). Each pass reads new header
objects once each, as an adapter reads responses; the best pass (the least disturbed by other processes) counts.

Run: ``.venv/bin/python benchmarks/bench_rate_limits.py [--passes N] [--responses N]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx2
from _workload import _anthropic_headers, _openai_headers

from tokenrate.providers.anthropic import AnthropicProvider
from tokenrate.providers.openai import OpenAIProvider


def responses_headers(
    build: Callable[[int, str], dict[str, str]], first: int, count: int, **extra: Callable[[int], str]
) -> list[httpx2.Headers]:
    """``count`` header sets as responses carry them: new objects (nothing about them computed yet but the encoding,
    which the SDK needed to read its own headers before tokenrate reads them)."""
    sets = []
    for n in range(first, first + count):
        headers = httpx2.Response(
            200, headers={**build(n, "application/json"), **{k: f(n) for k, f in extra.items()}}
        ).headers
        assert headers.encoding
        sets.append(headers)
    return sets


def per_read_us(read: Callable[[Mapping[str, str]], Any], responses: Callable[[int], list], passes: int) -> float:
    """Fresh responses each pass, read once each, as an adapter reads them; the best pass."""
    best = float("inf")
    for number in range(passes + 1):
        sets = responses(number)
        start = time.perf_counter()
        for headers in sets:
            read(headers)
        if number:  # the first pass warms up
            best = min(best, (time.perf_counter() - start) / len(sets) * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passes", type=int, default=100)
    parser.add_argument("--responses", type=int, default=200, help="responses per pass")
    args = parser.parse_args()
    count = args.responses

    openai_read = OpenAIProvider().rate_limits
    anthropic_read = AnthropicProvider().rate_limits
    openai_resets = {
        "x-ratelimit-reset-requests": lambda n: f"{n % 97}ms",
        "x-ratelimit-reset-tokens": lambda n: f"{n % 5}m{n % 60}.{n % 7}s",
    }
    anthropic_resets = {
        f"anthropic-ratelimit-{kind}-reset": lambda n: f"2026-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}Z"
        for kind in ("requests", "tokens", "input-tokens", "output-tokens")
    }
    cases: list[tuple[str, Callable[[Mapping[str, str]], Any], Callable[[int], list]]] = [
        ("openai", openai_read, lambda p: responses_headers(_openai_headers, p * count, count)),
        (
            "openai, resets changing too",
            openai_read,
            lambda p: responses_headers(_openai_headers, p * count, count, **openai_resets),
        ),
        (
            "openai, with retry-after",
            openai_read,
            lambda p: responses_headers(_openai_headers, p * count, count, **{"retry-after": lambda n: "2"}),
        ),
        (
            "openai, plain dict headers",
            openai_read,
            lambda p: [dict(h.items()) for h in responses_headers(_openai_headers, p * count, count)],
        ),
        ("anthropic", anthropic_read, lambda p: responses_headers(_anthropic_headers, p * count, count)),
        (
            "anthropic, resets changing too",
            anthropic_read,
            lambda p: responses_headers(_anthropic_headers, p * count, count, **anthropic_resets),
        ),
    ]
    print(f"| headers (best of {args.passes} passes of {count} responses) | µs per response |")
    print("|---|---|")
    for label, read, sets in cases:
        print(f"| {label} | {per_read_us(read, sets, args.passes):.2f} |", flush=True)


if __name__ == "__main__":
    main()

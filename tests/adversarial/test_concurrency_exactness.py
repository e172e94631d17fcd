"""Many threads and asyncio tasks, three SDKs, sync / async / streams, 429s and retries: every total exact.

The simulator's log of what it served is the ground truth: the local view and the OTel metrics must both
equal it, call for call and token for token.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Callable, Iterator

import anthropic
import openai
import pytest
from sdk_support import HAS_GENAI

import tokenrate
from tokenrate.simulator import Step

THREADS = 6
ROUNDS = 3
THROTTLED = {"openai": 12, "anthropic": 12, "gemini": 8}
MESSAGES = [{"role": "user", "content": "count me"}]


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # provoke interleavings
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def sync_calls(sim) -> list[Callable[[], object]]:
    oa = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=20)
    an = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-test", max_retries=20)
    calls = [
        lambda: oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
        lambda: list(oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)),
        lambda: oa.responses.create(model="gpt-4o-mini", input="count me"),
        lambda: an.messages.create(model="claude-haiku-4-5", max_tokens=30, messages=MESSAGES),
        lambda: list(an.messages.create(model="claude-haiku-4-5", max_tokens=30, messages=MESSAGES, stream=True)),
    ]
    if HAS_GENAI:
        gm = gemini_client(sim)
        calls += [
            lambda: gm.models.generate_content(model="gemini-2.5-flash", contents="count me"),
            lambda: list(gm.models.generate_content_stream(model="gemini-2.5-flash", contents="count me")),
        ]
    return calls


def gemini_client(sim):
    from google import genai
    from google.genai import types

    retry = types.HttpRetryOptions(attempts=20, initial_delay=0.001, max_delay=0.005)
    return genai.Client(
        api_key="test-key", http_options=types.HttpOptions(base_url=sim.gemini_base_url, retry_options=retry)
    )


async def async_round(sim) -> int:
    oa = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=20)
    an = anthropic.AsyncAnthropic(base_url=sim.anthropic_base_url, api_key="sk-test", max_retries=20)

    async def oa_stream() -> None:
        async for _ in await oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            pass

    jobs = [
        oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
        oa_stream(),
        an.messages.create(model="claude-haiku-4-5", max_tokens=30, messages=MESSAGES),
    ]
    if HAS_GENAI:
        jobs.append(gemini_client(sim).aio.models.generate_content(model="gemini-2.5-flash", contents="count me"))
    await asyncio.gather(*jobs)
    await oa.close()
    await an.close()
    return len(jobs)


@pytest.mark.slow
def test_totals_are_exact_in_view_and_metrics_under_concurrency(sim, telemetry):
    tokenrate.reset()
    for protocol, times in THROTTLED.items():
        if protocol != "gemini" or HAS_GENAI:
            sim.script(Step.rate_limited(retry_after=0.001, retry_after_ms=True, times=times, match=protocol))
    made = [0] * THREADS
    failures: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            calls = sync_calls(sim)
            for _ in range(ROUNDS):
                for call in calls:
                    call()
                    made[index] += 1
                made[index] += asyncio.run(async_round(sim))
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []

    calls = sum(made)
    served = sim.wait_for_served(len(sim.served))
    answered = [s for s in served if s.status == 200]
    throttled = [s for s in served if s.status == 429]
    expected = {
        "input": sum(s.usage.input for s in answered),
        "output": sum(s.usage.output for s in answered),
    }
    assert len(answered) == calls
    assert len(throttled) == sum(THROTTLED.values()) - (0 if HAS_GENAI else THROTTLED["gemini"])

    snap = tokenrate.snapshot()
    assert snap.requests == calls
    assert snap.attempts == len(served)
    assert snap.errors == 0
    assert snap.in_flight == 0
    assert (snap.tokens.input, snap.tokens.output) == (expected["input"], expected["output"])
    assert snap.throttle.events == snap.throttle.retries == len(throttled)

    assert telemetry.total("tokenrate.requests") == calls
    for token_type, total in expected.items():
        assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type=token_type) == total
    assert telemetry.total("tokenrate.throttle.events") == len(throttled)
    assert telemetry.total("tokenrate.retries") == len(throttled)
    assert len(telemetry.spans()) == calls

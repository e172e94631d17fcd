"""What reaches the wire and what reaches the user, with tokenrate on, off and removed again.

Uninstrumented (before, or after ``uninstrument()``): byte-identical requests and identical results.
Instrumented: identical results, and requests that differ only by the documented changes: the trace context
headers (``traceparent``, plus ``tracestate``/``baggage`` when the context has them) and, for OpenAI chat
streams that did not ask, ``stream_options.include_usage``.
"""

from __future__ import annotations

import asyncio
import json
import re

import anthropic
import openai
from sdk_support import HAS_GENAI

import tokenrate

MESSAGES = [{"role": "user", "content": "same bytes please"}]
TRACE_HEADERS = {"traceparent", "tracestate", "baggage"}
VARYING = [
    (re.compile(r"sim\d{6}"), "sim"),  # request ids
    (re.compile(r'"(created|created_at|completed_at)":\s*[\d.]+'), r'"\1": 0'),
    (re.compile(r'"date":\s*"[^"]*"'), '"date": ""'),  # the HTTP Date header google-genai hands back
]


def workload(sim) -> list:
    """Every kind of call, sync and async, streamed and not; returns what the user got from each."""
    oa = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    an = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-test")
    results = [
        oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
        list(oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)),
        oa.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        ),
        oa.responses.create(model="gpt-4o-mini", input="same"),
        list(oa.responses.create(model="gpt-4o-mini", input="same", stream=True)),
        oa.embeddings.create(model="text-embedding-3-small", input="same"),
        oa.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES).parse(),
        an.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES),
        list(an.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES, stream=True)),
        asyncio.run(_async_calls(sim)),
    ]
    results[2] = list(results[2])
    if HAS_GENAI:
        from google import genai
        from google.genai import types

        gm = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=sim.gemini_base_url))
        results += [
            gm.models.generate_content(model="gemini-2.5-flash", contents="same"),
            list(gm.models.generate_content_stream(model="gemini-2.5-flash", contents="same")),
            gm.models.embed_content(model="gemini-embedding-001", contents="same"),
        ]
    return results


async def _async_calls(sim) -> list:
    oa = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    an = anthropic.AsyncAnthropic(base_url=sim.anthropic_base_url, api_key="sk-test")
    chunks = [c async for c in await oa.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)]
    message = await an.messages.create(model="claude-haiku-4-5", max_tokens=20, messages=MESSAGES)
    await oa.close()
    await an.close()
    return [chunks, message]


def comparable(value) -> str:
    """A result as JSON, minus what differs between any two runs (request ids, creation times)."""

    def plain(v):
        if isinstance(v, list):
            return [plain(x) for x in v]
        if hasattr(v, "model_dump"):
            return v.model_dump(mode="json")
        return v

    text = json.dumps(plain(value), sort_keys=True, default=str)
    for pattern, replacement in VARYING:
        text = pattern.sub(replacement, text)
    return text


def run(sim) -> tuple[list[str], list[tuple[dict, object]]]:
    start = len(sim.served)
    results = [comparable(r) for r in workload(sim)]
    requests = [(dict(s.headers), s.body) for s in sim.wait_for_served(len(sim.served))[start:]]
    return results, requests


def test_uninstrumented_is_byte_identical_and_instrumented_changes_only_what_is_documented(sim, telemetry):
    on_results, on_requests = run(sim)
    tokenrate.uninstrument()
    off_results, off_requests = run(sim)
    tokenrate.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    tokenrate.uninstrument()
    removed_results, removed_requests = run(sim)

    # Off, and removed again: the same requests byte for byte (as the simulator received them) and results.
    assert removed_requests == off_requests
    assert removed_results == off_results
    # On: the same results; each request differs only by the documented changes.
    assert on_results == off_results
    assert len(on_requests) == len(off_requests)
    injected = 0
    for (on_headers, on_body), (off_headers, off_body) in zip(on_requests, off_requests, strict=True):
        changed = {k for k in on_headers.keys() | off_headers.keys() if on_headers.get(k) != off_headers.get(k)}
        assert changed <= TRACE_HEADERS | ({"content-length"} if on_body != off_body else set())
        assert "traceparent" in on_headers
        if on_body != off_body:
            injected += 1
            assert {**off_body, "stream_options": {"include_usage": True}} == on_body
    assert injected == 2  # the sync and the async OpenAI chat streams that did not ask for usage
    assert len(telemetry.spans()) == len(on_requests)

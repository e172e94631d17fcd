"""The real cerebras-cloud-sdk and together SDKs against the simulated provider.

Both are providers' own Stainless SDKs speaking OpenAI's chat and text completions; each test runs on both.
Tokens by type, streams (full, closed, dropped, failing part-way), 429 then success with the exact wait the SDK
slept, retries exhausted, async, one span per call with its retry events, the trace context on the wire, hostile
usage, and cost from genai-prices.
"""

from __future__ import annotations

import gc
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import together
from cerebras.cloud import sdk as cerebras_sdk
from sdk_support import client_base_url
from wire_bodies import dumps, sse

from tokenrate.records import TokenUsage
from tokenrate.simulator import Step, UsagePlan

MESSAGES = [{"role": "user", "content": "Say hello"}]
PLAN = UsagePlan(input=120, output=30, cache_read=20, reasoning=6)


@dataclass(frozen=True)
class Case:
    """One SDK under test: how to build its clients, what it reports, its errors."""

    sdk: str
    """Its name in `tokenrate.sdks`."""
    provider: str
    model: str
    expected: TokenUsage
    """What the provider reports of `PLAN` (Together: totals only)."""
    client: Callable[..., Any]
    async_client: Callable[..., Any]
    errors: Any
    """The SDK's package: its exception classes and its ``_constants``."""
    path: str
    """The chat path the simulator sees."""
    rate_limit_headers: tuple[str, ...]

    def base_url(self, sim) -> str:
        return client_base_url(sim, self.sdk)


CEREBRAS = Case(
    sdk="cerebras-cloud-sdk",
    provider="cerebras",
    model="llama3.1-8b",
    expected=TokenUsage(input=120, output=30, cache_read=20, reasoning=6),
    client=cerebras_sdk.Cerebras,
    async_client=cerebras_sdk.AsyncCerebras,
    errors=cerebras_sdk,
    path="/cerebras/v1/chat/completions",
    rate_limit_headers=("x-ratelimit-remaining-requests-day", "x-ratelimit-remaining-tokens-minute"),
)
TOGETHER = Case(
    sdk="together",
    provider="together",
    model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
    expected=TokenUsage(input=120, output=30),
    client=together.Together,
    async_client=together.AsyncTogether,
    errors=together,
    path="/together/v1/chat/completions",
    rate_limit_headers=("x-ratelimit-remaining", "x-tokenlimit-remaining"),
)


@pytest.fixture(params=[CEREBRAS, TOGETHER], ids=lambda case: case.provider)
def case(request) -> Case:
    return request.param


@pytest.fixture
def client(case, sim, telemetry):
    sim.usage = PLAN
    return case.client(base_url=case.base_url(sim), api_key="test-key")


def chat(case: Case, client, **kwargs):
    return client.chat.completions.create(model=case.model, messages=MESSAGES, **kwargs)


def test_chat_records_tokens_by_type_rate_limits_and_one_span(case, client, sim, telemetry, records):
    completion = chat(case, client)
    assert completion.usage.prompt_tokens == 120
    assert [s.path for s in sim.served] == [case.path]  # Cerebras' warm-up GET is answered, not a call
    record = records.last
    assert (record.info.provider, record.info.operation) == (case.provider, "chat")
    assert record.info.request_model == case.model
    assert (record.usage, record.outcome, record.status_code, record.response_model) == (
        case.expected,
        "ok",
        200,
        case.model,
    )
    served_headers = sim.served[-1].response_headers
    remaining = {w.kind: w.remaining for w in record.rate_limits.windows}
    assert remaining == {
        "requests": float(served_headers[case.rate_limit_headers[0]]),
        "tokens": float(served_headers[case.rate_limit_headers[1]]),
    }
    for token_type, count in case.expected.items():
        assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type=token_type) == count
    (span,) = telemetry.spans()
    attributes = dict(span.attributes)
    assert (span.name, attributes["gen_ai.provider.name"]) == (f"chat {case.model}", case.provider)
    assert attributes["gen_ai.usage.input_tokens"] == 120
    # The shared Stainless hooks write tokenrate's span into the request as its W3C trace context.
    traceparent = sim.served[-1].headers["traceparent"].split("-")
    assert (traceparent[1], traceparent[2]) == (f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}")


def test_cost_comes_from_genai_prices(case, client, records, priced):
    genai_prices = pytest.importorskip("genai_prices", reason="genai-prices needs Python >= 3.11")
    chat(case, client)
    expected = case.expected
    usage = genai_prices.Usage(
        input_tokens=expected.input,
        output_tokens=expected.output,
        cache_read_tokens=expected.cache_read or 0,
        output_reasoning_tokens=expected.reasoning or 0,
    )
    price = genai_prices.calc_price(usage, case.model, provider_id=case.provider).total_price
    assert records.last.cost_usd == pytest.approx(float(price), rel=1e-9)
    assert records.last.cost_usd > 0


def test_stream_usage_comes_unasked_with_the_last_chunk(case, client, sim, telemetry, records):
    chunks = list(chat(case, client, stream=True))
    assert chunks[-1].usage.completion_tokens == 30  # what the user's last chunk says
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert "stream_options" not in sim.served[-1].body  # the request went out unchanged
    record = records.last
    assert (record.usage, record.outcome, record.info.stream) == (case.expected, "ok", True)
    assert record.time_to_first_chunk_s is not None
    assert telemetry.samples("gen_ai.client.operation.time_to_first_chunk") == 1


def test_text_completions_are_recorded_too(case, client, records):
    client.completions.create(model=case.model, prompt="Say hello")
    list(client.completions.create(model=case.model, prompt="Say hello", stream=True))
    assert [(r.info.operation, r.info.stream, r.usage, r.outcome) for r in records.calls] == [
        ("text_completion", False, case.expected, "ok"),
        ("text_completion", True, case.expected, "ok"),
    ]


def test_stream_closed_early_and_dropped_are_recorded_once(case, client, records):
    stream = chat(case, client, stream=True)
    next(iter(stream))
    stream.close()
    stream = chat(case, client, stream=True)
    next(iter(stream))
    del stream
    gc.collect()
    assert [r.outcome for r in records.calls] == ["closed", "abandoned"]


def test_a_stream_that_fails_part_way_is_an_error(case, client, sim, records):
    sim.script(Step.drop_mid_stream(after_events=2))
    with pytest.raises(httpx.RemoteProtocolError):  # the SDK passes httpx's own error through
        list(chat(case, client.with_options(max_retries=0), stream=True))
    record = records.last
    assert (record.outcome, record.error_type, record.usage) == ("error", "RemoteProtocolError", TokenUsage())


def test_an_error_chunk_in_a_stream_is_the_sdk_error(case, client, sim, records):
    """Cerebras sends ``{"error": ..., "status_code": 503}`` (its SDK raises that status); Together OpenAI's."""
    sim.script(Step.error_event(after_events=2))
    with pytest.raises(case.errors.APIError) as raised:
        list(chat(case, client, stream=True))
    record = records.last
    assert (record.outcome, record.error_type) == ("error", type(raised.value).__qualname__)
    assert record.usage == TokenUsage()


def test_429_then_200_records_the_exact_wait_the_sdk_slept(case, client, sim, telemetry, records):
    sim.script(Step.rate_limited(retry_after=0.25), Step.ok())
    chat(case, client)
    assert [(s.status, s.retry_count) for s in sim.served] == [(429, 0), (200, 1)]
    (retry,) = records.retries
    assert (retry.attempt, retry.status_code, retry.reason, retry.wait_s) == (1, 429, "throttled", 0.25)
    record = records.last
    assert (record.outcome, record.throttle_events, record.retries) == ("ok", 1, (retry,))
    assert telemetry.total("tokenrate.throttle.wait") == pytest.approx(0.25)
    (span,) = telemetry.spans()
    assert [event.name for event in span.events] == ["tokenrate.retry"]
    assert dict(span.events[0].attributes)["tokenrate.retry.wait"] == 0.25
    # Each attempt carried the same span as its trace context.
    span_ids = {s.headers["traceparent"].split("-")[2] for s in sim.served}
    assert span_ids == {f"{span.context.span_id:016x}"}


def test_503_without_retry_after_records_the_sdk_backoff(case, client, sim, records):
    sim.script(Step.overloaded(retry_after=None), Step.ok())
    chat(case, client)
    (retry,) = records.retries
    assert (retry.status_code, retry.reason) == (503, "server_error")  # an overloaded model is not a rate limit
    # The SDK's first backoff (its initial delay less up to 25 % jitter: 0.5 s for Cerebras, 1 s for Together).
    initial = importlib.import_module(f"{case.errors.__name__}._constants").INITIAL_RETRY_DELAY
    assert 0.75 * initial <= retry.wait_s <= initial


def test_retries_run_out(case, client, sim, telemetry, records):
    sim.script(Step.rate_limited(retry_after=0.05, times=3))
    with pytest.raises(case.errors.RateLimitError):
        chat(case, client.with_options(max_retries=2))
    assert [r.wait_s for r in records.retries] == [0.05, 0.05]
    record = records.last
    assert (record.outcome, record.error_type, record.status_code) == ("error", "RateLimitError", 429)
    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=True) == 2
    assert telemetry.total("tokenrate.throttle.events", tokenrate__retried=False) == 1
    (span,) = telemetry.spans()
    assert len(span.events) == 2


async def test_async_chat_and_stream(case, sim, telemetry, records):
    sim.usage = PLAN
    aclient = case.async_client(base_url=case.base_url(sim), api_key="test-key")
    await aclient.chat.completions.create(model=case.model, messages=MESSAGES)
    stream = await aclient.chat.completions.create(model=case.model, messages=MESSAGES, stream=True)
    async for _ in stream:
        pass
    assert [(r.usage, r.outcome, r.info.stream) for r in records.calls] == [
        (case.expected, "ok", False),
        (case.expected, "ok", True),
    ]
    assert len(telemetry.spans()) == 2


def _chunk(model: str, choices: list[Any], **extra: Any) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": model, "system_fingerprint": "f",
            "choices": choices, **extra}  # fmt: skip


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


HOSTILE_USAGE = [
    {"prompt_tokens": -5, "completion_tokens": 3, "total_tokens": -2},
    {"prompt_tokens": float("nan"), "completion_tokens": 3},
    {"prompt_tokens": 1e308, "completion_tokens": 3},
    {"prompt_tokens": "many", "completion_tokens": 3},
    {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 11}},
]


@pytest.mark.parametrize("usage", HOSTILE_USAGE, ids=lambda usage: json.dumps(usage)[:40])
def test_hostile_usage_is_unknown_and_the_user_sees_it_unchanged(case, client, sim, records, usage):
    answer = {"id": "c", "object": "chat.completion", "created": 0, "model": case.model, "system_fingerprint": "f",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
              "usage": usage}  # fmt: skip
    opening = {"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}
    final = {"index": 0, "delta": {}, "finish_reason": "stop"}
    events = [sse(_chunk(case.model, [opening])), sse(_chunk(case.model, [final], usage=usage)), sse("[DONE]")]
    sim.script(Step.raw(dumps(answer)), Step.raw(events=events))
    whole = chat(case, client)
    chunks = list(chat(case, client, stream=True))
    for parsed in (whole.usage, chunks[-1].usage):  # the SDK's objects carry exactly what was sent
        assert _json(parsed.model_dump(exclude_none=True, warnings=False)) == _json(usage)
    assert [(r.usage, r.outcome) for r in records.calls] == [(TokenUsage(), "ok"), (TokenUsage(), "ok")]


HOSTILE_HEADERS = {
    "x-ratelimit-remaining-requests-day": "-1",
    "x-ratelimit-reset-requests-day": "1" * 311,
    "x-ratelimit-remaining-tokens-minute": "nan",
    "x-ratelimit-remaining": "1e400",
    "x-ratelimit-reset": "-3",
    "x-tokenlimit-remaining": "inf",
    "x-tokenlimit-limit": "12",
}


def test_hostile_rate_limit_headers_are_unknown_figures(case, client, sim, records):
    answer = {"id": "c", "object": "chat.completion", "created": 0, "model": case.model, "system_fingerprint": "f",
              "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}  # fmt: skip
    sim.script(Step.raw(dumps(answer), headers=HOSTILE_HEADERS))
    chat(case, client)
    rate_limits = records.last.rate_limits
    if case is CEREBRAS:
        assert rate_limits is None  # nothing usable was sent
    else:
        assert [(w.kind, w.limit, w.remaining, w.reset_s) for w in rate_limits.windows] == [("tokens", 12, None, None)]

"""Hostile answers through the real SDKs: with and without tokenrate the user gets the same result, or the
same exception type, and tokenrate swallows nothing (the suite-wide guard fails the test if it did).

Hypothesis builds the answers (usage blocks, headers, SSE events, error bodies); the simulator's ``raw`` step
sends them as written. Fewer examples than the direct reader tests: each one is two real HTTP calls.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import anthropic
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk_support import HAS_GENAI
from wire_bodies import (
    anthropic_message,
    anthropic_stream,
    dumps,
    gemini_response,
    gemini_stream,
    openai_chat_completion,
    openai_chat_stream,
    openai_chunk,
    sse,
)

import tokenrate
from tokenrate.provider_numbers import MAX_COUNT
from tokenrate.simulator import Step

through_http = settings(
    deadline=None, max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
MESSAGES = [{"role": "user", "content": "hi"}]
HTTP_DATE = re.compile(r'"date":\s*"[^"]*"')  # google-genai hands back the response headers, Date included

number = st.one_of(
    st.none(),
    st.integers(min_value=-(2**66), max_value=2**66),
    st.integers(min_value=0, max_value=5000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([MAX_COUNT + 1, 1e308, 12.5, "12", "x", True, [], {}]),
)


def usage_block(names: list[str]) -> st.SearchStrategy:
    return st.one_of(st.none(), number, st.fixed_dictionaries({}, optional=dict.fromkeys(names, number)))


header_value = st.one_of(
    st.from_regex(r"\A-?[0-9]{1,40}(\.[0-9]{1,5})?(ms|s|m|h)?\Z"),
    st.sampled_from(["nan", "inf", "1e400", "1" * 311 + "s", "6m0s", "2026-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
)


def headers_for(names: list[str]) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(names, header_value))


OPENAI_HEADERS = headers_for(
    [f"x-ratelimit-{part}-{kind}" for part in ("limit", "remaining", "reset") for kind in ("requests", "tokens")]
)
ANTHROPIC_HEADERS = headers_for(
    [
        f"anthropic-ratelimit-{kind}-{part}"
        for kind in ("requests", "tokens")
        for part in ("limit", "remaining", "reset")
    ]
)
ERROR_STATUS = st.sampled_from([400, 401, 404, 409, 422, 429, 500, 503, 529])
ERROR_BODY = st.one_of(
    st.text(max_size=30),
    st.just("{}"),
    st.builds(lambda m: dumps({"error": m}), st.one_of(st.none(), st.text(max_size=10), number)),
    st.builds(lambda d: dumps({"error": {"code": 429, "details": d}}), st.one_of(number, st.lists(number, max_size=2))),
)


def outcome(call: Callable[[], object]) -> tuple[str, str]:
    """What the user saw: the result as JSON, or the exception's type."""
    try:
        result = call()
    except Exception as exc:
        return "raised", type(exc).__qualname__
    plain = [_plain(r) for r in result] if isinstance(result, list) else _plain(result)
    return "result", HTTP_DATE.sub("", json.dumps(plain, default=str, sort_keys=True))


def _plain(value):
    return value.model_dump(mode="json", warnings=False) if hasattr(value, "model_dump") else value


def same_with_and_without(sim, telemetry, step: Step, call: Callable[[], object]) -> None:
    sim.script(step, step)
    with_tokenrate = outcome(call)
    tokenrate.uninstrument()
    try:
        without = outcome(call)
    finally:
        tokenrate.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    sim.reset()
    assert with_tokenrate == without


# -- OpenAI ---------------------------------------------------------------------------------------------------------

CHAT_USAGE = st.one_of(
    usage_block(["prompt_tokens", "completion_tokens", "total_tokens"]),
    st.fixed_dictionaries(
        {"prompt_tokens": number, "completion_tokens": number},
        optional={
            "prompt_tokens_details": usage_block(["cached_tokens", "cache_write_tokens"]),
            "completion_tokens_details": usage_block(["reasoning_tokens"]),
        },
    ),
)


@pytest.fixture
def oa(sim):
    return openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)


@through_http
@given(usage=CHAT_USAGE, headers=OPENAI_HEADERS)
def test_openai_chat_answers(sim, telemetry, oa, usage, headers):
    step = Step.raw(openai_chat_completion(usage), headers=headers)
    same_with_and_without(sim, telemetry, step, lambda: oa.chat.completions.create(model="m", messages=MESSAGES))


garbage_event = st.sampled_from(
    ["data: {not json\n\n", 'data: {"error": {"message": "boom"}}\n\n', "event: ping\n\n", ": comment\n\n", "data:\n\n"]
)


@through_http
@given(usage=st.one_of(st.none(), CHAT_USAGE), extra=st.lists(garbage_event, max_size=2), position=st.integers(0, 4))
def test_openai_chat_stream_answers(sim, telemetry, oa, usage, extra, position):
    # A server that ignores stream_options (its chunks carry no "usage" key); tokenrate must then hide nothing.
    events = openai_chat_stream(None if usage is None else openai_chunk([], usage=usage))
    for event in extra:
        events.insert(min(position, len(events) - 1), event)
    step = Step.raw(events=events)
    same_with_and_without(
        sim, telemetry, step, lambda: list(oa.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    )


@through_http
@given(status=ERROR_STATUS, body=ERROR_BODY, headers=OPENAI_HEADERS, retry_after=st.one_of(st.none(), header_value))
def test_openai_error_answers(sim, telemetry, oa, status, body, headers, retry_after):
    if retry_after is not None:
        headers = {**headers, "retry-after": retry_after}
    step = Step.raw(body, status=status, headers=headers)
    same_with_and_without(sim, telemetry, step, lambda: oa.chat.completions.create(model="m", messages=MESSAGES))


# -- Anthropic ------------------------------------------------------------------------------------------------------

ANTHROPIC_USAGE = usage_block(
    ["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "server_tool_use"]
)


@pytest.fixture
def an(sim):
    return anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-test", max_retries=0)


@through_http
@given(usage=ANTHROPIC_USAGE, headers=ANTHROPIC_HEADERS)
def test_anthropic_message_answers(sim, telemetry, an, usage, headers):
    step = Step.raw(anthropic_message(usage), headers=headers)
    same_with_and_without(sim, telemetry, step, lambda: an.messages.create(model="c", max_tokens=5, messages=MESSAGES))


@through_http
@given(start=ANTHROPIC_USAGE, delta=ANTHROPIC_USAGE, cut=st.integers(1, 6), error=st.booleans())
def test_anthropic_stream_answers(sim, telemetry, an, start, delta, cut, error):
    events = anthropic_stream(start, delta)[:cut]
    if error:
        events.append(sse({"type": "error", "error": {"type": "overloaded_error", "message": "x"}}, event="error"))
    step = Step.raw(events=events)
    same_with_and_without(
        sim, telemetry, step, lambda: list(an.messages.create(model="c", max_tokens=5, messages=MESSAGES, stream=True))
    )


@through_http
@given(status=ERROR_STATUS, body=ERROR_BODY, headers=ANTHROPIC_HEADERS)
def test_anthropic_error_answers(sim, telemetry, an, status, body, headers):
    step = Step.raw(body, status=status, headers=headers)
    same_with_and_without(sim, telemetry, step, lambda: an.messages.create(model="c", max_tokens=5, messages=MESSAGES))


# -- Gemini ---------------------------------------------------------------------------------------------------------

GEMINI_USAGE = usage_block(
    [
        "promptTokenCount",
        "candidatesTokenCount",
        "thoughtsTokenCount",
        "cachedContentTokenCount",
        "toolUsePromptTokenCount",
        "totalTokenCount",
    ]
)
needs_genai = pytest.mark.skipif(not HAS_GENAI, reason="google-genai missing")


@pytest.fixture
def gm(sim):
    if not HAS_GENAI:
        pytest.skip("google-genai missing")
    from google import genai
    from google.genai import types

    return genai.Client(api_key="k", http_options=types.HttpOptions(base_url=sim.gemini_base_url))


@needs_genai
@through_http
@given(usage=GEMINI_USAGE)
def test_gemini_answers(sim, telemetry, gm, usage):
    step = Step.raw(dumps(gemini_response(usage)))
    same_with_and_without(sim, telemetry, step, lambda: gm.models.generate_content(model="g", contents="hi"))


@needs_genai
@through_http
@given(usages=st.lists(GEMINI_USAGE, min_size=1, max_size=3))
def test_gemini_stream_answers(sim, telemetry, gm, usages):
    step = Step.raw(events=gemini_stream(*usages))
    same_with_and_without(
        sim, telemetry, step, lambda: list(gm.models.generate_content_stream(model="g", contents="hi"))
    )


@needs_genai
@through_http
@given(status=ERROR_STATUS, body=ERROR_BODY)
def test_gemini_error_answers(sim, telemetry, gm, status, body):
    step = Step.raw(body, status=status)
    same_with_and_without(sim, telemetry, step, lambda: gm.models.generate_content(model="g", contents="hi"))

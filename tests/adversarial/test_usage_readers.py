"""Property tests of every adapter's usage readers, on any JSON a server could send (breadth, no HTTP).

Whatever the usage block holds, a reader returns unknown usage or sane counts (non-negative integers within
`MAX_COUNT` per part), never raises, and never keeps half of a broken block. On valid blocks, each provider's
arithmetic holds.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk_support import HAS_GENAI

from tokenrate.provider_numbers import MAX_COUNT, parts_within_totals
from tokenrate.providers import anthropic as anthropic_adapter
from tokenrate.providers import openai as openai_adapter
from tokenrate.records import TOKEN_TYPES, TokenUsage

thorough = settings(deadline=None, max_examples=300)

hostile_number = st.one_of(
    st.none(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=0, max_value=10_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([MAX_COUNT, MAX_COUNT + 1, 1e308, -0.0, 12.0, 12.5]),
    st.text(max_size=4),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)
valid_count = st.integers(min_value=0, max_value=MAX_COUNT // 2)  # sums of two stay valid


def block(names: list[str], values=hostile_number, **nested) -> st.SearchStrategy[dict]:
    """A JSON object with any of ``names`` (each any value), and nested objects."""
    return st.fixed_dictionaries({}, optional={**dict.fromkeys(names, values), **nested})


def sane(usage: TokenUsage | None, *, parts_per_field: int = 1) -> bool:
    if usage is None:
        return True
    assert isinstance(usage, TokenUsage)
    for name in TOKEN_TYPES:
        value = getattr(usage, name)
        if value is None:
            continue
        if type(value) is not int or not 0 <= value <= parts_per_field * MAX_COUNT:
            return False
    return parts_within_totals(usage)


OPENAI_CHAT = block(
    ["prompt_tokens", "completion_tokens", "total_tokens"],
    prompt_tokens_details=st.one_of(hostile_number, block(["cached_tokens", "cache_write_tokens", "audio_tokens"])),
    completion_tokens_details=st.one_of(hostile_number, block(["reasoning_tokens", "audio_tokens"])),
)
OPENAI_RESPONSES = block(
    ["input_tokens", "output_tokens", "total_tokens"],
    input_tokens_details=st.one_of(hostile_number, block(["cached_tokens", "cache_write_tokens"])),
    output_tokens_details=st.one_of(hostile_number, block(["reasoning_tokens"])),
)
ANTHROPIC = block(
    ["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"],
    server_tool_use=st.one_of(hostile_number, block(["web_search_requests", "web_fetch_requests", "other"])),
    output_tokens_details=st.one_of(hostile_number, block(["thinking_tokens"])),
)
GEMINI = block(
    [
        "prompt_token_count",
        "candidates_token_count",
        "thoughts_token_count",
        "cached_content_token_count",
        "tool_use_prompt_token_count",
        "total_token_count",
    ]
)


@thorough
@given(OPENAI_CHAT)
def test_openai_chat_usage(usage):
    assert sane(openai_adapter.chat_usage({"usage": usage}))
    assert sane(openai_adapter.embeddings_usage({"usage": usage}))


@thorough
@given(OPENAI_RESPONSES)
def test_openai_responses_usage(usage):
    assert sane(openai_adapter.responses_usage({"usage": usage}))


@thorough
@given(ANTHROPIC)
def test_anthropic_usage_and_server_tools(usage):
    assert sane(anthropic_adapter.message_usage({"usage": usage}), parts_per_field=3)
    requests = anthropic_adapter.server_tool_requests(usage)
    assert requests is None or all(type(n) is int and 0 < n <= MAX_COUNT for n in requests.values())


@thorough
@given(st.lists(st.tuples(st.sampled_from(["message_start", "message_delta", "message_stop", "ping"]), ANTHROPIC)))
def test_anthropic_stream_events(events):
    from tokenrate.pipeline import Pipeline
    from tokenrate.providers._stainless import CallState
    from tokenrate.recording import ActiveCall
    from tokenrate.records import CallInfo

    call = ActiveCall(Pipeline(None), CallInfo("anthropic", "chat", "claude"))
    call.adapter_state = CallState(anthropic_adapter._MESSAGES)
    state = anthropic_adapter.MessageStreamState(call)
    for kind, usage in events:
        item = (
            {"type": kind, "message": {"usage": usage}} if kind == "message_start" else {"type": kind, "usage": usage}
        )
        assert state.observe(item) is True
        assert sane(call.usage, parts_per_field=3)
    call.finish()


@thorough
@given(uncached=valid_count, cache_read=valid_count, cache_write=valid_count, output=valid_count, thinking=valid_count)
def test_anthropic_arithmetic_on_valid_blocks(uncached, cache_read, cache_write, output, thinking):
    usage = {
        "input_tokens": uncached,
        "cache_read_input_tokens": cache_read,
        "cache_creation_input_tokens": cache_write,
        "output_tokens": output + thinking,  # thinking is part of output
        "output_tokens_details": {"thinking_tokens": thinking},
    }
    assert anthropic_adapter.message_usage({"usage": usage}) == TokenUsage(
        input=uncached + cache_read + cache_write,
        output=output + thinking,
        cache_read=cache_read,
        cache_write=cache_write,
        reasoning=thinking,
    )


needs_genai = pytest.mark.skipif(not HAS_GENAI, reason="google-genai missing")


@needs_genai
@thorough
@given(GEMINI, st.lists(st.one_of(hostile_number, block(["token_count"])), max_size=3))
def test_gemini_usage(metadata, statistics):
    from tokenrate.providers import google_genai as gemini_adapter

    assert sane(gemini_adapter.generate_usage(metadata), parts_per_field=2)
    embeddings = [{"statistics": s} for s in statistics]
    assert sane(gemini_adapter.embed_usage({"usage_metadata": metadata, "embeddings": embeddings}), parts_per_field=3)


@needs_genai
@thorough
@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**5), st.integers(0, 10**5))
def test_gemini_arithmetic_on_valid_blocks(prompt, candidates, thoughts, tool_use):
    from tokenrate.providers import google_genai as gemini_adapter

    metadata = {
        "prompt_token_count": prompt,
        "candidates_token_count": candidates,
        "thoughts_token_count": thoughts,
        "tool_use_prompt_token_count": tool_use,
        "total_token_count": prompt + candidates + thoughts + tool_use,
    }
    usage = gemini_adapter.generate_usage(metadata)
    assert usage.total == metadata["total_token_count"]
    assert (usage.reasoning, usage.tool_use) == (thoughts, tool_use)


@needs_genai
@thorough
@given(
    st.one_of(
        hostile_number,
        st.text(max_size=12),
        st.from_regex(r"\A[0-9]{1,400}(\.[0-9]{1,9})?s\Z"),
        st.fixed_dictionaries({}, optional={"seconds": st.one_of(hostile_number, st.text()), "nanos": hostile_number}),
    )
)
def test_gemini_retry_delay(delay):
    from tokenrate.providers import google_genai as gemini_adapter

    error = type("APIError", (Exception,), {})()
    error.details = {"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]}}
    limits = gemini_adapter.error_rate_limits(error)
    assert limits is None or (math.isfinite(limits.retry_after_s) and limits.retry_after_s >= 0)

"""The Gemini API wire protocol, proven with the real ``google-genai`` SDK (sync and ``client.aio``)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tokenrate.simulator import Step, UsagePlan

errors = pytest.importorskip("google.genai.errors")
types = pytest.importorskip("google.genai.types")

PLAN = UsagePlan(input=120, output=30, cache_read=20, cache_write=10, reasoning=8, tool_use=5)
GEMINI = "gemini-2.5-flash"


def assert_gemini_usage(meta: Any, plan: UsagePlan) -> None:
    """Gemini arithmetic: the prompt count excludes the tool-use prompt; candidates exclude thoughts."""
    assert meta.prompt_token_count == plan.input - plan.tool_use
    assert meta.cached_content_token_count == plan.cache_read
    assert meta.tool_use_prompt_token_count == plan.tool_use
    assert meta.candidates_token_count == plan.output - plan.reasoning
    assert meta.thoughts_token_count == plan.reasoning
    assert meta.total_token_count == plan.input + plan.output
    # google-genai documents the total as the sum of these four counts:
    assert (
        meta.total_token_count
        == (meta.prompt_token_count + meta.candidates_token_count + meta.tool_use_prompt_token_count)
        + meta.thoughts_token_count
    )


def test_generate_content(sim, gemini) -> None:
    sim.usage = PLAN
    response = gemini.models.generate_content(model=GEMINI, contents="hi")
    assert len(response.text.split()) == PLAN.output - PLAN.reasoning
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == GEMINI
    assert_gemini_usage(response.usage_metadata, PLAN)
    (served,) = sim.served
    assert (served.protocol, served.endpoint, served.model, served.stream) == (
        "gemini",
        "generate_content",
        GEMINI,
        False,
    )
    assert served.headers["x-goog-api-key"] == "x"
    assert served.response_headers["x-tokenrate-simulated"] == "true"


def test_generate_content_stream(sim, gemini) -> None:
    sim.usage = PLAN
    chunks = list(gemini.models.generate_content_stream(model=GEMINI, contents="hi"))
    assert len(chunks) > 1
    # Usage is cumulative on every chunk; the last one is the whole call.
    totals = [chunk.usage_metadata.total_token_count for chunk in chunks]
    assert totals == sorted(totals)
    assert all(chunk.usage_metadata.prompt_token_count == PLAN.input - PLAN.tool_use for chunk in chunks)
    assert_gemini_usage(chunks[-1].usage_metadata, PLAN)
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert all(chunk.candidates[0].finish_reason is None for chunk in chunks[:-1])
    assert len("".join(chunk.text for chunk in chunks).split()) == PLAN.output - PLAN.reasoning
    (served,) = sim.served
    assert served.endpoint == "stream_generate_content"
    assert served.stream
    assert served.query == {"alt": "sse"}


async def test_aio_generate_content_and_stream(sim, gemini) -> None:
    sim.usage = PLAN
    response = await gemini.aio.models.generate_content(model=GEMINI, contents="hi")
    assert_gemini_usage(response.usage_metadata, PLAN)
    last = None
    async for chunk in await gemini.aio.models.generate_content_stream(model=GEMINI, contents="hi"):
        last = chunk
    assert last is not None
    assert_gemini_usage(last.usage_metadata, PLAN)


def test_unknown_fields_are_omitted(sim, gemini) -> None:
    sim.usage = UsagePlan(input=9, output=4)
    meta = gemini.models.generate_content(model=GEMINI, contents="hi").usage_metadata
    assert (meta.prompt_token_count, meta.candidates_token_count, meta.total_token_count) == (9, 4, 13)
    assert meta.cached_content_token_count is None
    assert meta.thoughts_token_count is None
    assert meta.tool_use_prompt_token_count is None


def test_embed_content(sim, gemini) -> None:
    sim.usage = UsagePlan(input=12, output=1)
    result = gemini.models.embed_content(
        model="text-embedding-004",
        contents=["alpha", "beta"],
        config=types.EmbedContentConfig(output_dimensionality=8),
    )
    assert [len(e.values) for e in result.embeddings] == [8, 8]
    assert result.embeddings[0].values != result.embeddings[1].values
    assert sim.served[0].endpoint == "embed_content"
    assert sim.served[0].usage == UsagePlan(input=12)


def test_count_tokens(sim, gemini) -> None:
    sim.usage = PLAN
    assert gemini.models.count_tokens(model=GEMINI, contents="hi").total_tokens == PLAN.input
    assert sim.served[0].endpoint == "count_tokens"


def test_vertex_style_path_is_accepted(sim) -> None:
    sim.usage = PLAN
    url = sim.base_url + f"/v1beta1/projects/p/locations/us-central1/publishers/google/models/{GEMINI}:generateContent"
    body = json.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).encode()
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        data = json.loads(response.read())
    assert data["usageMetadata"]["totalTokenCount"] == PLAN.input + PLAN.output
    assert sim.served[0].model == GEMINI


def test_429_is_a_client_error_and_not_retried_by_default(sim, gemini) -> None:
    sim.script(Step.rate_limited(retry_after=1))
    with pytest.raises(errors.ClientError) as caught:
        gemini.models.generate_content(model=GEMINI, contents="hi")
    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    details = caught.value.details["error"]["details"]
    kinds = [d["@type"] for d in details]
    assert kinds == ["type.googleapis.com/google.rpc.QuotaFailure", "type.googleapis.com/google.rpc.RetryInfo"]
    assert details[1]["retryDelay"] == "1s"
    assert [s.status for s in sim.served] == [429]


def test_429_is_retried_with_retry_options(sim) -> None:
    from google import genai

    client = genai.Client(
        api_key="x",
        http_options=types.HttpOptions(
            base_url=sim.gemini_base_url, retry_options=types.HttpRetryOptions(attempts=2, initial_delay=0.1)
        ),
    )
    sim.usage = PLAN
    sim.script(Step.rate_limited(retry_after=1))
    response = client.models.generate_content(model=GEMINI, contents="hi")
    assert_gemini_usage(response.usage_metadata, PLAN)
    assert [s.status for s in sim.served] == [429, 200]


def test_overloaded_is_503_unavailable(sim, gemini) -> None:
    sim.script(Step.overloaded())
    with pytest.raises(errors.ServerError) as caught:
        gemini.models.generate_content(model=GEMINI, contents="hi")
    assert (caught.value.code, caught.value.status) == (503, "UNAVAILABLE")


def test_bad_request(sim, gemini) -> None:
    sim.script(Step.bad_request())
    with pytest.raises(errors.ClientError) as caught:
        gemini.models.generate_content(model=GEMINI, contents="hi")
    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")

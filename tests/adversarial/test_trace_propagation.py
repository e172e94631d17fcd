"""Every request of a recorded call carries tokenrate's span as its W3C ``traceparent``, in every SDK.

A gateway or the provider's own tracing links the request to the caller's trace through that header. The
global propagator decides what is written: with ``OTEL_PROPAGATORS=none`` (an empty composite), nothing.
"""

from __future__ import annotations

import asyncio

import anthropic
import openai
import pytest
from bedrock_support import CLAUDE, HI, anthropic_body, bedrock_client, isolated_aws_env  # noqa: F401 - autouse
from opentelemetry import propagate
from opentelemetry.propagators.composite import CompositePropagator
from sdk_support import HAS_GENAI

from tokenrate.simulator import Step

MESSAGES = [{"role": "user", "content": "hi"}]


def openai_calls(sim):
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    aclient = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test")
    yield lambda: client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    yield lambda: list(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True))
    yield lambda: client.responses.create(model="gpt-4o-mini", input="hi")
    yield lambda: client.embeddings.create(model="text-embedding-3-small", input="hi")
    yield lambda: asyncio.run(aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES))


def anthropic_calls(sim):
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="sk-test")
    aclient = anthropic.AsyncAnthropic(base_url=sim.anthropic_base_url, api_key="sk-test")
    create = {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": MESSAGES}
    yield lambda: client.messages.create(**create)
    yield lambda: list(client.messages.create(**create, stream=True))
    yield lambda: asyncio.run(aclient.messages.create(**create))


def gemini_calls(sim):
    from google import genai
    from google.genai import types

    client = genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=sim.gemini_base_url))
    yield lambda: client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    yield lambda: list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))
    yield lambda: client.models.embed_content(model="gemini-embedding-001", contents="hi")
    yield lambda: asyncio.run(client.aio.models.generate_content(model="gemini-2.5-flash", contents="hi"))


def bedrock_calls(sim):
    client = bedrock_client(sim.bedrock_endpoint_url)
    yield lambda: client.converse(modelId=CLAUDE, messages=HI)
    yield lambda: list(client.converse_stream(modelId=CLAUDE, messages=HI)["stream"])
    yield lambda: client.invoke_model(modelId=CLAUDE, body=anthropic_body())["body"].read()
    yield lambda: list(client.invoke_model_with_response_stream(modelId=CLAUDE, body=anthropic_body())["body"])


SDK_CALLS = {
    "openai": openai_calls,
    "anthropic": anthropic_calls,
    "bedrock": bedrock_calls,
    "gemini": pytest.param(gemini_calls, marks=pytest.mark.skipif(not HAS_GENAI, reason="google-genai missing")),
}


def traceparent_span_id(headers) -> str:
    return headers["traceparent"].split("-")[2]


@pytest.mark.parametrize("calls", list(SDK_CALLS.values()), ids=list(SDK_CALLS))
def test_each_request_carries_tokenrate_span_as_traceparent(sim, telemetry, calls):
    for n, call in enumerate(calls(sim), start=1):
        call()
        (request,) = sim.served[-1:]
        (span,) = telemetry.spans()[-1:]
        assert len(telemetry.spans()) == n, "one span per call"
        assert traceparent_span_id(request.headers) == f"{span.context.span_id:016x}"
        assert request.headers["traceparent"].split("-")[1] == f"{span.context.trace_id:032x}"


RETRIED = {
    "openai": Step.rate_limited(retry_after=0.01, retry_after_ms=True, match="openai"),
    "anthropic": Step.rate_limited(retry_after=0.01, retry_after_ms=True, match="anthropic"),
    "bedrock": Step.rate_limited(code="ModelNotReadyException", match="bedrock"),  # botocore's short backoff
}


@pytest.mark.parametrize("sdk", list(RETRIED))
def test_every_retry_attempt_carries_the_same_call_span(sim, telemetry, sdk):
    sim.script(RETRIED[sdk])
    next(iter(SDK_CALLS[sdk](sim)))()
    first, second = sim.served[-2:]
    assert (first.status, second.status) == (429, 200)
    (span,) = telemetry.spans()
    assert traceparent_span_id(first.headers) == traceparent_span_id(second.headers) == f"{span.context.span_id:016x}"


@pytest.fixture
def no_propagator():
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(CompositePropagator([]))
    yield
    propagate.set_global_textmap(previous)


@pytest.mark.parametrize("calls", list(SDK_CALLS.values()), ids=list(SDK_CALLS))
def test_without_a_propagator_nothing_is_written(sim, telemetry, no_propagator, calls):
    for call in calls(sim):
        call()
        assert "traceparent" not in sim.served[-1].headers
    assert telemetry.spans()


class SigningAnthropic(anthropic.Anthropic):
    """A client that signs its requests after they are built, as the Bedrock and Vertex clients do."""

    signed: list[dict[str, str]]

    def _prepare_request(self, request) -> None:
        self.signed.append(dict(request.headers))
        request.headers["x-signature"] = str(len(request.headers))


def test_a_signing_anthropic_client_gets_the_trace_context_after_signing(sim, telemetry):
    """The SDK writes tokenrate's span itself for such a client, after the signature (which must not cover it)."""
    client = SigningAnthropic(base_url=sim.anthropic_base_url, api_key="sk-test")
    client.signed = []
    sim.script(Step.rate_limited(retry_after=0.01, retry_after_ms=True, match="anthropic"))
    client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=MESSAGES)
    (span,) = telemetry.spans()
    assert len(client.signed) == 2
    assert all("traceparent" not in headers for headers in client.signed)
    for request in sim.served[-2:]:
        assert traceparent_span_id(request.headers) == f"{span.context.span_id:016x}"
        assert "x-signature" in request.headers


def test_an_anthropic_client_that_does_not_propagate_sends_no_trace_context(sim, telemetry):
    client = anthropic.Anthropic(
        base_url=sim.anthropic_base_url, api_key="sk-test", open_telemetry={"propagation": False}
    )
    client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=MESSAGES)
    list(client.messages.create(model="claude-sonnet-4-5", max_tokens=8, messages=MESSAGES, stream=True))
    assert [span.name for span in telemetry.spans()] == ["chat claude-sonnet-4-5"] * 2, "one span per call"
    assert all("traceparent" not in request.headers for request in sim.served[-2:])

"""The Bedrock Runtime wire protocol, proven with the real boto3 ``bedrock-runtime`` client."""

from __future__ import annotations

import base64
import json
from typing import Any

import botocore.session
import pytest
from bedrock_support import (  # noqa: F401 - isolated_aws_env is an autouse fixture
    CLAUDE,
    HI,
    LLAMA,
    PROFILE_ARN,
    anthropic_body,
    bedrock_client,
    chunk_payloads,
    isolated_aws_env,
    llama_body,
)
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import ClientError, EventStreamError

from tokenrate.simulator import (
    RateLimitModel,
    SimulatedProvider,
    SimulatorClient,
    Step,
    UsagePlan,
    _bedrock,
    _eventstream,
)

PLAN = UsagePlan(input=120, output=30, cache_read=20, cache_write=10, reasoning=5)
TOKEN_USAGE_MEMBERS = set(
    botocore.session.get_session().get_service_model("bedrock-runtime").shape_for("TokenUsage").members
)
UNCACHED = PLAN.input - PLAN.cache_read - PLAN.cache_write


@pytest.fixture
def client(sim: SimulatedProvider) -> Any:
    sim.usage = PLAN
    return bedrock_client(sim.bedrock_endpoint_url)


@pytest.fixture
def single_try(sim: SimulatedProvider) -> Any:
    """A client that never retries, to see each scripted answer as the user would."""
    return bedrock_client(sim.bedrock_endpoint_url, total_max_attempts=1)


def assert_converse_usage(usage: dict[str, Any], plan: UsagePlan) -> None:
    """Bedrock arithmetic: inputTokens is only the uncached part; totalTokens counts the cache parts too."""
    assert usage["inputTokens"] == plan.input - plan.cache_read - plan.cache_write
    assert usage["cacheReadInputTokens"] == plan.cache_read
    assert usage["cacheWriteInputTokens"] == plan.cache_write
    assert usage["outputTokens"] == plan.output
    assert usage["totalTokens"] == plan.input + plan.output
    if "cacheDetails" in TOKEN_USAGE_MEMBERS:  # newer botocore models it; older releases drop it
        assert usage["cacheDetails"] == [{"ttl": "5m", "inputTokens": plan.cache_write}]


# -- Converse ---------------------------------------------------------------------------------------------------


def test_converse(sim, client) -> None:
    response = client.converse(modelId=CLAUDE, messages=HI)
    assert_converse_usage(response["usage"], PLAN)
    assert response["stopReason"] == "end_turn"
    (block,) = response["output"]["message"]["content"]
    assert len(block["text"].split()) == PLAN.output - PLAN.reasoning
    assert response["metrics"]["latencyMs"] >= 0
    assert response["ResponseMetadata"]["RetryAttempts"] == 0
    (served,) = sim.served
    assert (served.protocol, served.endpoint, served.model, served.stream) == ("bedrock", "converse", CLAUDE, False)
    assert served.path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    assert served.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDSIMULATED/")  # not checked
    assert served.usage == PLAN
    # Bedrock sends no rate-limit headers, only its request id.
    assert not [name for name in served.response_headers if "ratelimit" in name.lower()]
    assert response["ResponseMetadata"]["RequestId"] == served.response_headers["x-amzn-RequestId"]


def test_converse_max_tokens_cuts_the_answer(client) -> None:
    response = client.converse(modelId=CLAUDE, messages=HI, inferenceConfig={"maxTokens": 3})
    assert response["stopReason"] == "max_tokens"
    assert len(response["output"]["message"]["content"][0]["text"].split()) == 3


def test_converse_stream(sim, client) -> None:
    response = client.converse_stream(modelId=CLAUDE, messages=HI)
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == _eventstream.CONTENT_TYPE
    events = list(response["stream"])
    kinds = [next(iter(event)) for event in events]
    assert kinds[0] == "messageStart"
    assert set(kinds[1:-3]) == {"contentBlockDelta"}
    assert kinds[-3:] == ["contentBlockStop", "messageStop", "metadata"]
    assert events[-2]["messageStop"]["stopReason"] == "end_turn"
    assert_converse_usage(events[-1]["metadata"]["usage"], PLAN)
    text = "".join(event["contentBlockDelta"]["delta"]["text"] for event in events[1:-3])
    assert text == client.converse(modelId=CLAUDE, messages=HI)["output"]["message"]["content"][0]["text"]
    served = sim.served[0]
    assert (served.endpoint, served.stream, served.complete) == ("converse_stream", True, True)


def test_an_unreported_count_is_left_off(sim, client) -> None:
    sim.usage = UsagePlan(input=40, output=None)
    usage = client.converse(modelId=CLAUDE, messages=HI)["usage"]
    assert usage == {"inputTokens": 40}


def test_an_inference_profile_arn_is_url_encoded_in_the_path(sim, client) -> None:
    client.converse(modelId=PROFILE_ARN, messages=HI)
    (served,) = sim.served
    assert served.model == PROFILE_ARN
    assert "%2F" in served.path


def test_converse_tool_use(sim, client) -> None:
    sim.script(Step.tool_call("get_weather", {"city": "Paris"}), Step.tool_call("get_weather", {"city": "Paris"}))
    response = client.converse(modelId=CLAUDE, messages=HI)
    assert response["stopReason"] == "tool_use"
    tool_use = response["output"]["message"]["content"][0]["toolUse"]
    assert (tool_use["name"], tool_use["input"]) == ("get_weather", {"city": "Paris"})
    events = list(client.converse_stream(modelId=CLAUDE, messages=HI)["stream"])
    start = events[1]["contentBlockStart"]["start"]["toolUse"]
    pieces = [e["contentBlockDelta"]["delta"]["toolUse"]["input"] for e in events if "contentBlockDelta" in e]
    assert start["name"] == "get_weather"
    assert json.loads("".join(pieces)) == {"city": "Paris"}
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"
    result = {"toolResult": {"toolUseId": tool_use["toolUseId"], "content": [{"json": {"temp": 21}}]}}
    follow_up = [*HI, response["output"]["message"], {"role": "user", "content": [result]}]
    client.converse(modelId=CLAUDE, messages=follow_up)
    assert sim.served[-1].tool_results == 1


# -- InvokeModel and InvokeModelWithResponseStream -------------------------------------------------------------


def test_invoke_model_anthropic_body_and_token_headers(sim, client) -> None:
    response = client.invoke_model(modelId=CLAUDE, body=anthropic_body())
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["x-amzn-bedrock-input-token-count"] == str(UNCACHED)
    assert headers["x-amzn-bedrock-output-token-count"] == str(PLAN.output)
    assert headers["x-amzn-bedrock-cache-read-input-token-count"] == str(PLAN.cache_read)
    assert headers["x-amzn-bedrock-cache-write-input-token-count"] == str(PLAN.cache_write)
    assert response["contentType"] == "application/json"
    message = json.loads(response["body"].read())
    assert message["type"] == "message"
    assert message["model"] == "claude-3-haiku-20240307"
    assert message["usage"]["input_tokens"] == UNCACHED
    assert message["usage"]["cache_read_input_tokens"] == PLAN.cache_read
    assert message["usage"]["cache_creation_input_tokens"] == PLAN.cache_write
    assert message["usage"]["output_tokens"] == PLAN.output
    assert sim.served[0].endpoint == "invoke_model"


def test_invoke_model_other_models_answer_their_own_body(client) -> None:
    response = client.invoke_model(modelId=LLAMA, body=llama_body())
    body = json.loads(response["body"].read())
    assert body["prompt_token_count"] == PLAN.input
    assert body["generation_token_count"] == PLAN.output
    assert body["stop_reason"] == "stop"
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-output-token-count"] == str(PLAN.output)


def test_invoke_model_with_response_stream_anthropic(sim, client) -> None:
    response = client.invoke_model_with_response_stream(modelId=CLAUDE, body=anthropic_body())
    chunks = chunk_payloads(response["body"])
    types = [chunk["type"] for chunk in chunks]
    assert types[:2] == ["message_start", "content_block_start"]
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert "ping" not in types
    assert chunks[0]["message"]["usage"]["input_tokens"] == UNCACHED
    assert chunks[-2]["usage"]["output_tokens"] == PLAN.output
    metrics = chunks[-1][_bedrock.INVOCATION_METRICS]
    assert metrics["inputTokenCount"] == UNCACHED
    assert metrics["outputTokenCount"] == PLAN.output
    assert metrics["cacheReadInputTokenCount"] == PLAN.cache_read
    assert metrics["cacheWriteInputTokenCount"] == PLAN.cache_write
    assert sim.served[0].endpoint == "invoke_model_with_response_stream"
    assert sim.served[0].response_headers["x-amzn-bedrock-content-type"] == "application/json"


def test_invoke_model_with_response_stream_other_models(client) -> None:
    chunks = chunk_payloads(client.invoke_model_with_response_stream(modelId=LLAMA, body=llama_body())["body"])
    assert chunks[0]["prompt_token_count"] == PLAN.input
    assert [chunk["stop_reason"] for chunk in chunks][-1] == "stop"
    assert chunks[-1]["generation_token_count"] == PLAN.output
    assert chunks[-1][_bedrock.INVOCATION_METRICS]["outputTokenCount"] == PLAN.output
    assert "".join(chunk["generation"] for chunk in chunks).startswith("Simulated tokens")


# -- errors and throttling ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "status", "code"),
    [
        (Step.rate_limited(), 429, "ThrottlingException"),
        (Step.rate_limited(code="ModelNotReadyException"), 429, "ModelNotReadyException"),
        (Step.overloaded(), 503, "ServiceUnavailableException"),
        (Step.server_error(), 500, "InternalServerException"),
        (Step.server_error(503), 503, "ServiceUnavailableException"),
        (Step.bad_request(), 400, "ValidationException"),
        (Step.rate_limited(code="ServiceQuotaExceededException"), 400, "ServiceQuotaExceededException"),
    ],
)
def test_errors_as_bedrock_sends_them(sim, single_try, step, status, code) -> None:
    sim.script(step)
    with pytest.raises(ClientError) as caught:
        single_try.converse(modelId=CLAUDE, messages=HI)
    error = caught.value
    assert type(error).__name__ == code  # botocore's modeled exception class
    assert error.response["Error"]["Code"] == code
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert "(simulated)" in error.response["Error"]["Message"]
    headers = sim.served[0].response_headers
    assert headers["x-amzn-ErrorType"].startswith(code + ":")
    assert "retry-after" not in {name.lower() for name in headers}  # Bedrock sends no Retry-After


def test_a_throttled_attempt_then_success_is_retried_by_botocore(sim, client) -> None:
    sim.script(Step.rate_limited())
    response = client.converse(modelId=CLAUDE, messages=HI)
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    first, second = sim.served
    assert [first.status, second.status] == [429, 200]
    assert first.headers["amz-sdk-invocation-id"] == second.headers["amz-sdk-invocation-id"]
    assert "attempt=1" in first.headers["amz-sdk-request"]
    assert "attempt=2" in second.headers["amz-sdk-request"]
    assert [first.outcome, second.outcome] == ["rate_limited", "ok"]


def test_retries_exhausted(sim) -> None:
    sim.script(Step.rate_limited(code="ModelNotReadyException", times=3))  # transient: 50 ms backoff base
    client = bedrock_client(sim.bedrock_endpoint_url)
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=CLAUDE, messages=HI)
    assert caught.value.response["ResponseMetadata"]["MaxAttemptsReached"] is True
    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 2
    assert [s.status for s in sim.served] == [429, 429, 429]


def test_the_rate_limit_model_throttles_bedrock_too() -> None:
    with SimulatedProvider(rate_limits=RateLimitModel(rpm=1, tpm=1_000_000)) as limited:
        client = bedrock_client(limited.bedrock_endpoint_url, total_max_attempts=1)
        client.converse(modelId=CLAUDE, messages=HI)
        with pytest.raises(ClientError) as caught:
            client.converse(modelId=CLAUDE, messages=HI)
        assert caught.value.response["Error"]["Code"] == "ThrottlingException"
        assert limited.served[-1].outcome == "model_rate_limited"
        assert "retry-after" not in limited.served[-1].response_headers


@pytest.mark.parametrize("operation", ["converse_stream", "invoke_model_with_response_stream"])
def test_a_mid_stream_exception_frame(sim, client, operation) -> None:
    sim.script(Step.stream_error(after_events=3))
    if operation == "converse_stream":
        stream = client.converse_stream(modelId=CLAUDE, messages=HI)["stream"]
    else:
        stream = client.invoke_model_with_response_stream(modelId=CLAUDE, body=anthropic_body())["body"]
    received: list[Any] = []
    with pytest.raises(EventStreamError) as caught:
        received.extend(stream)
    assert len(received) == 3
    assert caught.value.response["Error"]["Code"] == "throttlingException"
    (served,) = sim.served
    assert (served.status, served.outcome, served.usage) == (200, "stream_error", None)


def test_a_stream_error_step_waits_for_a_bedrock_stream(sim, client) -> None:
    sim.script(Step.stream_error("modelStreamErrorException", after_events=0))
    client.converse(modelId=CLAUDE, messages=HI)  # not a stream: the step stays queued
    assert len(sim.pending_steps) == 1
    stream = client.invoke_model_with_response_stream(modelId=LLAMA, body=llama_body())["body"]
    with pytest.raises(EventStreamError) as caught:
        list(stream)
    assert caught.value.response["Error"]["Code"] == "modelStreamErrorException"
    assert not sim.pending_steps


def test_step_validation_for_bedrock_fields() -> None:
    with pytest.raises(ValueError, match="only simulated for bedrock"):
        Step.stream_error(match="openai")
    with pytest.raises(ValueError, match="cannot fail mid-stream"):
        Step.stream_error(match="converse")
    with pytest.raises(ValueError, match="error name"):
        Step.rate_limited(code="Throttling Exception: <script>")
    with pytest.raises(ValueError, match="after_events"):
        Step.stream_error(after_events=-1)


def test_bedrock_steps_script_a_simulator_in_another_process(sim, client) -> None:
    control = SimulatorClient(sim.base_url)
    control.script(Step.rate_limited(code="ModelNotReadyException"), Step.stream_error(after_events=1))
    assert [(s.kind, s.code, s.after_events) for s in sim.pending_steps] == [
        ("rate_limited", "ModelNotReadyException", 0),
        ("stream_error", "throttlingException", 1),
    ]


# -- the framing itself -------------------------------------------------------------------------------------------


def test_event_stream_frames_pass_botocores_checks_even_split_byte_by_byte() -> None:
    payload = {"bytes": base64.b64encode(b'{"type":"message_stop"}').decode()}
    wire = _eventstream.event("chunk", payload) + _eventstream.exception("throttlingException", "slow down")
    buffer = EventStreamBuffer()
    messages = []
    for i in range(len(wire)):  # botocore validates the prelude and message CRCs of every message
        buffer.add_data(wire[i : i + 1])
        messages.extend(buffer)
    first, second = messages
    assert first.headers == {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"}
    assert json.loads(first.payload) == payload
    assert second.headers[":message-type"] == "exception"
    assert second.headers[":exception-type"] == "throttlingException"
    assert second.to_response_dict()["status_code"] == 400


def test_unknown_bedrock_path_is_404(sim) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(sim.base_url + "/model/x/summarize", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 404
    assert caught.value.headers["x-amzn-ErrorType"].startswith("UnknownOperationException")

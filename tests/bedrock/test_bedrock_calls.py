"""boto3 ``bedrock-runtime`` calls recorded with Bedrock's token arithmetic, one span each, priced by genai-prices."""

from __future__ import annotations

import gc
import json

import boto3
import pytest
from bedrock_support import CACHED_PLAN as PLAN
from bedrock_support import CLAUDE, HI, LLAMA, PROFILE_ARN, anthropic_body, bedrock_client, llama_body
from botocore.config import Config
from botocore.exceptions import ClientError
from sdk_support import installed

from tokenrate.providers.bedrock import INPUT_HEADER, OUTPUT_HEADER
from tokenrate.records import TokenUsage
from tokenrate.simulator import UsagePlan

EXPECTED = TokenUsage(input=PLAN.input, output=PLAN.output, cache_read=PLAN.cache_read, cache_write=PLAN.cache_write)
"""tokenrate's input is Bedrock's inputTokens plus both cache parts; no reasoning split is reported."""

needs_prices = pytest.mark.skipif(not installed("genai_prices"), reason="genai-prices needs Python >= 3.11")


def expected_cost(model: str, usage: TokenUsage = EXPECTED) -> float:
    from genai_prices import Usage, calc_price

    price = calc_price(
        Usage(
            input_tokens=usage.input,
            output_tokens=usage.output,
            cache_read_tokens=usage.cache_read,
            cache_write_tokens=usage.cache_write,
        ),
        model,
        provider_id="aws",
    )
    return float(price.total_price)


def test_converse(sim, client, telemetry, records) -> None:
    response = client.converse(modelId=CLAUDE, messages=HI)
    assert response["usage"]["inputTokens"] == PLAN.input - PLAN.cache_read - PLAN.cache_write  # untouched

    record = records.last
    assert record.usage == EXPECTED
    assert (record.info.provider, record.info.operation, record.info.request_model) == ("aws.bedrock", "chat", CLAUDE)
    assert (record.info.server_address, record.info.server_port) == ("127.0.0.1", sim.port)
    assert record.info.stream is False
    assert (record.outcome, record.status_code, record.retries) == ("ok", 200, ())
    assert record.time_to_first_chunk_s is None

    (span,) = telemetry.spans()
    attributes = dict(span.attributes)
    assert span.name == f"chat {CLAUDE}"
    assert attributes["gen_ai.provider.name"] == "aws.bedrock"
    assert attributes["gen_ai.request.model"] == CLAUDE
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["gen_ai.usage.input_tokens"] == PLAN.input
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == PLAN.cache_read
    assert attributes["gen_ai.usage.cache_creation.input_tokens"] == PLAN.cache_write
    assert attributes["gen_ai.usage.output_tokens"] == PLAN.output
    for token_type, value in EXPECTED.items():
        assert telemetry.total("tokenrate.usage.tokens", gen_ai__token__type=token_type) == value
    assert telemetry.total("tokenrate.requests", gen_ai__provider__name="aws.bedrock") == 1


@needs_prices
@pytest.mark.parametrize("model", [CLAUDE, PROFILE_ARN])
def test_cost_from_genai_prices(client, records, model) -> None:
    """An inference-profile ARN stays the request model; genai-prices resolves it to the foundation model."""
    client.converse(modelId=model, messages=HI)
    record = records.last
    assert record.info.request_model == model
    assert record.cost_usd == pytest.approx(expected_cost(model), rel=1e-12)
    assert record.cost_usd > 0


def test_converse_stream(client, telemetry, records) -> None:
    events = list(client.converse_stream(modelId=CLAUDE, messages=HI)["stream"])
    assert "metadata" in events[-1]
    (record,) = records.calls
    assert record.usage == EXPECTED
    assert record.info.stream is True
    assert record.outcome == "ok"
    assert record.time_to_first_chunk_s is not None
    assert len(telemetry.spans()) == 1
    assert telemetry.samples("gen_ai.client.operation.time_to_first_chunk") == 1


def test_invoke_model_reads_the_token_count_headers(client, records) -> None:
    response = client.invoke_model(modelId=CLAUDE, body=anthropic_body())
    (record,) = records.calls  # ended when invoke_model returned: the headers had the usage
    assert record.usage == EXPECTED
    assert record.info.operation == "chat"
    assert json.loads(response["body"].read())["usage"]["output_tokens"] == PLAN.output  # the body is untouched


def _strip_usage_headers(response_dict, **_):
    for name in [name for name in response_dict["headers"] if name.lower().startswith("x-amzn-bedrock-")]:
        del response_dict["headers"][name]


def test_invoke_model_without_usage_headers_reads_the_anthropic_body(client, records) -> None:
    """A proxy that drops Bedrock's headers: the usage comes from the model's own body as the user reads it."""
    client.meta.events.register("before-parse.bedrock-runtime.InvokeModel", _strip_usage_headers)
    response = client.invoke_model(modelId=CLAUDE, body=anthropic_body())
    assert INPUT_HEADER not in response["ResponseMetadata"]["HTTPHeaders"]
    assert records.calls == []  # still going: the body is unread
    message = json.loads(response["body"].read())
    assert message["type"] == "message"
    (record,) = records.calls
    assert record.usage == EXPECTED
    assert record.outcome == "ok"


def test_an_unread_body_without_headers_is_closed_or_abandoned(client, records) -> None:
    client.meta.events.register("before-parse.bedrock-runtime.InvokeModel", _strip_usage_headers)
    client.invoke_model(modelId=CLAUDE, body=anthropic_body())["body"].close()
    assert (records.last.outcome, records.last.usage) == ("closed", TokenUsage())
    response = client.invoke_model(modelId=CLAUDE, body=anthropic_body())
    chunks = list(response["body"].iter_chunks(16))
    assert json.loads(b"".join(chunks))["type"] == "message"
    assert (records.last.outcome, records.last.usage) == ("ok", EXPECTED)
    client.invoke_model(modelId=CLAUDE, body=anthropic_body())
    gc.collect()
    assert records.last.outcome == "abandoned"
    assert len(records.calls) == 3


def test_invoke_model_other_models_count_by_headers(client, records) -> None:
    response = client.invoke_model(modelId=LLAMA, body=llama_body())
    assert json.loads(response["body"].read())["generation"]
    assert records.last.usage == EXPECTED
    assert response["ResponseMetadata"]["HTTPHeaders"][OUTPUT_HEADER] == str(PLAN.output)


@pytest.mark.parametrize(("model", "body"), [(CLAUDE, anthropic_body()), (LLAMA, llama_body())])
def test_invoke_model_with_response_stream(client, telemetry, records, model, body) -> None:
    stream = client.invoke_model_with_response_stream(modelId=model, body=body)["body"]
    assert len(list(stream)) > 2
    (record,) = records.calls
    assert record.usage == EXPECTED  # amazon-bedrock-invocationMetrics of the last chunk
    assert record.info.stream is True
    assert record.outcome == "ok"
    # Claude names itself in message_start; other models' chunks name no model.
    assert record.response_model == ("claude-3-haiku-20240307" if model == CLAUDE else None)
    assert len(telemetry.spans()) == 1


def test_embedding_models_are_embeddings(sim, client, records) -> None:
    sim.usage = UsagePlan(input=12, output=0)
    client.invoke_model(modelId="amazon.titan-embed-text-v2:0", body=json.dumps({"inputText": "hi"}))
    assert records.last.info.operation == "embeddings"
    assert records.last.usage == TokenUsage(input=12, output=0)


def test_other_operations_and_services_are_untouched(sim, telemetry, records) -> None:
    """Only the four model operations of bedrock-runtime are calls; anything else goes through as it was."""
    runtime = bedrock_client(sim.bedrock_endpoint_url, total_max_attempts=1)
    with pytest.raises(ClientError) as not_a_call:
        runtime.list_async_invokes()  # a bedrock-runtime operation that is not a model call (404 here)
    dynamodb = boto3.Session(aws_access_key_id="x", aws_secret_access_key="y", region_name="us-east-1").client(
        "dynamodb", endpoint_url=sim.base_url, config=Config(retries={"total_max_attempts": 1})
    )
    with pytest.raises(ClientError):
        dynamodb.list_tables()
    assert not_a_call.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert records.calls == []
    assert telemetry.spans() == []


def test_a_failed_call_is_an_error_with_its_status(sim, client, records) -> None:
    from tokenrate.simulator import Step

    sim.script(Step.bad_request())
    with pytest.raises(ClientError) as caught:
        client.converse(modelId=CLAUDE, messages=HI)
    assert type(caught.value).__name__ == "ValidationException"
    record = records.last
    assert (record.outcome, record.error_type, record.status_code) == ("error", "ValidationException", 400)
    assert record.retries == ()
    assert record.cost_usd in (None, 0.0)

"""Never break the user's call; distrust what Bedrock (or a proxy in front of it) sends."""

from __future__ import annotations

import json
import math

import pytest
from bedrock_support import CACHED_PLAN as PLAN
from bedrock_support import CLAUDE, HI, anthropic_body

from tokenrate.providers import bedrock
from tokenrate.records import TokenUsage

HOSTILE = [-1, 2**60, math.nan, math.inf, 1.5, True, "12", None]


@pytest.mark.parametrize("value", HOSTILE[:-1])
def test_a_hostile_usage_count_makes_the_usage_unknown(client, records, value) -> None:
    """botocore does not validate integers in a response: what the server sent reaches the user as is."""

    def tamper(parsed, **_):
        parsed["usage"]["outputTokens"] = value

    client.meta.events.register("after-call.bedrock-runtime.Converse", tamper)
    response = client.converse(modelId=CLAUDE, messages=HI)
    assert response["usage"]["outputTokens"] is value  # the user's result, unchanged
    record = records.last
    assert (record.outcome, record.usage) == ("ok", TokenUsage())  # the block is distrusted as a whole


@pytest.mark.parametrize("value", ["-5", "9" * 400, "1e3", "", " 7x", "١٢"])
def test_hostile_token_count_headers_fall_back_to_the_body(client, records, value) -> None:
    def tamper(response_dict, **_):
        response_dict["headers"]["x-amzn-bedrock-output-token-count"] = value

    client.meta.events.register("before-parse.bedrock-runtime.InvokeModel", tamper)
    response = client.invoke_model(modelId=CLAUDE, body=anthropic_body())
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-bedrock-output-token-count"] == value
    assert json.loads(response["body"].read())["usage"]["output_tokens"] == PLAN.output
    assert records.last.usage.output == PLAN.output  # from the Anthropic body the user read


@pytest.mark.parametrize(
    ("reader", "name"),
    [
        (bedrock.converse_usage, "inputTokens"),
        (bedrock.converse_usage, "cacheReadInputTokens"),
        (bedrock.invocation_metrics_usage, "inputTokenCount"),
        (bedrock.invocation_metrics_usage, "cacheWriteInputTokenCount"),
    ],
)
def test_readers_refuse_any_hostile_count(reader, name) -> None:
    good = {"inputTokens": 5, "outputTokens": 2, "inputTokenCount": 5, "outputTokenCount": 2}
    assert reader(good) == TokenUsage(input=5, output=2)
    for value in HOSTILE[:-1]:
        assert reader({**good, name: value}) is None, value
    assert reader({**good, "outputTokens": 2.0, "outputTokenCount": 2.0}) == TokenUsage(input=5, output=2)
    assert reader(None) is None
    assert reader(["not", "a", "mapping"]) is None


@pytest.mark.tokenrate_errors_expected
def test_a_failing_reader_never_reaches_the_user(client, records, monkeypatch, swallowed_errors) -> None:
    def broken(usage):
        raise RuntimeError("tokenrate bug")

    monkeypatch.setattr(bedrock, "converse_usage", broken)
    response = client.converse(modelId=CLAUDE, messages=HI)
    assert response["usage"]["outputTokens"] == PLAN.output
    stream = client.converse_stream(modelId=CLAUDE, messages=HI)["stream"]
    assert "metadata" in list(stream)[-1]
    first, second = records.calls
    assert (first.outcome, first.usage, second.outcome) == ("ok", TokenUsage(), "ok")
    assert swallowed_errors.places() == ["botocore result", "stream item"]

"""Cerebras' and Together's flavours of OpenAI's protocol, as they go on the wire (plain HTTP, no SDK)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tokenrate.simulator import Step, UsagePlan

PLAN = UsagePlan(input=50, output=10, cache_read=5, reasoning=2)
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def chunks(raw: bytes) -> list[dict[str, Any]]:
    data = [line[6:] for line in raw.decode().splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return [json.loads(item) for item in data[:-1]]


@pytest.fixture
def cerebras_url(sim) -> str:
    sim.usage = PLAN
    return sim.base_url_for("cerebras-cloud-sdk") + "/v1"


@pytest.fixture
def together_url(sim) -> str:
    sim.usage = PLAN
    return sim.base_url_for("together") + "/v1"


def test_cerebras_answers_carry_time_info_and_full_usage(cerebras_url):
    status, _, body = post(cerebras_url + "/chat/completions", CHAT)
    answer = json.loads(body)
    assert status == 200
    assert set(answer["time_info"]) == {"queue_time", "prompt_time", "completion_time", "total_time", "created"}
    assert answer["usage"]["prompt_tokens_details"] == {"cached_tokens": 5}


@pytest.mark.parametrize("path", ["/chat/completions", "/completions"])
def test_cerebras_streams_put_usage_and_time_info_on_the_last_chunk_unasked(cerebras_url, path):
    body = {**CHAT, "stream": True} if path == "/chat/completions" else {"model": "m", "prompt": "hi", "stream": True}
    _, _, raw = post(cerebras_url + path, body)
    *rest, last = chunks(raw)
    assert last["choices"][0]["finish_reason"] == "stop"
    assert (last["usage"]["completion_tokens"], "time_info" in last) == (10, True)
    assert not any("usage" in chunk or "time_info" in chunk for chunk in rest)


def test_cerebras_asked_for_usage_sends_no_extra_chunk(cerebras_url):
    _, _, raw = post(
        cerebras_url + "/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    )
    found = chunks(raw)
    assert all(chunk["choices"] for chunk in found)  # no choice-less usage chunk after the last one
    assert found[-1]["usage"]["prompt_tokens"] == 50


def test_cerebras_errors_are_flat_and_name_the_window(sim, cerebras_url):
    sim.script(Step.rate_limited(retry_after=2))
    status, headers, body = post(cerebras_url + "/chat/completions", CHAT)
    assert (status, headers["retry-after"], headers["x-ratelimit-remaining-requests-day"]) == (429, "2", "0")
    assert json.loads(body) == {
        "message": "Requests per minute limit exceeded - too many requests sent.",
        "type": "too_many_requests_error",
        "param": "quota",
        "code": "request_quota_exceeded",
    }


def test_cerebras_connection_warm_up_is_answered_and_not_a_call(sim):
    with urllib.request.urlopen(sim.base_url_for("cerebras-cloud-sdk") + "/v1/tcp_warming", timeout=10) as response:
        assert response.status == 200
    assert sim.served == []


def test_together_streams_mark_usage_null_until_the_last_chunk(together_url):
    _, headers, raw = post(together_url + "/chat/completions", {**CHAT, "stream": True})
    *rest, last = chunks(raw)
    assert all(chunk["usage"] is None for chunk in rest)
    assert last["usage"] == {"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}  # no details
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "x-tokenlimit-remaining"} <= set(headers)


def test_together_whole_answers_echo_the_prompt(together_url):
    _, _, body = post(together_url + "/chat/completions", CHAT)
    answer = json.loads(body)
    assert (answer["prompt"], answer["usage"]["total_tokens"]) == ([], 60)


@pytest.mark.parametrize("sdk", ["cerebras-cloud-sdk", "together"])
def test_an_overloaded_model_answers_503_not_529(sim, sdk):
    sim.script(Step.overloaded())
    status, _, _ = post(sim.base_url_for(sdk) + "/v1/chat/completions", CHAT)
    assert status == 503

"""Zero-code: an unmodified script under ``opentelemetry-instrument`` exports tokenrate's metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sdk_support import client_base_url

from tokenrate.simulator import Step, UsagePlan

APP = textwrap.dedent(
    """
    import openai

    client = openai.OpenAI()  # OPENAI_BASE_URL / OPENAI_API_KEY from the environment
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    print("answer:", reply.choices[0].message.content)
    """
)


GROQ_APP = textwrap.dedent(
    """
    import groq

    client = groq.Groq()  # GROQ_BASE_URL / GROQ_API_KEY from the environment
    reply = client.chat.completions.create(model="llama-3.1-8b-instant", messages=[{"role": "user", "content": "hi"}])
    print("answer:", reply.choices[0].message.content)
    """
)


def _run(tmp_path: Path, sim, app: str = APP, **env: str | None) -> subprocess.CompletedProcess:
    """Run ``app`` under opentelemetry-instrument; ``env`` values add to the environment (``None`` removes one)."""
    script = tmp_path / "app.py"
    script.write_text(app)
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    environment = {
        **os.environ,
        "OPENAI_BASE_URL": sim.openai_base_url,
        "OPENAI_API_KEY": "sk-test",
        "OTEL_SERVICE_NAME": "unmodified-app",
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",  # one export, at shutdown
        **env,
    }
    environment = {name: value for name, value in environment.items() if value is not None}
    return subprocess.run(
        [str(instrument), sys.executable, str(script)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _metrics(stdout: str) -> dict[str, list[dict]]:
    """Metric name → data points, from the console exporter's concatenated JSON documents."""
    decoder = json.JSONDecoder()
    found: dict[str, list[dict]] = {}
    index = 0
    while True:
        start = stdout.find("{", index)
        if start < 0:
            return found
        document, index = decoder.raw_decode(stdout, start)
        for resource_metrics in document.get("resource_metrics", []):
            for scope_metrics in resource_metrics["scope_metrics"]:
                for metric in scope_metrics["metrics"]:
                    found.setdefault(metric["name"], []).extend(metric["data"]["data_points"])


def _value(points: list[dict], **attributes: object) -> float:
    total = 0.0
    for point in points:
        if all(point["attributes"].get(k) == v for k, v in attributes.items()):
            total += point.get("value", point.get("sum", 0))
    return total


def test_unmodified_script_exports_tokens_throttling_and_rate_limits(tmp_path, sim):
    sim.usage = UsagePlan(input=120, output=30, cache_read=20, cache_write=10, reasoning=8)
    sim.script(Step.rate_limited(retry_after=1), Step.ok())
    result = _run(tmp_path, sim)
    assert result.returncode == 0, result.stderr
    assert "answer:" in result.stdout
    metrics = _metrics(result.stdout)

    tokens = metrics["tokenrate.usage.tokens"]
    by_type = {t: _value(tokens, **{"gen_ai.token.type": t}) for t in ("input", "output", "cache_read", "reasoning")}
    assert by_type == {"input": 120, "output": 30, "cache_read": 20, "reasoning": 8}
    assert _value(tokens, **{"gen_ai.token.type": "cache_write"}) == 10
    assert _value(metrics["tokenrate.throttle.events"], **{"http.response.status_code": 429}) == 1
    (wait,) = metrics["tokenrate.throttle.wait"]
    assert wait["count"] == 1
    assert wait["sum"] == pytest.approx(1.0)
    kinds = {p["attributes"]["tokenrate.ratelimit.kind"] for p in metrics["tokenrate.ratelimit.remaining"]}
    assert kinds == {"requests", "tokens"}
    assert _value(metrics["tokenrate.requests"]) == 1
    assert "gen_ai.client.operation.duration" in metrics
    assert "gen_ai.client.token.usage" in metrics


def test_disabled_by_entry_point_name(tmp_path, sim):
    result = _run(tmp_path, sim, OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="tokenrate_openai")
    assert result.returncode == 0, result.stderr
    assert "answer:" in result.stdout
    assert not any(name.startswith("tokenrate.") for name in _metrics(result.stdout))


BEDROCK_APP = textwrap.dedent(
    """
    import boto3

    client = boto3.client("bedrock-runtime")  # endpoint, keys and region from the environment
    reply = client.converse(
        modelId="anthropic.claude-3-haiku-20240307-v1:0", messages=[{"role": "user", "content": [{"text": "hi"}]}]
    )
    print("answer:", reply["output"]["message"]["content"][0]["text"])
    """
)


def test_unmodified_boto3_script_exports_bedrock_tokens_and_throttling(tmp_path, sim):
    sim.usage = UsagePlan(input=120, output=30, cache_read=20, cache_write=10)
    sim.script(Step.rate_limited())
    result = _run(
        tmp_path,
        sim,
        BEDROCK_APP,
        AWS_ENDPOINT_URL_BEDROCK_RUNTIME=sim.bedrock_endpoint_url,
        AWS_ACCESS_KEY_ID="AKIDSIMULATED",
        AWS_SECRET_ACCESS_KEY="simulated",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_BEARER_TOKEN_BEDROCK=None,
        AWS_PROFILE=None,
        AWS_RETRY_MODE="standard",
        AWS_MAX_ATTEMPTS="3",
    )
    assert result.returncode == 0, result.stderr
    assert "answer:" in result.stdout
    metrics = _metrics(result.stdout)
    tokens = metrics["tokenrate.usage.tokens"]
    by_type = {t: _value(tokens, **{"gen_ai.token.type": t}) for t in ("input", "output", "cache_read", "cache_write")}
    assert by_type == {"input": 120, "output": 30, "cache_read": 20, "cache_write": 10}
    assert _value(metrics["tokenrate.requests"], **{"gen_ai.provider.name": "aws.bedrock"}) == 1
    assert _value(metrics["tokenrate.throttle.events"], **{"tokenrate.retried": True}) == 1
    (throttle_wait,) = metrics["tokenrate.throttle.wait"]
    (retry_wait,) = metrics["tokenrate.retry.wait"]
    assert throttle_wait["count"] == retry_wait["count"] == 1
    assert throttle_wait["sum"] == retry_wait["sum"]  # botocore's computed delay, once
    assert [s.status for s in sim.served] == [429, 200]


def test_unmodified_groq_script_is_recorded_with_its_retry(tmp_path, sim):
    sim.usage = UsagePlan(input=90, output=12, cache_read=30)
    sim.script(Step.rate_limited(retry_after=0.5, match="groq"), Step.ok())
    result = _run(tmp_path, sim, GROQ_APP, GROQ_BASE_URL=sim.base_url_for("groq"), GROQ_API_KEY="gsk-test")
    assert result.returncode == 0, result.stderr
    assert "answer:" in result.stdout
    metrics = _metrics(result.stdout)
    tokens = metrics["tokenrate.usage.tokens"]
    assert {t: _value(tokens, **{"gen_ai.token.type": t}) for t in ("input", "output", "cache_read")} == {
        "input": 90,
        "output": 12,
        "cache_read": 30,
    }
    assert _value(metrics["tokenrate.requests"], **{"gen_ai.provider.name": "groq"}) == 1
    (wait,) = metrics["tokenrate.throttle.wait"]
    assert (wait["count"], wait["sum"]) == (1, pytest.approx(0.5))


COMPATIBLE_APPS = {
    # sdk: (environment prefix, the unmodified script, provider name)
    "cerebras-cloud-sdk": (
        "CEREBRAS",
        """
        from cerebras.cloud.sdk import Cerebras

        client = Cerebras()  # CEREBRAS_BASE_URL / CEREBRAS_API_KEY from the environment
        reply = client.chat.completions.create(model="llama3.1-8b", messages=[{"role": "user", "content": "hi"}])
        print("answer:", reply.choices[0].message.content)
        """,
        "cerebras",
    ),
    "together": (
        "TOGETHER",
        """
        import together

        client = together.Together()  # TOGETHER_BASE_URL / TOGETHER_API_KEY from the environment
        stream = client.chat.completions.create(
            model="meta-llama/Llama-3.3-70B-Instruct-Turbo", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        print("answer:", "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices))
        """,
        "together",
    ),
}


@pytest.mark.parametrize("sdk", sorted(COMPATIBLE_APPS))
def test_unmodified_cerebras_and_together_scripts_are_recorded_with_their_retry(tmp_path, sim, sdk):
    prefix, app, provider = COMPATIBLE_APPS[sdk]
    sim.usage = UsagePlan(input=90, output=12)
    sim.script(Step.rate_limited(retry_after=0.5), Step.ok())
    env = {f"{prefix}_BASE_URL": client_base_url(sim, sdk), f"{prefix}_API_KEY": "test-key"}
    result = _run(tmp_path, sim, textwrap.dedent(app), **env)
    assert result.returncode == 0, result.stderr
    assert "answer:" in result.stdout
    metrics = _metrics(result.stdout)
    tokens = metrics["tokenrate.usage.tokens"]
    assert {t: _value(tokens, **{"gen_ai.token.type": t}) for t in ("input", "output")} == {"input": 90, "output": 12}
    assert _value(metrics["tokenrate.requests"], **{"gen_ai.provider.name": provider}) == 1
    (wait,) = metrics["tokenrate.throttle.wait"]
    assert (wait["count"], wait["sum"]) == (1, pytest.approx(0.5))
    assert [s.status for s in sim.served] == [429, 200]

"""Zero-code, all three SDKs: one script under ``opentelemetry-instrument`` against the simulator emits, for each
provider, tokens by type, throttle events and waits, rate-limit gauges, and exactly one span per call."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tokenrate.simulator import Step, UsagePlan

pytest.importorskip("google.genai", reason="google-genai 3.x needs Python >= 3.11")


APP = textwrap.dedent(
    """
    import os

    import anthropic
    import openai
    from google import genai
    from google.genai import types

    retry = types.HttpRetryOptions(attempts=3, initial_delay=0.2, jitter=0)
    gemini = genai.Client(api_key="x", http_options=types.HttpOptions(base_url=os.environ["SIM"], retry_options=retry))
    openai.OpenAI().chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    anthropic.Anthropic().messages.create(
        model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    gemini.models.generate_content(model="gemini-2.5-flash", contents="hi")
    print("all three done")
    """
)


def _documents(text: str) -> list[dict]:
    decoder = json.JSONDecoder()
    documents, index = [], 0
    while (start := text.find("{", index)) >= 0:
        document, index = decoder.raw_decode(text, start)
        documents.append(document)
    return documents


def test_all_three_sdks_under_opentelemetry_instrument(tmp_path: Path, sim):
    sim.usage = UsagePlan(input=200, output=40, cache_read=50, cache_write=20, reasoning=10, tool_use=5)
    # One 429 per provider, each answered by that SDK's own retry path (retry-after for openai/anthropic,
    # tenacity backoff for genai).
    sim.script(
        Step.rate_limited(retry_after=0.3, retry_after_ms=True, match="openai"),
        Step.rate_limited(retry_after=0.3, retry_after_ms=True, match="anthropic"),
        Step.rate_limited(retry_after=0.3, match="gemini"),
    )
    script = tmp_path / "app.py"
    script.write_text(APP)
    env = {
        **os.environ,
        "SIM": sim.gemini_base_url,
        "OPENAI_BASE_URL": sim.openai_base_url,
        "OPENAI_API_KEY": "sk-test",
        "ANTHROPIC_BASE_URL": sim.anthropic_base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_LOGS_EXPORTER": "none",
        "OTEL_METRIC_EXPORT_INTERVAL": "600000",
        "TOKENRATE_LEDGER": "off",
    }
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    result = subprocess.run(
        [str(instrument), sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stderr
    assert "all three done" in result.stdout

    documents = _documents(result.stdout)
    spans = [d for d in documents if "context" in d and "kind" in d]
    metrics: dict[str, list[dict]] = {}
    for document in documents:
        for resource_metrics in document.get("resource_metrics", []):
            for scope in resource_metrics["scope_metrics"]:
                for metric in scope["metrics"]:
                    metrics.setdefault(metric["name"], []).extend(metric["data"]["data_points"])

    providers = ("openai", "anthropic", "gcp.gemini")
    # One span per call: no second span from anthropic's own tracing, none per retry.
    assert sorted(s["attributes"]["gen_ai.provider.name"] for s in spans) == sorted(providers)
    for span in spans:
        assert span["kind"] == "SpanKind.CLIENT"
        assert [e["name"] for e in span["events"]] == ["tokenrate.retry"]
        assert span["attributes"]["gen_ai.usage.input_tokens"] == 200

    def value(name: str, provider: str, **attributes: object) -> float:
        return sum(
            p.get("value", p.get("sum", 0))
            for p in metrics.get(name, [])
            if p["attributes"]["gen_ai.provider.name"] == provider
            and all(p["attributes"].get(k) == v for k, v in attributes.items())
        )

    expected_types = {
        "openai": {"input": 200, "output": 40, "cache_read": 50, "cache_write": 20, "reasoning": 10},
        "anthropic": {"input": 200, "output": 40, "cache_read": 50, "cache_write": 20, "reasoning": 10},
        "gcp.gemini": {"input": 200, "output": 40, "cache_read": 50, "reasoning": 10, "tool_use": 5},
    }
    for provider, types in expected_types.items():
        for token_type, count in types.items():
            assert value("tokenrate.usage.tokens", provider, **{"gen_ai.token.type": token_type}) == count, (
                provider,
                token_type,
            )
        assert value("tokenrate.throttle.events", provider) == 1, provider
        assert value("tokenrate.throttle.wait", provider) > 0, provider
        assert value("tokenrate.requests", provider) == 1, provider
    # Rate-limit headers: OpenAI and Anthropic send them; the Gemini API has none.
    gauge_providers = {p["attributes"]["gen_ai.provider.name"] for p in metrics["tokenrate.ratelimit.remaining"]}
    assert gauge_providers == {"openai", "anthropic"}

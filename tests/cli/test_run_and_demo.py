"""The CLI as users run it: subprocesses of ``tokenrate`` against the simulated provider."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sdk_support import HAS_GENAI, needs_full_stack

from tokenrate.simulator import Step, UsagePlan

APP = textwrap.dedent(
    """
    import sys
    import anthropic
    import openai

    oa = openai.OpenAI()
    for _ in range(3):
        oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    for _ in oa.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True):
        pass
    an = anthropic.Anthropic()
    an.messages.create(model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}])
    print("app done")
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    """
)


def _tokenrate(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tokenrate", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def _env(sim, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "OPENAI_BASE_URL": sim.openai_base_url,
        "OPENAI_API_KEY": "sk-test",
        "ANTHROPIC_BASE_URL": sim.anthropic_base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "TOKENRATE_LEDGER": str(tmp_path / "ledger.sqlite3"),
        "TOKENRATE_STATE_DIR": str(tmp_path / "state"),
        **extra,
    }
    for key in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_METRICS_EXPORTER", "OTEL_TRACES_EXPORTER"):
        env.pop(key, None)
    return env


def test_run_prints_a_summary_equal_to_what_the_simulator_served(sim, tmp_path):
    sim.usage = UsagePlan(input=100, output=20, cache_read=30)
    sim.script(Step.rate_limited(retry_after=0.2, retry_after_ms=True, match="openai"), Step.ok(match="openai"))
    script = tmp_path / "app.py"
    script.write_text(APP)
    result = _tokenrate("run", "--", "python", str(script), "3", env=_env(sim, tmp_path))

    assert "app done" in result.stdout
    assert result.returncode == 3, result.stderr  # the program's exit code, passed through
    served = [s for s in sim.served if s.status == 200]
    assert len(served) == 5
    total_input = sum(s.usage.input for s in served)
    total_output = sum(s.usage.output for s in served)
    summary = result.stderr
    assert "tokenrate session summary" in summary
    assert re.search(r"requests\s+5 \(6 attempts\)", summary), summary
    assert f"input {total_input:,} + output {total_output:,}" in summary
    assert f"cache_read {sum(s.usage.cache_read for s in served):,}" in summary
    assert re.search(r"throttled\s+1×", summary), summary

    # The ledger got one row per call, written by the program's background writer.
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as db:
        rows = db.execute("select provider, count(*) from calls group by provider order by provider").fetchall()
    assert rows == [("anthropic", 1), ("openai", 4)]


def test_run_without_a_command_explains_itself(tmp_path, sim):
    result = _tokenrate("run", env=_env(sim, tmp_path))
    assert result.returncode == 2
    assert "after --" in result.stderr


def test_demo_short_mode_hits_rate_limits_across_every_sdk(tmp_path):
    env = {**os.environ}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    env["TOKENRATE_LEDGER"] = "off"
    result = _tokenrate("demo", "--duration", "8", "--plain", "--rpm", "6", "--tpm", "3000", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "SIMULATED" in out
    sdks = ["openai", "anthropic", *(["google-genai"] if HAS_GENAI else []), "botocore", "groq"]
    sdks += ["cerebras-cloud-sdk", "together"]  # installed by the test extra, instrumented, not in the workload
    assert f"instrumented: {', '.join(sdks)}\n" in out
    models = [
        "openai/gpt-4o-mini",
        "anthropic/claude-haiku-4-5",
        *(["gcp.gemini/gemini-2.5-flash"] if HAS_GENAI else []),
        "aws.bedrock/anthropic.claude-3-5-haiku-20241022-v1:0",
        "groq/llama-3.1-8b-instant",
    ]
    for model in models:
        assert model in out
    match = re.search(r"throttled\s+(\d+)×", out)
    assert match, out
    assert int(match.group(1)) > 0


def test_diagnostics_reports_every_sdk_and_hook(tmp_path):
    result = _tokenrate("diagnostics", "--format", "json", env=dict(os.environ))
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    by_sdk = {sdk["sdk"]: sdk for sdk in report["sdks"]}
    assert set(by_sdk) == {"openai", "anthropic", "google-genai", "botocore", "groq", "cerebras-cloud-sdk", "together"}
    assert by_sdk["botocore"]["entry_point"] == "tokenrate_bedrock"
    for sdk in (s for s in by_sdk.values() if s["installed"]):
        assert sdk["supported"] is True
        assert sdk["entry_point_registered"] is True
        assert sdk["hooks"]
        assert set(sdk["hooks"].values()) == {"ok"}
    text = _tokenrate("diagnostics", env={**os.environ, "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "tokenrate_openai"})
    assert "disabled by OTEL_PYTHON_DISABLED_INSTRUMENTATIONS" in text.stdout


def test_help_for_every_command():
    for command in ("run", "top", "report", "diagnostics", "simulate", "demo"):
        result = subprocess.run(
            [sys.executable, "-m", "tokenrate", command, "--help"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (command, result.stderr)
        assert "usage: tokenrate " + command in result.stdout
    top = subprocess.run([sys.executable, "-m", "tokenrate", "--help"], capture_output=True, text=True, timeout=60)
    for command in ("run", "top", "report", "diagnostics", "simulate", "demo"):
        assert command in top.stdout


@needs_full_stack  # USD budgets need prices
def test_budget_spend_carries_over_between_runs_and_report_shows_both(sim, tmp_path):
    # One run: 4 gpt-4o-mini calls + 1 claude-haiku-4-5 call, priced by genai-prices; the budget holds 1.5 runs.
    import genai_prices

    sim.usage = UsagePlan(input=200_000, output=20_000)
    usage = genai_prices.Usage(input_tokens=200_000, output_tokens=20_000)
    per_run = float(
        4 * genai_prices.calc_price(usage, model_ref="gpt-4o-mini", provider_id="openai").total_price
        + genai_prices.calc_price(usage, model_ref="claude-haiku-4-5", provider_id="anthropic").total_price
    )
    limit = round(1.5 * per_run, 2)
    script = tmp_path / "app.py"
    script.write_text(APP)
    env = _env(sim, tmp_path, TOKENRATE_BUDGET_DAILY_USD=str(limit))

    first = _tokenrate("run", "--", "python", str(script), env=env)
    second = _tokenrate("run", "--", "python", str(script), env=env)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr

    def budget_line(summary: str) -> tuple[float, str]:
        match = re.search(rf"daily_usd: \$(\d+\.\d+) of \${limit:.2f} \(\d+%\) (\w+)", summary)
        assert match, summary
        return float(match.group(1)), match.group(2)

    spent_first, state_first = budget_line(first.stderr)
    spent_second, state_second = budget_line(second.stderr)
    assert spent_first == pytest.approx(per_run, abs=0.01)  # the summary shows cents
    # The second run started from the first run's spend (read from the ledger), then added its own.
    assert spent_second == pytest.approx(2 * per_run, abs=0.01)
    assert (state_first, state_second) == ("ok", "exceeded")
    assert "daily USD budget exceeded" in second.stderr  # the one WARNING through logging

    report = _tokenrate("report", "--ledger", str(tmp_path / "ledger.sqlite3"), "--format", "json", env=env)
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert data["total"]["calls"] == 10  # five calls per run, both runs

"""Every exporter/protocol combination the OTel docs show works under ``opentelemetry-instrument`` with the ``sdk``
extra, and ``tokenrate diagnostics`` flags one that is configured but not installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from minimal_install import clean_env, minimal_venv

from tokenrate.otel_config import check_exporters

BIN = Path(sys.executable).parent
FAILED_TO_START = ("Traceback", "Failed to auto initialize", "not found in entry point")

APP = """
import openai

client = openai.OpenAI()
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
print("app done")
"""

COMBINATIONS = [
    {"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console"},  # logs: the distro's otlp/gRPC
    {"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console", "OTEL_LOGS_EXPORTER": "console"},
    {},  # opentelemetry-distro's defaults: otlp over gRPC for all three signals
    {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
    {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
    {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "grpc"},
    {"OTEL_TRACES_EXPORTER": "otlp_proto_http", "OTEL_METRICS_EXPORTER": "otlp_proto_grpc"},
    {"OTEL_TRACES_EXPORTER": "console,otlp", "OTEL_METRICS_EXPORTER": "otlp", "OTEL_LOGS_EXPORTER": "none"},
]


def _ids(settings: dict[str, str]) -> str:
    return ",".join(f"{k.removeprefix('OTEL_')}={v}" for k, v in settings.items()) or "defaults"


def _env(sim, settings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OPENAI_BASE_URL=sim.openai_base_url,
        OPENAI_API_KEY="sk-test",
        TOKENRATE_LEDGER="off",
        # Nothing listens there: the OTLP exporters are built, and have nothing to send from a program that
        # records nothing.
        OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9",
        OTEL_EXPORTER_OTLP_TIMEOUT="1",
        OTEL_METRIC_EXPORT_INTERVAL="600000",
    )
    env.update(settings)
    return env


@pytest.mark.parametrize("settings", COMBINATIONS, ids=_ids)
def test_diagnostics_find_every_documented_combination_installed(settings):
    checks = check_exporters(settings)
    assert checks, "opentelemetry-distro is installed: every signal has an exporter"
    assert [c.problem for c in checks if c.problem] == []
    assert all(c.installed for c in checks)


@pytest.mark.parametrize("settings", [COMBINATIONS[0], COMBINATIONS[2], COMBINATIONS[5]], ids=_ids)
def test_opentelemetry_instrument_starts_with_the_sdk_extra(settings, sim, tmp_path):
    console = settings.get("OTEL_TRACES_EXPORTER") == "console"
    app = tmp_path / "app.py"
    app.write_text(APP if console else 'print("app done")\n')
    result = subprocess.run(
        [str(BIN / "opentelemetry-instrument"), sys.executable, str(app)],
        env=_env(sim, settings),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "app done" in result.stdout
    for sign in FAILED_TO_START:
        assert sign not in result.stderr, result.stderr
    if console:
        assert '"name": "chat gpt-4o-mini"' in result.stdout  # tokenrate's span
        assert "tokenrate.usage.tokens" in result.stdout  # and its metrics


def test_diagnostics_flags_an_unsupported_protocol():
    checks = check_exporters({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"})
    problems = [c for c in checks if c.problem]
    assert [c.signal for c in problems] == ["traces"]
    assert "'http/json'" in problems[0].problem


@pytest.mark.timeout(900)  # the first use builds the minimal venv
def test_diagnostics_flags_exporters_that_are_configured_but_not_installed():
    settings = {
        "OTEL_TRACES_EXPORTER": "otlp",  # gRPC by default
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "http/protobuf",
        "OTEL_LOGS_EXPORTER": "console",
    }
    tokenrate = str(minimal_venv() / "bin" / "tokenrate")
    result = subprocess.run(
        [tokenrate, "diagnostics", "--format", "json"], env=clean_env(**settings), capture_output=True, text=True
    )
    assert result.returncode == 1, result.stdout + result.stderr
    checks = json.loads(result.stdout)["opentelemetry"]["exporters"]
    found = {(c["signal"], c["entry_point"], c["installed"]) for c in checks}
    assert found == {
        ("traces", "otlp_proto_grpc", False),
        ("metrics", "otlp_proto_http", False),
        ("logs", "console", False),
    }
    assert all("tokenrate[sdk]" in c["problem"] for c in checks)
    text = subprocess.run([tokenrate, "diagnostics"], env=clean_env(**settings), capture_output=True, text=True)
    assert text.returncode == 1
    assert text.stdout.count("PROBLEM") == 3

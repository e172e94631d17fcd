"""What a new user gets from ``pip install "tokenrate[openai]"`` alone: no OTel SDK, no exporter package."""

from __future__ import annotations

import subprocess

import pytest
from minimal_install import clean_env, minimal_venv

from tokenrate.simulator import UsagePlan

pytestmark = pytest.mark.timeout(900)  # the first use builds the venv


@pytest.fixture(scope="module")
def venv():
    return minimal_venv()


def _run(venv, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]], env=env, capture_output=True, text=True, timeout=120
    )


def test_the_venv_has_no_otel_sdk_and_no_exporter(venv):
    probe = "import importlib.util as u; print(u.find_spec('opentelemetry.sdk'), u.find_spec('opentelemetry.exporter'))"
    result = _run(venv, "python", "-c", probe, env=clean_env())
    assert result.stdout.split() == ["None", "None"], result.stdout + result.stderr


@pytest.mark.parametrize("exporting", [False, True], ids=["no-endpoint", "endpoint-set"])
def test_tokenrate_run_runs_the_program_without_any_exporter(venv, tmp_path, exporting):
    env = clean_env(HOME=str(tmp_path))
    if exporting:  # the user asked for OTLP, but nothing can export it: the program still runs
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
    result = _run(venv, "tokenrate", "run", "--", "python", "-c", "print('hello')", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hello\n"
    assert "Traceback" not in result.stderr, result.stderr


def test_tokenrate_run_records_calls_without_the_otel_sdk(venv, tmp_path, sim):
    sim.usage = UsagePlan(input=40, output=8)
    app = tmp_path / "app.py"
    app.write_text(
        "import openai\n"
        "client = openai.OpenAI()\n"
        "client.chat.completions.create(model='gpt-4o-mini', messages=[{'role': 'user', 'content': 'hi'}])\n"
    )
    env = clean_env(
        HOME=str(tmp_path), OPENAI_BASE_URL=sim.openai_base_url, OPENAI_API_KEY="sk-test", TOKENRATE_LEDGER="off"
    )
    result = _run(venv, "tokenrate", "run", "--", "python", str(app), env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "input 40 + output 8" in result.stderr, result.stderr


def test_instrument_is_silent_about_sdks_that_are_not_installed(venv):
    result = _run(venv, "python", "-c", "import tokenrate; print(tokenrate.instrument())", env=clean_env())
    assert result.stdout.strip() == "['openai']"
    assert result.stderr == ""


def test_naming_a_missing_sdk_still_warns(venv):
    code = "import tokenrate; print(tokenrate.instrument(['openai', 'anthropic']))"
    result = _run(venv, "python", "-c", code, env=clean_env())
    assert result.stdout.strip() == "['openai']"
    assert "anthropic" in result.stderr
    assert "no installed version was found" in result.stderr

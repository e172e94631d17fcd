"""The CLI's small promises: plain lines off a terminal, one rule for empty runs, the shell's exit codes, report
ranges and help texts."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tokenrate.simulator import UsagePlan


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENRATE_"))}
    env.update(TOKENRATE_LEDGER="off", TOKENRATE_STATE_DIR=str(tmp_path / "state"), **extra)
    return env


def _tokenrate(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tokenrate", *args], env=env, capture_output=True, text=True, timeout=120
    )


# -- non-terminal output ---------------------------------------------------------------------------------------

SHORT_APP = """
import time
import openai

client = openai.OpenAI()
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
time.sleep(1.5)  # a few of tokenrate run's polls while the program still runs
"""


def test_run_status_prints_plain_lines_when_stderr_is_not_a_terminal(sim, tmp_path):
    sim.usage = UsagePlan(input=100, output=10)
    app = tmp_path / "app.py"
    app.write_text(SHORT_APP)
    env = _env(tmp_path, OPENAI_BASE_URL=sim.openai_base_url, OPENAI_API_KEY="sk-test")
    result = _tokenrate("run", "--status", "--interval", "0.2", "--", "python", str(app), env=env)
    assert result.returncode == 0, result.stderr
    status = [line for line in result.stderr.splitlines() if line.startswith("[tokenrate] TPM ")]
    assert status, result.stderr  # the first one as soon as a call was recorded, however short the program
    assert "\r" not in result.stderr  # no terminal redraws in a log


PUBLISHER = textwrap.dedent(
    """
    import sys, time
    from tokenrate.view import get_view, start_publishing

    get_view()
    start_publishing(sys.argv[1], interval_s=0.2)
    print("publishing", flush=True)
    time.sleep(120)
    """
)


def test_top_prints_plain_lines_while_it_runs_when_stdout_is_not_a_terminal(tmp_path, spawn):
    directory = tmp_path / "state"
    script = tmp_path / "publisher_app.py"
    script.write_text(PUBLISHER)
    child = subprocess.Popen([sys.executable, str(script), str(directory)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "publishing"
        top = spawn(
            [sys.executable, "-m", "tokenrate", "top", "--dir", str(directory), "--interval", "0.2"], _env(tmp_path)
        )
        line = top.wait_for(lambda text: f" {child.pid} publisher_app.py: TPM " in text)  # while running
        assert line.startswith("[")
        top.proc.send_signal(signal.SIGINT)
        code, out = top.finish()
        assert code == 0, out
        assert "Traceback" not in out
    finally:
        child.kill()
        child.wait()


# -- empty runs and exit codes ------------------------------------------------------------------------------------


def test_every_empty_run_prints_the_same_one_line(tmp_path):
    env = _env(tmp_path)
    no_script = _tokenrate("run", "--", "python", str(tmp_path / "nosuchscript.py"), env=env)
    no_calls = _tokenrate("run", "--", "python", "-c", "import openai", env=env)
    assert no_script.returncode == 2  # python's own code for a missing script, passed through
    assert no_calls.returncode == 0
    tail = [line for line in no_calls.stderr.splitlines() if line.startswith("[tokenrate]")]
    assert len(tail) == 1, no_calls.stderr
    assert "no instrumented LLM calls were made" in tail[0]
    assert tail[0] in no_script.stderr.splitlines()
    for result in (no_script, no_calls):
        assert "session summary" not in result.stderr


def test_a_program_that_cannot_be_executed_exits_126_and_a_missing_one_127(tmp_path):
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    env = _env(tmp_path)
    not_executable = _tokenrate("run", "--", str(script), env=env)
    assert not_executable.returncode == 126, not_executable.stderr
    assert "Permission denied" in not_executable.stderr
    missing = _tokenrate("run", "--", str(tmp_path / "no-such-program"), env=env)
    assert missing.returncode == 127, missing.stderr


# -- report -------------------------------------------------------------------------------------------------------


def test_an_inverted_report_range_is_refused_with_exit_2(tmp_path):
    result = _tokenrate("report", "--since", "yesterday", "--until", "2020-01-01", env=_env(tmp_path))
    assert result.returncode == 2
    assert "range is empty" in result.stderr
    assert "--since yesterday" in result.stderr


def test_report_help_lists_yesterday_and_names_the_default_ledger(tmp_path):
    home = tmp_path / "home"
    env = _env(tmp_path, HOME=str(home), COLUMNS="200")
    env.pop("XDG_DATA_HOME", None)
    result = _tokenrate("report", "--help", env=env)
    assert result.returncode == 0
    since = next(line for line in result.stdout.splitlines() if line.strip().startswith("--since"))
    assert "'yesterday'" in since
    assert "~/.local/share/tokenrate/ledger.sqlite3" in result.stdout


def test_off_a_terminal_the_first_status_line_is_written_at_once():
    from tokenrate.cli.run import _StatusWriter

    class Log(io.StringIO):
        def isatty(self) -> bool:
            return False

    log = Log()
    writer = _StatusWriter(log, interval=1.0)
    writer.show(None)  # nothing recorded yet: nothing to say
    assert log.getvalue() == ""
    writer.show("TPM 120 · RPM 1")
    writer.show("TPM 240 · RPM 2")  # within the plain period: not repeated
    assert log.getvalue() == "[tokenrate] TPM 120 · RPM 1\n"


def test_numeric_options_are_range_checked_like_the_variables(tmp_path):
    env = _env(tmp_path)
    for args in (
        ("run", "--interval", "inf", "--", "true"),
        ("run", "--interval", "0", "--", "true"),
        ("top", "--interval", "nan", "--once"),
        ("top", "--stale", "-1", "--once"),
        ("demo", "--duration", "1e308"),
        ("demo", "--workers", "0"),
        ("demo", "--overload-rate", "2"),
    ):
        result = _tokenrate(*args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert f"argument {args[1]}: '{args[2]}' is not a" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr

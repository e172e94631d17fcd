"""Ctrl-C as a user presses it: a real SIGINT to ``tokenrate demo`` and to the program under ``tokenrate run``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

from tokenrate.simulator import Step

EXIT_INTERRUPTED = 130


def _demo_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return {**env, "TOKENRATE_LEDGER": "off", **extra}


def test_first_ctrl_c_stops_the_demo_at_once_with_the_summary_and_exit_130(tmp_path, spawn):
    env = _demo_env(TOKENRATE_STATE_DIR=str(tmp_path / "state"))
    demo = spawn([sys.executable, "-m", "tokenrate", "demo", "--plain", "--duration", "300"], env)
    demo.wait_for(lambda line: line.startswith("["))  # the first status line: the workload is running
    # While it runs, `tokenrate top` sees it (the demo publishes its view).
    top = subprocess.run(
        [sys.executable, "-m", "tokenrate", "top", "--once"], env=env, capture_output=True, text=True, timeout=60
    )
    row = next((line for line in top.stdout.splitlines() if line.split()[:1] == [str(demo.proc.pid)]), None)
    assert row is not None, top.stdout
    assert "tokenrate" in row
    demo.proc.send_signal(signal.SIGINT)
    code, out = demo.finish()
    assert code == EXIT_INTERRUPTED, out
    assert "Traceback" not in out
    assert "tokenrate session summary" in out
    assert re.search(r"requests\s+\d+", out)


def test_a_second_ctrl_c_quits_now_without_a_traceback(spawn):
    # An unreachable collector: the final OTLP flush retries for a while, which a second Ctrl-C cuts short.
    env = _demo_env(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")
    demo = spawn([sys.executable, "-m", "tokenrate", "demo", "--plain", "--duration", "300"], env)
    demo.wait_for(lambda line: line.startswith("["))
    demo.proc.send_signal(signal.SIGINT)
    demo.wait_for(lambda line: line.startswith("sending the last telemetry"))
    demo.proc.send_signal(signal.SIGINT)
    code, out = demo.finish()
    assert code == EXIT_INTERRUPTED, out
    assert "Traceback" not in out
    assert "tokenrate session summary" in out
    after_second = out.split("sending the last telemetry", 1)[1]
    assert "Failed to export" not in after_second  # the final flush's retries were not waited out


APP = """
import openai

client = openai.OpenAI()
print("calling", flush=True)
client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
"""


def test_ctrl_c_under_tokenrate_run_is_a_cancelled_call_not_an_error(sim, tmp_path, spawn):
    sim.script(Step.delay(60))
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(
        OPENAI_BASE_URL=sim.openai_base_url,
        OPENAI_API_KEY="sk-test",
        TOKENRATE_LEDGER=str(tmp_path / "ledger.sqlite3"),
        TOKENRATE_STATE_DIR=str(tmp_path / "state"),
    )
    run = spawn([sys.executable, "-m", "tokenrate", "run", "--", "python", str(app)], env, start_new_session=True)
    run.wait_for(lambda line: line.startswith("calling"))
    assert sim.wait_for_served(1, timeout=60, finished=False)  # the request reached the provider: in flight
    os.killpg(run.proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    code, out = run.finish()
    assert code == EXIT_INTERRUPTED, out
    assert re.search(r"requests\s+1 \(1 attempt, 1 cancelled\)", out), out
    assert re.search(r"^  errors\s+0$", out, re.MULTILINE), out
    assert "without usage, e.g. cancelled" in out
    assert "without a price" not in out

    report = subprocess.run(
        [sys.executable, "-m", "tokenrate", "report", "--ledger", str(tmp_path / "ledger.sqlite3")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert report.returncode == 0, report.stderr
    assert "reported no usage (e.g. cancelled)" in report.stdout
    assert "TOKENRATE_PRICES" not in report.stdout  # gpt-4o-mini has a price: no advice to add one
    assert "1 call(s) were cancelled by the user (not errors)" in report.stdout

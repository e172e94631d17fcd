"""Publishing snapshots for ``tokenrate top``: files, cleanup, a real child process, and ``top --once``."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tokenrate.view import (
    Snapshot,
    default_state_dir,
    maybe_start_publishing_from_env,
    read_published,
    start_publishing,
    stop_publishing,
)
from tokenrate.view.publish import _pid_namespace

TIMEOUT_S = 30.0


def wait_for(predicate, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def write_published(directory: Path, pid: int, *, age_s: float = 0.0, **fields: object) -> Path:
    now = time.time()
    payload = {
        "format": 1,
        "pid": pid,
        "program": "prog.py",
        "service": None,
        "host": socket.gethostname(),
        "pid_ns": _pid_namespace(),
        "interval_s": 1.0,
        "published_at": now - age_s,
        "snapshot": Snapshot(requests=pid % 7).to_dict(),
        **fields,
    }
    path = directory / f"{pid}.json"
    path.write_text(json.dumps(payload))
    os.utime(path, (now - age_s, now - age_s))
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_state_dir_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("TOKENRATE_STATE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    assert default_state_dir() == tmp_path / "explicit"
    monkeypatch.delenv("TOKENRATE_STATE_DIR")
    assert default_state_dir() == tmp_path / "run" / "tokenrate"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    assert default_state_dir() == tmp_path / f"tokenrate-{os.getuid()}"


def test_publishing_in_process_writes_and_removes_a_private_file(tmp_path: Path):
    directory = tmp_path / "state"
    path = start_publishing(directory, interval_s=0.05)
    try:
        assert path == directory / f"{os.getpid()}.json"
        assert start_publishing(directory, interval_s=0.05) == path  # idempotent
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        mine = wait_for(lambda: [p for p in read_published(directory) if p.pid == os.getpid()], "own file")
        assert mine[0].path == str(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        stop_publishing()
    assert not path.exists()
    assert read_published(directory) == []


def test_publishing_from_env_is_opt_in(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TOKENRATE_PUBLISH", raising=False)
    assert maybe_start_publishing_from_env() is None
    monkeypatch.setenv("TOKENRATE_PUBLISH", "0")
    assert maybe_start_publishing_from_env() is None


def test_reader_drops_and_removes_dead_stale_and_leftover_files(tmp_path: Path):
    dead = write_published(tmp_path, dead_pid())
    stale = write_published(tmp_path, os.getpid(), age_s=30.0)
    live = write_published(tmp_path, os.getppid())
    elsewhere = write_published(tmp_path, dead_pid(), host="another-host")  # pid not checkable: kept while fresh
    old_tmp = tmp_path / ".4242.abc.tmp"
    old_tmp.write_text("{")
    os.utime(old_tmp, (time.time() - 120, time.time() - 120))
    new_tmp = tmp_path / ".4243.abc.tmp"
    new_tmp.write_text("{")
    garbage_old = tmp_path / "77.json"
    garbage_old.write_text("not json")
    os.utime(garbage_old, (time.time() - 120, time.time() - 120))

    found = read_published(tmp_path)
    assert sorted(p.path for p in found) == sorted([str(live), str(elsewhere)])
    assert next(p for p in found if p.path == str(live)).snapshot.requests == os.getppid() % 7
    for removed in (dead, stale, old_tmp, garbage_old):
        assert not removed.exists(), removed
    for kept in (live, elsewhere, new_tmp):
        assert kept.exists(), kept


def test_slow_publishers_are_not_stale_too_early(tmp_path: Path):
    slow = write_published(tmp_path, os.getppid(), age_s=20.0, interval_s=10.0)  # 3 intervals = 30 s
    assert [p.path for p in read_published(tmp_path, stale_after_s=5.0)] == [str(slow)]


CHILD = textwrap.dedent(
    """
    import dataclasses, sys, time
    from tokenrate.pipeline import Pipeline, add_enricher
    from tokenrate.recording import ActiveCall
    from tokenrate.records import CallInfo, RateLimits, RateLimitWindow, TokenUsage
    from tokenrate.view import get_view, start_publishing

    get_view()
    add_enricher(lambda record: dataclasses.replace(record, cost_usd=0.125))
    pipeline = Pipeline(None)
    for i in range(3):
        call = ActiveCall(pipeline, CallInfo("openai", "chat", "gpt-4o-mini"))
        if i == 0:
            call.add_retry(status_code=429, error_kind=None, wait_s=0.5)
        call.usage = TokenUsage(input=1000, output=234)
        call.rate_limits = RateLimits((RateLimitWindow("tokens", 10000, 2500, 3600.0),))
        call.status_code = 200
        call.finish()
    start_publishing(sys.argv[1], interval_s=0.1)
    print("publishing", flush=True)
    time.sleep(600)
    """
)


def run_top(directory: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "tokenrate", "top", "--once", "--dir", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_child_process_publishes_top_shows_it_and_it_disappears_when_killed(tmp_path: Path):
    directory = tmp_path / "state"
    script = tmp_path / "agent_prog.py"
    script.write_text(CHILD)
    env = {**os.environ, "OTEL_SERVICE_NAME": "agent-svc"}
    child = subprocess.Popen(
        [sys.executable, str(script), str(directory), "--api-key=sk-SECRET-VALUE"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The 0.5 s throttle wait began when it was recorded: wall-clock time counts it once it has elapsed.
        found = wait_for(
            lambda: [p for p in read_published(directory) if p.pid == child.pid and p.snapshot.throttle.wall_s == 0.5],
            "child's file, after its throttle wait",
        )
        proc = found[0]
        assert (proc.program, proc.service, proc.host) == ("agent_prog.py", "agent-svc", socket.gethostname())
        snap = proc.snapshot
        assert (snap.requests, snap.attempts, snap.tokens.input, snap.tokens.output) == (3, 4, 3000, 702)
        assert (snap.throttle.events, snap.throttle.wait_s, snap.cost_usd) == (1, 0.5, 0.375)
        assert snap.limit_used_max == 0.75
        assert [(m.provider, m.model, m.requests) for m in snap.models] == [("openai", "gpt-4o-mini", 3)]
        assert "SECRET" not in Path(proc.path).read_text()

        out = run_top(directory)
        row = next(line for line in out.splitlines() if str(child.pid) in line)
        for text in ("agent_prog.py (agent-svc)", "3.7k", "$0.38", "1× 0.5 s", "75% used"):
            assert text in row, (text, row)
        model_row = next(line for line in out.splitlines() if "openai/gpt-4o-mini" in line)
        assert "3.7k" in model_row
        assert "$0.38" in model_row
    finally:
        child.kill()
        child.wait(timeout=30)
        child.stdout.close()  # type: ignore[union-attr]
        child.stderr.close()  # type: ignore[union-attr]

    assert [p for p in read_published(directory) if p.pid == child.pid] == []
    assert not (directory / f"{child.pid}.json").exists()
    assert "no instrumented processes are publishing" in run_top(directory)


def test_top_once_on_an_empty_directory(tmp_path: Path):
    out = run_top(tmp_path / "nothing-here")
    assert out.strip() == (
        "no instrumented processes are publishing (run your program with `tokenrate run` or TOKENRATE_PUBLISH=1)"
    )


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["/srv/agents/agent.py", "--api-key=sk-123"], "agent.py"),
        (["/venv/lib/python3.11/site-packages/mypkg/__main__.py", "token"], "mypkg"),
        (["-c", "secret"], f"{Path(sys.executable).name} -c"),
        ([], Path(sys.executable).name),
    ],
)
def test_program_name_never_includes_arguments(monkeypatch: pytest.MonkeyPatch, argv: list[str], name: str):
    from tokenrate.view.publish import _program_name

    monkeypatch.setattr(sys, "argv", argv)
    assert _program_name() == name

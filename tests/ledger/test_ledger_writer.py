"""The ledger writer: rows, batching off the call path, several processes, crashes and failures."""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from ledger_helpers import T0, make_record, rows

from tokenrate.ledger import (
    SCHEMA_VERSION,
    Ledger,
    configure_ledger,
    default_ledger_path,
    get_ledger,
    ledger_path_from_env,
)
from tokenrate.ledger.schema import MIGRATIONS, LedgerTooNewError, connect, migrate
from tokenrate.pipeline import local_sinks

SRC = str(Path(__file__).resolve().parents[2] / "src")


def wait_until(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def ledger(tmp_path):
    led = Ledger(tmp_path / "ledger.sqlite3", register_atexit=False)
    yield led
    led.close()


def test_one_row_per_call_with_every_field_and_unknowns_as_null(ledger):
    known = make_record(
        ts=T0,
        provider="anthropic",
        model="claude-sonnet-4",
        response_model="claude-sonnet-4-20250514",
        input=1_000,
        output=200,
        cache_read=300,
        cache_write=100,
        reasoning=50,
        tool_use=10,
        cost=0.0123,
        throttled_waits=(1.5, 2.0),
        stream=True,
    )
    unknown = make_record(
        ts=T0 + 1, model="mystery", input=None, output=7, cost=None, error_type="APITimeoutError", status_code=None
    )
    ledger.call_ended(None, known)
    ledger.call_ended(None, unknown)
    assert ledger.flush()

    first, second = rows(ledger.path)
    assert first["ts"] == T0
    assert first["provider"] == "anthropic"
    assert first["request_model"] == "claude-sonnet-4"
    assert first["response_model"] == "claude-sonnet-4-20250514"
    assert first["operation"] == "chat"
    assert (first["input_tokens"], first["output_tokens"]) == (1_000, 200)
    assert (first["cache_read_tokens"], first["cache_write_tokens"]) == (300, 100)
    assert (first["reasoning_tokens"], first["tool_use_tokens"]) == (50, 10)
    assert first["cost_usd"] == pytest.approx(0.0123)
    assert first["throttle_events"] == 2
    assert first["throttle_wait_s"] == pytest.approx(3.5)
    assert first["retries"] == 2
    assert first["stream"] == 1
    assert first["duration_s"] == pytest.approx(0.5)
    assert first["pid"] == os.getpid()
    assert first["session"] == ledger.session
    assert len(ledger.session) == 16
    assert first["error_type"] is None
    # Unknown is NULL, never 0.
    assert second["input_tokens"] is None
    assert second["cache_read_tokens"] is None
    assert second["output_tokens"] == 7
    assert second["cost_usd"] is None
    assert second["error_type"] == "APITimeoutError"
    assert second["status_code"] is None
    assert ledger.stats()["written"] == 2


def test_schema_has_no_content_columns(ledger):
    ledger.call_ended(None, make_record())
    assert ledger.flush()
    conn = sqlite3.connect(str(ledger.path))
    columns = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
    conn.close()
    for forbidden in ("prompt", "content", "completion", "message", "text", "input", "output"):
        assert forbidden not in columns


def test_wal_mode_and_schema_version(ledger):
    ledger.call_ended(None, make_record())
    assert ledger.flush()
    conn = sqlite3.connect(str(ledger.path))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    conn.close()


def test_batches_and_flush_write_everything_queued(tmp_path):
    led = Ledger(tmp_path / "l.sqlite3", batch_rows=50, interval_s=60.0, register_atexit=False)
    try:
        for i in range(1_234):
            led.call_ended(None, make_record(ts=T0 + i))
        assert led.flush()
        assert rows(led.path, "SELECT COUNT(*) AS n FROM calls")[0]["n"] == 1_234
        assert led.stats()["dropped"] == 0
        # Without a flush, a partial batch is written after interval_s (60 s here: not yet)...
        led.call_ended(None, make_record())
        assert rows(led.path, "SELECT COUNT(*) AS n FROM calls")[0]["n"] == 1_234
        assert led.flush()
        assert rows(led.path, "SELECT COUNT(*) AS n FROM calls")[0]["n"] == 1_235
    finally:
        led.close()


def test_a_partial_batch_is_written_after_the_interval(tmp_path):
    led = Ledger(tmp_path / "l.sqlite3", batch_rows=1_000, interval_s=0.05, register_atexit=False)
    try:
        led.call_ended(None, make_record())
        wait_until(lambda: led.stats()["written"] == 1, what="the interval write")
        assert rows(led.path, "SELECT COUNT(*) AS n FROM calls")[0]["n"] == 1
    finally:
        led.close()


_io_watch = threading.local()
_IO_EVENT_PREFIXES = ("open", "os.", "sqlite3.", "shutil.", "socket.")


def _audit(event: str, args: object) -> None:
    if getattr(_io_watch, "events", None) is not None and event.startswith(_IO_EVENT_PREFIXES):
        _io_watch.events.append(event)


sys.addaudithook(_audit)


def test_call_ended_does_no_disk_io_on_the_calling_thread(tmp_path):
    """Python's audit hooks see every open() and sqlite3.connect(): none may happen on the call path."""
    led = Ledger(tmp_path / "l.sqlite3", batch_rows=5, interval_s=0.01, register_atexit=False)
    try:
        _io_watch.events = []
        try:
            for i in range(50):  # several batches: the writer thread starts and works meanwhile
                led.call_ended(None, make_record(ts=T0 + i))
        finally:
            seen, _io_watch.events = _io_watch.events, None
        assert seen == []
        assert led.flush()
        assert led.stats()["written"] == 50
        # The hook does see I/O when there is some (so the check above can fail).
        _io_watch.events = []
        try:
            rows(led.path, "SELECT 1")
        finally:
            seen, _io_watch.events = _io_watch.events, None
        assert "sqlite3.connect" in seen
    finally:
        led.close()


WRITER_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, {tests!r})
    from ledger_helpers import make_record
    from tokenrate.ledger import Ledger

    path, n, tag, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    led = Ledger(path, batch_rows=7, interval_s=0.001)
    open(go + "-ready-" + tag, "w").close()
    while not os.path.exists(go):
        time.sleep(0.005)
    for i in range(n):
        led.call_ended(None, make_record(ts=1_772_359_200.0 + i, model=f"{{tag}}-{{i}}"))
        if i % 50 == 0:
            time.sleep(0.001)  # let the other process in
    assert led.flush(60)
    print("STATS", led.stats())
    """
)


def test_two_processes_writing_at_once_lose_no_row(tmp_path):
    path = tmp_path / "shared.sqlite3"
    go = tmp_path / "go"
    script = tmp_path / "writer.py"
    script.write_text(WRITER_SCRIPT.format(tests=str(Path(__file__).parent)), encoding="utf-8")
    n = 1_500
    env = {**os.environ, "PYTHONPATH": SRC}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(path), str(n), tag, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for tag in ("a", "b", "c")
    ]
    # Start writing together once all three are up (none has touched the file yet: the first write creates it).
    wait_until(lambda: all(Path(f"{go}-ready-{tag}").exists() for tag in "abc"), timeout=60, what="writers")
    assert not path.exists()
    go.touch()
    outputs = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "'dropped': 0" in out, out + err

    for tag in ("a", "b", "c"):
        got = rows(path, "SELECT request_model FROM calls WHERE request_model LIKE ?", (f"{tag}-%",))
        assert sorted(r["request_model"] for r in got) == sorted(f"{tag}-{i}" for i in range(n))
    assert rows(path, "SELECT COUNT(*) AS n FROM calls")[0]["n"] == 3 * n
    sessions = rows(path, "SELECT session, COUNT(*) AS n, COUNT(DISTINCT pid) AS pids FROM calls GROUP BY session")
    assert [(s["n"], s["pids"]) for s in sessions] == [(n, 1)] * 3


CRASH_SCRIPT = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from ledger_helpers import make_record
    from tokenrate.ledger import Ledger

    led = Ledger(sys.argv[1], batch_rows=25, interval_s=0.001)
    i = 0
    while True:
        for _ in range(40):
            led.call_ended(None, make_record(model=f"m{{i}}"))
            i += 1
        assert led.flush(30)
        print("COMMITTED", i, flush=True)
    """
)


def test_a_process_killed_mid_run_leaves_a_sound_ledger_with_every_committed_row(tmp_path):
    path = tmp_path / "crash.sqlite3"
    script = tmp_path / "crash.py"
    script.write_text(CRASH_SCRIPT.format(tests=str(Path(__file__).parent)), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
    )
    committed = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("COMMITTED"):
                committed = int(line.split()[1])
                if committed >= 2_000:
                    break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert committed >= 2_000

    conn = sqlite3.connect(str(path))
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        present = {r[0] for r in conn.execute("SELECT request_model FROM calls")}
        count = conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    finally:
        conn.close()
    assert {f"m{i}" for i in range(committed)} <= present
    assert count == len(present)  # no row twice
    assert count >= committed


def test_an_unusable_location_is_one_warning_and_the_app_carries_on(tmp_path, caplog):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("I am a file", encoding="utf-8")
    led = Ledger(blocker / "ledger.sqlite3", batch_rows=2, interval_s=0.01, register_atexit=False)
    caplog.set_level(logging.WARNING, logger="tokenrate")
    try:
        for i in range(20):
            led.call_ended(None, make_record(ts=T0 + i))  # never raises
        led.flush(10)
        for i in range(5):
            led.call_ended(None, make_record(ts=T0 + i))
        led.flush(10)
        stats = led.stats()
    finally:
        led.close()
    warnings = [r for r in caplog.records if "ledger" in r.getMessage()]
    assert len(warnings) == 1
    assert str(blocker) in warnings[0].getMessage()
    assert "Your program is unaffected" in warnings[0].getMessage()
    assert stats["broken"] is not None
    assert stats["written"] == 0
    assert stats["dropped"] == 25


def read_only_directory(tmp_path: Path) -> Path:
    """A directory where this process cannot create a file, root included (CI runs as root)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        return ro
    # Root ignores permission bits; procfs refuses new files to everyone.
    procfs = Path("/proc/self/fdinfo")
    if not procfs.is_dir():
        pytest.skip("running as root without procfs: no directory refuses root")
    return procfs


def test_a_read_only_directory_is_one_warning(tmp_path, caplog):
    ro = read_only_directory(tmp_path)
    led = Ledger(ro / "ledger.sqlite3", batch_rows=1, register_atexit=False)
    caplog.set_level(logging.WARNING, logger="tokenrate")
    try:
        for _ in range(3):
            led.call_ended(None, make_record())
            led.flush(10)
    finally:
        led.close()
        if ro.is_relative_to(tmp_path):
            ro.chmod(0o755)
    assert len([r for r in caplog.records if "ledger" in r.getMessage()]) == 1
    assert led.stats()["dropped"] == 3


def test_a_file_that_is_not_a_database_is_one_warning(tmp_path, caplog):
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"this is not sqlite" * 200)
    led = Ledger(path, batch_rows=1, register_atexit=False)
    caplog.set_level(logging.WARNING, logger="tokenrate")
    try:
        for _ in range(3):
            led.call_ended(None, make_record())
            led.flush(10)
    finally:
        led.close()
    warnings = [r for r in caplog.records if "ledger" in r.getMessage()]
    assert len(warnings) == 1
    assert "not a database" in warnings[0].getMessage()
    assert path.read_bytes().startswith(b"this is not sqlite")  # left alone


def test_a_locked_file_delays_rows_and_a_full_queue_drops_and_counts_them(tmp_path, caplog):
    path = tmp_path / "locked.sqlite3"
    led = Ledger(path, queue_max=5, batch_rows=1, interval_s=0.001, busy_timeout_s=0.05, register_atexit=False)
    caplog.set_level(logging.WARNING, logger="tokenrate")
    try:
        led.call_ended(None, make_record(model="before"))
        assert led.flush()
        holder = connect(path)
        holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            led.call_ended(None, make_record(model="in-flight"))
            wait_until(lambda: led.stats()["queued"] == 0, what="the writer to take the row")
            for i in range(20):
                led.call_ended(None, make_record(model=f"late-{i}"))  # 5 fit, 15 are dropped
            assert led.stats()["dropped"] == 15
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert led.flush(30)
        stats = led.stats()
    finally:
        led.close()
    models = [r["request_model"] for r in rows(path)]
    assert models[:2] == ["before", "in-flight"]
    assert sorted(models[2:]) == sorted(f"late-{i}" for i in range(5))
    assert stats["dropped"] == 15
    overflow = [r for r in caplog.records if "queue is full" in r.getMessage()]
    assert len(overflow) == 1


def test_migrations_are_applied_once_and_a_newer_ledger_is_refused(tmp_path, caplog):
    path = tmp_path / "m.sqlite3"
    conn = connect(path)
    assert migrate(conn) == 0
    assert migrate(conn) == SCHEMA_VERSION  # already current: nothing to do
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(LedgerTooNewError):
        migrate(conn)
    conn.close()

    led = Ledger(path, batch_rows=1, register_atexit=False)
    caplog.set_level(logging.WARNING, logger="tokenrate")
    try:
        led.call_ended(None, make_record())
        led.flush(10)
    finally:
        led.close()
    warnings = [r for r in caplog.records if "ledger" in r.getMessage()]
    assert len(warnings) == 1
    assert "newer than this tokenrate" in warnings[0].getMessage()


def test_default_path_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_ledger_path() == tmp_path / "xdg" / "tokenrate" / "ledger.sqlite3"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_ledger_path() == tmp_path / "home" / ".local" / "share" / "tokenrate" / "ledger.sqlite3"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")  # the XDG spec: relative paths are invalid
    assert default_ledger_path() == tmp_path / "home" / ".local" / "share" / "tokenrate" / "ledger.sqlite3"


def test_configure_ledger_registers_one_local_sink(monkeypatch, tmp_path):
    monkeypatch.setenv("TOKENRATE_LEDGER", str(tmp_path / "env.sqlite3"))
    assert ledger_path_from_env() == tmp_path / "env.sqlite3"
    try:
        first = configure_ledger(ledger_path_from_env())
        again = configure_ledger(ledger_path_from_env())
        assert first is again is get_ledger()
        assert [s for s in local_sinks() if isinstance(s, Ledger)] == [first]
    finally:
        configure_ledger(None)
    assert get_ledger() is None
    assert not [s for s in local_sinks() if isinstance(s, Ledger)]
    monkeypatch.setenv("TOKENRATE_LEDGER", "off")
    assert ledger_path_from_env() is None

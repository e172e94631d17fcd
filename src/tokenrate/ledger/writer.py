"""The ledger writer: a local sink that appends one row per call to SQLite, off the call path.

``call_ended`` only builds a tuple and appends it to a bounded in-memory queue (no disk I/O, no blocking on
SQLite). A daemon thread takes the queue every `interval_s` (or as soon as `batch_rows` are waiting) and
writes it in one transaction. Rows are flushed at exit (``atexit``) and on `Ledger.flush`.

Failure policy: the app never sees a ledger error. A path that cannot be opened (read-only directory,
permissions), a full disk, a lock held too long: ONE warning per ledger, later failures at DEBUG. Rows that
cannot be written are dropped and counted (`Ledger.stats`); so are rows that arrive while the queue is full.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sqlite3
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokenrate._safety import warn_once
from tokenrate.ledger.rows import RowBuilder
from tokenrate.ledger.schema import INSERT_CALL, connect, migrate

if TYPE_CHECKING:
    from tokenrate.recording import ActiveCall
    from tokenrate.records import CallRecord, RetryRecord
    from tokenrate.view.snapshot import LedgerStatus

Row = tuple[Any, ...]

logger = logging.getLogger("tokenrate.ledger")

_LOCK_RETRIES = 6
"""Attempts per batch when another process holds the write lock longer than the busy timeout."""


class Ledger:
    """Process-side handle on one ledger file; a `tokenrate.pipeline.Sink`."""

    def __init__(
        self,
        path: str | Path,
        *,
        queue_max: int = 10_000,
        batch_rows: int = 200,
        interval_s: float = 0.5,
        busy_timeout_s: float = 5.0,
        register_atexit: bool = True,
    ) -> None:
        self.path = Path(path).expanduser()
        self.queue_max = queue_max
        self.batch_rows = batch_rows
        self.interval_s = interval_s
        self.busy_timeout_s = busy_timeout_s
        self.process = _process_name()
        self.service = os.environ.get("OTEL_SERVICE_NAME") or None
        self._new_process_state()
        _LIVE.add(self)
        if register_atexit:
            _AT_EXIT.add(self)

    def _new_process_state(self) -> None:
        """Fresh state for this process (also after fork: the parent writes its own queued rows)."""
        self.session = uuid.uuid4().hex[:16]
        self.pid = os.getpid()
        self._builder = RowBuilder(self.session, self.pid, self.process, self.service)
        self._cond = threading.Condition(threading.Lock())
        self._rows: list[CallRecord] = []
        """Calls waiting to be written (rows are built from them on the writer thread)."""
        self._thread: threading.Thread | None = None
        self._flush_requested = 0
        self._flush_done = 0
        self._closed = False
        self._broken: str | None = None
        self.written = 0
        self.dropped = 0
        self.dropped_invalid = 0
        """Calls dropped because their row could not be built or stored (also counted in ``dropped``)."""
        self.invalid_values = 0
        """Values stored as unknown because they were out of range (the rest of their rows was kept)."""
        self.failed_batches = 0
        self.last_problem: str | None = None

    # -- the Sink protocol (call path: no I/O) -------------------------------------------------------------

    def call_started(self, call: ActiveCall) -> None:
        return None

    def retry(self, token: Any, retry: RetryRecord) -> None:
        return None

    def call_ended(self, token: Any, record: CallRecord) -> None:
        self.append(record)

    def append(self, record: CallRecord) -> None:
        """Queue one call (its row is built on the writer thread); drops and counts it when the queue is full."""
        with self._cond:
            if self._closed or self._broken is not None:
                self.dropped += 1
                return
            if len(self._rows) >= self.queue_max:
                self.dropped += 1
                full = True
            else:
                self._rows.append(record)
                full = False
                if len(self._rows) == 1 or len(self._rows) >= self.batch_rows:
                    self._cond.notify_all()
                if self._thread is None:
                    self._start_thread()
        if full:
            warn_once(
                f"ledger:{self.path}:overflow",
                "tokenrate: the ledger queue is full (%d rows waiting for %s); calls are being dropped from the "
                "ledger (they still reach telemetry). Is the disk very slow or the file locked?",
                self.queue_max,
                self.path,
            )

    # -- flushing --------------------------------------------------------------------------------------------

    def flush(self, timeout_s: float | None = 10.0) -> bool:
        """Write every row queued before this call; True when done within ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                return not self._rows
            self._flush_requested += 1
            ticket = self._flush_requested
            self._cond.notify_all()
            while self._flush_done < ticket:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Flush and stop the writer (called at exit). Later rows are dropped."""
        if self.pid != os.getpid():
            return
        self.flush(timeout_s)
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)

    def status(self) -> LedgerStatus:
        """The figures the session summary shows (written, dropped, values stored as unknown)."""
        from tokenrate.view.snapshot import LedgerStatus

        with self._cond:
            return LedgerStatus(
                path=str(self.path),
                written=self.written,
                dropped=self.dropped,
                invalid_values=self.invalid_values,
                last_problem=self.last_problem,
            )

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "path": str(self.path),
                "queued": len(self._rows),
                "written": self.written,
                "dropped": self.dropped,
                "dropped_invalid": self.dropped_invalid,
                "invalid_values": self.invalid_values,
                "failed_batches": self.failed_batches,
                "broken": self._broken,
                "last_problem": self.last_problem,
            }

    # -- the writer thread ------------------------------------------------------------------------------------

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._run, name="tokenrate-ledger", daemon=True)
        self._thread = thread
        thread.start()

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                batch, ticket, closing = self._take()
                requeued = False
                if batch:
                    try:
                        if conn is None:
                            conn = self._open()
                        if conn is not None:
                            requeued = self._write(conn, batch, closing=closing)
                        else:
                            requeued = self._not_written(batch, closing=closing)
                    except Exception as exc:  # a bug: this batch is lost and counted, the writer carries on
                        self._drop_invalid(len(batch), f"{type(exc).__name__}: {exc}")
                        logger.debug("tokenrate: ledger batch failed at %s", self.path, exc_info=exc)
                with self._cond:
                    if not requeued:  # a flush waits until its rows are written (or given up for good)
                        self._flush_done = max(self._flush_done, ticket)
                    self._cond.notify_all()
                    if closing and not self._rows:
                        return
        except Exception as exc:  # a bug here must not kill silently or touch the app
            self._fail("the ledger writer stopped", exc, permanent=True)
            with self._cond:
                self._flush_done = self._flush_requested
                self._cond.notify_all()
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()

    def _take(self) -> tuple[list[CallRecord], int, bool]:
        """Wait for a batch: `batch_rows` rows, `interval_s` after the first, a flush, or close."""
        with self._cond:
            deadline: float | None = None
            while True:
                if self._closed or self._flush_requested > self._flush_done:
                    break
                if self._rows:
                    if len(self._rows) >= self.batch_rows:
                        break
                    now = time.monotonic()
                    if deadline is None:
                        deadline = now + self.interval_s
                    if now >= deadline:
                        break
                    self._cond.wait(deadline - now)
                else:
                    deadline = None
                    self._cond.wait()
            batch, self._rows = self._rows, []
            return batch, self._flush_requested, self._closed

    def _open(self) -> sqlite3.Connection | None:
        """Connect and migrate; None when that failed (for good, or for now if another process holds a lock)."""
        if self._broken is not None:
            return None
        conn = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = connect(self.path, timeout_s=self.busy_timeout_s)
            self._retry_locked(lambda: migrate(conn))
            return conn
        except Exception as exc:
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
            locked = isinstance(exc, sqlite3.OperationalError) and _is_locked(exc)
            self._fail("cannot open the ledger", exc, permanent=not locked)
            return None

    def _retry_locked(self, action: Callable[[], object]) -> None:
        """Run ``action``, retrying with back-off while another process holds the lock past the busy timeout."""
        for attempt in range(_LOCK_RETRIES):
            try:
                action()
                return
            except sqlite3.OperationalError as exc:
                if not _is_locked(exc) or attempt + 1 >= _LOCK_RETRIES:
                    raise
                time.sleep(min(2.0, 0.05 * 2**attempt))

    def _write(self, conn: sqlite3.Connection, batch: list[CallRecord], *, closing: bool) -> bool:
        """Write one batch in one transaction; True when it had to be queued again (the file stayed locked)."""
        rows = self._build_rows(batch)

        def transaction() -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("SAVEPOINT batch")
                try:
                    conn.executemany(INSERT_CALL, rows)
                except Exception as exc:
                    if _is_about_the_file(exc):
                        raise
                    conn.execute("ROLLBACK TO batch")  # one row SQLite refused: store the others one by one
                    self._insert_one_by_one(conn, rows)
                conn.execute("RELEASE batch")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

        try:
            self._retry_locked(transaction)
        except sqlite3.Error as exc:
            # Read-only file, full disk, I/O error, or a lock held for longer than all our retries.
            self._fail("cannot write to the ledger", exc, permanent=False)
            return self._not_written(
                batch, closing=closing, locked=isinstance(exc, sqlite3.OperationalError) and _is_locked(exc)
            )
        with self._cond:
            self.written += len(rows)
        return False

    def _build_rows(self, batch: list[CallRecord]) -> list[Row]:
        """Rows for the batch; out-of-range values become unknown, a record that cannot be turned into a row is
        dropped and counted. Never raises."""
        rows: list[Row] = []
        for record in batch:
            try:
                row, problems = self._builder.row(record)
            except Exception as exc:
                self._drop_invalid(1, f"{type(exc).__name__}: {exc}")
                continue
            if problems:
                self._note_invalid_values(len(problems), problems[0])
            rows.append(row)
        return rows

    def _insert_one_by_one(self, conn: sqlite3.Connection, rows: list[Row]) -> None:
        """Inside the open transaction: insert each row, dropping (and counting) only those that fail."""
        kept: list[Row] = []
        for row in rows:
            try:
                conn.execute(INSERT_CALL, row)
            except Exception as exc:
                if _is_about_the_file(exc):
                    raise  # locked, read-only, disk full: the whole batch is retried or dropped as usual
                self._drop_invalid(1, f"{type(exc).__name__}: {exc}")
                continue
            kept.append(row)
        rows[:] = kept

    def _note_invalid_values(self, count: int, example: str) -> None:
        with self._cond:
            self.invalid_values += count
            self.last_problem = example
        warn_once(
            f"ledger:{self.path}:invalid-value",
            "tokenrate: a call's %s in the ledger at %s (the rest of its row is kept; such values are counted "
            "in the ledger's stats() and the session summary).",
            example,
            self.path,
        )

    def _drop_invalid(self, count: int, reason: str) -> None:
        with self._cond:
            self.dropped += count
            self.dropped_invalid += count
            self.last_problem = reason
        warn_once(
            f"ledger:{self.path}:invalid-row",
            "tokenrate: a call could not be stored in the ledger at %s (%s); it is dropped and counted, the other "
            "calls are written.",
            self.path,
            reason,
        )

    def _not_written(self, batch: list[CallRecord], *, closing: bool, locked: bool = True) -> bool:
        """A batch that could not be written: queued again (True) when the ledger is only busy, else dropped."""
        with self._cond:
            self.failed_batches += 1
            if locked and not closing and self._broken is None:
                room = max(0, self.queue_max - len(self._rows))
                keep = batch[:room]
                self._rows = keep + self._rows
                self.dropped += len(batch) - len(keep)
                return bool(keep)
            self.dropped += len(batch)
            return False

    def _fail(self, what: str, exc: BaseException, *, permanent: bool) -> None:
        if permanent:
            with self._cond:
                self._broken = f"{type(exc).__name__}: {exc}"
                self.dropped += len(self._rows)
                self._rows = []
        warn_once(
            f"ledger:{self.path}:failed",
            "tokenrate: %s at %s (%s: %s); %s. Your program is unaffected.",
            what,
            self.path,
            type(exc).__name__,
            exc,
            "calls are no longer recorded in the ledger" if permanent else "tokenrate keeps trying",
        )
        logger.debug("tokenrate: ledger failure at %s", self.path, exc_info=exc)


_LIVE: weakref.WeakSet[Ledger] = weakref.WeakSet()
_AT_EXIT: weakref.WeakSet[Ledger] = weakref.WeakSet()


def _close_all_at_exit() -> None:
    for ledger in list(_AT_EXIT):
        with contextlib.suppress(Exception):
            ledger.close()


def _after_fork_in_child() -> None:
    for ledger in list(_LIVE):
        ledger._new_process_state()


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _is_about_the_file(exc: BaseException) -> bool:
    """A failure of the database file (locked, read-only, full, corrupt), as opposed to one row's values."""
    return isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, (sqlite3.IntegrityError, sqlite3.DataError))


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _process_name() -> str:
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    name = Path(argv0).name if argv0 else ""
    if name in ("", "-c", "-m", "__main__.py"):
        name = Path(sys.executable or "python").name
    return name[:120]

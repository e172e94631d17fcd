"""The ledger's SQLite schema, its migrations and how connections are opened.

The schema version is ``PRAGMA user_version``; `MIGRATIONS[i]` takes a database from version ``i`` to ``i + 1``.
Migrations run in order, each in its own ``BEGIN IMMEDIATE`` transaction that re-reads the version first, so
several processes opening a new ledger at once apply each step exactly once. Add a step by appending to
`MIGRATIONS`; never edit a released one.

One row per call. Times are Unix epoch seconds (UTC); a NULL token count or cost means unknown (never 0).
No prompt or completion content is ever stored; ``attributes`` holds the call's attribution (``user.id``,
``tokenrate.feature``, ...) as a JSON object. A ledger written by an older tokenrate is migrated in place the
first time a newer writer opens it; readers accept every older version (columns a version lacks read as NULL).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tokenrate.records import TOKEN_TYPES

BUSY_TIMEOUT_MS = 5_000
"""How long a connection waits for another process's write lock before SQLite reports "database is locked"."""

TOKEN_COLUMNS: tuple[str, ...] = tuple(f"{token_type}_tokens" for token_type in TOKEN_TYPES)
"""Columns for `tokenrate.records.TOKEN_TYPES`, in the same order."""

CALL_COLUMNS: tuple[str, ...] = (
    "ts",
    "session",
    "pid",
    "process",
    "service",
    "provider",
    "operation",
    "request_model",
    "response_model",
    *TOKEN_COLUMNS,
    "cost_usd",
    "throttle_events",
    "throttle_wait_s",
    "retries",
    "retry_wait_s",
    "status_code",
    "error_type",
    "outcome",
    "duration_s",
    "ttfc_s",
    "stream",
    "attributes",
)
"""The columns the writer fills, in the order of its row tuples."""

INSERT_CALL = f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({', '.join('?' * len(CALL_COLUMNS))})"

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the calls table.
    """
    CREATE TABLE calls (
        id                 INTEGER PRIMARY KEY,
        ts                 REAL    NOT NULL,   -- call start, Unix epoch seconds (UTC)
        session            TEXT    NOT NULL,   -- random per process
        pid                INTEGER NOT NULL,
        process            TEXT,               -- program name (argv[0])
        service            TEXT,               -- OTEL_SERVICE_NAME
        provider           TEXT    NOT NULL,   -- gen_ai.provider.name
        operation          TEXT,               -- gen_ai.operation.name
        request_model      TEXT,
        response_model     TEXT,
        input_tokens       INTEGER,            -- all billed input, cache reads/writes and tool-use prompt included
        output_tokens      INTEGER,            -- all billed output, reasoning included
        cache_read_tokens  INTEGER,
        cache_write_tokens INTEGER,
        reasoning_tokens   INTEGER,
        tool_use_tokens    INTEGER,
        cost_usd           REAL,               -- NULL: unknown
        throttle_events    INTEGER NOT NULL DEFAULT 0,
        throttle_wait_s    REAL    NOT NULL DEFAULT 0,
        retries            INTEGER NOT NULL DEFAULT 0,
        retry_wait_s       REAL    NOT NULL DEFAULT 0,
        status_code        INTEGER,
        error_type         TEXT,               -- NULL: success
        outcome            TEXT,               -- ok | error | closed | abandoned
        duration_s         REAL,
        ttfc_s             REAL,               -- time to first chunk (streams)
        stream             INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX calls_ts ON calls (ts);
    """,
    # 1 -> 2: who or what each call was for (tokenrate.attributes, allow-listed baggage).
    """
    ALTER TABLE calls ADD COLUMN attributes TEXT;  -- JSON object {"user.id": "...", ...}; NULL: none
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


class LedgerTooNewError(RuntimeError):
    """The ledger was written by a newer tokenrate (a schema version this one does not know)."""


def connect(
    path: str | Path,
    *,
    readonly: bool = False,
    immutable: bool = False,
    timeout_s: float = BUSY_TIMEOUT_MS / 1000,
) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit) with WAL and a busy timeout.

    ``readonly`` never creates or changes the file; ``immutable`` (with it) also skips locking, for a ledger on
    read-only storage.
    """
    if readonly:
        uri = Path(path).resolve().as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=ro")
        conn = sqlite3.connect(uri, uri=True, timeout=timeout_s, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(str(path), timeout=timeout_s, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
        if not readonly:
            conn.execute("PRAGMA journal_mode = WAL")
            # In WAL mode NORMAL keeps every committed transaction across an application crash (even SIGKILL);
            # only an OS crash or power cut may lose the last ones. Much cheaper than FULL.
            conn.execute("PRAGMA synchronous = NORMAL")
    except Exception:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to `SCHEMA_VERSION`; returns the version found before. Safe across processes."""
    found = _version(conn)
    if found > SCHEMA_VERSION:
        raise LedgerTooNewError(
            f"ledger schema version {found} is newer than this tokenrate understands ({SCHEMA_VERSION}); "
            "upgrade tokenrate or use another ledger file"
        )
    while True:
        current = _version(conn)
        if current >= SCHEMA_VERSION:
            return found
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = _version(conn)  # another process may have migrated while we waited for the lock
            if current < SCHEMA_VERSION:
                for statement in _statements(MIGRATIONS[current]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {current + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (``executescript`` would commit our transaction)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if statement:
                statements.append(statement)
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements

"""Where budgets are shared: the SQLite ledger (one machine) or Redis / Valkey (a fleet).

* `LedgerStore`: every process on the machine writes its calls to the same ledger; a background thread reads
  the rows other processes committed since the last look (every ``staleness`` seconds) and adds them to the
  budgets. The call path never touches the file.
* `RedisStore` (``TOKENRATE_BUDGET_STORE=redis://host:port/db``, ``rediss://`` for TLS; Valkey speaks the same):
  each (budget, scope value, period bucket) is one counter, raised with ``INCRBYFLOAT`` and expiring after its
  period. A background thread adds this process's spend as soon as a call ends and re-reads the counters in use
  every ``staleness / 2``; a call checks an enforced budget against a figure at most ``staleness`` old, reading
  it itself (within ``timeout``) only when the background read is late. When the store is unreachable or slow,
  budgets carry on with local accounting (one WARNING), the spend made meanwhile is added when it is back, and a
  call never waits more than ``timeout`` for it. The URL's password never appears in a message.

Overshoot: a call is checked when it starts, so calls already in flight (and, with a staleness above 0, the
spend other processes made within it) can take a budget past its limit.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from tokenrate._safety import report, warn_once
from tokenrate.budget.core import CounterRef, Spend

if TYPE_CHECKING:
    from tokenrate.budget.core import Budget

logger = logging.getLogger("tokenrate.budget")

DEFAULT_STALENESS_S = 1.0
DEFAULT_TIMEOUT_S = 0.1
RECONNECT_EVERY_S = 1.0
KEY_PREFIX = "tokenrate:budget"


# -- the ledger ----------------------------------------------------------------------------------------------------


def replay_ledger(budget: Budget, path: str | Path, *, after_id: int = 0, skip_session: str | None = None) -> int:
    """Add the ledger's calls in the budgets' current windows (other processes' spend); returns the last row id."""
    from tokenrate.ledger.query import read_spend

    rows, last_id = read_spend(path, after_id=after_id, since=budget.earliest_window_start(), skip=skip_session)
    for ts, provider, model, attributes, cost, tokens in rows:
        budget.count(Spend(ts, provider, model, attributes, cost, tokens), own=False, announce=after_id > 0)
    return last_id


class LedgerStore:
    """Budgets shared by the processes of one machine through their common ledger."""

    name = "ledger"

    def __init__(self, ledger: Any, *, staleness_s: float = DEFAULT_STALENESS_S) -> None:
        self.ledger = ledger
        self.staleness_s = staleness_s
        self._last_id = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self, budget: Budget) -> None:
        """At start-up: every process's calls in the current windows, then only what others add."""
        self._last_id = replay_ledger(budget, self.ledger.path)

    def start(self, budget: Budget) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(budget,), name="tokenrate-budget", daemon=True)
            self._thread.start()

    def refresh(self, budget: Budget, refs: list[CounterRef]) -> None:
        return None  # the call path never reads the file: the follower keeps the figures fresh

    def spent(self) -> None:
        return None  # our own calls reach the others through the ledger writer

    def close(self) -> None:
        self._stop.set()

    def _run(self, budget: Budget) -> None:
        while not self._stop.wait(self.staleness_s):
            try:
                self._last_id = replay_ledger(
                    budget, self.ledger.path, after_id=self._last_id, skip_session=self.ledger.session
                )
            except Exception as exc:
                report("budget: reading other processes' spend from the ledger", exc)


# -- Redis / Valkey -------------------------------------------------------------------------------------------------


def redact_url(url: str) -> str:
    """The URL with its password (and user) replaced, for every message that names the store."""
    try:
        parts = urlsplit(url)
        if parts.password is None and parts.username is None:
            return url
        host = parts.hostname or ""
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))
    except Exception:
        return "<the budget store URL>"


class RedisStore:
    """Budgets shared by every process that uses the same Redis (or Valkey) database."""

    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        staleness_s: float = DEFAULT_STALENESS_S,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.display_url = redact_url(url)
        self.staleness_s = staleness_s
        self.timeout_s = timeout_s
        self._client: Any = None
        self._down_since: float | None = None
        self._last_attempt = -math.inf
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._io = threading.Lock()
        """One conversation with the store at a time (the client is shared by the thread and the call path)."""

    @property
    def available(self) -> bool:
        return self._down_since is None and self._client is not None

    def connect(self) -> bool:
        """Open the client and check the store answers (within the timeout); False (logged) when it does not."""
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            warn_once(
                "budget:redis-missing",
                "tokenrate: TOKENRATE_BUDGET_STORE is a Redis URL but the redis package is not installed "
                "(pip install 'tokenrate[redis]'); budgets use local accounting.",
            )
            return False
        try:
            if self._client is None:
                self._client = redis.Redis.from_url(
                    self.url,
                    socket_timeout=self.timeout_s,
                    socket_connect_timeout=self.timeout_s,
                    retry=Retry(NoBackoff(), 0),
                    health_check_interval=0,
                )
            with self._io:
                self._client.ping()
        except Exception as exc:
            self._went_down(exc)
            return False
        if self._down_since is not None:
            logger.info("tokenrate: the budget store %s is back; adding the spend made meanwhile.", self.display_url)
        self._down_since = None
        return True

    def start(self, budget: Budget) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, args=(budget,), name="tokenrate-budget", daemon=True)
            self._thread.start()

    def spent(self) -> None:
        self._wake.set()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2 * self.timeout_s + 1.0)

    def refresh(self, budget: Budget, refs: list[CounterRef]) -> None:
        """On the call path: read the counters whose figure is older than the staleness (bounded by the timeout)."""
        if not self.available:
            return
        stale = budget.stale(refs, self.staleness_s)
        if stale:
            self._read(budget, stale, wait_s=self.timeout_s)

    # -- the background thread ---------------------------------------------------------------------------------

    def _run(self, budget: Budget) -> None:
        interval = max(0.02, self.staleness_s / 2) if self.staleness_s > 0 else 0.05
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            try:
                if not self.available and (
                    time.monotonic() - self._last_attempt < RECONNECT_EVERY_S or not self._reconnect()
                ):
                    continue
                self._flush(budget)
                self._read(budget, budget.active_refs())
            except Exception as exc:
                report("budget: sharing spend through the budget store", exc)
        with contextlib.suppress(Exception):
            if self.available:
                self._flush(budget)

    def _reconnect(self) -> bool:
        self._last_attempt = time.monotonic()
        return self.connect()

    def _flush(self, budget: Budget) -> None:
        """Add this process's spend to the shared counters (the spend made while the store was down included)."""
        pending = budget.take_own()
        if not pending:
            return
        try:
            with self._io:
                pipe = self._client.pipeline(transaction=False)
                for ref, amount in pending:
                    key = self._key(budget, ref)
                    pipe.incrbyfloat(key, amount)
                    pipe.expire(key, math.ceil(budget.ttl_s(ref)))
                results = pipe.execute()
        except Exception as exc:
            self._went_down(exc)
            return
        for (ref, amount), total in zip(pending, results[::2], strict=True):
            budget.flushed(ref, amount, float(total))

    def _read(self, budget: Budget, refs: list[CounterRef], *, wait_s: float | None = None) -> None:
        """Read counters; with ``wait_s`` (the call path), give up if the store is busy for longer than that."""
        if not refs:
            return
        marks = budget.read_marks(refs)
        if not self._io.acquire(timeout=-1 if wait_s is None else wait_s):
            return  # the background thread is talking to a slow store: use the figures we have
        try:
            values = self._client.mget([self._key(budget, ref) for ref in refs])
        except Exception as exc:
            self._went_down(exc)
            return
        finally:
            self._io.release()
        for ref, mark, value in zip(refs, marks, values, strict=True):
            budget.apply_read(ref, float(value) if value is not None else 0.0, mark)

    def _key(self, budget: Budget, ref: CounterRef) -> str:
        name, unit, scope, bucket = budget.store_key(ref)
        return f"{KEY_PREFIX}:{name}:{unit}:{json.dumps(list(scope), ensure_ascii=False)}:{bucket}"

    def _went_down(self, exc: BaseException) -> None:
        first = self._down_since is None
        if first:
            self._down_since = time.monotonic()
            self._last_attempt = time.monotonic()
        if first:
            reason = _scrub(f"{type(exc).__name__}: {exc}", self.url)
            warn_once(
                f"budget:store-down:{self.display_url}",
                "tokenrate: the budget store %s is unreachable or slow (%s); budgets carry on with this process's "
                "own accounting and share it again when the store is back. Calls are not delayed.",
                self.display_url,
                reason,
            )


def _scrub(text: str, url: str) -> str:
    """``text`` without the URL's password (a client library's message might quote the URL)."""
    with contextlib.suppress(Exception):
        parts = urlsplit(url)
        for secret in (parts.password, url):
            if secret:
                text = text.replace(secret, "***")
    return text

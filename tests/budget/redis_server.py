"""A real ``redis-server`` on 127.0.0.1 for the shared-budget tests (installed by ``.ci/backends.sh``).

Without one the tests skip, except when ``TOKENRATE_E2E_BACKENDS`` is set (CI): then a missing server fails them.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "s3cret-pw-0123"


def redis_server_binary() -> str:
    backends = os.environ.get("TOKENRATE_E2E_BACKENDS")
    candidates = [Path(backends) / "bin" / "redis-server"] if backends else []
    candidates.append(ROOT / ".e2e-backends" / "bin" / "redis-server")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    message = "redis-server is not installed; run `.ci/backends.sh install` (or `.ci/backends.sh redis`)"
    if backends:
        pytest.fail(f"{message} (TOKENRATE_E2E_BACKENDS={backends} is set, so it is required)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """One redis-server with a password and an append-only file (so a restart keeps the counters)."""

    def __init__(self, directory: Path) -> None:
        self.binary = redis_server_binary()
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 (kept open by the server process)
        self.process = subprocess.Popen(
            [
                self.binary,
                "--bind", "127.0.0.1",
                "--port", str(self.port),
                "--requirepass", PASSWORD,
                "--dir", str(self.directory),
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "always",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        client = self.client()
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    log = (self.directory / "redis.log").read_text()
                    raise RuntimeError(f"redis-server did not start: {log}") from None
                time.sleep(0.05)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def client(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, password=PASSWORD, socket_timeout=5)

    def total(self, pattern: str = "tokenrate:budget:*") -> float:
        client = self.client()
        return sum(float(client.get(key) or 0) for key in client.scan_iter(pattern))

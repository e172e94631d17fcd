"""Subprocesses of the CLI read line by line as they run, and never left running after a test."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator

import pytest


def _default_sigint() -> None:
    """In the child: Ctrl-C does what it does in a terminal, even when the test run itself ignores SIGINT (a
    background job of a non-interactive shell does, and an ignored signal is inherited)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Process:
    """A subprocess whose merged output is read line by line as it comes (the child runs unbuffered)."""

    def __init__(self, args: list[str], env: dict[str, str], **popen: object) -> None:
        self.proc = subprocess.Popen(
            args,
            env={**env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=_default_sigint,
            **popen,  # type: ignore[arg-type]
        )
        self.own_group = bool(popen.get("start_new_session"))
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 120) -> str:
        while True:
            line = self._queue.get(timeout=timeout)
            if line is None:
                raise AssertionError("the process ended first:\n" + "".join(self.lines))
            self.lines.append(line)
            if predicate(line):
                return line

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        code = self.proc.wait(timeout=timeout)
        while (line := self._queue.get(timeout=timeout)) is not None:
            self.lines.append(line)
        return code, "".join(self.lines)


@pytest.fixture
def spawn() -> Iterator[Callable[..., Process]]:
    """Start a `Process`; whatever is still running when the test ends (a failed assertion) is killed."""
    started: list[Process] = []

    def start(args: list[str], env: dict[str, str], **popen: object) -> Process:
        process = Process(args, env, **popen)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.proc.poll() is None:
            if process.own_group:  # the program it runs too
                os.killpg(process.proc.pid, signal.SIGKILL)
            else:
                process.proc.kill()
            process.proc.wait(30)

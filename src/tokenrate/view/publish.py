"""Publishing snapshots for ``tokenrate top``: one small JSON file per process, no server and no sockets.

A daemon thread rewrites ``<state dir>/<pid>.json`` every ``interval_s`` (temp file in the same directory, then
``os.replace``, so a reader never sees half a file) and removes it at exit. The file holds the snapshot, the
pid, the program's name (never its arguments: they may hold secrets) and ``OTEL_SERVICE_NAME``. Readers drop
(and delete) files whose process is gone or that stopped being refreshed.

The state directory is per user and private (0700): ``$TOKENRATE_STATE_DIR``, else
``$XDG_RUNTIME_DIR/tokenrate``, else ``<tempdir>/tokenrate-<uid>``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenrate._env import bounded_interval, env_str, setting
from tokenrate._safety import report, warn_once
from tokenrate.view.snapshot import Snapshot

PUBLISH_FORMAT = 1
TEMP_MAX_AGE_S = 60.0
"""A leftover temp file (its writer died mid-write) older than this is removed by readers."""


def _user_id() -> str:
    if hasattr(os, "getuid"):
        return str(os.getuid())
    try:
        import getpass

        return getpass.getuser()
    except Exception:
        return "user"


def default_state_dir() -> Path:
    """Where processes publish and ``tokenrate top`` reads (see the module docstring)."""
    explicit = setting("TOKENRATE_STATE_DIR")
    if explicit is not None:
        return explicit
    runtime = env_str("XDG_RUNTIME_DIR")
    if runtime:
        return Path(runtime) / "tokenrate"
    return Path(tempfile.gettempdir()) / f"tokenrate-{_user_id()}"


def _prepare_dir(directory: Path) -> bool:
    """Create the directory private to this user; refuse one that another user owns (shared /tmp)."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = directory.stat()
    except OSError as exc:
        warn_once(f"publish-dir:{directory}", "tokenrate: cannot use %s for publishing (%s)", directory, exc)
        return False
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        warn_once(
            f"publish-dir:{directory}",
            "tokenrate: not publishing to %s: it belongs to another user (set TOKENRATE_STATE_DIR)",
            directory,
        )
        return False
    return True


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _program_name() -> str:
    """The program's name only: arguments can carry secrets."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if argv0 in ("", "-c"):
        return f"{Path(sys.executable).name} -c" if argv0 == "-c" else Path(sys.executable).name
    path = Path(argv0)
    if path.name == "__main__.py" and path.parent.name:  # python -m package
        return path.parent.name
    return path.name or argv0


class SnapshotPublisher:
    """Writes ``<directory>/<pid>.json`` (this process's snapshot) every ``interval_s`` on a daemon thread.

    `start_publishing` runs one for ``tokenrate top``; ``tokenrate run``'s reporting runs another into its run
    directory. ``start()`` begins, `publish_once` writes now, `stop` ends and removes the file.
    """

    def __init__(self, directory: Path, interval_s: float, snapshot: Callable[[], Snapshot]) -> None:
        self.directory = directory
        self.interval_s = interval_s = bounded_interval(interval_s)
        self.pid = os.getpid()
        self.path = directory / f"{self.pid}.json"
        self._snapshot = snapshot
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._stopped = False
        self._static = {
            "format": PUBLISH_FORMAT,
            "pid": self.pid,
            "program": _program_name(),
            "service": env_str("OTEL_SERVICE_NAME"),
            "host": socket.gethostname(),
            "pid_ns": _pid_namespace(),
            "interval_s": interval_s,
        }
        self.thread = threading.Thread(target=self._run, name="tokenrate-publish", daemon=True)

    def start(self) -> Path:
        """Start the thread; returns the file it writes."""
        self.thread.start()
        return self.path

    def _run(self) -> None:
        while True:
            self.publish_once()
            if self._stop.wait(self.interval_s):
                return

    def publish_once(self) -> None:
        tmp: str | None = None
        try:
            payload = dict(self._static)
            snap = self._snapshot()
            payload["published_at"] = time.time()
            payload["snapshot"] = snap.to_dict()
            data = json.dumps(payload, allow_nan=False)
            with self._write_lock:
                if self._stopped:
                    return
                fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=f".{self.pid}.", suffix=".tmp")
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(data)
                os.replace(tmp, self.path)
                tmp = None
        except Exception as exc:
            report("publishing for tokenrate top", exc)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def stop(self) -> None:
        self._stop.set()
        with self._write_lock:
            self._stopped = True
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=2.0)


_publisher: SnapshotPublisher | None = None
_publisher_lock = threading.Lock()
_atexit_registered = False


def start_publishing(directory: str | os.PathLike[str] | None = None, interval_s: float = 1.0) -> Path | None:
    """Publish this process's snapshot for ``tokenrate top`` every ``interval_s`` (idempotent).

    Returns the file being written, or ``None`` when the directory cannot be used (logged once).
    """
    global _publisher, _atexit_registered
    from tokenrate.view.core import get_view

    with _publisher_lock:
        if _publisher is not None and _publisher.pid == os.getpid():
            return _publisher.path
        target = Path(directory) if directory is not None else default_state_dir()
        if not _prepare_dir(target):
            return None
        view = get_view()
        publisher = SnapshotPublisher(target, interval_s, view.snapshot)
        _publisher = publisher
        if not _atexit_registered:
            atexit.register(_stop_at_exit)
            _atexit_registered = True
    return publisher.start()


def stop_publishing() -> None:
    """Stop publishing and remove this process's file."""
    global _publisher
    with _publisher_lock:
        publisher, _publisher = _publisher, None
    if publisher is not None and publisher.pid == os.getpid():
        publisher.stop()


def _stop_at_exit() -> None:
    try:
        stop_publishing()
    except Exception as exc:
        with contextlib.suppress(Exception):
            report("stop publishing at exit", exc)


def _forget_after_fork() -> None:
    # The publishing thread does not exist in a forked child and its file belongs to the parent.
    global _publisher, _publisher_lock
    _publisher = None
    _publisher_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def maybe_start_publishing_from_env() -> Path | None:
    """Start publishing when ``TOKENRATE_PUBLISH=1`` (interval: ``TOKENRATE_PUBLISH_INTERVAL``, seconds)."""
    try:
        if not setting("TOKENRATE_PUBLISH"):
            return None
        return start_publishing(interval_s=setting("TOKENRATE_PUBLISH_INTERVAL"))
    except Exception as exc:
        report("start publishing", exc)
        return None


# -- reading ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedProcess:
    """One publishing process as ``tokenrate top`` sees it."""

    pid: int
    program: str
    service: str | None
    host: str
    published_at: float
    interval_s: float
    path: str
    snapshot: Snapshot


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill would terminate the process there; rely on staleness instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. EPERM: it exists, it is just not ours
    try:  # a zombie (killed, not yet reaped) is gone for our purposes
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def _remove_if_unchanged(path: str, mtime_ns: int) -> None:
    """Delete a dead/stale file unless its writer replaced it meanwhile."""
    try:
        if os.stat(path).st_mtime_ns == mtime_ns:
            os.unlink(path)
    except OSError:
        pass


def _number(payload: Mapping[str, Any], key: str, default: float) -> float:
    v = payload.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default


def read_published(
    directory: str | os.PathLike[str] | None = None, stale_after_s: float = 5.0
) -> list[PublishedProcess]:
    """Every process publishing in ``directory``, by pid; dead or stale files are skipped and removed.

    A file is stale when it was not refreshed for ``max(stale_after_s, 3 * its interval)`` seconds. A pid is
    only checked when the writer shares this host and pid namespace (containers see other pids).
    """
    target = Path(directory) if directory is not None else default_state_dir()
    try:
        entries = list(os.scandir(target))
    except OSError:
        return []
    now = time.time()
    host = socket.gethostname()
    namespace = _pid_namespace()
    found: list[PublishedProcess] = []
    for entry in entries:
        name = entry.name
        try:
            st = entry.stat()
        except OSError:
            continue
        if name.startswith(".") and name.endswith(".tmp"):
            if now - st.st_mtime > TEMP_MAX_AGE_S:
                _remove_if_unchanged(entry.path, st.st_mtime_ns)
            continue
        if name.startswith(".") or not name.endswith(".json"):
            continue
        try:
            with open(entry.path, encoding="utf-8") as f:
                payload = json.load(f)
            if not isinstance(payload, dict):
                raise ValueError("not an object")
            pid = int(payload["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            if now - st.st_mtime > stale_after_s:
                _remove_if_unchanged(entry.path, st.st_mtime_ns)
            continue
        interval = _number(payload, "interval_s", 1.0)
        published_at = _number(payload, "published_at", st.st_mtime)
        stale = now - max(published_at, st.st_mtime) > max(stale_after_s, 3 * interval)
        same_pid_space = payload.get("host") == host and payload.get("pid_ns") == namespace
        if stale or (same_pid_space and not _pid_alive(pid)):
            _remove_if_unchanged(entry.path, st.st_mtime_ns)
            continue
        snap = payload.get("snapshot")
        service = payload.get("service")
        found.append(
            PublishedProcess(
                pid=pid,
                program=str(payload.get("program") or "?"),
                service=service if isinstance(service, str) else None,
                host=str(payload.get("host") or ""),
                published_at=published_at,
                interval_s=interval,
                path=entry.path,
                snapshot=Snapshot.from_dict(snap if isinstance(snap, dict) else {}),
            )
        )
    found.sort(key=lambda p: p.pid)
    return found

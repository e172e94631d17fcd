"""``tokenrate run`` support inside the program it runs: report this process's view to the parent.

The parent (`tokenrate.cli.run`) sets ``TOKENRATE_RUN_DIR`` to a private directory. Every instrumented Python
process started under it writes its snapshot there (``<pid>.json``, atomically) every
``TOKENRATE_RUN_INTERVAL`` seconds and once more at exit, so the parent can draw a live status line and print the
session summary after the program ends, without sharing the program's stderr while it runs.
"""

from __future__ import annotations

import atexit
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tokenrate._env import setting
from tokenrate._safety import report

if TYPE_CHECKING:
    from tokenrate.view import SnapshotPublisher

RUN_DIR_ENV = "TOKENRATE_RUN_DIR"
RUN_INTERVAL_ENV = "TOKENRATE_RUN_INTERVAL"


def start_run_reporting() -> Path | None:
    """Start reporting to ``TOKENRATE_RUN_DIR`` if it is set (idempotent per process); returns the file."""
    directory = setting(RUN_DIR_ENV)
    if directory is None:
        return None
    from tokenrate.view import SnapshotPublisher, get_view

    if not directory.is_dir():
        return None
    publisher = SnapshotPublisher(directory, setting(RUN_INTERVAL_ENV), get_view().snapshot)
    path = publisher.start()
    # Registered after the SDKs are imported, so it runs late at exit: after the program's own atexit handlers.
    atexit.register(_final, publisher)
    return path


def _final(publisher: SnapshotPublisher) -> None:
    try:
        publisher.publish_once()
    except Exception as exc:
        report("final snapshot for tokenrate run", exc)


@dataclass(frozen=True)
class RunReport:
    """One process's latest snapshot in a run directory."""

    pid: int
    program: str
    snapshot: object  # tokenrate.view.Snapshot


def read_run_dir(directory: Path) -> list[RunReport]:
    """Every process's latest snapshot (dead processes included: their last word is their summary)."""
    from tokenrate.view.snapshot import Snapshot

    reports = []
    for path in sorted(directory.glob("*.json")):
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            reports.append(
                RunReport(
                    pid=int(payload["pid"]),
                    program=str(payload.get("program") or "?"),
                    snapshot=Snapshot.from_dict(payload["snapshot"]),
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a file being replaced, or not ours
    return reports


def child_environment(run_dir: Path) -> dict[str, str]:
    """The variables a program run by ``tokenrate run`` gets on top of the parent's environment."""
    return {RUN_DIR_ENV: os.fspath(run_dir)}

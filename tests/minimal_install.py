"""A throwaway venv with what ``pip install "tokenrate[openai]"`` gives a new user: no OTel SDK, no exporter.

Built once (outside the repository, in the temp dir) and reused while ``pyproject.toml`` is unchanged; tokenrate is
installed editable from this checkout, so source changes need no rebuild. Building needs PyPI (as ``make test``
does); a build failure fails the tests that use it, it never skips them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = "openai"


def _key() -> str:
    digest = hashlib.sha256()
    digest.update(str(ROOT).encode())
    digest.update((ROOT / "pyproject.toml").read_bytes())
    digest.update(EXTRAS.encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def minimal_venv() -> Path:
    """The venv's directory (``bin/python``, ``bin/tokenrate``), built on first use."""
    base = Path(tempfile.gettempdir()) / "tokenrate-test-venvs"
    base.mkdir(exist_ok=True)
    venv = base / f"openai-only-{_key()}"
    ready = venv / ".ready"
    with open(base / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not ready.exists():
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(venv)
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
            result = subprocess.run(
                [*pip, "-e", f"{ROOT}[{EXTRAS}]"], timeout=900, capture_output=True, text=True, check=False
            )
            if result.returncode:
                raise RuntimeError(f"building the minimal venv failed:\n{result.stderr[-3000:]}")
            ready.touch()
    return venv


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without this test run's OTel and tokenrate settings (a new user's shell)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENRATE_", "VIRTUAL_ENV"))}
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env

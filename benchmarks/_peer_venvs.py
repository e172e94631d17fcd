"""Throwaway venvs for the peer benchmark, outside the repository (reused while their requirements are unchanged).

Every venv gets the same ``openai``/``anthropic`` (and ``httpx2``/``pydantic``) versions as the interpreter that
runs the benchmark, so each contender drives exactly the same SDK code. The OTel SDK is pinned to that
interpreter's version too where the peer's own requirements allow it; otherwise pip picks what installs with the
peer, and the table says which version each venv got.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# The packages every venv shares with the benchmark's interpreter, at its versions.
SHARED = ("openai", "anthropic", "httpx2", "pydantic")
OTEL_SDK = ("opentelemetry-api", "opentelemetry-sdk")


@dataclass(frozen=True)
class PeerVenv:
    """A venv holding one project's instrumentations (both SDKs' where it has both)."""

    name: str
    packages: tuple[str, ...]
    pre: bool = False  # the package has only pre-releases (the OTel contrib/genai instrumentations)


PEER_VENVS = {
    venv.name: venv
    for venv in (
        # openai-v2 still imports httpx (the SDKs moved to httpx2) without declaring it, and needs a util-genai that
        # still has `instruments` (gone in 1.3b0, which pip picks by default: the import then fails).
        PeerVenv(
            "otel-openai-v2",
            ("opentelemetry-instrumentation-openai-v2", "httpx<1", "opentelemetry-util-genai==1.0b0"),
            pre=True,
        ),
        PeerVenv(
            "otel-genai",
            ("opentelemetry-instrumentation-genai-openai", "opentelemetry-instrumentation-genai-anthropic"),
            pre=True,
        ),
        PeerVenv("openllmetry", ("opentelemetry-instrumentation-openai", "opentelemetry-instrumentation-anthropic")),
        PeerVenv("openinference", ("openinference-instrumentation-openai", "openinference-instrumentation-anthropic")),
    )
}


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tokenrate-bench" / "venvs"


def pinned(names: tuple[str, ...]) -> list[str]:
    return [f"{name}=={importlib.metadata.version(name)}" for name in names]


def _python(venv_dir: Path) -> Path:
    return venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _pip(venv_dir: Path, args: list[str], log: Path) -> bool:
    with log.open("a") as out:
        done = subprocess.run(
            [str(_python(venv_dir)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return done.returncode == 0


def ensure(venv: PeerVenv, *, rebuild: bool = False) -> Path:
    """The venv's python, built (or rebuilt) when missing or when its requirements changed."""
    shared = pinned(SHARED)
    otel = pinned(OTEL_SDK)
    spec = json.dumps({"packages": venv.packages, "shared": shared, "otel": otel, "python": sys.version}, indent=1)
    venv_dir = cache_dir() / f"{venv.name}-{hashlib.sha256(spec.encode()).hexdigest()[:10]}"
    stamp = venv_dir / "requirements.json"
    if stamp.exists() and not rebuild:
        return _python(venv_dir)
    for stale in cache_dir().glob(f"{venv.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    print(f"building {venv_dir} ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv_dir)], check=True)
    log = venv_dir / "pip.log"
    pre = ["--pre"] if venv.pre else []
    # First try with the OTel SDK at the benchmark interpreter's version; if the peer cannot live with it, let pip
    # choose (the SDK stays the same across contenders then only where the peers allow).
    if not _pip(venv_dir, [*pre, *venv.packages, *shared, *otel], log) and not _pip(
        venv_dir, [*pre, *venv.packages, *shared, "opentelemetry-sdk"], log
    ):
        raise SystemExit(f"could not install {venv.name} (see {log})")
    stamp.write_text(spec)
    return _python(venv_dir)


def versions(python: Path | str, names: list[str]) -> dict[str, str]:
    """Installed versions of ``names`` in the interpreter ``python`` (missing ones left out)."""
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))"
    )
    done = subprocess.run([str(python), "-c", code, *names], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


if __name__ == "__main__":
    for peer in PEER_VENVS.values():
        python = ensure(peer, rebuild="--rebuild" in sys.argv)
        print(peer.name, python, versions(python, [*peer.packages, *SHARED, *OTEL_SDK]))

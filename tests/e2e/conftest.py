"""Fixtures for the end-to-end tests: the real backends (or a clean skip), and tokenrate workloads exporting to them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import e2e_backends as backends
import pytest
from sdk_support import FULL_STACK


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[backends.Stack]:
    """Collector (rotel) → vmagent → Prometheus, and Phoenix for traces when installed; stopped afterwards."""
    if not FULL_STACK:
        pytest.skip("the end-to-end workload uses all three SDKs and prices: needs Python >= 3.11")
    directory, explicit = backends.backends_dir()
    missing = backends.missing(directory)
    if missing:
        reason = (
            f"OTLP backends not installed in {directory} (missing: {', '.join(missing)}); "
            "run `.ci/backends.sh install` to get them"
        )
        if explicit:  # CI asked for them (TOKENRATE_E2E_BACKENDS): a missing backend is a failure, not a skip
            pytest.fail(f"{backends.ENV_DIR} is set but {reason}")
        pytest.skip(reason)
    with backends.running(directory, tmp_path_factory.mktemp("backends")) as running:
        yield running


@dataclass
class Workload:
    """One tokenrate process that exported to the stack, and what its own local view counted."""

    service: str
    summary: dict[str, Any]
    stdout: str

    @property
    def snapshot(self) -> dict[str, Any]:
        return self.summary["snapshot"]


def _env(stack: backends.Stack, service: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": stack.otlp_http_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": service,
        # Phoenix files spans by this resource attribute: one project per run.
        "OTEL_RESOURCE_ATTRIBUTES": f"openinference.project.name={service}",
        "TOKENRATE_LEDGER": "off",
        **extra,
    }
    for key in ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_METRICS_EXPORTER"):
        env.pop(key, None)
    return env


@pytest.fixture(scope="session")
def workload(stack: backends.Stack, tmp_path_factory: pytest.TempPathFactory) -> Workload:
    """``examples/otlp_export.py`` for 8 s: three SDKs, streams, 429s and 529s, a budget, 1 s metric exports.

    One-second exports give every series several points while it grows, which ``rate()`` needs.
    """
    service = f"tokenrate-e2e-{uuid.uuid4().hex[:8]}"
    summary_path = tmp_path_factory.mktemp("workload") / "summary.json"
    env = _env(
        stack,
        service,
        OTEL_METRIC_EXPORT_INTERVAL="1000",
        TOKENRATE_BUDGET_DAILY_USD="1",
        TOKENRATE_METRIC_ATTRIBUTES="user.id,tokenrate.feature",
    )
    script = backends.REPO / "examples" / "otlp_export.py"
    result = subprocess.run(
        [sys.executable, str(script), "--duration", "8", "--summary-json", str(summary_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{stack.log_tail()}"
    return Workload(service, json.loads(summary_path.read_text()), result.stdout)

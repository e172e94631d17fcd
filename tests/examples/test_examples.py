"""Every script in ``examples/`` runs, as a user would run it, and does what its docstring says (so none can rot).

Each example starts the simulated provider itself. ``otlp_export.py`` exports to a minimal OTLP/HTTP receiver
here (the real collector + Prometheus + Phoenix path is ``tests/e2e``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sdk_support import needs_full_stack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _env(**extra: str) -> dict[str, str]:
    """The user's environment minus anything that would send the examples' telemetry or spend elsewhere."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OTEL_", "TOKENRATE_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_"))
    }
    return {**env, "TOKENRATE_LEDGER": "off", **extra}


def _run(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*argv], env=env or _env(), capture_output=True, text=True, timeout=90, cwd=EXAMPLES.parent, check=False
    )


def test_every_example_has_a_test():
    tested = {
        "quickstart.py",
        "status_line.py",
        "budgets.py",
        "per_user_budgets.py",
        "zero_code.sh",
        "zero_code_app.py",
        "otlp_export.py",
    }
    shipped = {path.name for path in EXAMPLES.iterdir() if path.suffix in (".py", ".sh")}
    assert shipped == tested


def test_quickstart_console_exporters_and_local_view():
    result = _run(sys.executable, str(EXAMPLES / "quickstart.py"))
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert "instrumented: openai, anthropic" in err
    assert "requests: 3 (4 attempts)" in err  # one 429, retried by the SDK
    assert "throttled: 1x, 0.2 s waiting" in err
    assert "'input': 3600, 'output': 750, 'cache_read': 2400" in err
    assert "'tool_use': None" in err  # neither SDK reports tool-use tokens: unknown, not 0
    # The console exporters: three spans (one with the retry event), then the metrics at shutdown.
    out = result.stdout
    assert out.count('"kind": "SpanKind.CLIENT"') == 3
    assert out.count('"name": "tokenrate.retry"') == 1
    for metric in ("tokenrate.usage.tokens", "tokenrate.throttle.events", "gen_ai.client.token.usage"):
        assert f'"name": "{metric}"' in out


def test_status_line_footer_updates_while_the_agent_works():
    result = _run(sys.executable, str(EXAMPLES / "status_line.py"), "--steps", "4")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    steps = [re.fullmatch(r"agent: step (\d)/4 done \(\d+ chunks\)", line) for line in lines if "agent:" in line]
    assert [int(m.group(1)) for m in steps if m] == [1, 2, 3, 4], result.stdout
    status = [line for line in lines if line.startswith("status: ")]
    assert status, result.stdout  # not a terminal: one status line per second
    assert all(line.startswith("status: TPM ") for line in status)
    final = lines[-1]
    assert final.startswith("final: TPM ")
    assert "RPM 4" in final
    assert "throttled 1×" in final  # step 3 got a 429


@needs_full_stack
def test_budgets_warn_then_refuse():
    result = _run(sys.executable, str(EXAMPLES / "budgets.py"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "WARNING tokenrate.budget: tokenrate: daily USD budget 50% used" in out
    assert "WARNING tokenrate.budget: tokenrate: daily USD budget 90% used" in out
    assert "WARNING tokenrate.budget: tokenrate: daily USD budget exceeded" in out
    # The example's calls (2,000 in + 500 out, gpt-4o-mini) at the prices genai-prices has today.
    import genai_prices

    limit = 0.0025
    per_call = float(
        genai_prices.calc_price(
            genai_prices.Usage(input_tokens=2000, output_tokens=500), model_ref="gpt-4o-mini", provider_id="openai"
        ).total_price
    )
    last = next(n for n in range(1, 21) if n * per_call >= limit)  # the call that exceeds the budget
    assert (
        f"call {last}: daily_usd ${last * per_call:.4f} of ${limit:.4f} ({last * per_call / limit:.0%}, exceeded)"
        in out
    )
    assert f"call {last + 1}: refused: tokenrate: the daily USD budget is exceeded" in out
    assert out.rstrip().endswith(f"requests that reached the provider: {last}")


def test_per_user_budgets_stop_only_the_heavy_user_and_report_per_user(tmp_path):
    result = _run(sys.executable, str(EXAMPLES / "per_user_budgets.py"), "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    outcomes = {
        m.group(1): (int(m.group(2)), int(m.group(3)))
        for m in re.finditer(r"^(u-\w+): (\d+) served, (\d+) refused$", out, re.MULTILINE)
    }
    assert set(outcomes) == {"u-alice", "u-bob", "u-carol", "u-dave", "u-erin", "u-frank"}
    served, refused = outcomes.pop("u-alice")
    assert refused >= 1  # the heavy user hit the per-user budget...
    assert served + refused == 20
    assert all(r == 0 for _, r in outcomes.values()), outcomes  # ...and nobody else was stopped
    # Per-user budget $0.005 at $0.0006 a call (2,000 in / 500 out at the example's prices): the 9th call
    # crosses it; calls already in flight on the 8 worker threads may still finish.
    assert 9 <= served <= 9 + 8
    assert "budget 'per-user' (daily USD) for user.id=u-alice exceeded" in result.stderr
    report = out.split("$ tokenrate report --by user.id", 1)[1]
    rows = {line.split()[0]: line for line in report.splitlines() if line.startswith("u-")}
    assert set(rows) == {"u-alice", "u-bob", "u-carol", "u-dave", "u-erin", "u-frank"}
    assert re.search(rf"^u-alice\s+│\s+20\s+│\s+{refused}\s", rows["u-alice"])  # refused calls show as errors
    assert "unknown" not in report  # refused calls were never sent: they cost nothing
    assert "per-user        [user.id=u-alice]" in report
    assert re.search(r"\[user.id=u-alice\] \$[\d.]+ of \$0.0050 \(\d+%\) in [\d-]+: exceeded", report)


def test_zero_code_script_instruments_an_unmodified_app():
    result = _run("bash", str(EXAMPLES / "zero_code.sh"), env=_env(PYTHON=sys.executable))
    assert result.returncode == 0, result.stderr
    assert "openai: " in result.stdout
    assert "anthropic: " in result.stdout
    assert "tokenrate session summary" in result.stderr
    assert "requests     2 (2 attempts)" in result.stderr
    assert '"name": "tokenrate.usage.tokens"' in result.stdout  # the console metric exporter


class _Receiver(ThreadingHTTPServer):
    """Just enough of an OTLP/HTTP (protobuf) receiver to see what was exported."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.metric_names: set[str] = set()
        self.spans: list[str] = []
        self.lock = threading.Lock()


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.lock:
            if self.path == "/v1/metrics":
                request = ExportMetricsServiceRequest.FromString(body)
                for rm in request.resource_metrics:
                    for sm in rm.scope_metrics:
                        self.server.metric_names.update(metric.name for metric in sm.metrics)
            elif self.path == "/v1/traces":
                request = ExportTraceServiceRequest.FromString(body)
                for rs in request.resource_spans:
                    for ss in rs.scope_spans:
                        self.server.spans.extend(span.name for span in ss.spans)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@needs_full_stack
def test_otlp_export_sends_metrics_and_one_span_per_call(receiver, tmp_path):
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
    summary = tmp_path / "summary.json"
    env = _env(OTEL_EXPORTER_OTLP_ENDPOINT=endpoint, OTEL_METRIC_EXPORT_INTERVAL="1000")
    result = _run(
        sys.executable, str(EXAMPLES / "otlp_export.py"), "--duration", "2", "--summary-json", str(summary), env=env
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"exporting OTLP/HTTP to {endpoint} as service 'tokenrate-example'" in result.stdout
    snap = json.loads(summary.read_text())["snapshot"]
    assert snap["throttle"]["events"] > 0
    assert {"tokenrate.usage.tokens", "tokenrate.throttle.events", "tokenrate.ratelimit.remaining"} <= (
        receiver.metric_names
    )
    assert len(receiver.spans) == snap["requests"]  # the providers were shut down: everything was flushed
    assert {name.split(" ")[1] for name in receiver.spans} == {"gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"}

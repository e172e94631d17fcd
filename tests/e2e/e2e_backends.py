"""Start and stop the real OTLP backends that ``.ci/backends.sh install`` put on disk, on free 127.0.0.1 ports.

Topology (the shape of ``collector-config/``, with what installs without Docker)::

    app --OTLP gRPC/HTTP--> rotel (collector role)
          metrics --OTLP/HTTP--> vmagent (-opentelemetry.usePrometheusNaming) --remote write--> Prometheus 2.42
          traces  --OTLP/HTTP--> Arize Phoenix (REST API for spans)      [only when installed]

Prometheus's ``/api/v1/query`` is the API Grafana's Prometheus datasource calls, so the dashboard's PromQL is
run there. Every process is started here, its PID kept, and stopped here; nothing else is touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parents[2]
ENV_DIR = "TOKENRATE_E2E_BACKENDS"
DEFAULT_DIR = REPO / ".e2e-backends"
REQUIRED = ("prometheus", "vmagent", "rotel-agent")

T = TypeVar("T")

# Phoenix's gRPC server binds [::]:PORT (hard-coded). Nothing here uses Phoenix's gRPC (rotel sends OTLP/HTTP),
# so the launcher rewrites that address to loopback: every server of the test stays on 127.0.0.1.
_PHOENIX_LAUNCHER = """
import sys
import grpc.aio._server as s
_add = s.Server.add_insecure_port
s.Server.add_insecure_port = lambda self, address: _add(self, address.replace("[::]:", "127.0.0.1:", 1))
from phoenix.server.main import main
sys.argv = ["phoenix", "serve"]
sys.exit(main())
"""


def backends_dir() -> tuple[Path, bool]:
    """The install directory, and whether it was asked for explicitly (then missing backends are an error)."""
    explicit = os.environ.get(ENV_DIR)
    return (Path(explicit), True) if explicit else (DEFAULT_DIR, False)


def missing(directory: Path) -> list[str]:
    return [name for name in REQUIRED if not os.access(directory / "bin" / name, os.X_OK)]


def has_phoenix(directory: Path) -> bool:
    return os.access(directory / "venv-phoenix" / "bin" / "python", os.X_OK)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str, params: dict[str, Any] | None = None, timeout: float = 10) -> Any:
    if params:
        url += "?" + urllib.parse.urlencode(params, doseq=True)
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


def poll(what: str, fn: Callable[[], T | None], timeout: float = 30, interval: float = 0.25) -> T:
    """Call ``fn`` until it returns something truthy; fail with ``what`` (and the last error) after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except (OSError, ValueError, KeyError, urllib.error.URLError) as exc:  # not up yet / not there yet
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


@dataclass
class Stack:
    """The running backends: where to send OTLP, where to query."""

    prometheus_url: str
    otlp_http_endpoint: str
    otlp_grpc_endpoint: str
    phoenix_url: str | None
    logs: Path
    _processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    # -- Prometheus HTTP API (what Grafana's Prometheus datasource calls) ------------------------------------
    def query(self, promql: str) -> list[dict[str, Any]]:
        """Instant query; the result vector (raises on a PromQL error, which Prometheus answers with a 400)."""
        try:
            answer = get_json(self.prometheus_url + "/api/v1/query", {"query": promql})
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"Prometheus rejected {promql!r}: {exc.read().decode(errors='replace')}") from exc
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def alerts(self) -> list[dict[str, Any]]:
        """Every pending or firing alert, as Prometheus's ``/api/v1/alerts`` lists them."""
        return get_json(self.prometheus_url + "/api/v1/alerts")["data"]["alerts"]

    def query_range(self, promql: str, seconds: float = 300, step: float = 1) -> list[dict[str, Any]]:
        """Range query over the last ``seconds``, as a Grafana time-series panel would ask."""
        end = time.time()
        try:
            answer = get_json(
                self.prometheus_url + "/api/v1/query_range",
                {"query": promql, "start": end - seconds, "end": end, "step": step},
            )
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"Prometheus rejected {promql!r}: {exc.read().decode(errors='replace')}") from exc
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def metric_names_matching(self, match: str) -> list[str]:
        return self.label_values("__name__", match)

    def label_values(self, label: str, match: str) -> list[str]:
        """What Grafana's ``label_values(match, label)`` lists."""
        return get_json(f"{self.prometheus_url}/api/v1/label/{label}/values", {"match[]": match})["data"]

    def series(self, match: str) -> list[dict[str, str]]:
        return get_json(self.prometheus_url + "/api/v1/series", {"match[]": match})["data"]

    # -- Phoenix REST API ----------------------------------------------------------------------------------
    def spans(self, project: str) -> list[dict[str, Any]]:
        """Every span of a Phoenix project (follows the cursor)."""
        assert self.phoenix_url is not None
        spans: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            try:
                page = get_json(f"{self.phoenix_url}/v1/projects/{urllib.parse.quote(project)}/spans", params)
            except urllib.error.HTTPError as exc:
                if exc.code == 404:  # the project appears with its first span
                    return []
                raise
            spans.extend(page["data"])
            cursor = page.get("next_cursor")
            if not cursor:
                return spans

    def log_tail(self, lines: int = 20) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


def _spawn(stack: Stack, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
    log = open(stack.logs / f"{name}.log", "wb")  # noqa: SIM115 - the child owns it until stop()
    try:
        stack._processes[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    finally:
        log.close()


def _ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def stop(stack: Stack) -> None:
    """Stop exactly the processes this module started (SIGTERM, then SIGKILL after 10 s)."""
    for name, process in reversed(list(stack._processes.items())):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        stack._processes.pop(name, None)


RULES = REPO / "collector-config" / "prometheus" / "rules" / "tokenrate.rules.yml"
FAST_FOR = "3s"
"""The e2e stack's ``for:``: the shipped rules' expressions unchanged, their production durations (minutes) cut."""


def fast_rules(directory: Path) -> Path:
    """collector-config's rules with every ``for:`` shortened, for a test that cannot wait ten minutes."""
    directory.mkdir(parents=True, exist_ok=True)
    text, count = re.subn(r"^(\s+for: )\S+$", rf"\g<1>{FAST_FOR}", RULES.read_text(), flags=re.MULTILINE)
    if not count:
        raise AssertionError(f"no `for:` found in {RULES}: the templating is out of date")
    target = directory / RULES.name
    target.write_text(text)
    return target


@contextlib.contextmanager
def running(directory: Path, workdir: Path, *, traces: bool = True) -> Iterator[Stack]:
    """Start the stack from ``directory`` with state in ``workdir``; wait until every part answers; stop after."""
    bin_dir = directory / "bin"
    ports = {name: free_port() for name in ("prom", "vmagent", "otlp_grpc", "otlp_http", "phoenix", "phoenix_grpc")}
    with_phoenix = traces and has_phoenix(directory)
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stack = Stack(
        prometheus_url=f"http://127.0.0.1:{ports['prom']}",
        otlp_http_endpoint=f"http://127.0.0.1:{ports['otlp_http']}",
        otlp_grpc_endpoint=f"http://127.0.0.1:{ports['otlp_grpc']}",
        phoenix_url=f"http://127.0.0.1:{ports['phoenix']}" if with_phoenix else None,
        logs=logs,
    )
    try:
        prom_config = workdir / "prometheus.yml"
        rules = fast_rules(workdir / "rules")
        prom_config.write_text(
            "global: {scrape_interval: 15s, evaluation_interval: 1s}\n"
            f"rule_files: [{json.dumps(str(rules))}]\n"
            "scrape_configs: []\n"
        )
        _spawn(
            stack,
            "prometheus",
            [
                str(bin_dir / "prometheus"),
                f"--config.file={prom_config}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{ports['prom']}",
                "--web.enable-remote-write-receiver",
            ],
        )
        _spawn(
            stack,
            "vmagent",
            [
                str(bin_dir / "vmagent"),
                f"-httpListenAddr=127.0.0.1:{ports['vmagent']}",
                "-opentelemetry.usePrometheusNaming",
                f"-remoteWrite.url={stack.prometheus_url}/api/v1/write",
                f"-remoteWrite.tmpDataPath={workdir / 'vmagent-data'}",
                "-remoteWrite.flushInterval=200ms",
            ],
        )
        if with_phoenix:
            _spawn(
                stack,
                "phoenix",
                [str(directory / "venv-phoenix" / "bin" / "python"), "-c", _PHOENIX_LAUNCHER],
                env={
                    **os.environ,
                    "PHOENIX_WORKING_DIR": str(workdir / "phoenix-data"),
                    "PHOENIX_HOST": "127.0.0.1",
                    "PHOENIX_PORT": str(ports["phoenix"]),
                    "PHOENIX_GRPC_PORT": str(ports["phoenix_grpc"]),
                    "PHOENIX_TELEMETRY_ENABLED": "false",
                },
            )
        traces_to = f"{stack.phoenix_url}/v1/traces" if with_phoenix else None
        rotel = [
            str(bin_dir / "rotel-agent"),
            "start",
            "--otlp-grpc-endpoint",
            f"127.0.0.1:{ports['otlp_grpc']}",
            "--otlp-http-endpoint",
            f"127.0.0.1:{ports['otlp_http']}",
            "--pid-file",
            str(workdir / "rotel.pid"),
            "--log-file",
            str(logs / "rotel-file.log"),
            "--otlp-receiver-logs-disabled",
            "--exporter",
            "otlp",
            "--otlp-exporter-protocol",
            "http",
            # rotel wants an endpoint for every signal, logs included even when disabled: a dead one, never used.
            "--otlp-exporter-endpoint",
            "http://127.0.0.1:9",
            "--otlp-exporter-metrics-endpoint",
            f"http://127.0.0.1:{ports['vmagent']}/opentelemetry/v1/metrics",
            "--batch-timeout",
            "200ms",
        ]
        if traces_to:
            rotel += ["--otlp-exporter-traces-endpoint", traces_to]
        else:
            rotel.append("--otlp-receiver-traces-disabled")
        _spawn(stack, "rotel", rotel)

        def up(name: str, check: Callable[[], bool]) -> Callable[[], bool]:
            def probe() -> bool:
                process = stack._processes[name]
                if process.poll() is not None:
                    raise AssertionError(f"{name} exited with {process.returncode}:\n{stack.log_tail()}")
                return check()

            return probe

        poll("prometheus ready", up("prometheus", lambda: _ok(stack.prometheus_url + "/-/ready")), timeout=60)
        poll("vmagent ready", up("vmagent", lambda: _ok(f"http://127.0.0.1:{ports['vmagent']}/health")), timeout=60)
        poll("rotel OTLP/HTTP port", up("rotel", lambda: _listening(ports["otlp_http"])), timeout=30)
        poll("rotel OTLP/gRPC port", up("rotel", lambda: _listening(ports["otlp_grpc"])), timeout=30)
        if with_phoenix:
            poll("phoenix ready", up("phoenix", lambda: _ok(f"{stack.phoenix_url}/healthz")), timeout=180)
        yield stack
    finally:
        stop(stack)

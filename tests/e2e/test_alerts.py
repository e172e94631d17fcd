"""collector-config's alerting rules in the real Prometheus: a throttled demo fires the throttling alert, a calm
one does not.

The stack loads the shipped rules with their ``for:`` shortened (`e2e_backends.fast_rules`) and evaluates them
every second; the expressions are the ones users deploy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import e2e_backends as backends
import pytest

ALERT = "TokenrateThrottlingSustained"


def _demo(stack: backends.Stack, service: str, *limits: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=stack.otlp_http_endpoint, OTEL_SERVICE_NAME=service, TOKENRATE_LEDGER="off")
    env["OTEL_METRIC_EXPORT_INTERVAL"] = "1000"  # a point a second: rate() has several while the counters grow
    return subprocess.Popen(
        [sys.executable, "-m", "tokenrate", "demo", "--duration", "8", "--plain", *limits],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.timeout(300)
def test_a_throttled_run_fires_the_throttling_alert_and_a_calm_one_does_not(stack):
    run = uuid.uuid4().hex[:8]
    throttled, calm = f"tokenrate-throttled-{run}", f"tokenrate-calm-{run}"
    demos = {
        throttled: _demo(stack, throttled, "--rpm", "6", "--tpm", "3000"),
        calm: _demo(stack, calm, "--rpm", "100000", "--tpm", "100000000", "--overload-rate", "0"),
    }
    for service, demo in demos.items():
        out, _ = demo.communicate(timeout=120)
        assert demo.returncode == 0, f"{service}:\n{out}\n{stack.log_tail()}"

    # The calm run's metrics arrived and the rules evaluate them: its silence below means something.
    attempts = backends.poll(
        "the calm run's recorded attempts",
        lambda: stack.query(f'service_provider_model:tokenrate_attempts:rate5m{{service_name="{calm}"}} > 0'),
        timeout=60,
    )
    assert attempts

    def firing() -> list[dict]:
        return [
            a
            for a in stack.alerts()
            if a["labels"]["alertname"] == ALERT
            and a["labels"].get("service_name") == throttled
            and a["state"] == "firing"
        ]

    alerts = backends.poll(f"{ALERT} firing for {throttled}", firing, timeout=90)
    for alert in alerts:
        assert alert["labels"]["severity"] == "warning"
        assert float(alert["value"]) > 0.10
        assert alert["annotations"]["summary"].startswith(f"{throttled}: ")
    calm_alerts = [a for a in stack.alerts() if a["labels"].get("service_name") == calm]
    assert not [a for a in calm_alerts if a["labels"]["alertname"] == ALERT], calm_alerts

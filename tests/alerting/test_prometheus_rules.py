"""collector-config's Prometheus config, alerting rules and Alertmanager config, checked by the real tools.

``promtool`` (Prometheus 2.42, Debian's package) and ``amtool`` come from `.ci/backends.sh install`. Without them
these tests skip, unless TOKENRATE_E2E_BACKENDS names the install directory (as CI does): then a missing tool
fails the run.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "collector-config"
RULES = CONFIG / "prometheus" / "rules" / "tokenrate.rules.yml"
RULE_TESTS = CONFIG / "prometheus" / "tests" / "tokenrate.rules.test.yml"
ALERTMANAGER = CONFIG / "alertmanager" / "alertmanager.yml"


def _tool(name: str) -> str:
    explicit = os.environ.get("TOKENRATE_E2E_BACKENDS")
    directory = Path(explicit) if explicit else REPO / ".e2e-backends"
    path = directory / "bin" / name
    if not os.access(path, os.X_OK):
        message = f"{name} is not installed in {directory} (run `.ci/backends.sh install`)"
        if explicit:
            pytest.fail(f"TOKENRATE_E2E_BACKENDS is set but {message}")
        pytest.skip(message)
    return str(path)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=REPO)


def test_promtool_accepts_the_prometheus_config_and_the_rule_files_it_loads():
    result = _run(_tool("promtool"), "check", "config", str(CONFIG / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Checking {RULES.relative_to(REPO)}" in result.stdout or "1 rule files found" in result.stdout


def test_promtool_checks_the_rules():
    result = _run(_tool("promtool"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_unit_tests_pass():
    result = _run(_tool("promtool"), "test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_a_broken_rule_fails_its_unit_test(tmp_path):
    """The unit tests can fail: with the throttling threshold raised past the test's 33%, they do."""
    rules_dir = tmp_path / "rules"
    tests_dir = tmp_path / "tests"
    rules_dir.mkdir()
    tests_dir.mkdir()
    rules = RULES.read_text()
    assert "ratio_rate5m > 0.10" in rules
    (rules_dir / RULES.name).write_text(rules.replace("ratio_rate5m > 0.10", "ratio_rate5m > 0.50"))
    (tests_dir / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    result = _run(_tool("promtool"), "test", "rules", str(tests_dir / RULE_TESTS.name))
    assert result.returncode != 0
    assert "TokenrateThrottlingSustained" in result.stdout + result.stderr


def test_amtool_accepts_the_alertmanager_config():
    result = _run(_tool("amtool"), "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr


def _alerts() -> list[str]:
    return re.findall(r"^\s*- alert: (\w+)$", RULES.read_text(), re.MULTILINE)


def _cases(alert: str) -> list[tuple[set[str], set[str] | None]]:
    """For each unit-test case of ``alert``: the services its test group feeds, and those expected to fire it."""
    found = []
    for group in re.split(r"\n  - name: ", RULE_TESTS.read_text())[1:]:
        services = set(re.findall(r'service_name="([^"]+)"', group.split("alert_rule_test:")[0]))
        for case in re.split(r"\n      - alertname: ", group)[1:]:
            if case.split("\n", 1)[0].strip() != alert:
                continue
            if re.search(r"exp_alerts: \[\]", case):
                found.append((services, set()))
            else:
                found.append((services, set(re.findall(r"service_name: (\S+)", case))))
    return found


def test_every_alert_has_a_unit_test_that_fires_it_and_one_that_must_not():
    alerts = _alerts()
    assert len(alerts) == 7
    for alert in alerts:
        cases = _cases(alert)
        assert any(firing for _, firing in cases), f"{alert}: no case where it fires"
        # Quiet: a case expecting no alert at all, or a service fed to a case that is not among those firing.
        assert any(services - firing for services, firing in cases), f"{alert}: no case where it must stay quiet"


def test_the_readme_documents_every_alert_and_recording_rule():
    readme = (CONFIG / "README.md").read_text()
    recorded = re.findall(r"^\s*- record: (\S+)$", RULES.read_text(), re.MULTILINE)
    for name in [*_alerts(), *recorded]:
        assert f"`{name}`" in readme, name

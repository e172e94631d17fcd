"""One rule for every TOKENRATE_* variable: unset → default; invalid → one WARNING naming it, and the default."""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tokenrate import _safety
from tokenrate._env import INTERVAL_MAX_S, INTERVAL_MIN_S, SETTINGS, setting
from tokenrate.budget import DEFAULT_THRESHOLDS

ROOT = Path(__file__).resolve().parents[2]

INVALID = [
    ("TOKENRATE_ANTHROPIC_SPANS", "bogus"),
    ("TOKENRATE_OPENAI_INJECT_STREAM_USAGE", "maybe"),
    ("TOKENRATE_SUMMARY", "2"),
    ("TOKENRATE_PUBLISH", "yes please"),
    ("TOKENRATE_PUBLISH_INTERVAL", "1e308"),
    ("TOKENRATE_PUBLISH_INTERVAL", "inf"),
    ("TOKENRATE_PUBLISH_INTERVAL", "-1"),
    ("TOKENRATE_PUBLISH_INTERVAL", "0"),
    ("TOKENRATE_PUBLISH_INTERVAL", "nan"),
    ("TOKENRATE_RUN_INTERVAL", "inf"),
    ("TOKENRATE_RUN_INTERVAL", "nan"),
    ("TOKENRATE_RUN_INTERVAL", "-1"),
    ("TOKENRATE_BUDGET_DAILY_USD", "1e400"),
    ("TOKENRATE_BUDGET_DAILY_USD", "abc"),
    ("TOKENRATE_BUDGET_MONTHLY_USD", "-5"),
    ("TOKENRATE_BUDGET_DAILY_TOKENS", "0"),
    ("TOKENRATE_BUDGET_MONTHLY_TOKENS", "nan"),
    ("TOKENRATE_BUDGET_THRESHOLDS", "75,ninety"),
    ("TOKENRATE_BUDGET_THRESHOLDS", "50,inf"),
    ("TOKENRATE_BUDGET_TZ", "Mars/Olympus_Mons"),
    ("TOKENRATE_BUDGET_ENFORCE", "sometimes"),
    ("TOKENRATE_PRICES_AUTO_UPDATE", "perhaps"),
    ("TOKENRATE_METRIC_ATTRIBUTE_LIMIT", "0"),
    ("TOKENRATE_METRIC_ATTRIBUTE_LIMIT", "lots"),
    ("TOKENRATE_METRIC_ATTRIBUTES", "user id"),
]


@pytest.fixture
def fresh_warnings():
    """Forget which env warnings were already logged, so each test sees its own."""
    with _safety._reported_lock:
        _safety._reported.difference_update({k for k in _safety._reported if k.startswith("env:")})


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and r.name == "tokenrate"]


def test_every_variable_has_a_declared_default_range_and_effect():
    for s in SETTINGS.values():
        assert s.name.startswith("TOKENRATE_")
        assert s.accepted
        assert s.effect
        assert s.default_text
    assert SETTINGS["TOKENRATE_BUDGET_THRESHOLDS"].default == DEFAULT_THRESHOLDS


@pytest.mark.parametrize(("name", "value"), INVALID)
def test_an_invalid_value_gives_one_warning_naming_variable_value_accepted_and_default(
    name, value, monkeypatch, caplog, fresh_warnings
):
    declared = SETTINGS[name]
    monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, logger="tokenrate"):
        first = setting(name)
        second = setting(name)
    assert first == declared.default
    assert second == declared.default
    warnings = _warnings(caplog)
    assert len(warnings) == 1, warnings
    text = warnings[0]
    assert name in text
    assert repr(value) in text
    assert declared.accepted in text
    assert declared.default_text in text


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_unset_or_empty_is_the_default_without_a_word(name, monkeypatch, caplog, fresh_warnings):
    monkeypatch.delenv(name, raising=False)
    with caplog.at_level(logging.DEBUG, logger="tokenrate"):
        assert setting(name) == SETTINGS[name].default
        monkeypatch.setenv(name, "  ")
        assert setting(name) == SETTINGS[name].default
    assert not _warnings(caplog)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("TOKENRATE_ANTHROPIC_SPANS", "Native", "native"),
        ("TOKENRATE_SUMMARY", "on", True),
        ("TOKENRATE_PUBLISH_INTERVAL", "0.25", 0.25),
        ("TOKENRATE_PUBLISH_INTERVAL", str(INTERVAL_MAX_S), INTERVAL_MAX_S),
        ("TOKENRATE_RUN_INTERVAL", str(INTERVAL_MIN_S), INTERVAL_MIN_S),
        ("TOKENRATE_BUDGET_DAILY_USD", "2.5", 2.5),
        ("TOKENRATE_BUDGET_THRESHOLDS", "50%, 80", (50.0, 80.0)),
        ("TOKENRATE_LEDGER", "off", None),
    ],
)
def test_valid_values_are_parsed(name, value, expected, monkeypatch, caplog, fresh_warnings):
    monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, logger="tokenrate"):
        assert setting(name) == expected
    assert not _warnings(caplog)


def test_every_tokenrate_variable_read_in_the_source_is_declared():
    read = set()
    for path in (ROOT / "src" / "tokenrate").rglob("*.py"):
        read.update(re.findall(r"""["'](TOKENRATE_[A-Z0-9_]*[A-Z0-9])["']""", path.read_text(encoding="utf-8")))
    assert read, "the scan found nothing: the pattern is wrong"
    assert read <= set(SETTINGS), f"declare these in tokenrate._env: {sorted(read - set(SETTINGS))}"


def _readme_configuration_rows() -> dict[str, list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`(TOKENRATE_[A-Z0-9_]+)`\s*\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def test_readme_configuration_table_matches_the_declared_variables():
    rows = _readme_configuration_rows()
    public = {name: s for name, s in SETTINGS.items() if s.public}
    assert set(rows) == set(public)
    for name, (default, accepted, _effect) in rows.items():
        assert default == public[name].default_text, name
        assert accepted == public[name].accepted, name


BACKGROUND_THREAD = textwrap.dedent(
    """
    import sys
    import threading
    import time
    from pathlib import Path

    import tokenrate

    tokenrate.instrument(["openai"])
    time.sleep(0.5)
    threads = [t for t in threading.enumerate() if t.name == "tokenrate-publish"]
    print("alive", len(threads), all(t.is_alive() for t in threads))
    print("published", len(list(Path(sys.argv[1]).glob("*.json"))))
    """
)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TOKENRATE_PUBLISH_INTERVAL", "1e308"),
        ("TOKENRATE_PUBLISH_INTERVAL", "inf"),
        ("TOKENRATE_PUBLISH_INTERVAL", "nan"),
        ("TOKENRATE_RUN_INTERVAL", "inf"),
        ("TOKENRATE_RUN_INTERVAL", "-1"),
    ],
)
def test_a_bad_interval_keeps_the_background_thread_alive(variable, value, tmp_path):
    env = {
        **os.environ,
        "TOKENRATE_PUBLISH": "1",
        "TOKENRATE_STATE_DIR": str(tmp_path / "state"),
        variable: value,
    }
    if variable == "TOKENRATE_RUN_INTERVAL":
        env["TOKENRATE_RUN_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", BACKGROUND_THREAD, str(tmp_path / "state")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    expected_threads = 2 if variable == "TOKENRATE_RUN_INTERVAL" else 1
    assert f"alive {expected_threads} True" in result.stdout, result.stdout + result.stderr
    warnings = [line for line in result.stderr.splitlines() if variable in line]
    assert len(warnings) == 1, result.stderr
    assert repr(value) in warnings[0]
    assert "published 1" in result.stdout, result.stdout


def test_interval_readers_never_return_something_a_timer_cannot_wait_for(monkeypatch, fresh_warnings):
    for raw in ("1e308", "inf", "-inf", "nan", "-1", "0", "1e-9", "3601"):
        monkeypatch.setenv("TOKENRATE_PUBLISH_INTERVAL", raw)
        value = setting("TOKENRATE_PUBLISH_INTERVAL")
        assert math.isfinite(value)
        assert INTERVAL_MIN_S <= value <= INTERVAL_MAX_S

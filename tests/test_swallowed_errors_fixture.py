"""The suite-wide guard itself: a test in which tokenrate swallowed an exception fails, unless it is marked."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

CONFTEST = Path(__file__).with_name("conftest.py").read_text()

PYPROJECT = """
[tool.pytest.ini_options]
asyncio_default_fixture_loop_scope = "function"
markers = ["tokenrate_errors_expected: provoked on purpose"]
"""

PROVOKING_TESTS = """
import pytest

from tokenrate._safety import report


def test_clean():
    pass


def test_swallowed():
    report("a place inside tokenrate", RuntimeError("hidden bug"))


@pytest.mark.tokenrate_errors_expected
def test_swallowed_on_purpose(swallowed_errors):
    report("a place inside tokenrate", RuntimeError("provoked"))
    assert swallowed_errors.places() == ["a place inside tokenrate"]
"""


def test_a_swallowed_exception_fails_the_test_unless_it_is_expected(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyprojecttoml(PYPROJECT)
    pytester.makepyfile(test_provoking=PROVOKING_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_swallowed *", "*a place inside tokenrate*", "*hidden bug*"]
    )

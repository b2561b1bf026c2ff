"""The suite's own rules, from tests/conftest.py, run on a tiny suite (pytester, in this
process): with a time limit (tools/test.sh --fast) a test outside the slow tier over it fails
(its setup too) and a slow test may take its time; without one nothing is timed; the real
evaluation data, when missing, skips on a user's machine and fails under CI."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
# What the child must not inherit from this run: it sets its own.
GUARD_ENVIRONMENT = ("CI", "VSDAIN_TEST_TIME_LIMIT", "PYTEST_ADDOPTS")

TINY_SUITE = """
import time

import pytest


def test_quick():
    assert True


def test_over_the_limit():
    time.sleep(0.6)


@pytest.fixture
def slow_setup():
    time.sleep(0.6)


def test_with_a_slow_setup(slow_setup):
    assert True


@pytest.mark.slow
def test_slow_but_marked():
    time.sleep(0.6)


def test_needs_the_data(shared_data):
    assert shared_data.is_dir()
"""


def run_tiny_suite(pytester, **environment: str) -> tuple[dict[str, str], str]:
    """Outcome (passed, failed, error, skipped) of each test of TINY_SUITE and pytest's
    output, run in this process with this suite's conftest and settings, in a checkout of its
    own that has no ../shared/data beside it. The environment is set for that run only: this
    test's own guard reads it too."""
    checkout = pytester.path / "checkout"
    (checkout / "tests").mkdir(parents=True)
    shutil.copy(TESTS / "conftest.py", checkout / "tests" / "conftest.py")
    shutil.copy(REPO / "pyproject.toml", checkout / "pyproject.toml")
    (checkout / "tests" / "test_tiny.py").write_text(TINY_SUITE)
    junit = pytester.path / "junit.xml"
    with pytest.MonkeyPatch.context() as patch:
        for key in GUARD_ENVIRONMENT:
            patch.delenv(key, raising=False)
        for key, value in environment.items():
            patch.setenv(key, value)
        result = pytester.runpytest_inprocess(
            "-p", "no:cacheprovider", f"--rootdir={checkout}", f"--junitxml={junit}",
            checkout / "tests",
        )  # fmt: skip
    output = result.stdout.str()
    assert junit.exists(), output
    outcomes = {}
    for case in ElementTree.parse(junit).iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name")] = kinds[0] if kinds else "passed"
    return outcomes, output


def test_with_a_limit_the_guard_fails_slow_tests_and_under_ci_missing_data_fails(pytester):
    outcomes, output = run_tiny_suite(pytester, CI="1", VSDAIN_TEST_TIME_LIMIT="0.5")
    assert outcomes == {
        "test_quick": "passed",
        "test_over_the_limit": "failure",
        "test_with_a_slow_setup": "error",  # the guard reports a setup's overrun as an error
        "test_slow_but_marked": "passed",
        "test_needs_the_data": "error",  # failed in its fixture
    }
    assert re.search(r"test_over_the_limit: its call took 0\.\d s, more than the 0.5 s", output)
    assert re.search(r"test_with_a_slow_setup: its setup took 0\.\d s", output)
    assert "the real evaluation data is missing" in output


def test_without_a_limit_nothing_is_timed_and_missing_data_skips(pytester):
    outcomes, output = run_tiny_suite(pytester)
    assert outcomes == {
        "test_quick": "passed",
        "test_over_the_limit": "passed",
        "test_with_a_slow_setup": "passed",
        "test_slow_but_marked": "passed",
        "test_needs_the_data": "skipped",
    }
    assert "real evaluation data not present" in output


@pytest.mark.parametrize("value", ["soon", "-"])
def test_a_bad_time_limit_stops_the_run(pytester, value):
    shutil.copy(TESTS / "conftest.py", pytester.path / "conftest.py")
    pytester.makepyfile(test_tiny="def test_quick():\n    pass\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VSDAIN_TEST_TIME_LIMIT", value)
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # no test ran
    assert "VSDAIN_TEST_TIME_LIMIT must be a number of seconds" in result.stderr.str()


def test_ci_alone_sets_no_limit(pytester):
    outcomes, _ = run_tiny_suite(pytester, CI="1")
    assert outcomes["test_over_the_limit"] == outcomes["test_with_a_slow_setup"] == "passed"
    assert outcomes["test_needs_the_data"] == "error"

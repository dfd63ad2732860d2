"""The CI rule of tests/conftest.py: under CI a skipped test fails the run, unless allowlisted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import in_ci, skip_refused_in_ci

ROOT = Path(__file__).parents[1]


@pytest.mark.parametrize(("value", "expected"), [
    ("1", True), ("true", True), ("TRUE", True), ("yes", True), (" true ", True),
    ("", False), ("0", False), ("false", False), ("no", False), ("t", False),
])
def test_one_reading_of_the_ci_variable(monkeypatch: pytest.MonkeyPatch, value: str, expected: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def _report(nodeid: str, outcome: str, **extra: object) -> pytest.TestReport:
    report = pytest.TestReport(nodeid, ("f.py", 1, "t"), {}, outcome, ("f.py", 1, "Skipped: why"), "call")
    for name, value in extra.items():
        setattr(report, name, value)
    return report


def test_skips_are_refused_except_allowlisted_ones_and_xfails() -> None:
    assert skip_refused_in_ci(_report("tests/a.py::t", "skipped"), allowed={})
    assert not skip_refused_in_ci(_report("tests/a.py::t", "skipped"), allowed={"tests/a.py": "why"})
    assert not skip_refused_in_ci(_report("tests/a.py::t", "skipped", wasxfail=""), allowed={})
    assert not skip_refused_in_ci(_report("tests/a.py::t", "passed"), allowed={})


def test_a_run_with_a_skip_fails_under_ci_and_passes_outside(tmp_path: Path) -> None:
    (tmp_path / "test_skipping.py").write_text(
        "import pytest\n\n"
        "def test_needs_a_missing_tool():\n"
        "    pytest.skip('tool not installed')\n"
    )
    path = os.pathsep.join([str(ROOT / "platform"), str(ROOT), str(ROOT / "tests")])
    env = {**os.environ, "PYTHONPATH": path}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
               "--rootdir", str(tmp_path), str(tmp_path / "test_skipping.py")]
    in_ci_run = subprocess.run(command, capture_output=True, text=True, env={**env, "CI": "true"},
                               cwd=tmp_path)
    assert in_ci_run.returncode == 1, in_ci_run.stdout
    assert "skipped under CI" in in_ci_run.stdout and "tool not installed" in in_ci_run.stdout
    local = subprocess.run(command, capture_output=True, text=True, env={**env, "CI": ""}, cwd=tmp_path)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout

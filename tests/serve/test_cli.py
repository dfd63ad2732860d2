"""Every command the README names has a working --help, and bad arguments get clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

COMMANDS = [
    ["live.cli", "serve"], ["live.cli", "demo"], ["live.cli", "transcode"],
    ["live.cli", "ledger", "check"], ["live.cli", "payouts", "run"], ["live.cli", "payments-sandbox"],
    ["twin.cli", "run"], ["twin.cli", "compare"], ["twin.cli", "calibrate"], ["twin.cli", "validate"],
    ["loadgen.cli", "publish"], ["loadgen.cli", "probe"], ["loadgen.cli", "locust"], ["loadgen.cli", "run"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_has_help(command: list[str]) -> None:
    run = subprocess.run([sys.executable, "-m", *command, "--help"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "usage:" in run.stdout and len(run.stdout) > 200


def test_a_malformed_channel_seed_names_the_rule() -> None:
    run = subprocess.run([sys.executable, "-m", "live.cli", "serve", "--channel", "Bad Name=k"],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert "NAME=KEY" in run.stderr and "Traceback" not in run.stderr


def test_loadgen_refuses_a_bad_size() -> None:
    run = subprocess.run([sys.executable, "-m", "loadgen.cli", "publish", "rtmp://x/live/k",
                          "--duration", "1", "--size", "big"], capture_output=True, text=True)
    assert run.returncode == 2 and "WIDTHxHEIGHT" in run.stderr


def test_loadgen_run_refuses_a_scenario_without_a_real_section(tmp_path: Path) -> None:
    scenarios = Path(__file__).parents[2] / "scenarios"
    run = subprocess.run([sys.executable, "-m", "loadgen.cli", "run", str(scenarios / "peak-100m.yaml"),
                          "--out", str(tmp_path / "run")], capture_output=True, text=True)
    assert run.returncode == 2 and "has no real: section" in run.stderr and "Traceback" not in run.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nreal: {duration_s: 5}\n")
    run = subprocess.run([sys.executable, "-m", "loadgen.cli", "run", str(bad)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "bad.yaml:" in run.stderr and "Traceback" not in run.stderr

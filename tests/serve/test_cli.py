"""Every command the README names has a working --help, and bad arguments get clear errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = [
    ["live.cli", "serve"], ["live.cli", "demo"], ["live.cli", "transcode"],
    ["twin.cli", "run"], ["twin.cli", "compare"],
    ["loadgen.cli", "publish"], ["loadgen.cli", "probe"], ["loadgen.cli", "locust"],
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

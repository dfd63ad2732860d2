"""`live serve`'s seeded stream keys: long enough outside --dev, readable from a file or the
environment (so they stay out of ``ps``), and never printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from live.config import (
    CHANNELS_ENV,
    ChannelSeed,
    check_seed_keys,
    seeds_from_environment,
    seeds_from_file,
)

LONG_KEY = "a_long_enough_key_2718"


def live(*args: str, env: dict[str, str] | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "live.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def test_a_short_seeded_key_is_refused_unless_dev() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        check_seed_keys((ChannelSeed.parse("demo=demo_key_123"),), dev=False)
    check_seed_keys((ChannelSeed.parse("demo=demo_key_123"),), dev=True)
    check_seed_keys((ChannelSeed.parse(f"demo={LONG_KEY}"),), dev=False)


def test_live_serve_refuses_a_short_key_without_dev_and_does_not_echo_it(tmp_path: Path) -> None:
    run = live("serve", "--channel", "demo=demo_key_123", "--data", str(tmp_path), "--duration", "0")
    assert run.returncode == 2 and "at least 16" in run.stderr and "Traceback" not in run.stderr
    assert "demo_key_123" not in run.stderr


def test_keys_come_from_a_file_or_the_environment(tmp_path: Path) -> None:
    keyfile = tmp_path / "demo.key"
    keyfile.write_text(LONG_KEY + "\n")
    seed = ChannelSeed.parse(f"demo=@{keyfile}")
    assert (seed.name, seed.stream_key, seed.source) == ("demo", LONG_KEY, f"file {keyfile}")
    listing = tmp_path / "channels"
    listing.write_text(f"# seeds\nalpha={LONG_KEY}1\n\nbravo=@{keyfile}\n")
    assert [(s.name, s.stream_key) for s in seeds_from_file(listing)] == [
        ("alpha", LONG_KEY + "1"), ("bravo", LONG_KEY)]
    env = seeds_from_environment({CHANNELS_ENV: f"one={LONG_KEY}a, two={LONG_KEY}b"})
    assert [(s.name, s.stream_key) for s in env] == [("one", LONG_KEY + "a"), ("two", LONG_KEY + "b")]
    assert env[0].source == f"the environment ({CHANNELS_ENV})"
    with pytest.raises(ValueError, match="cannot read the key file"):
        ChannelSeed.parse(f"demo=@{tmp_path / 'missing'}")


def test_live_serve_prints_where_each_key_came_from_never_the_key(tmp_path: Path) -> None:
    keyfile = tmp_path / "file.key"
    keyfile.write_text(LONG_KEY + "f\n")
    run = live("serve", "--rtmp-port", "0", "--http-port", "0", "--chat-port", "0",
               "--data", str(tmp_path / "data"), "--duration", "0.5",
               "--channel", f"fromcli={LONG_KEY}c", "--channel", f"fromfile=@{keyfile}",
               env={CHANNELS_ENV: f"fromenv={LONG_KEY}e"})
    assert run.returncode == 0, run.stderr
    assert LONG_KEY not in run.stdout + run.stderr
    assert "(channel fromcli)" in run.stdout and "key from the command line" in run.stdout
    assert f"key from file {keyfile}" in run.stdout and f"({CHANNELS_ENV})" in run.stdout

"""Fixtures of the chaos suite: private servers to kill, and the rights links need.

Every chaos test is `slow` and runs in CI (it needs root for namespaces and the TUN wire,
nats-server and PostgreSQL's initdb, all on the CI machine); a missing piece skips here, which
tests/conftest.py turns into a failure under CI. Private servers only: the machine's shared
NATS and PostgreSQL are never signalled.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadgen.faults import netns
from loadgen.faults.services import PrivateNats, PrivatePostgres


@pytest.fixture
def needs_root() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None or not os.path.exists("/dev/net/tun"):
        pytest.skip("network faults need root, iproute2 and /dev/net/tun")
    netns.remove_leftovers()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[PrivateNats]:
    if shutil.which("nats-server") is None and not os.path.exists("/usr/sbin/nats-server"):
        pytest.skip("needs nats-server (Debian's nats-server)")
    server = PrivateNats(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    try:
        server = PrivatePostgres()
    except Exception as error:  # no initdb, or it refused
        pytest.skip(f"needs a private PostgreSQL cluster: {error}")
    try:
        server.start()
        yield server
    finally:
        server.close()

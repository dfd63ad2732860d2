"""Fixtures and helpers of the chaos suite: a scratch directory, private servers to kill, links to impair.

Every chaos test is `slow` and runs in CI (it needs root for namespaces and the TUN wire,
nats-server and PostgreSQL's initdb, all on the CI machine). Private servers only: the
machine's shared NATS and PostgreSQL are never signalled.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadgen.faults import netns
from loadgen.faults.services import PrivateNats, PrivatePostgres

from ..conftest import skip_or_fail

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def child_env() -> dict[str, str]:
    """The environment for children: this checkout's packages first."""
    path = os.pathsep.join([str(ROOT / "platform"), str(ROOT)])
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def needs_root() -> None:
    if os.geteuid() != 0 or shutil.which("ip") is None or not os.path.exists("/dev/net/tun"):
        skip_or_fail("network faults need root, iproute2 and /dev/net/tun")
    netns.remove_leftovers()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[PrivateNats]:
    if shutil.which("nats-server") is None and not os.path.exists("/usr/sbin/nats-server"):
        skip_or_fail("needs nats-server (Debian's nats-server)")
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
        skip_or_fail(f"needs a private PostgreSQL cluster: {error}")
        raise
    try:
        server.start()
        yield server
    finally:
        server.close()

"""Locust LL-HLS viewers given both edges of a real tier: kill -9 one edge's nginx and its
viewers move to the other and get media again within 2 s (the issue's Locust proof; the
asyncio fleet's version is in test_cdn_viewers.py)."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from loadgen.locustfiles.settings import LocustSettings

from .conftest import live_tier

pytestmark = pytest.mark.slow

LOCUSTFILES = Path(__file__).resolve().parents[2] / "loadgen" / "locustfiles"
LOCUST = Path(sys.executable).with_name("locust")
USERS = 10  # users start on the edges in turn: half of them on the edge that dies
RUN_S = 18
RESUME_BOUND_S = 2.0


def _events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


async def test_locust_viewers_of_a_killed_edge_fail_over_and_resume_within_two_seconds(
        tmp_path: Path) -> None:
    log, prefix = tmp_path / "events.jsonl", tmp_path / "run"
    async with live_tier(tmp_path) as live:
        dead, alive = live.cluster.node("edge0").url, live.cluster.node("edge1").url
        settings = LocustSettings(master_path="/hls/alpha/master.m3u8", session_s=2 * RUN_S,
                                  event_log=str(log), edges=(dead, alive))
        locust = await asyncio.create_subprocess_exec(
            str(LOCUST), "-f", f"{LOCUSTFILES / 'llhls_viewer.py'},{LOCUSTFILES / 'event_log.py'}",
            "--headless", "-u", str(USERS), "-r", str(USERS), "-t", f"{RUN_S}s", "--host", dead,
            "--csv", str(prefix), "--stop-timeout", "3", "--only-summary",
            env={**os.environ, **settings.to_environ()},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 12
            while (sum(e["type"] == "STARTUP" for e in _events(log)) < USERS
                   and time.monotonic() < deadline and locust.returncode is None):
                await asyncio.sleep(0.25)
            await asyncio.sleep(2)  # every viewer past its join, holding blocking reloads
            killed_at = time.time()
            live.cluster.kill("edge0")
            out, _ = await asyncio.wait_for(locust.communicate(), RUN_S + 30)
        finally:
            if locust.returncode is None:
                locust.kill()
                await locust.wait()
    text = out.decode(errors="replace")
    events = _events(log)
    started = sum(e["type"] == "STARTUP" for e in events if e["t"] < killed_at)
    moves = [e for e in events if e["type"] == "FAILOVER"]
    resumed = [e for e in events if e["type"] == "RESUMED"]
    gaps = sorted(e["t"] - killed_at for e in resumed)
    print(f"locust failover: {started} viewers playing at the kill, {len(moves)} moved, resumed "
          f"{len(resumed)}, media again after the kill: max {max(gaps, default=-1):.3f} s")
    assert started == USERS, text[-3000:]
    assert len(moves) == USERS // 2, moves  # each viewer of the dead edge, once
    assert all(m["context"]["from"] == dead and m["context"]["to"] == alive for m in moves)
    assert all(m["t"] >= killed_at for m in moves)
    assert len(resumed) == len(moves)
    assert gaps[-1] <= RESUME_BOUND_S
    failures = _rows(Path(f"{prefix}_failures.csv"))
    # the attempts that met the dead edge failed, and nothing else did
    assert failures and all(dead in row["Error"] for row in failures), failures
    assert _rows(Path(f"{prefix}_exceptions.csv")) == []

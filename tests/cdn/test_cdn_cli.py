"""`live cdn` as a command: prints one line per node, serves metrics, stops its nginx on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

import aiohttp

from .conftest import require_nginx


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_live_cdn_runs_the_tier_in_the_foreground_and_stops_it_on_sigterm(tmp_path: Path) -> None:
    require_nginx()
    base = random.randrange(20_000, 60_000)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "live.cli", "cdn", "--origin", "http://127.0.0.1:9", "--shields", "1",
        "--edges", "2", "--base-port", str(base), "--metrics-port", str(base + 10),
        "--data", str(tmp_path), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=env)
    try:
        assert process.stdout is not None
        lines = [(await asyncio.wait_for(process.stdout.readline(), 20)).decode().strip()
                 for _ in range(4)]
        assert lines == [f"shield http://127.0.0.1:{base}", f"edge http://127.0.0.1:{base + 1}",
                         f"edge http://127.0.0.1:{base + 2}",
                         f"metrics http://127.0.0.1:{base + 10}/metrics"], lines
        async with aiohttp.ClientSession() as http, \
                http.get(f"http://127.0.0.1:{base + 10}/metrics") as response:
            text = await response.text()
        assert 'livetwin_cdn_up{node="edge1",role="edge"} 1' in text
        masters = [int((tmp_path / node / "nginx.pid").read_text()) for node in ("shield0", "edge0", "edge1")]
        assert all(alive(pid) for pid in masters)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
        assert not any(alive(pid) for pid in masters)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

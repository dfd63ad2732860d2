"""Locust LL-HLS viewers run headless against a real platform fed by Debian ffmpeg."""

from __future__ import annotations

import asyncio
import csv
import shutil
import sys
from pathlib import Path

import aiohttp
import pytest
from live.config import ChannelSeed, ServeSettings
from live.serve import Platform

pytestmark = [pytest.mark.slow]

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadgen" / "locustfiles" / "llhls_viewer.py"
LOCUST = Path(sys.executable).with_name("locust")


def _publisher(rtmp_port: int) -> list[str]:
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", "25", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k",
        "-f", "flv", f"rtmp://127.0.0.1:{rtmp_port}/live/demo_key_123",
    ]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.timeout(60)
async def test_locust_viewers_fetch_parts_without_failures_and_report_startup_and_latency(
        tmp_path: Path) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs Debian's ffmpeg")
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path / "data",
                             channels=(ChannelSeed("demo", "demo_key_123"),))
    async with Platform(settings) as platform:
        host = f"http://127.0.0.1:{platform.ports.http}"
        publisher = await asyncio.create_subprocess_exec(
            *_publisher(platform.ports.rtmp),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        try:
            async with aiohttp.ClientSession() as http, asyncio.timeout(20):
                while True:
                    async with http.get(f"{host}/hls/demo/master.m3u8") as resp:
                        if resp.status == 200:
                            break
                    await asyncio.sleep(0.25)
            prefix = tmp_path / "run"
            locust = await asyncio.create_subprocess_exec(
                str(LOCUST), "-f", str(LOCUSTFILE), "--headless", "-u", "5", "-r", "5", "-t", "12s",
                "--csv", str(prefix), "--host", host, "--stop-timeout", "3", "--only-summary",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await asyncio.wait_for(locust.communicate(), 40)
        finally:
            if publisher.returncode is None:
                publisher.kill()
            await publisher.wait()
    log = out.decode(errors="replace")
    assert locust.returncode == 0, log[-3000:]
    stats = {(r["Type"], r["Name"]): r for r in _rows(Path(f"{prefix}_stats.csv"))}
    parts = [r for (kind, name), r in stats.items() if kind == "GET" and name in ("part", "preload-hint")]
    assert parts and sum(int(r["Request Count"]) for r in parts) > 0, stats.keys()
    assert all(int(r["Failure Count"]) == 0 for r in parts), parts
    kinds = {kind for kind, _ in stats}
    assert "STARTUP" in kinds and "PDT_LATENCY" in kinds, (stats.keys(), log[-2000:])
    assert _rows(Path(f"{prefix}_exceptions.csv")) == []
    assert _rows(Path(f"{prefix}_failures.csv")) == []

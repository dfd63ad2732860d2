"""Glass to glass through the whole platform: publisher -> RTMP -> transcode -> package -> origin -> probe."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from live.config import ChannelSeed, ServeSettings
from live.selftest.probe import DecodedFrame, probe
from live.selftest.publisher import publish
from live.serve import Platform

pytestmark = pytest.mark.slow

PUBLISH_S = 14


async def wait_for_rendition(base: str, rendition: str, timeout: float) -> None:
    async with asyncio.timeout(timeout), aiohttp.ClientSession() as http:
        while True:
            async with http.get(f"{base}/hls/demo/master.m3u8") as response:
                if response.status == 200 and f"{rendition}.m3u8" in await response.text():
                    return
            await asyncio.sleep(0.2)


async def test_probe_reads_the_publishers_clock_through_the_live_platform(tmp_path: Path) -> None:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path,
                             channels=(ChannelSeed("demo", "demo_key_123"),))
    async with Platform(settings) as platform:
        base = f"http://127.0.0.1:{platform.ports.http}"
        publisher = asyncio.create_task(publish(
            f"rtmp://127.0.0.1:{platform.ports.rtmp}/live/demo_key_123",
            width=640, height=360, fps=30, bitrate_kbps=800, duration_s=PUBLISH_S))
        try:
            await wait_for_rendition(base, "160p30", 30)
            seen: list[DecodedFrame] = []
            report = await probe(f"{base}/hls/demo/master.m3u8", 6, rendition="160p30",
                                 on_frame=seen.append)
        finally:
            stats = await publisher
    print(report.summary())
    assert stats.video_frames == PUBLISH_S * 30
    assert report.frames >= 30 and report.decode_errors == 0
    # the 160p rendition is a downscale and a re-encode at a low bitrate: every code still reads
    assert report.unreadable_frames == 0
    assert report.parts > 0 and report.hinted_parts > 0  # it played LL-HLS parts, hints included
    painted = [f.painted_ms for f in seen]
    assert painted == sorted(painted)  # no frame twice, none out of order
    assert stats.first_capture_ms is not None and stats.last_capture_ms is not None
    assert all(stats.first_capture_ms <= ms <= stats.last_capture_ms for ms in painted if ms is not None)
    assert report.latency_ms is not None and report.latency_ms.min > 0  # causality on one clock
    assert report.pdt_latency_ms is not None

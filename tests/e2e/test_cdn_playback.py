"""End to end through the CDN: hls.js in Chromium plays a live channel through origin -> nginx
shield -> nginx edge for a minute without stalling, and its latency readout stays within 150 ms
of a second Chromium playing the same channel straight from the origin at the same time.

The platform runs with ``public_hls_url`` = the edge, so its own viewer page sends the player
to the CDN; the direct player gets the same page from a second web app pointed at the origin.
Both play at once, so the comparison sees the same machine load.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from live.cdn.config import Role, Upstream
from live.cdn.launcher import CdnCluster, CdnError, ClusterSettings, plan
from live.config import ChannelSeed, ServeSettings
from live.serve import Platform
from live.webui import setup_web

from .test_browser_playback import (
    CHANNEL,
    STREAM_KEY,
    _check_prerequisites,
    _events,
    _play,
    _publisher_args,
    _stop,
    _wait_for_master,
)

pytestmark = [pytest.mark.slow, pytest.mark.ffmpeg]

PLAY_S = 60
LATENCY_BAND_S = 0.150
WARM_UP_S = 8


def _tier_settings(data_dir: Path, origin: str) -> ClusterSettings:
    return ClusterSettings(origins=(Upstream.parse(origin),), data_dir=data_dir, shields=1,
                           edges=1, base_port=random.randrange(20_000, 60_000), cache_size="256m")


def _summary(out: bytes, err: bytes) -> tuple[dict[str, Any], list[float], str]:
    events = _events(out)
    log = err.decode(errors="replace")[-3000:]
    done = next((e for e in events if e["event"] == "done"), None)
    assert done is not None, f"the player script reported nothing; stderr:\n{log}"
    assert done["ok"], f"{done.get('reason')}; stats {done.get('stats')}; stderr:\n{log}"
    assert not [e for e in events if e["event"] == "pageerror"], log
    started = next(e["stats"] for e in events if e["event"] == "started")
    final = done["stats"]
    final["played_s"] = final["currentTime"] - started["currentTime"]
    latencies = [e["stats"]["latency"] for e in events
                 if e["event"] == "sample" and e["stats"]["latency"] is not None]
    return final, latencies, log


@pytest.mark.timeout(240)
async def test_hls_js_plays_through_shield_and_edge_as_close_to_live_as_the_origin(
        tmp_path: Path) -> None:
    _check_prerequisites()
    # the edge's address must be known before the platform starts (it hands it out)
    for _ in range(20):
        tier = _tier_settings(tmp_path / "cdn", "http://127.0.0.1:9")
        edge_url = next(n.url for n in plan(tier) if n.role is Role.EDGE)
        settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path,
                                 channels=(ChannelSeed(CHANNEL, STREAM_KEY),),
                                 public_hls_url=edge_url)
        async with Platform(settings) as platform:
            origin = f"http://127.0.0.1:{platform.ports.http}"
            cluster = CdnCluster(replace(tier, origins=(Upstream.parse(origin),)))
            try:
                await cluster.start()
            except CdnError as exc:
                if "taken" in str(exc):
                    continue
                raise
            try:
                await _play_both(platform, origin, edge_url, cluster)
            finally:
                await cluster.stop()
            return
    pytest.fail("no free ports for the tier")


def _edge_anomalies(cluster: CdnCluster) -> list[str]:
    """Edge log lines worth a look when playback disappoints: errors and slow answers."""
    log = cluster.nodes[-1].plan.directory / "access.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines
            if line.split("\t")[1] != "200" or float(line.split("\t")[6]) > 1.0][:30]


async def _play_both(platform: Platform, origin: str, edge: str, cluster: CdnCluster) -> None:
    direct_app = web.Application()
    setup_web(direct_app, platform.streams, hls_base=origin)
    runner = web.AppRunner(direct_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    direct_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    publisher = await asyncio.create_subprocess_exec(
        *_publisher_args(platform.ports.rtmp),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        async with aiohttp.ClientSession() as http:
            await _wait_for_master(http, f"{edge}/hls/{CHANNEL}/master.m3u8", 30)
            async with http.get(f"{origin}/watch/{CHANNEL}") as page:
                assert f"{edge}/hls/{CHANNEL}/master.m3u8" in await page.text()
        # join a running stream, not one whose transcoder and ladder are still starting: the
        # comparison is about the tier, not about two players' luck in the first seconds
        await asyncio.sleep(WARM_UP_S)
        (cdn_out, cdn_err), (direct_out, direct_err) = await asyncio.gather(
            _play(f"{origin}/watch/{CHANNEL}", PLAY_S),
            _play(f"http://127.0.0.1:{direct_port}/watch/{CHANNEL}", PLAY_S))
    finally:
        await _stop(publisher)
        await runner.cleanup()

    for name, out in (("cdn", cdn_out), ("direct", direct_out)):  # kept for a post-mortem
        (cluster.settings.data_dir / f"{name}-player.jsonl").write_bytes(out)
    cdn, cdn_latency, cdn_log = _summary(cdn_out, cdn_err)
    direct, direct_latency, _ = _summary(direct_out, direct_err)
    report = {
        name: {"latency_p50_s": round(statistics.median(lat), 3) if lat else None,
               "latency_max_s": round(max(lat), 3) if lat else None,
               "stalls": final["stalls"], "fatal_errors": final["fatalErrors"],
               "played_s": round(final["played_s"], 2), "loads": final["loads"]}
        for name, final, lat in (("cdn", cdn, cdn_latency), ("direct", direct, direct_latency))
    }
    print("cdn playback:", json.dumps(report))
    await asyncio.sleep(1.2)  # the edge's access log flushes every second
    diagnostics = (f"{report}\ncdn latency every 5 s {cdn_latency[::5]}\n"
                   f"direct latency every 5 s {direct_latency[::5]}\ncdn errors {cdn['errorLog']}\n"
                   f"slow loads {cdn['slowLoads']}\nedge errors and slow answers "
                   f"{_edge_anomalies(cluster)}\n{cdn_log}")
    assert cdn["engine"] == "hls.js"
    assert cdn["fatalErrors"] == 0, diagnostics
    assert cdn["played_s"] >= PLAY_S - 5, diagnostics
    assert len(cdn_latency) >= PLAY_S - 5 and len(direct_latency) >= PLAY_S - 5, diagnostics
    assert cdn["stalls"] == 0 and cdn["bufferStalledErrors"] == 0, diagnostics
    gap = statistics.median(cdn_latency) - statistics.median(direct_latency)
    assert abs(gap) <= LATENCY_BAND_S, diagnostics

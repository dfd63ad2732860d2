"""A Locust LL-HLS viewer on a bounded link switches renditions against the real platform.

One viewer, link 4000 -> 500 -> 4000 kbit/s, watching a 640x360 publish that the platform turns
into a full ladder (160p30, 360p30, source passthrough). At 500 kbit/s only 160p30 fits, so the
viewer must fall below the top rung's bitrate and climb back once the link recovers (4000, not
3000: the platform raises the source rung's BANDWIDTH to its measured ~1.7 Mbit/s a few seconds
in, and a step up needs 0.7 x the estimate above it).
The EWMA half-lives are shortened (1 s / 2 s of transfer time instead of hls.js's 3 s / 9 s) so
the climb back, which at the defaults takes about a minute with 1/3 s parts, fits the run.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import shutil
import sys
from pathlib import Path

import aiohttp
import pytest
from live.config import ChannelSeed, ServeSettings
from live.selftest import hls_client as hls
from live.serve import Platform

pytestmark = [pytest.mark.slow]

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadgen" / "locustfiles" / "llhls_viewer.py"
EVENT_LOG = Path(__file__).parents[2] / "loadgen" / "locustfiles" / "event_log.py"
LOCUST = Path(sys.executable).with_name("locust")
# 0.2 s parts: each transfer is a shorter ABR sample, so the climb back takes longer
LOW_FROM_S, HIGH_FROM_S, RUN_S = 12, 27, 100
SCHEDULE = f"4000@0,500@{LOW_FROM_S},4000@{HIGH_FROM_S}"


def _publisher(rtmp_port: int) -> list[str]:
    return [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=size=640x360:rate=30",
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=48000",
        "-t",
        str(RUN_S + 30),
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
        "-g",
        "30",
        "-b:v",
        "1500k",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-f",
        "flv",
        f"rtmp://127.0.0.1:{rtmp_port}/live/demo_key_123",
    ]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


async def _ladder(host: str) -> list[hls.Variant]:
    """Wait until the multivariant lists every rung (the transcoder has produced them all)."""
    url = f"{host}/hls/demo/master.m3u8"
    async with aiohttp.ClientSession() as http, asyncio.timeout(30):
        while True:
            async with http.get(url) as resp:
                if resp.status == 200:
                    variants = hls.parse_multivariant(await resp.text(), url)
                    if len(variants) >= 3:
                        return sorted(variants, key=lambda v: v.bandwidth)
            await asyncio.sleep(0.25)


@pytest.mark.timeout(150)
async def test_viewer_on_a_falling_then_recovering_link_switches_down_below_the_top_and_back_up(
    tmp_path: Path,
) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs Debian's ffmpeg")
    settings = ServeSettings(
        rtmp_port=0,
        http_port=0,
        chat_port=0,
        data_dir=tmp_path / "data",
        channels=(ChannelSeed("demo", "demo_key_123"),),
    )
    async with Platform(settings) as platform:
        host = f"http://127.0.0.1:{platform.ports.http}"
        publisher = await asyncio.create_subprocess_exec(
            *_publisher(platform.ports.rtmp),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            ladder = await _ladder(host)
            prefix, events_path = tmp_path / "run", tmp_path / "events.jsonl"
            env = os.environ | {
                "LIVETWIN_VIEWER_SESSION_S": str(RUN_S + 60),
                "LIVETWIN_EVENT_LOG": str(events_path),
            }
            args = ["-f", f"{LOCUSTFILE},{EVENT_LOG}", "--headless", "-u", "1", "-r", "1",
                    "-t", f"{RUN_S}s", "--csv", str(prefix), "--host", host, "--stop-timeout", "5",
                    "--only-summary", "--viewer-link-kbps", SCHEDULE,
                    "--viewer-abr-ewma-fast", "1", "--viewer-abr-ewma-slow", "2"]  # fmt: skip
            locust = await asyncio.create_subprocess_exec(
                str(LOCUST),
                *args,
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            out, _ = await asyncio.wait_for(locust.communicate(), RUN_S + 40)
        finally:
            if publisher.returncode is None:
                publisher.kill()
            await publisher.wait()
    log = out.decode(errors="replace")
    assert locust.returncode == 0, log[-3000:]
    assert events_path.exists(), f"no player events logged: {log[-3000:]}"
    events = [json.loads(line) for line in events_path.read_text().splitlines()]
    switches = [
        (e["context"]["t_s"], e["context"]["from"], e["context"]["to"]) for e in events if e["type"] == "ABR"
    ]
    bandwidth = {v.name: v.bandwidth for v in ladder}
    top = ladder[-1].name
    spent: dict[str, float] = {}
    for e in events:
        if e["type"] == "RENDITION_TIME":
            spent[e["name"]] = spent.get(e["name"], 0.0) + e["value_ms"] / 1000
    stalled_s = sum(e["value_ms"] for e in events if e["type"] == "REBUFFER") / 1000
    seen = f"switches (t_s, from, to): {switches}; seconds per rendition: {spent}; stalled {stalled_s:.1f} s"
    print(seen)

    down = next((t for t, _, to in switches if t >= LOW_FROM_S and bandwidth[to] < bandwidth[top]), None)
    assert down is not None, (seen, log[-2000:])
    up = next((t for t, _, to in switches if t >= max(HIGH_FROM_S, down) and to == top), None)
    assert up is not None, (seen, log[-2000:])
    assert spent.get(top, 0.0) > 5 and sum(v for k, v in spent.items() if k != top) > 5, seen
    # the stalls are the few seconds between the link falling and the switch down
    assert stalled_s < 12, seen
    assert _rows(Path(f"{prefix}_exceptions.csv")) == []

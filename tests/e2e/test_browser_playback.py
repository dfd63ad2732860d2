"""End to end: ffmpeg publishes over RTMP, the real platform serves LL-HLS, hls.js plays it in
headless Debian Chromium (driven by playwright-core through ``play_hls.cjs``) for a minute.

The reference player is the one the design names: hls.js in Chromium. ffprobe then reads the
same multivariant URL, as the non-browser (VLC/ffplay-class) client. Needs Chromium
(``apt-get install chromium``), Node 20 and ``npm ci --prefix platform/web``; locally a missing
one skips, in CI (``CI`` set) it fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import statistics
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from live.config import ChannelSeed, ServeSettings
from live.serve import Platform
from live.webui import HLS_JS_PATH, default_web_root

from ..conftest import in_ci

pytestmark = [pytest.mark.slow, pytest.mark.ffmpeg]

CHROMIUM = Path(os.environ.get("LIVETWIN_CHROMIUM", "/usr/bin/chromium"))
PLAY_SCRIPT = Path(__file__).with_name("play_hls.cjs")
WEB_ROOT = default_web_root()
CHANNEL, STREAM_KEY = "demo", "demo_key_123"
PLAY_S = 60
NATIVE_PLAY_S = 8
PUBLISH_S = 100  # outlives both players and the ffprobe pass; terminated as soon as they are done
#: "Within a few seconds of live": hls.latency (playhead to live edge) on every sample.
LIVE_BOUND_S = 4.0


def _require(present: bool, what: str) -> None:
    if present:
        return
    if in_ci():
        pytest.fail(f"CI must provide {what}")
    pytest.skip(f"needs {what}")


def _check_prerequisites() -> None:
    _require(shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None,
             "Debian's ffmpeg and ffprobe")
    _require(shutil.which("node") is not None, "Node.js 20 (`node` on PATH)")
    _require(CHROMIUM.is_file(), f"Chromium at {CHROMIUM} (apt-get install -y chromium)")
    _require((WEB_ROOT / "node_modules" / "playwright-core").is_dir()
             and (WEB_ROOT / HLS_JS_PATH).is_file(),
             "hls.js and playwright-core: run `npm ci --prefix platform/web`")


def _publisher_args(rtmp_port: int, seconds: int = PUBLISH_S) -> list[str]:
    return [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
        "-f", "flv", f"rtmp://127.0.0.1:{rtmp_port}/live/{STREAM_KEY}",
    ]


def _settings(data_dir: Path) -> ServeSettings:
    return ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=data_dir,
                         channels=(ChannelSeed(CHANNEL, STREAM_KEY),))


async def _start_publisher(rtmp_port: int, seconds: int = PUBLISH_S) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *_publisher_args(rtmp_port, seconds),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )


async def _wait_for_master(http: aiohttp.ClientSession, url: str, timeout_s: float) -> str:
    async with asyncio.timeout(timeout_s):
        while True:
            async with http.get(url) as response:
                if response.status == 200:
                    return await response.text()
            await asyncio.sleep(0.25)


async def _ffprobe(url: str) -> tuple[int | None, list[dict[str, Any]], str]:
    """ffprobe's exit status, the streams it found and its complaints."""
    probe = await asyncio.create_subprocess_exec(
        "ffprobe", "-v", "error", "-show_entries", "stream=codec_type,codec_name,width,height",
        "-of", "json", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(probe.communicate(), 30)
    finally:
        if probe.returncode is None:
            probe.kill()
            await probe.wait()
    streams: list[dict[str, Any]] = json.loads(out or b"{}").get("streams", [])
    return probe.returncode, streams, err.decode(errors="replace")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()


def _events(stdout: bytes) -> list[dict[str, Any]]:
    events = []
    for line in stdout.decode(errors="replace").splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            events.append(json.loads(line))
    return events


async def _play(url: str, seconds: int, *extra: str) -> tuple[bytes, bytes]:
    player = await asyncio.create_subprocess_exec(
        "node", str(PLAY_SCRIPT), "--web-root", str(WEB_ROOT), "--url", url,
        "--seconds", str(seconds), "--chromium", str(CHROMIUM), "--startup-timeout", "20", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        return await asyncio.wait_for(player.communicate(), seconds + 45)
    finally:
        await _stop(player)


def _check_native_fallback(events: list[dict[str, Any]], log: str) -> None:
    """The page's non-MSE path plays through the browser's own HLS engine.

    Chromium >= 141 ships one (so this exercises the code Safari/iOS run); a Chromium without it
    must say so in its capabilities, and then the page must say it cannot play.
    """
    capabilities = next(e for e in events if e["event"] == "capabilities")
    done = next((e for e in events if e["event"] == "done"), None)
    assert done is not None, log
    if not capabilities["nativeHls"]:
        assert not done["ok"] and done["stats"]["state"] == "failed", done
        return
    assert done["ok"], f"{done.get('reason')}; stats {done.get('stats')}; stderr:\n{log}"
    started = next(e["stats"] for e in events if e["event"] == "started")
    final = done["stats"]
    assert final["engine"] == "native"
    assert final["fatalErrors"] == 0, final
    assert final["currentTime"] - started["currentTime"] >= NATIVE_PLAY_S - 3, final


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


@pytest.mark.timeout(200)
async def test_hls_js_in_chromium_plays_a_minute_of_live_ll_hls_without_stalling(tmp_path: Path) -> None:
    _check_prerequisites()
    async with Platform(_settings(tmp_path)) as platform:
        base = f"http://127.0.0.1:{platform.ports.http}"
        master_url = f"{base}/hls/{CHANNEL}/master.m3u8"
        publisher = await _start_publisher(platform.ports.rtmp)
        try:
            async with aiohttp.ClientSession() as http:
                master = await _wait_for_master(http, master_url, 20)
                assert "#EXT-X-STREAM-INF" in master
                async with http.get(f"{base}/watch/{CHANNEL}") as page:
                    assert page.status == 200, "the platform must mount live.webui.setup_web"
                async with http.get(f"{base}/") as landing:
                    assert f'href="/watch/{CHANNEL}"' in await landing.text()
            out, err = await _play(f"{base}/watch/{CHANNEL}", PLAY_S)
            async with aiohttp.ClientSession() as http, http.get(f"{base}/api/v1/streams") as response:
                server_side = (await response.json())["streams"]
            # the Safari-style fallback: the page handing the URL to the browser's own HLS player
            native_out, native_err = await _play(f"{base}/watch/{CHANNEL}?engine=native", NATIVE_PLAY_S)
            # the non-browser fallback client reads the same URL while the stream is still live
            probe_status, probed, probe_err = await _ffprobe(master_url)
        finally:
            await _stop(publisher)

    events = _events(out)
    log = err.decode(errors="replace")[-4000:]
    done = next((e for e in events if e["event"] == "done"), None)
    assert done is not None, f"the player script reported nothing; stderr:\n{log}"
    assert done["ok"], f"{done.get('reason')}; stats {done.get('stats')}; stderr:\n{log}"
    assert not [e for e in events if e["event"] == "pageerror"], log
    started = next(e["stats"] for e in events if e["event"] == "started")
    final = done["stats"]
    samples = [e["stats"] for e in events if e["event"] == "sample"]
    latencies = [s["latency"] for s in samples if s["latency"] is not None]
    pdt = [s["pdtLatency"] for s in samples if s["pdtLatency"] is not None]
    ahead = [s["bufferAhead"] for s in samples if s["bufferAhead"] is not None]
    summary = {
        "hls.js": final["hlsVersion"], "startup_ms": final["startupMs"],
        "target_latency_s": final["targetLatency"],
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p95_s": round(_quantile(latencies, 0.95), 3) if latencies else None,
        "latency_max_s": round(max(latencies), 3) if latencies else None,
        "pdt_latency_p50_s": round(statistics.median(pdt), 3) if pdt else None,
        "pdt_latency_p95_s": round(_quantile(pdt, 0.95), 3) if pdt else None,
        "buffer_ahead_min_s": round(min(ahead), 3) if ahead else None,
        "buffer_ahead_p50_s": round(statistics.median(ahead), 3) if ahead else None,
        "stalls": final["stalls"], "buffer_stalled_errors": final["bufferStalledErrors"],
        "errors": final["errors"], "fatal_errors": final["fatalErrors"],
        "played_s": round(final["currentTime"] - started["currentTime"], 2),
        "dropped_frames": f"{final['droppedFrames']}/{final['totalFrames']}",
        "level": final["currentHeight"], "level_switches": final["levelSwitches"],
        "loads": final["loads"], "slow_loads": len(final["slowLoads"]),
    }
    print("browser playback:", json.dumps(summary))
    transcode = [s.get("transcode") for s in server_side]
    diagnostics = (f"{summary}\nerrors {final['errorLog']}\nmedia {final['mediaLog']}\n"
                   f"slow loads {final['slowLoads']}\nloads around stalls {final['stallLoads']}\n"
                   f"server transcode status {transcode}")

    assert final["engine"] == "hls.js"
    assert final["fatalErrors"] == 0, diagnostics
    assert final["currentTime"] - started["currentTime"] >= PLAY_S - 5, diagnostics
    assert len(latencies) >= PLAY_S - 5, diagnostics
    # the quality menu offers what the multivariant playlist listed (less any rung retired since)
    assert 1 <= len(final["levels"]) <= master.count("#EXT-X-STREAM-INF"), final["levels"]

    _check_native_fallback(_events(native_out), native_err.decode(errors="replace")[-4000:])
    assert probe_status == 0, f"ffprobe failed on {master_url}: {probe_err}"
    video = [s for s in probed if s.get("codec_type") == "video"]
    audio = [s for s in probed if s.get("codec_type") == "audio"]
    assert video and audio, probed
    assert {s["codec_name"] for s in video} == {"h264"}
    assert max(s["height"] for s in video) == 360

    assert final["stalls"] == 0, diagnostics
    assert final["bufferStalledErrors"] == 0, diagnostics
    assert max(latencies) <= LIVE_BOUND_S, diagnostics

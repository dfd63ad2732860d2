"""End to end: ffmpeg publishes over RTMP, the real platform serves LL-HLS, hls.js plays it in
headless Debian Chromium (driven by playwright-core through ``play_hls.cjs``) for a minute.

The reference player is the one the design names: hls.js in Chromium. ffprobe then reads the
same multivariant URL, as the non-browser (VLC/ffplay-class) client. Needs Chromium
(``apt-get install chromium``), Node 20 and ``npm ci --prefix platform/web``; locally a missing
one skips, in CI (``CI`` set) it fails.

Glass-to-glass is what the viewer sees: the publisher (``clock_publisher.py``) paints its
capture clock into every frame, and the page reads it back from every decoded frame it displays
(``clockcode.js``); hls.js's own latency estimate covers only packager to player. With the full
ladder (a 720p publisher), once more with a CPU hog pinned beside the transcode worker (the
real-time guard engages), and with a publisher whose keyframes miss the 2 s grid: no player
error event, no 4xx/5xx on any playlist or part, and glass-to-glass p95 within ``G2G_P95_S``
after the first ``G2G_SKIP_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import statistics
import sys
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
CLOCK_READER = Path(__file__).with_name("clockcode.js")
CLOCK_PUBLISHER = Path(__file__).with_name("clock_publisher.py")
WEB_ROOT = default_web_root()
CHANNEL, STREAM_KEY = "demo", "demo_key_123"
PLAY_S = 60
NATIVE_PLAY_S = 8
PUBLISH_S = 100  # outlives both players and the ffprobe pass; terminated as soon as they are done
#: "Within a few seconds of live": hls.latency (playhead to live edge) on every sample.
LIVE_BOUND_S = 4.0
#: Painted-clock glass-to-glass: p95 over the displayed frames after the first G2G_SKIP_S.
G2G_P95_S = 1.5
G2G_SKIP_S = 10.0
FULL_LADDER = "1280x720"  # source, 720p30, 480p30, 360p30, 160p30
HOG_PLAY_S = 45
OFF_GRID_PLAY_S = 30
#: ``-g 80`` at 30 fps (2.67 s GOPs) and keyframes forced at odd times besides: off the 2 s grid.
OFF_GRID_GOP = ["-g", "80", "-force_key_frames", "expr:gte(t,n_forced*3.7+1.3)"]


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


async def _publish(rtmp_port: int, *, size: str = FULL_LADDER, seconds: float = PUBLISH_S,
                   gop: list[str] | None = None) -> asyncio.subprocess.Process:
    """The clock-painting publisher (its frames carry their capture time) over RTMP from ffmpeg."""
    args = [sys.executable, str(CLOCK_PUBLISHER), "--url",
            f"rtmp://127.0.0.1:{rtmp_port}/live/{STREAM_KEY}", "--size", size, "--seconds", str(seconds)]
    if gop:
        args += ["--", *gop]
    return await asyncio.create_subprocess_exec(*args, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)


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


async def _play(url: str, seconds: int, *options: str, clock: bool = False,
                bare: str | None = None) -> tuple[bytes, bytes]:
    extra = [*options, *(["--clock", str(CLOCK_READER)] if clock else [])]
    if bare is not None:
        extra += ["--bare", bare]
    player = await asyncio.create_subprocess_exec(
        "node", str(PLAY_SCRIPT), "--web-root", str(WEB_ROOT), "--url", url,
        "--seconds", str(seconds), "--chromium", str(CHROMIUM), "--startup-timeout", "25", *extra,
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


def glass_to_glass_s(done: dict[str, Any]) -> list[float]:
    """Painted-clock glass-to-glass of every displayed frame after the first ``G2G_SKIP_S``."""
    clock = done.get("clock") or {}
    samples = clock.get("samples") or []
    if not samples:
        return []
    first = samples[0][0]
    return [g2g / 1000 for shown, g2g in samples if shown - first >= G2G_SKIP_S * 1000]


def g2g_summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"frames": 0, "p50_s": None, "p95_s": None, "p99_s": None}
    return {"frames": len(values), "p50_s": round(_quantile(values, 0.50), 3),
            "p95_s": round(_quantile(values, 0.95), 3), "p99_s": round(_quantile(values, 0.99), 3)}


async def _streams(base: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/api/v1/streams") as response:
        streams: list[dict[str, Any]] = (await response.json())["streams"]
        return streams


def _check_viewer_saw_no_error(done: dict[str, Any], log: str, server: list[dict[str, Any]]) -> None:
    """No player error event, no 4xx/5xx on any playlist or part, and the glass-to-glass bar."""
    assert done["ok"], f"{done.get('reason')}; stats {done.get('stats')}; stderr:\n{log}"
    final = done["stats"]
    transcode = [s.get("transcode") for s in server]
    assert done["httpErrors"] == [], f"{done['httpErrors']}\nserver {transcode}"
    assert final["errors"] == 0, f"{final['errorLog']}\nserver {transcode}"
    g2g = glass_to_glass_s(done)
    clock = done.get("clock") or {}
    assert len(g2g) >= 100, f"painted clock read on {clock.get('read')} of {clock.get('frames')} frames"
    assert _quantile(g2g, 0.95) <= G2G_P95_S, f"glass-to-glass {g2g_summary(g2g)}; server {transcode}"


async def _pin_beside(pid: int, cpu: int) -> asyncio.subprocess.Process:
    """Pin the transcode worker (every thread) to ``cpu`` and start a busy loop pinned there too."""
    pin = await asyncio.create_subprocess_exec("taskset", "-a", "-p", "-c", str(cpu), str(pid),
                                               stdout=asyncio.subprocess.DEVNULL)
    assert await pin.wait() == 0
    return await asyncio.create_subprocess_exec(
        "taskset", "-c", str(cpu), sys.executable, "-c", "while True: pass")


@pytest.mark.timeout(200)
async def test_hls_js_in_chromium_plays_a_minute_of_live_ll_hls_without_stalling(tmp_path: Path) -> None:
    _check_prerequisites()
    async with Platform(_settings(tmp_path)) as platform:
        base = f"http://127.0.0.1:{platform.ports.http}"
        master_url = f"{base}/hls/{CHANNEL}/master.m3u8"
        publisher = await _publish(platform.ports.rtmp)
        try:
            async with aiohttp.ClientSession() as http:
                master = await _wait_for_master(http, master_url, 20)
                assert "#EXT-X-STREAM-INF" in master
                async with http.get(f"{base}/watch/{CHANNEL}") as page:
                    assert page.status == 200, "the platform must mount live.webui.setup_web"
                async with http.get(f"{base}/") as landing:
                    assert f'href="/watch/{CHANNEL}"' in await landing.text()
            out, err = await _play(f"{base}/watch/{CHANNEL}", PLAY_S, clock=True)
            server_side = await _streams(base)
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
        "glass_to_glass": g2g_summary(glass_to_glass_s(done)), "live_resyncs": final["liveResyncs"],
        "guard": [s.get("transcode", {}).get("shed") for s in server_side],
    }
    print("browser playback:", json.dumps(summary))
    transcode = [s.get("transcode") for s in server_side]
    diagnostics = (f"{summary}\nerrors {final['errorLog']}\nmedia {final['mediaLog']}\n"
                   f"slow loads {final['slowLoads']}\nloads around stalls {final['stallLoads']}\n"
                   f"server transcode status {transcode}")

    assert final["engine"] == "hls.js"
    assert final["maxLiveSyncPlaybackRate"] == 1.5  # the page catches up after a switch or stall
    assert final["fatalErrors"] == 0, diagnostics
    _check_viewer_saw_no_error(done, log, server_side)
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
    assert max(s["height"] for s in video) == 720

    assert final["stalls"] == 0, diagnostics
    assert final["bufferStalledErrors"] == 0, diagnostics
    assert max(latencies) <= LIVE_BOUND_S, diagnostics


@pytest.mark.xfail(strict=False, reason=(
    "issue #13 open: with a CPU hog pinned beside the transcoder, hls.js still reports "
    "bufferStalledError/bufferSeekOverHole on this 2-core machine (the guard degrades, no 4xx/5xx)"))
@pytest.mark.timeout(200)
async def test_with_a_cpu_hog_beside_the_transcoder_the_guard_degrades_and_no_viewer_sees_an_error(
        tmp_path: Path) -> None:
    """The transcode worker shares one core with a busy loop: the real-time guard must degrade
    inside the advertised ladder (or list a rung as gaps), never withdraw one from under a
    player, and glass-to-glass must stay within the bar."""
    _check_prerequisites()
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path,
                             channels=(ChannelSeed(CHANNEL, STREAM_KEY),))
    async with Platform(settings) as platform:
        base = f"http://127.0.0.1:{platform.ports.http}"
        publisher = await _publish(platform.ports.rtmp, seconds=HOG_PLAY_S + 40)
        hog = None
        try:
            async with aiohttp.ClientSession() as http:
                await _wait_for_master(http, f"{base}/hls/{CHANNEL}/master.m3u8", 25)
            assert platform.media_paths is not None
            supervisor = platform.media_paths.by_channel[CHANNEL].supervisor
            assert supervisor is not None and supervisor.pid is not None
            hog = await _pin_beside(supervisor.pid, 0)
            out, err = await _play(f"{base}/watch/{CHANNEL}", HOG_PLAY_S, clock=True)
            server_side = await _streams(base)
        finally:
            if hog is not None:
                await _stop(hog)
            await _stop(publisher)
    done = next((e for e in _events(out) if e["event"] == "done"), None)
    log = err.decode(errors="replace")[-4000:]
    assert done is not None, log
    transcode = server_side[0]["transcode"]
    print("browser playback with a CPU hog:", json.dumps({
        "glass_to_glass": g2g_summary(glass_to_glass_s(done)), "guard": transcode["shed"],
        "preset": transcode["preset"], "rung_fps": transcode["rung_fps"], "gaps": transcode["gaps"],
        "dropped_late": transcode["frames_dropped_late"], "level": done["stats"].get("currentHeight"),
        "errors": done["stats"]["errorLog"], "http_errors": done["httpErrors"]}))
    assert transcode["retired"] == {}, transcode  # nothing advertised was withdrawn
    _check_viewer_saw_no_error(done, log, server_side)


@pytest.mark.timeout(150)
async def test_a_publisher_with_keyframes_off_the_grid_plays_in_a_bare_hls_js_page(tmp_path: Path) -> None:
    """``-g 80`` at 30 fps and keyframes forced at odd times: the source rendition is advertised
    with a TARGETDURATION that covers its GOPs and plays, in a page holding only hls.js with
    ``lowLatencyMode`` (what a third-party page does), without an error or a 404."""
    _check_prerequisites()
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path,
                             channels=(ChannelSeed(CHANNEL, STREAM_KEY),))
    async with Platform(settings) as platform:
        base = f"http://127.0.0.1:{platform.ports.http}"
        master_url = f"{base}/hls/{CHANNEL}/master.m3u8"
        publisher = await _publish(platform.ports.rtmp, size="640x360", seconds=OFF_GRID_PLAY_S + 40,
                                   gop=OFF_GRID_GOP)
        try:
            async with aiohttp.ClientSession() as http:
                master = await _wait_for_master(http, master_url, 25)
                async with http.get(f"{base}/hls/{CHANNEL}/source.m3u8") as response:
                    source_playlist = await response.text()
            out, err = await _play(f"{base}/", OFF_GRID_PLAY_S, clock=True, bare=master_url)
            server_side = await _streams(base)
        finally:
            await _stop(publisher)
    done = next((e for e in _events(out) if e["event"] == "done"), None)
    log = err.decode(errors="replace")[-4000:]
    assert done is not None, log
    print("bare hls.js page, GOP off the grid:", json.dumps({
        "glass_to_glass": g2g_summary(glass_to_glass_s(done)),
        "guard": server_side[0]["transcode"]["shed"], "level": done["stats"].get("currentHeight")}))
    assert "source.m3u8" in master
    assert "#EXT-X-TARGETDURATION:3" in source_playlist
    assert server_side[0]["transcode"]["retired"] == {}
    assert done["ok"], f"{done.get('reason')}; stderr:\n{log}"
    assert done["httpErrors"] == [], done["httpErrors"]
    assert done["stats"]["errors"] == 0, done["stats"]["errorLog"]
    assert done["stats"]["currentTime"] >= OFF_GRID_PLAY_S - 8

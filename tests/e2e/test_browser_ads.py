"""End to end: an ad break as an HLS interstitial in hls.js (Chromium), per viewer.

ffmpeg publishes to a channel its owner created; the platform makes two ad creatives with
`live transcode` at start. A subscriber and a non-subscriber watch in headless Chromium with
hls.js while the streamer starts a 30 s break: the non-subscriber's player loads an asset list
with the creatives, plays them and reports impressions; the subscriber's asset list is empty
and nothing plays in its place. Needs what tests/e2e/test_browser_playback.py needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from live.config import ServeSettings
from live.serve import Platform
from live.webui import HLS_JS_PATH, default_web_root

pytestmark = [pytest.mark.slow, pytest.mark.ffmpeg]

CHROMIUM = Path(os.environ.get("LIVETWIN_CHROMIUM", "/usr/bin/chromium"))
PLAY_SCRIPT = Path(__file__).with_name("play_hls.cjs")
WEB_ROOT = default_web_root()
PLAY_S = 55
BREAK_AFTER_S = 4  # after both players are playing


def _require(present: bool, what: str) -> None:
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must provide {what}")
    pytest.skip(f"needs {what}")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _play(url: str, token: str, started: asyncio.Event) -> tuple[list[dict[str, Any]], str]:
    """Play for PLAY_S seconds; ``started`` is set once the page is playing."""
    player = await asyncio.create_subprocess_exec(
        "node", str(PLAY_SCRIPT), "--web-root", str(WEB_ROOT), "--url", url, "--seconds", str(PLAY_S),
        "--chromium", str(CHROMIUM), "--startup-timeout", "30", "--token", token,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert player.stdout is not None and player.stderr is not None
    events: list[dict[str, Any]] = []

    async def read_events() -> None:
        assert player.stdout is not None
        async for line in player.stdout:
            with contextlib.suppress(json.JSONDecodeError):
                events.append(json.loads(line))
                if events[-1]["event"] in ("started", "done"):
                    started.set()

    try:
        _, err = await asyncio.wait_for(asyncio.gather(read_events(), player.stderr.read()), PLAY_S + 60)
        await player.wait()
    finally:
        started.set()
        await _stop(player)
    return events, err.decode(errors="replace")


async def test_a_non_subscriber_sees_the_interstitial_and_a_subscriber_skips_it(tmp_path: Path) -> None:
    _require(shutil.which("ffmpeg") is not None, "Debian's ffmpeg")
    _require(shutil.which("node") is not None, "Node.js 20")
    _require(CHROMIUM.is_file(), f"Chromium at {CHROMIUM}")
    _require((WEB_ROOT / "node_modules" / "playwright-core").is_dir() and (WEB_ROOT / HLS_JS_PATH).is_file(),
             "hls.js and playwright-core: run `npm ci --prefix platform/web`")
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path, ad_creatives=2)
    async with Platform(settings) as platform, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{platform.ports.http}"
        api = f"{base}/api/v1"

        async def call(method: str, path: str, token: str | None = None, body: Any = None,
                       key: str | None = None) -> tuple[int, Any]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            if key:
                headers["Idempotency-Key"] = key
            async with http.request(method, api + path, json=body, headers=headers) as response:
                return response.status, await response.json(content_type=None)

        tokens = {}
        for name in ("streamer", "viewer", "fan"):
            credentials = {"username": name, "password": "correct horse battery staple"}
            assert (await call("POST", "/accounts", body=credentials))[0] == 201
            tokens[name] = (await call("POST", "/sessions", body=credentials))[1]["token"]
        status, channel = await call("POST", "/channels", tokens["streamer"], {"name": "demo"})
        assert status == 201
        status, _ = await call("POST", "/channels/demo/subscriptions", tokens["fan"],
                               {"tier": 1, "card": "4242424242424242"}, key="fan-sub")
        assert status == 202

        publisher = await asyncio.create_subprocess_exec(
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(PLAY_S + 60),
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
            "-f", "flv", f"rtmp://127.0.0.1:{platform.ports.rtmp}/live/{channel['stream_key']}")
        try:
            async with asyncio.timeout(90):
                for path in ("/ads/0/master.m3u8", "/ads/1/master.m3u8", "/hls/demo/master.m3u8"):
                    while True:
                        async with http.get(base + path) as response:
                            if response.status == 200:
                                break
                        await asyncio.sleep(0.25)
                while (await call("GET", "/channels/demo/subscription", tokens["fan"]))[0] != 200:
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # the creatives' durations are read once both exist

            viewer_started, fan_started = asyncio.Event(), asyncio.Event()

            async def start_break() -> tuple[int, Any]:
                await viewer_started.wait()
                await fan_started.wait()
                await asyncio.sleep(BREAK_AFTER_S)
                return await call("POST", "/channels/demo/ad-breaks", tokens["streamer"], {"duration_s": 30})

            url = f"{base}/watch/demo"
            (viewer_events, viewer_log), (fan_events, fan_log), (status, ad_break) = await asyncio.gather(
                _play(url, tokens["viewer"], viewer_started), _play(url, tokens["fan"], fan_started),
                start_break())
            assert status == 201, ad_break
        finally:
            await _stop(publisher)

    viewer = viewer_events[-1]
    fan = fan_events[-1]
    assert viewer["event"] == "done" and viewer["ok"], viewer_log[-3000:]
    assert fan["event"] == "done" and fan["ok"], fan_log[-3000:]
    seen, skipped = viewer["stats"], fan["stats"]
    assert seen["adAssetLists"] and seen["adAssetLists"][0]["assets"] == 2, (seen, viewer_log[-3000:])
    assert seen["adBreaks"] >= 1 and seen["adAssetsStarted"] >= 1 and seen["adImpressions"] >= 1, seen
    assert skipped["adAssetLists"] and skipped["adAssetLists"][0]["assets"] == 0, (skipped, fan_log[-3000:])
    assert skipped["adAssetsStarted"] == 0, skipped

"""End to end, the pages after the first minutes, in headless Chromium (``more_pages.cjs``):
the dashboard's ad break and earnings, an offline channel's past broadcasts and one played back
(VOD from the DVR), and the admin's /ops page. The streams are ffmpeg publishing over RTMP to a
real `live serve`; the accounts go through the real API. Screenshots land beside the first
minutes' in ``reports/out/web/``; axe-core checks every page.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from live.config import ServeSettings
from live.ingest.registry import LiveStreamRegistry
from live.serve import Platform
from live.webui import HLS_JS_PATH, default_web_root, setup_web

from ..conftest import skip_or_fail
from .test_web_first_minutes import _stop

CHROMIUM = Path(os.environ.get("LIVETWIN_CHROMIUM", "/usr/bin/chromium"))
SCRIPT = Path(__file__).with_name("more_pages.cjs")
WEB_ROOT = default_web_root()
AXE = Path(os.environ.get("LIVETWIN_AXE", WEB_ROOT / "node_modules" / "axe-core" / "axe.min.js"))
SHOTS = Path(os.environ.get("LIVETWIN_SCREENSHOTS", Path(__file__).parents[2] / "reports" / "out" / "web"))
PASSWORD = "correct horse battery staple"
LIVE, PAST = "live_show", "past_show"
PAGES = ("dashboard-money", "watch-offline", "watch-vod", "ops")
FLOW_TIMEOUT_S = 240
PAST_PUBLISH_S = 8
NO_VALUE = "\N{EN DASH}"  # what the pages show for "not known yet"
RUNGS = ["160p30", "360p30", "source"]  # the default ladder under a 640x360 source


async def _account(http: aiohttp.ClientSession, base: str, name: str, channel: str | None = None) -> str:
    """Sign ``name`` up through the API; with ``channel``, create it and answer its stream key."""
    credentials = {"username": name, "password": PASSWORD}
    async with http.post(f"{base}/api/v1/accounts", json=credentials) as response:
        assert response.status == 201, await response.text()
    if channel is None:
        return ""
    async with http.post(f"{base}/api/v1/sessions", json=credentials) as response:
        token = (await response.json())["token"]
    async with http.post(f"{base}/api/v1/channels", json={"name": channel, "title": f"{channel} title"},
                         headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 201, await response.text()
        return str((await response.json())["stream_key"])


async def _publish(port: int, key: str, seconds: float) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
        "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
        "-f", "flv", f"rtmp://127.0.0.1:{port}/live/{key}")


async def _until(check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 60) -> None:
    try:
        async with asyncio.timeout(timeout_s):
            while not await check():
                await asyncio.sleep(0.25)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


async def _flow(data: Path) -> tuple[dict[str, Any], str]:
    first = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=data)
    async with Platform(first) as platform, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{platform.ports.http}"
        await _account(http, base, "the_admin")  # --admin names an account that exists
        live_key = await _account(http, base, "streamer_two", LIVE)
        past_key = await _account(http, base, "old_streamer", PAST)
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=data, admins=("the_admin",))
    async with Platform(settings) as platform, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{platform.ports.http}"

        async def ended() -> bool:
            async with http.get(f"{base}/api/v1/channels/{PAST}/videos") as response:
                videos = (await response.json())["videos"]
            return bool(videos) and videos[0]["ended_at"] is not None and platform.streams.get(PAST) is None

        async def live() -> bool:
            async with http.get(f"{base}/hls/{LIVE}/master.m3u8") as response:
                return response.status == 200

        past = await _publish(platform.ports.rtmp, past_key, PAST_PUBLISH_S)
        publisher = await _publish(platform.ports.rtmp, live_key, FLOW_TIMEOUT_S)
        try:
            await _until(ended, "the past broadcast to end")
            await _until(live, "the live channel")
            command = ["node", str(SCRIPT), "--web-root", str(WEB_ROOT), "--base", base, "--out", str(SHOTS),
                       "--live", LIVE, "--past", PAST, "--streamer", "streamer_two", "--admin", "the_admin",
                       "--password", PASSWORD, "--chromium", str(CHROMIUM)]
            if AXE.is_file():
                command += ["--axe", str(AXE)]
            browser = await asyncio.create_subprocess_exec(
                *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            try:
                async with asyncio.timeout(FLOW_TIMEOUT_S):
                    out, err = await browser.communicate()
            finally:
                await _stop(browser)
        finally:
            await _stop(past)
            await _stop(publisher)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    done = lines[-1] if lines else {"ok": False, "error": "the browser script ended without a result"}
    return done, err.decode(errors="replace")


@pytest.fixture(scope="module")
def more_pages(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    for tool, present in (("Debian's ffmpeg", shutil.which("ffmpeg")), ("Node.js 20", shutil.which("node")),
                          (f"Chromium at {CHROMIUM}", CHROMIUM.is_file()),
                          ("hls.js and playwright-core: `npm ci --prefix platform/web`",
                           (WEB_ROOT / "node_modules" / "playwright-core").is_dir()
                           and (WEB_ROOT / HLS_JS_PATH).is_file())):
        if not present:
            skip_or_fail(f"needs {tool}")
    return asyncio.run(_flow(tmp_path_factory.mktemp("more_pages")))


@pytest.mark.slow
@pytest.mark.ffmpeg
def test_the_dashboard_starts_an_ad_break_and_shows_earnings(more_pages: tuple[dict[str, Any], str]) -> None:
    result, log = more_pages
    assert result["ok"], (result.get("error"), log[-4000:])
    assert not result["problems"], result["problems"]
    assert result["unpaid"] == "nothing yet" and result["subscribers"] == "0"
    assert result["adBreak"]["channel"] == LIVE and result["adBreak"]["duration_s"] == 30
    assert result["adShown"].startswith("Ad break of 30 s starts at")
    assert "one ad break per" in result["adRefused"] and "try again in" in result["adRefused"]
    assert result["streamerOpsStatus"] == 403


@pytest.mark.slow
@pytest.mark.ffmpeg
def test_an_offline_channel_lists_its_past_broadcasts_and_plays_one(
        more_pages: tuple[dict[str, Any], str]) -> None:
    result, log = more_pages
    assert result["ok"], (result.get("error"), log[-4000:])
    assert result["offlineHeading"] == f"{PAST} is offline"
    assert result["pastListed"] == 1
    assert result["vodUrl"].startswith("?vod=") and result["vodUrl"][5:].isdigit()
    assert result["vodPlayed"] > 1 and result["vodBanner"] and result["vodOfflineHidden"]


@pytest.mark.slow
@pytest.mark.ffmpeg
def test_the_ops_page_shows_the_live_stream_and_origin_rates(more_pages: tuple[dict[str, Any], str]) -> None:
    result, log = more_pages
    assert result["ok"], (result.get("error"), log[-4000:])
    assert result["adminLandedOn"] == "/ops"
    channel, node, ingest, rungs, health, viewers = result["opsRow"]
    assert channel == LIVE and node == "127.0.0.1" and ingest == "rtmp 640x360"
    assert rungs.split(", ") == RUNGS, rungs
    assert "fps in" in health and viewers == "0"
    kinds = {row[0]: row for row in result["opsOrigin"]}
    assert {"multivariant", "playlist", "part", "segment"} <= set(kinds), kinds
    assert all(row[1] != NO_VALUE for row in kinds.values()), kinds  # rates after the second poll
    assert int(kinds["multivariant"][3]) >= 1, kinds  # this test's own readiness check
    assert result["opsStatus"].startswith("updated"), result["opsStatus"]


@pytest.mark.slow
@pytest.mark.ffmpeg
def test_screenshots_and_axe_on_the_new_pages(more_pages: tuple[dict[str, Any], str]) -> None:
    result, log = more_pages
    assert result["ok"], (result.get("error"), log[-4000:])
    assert result["overflows"] == []
    for page in PAGES:
        for size in ("desktop", "phone"):
            shot = SHOTS / f"{page}-{size}.png"
            assert shot.is_file() and shot.stat().st_size > 5000, shot
    if "axe" not in result:
        skip_or_fail(f"axe-core is not installed ({AXE} is missing): `npm install --prefix platform/web`")
    assert set(result["axe"]) == {"/dashboard", f"/watch/{PAST}", result["vodPage"], "/ops"}
    bad = {url: [v for v in found if v["impact"] in ("serious", "critical")]
           for url, found in result["axe"].items()}
    assert not any(bad.values()), bad


# ------------------------------------------------------------------ the watch page's ?vod= at HTTP level

@pytest.fixture
async def watch_client() -> Any:
    app = web.Application()
    setup_web(app, LiveStreamRegistry())
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def test_vod_points_the_player_at_the_recording_and_shows_the_way_back(watch_client: Any) -> None:
    async with watch_client.get(f"/watch/{PAST}?vod=42") as response:
        page = await response.text()
    assert f'data-src="/hls/{PAST}/vod/42/master.m3u8"' in page and 'data-vod="42"' in page
    assert '<p id="vod-banner" class="notice" >' in page and f'href="/watch/{PAST}"' in page
    async with watch_client.get(f"/watch/{PAST}") as response:
        live = await response.text()
    assert f'data-src="/hls/{PAST}/master.m3u8"' in live
    assert '<p id="vod-banner" class="notice" hidden>' in live


@pytest.mark.parametrize("query", ["vod=abc", "vod=1%3Cb%3E", "vod=" + "9" * 19, "vod=4&player=dash"])
async def test_a_vod_that_is_not_a_recording_id_is_400(watch_client: Any, query: str) -> None:
    async with watch_client.get(f"/watch/{PAST}?{query}") as response:
        assert response.status == 400

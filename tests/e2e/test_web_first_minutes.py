"""End to end: a streamer's and a viewer's first minutes, in headless Chromium.

``first_minutes.cjs`` drives two browser contexts against `live serve`: the streamer signs up,
creates a channel (with an XSS payload in its title) and copies the stream key from the
dashboard; this test publishes with ffmpeg using that key; a phone-sized second context signs
up, watches, plays and chats (XSS payloads too); the dashboard shows one viewer and the message.
The flow runs once per module; each test below checks one promise of it. Screenshots of every
page at desktop and phone size land in ``reports/out/web/`` (``LIVETWIN_SCREENSHOTS`` moves
them). axe-core comes from ``platform/web/node_modules`` (npm package ``axe-core``;
``LIVETWIN_AXE`` names another ``axe.min.js``).
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

from ..conftest import skip_or_fail

pytestmark = [pytest.mark.slow, pytest.mark.ffmpeg]

CHROMIUM = Path(os.environ.get("LIVETWIN_CHROMIUM", "/usr/bin/chromium"))
SCRIPT = Path(__file__).with_name("first_minutes.cjs")
WEB_ROOT = default_web_root()
AXE = Path(os.environ.get("LIVETWIN_AXE", WEB_ROOT / "node_modules" / "axe-core" / "axe.min.js"))
SHOTS = Path(os.environ.get("LIVETWIN_SCREENSHOTS", Path(__file__).parents[2] / "reports" / "out" / "web"))
CHANNEL = "first_show"
FLOW_TIMEOUT_S = 240
Flow = tuple[dict[str, Any], str]  # the browser script's "done" result, its stderr
PAGES = ("landing", "login", "signup-errors", "watch", "watch-rate-limited", "dashboard",
         "dashboard-moderating")


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _until_live(http: aiohttp.ClientSession, base: str) -> None:
    async with asyncio.timeout(60):
        while True:
            async with http.get(f"{base}/hls/{CHANNEL}/master.m3u8") as response:
                if response.status == 200:
                    return
            await asyncio.sleep(0.25)


async def _flow(tmp: Path) -> Flow:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp)
    async with Platform(settings) as platform, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{platform.ports.http}"
        command = ["node", str(SCRIPT), "--web-root", str(WEB_ROOT), "--base", base, "--channel", CHANNEL,
                   "--out", str(SHOTS), "--chromium", str(CHROMIUM)]
        if AXE.is_file():
            command += ["--axe", str(AXE)]
        browser = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        assert browser.stdin is not None and browser.stdout is not None and browser.stderr is not None
        publisher: asyncio.subprocess.Process | None = None
        done: dict[str, Any] = {"ok": False, "error": "the browser script ended without a result"}
        stderr_task = asyncio.ensure_future(browser.stderr.read())
        try:
            async with asyncio.timeout(FLOW_TIMEOUT_S):
                async for raw in browser.stdout:
                    event = json.loads(raw)
                    if event["event"] == "key":
                        publisher = await asyncio.create_subprocess_exec(
                            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
                            "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
                            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                            "-t", str(FLOW_TIMEOUT_S),
                            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "60",
                            "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "128k",
                            "-f", "flv", f"rtmp://127.0.0.1:{platform.ports.rtmp}/live/{event['key']}")
                        await _until_live(http, base)
                        browser.stdin.write(b"published\n")
                        await browser.stdin.drain()
                    elif event["event"] == "done":
                        done = event
                        break
            await browser.wait()
        finally:
            if publisher is not None:
                await _stop(publisher)
            await _stop(browser)
        log = (await stderr_task).decode(errors="replace")
    return done, log


@pytest.fixture(scope="module")
def first_minutes(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    for tool, present in (("Debian's ffmpeg", shutil.which("ffmpeg")), ("Node.js 20", shutil.which("node")),
                          (f"Chromium at {CHROMIUM}", CHROMIUM.is_file()),
                          ("hls.js and playwright-core: `npm ci --prefix platform/web`",
                           (WEB_ROOT / "node_modules" / "playwright-core").is_dir()
                           and (WEB_ROOT / HLS_JS_PATH).is_file())):
        if not present:
            skip_or_fail(f"needs {tool}")
    for old in SHOTS.glob("*.png"):
        old.unlink()
    return asyncio.run(_flow(tmp_path_factory.mktemp("first_minutes")))


def test_the_streamer_and_the_viewer_get_through_their_first_minutes(
        first_minutes: Flow) -> None:
    result, log = first_minutes
    assert result["ok"], (result.get("error"), log[-4000:])
    assert not result["problems"], result["problems"]
    assert result["afterSignup"] == "/dashboard"
    assert result["revealedType"] == "text" and result["copiedMatches"]
    assert result["rtmpFull"].startswith("rtmp://127.0.0.1:") and "/live/live_" in result["rtmpFull"]
    assert result["pollsIn3s"] >= 2  # the health panel polls every second
    assert result["landingLists"] == 1
    width, height, src = result["landingThumb"]  # a 640x360 stream: a 320x180 JPEG
    assert (width, height) == (320, 180), result["landingThumb"]
    assert src.startswith(f"/thumbnails/{CHANNEL}.jpg?g="), result["landingThumb"]
    assert result["viewerLandedOn"] == f"/watch/{CHANNEL}"
    assert result["dashboardViewers"] == "1" and result["watchViewers"] == "1"
    assert result["dashboardChatRate"] == "3 messages in the last minute", result["dashboardChatRate"]
    assert result["health"]["fps"].endswith("fps") and result["health"]["bitrate"].endswith("kbit/s"), result
    assert result["health"]["gop"] in ("1.8 s", "1.9 s", "2.0 s", "2.1 s", "2.2 s",
                                       "2.0 s (average)"), result["health"]  # ffmpeg -g 60 at 30 fps


def test_the_session_cookie_is_httponly_and_strict_in_the_browser(first_minutes: Flow) -> None:
    result, log = first_minutes
    assert result["ok"], (result.get("error"), log[-4000:])
    cookies = {c["name"]: c for c in result["cookies"]}
    assert cookies["livetwin_session"]["httpOnly"] and cookies["livetwin_session"]["sameSite"] == "Strict"
    assert cookies["livetwin_csrf"]["httpOnly"] and cookies["livetwin_csrf"]["sameSite"] == "Strict"
    assert result["scriptSeesSession"] is False


def test_payloads_in_titles_and_chat_are_shown_as_text_and_never_run(
        first_minutes: Flow) -> None:
    result, log = first_minutes
    assert result["ok"], (result.get("error"), log[-4000:])
    for where in ("xssWatch", "xssDashboard"):
        seen = result[where]
        assert seen["ran"] == 0 and seen["imgs"] == 0, seen
        assert seen["texts"] == [True, True], seen
        assert "<img src=x onerror=" in seen["title"] and "<script>" in seen["title"], seen


def test_chat_resumes_after_a_drop_and_shows_the_servers_rate_limit(
        first_minutes: Flow) -> None:
    result, log = first_minutes
    assert result["ok"], (result.get("error"), log[-4000:])
    assert result["resumedFrom"] == [3], result["resumedFrom"]  # after the three messages, once
    assert result["helloCopies"] == 1
    assert "over 20 messages in 30 s" in result["rateLimitShown"] and "wait" in result["rateLimitShown"]


def test_the_streamer_moderates_from_the_dashboard_and_viewers_see_it(first_minutes: Flow) -> None:
    result, log = first_minutes
    assert result["ok"], (result.get("error"), log[-4000:])
    assert result["viewerModButtons"] == 0  # a viewer is no moderator
    assert result["deletedOnViewer"] is True
    assert result["viewerModes"] == "slow mode: one message every 30 s"


def test_pages_work_from_the_keyboard_and_show_field_errors(first_minutes: Flow) -> None:
    result, log = first_minutes
    assert result["ok"], (result.get("error"), log[-4000:])
    assert result["keyboardLogin"] == "/dashboard"
    assert result["fieldErrors"]["username"].startswith("username:")
    assert result["fieldErrors"]["password"] == ""  # the API names one field at a time: the first


def test_screenshots_of_every_page_at_desktop_and_phone_size(first_minutes: Flow) -> None:
    result, log = first_minutes
    assert result["ok"], (result.get("error"), log[-4000:])
    assert result["overflows"] == []  # no page is wider than a phone's (or a desktop's) screen
    for page in PAGES:
        for size in ("desktop", "phone"):
            shot = SHOTS / f"{page}-{size}.png"
            assert shot.is_file() and shot.stat().st_size > 5000, shot


def test_axe_finds_no_serious_or_critical_violation_on_any_page(first_minutes: Flow) -> None:
    result, log = first_minutes
    assert result["ok"], (result.get("error"), log[-4000:])
    if "axe" not in result:
        skip_or_fail(f"axe-core is not installed ({AXE} is missing): `npm install --prefix platform/web`")
    pages = {"/", "/signup", "/login", "/dashboard", f"/watch/{CHANNEL}", f"/studio/{CHANNEL}"}
    assert set(result["axe"]) == pages
    bad = {url: [v for v in violations if v["impact"] in ("serious", "critical")]
           for url, violations in result["axe"].items()}
    assert not any(bad.values()), bad

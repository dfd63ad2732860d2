"""End to end through `live serve`'s Platform: sign up, make a channel, publish to it with
Debian's ffmpeg, watch its health in /api/v1/streams, rotate the key, and see the old key refused."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from live.config import ServeSettings
from live.serve import Platform

pytestmark = [
    pytest.mark.slow,
    pytest.mark.ffmpeg,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="Debian's ffmpeg is not installed"),
]


def ffmpeg_args(port: int, key: str, seconds: int) -> list[str]:
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25", "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "50",
        "-pix_fmt", "yuv420p", "-f", "flv", f"rtmp://127.0.0.1:{port}/live/{key}",
    ]


async def _wait_live(call: Any, publisher: asyncio.subprocess.Process, frames: int = 25) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while True:
            _, listing = await call("GET", "/streams")
            streams = listing["streams"]
            if streams and streams[0]["video_frames"] >= frames:
                return dict(streams[0])
            assert publisher.returncode is None, await publisher.stderr.read()  # type: ignore[union-attr]
            await asyncio.sleep(0.2)


async def _cut_within(publisher: asyncio.subprocess.Process, seconds: float) -> int:
    """The publisher's exit status once the platform has cut it (it was meant to run 30 s)."""
    try:
        async with asyncio.timeout(seconds):
            return await publisher.wait()
    finally:
        if publisher.returncode is None:
            publisher.kill()
            await publisher.wait()


async def test_a_channel_made_through_the_api_goes_live_and_rotating_its_key_cuts_the_publisher(
    database: str | None, tmp_path: Path
) -> None:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path, database=database)
    async with Platform(settings) as platform, aiohttp.ClientSession(
        f"http://127.0.0.1:{platform.ports.http}"
    ) as http:
        async def call(method: str, path: str, token: str | None = None, json: Any = None) -> tuple[int, Any]:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with http.request(method, f"/api/v1{path}", json=json, headers=headers) as response:
                return response.status, await response.json()

        creds = {"username": "streamer", "password": "a long enough password"}
        assert (await call("POST", "/accounts", json=creds))[0] == 201
        _, session = await call("POST", "/sessions", json=creds)
        token = session["token"]
        status, channel = await call("POST", "/channels", token, {"name": "e2e", "title": "End to end"})
        assert status == 201
        old_key = channel["stream_key"]

        publisher = await asyncio.create_subprocess_exec(
            *ffmpeg_args(platform.ports.rtmp, old_key, 30),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        try:
            health = await _wait_live(call, publisher)
            assert health["channel"] == "e2e" and health["protocol"] == "rtmp"
            assert (health["video_codec"], health["width"], health["height"]) == ("h264", 320, 240)
            assert health["fps"] > 0 and health["bitrate_kbps"] > 0 and health["uptime_s"] > 0
            # the owner sees the broadcaster's address; viewers never do
            _, owned = await call("GET", "/channels/e2e", token)
            address = owned["publisher_address"]
            assert address.startswith("127.0.0.1:")
            for path in ("/streams", "/channels/e2e", "/channels"):
                status, public = await call("GET", path)
                assert status == 200 and address not in str(public) and "remote" not in str(public)
            _, public = await call("GET", "/channels/e2e")
            assert public["live"] is True and public["stream"]["channel"] == "e2e"

            _, rotated = await call("POST", "/channels/e2e/stream-key", token)
            assert (await call("GET", "/channels/e2e"))[1]["live"] is False  # off air at once
            assert await _cut_within(publisher, 10) != 0  # and the publisher was disconnected
        finally:
            if publisher.returncode is None:
                publisher.kill()
            await publisher.wait()

        refused = await asyncio.create_subprocess_exec(  # it reconnects with the old key: refused
            *ffmpeg_args(platform.ports.rtmp, old_key, 2),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(15):
            _, stderr = await refused.communicate()
        assert refused.returncode != 0 and "unknown stream key" in stderr.decode(errors="replace")
        assert (await call("GET", "/channels/e2e"))[1]["live"] is False

        accepted = await asyncio.create_subprocess_exec(  # the new key works, until the owner stops it
            *ffmpeg_args(platform.ports.rtmp, rotated["stream_key"], 30),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        try:
            await _wait_live(call, accepted, frames=10)
            stranger = await _login(call, "stranger")
            assert (await call("POST", "/channels/e2e/stream/stop", stranger))[0] == 403
            assert (await call("POST", "/channels/e2e/stream/stop"))[0] == 401
            assert (await call("GET", "/channels/e2e"))[1]["live"] is True
            status, body = await call("POST", "/channels/e2e/stream/stop", token)
            assert (status, body) == (200, {"stopped": True})
            assert (await call("GET", "/channels/e2e"))[1]["live"] is False
            assert await _cut_within(accepted, 10) != 0
            assert await call("POST", "/channels/e2e/stream/stop", token) == (200, {"stopped": False})
        finally:
            if accepted.returncode is None:
                accepted.kill()
            await accepted.wait()


async def _login(call: Any, username: str) -> str:
    creds = {"username": username, "password": "another long password"}
    assert (await call("POST", "/accounts", json=creds))[0] == 201
    _, session = await call("POST", "/sessions", json=creds)
    return str(session["token"])

"""Ad breaks behind `--public-hls-url`: the playlists come from a CDN edge, which serves ``/hls/``
only (live.cdn.config answers 404 elsewhere) and never sees the viewer's cookie. So the
interstitial must name its asset list by the platform's own absolute URL: a relative one would
resolve against the edge and 404, and lose the per-viewer (subscriber) answer."""

from __future__ import annotations

import asyncio
import contextlib
import re
from pathlib import Path

import aiohttp
import pytest
from live.config import ServeSettings
from live.serve import Platform

pytestmark = [pytest.mark.slow, pytest.mark.ffmpeg]

CDN = "http://cdn.example.test:8443"


async def test_the_interstitial_names_the_platforms_asset_list_when_a_cdn_serves_playlists(
        tmp_path: Path) -> None:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path, public_hls_url=CDN)
    async with Platform(settings) as platform, aiohttp.ClientSession() as http:
        site = f"http://127.0.0.1:{platform.ports.http}"
        credentials = {"username": "streamer", "password": "correct horse battery staple"}
        async with http.post(f"{site}/api/v1/accounts", json=credentials) as response:
            assert response.status == 201
        async with http.post(f"{site}/api/v1/sessions", json=credentials) as response:
            auth = {"Authorization": f"Bearer {(await response.json())['token']}"}
        async with http.post(f"{site}/api/v1/channels", json={"name": "demo"}, headers=auth) as response:
            assert response.status == 201
            key = (await response.json())["stream_key"]
        publisher = await asyncio.create_subprocess_exec(
            "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
            "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
            "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "40",
            "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
            "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", f"rtmp://127.0.0.1:{platform.ports.rtmp}/live/{key}")
        try:
            async with asyncio.timeout(30):
                while True:
                    async with http.get(f"{site}/hls/demo/master.m3u8") as response:
                        if response.status == 200:
                            master = await response.text()
                            break
                    await asyncio.sleep(0.25)
                status = 0
                while status != 201:  # the origin takes a moment to know the next segment boundary
                    async with http.post(f"{site}/api/v1/channels/demo/ad-breaks", json={"duration_s": 30},
                                         headers=auth) as response:
                        status, ad_break = response.status, await response.json()
                    assert status in (201, 409), ad_break
                    await asyncio.sleep(0.25)
                rendition = next(line for line in master.splitlines() if line and not line.startswith("#"))
                found = None
                while found is None:
                    async with http.get(f"{site}/hls/demo/{rendition}") as response:
                        found = re.search(r'X-ASSET-LIST="([^"]+)"', await response.text())
                    await asyncio.sleep(0.25)
        finally:
            with contextlib.suppress(ProcessLookupError):
                publisher.kill()
            await publisher.wait()
        url = found.group(1)
        assert url == f"{site}/api/v1/ad-breaks/{ad_break['id']}/asset-list", url
        async with http.get(url) as response:
            assert response.status == 200 and (await response.json()) == {"ASSETS": []}

"""`live serve --public-hls-url`: the viewer page and the API send players to the CDN edge."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from live.cli import build_parser
from live.config import ChannelSeed, ServeSettings
from live.serve import Platform
from live.webui import content_security_policy

EDGE = "https://edge.example:8443"


def test_the_flag_is_parsed_and_checked() -> None:
    args = build_parser().parse_args(["serve", "--public-hls-url", EDGE])
    assert args.public_hls_url == EDGE
    for bad in ("ftp://edge", "https://edge/x?y=1", 'https://edge/"onload', "edge:8443"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["serve", "--public-hls-url", bad])
    with pytest.raises(ValueError, match="public-hls-url"):
        ServeSettings(public_hls_url="https://edge/a b")


async def test_viewer_page_and_channels_api_hand_out_the_edge(tmp_path: Path) -> None:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path,
                             channels=(ChannelSeed("cdnshow", "cdnshow_key_1"),),
                             public_hls_url=EDGE + "/")
    async with Platform(settings) as platform, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{platform.ports.http}"
        async with http.get(f"{base}/watch/cdnshow") as page:
            text = await page.text()
            policy = page.headers["Content-Security-Policy"]
        async with http.get(f"{base}/api/v1/channels/cdnshow") as response:
            channel = await response.json()
        chat = f"ws://127.0.0.1:{platform.ports.chat} wss://127.0.0.1:{platform.ports.chat}"
    assert f"{EDGE}/hls/cdnshow/master.m3u8" in text
    assert f"connect-src 'self' {EDGE} {chat};" in policy and f"blob: {EDGE};" in policy
    assert channel["hls_url"] == f"{EDGE}/hls/cdnshow/master.m3u8"
    assert channel["watch_url"].endswith("/watch/cdnshow")


async def test_without_the_flag_players_use_this_origin(tmp_path: Path) -> None:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path,
                             channels=(ChannelSeed("cdnshow", "cdnshow_key_1"),))
    async with Platform(settings) as platform, aiohttp.ClientSession() as http:
        base = f"http://127.0.0.1:{platform.ports.http}"
        async with http.get(f"{base}/watch/cdnshow") as page:
            text = await page.text()
            chat = f"ws://127.0.0.1:{platform.ports.chat} wss://127.0.0.1:{platform.ports.chat}"
            assert page.headers["Content-Security-Policy"] == content_security_policy(None, chat)
        async with http.get(f"{base}/api/v1/channels/cdnshow") as response:
            channel = await response.json()
    assert 'data-src="/hls/cdnshow/master.m3u8"' in text
    origin_base = channel["watch_url"].removesuffix("/watch/cdnshow")
    assert channel["hls_url"] == f"{origin_base}/hls/cdnshow/master.m3u8"

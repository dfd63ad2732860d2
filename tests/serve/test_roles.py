"""`live serve --roles`: each role alone opens only what it needs; bad combinations are refused."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import pytest
from live.cli import _serve_settings, build_parser
from live.config import ServeSettings, parse_roles
from live.serve import Platform

TOKEN = "roles-ingest-token-000001"


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.mark.parametrize("text", ["", "ingest,edge", ",", "origin,,cdn"])
def test_unknown_or_no_roles_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="subset of ingest,origin,api,chat"):
        parse_roles(text)


@pytest.mark.parametrize(("fields", "reason"), [
    ({"roles": frozenset({"ingest"})}, "needs --origin"),
    ({"origins": ("http://127.0.0.1:8081",)}, "needs --ingest-token"),
    ({"roles": frozenset({"origin"}), "origins": ("http://127.0.0.1:8081",),
      "ingest_token": TOKEN}, "add ingest to --roles"),
    ({"origins": ("ftp://127.0.0.1",), "ingest_token": TOKEN}, "expected http"),
    ({"ingest_token": "short"}, "at least 16"),
    ({"control_plane": "redis://127.0.0.1:6379"}, "expected nats://"),
])
def test_inconsistent_scale_out_settings_are_refused(fields: dict[str, object], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        ServeSettings(**fields)  # type: ignore[arg-type]


def test_the_cli_builds_an_ingest_nodes_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIVETWIN_INGEST_TOKEN", raising=False)
    args = build_parser().parse_args([
        "serve", "--roles", "ingest", "--origin", "http://10.0.0.2:8080",
        "--origin", "http://10.0.0.3:8080", "--ingest-token", TOKEN, "--dev"])
    settings = _serve_settings(args)
    assert settings.roles == frozenset({"ingest"})
    assert settings.origins == ("http://10.0.0.2:8080", "http://10.0.0.3:8080")
    assert settings.ingest_token == TOKEN
    default = _serve_settings(build_parser().parse_args(["serve", "--dev"]))
    assert default.roles == frozenset({"ingest", "origin", "api", "chat"}) and not default.origins


async def test_an_origin_node_serves_hls_and_ingest_only(tmp_path: Path) -> None:
    rtmp, http, chat = _free_ports(3)
    settings = ServeSettings(host="127.0.0.1", rtmp_port=rtmp, http_port=http, chat_port=chat,
                             data_dir=tmp_path, roles=frozenset({"origin"}), ingest_token=TOKEN,
                             srt_port=None)
    async with Platform(settings) as platform:
        assert platform.repo is None and platform.rtmp is None and platform.chat is None
        assert platform.dvr is not None  # the origin keeps the DVR window of what is pushed
        ports = platform.ports
        assert ports.rtmp == 0 and ports.chat == 0
        base = f"http://127.0.0.1:{ports.http}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/hls/alpha/master.m3u8") as response:
                assert response.status == 404  # the origin's route, nothing live
            async with session.get(f"{base}/api/v1/streams") as response:
                assert response.status == 404  # no API here
            async with session.post(f"{base}/ingest/alpha/abc/720p", data=b"x") as response:
                assert response.status == 401
            async with session.get(f"{base}/metrics") as response:
                assert response.status == 200
                text = await response.text()
        assert "livetwin_ingest_refused_total 1.0" in text
        assert "livetwin_ingest_pushes 0.0" in text and "livetwin_origin_held_requests" in text


async def test_an_api_and_chat_node_has_no_media_path(tmp_path: Path) -> None:
    rtmp, http, chat = _free_ports(3)
    settings = ServeSettings(host="127.0.0.1", rtmp_port=rtmp, http_port=http, chat_port=chat,
                             data_dir=tmp_path, roles=frozenset({"api", "chat"}), srt_port=None)
    async with Platform(settings) as platform:
        assert platform.rtmp is None and platform.media_paths is None and platform.chat is not None
        assert platform.dvr is None
        base = f"http://127.0.0.1:{platform.ports.http}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/api/v1/streams") as response:
                assert response.status == 200
            async with session.get(f"{base}/hls/alpha/master.m3u8") as response:
                assert response.status == 404
            async with session.post(f"{base}/ingest/alpha/abc/720p", data=b"x") as response:
                assert response.status in (404, 405)
        with socket.socket() as sock:  # no RTMP listener
            assert sock.connect_ex(("127.0.0.1", rtmp)) != 0

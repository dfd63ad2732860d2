"""/ops and the admin role over `live serve`: only accounts named by ``--admin`` get the page
and the /metrics pass-through, which works with a metrics token and a separate metrics port; a
name nobody holds stops the server from starting. The page in Chromium (streams, rates, axe) is
test_web_more_pages.py."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from live.cli import _serve_settings, build_parser
from live.config import ServeSettings
from live.serve import Platform

from .test_web_accounts import PASSWORD, _browser, _csrf, _sign_up


async def _make_accounts(data: Path, *names: str) -> None:
    async with Platform(ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=data)) as first, \
            _browser() as http:
        for name in names:
            assert (await _sign_up(http, f"http://127.0.0.1:{first.ports.http}", name)).status == 303


async def test_only_admins_open_the_ops_page_and_its_metrics(tmp_path: Path) -> None:
    await _make_accounts(tmp_path, "boss", "streamer")
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path,
                             admins=("BOSS",), node_id="node-a")
    async with Platform(settings) as platform:
        base = f"http://127.0.0.1:{platform.ports.http}"
        async with _browser() as anonymous:
            async with anonymous.get(f"{base}/ops", allow_redirects=False) as response:
                assert response.status == 303 and response.headers["Location"] == "/login?next=/ops"
            async with anonymous.get(f"{base}/ops/metrics", allow_redirects=False) as response:
                assert response.status == 303
        async with _browser() as streamer:
            await _log_in(streamer, base, "streamer")
            for path in ("/ops", "/ops/metrics"):
                async with streamer.get(f"{base}{path}", allow_redirects=False) as response:
                    assert response.status == 403, path
                    assert "livetwin_origin_requests" not in await response.text()
        async with _browser() as boss:
            await _log_in(boss, base, "boss")
            async with boss.get(f"{base}/ops") as response:
                assert response.status == 200
                page = await response.text()
                assert 'data-node="node-a"' in page and "/static/ops.js" in page
                assert response.headers["Cache-Control"] == "no-store"
            async with boss.get(f"{base}/ops/metrics") as response:
                assert response.status == 200 and response.content_type == "text/plain"
                assert 'livetwin_origin_requests_total{kind="part",status="2xx"}' in await response.text()


async def test_ops_reads_metrics_behind_a_token_on_another_port(tmp_path: Path) -> None:
    await _make_accounts(tmp_path, "boss")
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path, admins=("boss",),
                             metrics_listen=("127.0.0.1", 0), metrics_token="m" * 32)
    async with Platform(settings) as platform, _browser() as boss:
        base = f"http://127.0.0.1:{platform.ports.http}"
        async with boss.get(f"http://127.0.0.1:{platform.ports.metrics}/metrics") as response:
            assert response.status == 401  # the browser itself cannot read it
        await _log_in(boss, base, "boss")
        async with boss.get(f"{base}/ops/metrics") as response:
            assert response.status == 200
            assert "livetwin_live_streams" in await response.text()


async def test_an_admin_name_nobody_holds_stops_the_server(tmp_path: Path) -> None:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path, admins=("ghost",))
    with pytest.raises(RuntimeError, match="--admin 'ghost': no such account"):
        async with Platform(settings):
            pass


async def test_without_admins_the_ops_page_refuses_everyone(tmp_path: Path) -> None:
    settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=tmp_path)
    async with Platform(settings) as platform, _browser() as http:
        base = f"http://127.0.0.1:{platform.ports.http}"
        assert (await _sign_up(http, base, "someone")).status == 303
        async with http.get(f"{base}/ops", allow_redirects=False) as response:
            assert response.status == 403


def test_the_admin_flag_repeats() -> None:
    args = build_parser().parse_args(["serve", "--admin", "alice", "--admin", "bob"])
    assert _serve_settings(args).admins == ("alice", "bob")


async def _log_in(http: aiohttp.ClientSession, base: str, username: str) -> None:
    csrf = await _csrf(http, f"{base}/login")
    form = {"username": username, "password": PASSWORD, "csrf": csrf}
    async with http.post(f"{base}/login", data=form, allow_redirects=False) as response:
        assert response.status == 303, await response.text()

"""The web UI's routes over aiohttp's test client: pages, escaping, static files, vendored hls.js."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from string import Template

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from live.ingest.registry import LiveStreamRegistry
from live.media.units import VideoConfig
from live.webui import (
    CONTENT_SECURITY_POLICY,
    DASH_JS_PATH,
    HLS_JS_PATH,
    default_web_root,
    render_watch,
    setup_web,
)

from ..conftest import in_ci, skip_or_fail

MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(streams: LiveStreamRegistry, web_root: Path | None = None
                   ) -> TestClient[web.Request, web.Application]:
        app = web.Application()
        setup_web(app, streams, web_root)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
def web_root_without_node_modules(tmp_path: Path) -> Path:
    root = tmp_path / "web"
    source = default_web_root()
    shutil.copytree(source / "templates", root / "templates")
    shutil.copytree(source / "static", root / "static")
    return root


def _video_config(width: int, height: int) -> VideoConfig:
    return VideoConfig(codec="h264", codec_string="avc1.64001f", width=width, height=height, record=b"")


async def test_landing_page_lists_live_channels_with_links_to_their_viewer(
        make_client: MakeClient) -> None:
    streams = LiveStreamRegistry()
    live = streams.claim("demo_chan", "rtmp", "127.0.0.1:5000")
    live.set_video_config(_video_config(1280, 720))
    client = await make_client(streams)
    response = await client.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    text = await response.text()
    assert ('<a href="/watch/demo_chan"><span class="thumb none" aria-hidden="true"></span>'
            '<span class="name">demo_chan</span></a>') in text
    assert "1280x720" in text
    assert 'id="empty" class="empty" hidden' in text
    assert "127.0.0.1:5000" not in text  # the publisher's address is not the viewers' business


async def test_landing_page_says_nobody_is_live_when_the_registry_is_empty(
        make_client: MakeClient) -> None:
    client = await make_client(LiveStreamRegistry())
    text = await (await client.get("/")).text()
    assert "<li>" not in text
    assert 'id="empty" class="empty" >' in text


async def test_a_channel_that_ends_leaves_the_landing_page(make_client: MakeClient) -> None:
    streams = LiveStreamRegistry()
    stream = streams.claim("gone_soon", "rtmp", "127.0.0.1:5000")
    client = await make_client(streams)
    assert "/watch/gone_soon" in await (await client.get("/")).text()
    streams.release(stream)
    assert "/watch/gone_soon" not in await (await client.get("/")).text()


async def test_a_name_that_is_not_a_channel_name_is_never_rendered(make_client: MakeClient) -> None:
    streams = LiveStreamRegistry()
    streams.claim('x"><script>alert(1)</script>', "rtmp", "127.0.0.1:5000")
    client = await make_client(streams)
    text = await (await client.get("/")).text()
    assert "<script>alert" not in text
    assert "alert(1)" not in text


async def test_viewer_page_points_hls_js_at_the_channels_multivariant_playlist(
        make_client: MakeClient) -> None:
    client = await make_client(LiveStreamRegistry())
    response = await client.get("/watch/demo")
    assert response.status == 200
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    text = await response.text()
    assert 'data-src="/hls/demo/master.m3u8"' in text
    assert 'data-channel="demo"' in text
    assert '<script src="/vendor/hls.js"></script>' in text
    assert '<script src="/static/watch.js"></script>' in text
    assert "autoplay muted playsinline" in text


async def test_viewer_page_with_player_dash_points_dash_js_at_the_channels_mpd(
        make_client: MakeClient) -> None:
    client = await make_client(LiveStreamRegistry())
    response = await client.get("/watch/demo?player=dash")
    assert response.status == 200
    text = await response.text()
    assert 'data-src="/dash/demo/manifest.mpd"' in text and 'data-player="dash"' in text
    assert '<script src="/vendor/dash.js"></script>' in text
    assert '<script src="/static/watch_dash.js"></script>' in text
    assert (await client.get("/watch/demo?player=flash")).status == 400
    script = await client.get("/static/watch_dash.js")
    assert script.status == 200 and "livetwinStats" in await script.text()


async def test_vendor_route_serves_the_installed_dash_js(make_client: MakeClient) -> None:
    if not (default_web_root() / DASH_JS_PATH).is_file():
        skip_or_fail("dash.js not installed: run `npm ci --prefix platform/web`")
    client = await make_client(LiveStreamRegistry())
    response = await client.get("/vendor/dash.js")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert await response.read() == (default_web_root() / DASH_JS_PATH).read_bytes()


@pytest.mark.parametrize("path", [
    "/watch/ab",                        # too short
    "/watch/" + "a" * 26,               # too long
    "/watch/Demo",                      # upper case
    "/watch/de-mo",
    "/watch/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "/watch/demo%22onload%3D",
])
async def test_viewer_page_for_an_invalid_channel_name_is_404(make_client: MakeClient, path: str) -> None:
    client = await make_client(LiveStreamRegistry())
    response = await client.get(path)
    assert response.status == 404
    text = await response.text()
    assert "<script" not in text
    assert "3-25 characters" in text or "Not Found" in text


@given(st.text(max_size=60))
@settings(max_examples=200)
def test_rendered_viewer_values_never_contain_markup(channel: str) -> None:
    rendered = render_watch(Template("$channel|$src"), channel)
    for forbidden in '<>"\'':
        assert forbidden not in rendered


async def test_static_files_are_served_with_their_type_and_nothing_outside_static(
        make_client: MakeClient) -> None:
    client = await make_client(LiveStreamRegistry())
    response = await client.get("/static/watch.js")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert "livetwinStats" in await response.text()
    css = await client.get("/static/style.css")
    assert css.status == 200
    assert css.headers["Content-Type"].startswith("text/css")
    for path in ("/static/missing.js", "/static/..%2Ftemplates%2Fwatch.html", "/static/watch.html",
                 "/static/%2E%2E%2F%2E%2E%2Flive%2Fwebui.py"):
        assert (await client.get(path)).status == 404, path


async def test_vendor_route_says_how_to_install_hls_js_when_node_modules_is_missing(
        make_client: MakeClient, web_root_without_node_modules: Path) -> None:
    client = await make_client(LiveStreamRegistry(), web_root_without_node_modules)
    response = await client.get("/vendor/hls.js")
    assert response.status == 503
    assert "npm ci --prefix platform/web" in await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    # the pages themselves still work from that root
    assert (await client.get("/watch/demo")).status == 200


async def test_vendor_route_serves_the_installed_hls_js(make_client: MakeClient) -> None:
    if not (default_web_root() / HLS_JS_PATH).is_file():
        if in_ci():
            pytest.fail("CI must run `npm ci --prefix platform/web` before the tests")
        pytest.skip("hls.js not installed: run `npm ci --prefix platform/web`")
    client = await make_client(LiveStreamRegistry())
    response = await client.get("/vendor/hls.js")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    body = await response.read()
    assert body == (default_web_root() / HLS_JS_PATH).read_bytes()


def test_setup_fails_at_start_when_the_templates_are_missing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="templates missing"):
        setup_web(web.Application(), LiveStreamRegistry(), tmp_path)

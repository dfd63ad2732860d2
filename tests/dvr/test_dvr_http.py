"""The DVR over real HTTP, beside the live origin: playlists, delta updates, blocking reload at
the live end, segments from disk byte for byte, the VOD, bad directives and the videos API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import m3u8
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from live.api.app import setup_api
from live.api.storage import open_repository
from live.dvr.app import setup_dvr
from live.dvr.service import Dvr
from live.ingest.registry import LiveStreamRegistry
from live.origin.app import setup_origin
from live.origin.store import OriginStore

from .conftest import Clock, Feed, make_dvr

Client = TestClient[web.Request, web.Application]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dvr(tmp_path: Path, clock: Clock) -> Dvr:
    return make_dvr(tmp_path / "dvr", clock, window_s=3600.0)


@pytest.fixture
async def client(tmp_path: Path, dvr: Dvr) -> AsyncIterator[Client]:
    app = web.Application()
    repo = await open_repository(None, tmp_path)
    await repo.ensure_channel("alpha", "key_alpha_123")
    setup_api(app, repo, LiveStreamRegistry(), public_base_rtmp="rtmp://h/live",
              public_base_http="http://h:8080", videos=dvr.videos)
    setup_dvr(app, dvr.catalog, dvr.store)
    setup_origin(app, OriginStore())
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await repo.close()


async def text_of(client: Client, path: str) -> tuple[int, str]:
    response = await client.get(path)
    return response.status, await response.text()


async def test_the_dvr_playlists_cover_the_window_and_segments_come_from_disk_byte_for_byte(
        client: Client, dvr: Dvr, clock: Clock) -> None:
    feed = Feed(dvr, clock).start()
    written = [feed.segment() for _ in range(5)]
    status, text = await text_of(client, "/hls/alpha/dvr/master.m3u8")
    assert status == 200
    master = m3u8.loads(text)
    assert len(master.playlists) == 6 and master.playlists[0].uri == "1080p60.m3u8"
    status, text = await text_of(client, "/hls/alpha/dvr/720p.m3u8")
    assert status == 200
    media = m3u8.loads(text)
    assert len(media.segments) == 5
    assert media.segments[0].program_date_time is not None
    assert "PART-INF" not in text and "CAN-BLOCK-RELOAD=YES" in text
    for segment, sent in zip(media.segments, written, strict=True):
        response = await client.get(f"/hls/alpha/dvr/{segment.uri}")
        assert response.status == 200
        assert "immutable" in response.headers["Cache-Control"]
        assert await response.read() == sent["720p"]
    init = await client.get(f"/hls/alpha/dvr/{media.segment_map[0].uri}")
    assert init.status == 200 and await init.read() == b"init-720p" * 4


async def test_a_delta_update_skips_all_but_the_last_can_skip_until_seconds(
        client: Client, dvr: Dvr, clock: Clock) -> None:
    Feed(dvr, clock).start().run(1800)
    _, full = await text_of(client, "/hls/alpha/dvr/720p.m3u8")
    _, delta = await text_of(client, "/hls/alpha/dvr/720p.m3u8?_HLS_skip=YES")
    assert full.count("#EXTINF") == 900
    assert "#EXT-X-SKIP:SKIPPED-SEGMENTS=840" in delta  # 120 s = 60 segments stay
    assert delta.count("#EXTINF") == 60
    assert len(delta) < len(full) / 10


async def test_blocking_reload_waits_for_the_next_segment_at_the_live_end(
        client: Client, dvr: Dvr, clock: Clock) -> None:
    feed = Feed(dvr, clock).start()
    feed.run(6)
    recording = dvr.catalog.recording("alpha")
    assert recording is not None
    next_msn = recording.id + 3
    held = asyncio.create_task(text_of(client, f"/hls/alpha/dvr/720p.m3u8?_HLS_msn={next_msn}"))
    await asyncio.sleep(0.1)
    assert not held.done()
    feed.segment()
    status, text = await asyncio.wait_for(held, 2)
    assert status == 200 and f"720p/{next_msn}.m4s" in text


@pytest.mark.parametrize("query", ["_HLS_skip=NO", "_HLS_part=1", "_HLS_msn=-1",
                                   "_HLS_msn=999999999999"])
async def test_bad_directives_and_msns_past_the_live_end_get_400(
        client: Client, dvr: Dvr, clock: Clock, query: str) -> None:
    Feed(dvr, clock).start().run(6)
    status, _ = await text_of(client, f"/hls/alpha/dvr/720p.m3u8?{query}")
    assert status == 400


async def test_msns_before_the_window_answer_at_once_and_their_segments_404(
        client: Client, dvr: Dvr, clock: Clock) -> None:
    Feed(dvr, clock).start().run(3700)  # the 1 h window has moved on
    recording = dvr.catalog.recording("alpha")
    assert recording is not None
    status, _ = await text_of(client, f"/hls/alpha/dvr/720p.m3u8?_HLS_msn={recording.id}")
    assert status == 200
    assert (await client.get(f"/hls/alpha/dvr/720p/{recording.id}.m4s")).status == 404
    assert (await client.get("/hls/alpha/dvr/720p/abc.m4s")).status == 404
    assert (await client.get("/hls/nobody/dvr/720p.m3u8")).status == 404


async def test_an_ended_stream_is_a_vod_listed_by_the_videos_api(
        client: Client, dvr: Dvr, clock: Clock) -> None:
    Feed(dvr, clock).start().run(20)
    dvr.recorder.end("alpha")
    response = await client.get("/api/v1/channels/alpha/videos")
    assert response.status == 200
    (video,) = (await response.json())["videos"]
    assert video["duration_s"] == 20 and video["live"] is False and video["ended_at"] is not None
    assert video["playback_url"].startswith("http://h:8080/hls/alpha/vod/")
    path = video["playback_url"].removeprefix("http://h:8080")
    assert (await client.get(path)).status == 200
    status, text = await text_of(client, path.replace("master.m3u8", "720p.m3u8"))
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.endswith("#EXT-X-ENDLIST\n")
    status, same = await text_of(client, "/hls/alpha/dvr/720p.m3u8?_HLS_msn=1&_HLS_skip=YES")
    assert same == text  # the latest recording's DVR is its VOD now; directives no longer apply
    assert (await client.get("/api/v1/channels/nobody/videos")).status == 404

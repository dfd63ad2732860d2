"""The origin over real HTTP: blocking reload, preload-hinted parts, errors, caching headers."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import m3u8
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from live.origin.app import setup_origin
from live.origin.store import OriginStore

from .conftest import Feed, make_store

Client = TestClient[web.Request, web.Application]


async def client_for(store: OriginStore) -> Client:
    app = web.Application()
    setup_origin(app, store)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def client(store: OriginStore) -> AsyncIterator[Client]:
    client = await client_for(store)
    try:
        yield client
    finally:
        await client.close()


async def still_held(task: asyncio.Task[object]) -> bool:
    """True when the request has not been answered after the server had a chance to run."""
    for _ in range(20):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    return not task.done()


def playlist_of(text: str) -> m3u8.M3U8:
    return m3u8.loads(text)


async def get_text(client: Client, path: str) -> tuple[int, str]:
    response = await client.get(path)
    return response.status, await response.text()


# -- plain serving --------------------------------------------------------------------------------

async def test_multivariant_and_media_playlists_are_served_with_cors_and_short_ttl(
        client: Client, feed: Feed) -> None:
    feed.segments(2)
    response = await client.get("/hls/alpha/master.m3u8")
    assert response.status == 200
    assert response.content_type == "application/vnd.apple.mpegurl"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "max-age=2" in response.headers["Cache-Control"]
    master = playlist_of(await response.text())
    assert {v.uri for v in master.playlists} == {"720p.m3u8", "360p.m3u8", "audio.m3u8"}
    response = await client.get("/hls/alpha/720p.m3u8")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "public, max-age=1"
    assert playlist_of(await response.text()).server_control.can_block_reload == "YES"


async def test_playlists_are_gzipped_only_when_accepted(client: Client, feed: Feed) -> None:
    feed.segments(2)
    zipped = await client.get("/hls/alpha/720p.m3u8", headers={"Accept-Encoding": "gzip"},
                              auto_decompress=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    text = gzip.decompress(await zipped.read()).decode()
    plain = await client.get("/hls/alpha/720p.m3u8", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    assert await plain.text() == text
    refused = await client.get("/hls/alpha/720p.m3u8", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers


async def test_init_parts_and_segments_are_immutable_bytes(client: Client, feed: Feed) -> None:
    feed.segments(1)
    feed.parts(2)
    state = feed.store.channel("alpha")
    assert state is not None
    base = f"/hls/alpha/360p/{state.epoch}"
    init = await client.get(f"{base}/init.mp4")
    assert init.status == 200 and await init.read() == feed.renditions[1].data
    assert "immutable" in init.headers["Cache-Control"]
    part = await client.get(f"{base}/1.1.m4s")
    assert part.status == 200 and await part.read() == feed.payload_at("360p", 1, 1)
    assert part.content_type == "video/mp4"
    segment = await client.get(f"{base}/0.m4s")
    assert await segment.read() == b"".join(feed.payload_at("360p", 0, i) for i in range(6))
    assert "immutable" in segment.headers["Cache-Control"]
    audio = await client.get(f"/hls/alpha/audio/{state.epoch}/1.0.m4s")
    assert audio.content_type == "audio/mp4"


@pytest.mark.parametrize("path", [
    "/hls/nobody/master.m3u8",
    "/hls/nobody/720p.m3u8",
    "/hls/alpha/1080p.m3u8",
    "/hls/alpha/1080p/x/0.m4s",
])
async def test_unknown_channels_and_renditions_are_404(client: Client, feed: Feed, path: str) -> None:
    feed.segments(1)
    status, text = await get_text(client, path)
    assert status == 404 and text.strip()


async def test_stale_epoch_and_missing_media_are_404(client: Client, feed: Feed) -> None:
    feed.segments(1)
    state = feed.store.channel("alpha")
    assert state is not None
    assert (await client.get("/hls/alpha/720p/zzzz/0.m4s")).status == 404
    assert (await client.get(f"/hls/alpha/720p/{state.epoch}/7.m4s")).status == 404
    assert (await client.get(f"/hls/alpha/720p/{state.epoch}/0.9.m4s")).status == 404
    assert (await client.get(f"/hls/alpha/720p/{state.epoch}/1.2.m4s")).status == 404  # not hinted
    assert (await client.get(f"/hls/alpha/720p/{state.epoch}/notes.txt")).status == 404


async def test_preflight_allows_cross_origin_gets(client: Client) -> None:
    response = await client.options("/hls/alpha/720p.m3u8", headers={
        "Origin": "https://player.example", "Access-Control-Request-Method": "GET"})
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in response.headers["Access-Control-Allow-Methods"]


# -- blocking reload --------------------------------------------------------------------------------

async def test_held_request_is_released_by_publishing_the_part(client: Client, feed: Feed) -> None:
    feed.segments(1)
    feed.parts(2)  # last is 1.1
    task = asyncio.ensure_future(get_text(client, "/hls/alpha/720p.m3u8?_HLS_msn=1&_HLS_part=2"))
    assert await still_held(task)
    feed.part()  # 1.2
    status, text = await task
    assert status == 200
    uris = [p.uri for s in playlist_of(text).segments for p in s.parts]
    assert uris[-1].endswith("/1.2.m4s")


async def test_blocking_response_is_cacheable_under_its_query(client: Client, feed: Feed) -> None:
    feed.segments(1)
    response = await client.get("/hls/alpha/720p.m3u8?_HLS_msn=0")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "public, max-age=12"


async def test_part_past_the_segments_last_part_waits_for_the_next_segment(
        client: Client, feed: Feed) -> None:
    feed.segments(2)  # segment 1 closed at part 5
    task = asyncio.ensure_future(get_text(client, "/hls/alpha/720p.m3u8?_HLS_msn=1&_HLS_part=6"))
    assert await still_held(task)
    feed.part()  # 2.0
    status, text = await task
    assert status == 200 and "/2.0.m4s" in text


async def test_msn_only_waits_for_the_whole_segment(client: Client, feed: Feed) -> None:
    feed.segments(1)
    feed.parts(4)
    task = asyncio.ensure_future(get_text(client, "/hls/alpha/720p.m3u8?_HLS_msn=1"))
    feed.part()  # 1.4: segment 1 still open
    assert await still_held(task)
    feed.part()  # 1.5 closes it
    status, text = await task
    assert status == 200 and playlist_of(text).segments[1].uri.endswith("/1.m4s")


async def test_many_held_requests_are_all_released_by_one_part(client: Client, feed: Feed) -> None:
    feed.segments(1)
    tasks = [asyncio.ensure_future(get_text(client, "/hls/alpha/360p.m3u8?_HLS_msn=1&_HLS_part=0"))
             for _ in range(50)]
    await asyncio.sleep(0.1)
    assert not any(task.done() for task in tasks)
    feed.part()
    answers = await asyncio.gather(*tasks)
    assert {status for status, _ in answers} == {200}
    assert len({text for _, text in answers}) == 1


async def test_playlist_before_any_part_is_held_until_the_first(client: Client, store: OriginStore) -> None:
    feed = Feed(store).start()
    task = asyncio.ensure_future(get_text(client, "/hls/alpha/720p.m3u8"))
    assert await still_held(task)
    feed.part()
    status, text = await task
    assert status == 200 and "/0.0.m4s" in text


@pytest.mark.parametrize(("query", "reason"), [
    ("_HLS_part=1", "requires _HLS_msn"),
    ("_HLS_msn=4", "more than two segments"),
    ("_HLS_msn=1&_HLS_part=11", "advance part limit"),
    ("_HLS_msn=abc", "non-negative"),
    ("_HLS_skip=maybe", "YES or v2"),
])
async def test_bad_directives_get_400_with_a_reason(client: Client, feed: Feed, query: str,
                                                     reason: str) -> None:
    feed.segments(1)
    feed.parts(1)  # last 1.0
    status, text = await get_text(client, f"/hls/alpha/720p.m3u8?{query}")
    assert status == 400
    assert reason in text


async def test_blocking_request_gets_503_after_three_target_durations() -> None:
    store = make_store(target=1, part_target=0.25)
    feed = Feed(store, parts_per_segment=4, part_s=0.25).start()
    feed.segments(1)
    client = await client_for(store)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await client.get("/hls/alpha/720p.m3u8?_HLS_msn=1&_HLS_part=1")
        held = loop.time() - started
        assert response.status == 503
        assert "3 x TARGETDURATION" in await response.text()
        assert response.headers["Cache-Control"] == "no-store"
        assert held >= 3.0 - 0.05  # loose: it did hold the whole allowance
    finally:
        await client.close()


async def test_delta_update_over_http_carries_ext_x_skip(client: Client, feed: Feed) -> None:
    feed.segments(70)
    feed.parts(1)
    status, full = await get_text(client, "/hls/alpha/720p.m3u8")
    status_delta, delta = await get_text(client, "/hls/alpha/720p.m3u8?_HLS_msn=70&_HLS_part=0&_HLS_skip=YES")
    assert status == 200 and status_delta == 200
    assert "#EXT-X-SKIP" not in full
    skip = playlist_of(delta).skip
    # edge at 140.33 s, CAN-SKIP-UNTIL 120 s: segments 0-9 end before 20.33 s
    assert skip is not None and skip.skipped_segments == 10
    assert len(delta) < len(full)


# -- ENDLIST -------------------------------------------------------------------------------------------

async def test_end_releases_held_requests_with_endlist(client: Client, feed: Feed) -> None:
    feed.segments(1)
    task = asyncio.ensure_future(get_text(client, "/hls/alpha/720p.m3u8?_HLS_msn=2"))
    assert await still_held(task)
    feed.store.end("alpha")
    status, text = await task
    assert status == 200 and playlist_of(text).is_endlist


async def test_directives_are_ignored_after_endlist(client: Client, feed: Feed) -> None:
    feed.segments(2)
    feed.store.end("alpha")
    for query in ("_HLS_msn=99", "_HLS_msn=1&_HLS_part=40", "_HLS_msn=2&_HLS_skip=YES"):
        response = await client.get(f"/hls/alpha/720p.m3u8?{query}")
        text = await response.text()
        assert response.status == 200, query
        playlist = playlist_of(text)
        assert playlist.is_endlist and not playlist.skip and "#EXT-X-SKIP" not in text
        assert "#EXT-X-PRELOAD-HINT" not in text


async def test_restarted_channel_turns_held_requests_into_404(client: Client, feed: Feed) -> None:
    feed.segments(1)
    task = asyncio.ensure_future(get_text(client, "/hls/alpha/720p.m3u8?_HLS_msn=1"))
    assert await still_held(task)
    feed.store.open("alpha")
    status, _ = await task
    assert status == 404


# -- preload hints ---------------------------------------------------------------------------------------

async def test_preload_hinted_part_is_held_and_answered_when_complete(client: Client, feed: Feed) -> None:
    feed.segments(1)
    feed.parts(3)
    status, text = await get_text(client, "/hls/alpha/720p.m3u8")
    hint = playlist_of(text).preload_hint.uri
    assert hint.endswith("/1.3.m4s")

    async def fetch() -> tuple[int, bytes, str]:
        response = await client.get(f"/hls/alpha/{hint}")
        return response.status, await response.read(), response.headers["Cache-Control"]

    task = asyncio.ensure_future(fetch())
    assert await still_held(task)
    expected = feed.payload_at("720p", 1, 3)
    feed.part()
    status, body, cache = await task
    assert status == 200 and body == expected and "immutable" in cache


async def test_held_part_request_gets_404_when_the_stream_ends_instead(client: Client, feed: Feed) -> None:
    feed.segments(1)
    state = feed.store.channel("alpha")
    assert state is not None
    task = asyncio.ensure_future(get_text(client, f"/hls/alpha/720p/{state.epoch}/1.0.m4s"))
    assert await still_held(task)
    feed.store.end("alpha")
    status, _ = await task
    assert status == 404


async def test_held_requests_beyond_the_cap_get_503() -> None:
    store = make_store(max_held_requests=2)
    feed = Feed(store).start()
    feed.segments(1)
    client = await client_for(store)
    try:
        held = [asyncio.ensure_future(get_text(client, "/hls/alpha/720p.m3u8?_HLS_msn=1"))
                for _ in range(2)]
        await asyncio.sleep(0.1)
        status, text = await get_text(client, "/hls/alpha/720p.m3u8?_HLS_msn=1")
        assert status == 503 and "overloaded" in text
        feed.segments(1)
        assert [status for status, _ in await asyncio.gather(*held)] == [200, 200]
    finally:
        await client.close()

"""DVR segments from disk over real HTTP (``live.dvr.files``): the answers ``FileResponse`` gave,
header for header (ranges, 304, HEAD included), a body larger than the socket takes at once, the
open-file cache's bound, and no descriptor kept on a segment retention removed."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from live.dvr.app import DVR_HTTP_KEY, setup_dvr
from live.dvr.service import Dvr
from live.origin import responses

from .conftest import Clock, Feed, make_dvr

Client = TestClient[web.Request, web.Application]
#: Callables the app's response hook runs before every response is sent.
BEFORE_SEND = web.AppKey("before_send", list[Callable[[], Awaitable[None]]])
#: Response headers that may differ between two answers of the same file.
VOLATILE = {"Date"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dvr(tmp_path: Path, clock: Clock) -> Dvr:
    return make_dvr(tmp_path / "dvr", clock, window_s=60.0)


@pytest.fixture
async def client(dvr: Dvr) -> AsyncIterator[Client]:
    app = web.Application()
    setup_dvr(app, dvr.catalog, dvr.store)

    async def reference(request: web.Request) -> web.StreamResponse:
        """What the DVR answered before: aiohttp's FileResponse with the same headers."""
        recording = dvr.catalog.recording("alpha")
        assert recording is not None
        path = dvr.store.segment_path("alpha", recording.id, request.match_info["rendition"],
                                      int(request.match_info["msn"]))
        return web.FileResponse(path, headers=responses.headers(responses.IMMUTABLE,
                                                                **{"Content-Type": "video/mp4"}))

    app.router.add_get("/reference/{rendition}/{msn}", reference)
    app[BEFORE_SEND] = []

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        for step in request.app[BEFORE_SEND]:
            await step()

    app.on_response_prepare.append(hook)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


def segment_url(dvr: Dvr, msn_offset: int, rendition: str = "720p") -> tuple[str, str]:
    recording = dvr.catalog.recording("alpha")
    assert recording is not None
    msn = recording.id + msn_offset
    return f"/hls/alpha/dvr/{rendition}/{msn}.m4s", f"/reference/{rendition}/{msn}"


async def answer(client: Client, path: str, method: str = "GET",
                 **headers: str) -> tuple[int, dict[str, str], bytes]:
    async with client.request(method, path, headers=headers) as response:
        body = await response.read()
        return response.status, {k: v for k, v in response.headers.items() if k not in VOLATILE}, body


@pytest.mark.parametrize("headers", [
    {},
    {"Range": "bytes=10-99"},
    {"Range": "bytes=-50"},
    {"Range": "bytes=5000-"},  # past the end: 416
    {"If-None-Match": "*"},
    {"If-Match": '"nope"'},
    {"If-Modified-Since": "Sun, 01 Jan 2090 00:00:00 GMT"},
], ids=["plain", "range", "suffix", "unsatisfiable", "if-none-match", "if-match", "ims"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_segments_get_the_answers_file_response_gave(
        client: Client, dvr: Dvr, clock: Clock, headers: dict[str, str], method: str) -> None:
    Feed(dvr, clock, segment_bytes={"720p": 3000}).start().run(6)
    served, reference = segment_url(dvr, 1)
    got = await answer(client, served, method, **headers)
    want = await answer(client, reference, method, **headers)
    assert got == want
    assert got[0] in (200, 206, 304, 412, 416)


async def test_a_segment_larger_than_the_socket_takes_at_once_arrives_whole(
        client: Client, dvr: Dvr, clock: Clock) -> None:
    big = 24 * 1024 * 1024  # more than a loopback socket buffers: the rest waits for the reader
    feed = Feed(dvr, clock, segment_bytes={"720p": big}, parts_per_segment=4)
    feed.start()
    written = feed.segment()
    served, _ = segment_url(dvr, 0)
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port, limit=1 << 16)
    try:
        for _ in range(2):  # twice on one keep-alive connection: the first answer ended cleanly
            writer.write(f"GET {served} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 200")
            assert f"Content-Length: {big}".encode() in head
            await asyncio.sleep(0.2)  # let the server fill the socket and wait on it
            body = await asyncio.wait_for(reader.readexactly(big), 30)
            assert body == written["720p"]
    finally:
        writer.close()


def open_segment_descriptors(root: Path) -> set[str]:
    """Paths of this process's open descriptors on ``.m4s`` files under ``root``."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(root)) and ".m4s" in target:
            found.add(target)
    return found


async def test_the_open_file_cache_is_bounded_and_lets_go_of_removed_segments(
        client: Client, dvr: Dvr, clock: Clock, tmp_path: Path) -> None:
    feed = Feed(dvr, clock).start()
    feed.run(60)  # the 60 s window: 30 segments of each rendition
    files = client.app[DVR_HTTP_KEY].files
    files.capacity = 8
    for offset in range(12):
        served, _ = segment_url(dvr, offset)
        status, _, _ = await answer(client, served)
        assert status == 200
    assert len(files) == 8
    assert len(open_segment_descriptors(tmp_path)) == 8

    feed.run(20)  # retention removes the ten oldest segments: the first twelve minus two
    held = open_segment_descriptors(tmp_path)
    assert not any("(deleted)" in target for target in held), held
    assert len(held) == 2
    served, _ = segment_url(dvr, 0)
    assert (await answer(client, served))[0] == 404

    dvr.recorder.end("alpha")
    clock.now += dvr.settings.vod_retention_s + 1
    dvr.sweep()  # the VOD expires: its files go, and so do their descriptors
    assert open_segment_descriptors(tmp_path) == set()


async def test_a_file_the_cache_closed_while_the_headers_went_out_is_sent_all_the_same(
        client: Client, dvr: Dvr, clock: Clock) -> None:
    feed = Feed(dvr, clock, segment_bytes={"720p": 3000})
    feed.start()
    written = [feed.segment() for _ in range(3)]
    files = client.app[DVR_HTTP_KEY].files
    files.capacity = 1
    recording = dvr.catalog.recording("alpha")
    assert recording is not None
    other = dvr.store.segment_file("alpha", recording.id, "720p", recording.id + 2)

    async def crowd_out() -> None:
        # a response hook that awaits while another request fills the one-file cache
        await asyncio.sleep(0)
        files.get(other, ("alpha", recording.id), ("720p", recording.id + 2))

    client.app[BEFORE_SEND].append(crowd_out)
    for offset in (0, 1):
        served, _ = segment_url(dvr, offset)
        status, _, body = await answer(client, served)
        assert status == 200 and body == written[offset]["720p"]
    assert len(files) == 1

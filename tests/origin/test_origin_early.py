"""Early answers: a release writes the held requests' answers itself, byte for byte as aiohttp would.

The blocker runs each holder's early answer right after the ``notify`` that makes its position
ready, before any holder wakes; the origin uses it to write one prebuilt answer to every released
blocking reload. These tests pin that the wire bytes do not change (only Date may, with the
second), that connections stay usable, and that every other request takes the normal path.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from live.origin.app import setup_origin
from live.origin.blocking import Blocker, PartTarget, Progress, WaitOutcome
from live.origin.store import OriginStore

from .conftest import Feed


class Rendition:
    def __init__(self) -> None:
        self.progress: Progress | None = Progress(0, 0, False)
        self.ended = False

    def probe(self) -> tuple[bool, Progress | None] | None:
        return (self.ended, self.progress)


# -- the blocker --------------------------------------------------------------------------------


async def test_early_answers_run_after_the_publisher_before_any_holder_wakes() -> None:
    blocker, rend = Blocker(100), Rendition()
    ran: list[tuple[str, bool]] = []
    tasks: list[asyncio.Task[WaitOutcome]] = []
    for name in ("a", "b"):
        def early(name: str = name) -> None:
            ran.append((name, any(task.done() for task in tasks)))
        tasks.append(asyncio.ensure_future(blocker.wait("c", "r", PartTarget(0, 1), rend.probe, 30,
                                                        early)))
    await asyncio.sleep(0)
    rend.progress = Progress(0, 1, False)
    blocker.notify("c", "r", rend.progress, False)
    assert ran == []  # the publisher's call finishes first (its other renditions' parts)
    await asyncio.sleep(0)
    assert ran == [("a", False), ("b", False)]  # in holding order, nobody awake yet
    assert [await task for task in tasks] == [WaitOutcome.READY] * 2


async def test_an_early_answer_never_runs_after_its_wait_returned() -> None:
    blocker, rend = Blocker(100), Rendition()
    ran: list[str] = []
    outcome = await blocker.wait("c", "r", PartTarget(0, 1), rend.probe, 0.01, lambda: ran.append("late"))
    assert outcome is WaitOutcome.TIMEOUT
    kept = asyncio.ensure_future(blocker.wait("c", "r", PartTarget(0, 1), rend.probe, 30,
                                              lambda: ran.append("kept")))
    await asyncio.sleep(0)
    rend.progress = Progress(0, 1, False)
    blocker.notify("c", "r", rend.progress, False)
    assert await kept is WaitOutcome.READY
    assert ran == ["kept"]


async def test_a_failing_early_answer_is_logged_and_its_holder_still_wakes(
        caplog: pytest.LogCaptureFixture) -> None:
    blocker, rend = Blocker(100), Rendition()

    def broken() -> None:
        raise OSError("connection reset")

    task = asyncio.ensure_future(blocker.wait("c", "r", PartTarget(0, 1), rend.probe, 30, broken))
    await asyncio.sleep(0)
    rend.progress = Progress(0, 1, False)
    with caplog.at_level(logging.ERROR, logger="live.origin"):
        blocker.notify("c", "r", rend.progress, False)
        assert await task is WaitOutcome.READY
    assert "early answer failed" in caplog.text


async def test_an_ended_stream_wakes_holders_without_their_early_answers() -> None:
    blocker, rend = Blocker(100), Rendition()
    ran: list[str] = []
    task = asyncio.ensure_future(blocker.wait("c", "r", PartTarget(0, 1), rend.probe, 30,
                                              lambda: ran.append("early")))
    await asyncio.sleep(0)
    rend.ended = True
    blocker.notify("c", None, None, True)
    assert await task is WaitOutcome.READY
    assert ran == []


# -- over HTTP, raw bytes ---------------------------------------------------------------------


@pytest.fixture
async def server(store: OriginStore) -> AsyncIterator[TestServer]:
    app = web.Application()
    setup_origin(app, store)
    server = TestServer(app)
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def feed(store: OriginStore) -> Feed:
    feed = Feed(store).start()
    feed.segments(2)
    return feed


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(server: TestServer) -> Conn:
    assert server.port is not None
    return await asyncio.open_connection("127.0.0.1", server.port)


def send(conn: Conn, path: str, *extra: str, version: str = "1.1") -> None:
    head = [f"GET {path} HTTP/{version}", "Host: 127.0.0.1", *extra]
    conn[1].write(("\r\n".join(head) + "\r\n\r\n").encode())


async def answer(conn: Conn) -> tuple[list[str], bytes]:
    """One whole answer: its head lines (Date dropped: it changes with the second) and body."""
    head = (await asyncio.wait_for(conn[0].readuntil(b"\r\n\r\n"), 5)).decode("latin-1")
    lines = [line for line in head.split("\r\n") if line and not line.startswith("Date: ")]
    length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:"))
    return lines, await asyncio.wait_for(conn[0].readexactly(length), 5)


async def held_then_released(server: TestServer, feed: Feed, path: str, *extra: str) -> Conn:
    conn = await connect(server)
    send(conn, path, *extra)
    for _ in range(100):  # bounded: until the origin holds it (at most ~1 s)
        await asyncio.sleep(0.01)
        if held(server) == 1:
            break
    assert held(server) == 1
    feed.part()
    return conn


def wired(store: OriginStore) -> list[tuple[bool, bool]]:
    """The variants whose whole answer a release built (``RenditionState.wire``)."""
    state = store.channel("alpha")
    assert state is not None
    return list(state.renditions["720p"].wire)


def held(server: TestServer) -> int:
    from live.origin.app import BLOCKER_KEY

    return server.app[BLOCKER_KEY].held


@pytest.mark.parametrize("extra", [(), ("Accept-Encoding: gzip, deflate",)], ids=["identity", "gzip"])
async def test_released_answer_is_byte_for_byte_the_normal_answer(
        server: TestServer, feed: Feed, extra: tuple[str, ...]) -> None:
    msn, index = feed.msn, feed.index
    path = f"/hls/alpha/720p.m3u8?_HLS_msn={msn}&_HLS_part={index}"
    early = await held_then_released(server, feed, path, *extra)
    released = await answer(early)
    assert wired(feed.store) == [(False, bool(extra))]  # the release wrote it, not the handler
    normal = await connect(server)  # the part exists now: answered at once, by the normal path
    send(normal, path, *extra)
    assert await answer(normal) == released
    lines, body = released
    assert lines[0] == "HTTP/1.1 200 OK"
    text = (gzip.decompress(body) if extra else body).decode()
    assert f"{msn}.{index}.m4s" in text
    # the connection stays usable: a second request on it is answered normally
    send(early, "/hls/alpha/master.m3u8")
    assert (await answer(early))[0][0] == "HTTP/1.1 200 OK"
    for _, writer in (early, normal):
        writer.close()


@pytest.mark.parametrize(("extra", "version", "close"), [
    (("Connection: close",), "1.1", "Connection: close"),
    ((), "1.0", None),
    (("Connection: keep-alive",), "1.0", "Connection: keep-alive"),
], ids=["close", "http10", "http10-keepalive"])
async def test_other_connections_get_the_normal_answer(
        server: TestServer, feed: Feed, extra: tuple[str, ...], version: str, close: str | None) -> None:
    path = f"/hls/alpha/720p.m3u8?_HLS_msn={feed.msn}&_HLS_part={feed.index}"
    conn = await connect(server)
    send(conn, path, *extra, version=version)
    for _ in range(100):
        await asyncio.sleep(0.01)
        if held(server) == 1:
            break
    feed.part()
    lines, body = await answer(conn)
    assert wired(feed.store) == []
    assert lines[0] == f"HTTP/{version} 200 OK"
    assert body.startswith(b"#EXTM3U")
    if close is not None:
        assert close in lines
    conn[1].close()


async def test_parts_inside_a_complete_segment_go_out_whole_and_head_has_no_body(
        server: TestServer, feed: Feed, store: OriginStore) -> None:
    state = store.channel("alpha")
    assert state is not None
    stored = state.renditions["720p"].part(1, 2, state.timing)
    assert stored is not None and isinstance(stored.data, memoryview)  # a slice of segment 1
    path = f"/hls/alpha/720p/{state.epoch}/1.2.m4s"
    conn = await connect(server)
    send(conn, path)
    lines, body = await answer(conn)
    assert body == feed.payload_at("720p", 1, 2)
    assert lines == ["HTTP/1.1 200 OK", "Access-Control-Allow-Origin: *",
                     "Access-Control-Expose-Headers: Age, Date, Content-Length",
                     "Cache-Control: public, max-age=31536000, immutable",
                     "Content-Type: video/mp4", f"Content-Length: {len(body)}",
                     lines[-1]]
    assert lines[-1].startswith("Server: ")
    conn[1].write(f"HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    head = (await asyncio.wait_for(conn[0].readuntil(b"\r\n\r\n"), 5)).decode()
    assert f"Content-Length: {len(body)}" in head
    send(conn, "/hls/alpha/master.m3u8")  # nothing of a body came after the HEAD's head
    assert (await answer(conn))[0][0] == "HTTP/1.1 200 OK"
    conn[1].close()


async def test_media_written_directly_matches_aiohttps_own_answer(
        server: TestServer, feed: Feed, store: OriginStore) -> None:
    """HTTP/1.1 keep-alive GETs are written directly; HTTP/1.0 ones go through aiohttp (which
    adds Connection: keep-alive there): everything else on the wire is the same."""
    feed.part()  # an open segment: its part is plain bytes, the complete ones' are memoryviews
    state = store.channel("alpha")
    assert state is not None
    base = f"/hls/alpha/720p/{state.epoch}"
    direct, plain = await connect(server), await connect(server)
    for name in ("init.mp4", "1.m4s", "1.2.m4s", f"{feed.msn}.{feed.index - 1}.m4s"):
        send(direct, f"{base}/{name}")
        send(plain, f"{base}/{name}", "Connection: keep-alive", version="1.0")
        ours, theirs = await answer(direct), await answer(plain)
        assert ours[0][0] == "HTTP/1.1 200 OK" and theirs[0][0] == "HTTP/1.0 200 OK"
        assert ours[0][1:] == [line for line in theirs[0][1:] if line != "Connection: keep-alive"]
        assert ours[1] == theirs[1] and len(ours[1]) > 0
    for _, writer in (direct, plain):
        writer.close()


async def test_released_preload_hinted_part_is_written_as_aiohttp_would(
        server: TestServer, feed: Feed, store: OriginStore) -> None:
    state = store.channel("alpha")
    assert state is not None
    path = f"/hls/alpha/720p/{state.epoch}/{feed.msn}.{feed.index}.m4s"
    early = await held_then_released(server, feed, path)
    ours = await answer(early)
    assert state.renditions["720p"].part_wire is not None  # the release wrote it
    plain = await connect(server)
    send(plain, path, "Connection: keep-alive", version="1.0")
    theirs = await answer(plain)
    assert ours[0][0] == "HTTP/1.1 200 OK"
    assert ours[0][1:] == [line for line in theirs[0][1:] if line != "Connection: keep-alive"]
    assert ours[1] == theirs[1] == feed.payload_at("720p", feed.msn, feed.index - 1)
    for _, writer in (early, plain):
        writer.close()


async def test_shutdown_between_a_release_and_its_answers_wakes_holders_unanswered() -> None:
    blocker, rend = Blocker(100), Rendition()
    ran: list[str] = []
    task = asyncio.ensure_future(blocker.wait("c", "r", PartTarget(0, 1), rend.probe, 30,
                                              lambda: ran.append("early")))
    await asyncio.sleep(0)
    rend.progress = Progress(0, 1, False)
    blocker.notify("c", "r", rend.progress, False)
    blocker.drain_all()  # before the scheduled answers run
    assert await task is WaitOutcome.CLOSED
    assert ran == []

"""CMAF push into origins over real HTTP: a ``CmafPush`` feeding two origin servers' stores.

Proves the ingest endpoint's contract (token, malformed pushes, stale streams) and the push
client's (both origins get every part, one dead origin neither blocks nor starves the other, a
restarted origin rebuilds from the next segment start).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from live.dvr.app import setup_dvr
from live.dvr.catalog import DvrSettings
from live.dvr.service import open_dvr
from live.media.units import AudioConfig
from live.origin.app import setup_origin
from live.origin.ingest import PushedStreams, StalePush, setup_ingest
from live.origin.store import OriginSettings, OriginStore
from live.package.fmp4 import audio_track, box, full_box, init_segment
from live.package.ingest_wire import TrackHeader, encode_header, encode_part
from live.package.parts import InitSegment, Part
from live.package.push import CmafPush, PushSettings, StreamPush
from live.package.timing import ChannelTiming

TOKEN = "t" * 24
TIMING = ChannelTiming(target_duration_s=2, part_target_s=0.201)
PARTS_PER_SEGMENT = 9
#: A real CMAF header (the DASH manifest reads its timescale), one per rendition.
HEADER = init_segment([audio_track(AudioConfig("aac", "mp4a.40.2", 48_000, 2, 2, b"\x11\x90"))])
INITS = [InitSegment(name, HEADER, "avc1.64001f,mp4a.40.2", bw, w, h, 30.0)
         for name, bw, w, h in (("720p", 3_000_000, 1280, 720), ("360p", 800_000, 640, 360))]


def chunk(decode_time: int, payload: bytes) -> bytes:
    traf = box(b"traf", full_box(b"tfdt", 1, 0, struct.pack(">Q", decode_time)))
    return box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", 1)), traf) + box(b"mdat", payload)


def make_part(rendition: str, n: int) -> Part:
    msn, index = divmod(n, PARTS_PER_SEGMENT)
    t = n * 18_000
    return Part(rendition, 100 + msn, index, chunk(t, f"{rendition}:{n}".encode()), 0.2,
                index == 0, 1_700_000_000.0 + n * 0.2, index == PARTS_PER_SEGMENT - 1, t)


class Origin:
    """An origin HTTP server (store + LL-HLS routes + ingest) on a real port."""

    def __init__(self) -> None:
        self.store = OriginStore(OriginSettings(timing=TIMING))
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, port: int = 0) -> Origin:
        app = web.Application()
        setup_origin(app, self.store)
        self.endpoint = setup_ingest(app, self.store, TOKEN)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", port)
        await site.start()
        self.port = self.runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        assert self.runner is not None
        await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def segments(self, rendition: str) -> list[int]:
        state = self.store.channel("alpha")
        rend = state.rendition(rendition) if state is not None else None
        return [] if rend is None else [seg.msn for seg in rend.segments]

    def parts(self, rendition: str) -> list[tuple[int, int]]:
        state = self.store.channel("alpha")
        rend = state.rendition(rendition) if state is not None else None
        if rend is None:
            return []
        return [(p.msn, p.index) for seg in rend.segments for p in seg.parts]


async def until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


@pytest.fixture
async def origins() -> AsyncIterator[list[Origin]]:
    started = [await Origin().start(), await Origin().start()]
    yield started
    for origin in started:
        if origin.runner is not None:
            await origin.runner.cleanup()


@pytest.fixture
async def push(origins: list[Origin]) -> AsyncIterator[CmafPush]:
    client = CmafPush(PushSettings(tuple(o.url for o in origins), TOKEN, backoff_max_s=0.3,
                                   end_timeout_s=3.0))
    await client.start()
    yield client
    await client.close()


def publish(sink: StreamPush, start: int, count: int) -> None:
    for n in range(start, start + count):
        for init in INITS:
            sink.publish_part("alpha", make_part(init.rendition, n))


def expected(start: int, count: int) -> list[tuple[int, int]]:
    return [(100 + n // PARTS_PER_SEGMENT, n % PARTS_PER_SEGMENT) for n in range(start, start + count)]


async def test_both_origins_get_every_part_under_the_same_epoch(origins: list[Origin],
                                                                push: CmafPush) -> None:
    sink = push.stream("alpha")
    for init in INITS:
        sink.publish_init("alpha", init, TIMING)
    publish(sink, 0, 20)
    await until(lambda: all(o.parts("360p") == expected(0, 20) for o in origins))
    assert all(o.parts("720p") == expected(0, 20) for o in origins)
    epochs = {o.store.channel("alpha").epoch for o in origins}  # type: ignore[union-attr]
    assert epochs == {sink.stream_id}
    async with aiohttp.ClientSession() as session:
        bodies = []
        for origin in origins:
            async with session.get(f"{origin.url}/hls/alpha/720p.m3u8") as response:
                assert response.status == 200
                bodies.append(await response.text())
            async with session.get(f"{origin.url}/hls/alpha/720p/{sink.stream_id}/101.3.m4s") as media:
                assert await media.read() == make_part("720p", 12).data
    assert bodies[0] == bodies[1]
    async with aiohttp.ClientSession() as session:  # LL-DASH is served from the same store
        for origin in origins:
            async with session.get(f"{origin.url}/dash/alpha/manifest.mpd") as response:
                assert response.status == 200
                assert sink.stream_id in await response.text()
    sink.end("alpha")
    await until(lambda: all(o.store.channel("alpha").ended for o in origins))  # type: ignore[union-attr]


async def test_a_dead_origin_blocks_nothing_and_a_restarted_one_rebuilds_at_a_segment_start(
        origins: list[Origin], push: CmafPush) -> None:
    sink = push.stream("alpha")
    for init in INITS:
        sink.publish_init("alpha", init, TIMING)
    publish(sink, 0, 5)
    await until(lambda: all(o.parts("720p") == expected(0, 5) for o in origins))
    dead, alive = origins
    port = dead.port
    await dead.stop()
    publish(sink, 5, 30)  # never blocks: publish_part only queues
    await until(lambda: alive.parts("720p") == expected(0, 35))
    assert alive.parts("360p") == expected(0, 35)
    restarted = await Origin().start(port)
    origins[0] = restarted
    publish(sink, 35, 20)  # the restarted origin starts at a segment start (one resent or new)
    await until(lambda: alive.parts("720p") == expected(0, 55))
    await until(lambda: restarted.parts("720p")[-1:] == expected(54, 1), 20.0)
    got = restarted.parts("720p")
    assert got[0][1] == 0 and got == expected(got[0][0] * PARTS_PER_SEGMENT - 900,
                                              55 - (got[0][0] * PARTS_PER_SEGMENT - 900))
    assert restarted.store.channel("alpha").epoch == sink.stream_id  # type: ignore[union-attr]


async def test_a_push_without_the_token_gets_401_and_changes_nothing(origins: list[Origin]) -> None:
    origin = origins[0]
    body = encode_header(INITS[0], TIMING) + encode_part(make_part("720p", 0))
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"},
                        {"Authorization": TOKEN}):
            async with session.post(f"{origin.url}/ingest/alpha/abc/720p", data=body,
                                    headers=headers) as response:
                assert response.status == 401
    assert origin.store.channel("alpha") is None


async def test_a_malformed_push_is_closed_and_the_origin_keeps_what_it_had(
        origins: list[Origin]) -> None:
    origin = origins[0]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    good = encode_header(INITS[0], TIMING) + b"".join(
        encode_part(make_part("720p", n)) for n in range(4))
    url = f"{origin.url}/ingest/alpha/abc/720p"
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=good, headers=auth) as response:
            assert response.status == 200
        bad = encode_header(INITS[0], TIMING) + encode_part(make_part("720p", 4))[:-7] \
            + b"garbage!"
        async with session.post(url, data=bad, headers=auth) as response:
            assert response.status == 400
            assert "malformed push" in await response.text()
        async with session.get(f"{origin.url}/hls/alpha/720p/abc/100.3.m4s") as media:
            assert media.status == 200
            assert await media.read() == make_part("720p", 3).data
    assert origin.parts("720p") == expected(0, 4)


def test_pushed_streams_skip_resent_parts_refuse_older_streams_and_restart_after_a_hole() -> None:
    store = OriginStore(OriginSettings(timing=TIMING))
    streams = PushedStreams(store)
    streams.header("alpha", "b0", TrackHeader(INITS[0], TIMING))
    for n in (0, 1, 2, 1, 2, 3):  # 1 and 2 resent after a reconnect
        streams.part("alpha", "b0", make_part("720p", n))
    assert streams.parts_skipped == 2
    with pytest.raises(StalePush):
        streams.header("alpha", "a9", TrackHeader(INITS[0], TIMING))
    streams.part("alpha", "b0", make_part("720p", 6))  # 4 and 5 lost: restart at a segment start
    streams.part("alpha", "b0", make_part("720p", 9))
    state = store.channel("alpha")
    assert state is not None and state.epoch == "b0"
    rend = state.rendition("720p")
    assert rend is not None
    assert [(p.msn, p.index) for seg in rend.segments for p in seg.parts] == [(101, 0)]
    streams.header("alpha", "b1", TrackHeader(INITS[0], TIMING))  # a newer stream replaces it
    assert store.channel("alpha") is not state and store.channel("alpha").epoch == "b1"  # type: ignore[union-attr]


async def test_a_hung_origin_is_dropped_on_stall_and_bounded_while_the_other_gets_everything(
        origins: list[Origin]) -> None:
    """An origin that accepts connections but never reads (a SIGSTOPped process, a black hole):
    its queue stays within its byte bound, its stalled POST is given up, the other origin
    receives every part."""
    accepted: list[asyncio.StreamWriter] = []

    async def never_read(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    hole = await asyncio.start_server(never_read, "127.0.0.1", 0, limit=1024)
    hole_url = f"http://127.0.0.1:{hole.sockets[0].getsockname()[1]}"
    alive = origins[1]
    push = CmafPush(PushSettings((hole_url, alive.url), TOKEN, max_queued_bytes=4 * 1024 * 1024,
                                 stall_timeout_s=0.5, backoff_max_s=0.2, end_timeout_s=1.0))
    await push.start()
    try:
        sink = push.stream("alpha")
        for init in INITS:
            sink.publish_init("alpha", init, TIMING)
        stuck, flowing = push.origins
        for n in range(150):  # 64 kB parts: more than the stuck socket's buffers and bound hold
            for init in INITS:
                part = make_part(init.rendition, n)
                sink.publish_part("alpha", Part(
                    part.rendition, part.msn, part.index, chunk(part.decode_time, bytes(64_000)),
                    part.duration_s, part.independent, part.capture_wallclock, part.segment_end,
                    part.decode_time))
            assert stuck.queued_bytes <= push.settings.max_queued_bytes
            async with asyncio.timeout(10):  # a real-time packager: the live origin keeps up
                while flowing.queued_bytes > 512 * 1024:
                    await asyncio.sleep(0.005)
        await until(lambda: alive.parts("720p")[-1:] == expected(149, 1), 30.0)
        for rendition in ("720p", "360p"):  # every segment, none restarted (older part records
            assert alive.segments(rendition) == list(range(100, 117))  # are retired by then)
        assert alive.parts("360p")[-1:] == expected(149, 1) and flowing.resyncs == 0
        await until(lambda: stuck.failures > 0, 10.0)  # the stalled POST was given up
        assert stuck.resyncs > 0 and len(accepted) >= 1
    finally:
        await push.close()
        hole.close()
        for writer in accepted:
            writer.close()


class Relay:
    """A TCP relay in front of an origin whose connections can be cut (a network blip)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.swallow = False  # drop what the pusher sends (bytes lost in the network)

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter, lossy: bool) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(65536):
                    if lossy and self.swallow:
                        continue
                    dst.write(data)
                    await dst.drain()
            dst.close()
        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))

    def cut(self) -> None:
        self.swallow = False
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()

    def close(self) -> None:
        self.cut()
        assert self.server is not None
        self.server.close()


async def test_a_network_blip_to_a_live_origin_loses_no_part(origins: list[Origin]) -> None:
    """Parts lost in flight when the connection breaks, even across a segment start, are resent
    on the next one (the previous and current segment), and the origin skips those it already
    had: no hole, no restarted rendition."""
    origin = origins[0]
    relay = Relay(origin.port)
    push = CmafPush(PushSettings((await relay.start(),), TOKEN, backoff_max_s=0.2,
                                 end_timeout_s=2.0))
    await push.start()
    try:
        sink = push.stream("alpha")
        for init in INITS:
            sink.publish_init("alpha", init, TIMING)
        for n in range(60):
            if n in (25, 43):  # parts 25..28 (and 43..46) are lost on the way, across a segment
                await asyncio.sleep(0.05)  # start (27, 45): the origin has everything before
                relay.swallow = True
            for init in INITS:
                sink.publish_part("alpha", make_part(init.rendition, n))
            await asyncio.sleep(0.01)
            if n in (28, 46):
                relay.cut()  # the connection breaks; the next one must resend them
        await until(lambda: origin.parts("720p")[-1:] == expected(59, 1))
        await until(lambda: origin.parts("360p")[-1:] == expected(59, 1))
        for rendition in ("720p", "360p"):
            assert origin.segments(rendition) == list(range(100, 107))
        endpoint = origin.endpoint
        assert endpoint.streams.parts_skipped > 0  # resent parts it had
        assert push.origins[0].failures >= 2
    finally:
        await push.close()
        relay.close()


async def test_an_idle_push_is_closed_and_an_orphaned_stream_ended() -> None:
    """A dead ingest host leaves no RST: its push goes idle and is closed; once no push of the
    stream is open for a while, the stream ends (EXT-X-ENDLIST) rather than hanging live."""
    store = OriginStore(OriginSettings(timing=TIMING))
    app = web.Application()
    setup_origin(app, store)
    endpoint = setup_ingest(app, store, TOKEN, idle_timeout_s=0.5, orphan_end_s=0.3)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        body = encode_header(INITS[0], TIMING) + b"".join(
            encode_part(make_part("720p", n)) for n in range(3))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"POST /ingest/alpha/s1/720p HTTP/1.1\r\nHost: x\r\n"
                     f"Authorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n"
                     f"{len(body):x}\r\n".encode() + body + b"\r\n")
        await writer.drain()
        await until(lambda: len(store.channel("alpha").rendition("720p").segments) == 1  # type: ignore[union-attr]
                    if store.channel("alpha") is not None else False, 5.0)
        async with asyncio.timeout(5):
            answer = await reader.read(200)  # then nothing more comes: the push is idle
        assert answer.startswith(b"HTTP/1.1 408"), answer
        writer.close()
        state = store.channel("alpha")
        assert state is not None
        await until(lambda: state.ended, 5.0)
        assert [(p.msn, p.index) for seg in state.rendition("720p").segments  # type: ignore[union-attr]
                for p in seg.parts] == expected(0, 3)  # what it had stays served
        assert endpoint.open_pushes == 0
    finally:
        await runner.cleanup()


async def test_an_origin_records_pushed_streams_in_its_dvr_once_each(tmp_path: Path) -> None:
    """The DVR on an origin node gets what the store accepted: a reconnect's resent header and
    parts are not recorded twice, and the recording serves the pushed segments."""
    store = OriginStore(OriginSettings(timing=TIMING))
    dvr = await open_dvr(tmp_path / "dvr", DvrSettings(durable=False), inline=True)
    app = web.Application()
    setup_dvr(app, dvr.catalog, dvr.store)
    setup_origin(app, store)
    endpoint = setup_ingest(app, store, TOKEN, recorder=dvr.recorder)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession() as session:
            for first, count in ((0, 12), (9, 18)):  # a reconnect resends 9..11
                body = encode_header(INITS[0], TIMING) + b"".join(
                    encode_part(make_part("720p", n)) for n in range(first, first + count))
                async with session.post(f"{base}/ingest/alpha/s1/720p", data=body,
                                        headers=auth) as response:
                    assert response.status == 200
            assert endpoint.streams.parts_skipped == 3
            async with session.get(f"{base}/hls/alpha/dvr/720p.m3u8") as response:
                assert response.status == 200
                playlist = await response.text()
            segments = [line for line in playlist.splitlines() if line.endswith(".m4s")]
            assert len(segments) == 3  # 27 parts: segments 100..102, each recorded once
            async with session.get(f"{base}/hls/alpha/dvr/720p.m3u8".replace(
                    "720p.m3u8", segments[1])) as media:
                assert media.status == 200
                assert await media.read() == b"".join(make_part("720p", n).data
                                                      for n in range(9, 18))
    finally:
        await runner.cleanup()
        await dvr.close()

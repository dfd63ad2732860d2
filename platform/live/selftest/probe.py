"""A probe viewer: plays an (LL-)HLS rendition like a player and measures glass-to-glass latency.

It fetches playlists with blocking reload, requests the preload-hinted part at once (the
origin holds it until it exists), feeds init + each part to a persistent H.264 decoder as the
bytes arrive, and reads the clock the publisher painted into every decoded frame
(`live.selftest.clockcode`). Glass-to-glass latency of a frame is the probe's ``time.time()``
when the frame comes out of the decoder minus the painted capture time: publisher encode, RTMP,
transcode, packaging, origin, HTTP and decode all included, because the stamp rides in the
pixels that every stage carries (docs/glass-to-glass.md). Publisher and probe must share a
clock (same host, or NTP/PTP synchronised hosts; the clock offset adds to every number).

Two readings are reported: *decode* latency (frame available to a player that shows it at
once) and *playout* latency, from a simple playout clock started at the first frame that
advances with the frames' PTS and waits (a stall) when a frame is not there in time. A real
player that holds back PART-HOLD-BACK shows that much more. PROGRAM-DATE-TIME gives a
separate, clearly labelled number: packager to probe only, never glass-to-glass.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

import aiohttp
import av
import numpy as np
import numpy.typing as npt

from live.selftest import clockcode
from live.selftest.hls_client import (
    Cursor,
    Fetch,
    MediaPlaylist,
    PlaylistError,
    blocking_reload_url,
    is_multivariant,
    parse_media,
    parse_multivariant,
    pick_variant,
    plan,
    start_cursor,
)

#: A frame later than its playout slot by more than this counts as a stall.
STALL_THRESHOLD_S = 0.1
#: Most bytes one part, segment or init may have; more is a broken or hostile server.
MAX_MEDIA_BYTES = 64 * 1024 * 1024
#: URIs of hinted parts remembered so they are not fetched twice; oldest forgotten first.
MAX_REMEMBERED_HINTS = 64


class ProbeError(Exception):
    """The stream could not be played at all (the server's or the stream's fault)."""


@dataclass(frozen=True, slots=True)
class Percentiles:
    count: int
    p50: float
    p95: float
    p99: float
    max: float
    min: float
    mean: float

    @classmethod
    def of(cls, values: list[float]) -> Percentiles | None:
        if not values:
            return None
        data = np.asarray(values, dtype=np.float64)
        p50, p95, p99 = (float(x) for x in np.percentile(data, [50, 95, 99]))
        return cls(len(values), round(p50, 2), round(p95, 2), round(p99, 2),
                   round(float(data.max()), 2), round(float(data.min()), 2), round(float(data.mean()), 2))


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """What one probe run saw. Latencies in milliseconds."""

    url: str
    media_playlist: str
    duration_s: float
    frames: int
    #: Frames whose clock code was absent or failed its checksum (not counted in latency).
    unreadable_frames: int
    #: Glass-to-glass, frame out of the decoder: painted capture -> probe decode.
    latency_ms: Percentiles | None
    #: Glass-to-glass, frame shown by the playout clock (adds the waits a stall causes).
    playout_latency_ms: Percentiles | None
    stalls: int
    stall_s: float
    #: "PDT latency (packager->probe, not glass-to-glass)": part arrival - its PROGRAM-DATE-TIME
    #: (the instant its first frame starts, so a part's own duration is included).
    pdt_latency_ms: Percentiles | None
    parts: int
    segments: int
    hinted_parts: int
    playlist_reloads: int
    bytes: int
    http_errors: int
    decode_errors: int
    skipped_segments: int
    #: Times the stream started over (new init segment, sequence numbers reset) mid-probe.
    restarts: int
    ended: bool

    def summary(self) -> str:
        def line(label: str, p: Percentiles | None) -> str:
            if p is None:
                return f"{label}: no samples"
            return (f"{label}: p50 {p.p50:.0f} ms, p95 {p.p95:.0f} ms, p99 {p.p99:.0f} ms, "
                    f"max {p.max:.0f} ms (n={p.count})")
        return "\n".join([
            f"probe {self.media_playlist} for {self.duration_s:.1f} s: {self.frames} frames, "
            f"{self.unreadable_frames} unreadable, {self.stalls} stalls ({self.stall_s:.2f} s)",
            line("glass-to-glass latency (decode)", self.latency_ms),
            line("glass-to-glass latency (playout)", self.playout_latency_ms),
            line("PDT latency (packager->probe, not glass-to-glass)", self.pdt_latency_ms),
        ])


@dataclass(frozen=True, slots=True)
class DecodedFrame:
    wallclock: float  # probe time.time() when the decoder returned it
    pts_s: float
    painted_ms: int | None


def luma(frame: av.VideoFrame) -> npt.NDArray[np.uint8]:
    """The Y plane without a pixel-format conversion (any planar YUV keeps Y in plane 0)."""
    if frame.format.name.startswith(("yuv", "yuvj", "nv")):
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(frame.height, plane.line_size)
        return rows[:, :frame.width]
    return np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)


class FragmentDecoder:
    """Decodes an fMP4 (or MPEG-TS) stream one part or segment at a time, keeping decoder state.

    Each chunk is demuxed together with the init segment (FFmpeg's mov demuxer reads a moov
    followed by any moof/mdat), and its video packets go to one long-lived decoder, so P-frames
    in a later part decode against references from earlier ones.
    """

    def __init__(self) -> None:
        self._init = b""
        self._decoder: av.VideoCodecContext | None = None
        self._time_base: Fraction | None = None
        self.errors = 0

    def set_init(self, init: bytes) -> None:
        """A new EXT-X-MAP; a different one (a new stream) gets a fresh decoder for its avcC."""
        if init != self._init and self._init:
            self._decoder = None
        self._init = init

    def feed(self, chunk: bytes) -> list[DecodedFrame]:
        frames: list[DecodedFrame] = []
        try:
            container = av.open(io.BytesIO(self._init + chunk), "r")
        except av.FFmpegError:
            self.errors += 1
            return frames
        with container:
            if not container.streams.video:
                return frames
            stream = container.streams.video[0]
            if self._decoder is None:
                decoder = av.CodecContext.create(stream.codec_context.name, "r")
                if not isinstance(decoder, av.VideoCodecContext):
                    raise ProbeError(f"{stream.codec_context.name} is not a video codec")
                decoder.extradata = stream.codec_context.extradata
                self._decoder = decoder
                self._time_base = stream.time_base
            try:
                for packet in container.demux(stream):
                    if packet.size == 0:
                        continue
                    self._decode(packet, frames)
            except av.FFmpegError:
                self.errors += 1
        return frames

    def _decode(self, packet: av.Packet, frames: list[DecodedFrame]) -> None:  # type: ignore[type-arg]
        assert self._decoder is not None
        try:
            decoded = self._decoder.decode(packet)
        except av.FFmpegError:
            self.errors += 1
            return
        for frame in decoded:
            now = time.time()
            base = self._time_base or Fraction(1, 90000)
            pts = float(frame.pts * base) if frame.pts is not None else float("nan")
            frames.append(DecodedFrame(now, pts, clockcode.read(luma(frame))))


@dataclass(slots=True)
class _Tally:
    """Mutable accumulation of one run; frozen into a ProbeReport at the end."""

    latencies: list[float] = field(default_factory=list)
    playout: list[float] = field(default_factory=list)
    pdt: list[float] = field(default_factory=list)
    frames: int = 0
    unreadable: int = 0
    stalls: int = 0
    stall_s: float = 0.0
    parts: int = 0
    segments: int = 0
    hinted: int = 0
    reloads: int = 0
    bytes: int = 0
    http_errors: int = 0
    skipped: int = 0
    restarts: int = 0
    ended: bool = False
    on_frame: Callable[[DecodedFrame], None] | None = None
    _clock_origin: float | None = None  # wall time at which pts 0 plays
    _last_pts: float | None = None

    def frame(self, frame: DecodedFrame) -> None:
        self.frames += 1
        if self.on_frame is not None:
            self.on_frame(frame)
        shown = frame.wallclock
        if frame.pts_s == frame.pts_s:  # not NaN
            if self._clock_origin is None or (self._last_pts is not None and frame.pts_s < self._last_pts):
                self._clock_origin = frame.wallclock - frame.pts_s  # start, or a timeline reset
            slot = self._clock_origin + frame.pts_s
            late = frame.wallclock - slot
            if late > STALL_THRESHOLD_S:
                self.stalls += 1
                self.stall_s += late
            if late > 0:
                self._clock_origin += late  # the playout clock waited for this frame
            shown = max(slot, frame.wallclock)
            self._last_pts = frame.pts_s
        if frame.painted_ms is None:
            self.unreadable += 1
            return
        self.latencies.append(frame.wallclock * 1000 - frame.painted_ms)
        self.playout.append(shown * 1000 - frame.painted_ms)


class _Player:
    def __init__(self, session: aiohttp.ClientSession, tally: _Tally, decoder: FragmentDecoder) -> None:
        self.session = session
        self.tally = tally
        self.decoder = decoder
        self.map_uri: str | None = None
        #: Hinted part URI -> its arrival wall-clock until a playlist places it (then None).
        self.hinted: dict[str, float | None] = {}

    async def get(self, url: str, byterange_header: str | None = None) -> bytes | None:
        headers = {"Range": byterange_header} if byterange_header else None
        try:
            async with self.session.get(url, headers=headers) as response:
                if response.status >= 400:
                    self.tally.http_errors += 1
                    return None
                if (response.content_length or 0) > MAX_MEDIA_BYTES:
                    raise ProbeError(f"{url} is {response.content_length} bytes, over {MAX_MEDIA_BYTES}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > MAX_MEDIA_BYTES:
                        raise ProbeError(f"{url} sent more than {MAX_MEDIA_BYTES} bytes")
                self.tally.bytes += len(body)
                return bytes(body)
        except aiohttp.ClientError:
            self.tally.http_errors += 1
            return None

    async def playlist(self, url: str) -> MediaPlaylist | None:
        body = await self.get(url)
        if body is None:
            return None
        self.tally.reloads += 1
        return parse_media(body.decode("utf-8", errors="replace"), url)

    async def ensure_init(self, map_uri: str | None) -> None:
        if map_uri is None or map_uri == self.map_uri:
            return
        init = await self.get(map_uri)
        if init is None:
            raise ProbeError(f"init segment {map_uri} could not be fetched")
        self.decoder.set_init(init)
        self.map_uri = map_uri

    async def play(self, data: bytes, pdt: float | None) -> None:
        arrival = time.time()
        if pdt is not None:
            self.tally.pdt.append((arrival - pdt) * 1000)
        for frame in await asyncio.to_thread(self.decoder.feed, data):
            self.tally.frame(frame)

    async def fetch(self, item: Fetch) -> bool:
        await self.ensure_init(item.map_uri)
        header = item.byterange.header() if item.byterange else None
        data = await self.get(item.uri, header)
        if data is None:
            return False
        if item.part is None:
            self.tally.segments += 1
        else:
            self.tally.parts += 1
        await self.play(data, item.program_date_time)
        return True

    def placed_hint(self, item: Fetch) -> None:
        """A playlist now lists a part fetched through its hint: its PDT is known at last."""
        arrival = self.hinted.get(item.uri)
        if arrival is not None and item.program_date_time is not None:
            self.tally.pdt.append((arrival - item.program_date_time) * 1000)
        self.hinted[item.uri] = None  # counted once

    async def fetch_hint(self, playlist: MediaPlaylist) -> bool:
        hint = playlist.preload_hint
        if hint is None or hint.uri in self.hinted or not playlist.can_block_reload:
            return False
        await self.ensure_init(playlist.segments[-1].map_uri if playlist.segments else None)
        data = await self.get(hint.uri, hint.byterange.header() if hint.byterange else None)
        if data is None:
            return False  # not remembered: once listed, it is fetched like any part
        self.hinted[hint.uri] = time.time()
        while len(self.hinted) > MAX_REMEMBERED_HINTS:
            del self.hinted[next(iter(self.hinted))]
        self.tally.parts += 1
        self.tally.hinted += 1
        await self.play(data, None)
        return True


async def _run(player: _Player, media_url: str) -> None:
    playlist = await player.playlist(media_url)
    if playlist is None:
        raise ProbeError(f"media playlist {media_url} could not be fetched")
    cursor: Cursor = start_cursor(playlist)
    while True:
        steps = plan(playlist, cursor, player.hinted.keys())
        player.tally.skipped += steps.skipped_segments
        cursor = steps.cursor
        caught_up = True
        for item in steps.fetches:
            if item.uri in player.hinted:
                player.placed_hint(item)
            elif not item.is_marker and not await player.fetch(item):
                caught_up = False  # a failed download: reload and try again from the same place
                break
            cursor = cursor.after(item)
        if playlist.endlist and caught_up:
            player.tally.ended = True
            return
        if playlist.can_block_reload:
            if caught_up:
                # RFC 8216bis 6.2.5.3: ask for the hinted part now; it arrives the moment it
                # exists, one round trip sooner than waiting for the playlist that lists it
                await player.fetch_hint(playlist)
            msn, part = playlist.next_position
            fresh = await player.playlist(blocking_reload_url(media_url, msn, part))
        else:
            # RFC 8216bis 6.3.4: reload no sooner than half the target duration when unchanged
            await asyncio.sleep(playlist.part_target or playlist.target_duration / 2)
            fresh = await player.playlist(media_url)
        if fresh is None:
            await asyncio.sleep(playlist.part_target or 0.2)
            # Reload without directives: a refused blocking reload (400, "too far ahead") is what
            # a stream that started over behind our cursor answers, e.g. after an origin restart;
            # retrying the same directives would wait until the new stream caught up.
            fresh = await player.playlist(media_url)
            if fresh is None:
                continue
        playlist = fresh
        if _restarted(playlist, cursor, player.map_uri):
            player.tally.restarts += 1
            cursor = start_cursor(playlist)


def _restarted(playlist: MediaPlaylist, cursor: Cursor, map_uri: str | None) -> bool:
    """The stream started over: sequence numbers went back and the init segment changed."""
    if not playlist.segments or map_uri is None:
        return False
    behind = playlist.next_position < (cursor.msn, cursor.part)
    return behind and playlist.segments[-1].map_uri != map_uri


async def probe(url: str, duration_s: float, rendition: str | None = None,
                on_frame: Callable[[DecodedFrame], None] | None = None) -> ProbeReport:
    """Play ``url`` (multivariant or media playlist) for ``duration_s`` or until it ends.

    ``on_frame`` sees every decoded frame as it comes (for per-frame logs).
    ``rendition``: None or "lowest", "highest", a rendition name (the playlist's file stem or
    NAME), or a height such as "360p".
    """
    tally = _Tally(on_frame=on_frame)
    decoder = FragmentDecoder()
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=max(30.0, duration_s))
    async with aiohttp.ClientSession(timeout=timeout) as session:
        player = _Player(session, tally, decoder)
        body = await player.get(url)
        if body is None:
            raise ProbeError(f"{url} could not be fetched")
        text = body.decode("utf-8", errors="replace")
        try:
            media_url = url
            if is_multivariant(text):
                try:
                    media_url = pick_variant(parse_multivariant(text, url), rendition).uri
                except LookupError as exc:
                    raise ProbeError(f"{url}: {exc}") from exc
            try:
                async with asyncio.timeout(duration_s):
                    await _run(player, media_url)
            except TimeoutError:
                pass
        except PlaylistError as exc:
            raise ProbeError(f"{url}: {exc}") from exc
    return ProbeReport(
        url=url, media_playlist=media_url, duration_s=round(time.monotonic() - started, 3),
        frames=tally.frames, unreadable_frames=tally.unreadable,
        latency_ms=Percentiles.of(tally.latencies), playout_latency_ms=Percentiles.of(tally.playout),
        stalls=tally.stalls, stall_s=round(tally.stall_s, 3), pdt_latency_ms=Percentiles.of(tally.pdt),
        parts=tally.parts, segments=tally.segments, hinted_parts=tally.hinted,
        playlist_reloads=tally.reloads, bytes=tally.bytes, http_errors=tally.http_errors,
        decode_errors=decoder.errors, skipped_segments=tally.skipped, restarts=tally.restarts,
        ended=tally.ended,
    )

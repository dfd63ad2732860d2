"""SRT ingest: one libsrt listener for every publisher, feeding the live-stream registry.

``srt://HOST:PORT?streamid=#!::r=live/{stream_key},m=publish`` (or a bare key). libsrt does
SRT (handshake, ARQ within ``latency_ms``, AES when a passphrase is set); this module adds
what the platform needs around it:

* the stream ID is parsed and the key resolved in libsrt's listener callback, before the
  handshake completes, so a malformed ID, a wrong key or a channel that already has a
  publisher is refused with an SRT_REJX_* reason and never becomes a connection;
* one I/O thread waits on ``srt_epoll`` and only moves bytes: it hands each wake-up's
  messages to the event loop in one call, so the loop never blocks in libsrt;
* on the loop, ``TsDemuxer`` (``live.media.mpegts``) turns the bytes into the same
  configs and access units the RTMP path produces, into a ``LiveStream`` claimed with
  protocol ``"srt"``. From there on, nothing can tell an SRT stream from an RTMP one.

A publisher whose program carries no H.264/H.265 video, or that sends no decodable video
within ``no_video_timeout_s``, gets a logged reason and a closed connection. A dropped
connection releases the channel, so the same key can publish again at once.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from live.ingest.registry import ChannelBusy, LiveStream, LiveStreamRegistry
from live.ingest.srt import libsrt
from live.ingest.srt.streamid import StreamIdError, parse_stream_id
from live.media.mpegts import Event, ProgramMap, TsDemuxer
from live.media.units import AccessUnit, AudioConfig, VideoConfig

log = logging.getLogger("live.ingest.srt")

#: Resolves a stream key to the channel it publishes, or None when the key is unknown.
StreamKeyResolver = Callable[[str], Awaitable[str | None]]

#: Units held while the audio configuration is still unknown (the PMT announced audio): about
#: 2 s of 30 fps video with its audio; a silent audio track must not hold the stream back longer.
MAX_HELD_EVENTS = 150


@dataclass(frozen=True, slots=True)
class SrtServerSettings:
    host: str = "127.0.0.1"
    port: int = 9000
    #: SRTO_LATENCY: how long the receiver waits for retransmissions (SRT's default is 120).
    latency_ms: int = 120
    #: SRTO_PASSPHRASE (10-79 characters): AES; publishers without it are refused.
    passphrase: str | None = None
    backlog: int = 64
    max_connections: int = 256
    #: Close a publisher that has sent no decodable video after this long.
    no_video_timeout_s: float = 10.0
    #: SRTO_PEERIDLETIMEO: a publisher silent this long is gone.
    peer_idle_timeout_ms: int = 5000
    #: How long the listener callback waits for the stream-key lookup.
    admit_timeout_s: float = 2.0
    poll_interval_ms: int = 100

    def __post_init__(self) -> None:
        if self.passphrase is not None and not 10 <= len(self.passphrase) <= 79:
            raise ValueError("an SRT passphrase must be 10 to 79 characters")
        if not 0 <= self.latency_ms <= 60_000:
            raise ValueError(f"latency_ms={self.latency_ms} must be 0 to 60000")


@dataclass(slots=True)
class _Publication:
    sock: int
    remote: str
    stream: LiveStream
    demuxer: TsDemuxer = field(default_factory=TsDemuxer)
    held: list[Event] | None = field(default_factory=list)  # until the audio config is known
    no_video: asyncio.TimerHandle | None = None
    reported: set[str] = field(default_factory=set)


class SrtServer:
    """Accepts SRT publishers on one UDP port; see the module docstring."""

    def __init__(self, resolve_key: StreamKeyResolver, registry: LiveStreamRegistry,
                 settings: SrtServerSettings | None = None) -> None:
        self.settings = settings or SrtServerSettings()
        self._resolve_key = resolve_key
        self._registry = registry
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener = libsrt.INVALID_SOCK
        self._callback: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._close_requests: deque[int] = deque()
        self._admitted: dict[int, tuple[str, str]] = {}  # new socket -> (channel, remote)
        self._publications: dict[int, _Publication] = {}
        self._port = 0
        self.connections_total = 0
        self.refused_total = 0

    @property
    def port(self) -> int:
        if not self._port:
            raise RuntimeError("server not started")
        return self._port

    @property
    def active_connections(self) -> int:
        return len(self._publications)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        libsrt.startup()
        settings = self.settings
        sock = self._listener = libsrt.create_socket()
        try:
            libsrt.set_int(sock, libsrt.SRTO_TRANSTYPE, libsrt.SRTT_LIVE)
            libsrt.set_bool(sock, libsrt.SRTO_RCVSYN, False)
            libsrt.set_int(sock, libsrt.SRTO_LATENCY, settings.latency_ms)
            libsrt.set_int(sock, libsrt.SRTO_PEERIDLETIMEO, settings.peer_idle_timeout_ms)
            if settings.passphrase:
                libsrt.set_string(sock, libsrt.SRTO_PASSPHRASE, settings.passphrase)
                libsrt.set_bool(sock, libsrt.SRTO_ENFORCEDENCRYPTION, True)
            libsrt.bind(sock, settings.host, settings.port)
            self._callback = libsrt.listen_callback(sock, self._admit)
            libsrt.listen(sock, settings.backlog)
            self._port = libsrt.local_port(sock)
        except libsrt.SrtError:
            libsrt.close(sock)
            self._listener = libsrt.INVALID_SOCK
            libsrt.cleanup()
            raise
        self._stopping.clear()
        self._thread = threading.Thread(target=self._io, name=f"srt-io:{self._port}", daemon=True)
        self._thread.start()
        log.info("srt: listening on %s:%d (latency %d ms%s)", settings.host, self._port,
                 settings.latency_ms, ", encrypted" if settings.passphrase else "")

    async def close(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        await asyncio.to_thread(self._thread.join)
        self._thread = None
        for publication in list(self._publications.values()):
            self._end(publication, "server shutting down")
        libsrt.cleanup()
        self._port = 0

    # -- libsrt's listener callback (a libsrt thread, during the handshake) ---------------------

    def _admit(self, sock: int, remote: str, stream_id: str) -> int:
        """0 to let the handshake complete, else the SRT_REJX_* reason the caller gets."""
        reason, code = self._refusal(sock, remote, stream_id)
        if code:
            self.refused_total += 1
            log.warning("srt %s: refused (stream ID %r): %s", remote, stream_id[:80], reason)
        return code

    def _refusal(self, sock: int, remote: str, stream_id: str) -> tuple[str, int]:
        try:
            parsed = parse_stream_id(stream_id)
        except StreamIdError as exc:
            return str(exc), libsrt.REJX_BAD_MODE if exc.mode else libsrt.REJX_BAD_REQUEST
        if len(self._publications) + len(self._admitted) >= self.settings.max_connections:
            return f"{self.settings.max_connections} publishers already connected", \
                libsrt.REJX_OVERLOAD
        loop = self._loop
        assert loop is not None
        future = asyncio.run_coroutine_threadsafe(self._check_key(parsed.stream_key), loop)
        try:
            channel, refusal = future.result(self.settings.admit_timeout_s)
        except Exception as exc:  # a lookup failure refuses this caller only
            future.cancel()
            return f"stream key lookup failed: {type(exc).__name__}: {exc}", 1500
        if channel is None:
            return refusal
        self._admitted[sock] = (channel, remote)
        return "", 0

    async def _check_key(self, stream_key: str) -> tuple[str | None, tuple[str, int]]:
        try:
            channel = await self._resolve_key(stream_key)
        except ChannelBusy as busy:  # live on another ingest node (its lease)
            return None, (str(busy), libsrt.REJX_CONFLICT)
        if channel is None:
            return None, ("unknown stream key", libsrt.REJX_UNAUTHORIZED)
        if self._registry.get(channel) is not None:
            return None, (f"channel {channel} already has a publisher", libsrt.REJX_CONFLICT)
        return channel, ("", 0)

    # -- the I/O thread: libsrt in, bytes to the loop out -----------------------------------------

    def _io(self) -> None:
        loop = self._loop
        assert loop is not None
        listener = self._listener
        epoll = libsrt.Epoll()
        epoll.add(listener, libsrt.EPOLL_IN)
        buf = ctypes.create_string_buffer(libsrt.MAX_MESSAGE)
        open_socks: set[int] = set()

        def drop(sock: int, reason: str) -> None:
            epoll.remove(sock)
            libsrt.close(sock)
            open_socks.discard(sock)
            loop.call_soon_threadsafe(self._closed, sock, reason)

        try:
            while not self._stopping.is_set():
                while self._close_requests:
                    sock = self._close_requests.popleft()
                    if sock in open_socks:
                        drop(sock, "closed by the server")
                for sock, events in epoll.wait(self.settings.poll_interval_ms):
                    if sock == listener:
                        self._accept_all(listener, epoll, open_socks)
                        continue
                    chunks: list[bytes] = []
                    try:
                        while n := libsrt.recv_message(sock, buf):
                            chunks.append(buf.raw[:n])
                    except libsrt.SrtError as exc:
                        if chunks:
                            loop.call_soon_threadsafe(self._received, sock, b"".join(chunks))
                        drop(sock, "connection lost" if exc.code == libsrt.ECONNLOST else str(exc))
                        continue
                    if chunks:
                        loop.call_soon_threadsafe(self._received, sock, b"".join(chunks))
                    elif events & libsrt.EPOLL_ERR:
                        drop(sock, "connection broken")
        except RuntimeError:
            pass  # the loop closed under us: the process is ending
        finally:
            for sock in list(open_socks):
                epoll.remove(sock)
                libsrt.close(sock)
            epoll.release()
            libsrt.close(listener)
            self._listener = libsrt.INVALID_SOCK

    def _accept_all(self, listener: int, epoll: libsrt.Epoll, open_socks: set[int]) -> None:
        loop = self._loop
        assert loop is not None
        while True:
            try:
                sock = libsrt.accept(listener)
            except libsrt.SrtError:
                return  # nothing more pending
            try:
                libsrt.set_bool(sock, libsrt.SRTO_RCVSYN, False)
                epoll.add(sock)
            except libsrt.SrtError as exc:
                log.warning("srt: dropping an accepted socket: %s", exc)
                libsrt.close(sock)
                continue
            open_socks.add(sock)
            loop.call_soon_threadsafe(self._opened, sock, libsrt.peer_name(sock))

    # -- the event loop side ------------------------------------------------------------------------

    def _request_close(self, sock: int) -> None:
        self._close_requests.append(sock)

    def _opened(self, sock: int, remote: str) -> None:
        self.connections_total += 1
        admitted = self._admitted.pop(sock, None)
        if admitted is None:
            log.warning("srt %s: closing: connection without an admitted stream ID", remote)
            self._request_close(sock)
            return
        channel = admitted[0]
        try:
            stream = self._registry.claim(channel, "srt", remote)
        except ChannelBusy:
            log.warning("srt %s: closing: channel %s already has a publisher", remote, channel)
            self._request_close(sock)
            return
        publication = _Publication(sock, remote, stream)
        assert self._loop is not None
        publication.no_video = self._loop.call_later(
            self.settings.no_video_timeout_s, self._check_video, publication)
        self._publications[sock] = publication
        log.info("srt %s: publishing channel %s", remote, channel)

    def _received(self, sock: int, data: bytes) -> None:
        publication = self._publications.get(sock)
        if publication is None:
            return
        events = publication.demuxer.feed(data, time.time())
        if events:
            self._deliver(publication, events)

    def _deliver(self, publication: _Publication, events: list[Event]) -> None:
        demuxer = publication.demuxer
        for event in events:
            if isinstance(event, ProgramMap):
                if event.video_pid is None:
                    self._refuse(publication, "the program carries no H.264/H.265 video "
                                              f"(stream types {_types(event)})")
                    return
                if event.ignored and "ignored" not in publication.reported:
                    publication.reported.add("ignored")
                    log.info("srt %s: ignoring streams %s of channel %s", publication.remote,
                             _types(event), publication.stream.channel)
        held = publication.held
        if held is not None:
            held.extend(events)
            program = demuxer.program_map
            audio_known = program is not None and (program.audio_pid is None or demuxer.audio)
            if not (audio_known and demuxer.video) and len(held) < MAX_HELD_EVENTS:
                return
            events, publication.held = held, None
        stream = publication.stream
        for event in events:
            if isinstance(event, AccessUnit):
                stream.push(event)
            elif isinstance(event, VideoConfig):
                stream.set_video_config(event)
            elif isinstance(event, AudioConfig):
                stream.set_audio_config(event)

    def _check_video(self, publication: _Publication) -> None:
        if self._publications.get(publication.sock) is publication and publication.stream.video is None:
            self._refuse(publication, f"no decodable H.264/H.265 video in "
                                      f"{self.settings.no_video_timeout_s:g} s ({publication.demuxer.stats})")

    def _refuse(self, publication: _Publication, reason: str) -> None:
        log.warning("srt %s: closing channel %s: %s", publication.remote,
                    publication.stream.channel, reason)
        self._end(publication, reason)
        self._request_close(publication.sock)

    def _closed(self, sock: int, reason: str) -> None:
        self._admitted.pop(sock, None)
        publication = self._publications.get(sock)
        if publication is not None:
            leftover = publication.demuxer.flush(time.time())
            if leftover and publication.held is None:
                self._deliver(publication, leftover)
            self._end(publication, reason)

    def _end(self, publication: _Publication, reason: str) -> None:
        if self._publications.pop(publication.sock, None) is None:
            return
        if publication.no_video is not None:
            publication.no_video.cancel()
        self._registry.release(publication.stream)
        stats = publication.demuxer.stats
        log.info("srt %s: %s ended (%s); %d TS packets, %d continuity errors, %d PES dropped",
                 publication.remote, publication.stream.channel, reason, stats.packets,
                 stats.continuity_errors, stats.pes_dropped)


def _types(program: ProgramMap) -> str:
    return ", ".join(f"0x{stream_type:02x} on PID {pid}" for pid, stream_type in program.ignored) \
        or "none"


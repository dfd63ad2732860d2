"""The asyncio RTMP ingest server: a thin shell that moves bytes, timers and backpressure.

Everything about the protocol lives in ``ServerConnection``; everything about the media in
``FlvTagDemuxer``. This module adds what only I/O can: timeouts, the stream-key lookup, the
channel claim in the live registry, admission, and logging. A peer's protocol error closes that
one connection with a logged reason; no other publisher notices.

Nobody without a key can hold the ingest: a connection must have a key accepted within
``publish_timeout_s`` of connecting, however many bytes it trickles; until then it is held to
the protocol core's small pre-publish limits; each address may keep only
``max_connections_per_address`` open; and an address that sends ``failed_publish_limit`` wrong
keys within ``failed_publish_window_s`` is refused for ``failed_publish_ban_s``. Once
publishing, only media keeps a connection alive (``idle_timeout_s``), not pings or padding.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from live.ingest.registry import ChannelBusy, LiveStream, LiveStreamRegistry
from live.ingest.rtmp.admission import Admission, AdmissionLimits
from live.ingest.rtmp.errors import RtmpProtocolError
from live.ingest.rtmp.server_protocol import (
    Connected,
    ConnectionState,
    Event,
    MediaReceived,
    MetadataReceived,
    PublishEnded,
    PublishRequested,
    ServerConnection,
    ServerSettings,
)
from live.ingest.timestamps import TimestampUnwrapper
from live.media.flv import FlvError, FlvTagDemuxer
from live.media.units import AccessUnit, AudioConfig, VideoConfig

log = logging.getLogger("live.ingest.rtmp")

#: Resolves a stream key to the channel it publishes, or None when the key is unknown.
StreamKeyResolver = Callable[[str], Awaitable[str | None]]

BAD_NAME = "NetStream.Publish.BadName"


@dataclass(frozen=True, slots=True)
class RtmpServerSettings:
    host: str = "127.0.0.1"
    port: int = 1935
    handshake_timeout_s: float = 10.0
    #: From connecting to having a stream key accepted; a peer that has not by then is cut.
    publish_timeout_s: float = 10.0
    #: Once publishing: the longest gap between media messages (other bytes do not count).
    idle_timeout_s: float = 30.0
    read_size: int = 64 * 1024
    max_connections: int = 1024
    max_connections_per_address: int = 32
    #: Wrong stream keys from one address within the window before it is refused for ban_s.
    failed_publish_limit: int = 10
    failed_publish_window_s: float = 60.0
    failed_publish_ban_s: float = 300.0
    protocol: ServerSettings = field(default_factory=ServerSettings)

    def admission_limits(self) -> AdmissionLimits:
        return AdmissionLimits(
            max_per_address=self.max_connections_per_address,
            failed_limit=self.failed_publish_limit,
            failed_window_s=self.failed_publish_window_s,
            ban_s=self.failed_publish_ban_s,
        )


@dataclass(slots=True)
class _Publication:
    stream: LiveStream
    demuxer: FlvTagDemuxer
    clock: TimestampUnwrapper


class RtmpServer:
    """``rtmp://HOST:PORT/live/{stream_key}`` ingest for many concurrent publishers."""

    def __init__(
        self,
        resolve_key: StreamKeyResolver,
        registry: LiveStreamRegistry,
        settings: RtmpServerSettings | None = None,
    ) -> None:
        self.settings = settings or RtmpServerSettings()
        self._resolve_key = resolve_key
        self._registry = registry
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.admission = Admission(self.settings.admission_limits())
        self.connections_total = 0
        self.connections_refused = 0
        self.protocol_errors = 0

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("server not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def active_connections(self) -> int:
        return len(self._tasks)

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self.settings.host, self.settings.port, limit=self.settings.read_size
        )

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host = _peer_host(writer)
        if len(self._tasks) >= self.settings.max_connections:
            refusal: str | None = f"{len(self._tasks)} connections open"
        else:
            refusal = self.admission.admit(host, time.monotonic())
        if refusal is not None:
            self.connections_refused += 1
            log.debug("rtmp: refusing %s: %s", _peer(writer), refusal)
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        self.connections_total += 1
        try:
            await _Session(self, reader, writer).run()
        except asyncio.CancelledError:
            # Server shutdown. Ending normally keeps asyncio's stream callback (which calls
            # task.exception() on Python 3.11) from logging the cancellation as an error.
            pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            self.admission.release(host)


class _Session:
    """One TCP connection's life."""

    def __init__(
        self, server: RtmpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.remote = _peer(writer)
        self.host = _peer_host(writer)
        self.conn = ServerConnection(server.settings.protocol)
        self.publications: dict[int, _Publication] = {}
        self.stopped: str | None = None  # why the platform cut this publisher, once it has
        self._last_progress = 0.0  # loop time of the accepted publish or the latest media

    def _deadline(self, connected_at: float) -> tuple[float, str]:
        """When the current wait runs out, and what to log if it does."""
        settings = self.server.settings
        if not self.conn.publish_accepted:
            publish = connected_at + settings.publish_timeout_s
            if self.conn.state is ConnectionState.HANDSHAKE:
                handshake = connected_at + settings.handshake_timeout_s
                if handshake < publish:
                    return handshake, "handshake timed out"
            return publish, f"no stream key accepted within {settings.publish_timeout_s:g} s"
        return (self._last_progress + settings.idle_timeout_s,
                f"no media for {settings.idle_timeout_s:g} s")

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        connected_at = loop.time()
        reason = "peer closed"
        try:
            done = False
            while not done:
                deadline, why = self._deadline(connected_at)
                try:
                    async with asyncio.timeout_at(deadline):
                        done = await self._step()
                except TimeoutError:
                    reason = why
                    raise
            if self.stopped is not None:
                reason = self.stopped
        except TimeoutError:
            log.warning("rtmp %s: closing: %s", self.remote, reason)
        except RtmpProtocolError as exc:
            reason = f"protocol error: {exc}"
            self.server.protocol_errors += 1
            log.warning("rtmp %s: closing: %s", self.remote, reason)
        except FlvError as exc:
            reason = f"bad media: {exc}"
            self.server.protocol_errors += 1
            log.warning("rtmp %s: closing: %s", self.remote, reason)
        except (ConnectionError, OSError) as exc:
            reason = self.stopped or f"connection lost: {exc}"
        except asyncio.CancelledError:
            reason = "server shutting down"
            raise
        finally:
            for publication in self.publications.values():
                self.server._registry.release(publication.stream)
                log.info("rtmp %s: %s ended (%s)", self.remote, publication.stream.channel, reason)
            self.publications.clear()
            self.conn.close()
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def _step(self) -> bool:
        """Read once, process, write; True when the session should end."""
        data = await self.reader.read(self.server.settings.read_size)
        if not data:
            return True
        self.conn.receive_data(data)
        end = False
        while (events := self.conn.events_received()) and not end:
            end = await self._handle_events(events)
        await self._flush()
        return end

    async def _handle_events(self, events: list[Event]) -> bool:
        if self.stopped is not None:
            return True  # cut by the platform: what was already read goes nowhere
        end = False
        for event in events:
            if isinstance(event, MediaReceived):
                self._on_media(event)
            elif isinstance(event, PublishRequested):
                end = await self._on_publish(event) or end
            elif isinstance(event, MetadataReceived):
                publication = self.publications.get(event.stream_id)
                if publication is not None:
                    publication.stream.metadata = event.metadata
            elif isinstance(event, PublishEnded):
                self._end(event.stream_id, event.reason)
            elif isinstance(event, Connected):
                log.debug("rtmp %s: connected to app %s", self.remote, event.app)
        return end

    async def _flush(self) -> None:
        out = self.conn.data_to_send()
        if out:
            self.writer.write(out)
            await self.writer.drain()

    async def _on_publish(self, event: PublishRequested) -> bool:
        try:
            channel = await self.server._resolve_key(event.name)
        except ChannelBusy as busy:  # live on another ingest node (its lease, live.ingest.leases)
            log.warning("rtmp %s: closing: %s", self.remote, busy)
            self.conn.reject_publish(event.stream_id, BAD_NAME, str(busy))
            return True
        if channel is None:
            banned = self.server.admission.publish_failed(self.host, time.monotonic())
            log.warning("rtmp %s: closing: unknown stream key%s", self.remote,
                        "; too many from this address, refusing it for "
                        f"{self.server.settings.failed_publish_ban_s:g} s" if banned else "")
            self.conn.reject_publish(event.stream_id, BAD_NAME, "unknown stream key")
            return True
        try:
            stream = self.server._registry.claim(channel, "rtmp", self.remote, self._stop)
        except ChannelBusy:
            log.warning("rtmp %s: closing: channel %s already has a publisher", self.remote, channel)
            self.conn.reject_publish(
                event.stream_id, BAD_NAME, f"channel {channel} already has a publisher"
            )
            return True
        self.publications[event.stream_id] = _Publication(
            stream, FlvTagDemuxer(), TimestampUnwrapper()
        )
        self.conn.accept_publish(event.stream_id)
        self._last_progress = asyncio.get_running_loop().time()
        log.info("rtmp %s: publishing channel %s", self.remote, channel)
        return False

    def _stop(self, reason: str) -> None:
        """The registry's stop: drop the connection now; ``run`` then winds the session down."""
        if self.stopped is None:
            self.stopped = reason
            log.info("rtmp %s: cutting the publisher: %s", self.remote, reason)
            self.writer.transport.abort()

    def _on_media(self, event: MediaReceived) -> None:
        publication = self.publications.get(event.stream_id)
        if publication is None:
            return
        self._last_progress = asyncio.get_running_loop().time()
        timestamp = publication.clock.unwrap(event.timestamp)
        items = publication.demuxer.feed(event.type_id, timestamp, event.payload, time.time())
        stream = publication.stream
        for item in items:
            if isinstance(item, AccessUnit):
                stream.push(item)
            elif isinstance(item, VideoConfig):
                stream.set_video_config(item)
            elif isinstance(item, AudioConfig):
                stream.set_audio_config(item)

    def _end(self, stream_id: int, reason: str) -> None:
        publication = self.publications.pop(stream_id, None)
        if publication is not None:
            self.server._registry.release(publication.stream)
            log.info("rtmp %s: %s unpublished (%s)", self.remote, publication.stream.channel, reason)


def _peer_host(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer)


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)

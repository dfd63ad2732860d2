"""The asyncio RTMP ingest server: a thin shell that moves bytes, timers and backpressure.

Everything about the protocol lives in ``ServerConnection``; everything about the media in
``FlvTagDemuxer``. This module adds what only I/O can: timeouts, the stream-key lookup, the
channel claim in the live registry, and logging. A peer's protocol error closes that one
connection with a logged reason; no other publisher notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from live.ingest.registry import ChannelBusy, LiveStream, LiveStreamRegistry
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
    idle_timeout_s: float = 30.0
    read_size: int = 64 * 1024
    max_connections: int = 1024
    protocol: ServerSettings = field(default_factory=ServerSettings)


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
        self.connections_total = 0
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
        if len(self._tasks) >= self.settings.max_connections:
            log.warning("rtmp: refusing %s: %d connections open", _peer(writer), len(self._tasks))
            writer.close()
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


class _Session:
    """One TCP connection's life."""

    def __init__(
        self, server: RtmpServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.remote = _peer(writer)
        self.conn = ServerConnection(server.settings.protocol)
        self.publications: dict[int, _Publication] = {}

    async def run(self) -> None:
        settings = self.server.settings
        reason = "peer closed"
        try:
            done = False
            async with asyncio.timeout(settings.handshake_timeout_s):
                while not done and self.conn.state is ConnectionState.HANDSHAKE:
                    done = await self._step()
            while not done:
                async with asyncio.timeout(settings.idle_timeout_s):
                    done = await self._step()
        except TimeoutError:
            reason = "timed out"
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
            reason = f"connection lost: {exc}"
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
        channel = await self.server._resolve_key(event.name)
        if channel is None:
            log.warning("rtmp %s: closing: unknown stream key", self.remote)
            self.conn.reject_publish(event.stream_id, BAD_NAME, "unknown stream key")
            return True
        try:
            stream = self.server._registry.claim(channel, "rtmp", self.remote)
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
        log.info("rtmp %s: publishing channel %s", self.remote, channel)
        return False

    def _on_media(self, event: MediaReceived) -> None:
        publication = self.publications.get(event.stream_id)
        if publication is None:
            return
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


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)

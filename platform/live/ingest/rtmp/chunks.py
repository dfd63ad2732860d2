"""RTMP chunk stream: split messages into chunks and reassemble them (RTMP spec 1.0, 5.3).

``ChunkReader`` is a sans-I/O demultiplexer written as a generator coroutine over a byte
buffer (the websockets ``streams.py`` idea): a chunk split across any number of reads parses
the same. ``ChunkWriter`` is the matching multiplexer, choosing the smallest header type that
describes each message.

Two points the spec leaves open are settled the way ffmpeg and SRS (the senders we meet)
settle them: after a type 0 header, the "delta" a type 3 header repeats is the absolute
timestamp; and a type 3 chunk carries the 4-byte extended timestamp again whenever the chunk
stream's last timestamp field was 0xFFFFFF.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from dataclasses import dataclass, field

from live.ingest.rtmp.errors import LimitExceeded, LocalProtocolError, RtmpProtocolError
from live.media.streambuffer import StreamBuffer

DEFAULT_CHUNK_SIZE = 128
MAX_TIMESTAMP_FIELD = 0xFFFFFF
MAX_CHUNK_SIZE_FIELD = 0x7FFFFFFF

# Protocol control message types the chunk layer itself must obey (5.4).
SET_CHUNK_SIZE = 1
ABORT = 2

_U32 = struct.Struct(">I")
_U32_LE = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class ChunkLimits:
    """Bounds on what one peer may make us hold."""

    max_chunk_size: int = 16 * 1024 * 1024
    max_message_size: int = 16 * 1024 * 1024
    max_chunk_streams: int = 64
    max_pending_bytes: int = 32 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RtmpMessage:
    """One reassembled RTMP message."""

    csid: int
    type_id: int
    stream_id: int
    timestamp: int  # 32-bit milliseconds as sent (wraps)
    payload: bytes


@dataclass(slots=True)
class _InboundStream:
    timestamp: int = 0
    delta: int = 0
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False
    partial: bytearray = field(default_factory=bytearray)


class ChunkReader:
    """Reassemble RTMP messages from the chunk stream bytes a peer sends.

    ``feed(data)`` returns the messages completed by those bytes. A RtmpProtocolError means
    the peer broke the protocol or a limit; the reader is unusable afterwards. ``limits`` may be
    replaced between feeds (the server starts a connection small and widens it on publish).
    """

    def __init__(self, limits: ChunkLimits | None = None) -> None:
        self.limits = limits or ChunkLimits()
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self.bytes_received = 0
        self._buffer = StreamBuffer()
        self._streams: dict[int, _InboundStream] = {}
        self._pending_bytes = 0
        self._ready: list[RtmpMessage] = []
        self._failed: RtmpProtocolError | None = None
        self._parser = self._parse()
        next(self._parser)

    @property
    def buffered(self) -> int:
        """Bytes held: unparsed input plus partially assembled messages."""
        return len(self._buffer) + self._pending_bytes

    def feed(self, data: bytes | bytearray | memoryview) -> list[RtmpMessage]:
        if self._failed is not None:
            raise self._failed
        self.bytes_received += len(data)
        self._buffer.feed(data)
        try:
            next(self._parser)
        except RtmpProtocolError as exc:
            self._failed = exc
            raise
        ready, self._ready = self._ready, []
        return ready

    def _parse(self) -> Generator[None, None, None]:
        read = self._buffer.read_exact
        while True:
            first = (yield from read(1))[0]
            limits = self.limits  # read per chunk: the owner may raise them (after a publish)
            fmt = first >> 6
            csid = first & 0x3F
            if csid == 0:
                csid = 64 + (yield from read(1))[0]
            elif csid == 1:
                b = yield from read(2)
                csid = 64 + b[0] + (b[1] << 8)
            stream = self._streams.get(csid)
            if stream is None:
                if fmt != 0:
                    raise RtmpProtocolError(f"chunk stream {csid} starts with a type {fmt} header")
                if len(self._streams) >= limits.max_chunk_streams:
                    raise LimitExceeded(f"more than {limits.max_chunk_streams} chunk streams")
                stream = self._streams[csid] = _InboundStream()
            continuing = bool(stream.partial)
            if fmt < 3:
                if continuing:
                    raise RtmpProtocolError(
                        f"type {fmt} header on chunk stream {csid} inside an unfinished message"
                    )
                header = yield from read((11, 7, 3)[fmt])
                ts_field = (header[0] << 16) | (header[1] << 8) | header[2]
                if fmt <= 1:
                    length = (header[3] << 16) | (header[4] << 8) | header[5]
                    if length > limits.max_message_size:
                        raise LimitExceeded(
                            f"message of {length} bytes exceeds {limits.max_message_size}"
                        )
                    stream.length = length
                    stream.type_id = header[6]
                if fmt == 0:
                    stream.stream_id = _U32_LE.unpack_from(header, 7)[0]
                stream.extended = ts_field == MAX_TIMESTAMP_FIELD
                if stream.extended:
                    ts_field = _U32.unpack((yield from read(4)))[0]
                stream.delta = ts_field
                if fmt == 0:
                    stream.timestamp = ts_field
                else:
                    stream.timestamp = (stream.timestamp + ts_field) & 0xFFFFFFFF
            else:
                if stream.extended:
                    extended = _U32.unpack((yield from read(4)))[0]
                    if not continuing:
                        stream.delta = extended
                if not continuing:
                    stream.timestamp = (stream.timestamp + stream.delta) & 0xFFFFFFFF
            take = min(self.chunk_size, stream.length - len(stream.partial))
            if stream.length == 0:
                payload = b""
            else:
                if self._pending_bytes + take > limits.max_pending_bytes:
                    raise LimitExceeded(
                        f"partial messages would hold more than {limits.max_pending_bytes} bytes"
                    )
                self._pending_bytes += take
                yield from self._buffer.read_into(stream.partial, take)
                if len(stream.partial) < stream.length:
                    continue
                payload = bytes(stream.partial)
                self._pending_bytes -= len(stream.partial)
                stream.partial.clear()
            message = RtmpMessage(
                csid, stream.type_id, stream.stream_id, stream.timestamp, payload
            )
            self._on_message(message)
            self._ready.append(message)

    def _on_message(self, message: RtmpMessage) -> None:
        if message.stream_id != 0 or message.type_id not in (SET_CHUNK_SIZE, ABORT):
            return
        if message.type_id == SET_CHUNK_SIZE:
            if len(message.payload) < 4:
                raise RtmpProtocolError("Set Chunk Size shorter than 4 bytes")
            size = _U32.unpack_from(message.payload)[0]
            if size & 0x80000000 or size == 0:
                raise RtmpProtocolError(f"invalid chunk size {size}")
            if size > self.limits.max_chunk_size:
                raise LimitExceeded(f"chunk size {size} exceeds {self.limits.max_chunk_size}")
            self.chunk_size = size
        elif message.type_id == ABORT:
            if len(message.payload) < 4:
                raise RtmpProtocolError("Abort Message shorter than 4 bytes")
            target = self._streams.get(_U32.unpack_from(message.payload)[0])
            if target is not None and target.partial:
                self._pending_bytes -= len(target.partial)
                target.partial.clear()


@dataclass(slots=True)
class _OutboundStream:
    timestamp: int = 0
    delta: int = 0
    length: int = -1
    type_id: int = -1
    stream_id: int = -1


class ChunkWriter:
    """Split messages into chunks with the most compact header that stays unambiguous."""

    def __init__(self) -> None:
        self.chunk_size = DEFAULT_CHUNK_SIZE
        self._streams: dict[int, _OutboundStream] = {}

    def set_chunk_size(self, size: int) -> bytes:
        """The Set Chunk Size message (sent with the old size), then use the new size."""
        if not 1 <= size <= MAX_CHUNK_SIZE_FIELD:
            raise LocalProtocolError(f"chunk size {size} out of range")
        data = self.write(2, SET_CHUNK_SIZE, 0, 0, _U32.pack(size))
        self.chunk_size = size
        return data

    def write(
        self, csid: int, type_id: int, stream_id: int, timestamp: int, payload: bytes
    ) -> bytes:
        if not 2 <= csid <= 65599:
            raise LocalProtocolError(f"chunk stream id {csid} out of range")
        if len(payload) > 0xFFFFFF:
            raise LocalProtocolError("RTMP messages are limited to 16 MiB")
        timestamp &= 0xFFFFFFFF
        prev = self._streams.get(csid)
        if prev is None:
            prev = self._streams[csid] = _OutboundStream()
            fmt = 0
        elif prev.stream_id != stream_id or timestamp < prev.timestamp:
            fmt = 0
        elif prev.length != len(payload) or prev.type_id != type_id:
            fmt = 1
        elif prev.delta != timestamp - prev.timestamp:
            fmt = 2
        else:
            fmt = 3
        ts_field = timestamp if fmt == 0 else timestamp - prev.timestamp
        prev.delta = ts_field
        prev.timestamp = timestamp
        prev.length = len(payload)
        prev.type_id = type_id
        prev.stream_id = stream_id
        extended = ts_field >= MAX_TIMESTAMP_FIELD
        three = MAX_TIMESTAMP_FIELD if extended else ts_field
        ext_bytes = _U32.pack(ts_field) if extended else b""
        out = bytearray(_basic_header(fmt, csid))
        if fmt < 3:
            out += three.to_bytes(3, "big")
            if fmt <= 1:
                out += len(payload).to_bytes(3, "big")
                out.append(type_id)
            if fmt == 0:
                out += _U32_LE.pack(stream_id)
        out += ext_bytes
        view = memoryview(payload)
        size = self.chunk_size
        out += view[:size]
        continuation = _basic_header(3, csid) + ext_bytes
        for start in range(size, len(payload), size):
            out += continuation
            out += view[start : start + size]
        return bytes(out)


def _basic_header(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes(((fmt << 6) | csid,))
    if csid < 320:
        return bytes((fmt << 6, csid - 64))
    return bytes(((fmt << 6) | 1, (csid - 64) & 0xFF, (csid - 64) >> 8))

"""The RTMP handshake (RTMP spec 1.0, 5.2): C0/C1/C2 and S0/S1/S2.

This is the plain handshake: S2 echoes C1 and C2 is accepted without checking its contents.
That is what ffmpeg and OBS need to publish; ffmpeg checks the Flash-style digest in S1 only
when it plays a stream *and* the server advertises a version in S1, which we do not.
"""

from __future__ import annotations

import os
import struct
import time
from enum import Enum

from live.ingest.rtmp.errors import LocalProtocolError, RtmpProtocolError

RTMP_VERSION = 3
HANDSHAKE_SIZE = 1536

_TIMES = struct.Struct(">II")


class HandshakeState(Enum):
    AWAIT_C0C1 = "await C0+C1"
    AWAIT_C2 = "await C2"
    AWAIT_S0S1S2 = "await S0+S1+S2"
    DONE = "done"


def _uptime_ms() -> int:
    return int(time.monotonic() * 1000) & 0xFFFFFFFF


class ServerHandshake:
    """Server side: C0+C1 in -> S0+S1+S2 out; C2 in -> done.

    ``receive(data)`` returns the bytes not consumed by the handshake (the start of the chunk
    stream, if the client pipelined it) once the handshake completes, else b"".
    """

    def __init__(self) -> None:
        self.state = HandshakeState.AWAIT_C0C1
        self._buffer = bytearray()
        self._out = bytearray()
        self._s1 = _TIMES.pack(_uptime_ms(), 0) + os.urandom(HANDSHAKE_SIZE - 8)

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def receive(self, data: bytes | bytearray | memoryview) -> bytes:
        if self.state is HandshakeState.DONE:
            raise LocalProtocolError("handshake already complete")
        self._buffer += data
        if self.state is HandshakeState.AWAIT_C0C1:
            if len(self._buffer) < 1 + HANDSHAKE_SIZE:
                return b""
            if self._buffer[0] != RTMP_VERSION:
                raise RtmpProtocolError(f"unsupported RTMP version {self._buffer[0]} in C0")
            c1 = bytes(self._buffer[1 : 1 + HANDSHAKE_SIZE])
            del self._buffer[: 1 + HANDSHAKE_SIZE]
            s2 = c1[:4] + _TIMES.pack(_uptime_ms(), 0)[:4] + c1[8:]
            self._out += bytes((RTMP_VERSION,)) + self._s1 + s2
            self.state = HandshakeState.AWAIT_C2
        if self.state is HandshakeState.AWAIT_C2:
            if len(self._buffer) < HANDSHAKE_SIZE:
                return b""
            rest = bytes(self._buffer[HANDSHAKE_SIZE:])
            self._buffer.clear()
            self.state = HandshakeState.DONE
            return rest
        return b""


class ClientHandshake:
    """Client side: sends C0+C1 at once; S0+S1+S2 in -> C2 out -> done."""

    def __init__(self) -> None:
        self.state = HandshakeState.AWAIT_S0S1S2
        self._buffer = bytearray()
        self._c1 = _TIMES.pack(_uptime_ms(), 0) + os.urandom(HANDSHAKE_SIZE - 8)
        self._out = bytearray(bytes((RTMP_VERSION,)) + self._c1)

    def data_to_send(self) -> bytes:
        out, self._out = bytes(self._out), bytearray()
        return out

    def receive(self, data: bytes | bytearray | memoryview) -> bytes:
        if self.state is HandshakeState.DONE:
            raise LocalProtocolError("handshake already complete")
        self._buffer += data
        if len(self._buffer) < 1 + 2 * HANDSHAKE_SIZE:
            return b""
        if self._buffer[0] != RTMP_VERSION:
            raise RtmpProtocolError(f"unsupported RTMP version {self._buffer[0]} in S0")
        s1 = bytes(self._buffer[1 : 1 + HANDSHAKE_SIZE])
        rest = bytes(self._buffer[1 + 2 * HANDSHAKE_SIZE :])
        self._buffer.clear()
        self._out += s1  # C2 echoes S1
        self.state = HandshakeState.DONE
        return rest

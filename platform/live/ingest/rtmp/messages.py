"""RTMP message types and the payloads of protocol control and user control messages.

RTMP spec 1.0: 5.4 (protocol control), 6.2 (user control events), 7.1 (message types).
"""

from __future__ import annotations

import struct
from enum import IntEnum

from live.ingest.rtmp.errors import RtmpProtocolError

_U32 = struct.Struct(">I")
_EVENT = struct.Struct(">H")


class MessageType(IntEnum):
    SET_CHUNK_SIZE = 1
    ABORT = 2
    ACKNOWLEDGEMENT = 3
    USER_CONTROL = 4
    WINDOW_ACK_SIZE = 5
    SET_PEER_BANDWIDTH = 6
    AUDIO = 8
    VIDEO = 9
    DATA_AMF3 = 15
    SHARED_OBJECT_AMF3 = 16
    COMMAND_AMF3 = 17
    DATA_AMF0 = 18
    SHARED_OBJECT_AMF0 = 19
    COMMAND_AMF0 = 20
    AGGREGATE = 22


class UserControlEvent(IntEnum):
    STREAM_BEGIN = 0
    STREAM_EOF = 1
    STREAM_DRY = 2
    SET_BUFFER_LENGTH = 3
    STREAM_IS_RECORDED = 4
    PING_REQUEST = 6
    PING_RESPONSE = 7


class PeerBandwidthLimit(IntEnum):
    HARD = 0
    SOFT = 1
    DYNAMIC = 2


# Chunk stream ids by convention (ffmpeg, librtmp, SRS use the same ones).
CSID_CONTROL = 2
CSID_COMMAND = 3
CSID_AUDIO = 4
CSID_STREAM_COMMAND = 5
CSID_VIDEO = 6


def u32(value: int) -> bytes:
    return _U32.pack(value & 0xFFFFFFFF)


def parse_u32(payload: bytes, what: str) -> int:
    if len(payload) < 4:
        raise RtmpProtocolError(f"{what} shorter than 4 bytes")
    return int(_U32.unpack_from(payload)[0])


def user_control(event: UserControlEvent, *values: int) -> bytes:
    return _EVENT.pack(event) + b"".join(u32(v) for v in values)


def parse_user_control(payload: bytes) -> tuple[int, bytes]:
    """(event type, event data) of a User Control message."""
    if len(payload) < 2:
        raise RtmpProtocolError("User Control message shorter than 2 bytes")
    return int(_EVENT.unpack_from(payload)[0]), payload[2:]


def set_peer_bandwidth(window: int, limit: PeerBandwidthLimit) -> bytes:
    return u32(window) + bytes((limit,))

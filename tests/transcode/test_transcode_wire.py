"""The supervisor/worker wire: frames round-trip, however the reader is cut, and limits hold."""

from __future__ import annotations

import io
import struct

import pytest
from live.media.units import AccessUnit, TrackKind
from live.transcode.events import RenditionUnit
from live.transcode.wire import (
    MAX_MESSAGE,
    WorkerFlush,
    WorkerInput,
    WorkerOutput,
    WorkerProtocolError,
    body_size,
    decode_body,
    encode_message,
    read_message,
)


def _unit(pts_ms: int) -> AccessUnit:
    return AccessUnit(TrackKind.VIDEO, pts_ms, pts_ms, b"\x00\x00\x00\x01\x65", pts_ms == 0, 1.0e9)


def test_messages_round_trip_in_order_and_end_of_input_reads_none() -> None:
    sent = [WorkerInput(_unit(0), 1.5), WorkerOutput((RenditionUnit("360p30", _unit(33)),), 1),
            WorkerFlush()]
    stream = io.BytesIO(b"".join(encode_message(m) for m in sent))
    assert [read_message(stream) for _ in sent] == sent
    assert read_message(stream) is None


def test_a_frame_cut_short_reads_as_end_of_input() -> None:
    frame = encode_message(WorkerFlush())
    assert read_message(io.BytesIO(frame[:-1])) is None
    assert read_message(io.BytesIO(frame[:2])) is None


def test_the_async_reader_pieces_decode_the_same_frame() -> None:
    frame = encode_message(WorkerInput(_unit(0), 2.0))
    size = body_size(frame[:4])
    assert size == len(frame) - 4
    assert decode_body(frame[4:4 + size]) == WorkerInput(_unit(0), 2.0)


def test_an_announced_length_over_the_limit_is_a_protocol_error() -> None:
    with pytest.raises(WorkerProtocolError, match="exceeds"):
        body_size(struct.pack(">I", MAX_MESSAGE + 1))
    with pytest.raises(WorkerProtocolError):
        read_message(io.BytesIO(struct.pack(">I", MAX_MESSAGE + 1)))

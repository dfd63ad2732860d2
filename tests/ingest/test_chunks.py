"""Chunk stream multiplexing and demultiplexing (RTMP spec 5.3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.ingest.rtmp.chunks import ChunkLimits, ChunkReader, ChunkWriter, RtmpMessage
from live.ingest.rtmp.errors import LimitExceeded, RtmpProtocolError

message_strategy = st.builds(
    lambda csid, type_id, stream_id, step, payload: (csid, type_id, stream_id, step, payload),
    st.sampled_from([3, 4, 5, 6, 63, 64, 319, 320, 65599]),
    st.sampled_from([8, 9, 18, 20]),
    st.integers(0, 3),
    st.one_of(st.integers(0, 100), st.just(0xFFFFFF), st.integers(0x1000000, 0x2000000)),
    st.binary(max_size=1000),
)


def _build(messages, chunk_size):  # type: ignore[no-untyped-def]
    writer = ChunkWriter()
    out = bytearray()
    if chunk_size != 128:
        out += writer.set_chunk_size(chunk_size)
    expected = []
    clocks: dict[int, int] = {}
    for csid, type_id, stream_id, step, payload in messages:
        timestamp = (clocks.get(csid, 0) + step) & 0xFFFFFFFF
        clocks[csid] = timestamp
        out += writer.write(csid, type_id, stream_id, timestamp, payload)
        expected.append(RtmpMessage(csid, type_id, stream_id, timestamp, payload))
    return bytes(out), expected


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


@given(
    st.lists(message_strategy, max_size=25),
    st.sampled_from([1, 2, 128, 500, 4096, 65536]),
    st.lists(st.integers(0, 1 << 20), max_size=30),
)
@settings(max_examples=200)
def test_any_split_of_the_multiplexed_bytes_yields_the_same_messages(
    messages: list, chunk_size: int, cuts: list[int]
) -> None:
    data, expected = _build(messages, chunk_size)
    reader = ChunkReader()
    received = []
    for piece in _split(data, cuts):
        received.extend(reader.feed(piece))
    media = [m for m in received if m.type_id != 1]
    assert media == expected
    assert reader.buffered == 0


def test_extended_timestamp_is_repeated_on_type3_continuations() -> None:
    writer = ChunkWriter()
    data = writer.write(6, 9, 1, 0x01234567, b"a" * 300)
    # 1 basic + 11 header + 4 extended + 128, then 1 basic + 4 extended + 128, ...
    assert data[12:16] == bytes.fromhex("01234567")
    assert data[1 + 11 + 4 + 128] == 0xC6
    assert data[1 + 11 + 4 + 128 + 1 : 1 + 11 + 4 + 128 + 5] == bytes.fromhex("01234567")
    (message,) = ChunkReader().feed(data)
    assert message.timestamp == 0x01234567 and message.payload == b"a" * 300


def test_type3_header_starting_a_message_repeats_the_last_delta() -> None:
    writer = ChunkWriter()
    data = b"".join(writer.write(4, 8, 1, ts, b"xx") for ts in (10, 30, 50, 70))
    # 10 -> fmt0, 30 -> fmt2 (delta 20), 50 and 70 -> fmt3
    assert [m.timestamp for m in ChunkReader().feed(data)] == [10, 30, 50, 70]
    assert data.count(bytes([0xC4])) >= 2


def test_abort_discards_the_partial_message() -> None:
    writer = ChunkWriter()
    full = writer.write(6, 9, 1, 0, b"v" * 300)
    abort = ChunkWriter().write(2, 2, 0, 0, (6).to_bytes(4, "big"))
    fresh = ChunkWriter().write(6, 9, 1, 5, b"w" * 10)
    reader = ChunkReader()
    assert reader.feed(full[:140]) == []
    assert [m.type_id for m in reader.feed(abort)] == [2]
    assert reader.buffered == 0
    (message,) = reader.feed(fresh)
    assert message.payload == b"w" * 10


def test_message_larger_than_the_limit_is_refused() -> None:
    data = ChunkWriter().write(6, 9, 1, 0, b"v" * 2000)
    with pytest.raises(LimitExceeded):
        ChunkReader(ChunkLimits(max_message_size=1000)).feed(data)


def test_partial_messages_across_many_chunk_streams_are_bounded() -> None:
    writer = ChunkWriter()
    reader = ChunkReader(ChunkLimits(max_pending_bytes=1000))
    with pytest.raises(LimitExceeded):
        for csid in range(3, 40):
            reader.feed(writer.write(csid, 9, 1, 0, b"v" * 300)[:140])


def test_too_many_chunk_streams_are_refused() -> None:
    writer = ChunkWriter()
    reader = ChunkReader(ChunkLimits(max_chunk_streams=4))
    with pytest.raises(LimitExceeded):
        for csid in range(3, 10):
            reader.feed(writer.write(csid, 9, 1, 0, b"v"))


def test_first_chunk_of_a_stream_must_have_a_full_header() -> None:
    with pytest.raises(RtmpProtocolError, match="starts with a type 3"):
        ChunkReader().feed(b"\xc6abc")


def test_chunk_size_above_the_limit_is_refused() -> None:
    data = ChunkWriter().write(2, 1, 0, 0, (1 << 30).to_bytes(4, "big"))
    with pytest.raises(LimitExceeded):
        ChunkReader(ChunkLimits(max_chunk_size=1 << 20)).feed(data)


def test_a_failed_reader_stays_failed() -> None:
    reader = ChunkReader()
    with pytest.raises(RtmpProtocolError):
        reader.feed(b"\xc6")
    with pytest.raises(RtmpProtocolError):
        reader.feed(b"\x06")


@given(st.binary(max_size=600))
@settings(max_examples=300)
def test_random_bytes_raise_only_protocol_errors(data: bytes) -> None:
    reader = ChunkReader(ChunkLimits(max_message_size=4096, max_pending_bytes=8192))
    try:
        reader.feed(data)
    except RtmpProtocolError:
        pass
    assert reader.buffered <= len(data)

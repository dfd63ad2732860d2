"""The CMAF push format: what the packager encodes, the origin's parser reads back, at any split."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.package.fmp4 import box, full_box
from live.package.ingest_wire import (
    END_OF_TRACK,
    INFO_UUID,
    IngestFormatError,
    IngestParser,
    PartReceived,
    TrackDropped,
    TrackEnded,
    TrackHeader,
    encode_drop,
    encode_header,
    encode_part,
)
from live.package.parts import InitSegment, Part
from live.package.timing import ChannelTiming

TIMING = ChannelTiming(target_duration_s=2, part_target_s=0.201)
INIT = InitSegment("720p", box(b"ftyp", b"iso6\0\0\0\0") + box(b"moov", b"x" * 40),
                   "avc1.64001f,mp4a.40.2", 3_000_000, 1280, 720, 30.0)


def chunk(decode_time: int, payload: bytes = b"frame") -> bytes:
    traf = box(b"traf", full_box(b"tfhd", 0, 0x020000, struct.pack(">I", 1)),
               full_box(b"tfdt", 1, 0, struct.pack(">Q", decode_time)))
    return box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", 1)), traf) + box(b"mdat", payload)


def part(msn: int, index: int, *, gap: bool = False) -> Part:
    t = (msn * 10 + index) * 18_090
    return Part("720p", msn, index, b"" if gap else chunk(t, bytes([index]) * 50), 0.201,
                index == 0 and not gap, 1_700_000_000.0 + t / 90_000, index == 9, t, gap)


def stream(parts: list[Part], *, end: bool = True) -> bytes:
    return encode_header(INIT, TIMING) + b"".join(encode_part(p) for p in parts) \
        + (END_OF_TRACK if end else b"")


PARTS = [part(5, i) for i in range(10)] + [part(6, 0, gap=True), part(6, 1, gap=True)]
EXPECTED = [TrackHeader(INIT, TIMING), *(PartReceived(p) for p in PARTS), TrackEnded()]


def parse(data: bytes, cuts: list[int] | None = None) -> list[object]:
    parser = IngestParser("720p")
    events: list[object] = []
    last = 0
    for cut in sorted(cuts or []):
        events += parser.feed(data[last:cut])
        last = cut
    events += parser.feed(data[last:])
    events += parser.feed_eof()
    return events


def test_a_track_round_trips_header_parts_gaps_and_end() -> None:
    assert parse(stream(PARTS)) == EXPECTED


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(stream(PARTS))), max_size=40))
def test_a_push_split_at_any_bytes_parses_the_same(cuts: list[int]) -> None:
    assert parse(stream(PARTS), cuts) == EXPECTED


def test_a_push_that_stops_between_boxes_keeps_what_came() -> None:
    assert parse(stream(PARTS[:3], end=False)) == EXPECTED[:4]


def test_a_drop_announces_the_rendition_retired() -> None:
    assert parse(stream(PARTS[:1], end=False) + encode_drop())[-1] == TrackDropped()


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=len(stream(PARTS)) - 1))
def test_a_push_truncated_inside_a_box_fails_with_a_reason_after_the_whole_parts(cut: int) -> None:
    data = stream(PARTS)
    parser = IngestParser("720p")
    events = parser.feed(data[:cut])
    try:
        events += parser.feed_eof()
    except IngestFormatError as exc:
        assert "ended inside a box" in str(exc)
    assert events == EXPECTED[:len(events)]


def info(fields: dict[str, object]) -> bytes:
    return box(b"uuid", INFO_UUID, json.dumps(fields).encode())


@pytest.mark.parametrize(("data", "reason"), [
    (box(b"ftyp", b"iso6"), "expected the metadata box"),
    (encode_part(PARTS[0]), "starts with the CMAF header"),
    (box(b"uuid", b"\0" * 16, b"{}"), "not ours"),
    (box(b"uuid", INFO_UUID, b"{not json"), "not JSON"),
    (box(b"uuid", INFO_UUID, b"x" * 5000), "metadata box of"),
    (info({"kind": "init", "size": 10**9}), "media of"),
    (encode_header(INIT, TIMING)[:-len(INIT.data)] + box(b"moov", b"x" * 40)
     + box(b"ftyp", b"iso6\0\0\0\0"), "ftyp + moov"),
    (stream([]) + b"junk", "data after the end-of-track"),
    (encode_header(INIT, TIMING) + box(b"moof"), "metadata box before each chunk"),
    (encode_header(INIT, TIMING) + encode_header(INIT, TIMING), "second CMAF header"),
    (encode_header(INIT, TIMING) + info({"kind": "part", "size": 8, "msn": 0, "index": 0,
                                         "duration": 0.2, "independent": True, "capture": 0.0,
                                         "segment_end": False, "decode_time": 0, "gap": False})
     + box(b"mdat"), "[styp] moof mdat"),
    (encode_header(INIT, TIMING) + encode_part(PARTS[0])[:-len(PARTS[0].data)]
     + chunk(PARTS[0].decode_time + 1, bytes(50)), "differs from the metadata"),
    (encode_header(INIT, TIMING) + info({"kind": "part", "size": 0, "gap": True, "decode_time": 0,
                                         "msn": True}), "'msn'=True"),
    (encode_header(INIT, TIMING) + struct.pack(">I4s", 1, b"moof"), "64-bit"),
])
def test_a_malformed_push_fails_with_its_reason(data: bytes, reason: str) -> None:
    parser = IngestParser("720p")
    with pytest.raises(IngestFormatError, match=None) as failure:
        parser.feed(data)
        parser.feed_eof()
    assert reason in str(failure.value)
    with pytest.raises(IngestFormatError):
        parser.feed(b"more")  # a failed push stays failed


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.booleans())
def test_arbitrary_bytes_either_parse_or_fail_as_format_errors(noise: bytes, prefixed: bool) -> None:
    data = (encode_header(INIT, TIMING) if prefixed else b"") + noise
    parser = IngestParser("720p")
    try:
        parser.feed(data)
        parser.feed_eof()
    except IngestFormatError:
        pass

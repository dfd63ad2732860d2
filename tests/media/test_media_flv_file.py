"""FLV files (FLV spec v10.1 E.2, E.3): the incremental reader and the writer."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live.media import flv
from live.media.units import AccessUnit, TrackKind

fixture_ok = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def flv_bytes(flv_360p: Path) -> bytes:
    return flv_360p.read_bytes()


def _read_in_chunks(data: bytes, cuts: list[int]) -> list[flv.FlvHeader | flv.FlvTag]:
    reader = flv.FlvReader()
    items: list[flv.FlvHeader | flv.FlvTag] = []
    bounds = [0, *sorted(cuts), len(data)]
    for start, end in itertools.pairwise(bounds):
        items += reader.feed(data[start:end])
    reader.feed_eof()
    return items


def test_ffmpeg_file_rewrites_byte_for_byte(flv_bytes: bytes) -> None:
    header, tags = flv.read_flv(flv_bytes)
    assert header == flv.FlvHeader(1, has_audio=True, has_video=True)
    assert [t.tag_type for t in tags[:1]] == [flv.TAG_SCRIPT]
    assert flv.write_flv(tags) == flv_bytes


@fixture_ok
@given(data=st.data())
def test_any_split_into_chunks_gives_the_same_tags(flv_bytes: bytes, data: st.DataObject) -> None:
    whole = _read_in_chunks(flv_bytes, [])
    cuts = data.draw(st.lists(st.integers(0, len(flv_bytes)), max_size=60))
    assert _read_in_chunks(flv_bytes, cuts) == whole


def test_byte_at_a_time_feeding_gives_the_same_tags(flv_bytes: bytes) -> None:
    head = flv_bytes[:4000]
    reader = flv.FlvReader()
    items: list[flv.FlvHeader | flv.FlvTag] = []
    for i in range(len(head)):
        items += reader.feed(head[i : i + 1])
    assert items == list(flv.FlvReader().feed(head))


def test_truncated_file_is_reported_at_eof(flv_bytes: bytes) -> None:
    reader = flv.FlvReader()
    reader.feed(flv_bytes[:-10])
    with pytest.raises(flv.FlvError, match="ends inside"):
        reader.feed_eof()
    with pytest.raises(flv.FlvError, match="ends inside"):
        flv.FlvReader().feed_eof()


def test_file_without_the_final_previous_tag_size_still_ends_cleanly(flv_bytes: bytes) -> None:
    assert flv.read_flv(flv_bytes[:-4]) == flv.read_flv(flv_bytes)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b"FLX" + b[3:], "not an FLV file"),
        (lambda b: b[:5] + b"\xff\xff\xff\xff" + b[9:], "DataOffset"),
        (lambda b: b[:9] + b"\x00\x00\x00\x07" + b[13:], "PreviousTagSize 7"),
        (lambda b: b[:13] + bytes([b[13] | 0x20]) + b[14:], "encrypted"),
    ],
)
def test_corrupt_headers_raise_flv_error(
    flv_bytes: bytes, mutate: Callable[[bytes], bytes], reason: str
) -> None:
    reader = flv.FlvReader()
    with pytest.raises(flv.FlvError, match=reason):
        reader.feed(mutate(flv_bytes))
    with pytest.raises(flv.FlvError, match="already failed"):
        reader.feed(b"")


def test_tag_larger_than_the_limit_is_refused_before_buffering_it() -> None:
    data = flv.write_flv([flv.FlvTag(flv.TAG_AUDIO, 0, bytes(5000))])
    reader = flv.FlvReader(max_tag_size=4096)
    with pytest.raises(flv.FlvError, match="exceeds the 4096 limit"):
        reader.feed(data[:30])


def test_extended_timestamps_round_trip() -> None:
    tags = [flv.FlvTag(flv.TAG_VIDEO, ts, b"\x17\x02\x00\x00\x00") for ts in (0, 0xFFFFFF, 2**32 - 1)]
    assert flv.read_flv(flv.write_flv(tags))[1] == tags
    with pytest.raises(ValueError, match="32 bits"):
        flv.encode_tag(flv.FlvTag(flv.TAG_VIDEO, 2**32, b""))


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_flv_error(data: bytes) -> None:
    reader = flv.FlvReader()
    try:
        reader.feed(b"FLV\x01\x05\x00\x00\x00\x09" + data)
        reader.feed_eof()
    except flv.FlvError:
        pass


@pytest.mark.ffmpeg
def test_pyav_reads_a_file_we_muxed_with_the_same_timestamps(
    flv_bytes: bytes, tmp_path: Path
) -> None:
    demuxer = flv.FlvTagDemuxer()
    events = []
    for tag in flv.read_flv(flv_bytes)[1]:
        events += demuxer.feed(tag.tag_type, tag.timestamp_ms, tag.body, 0.0)
    muxer = flv.FlvTagMuxer()
    out = tmp_path / "ours.flv"
    out.write_bytes(flv.write_flv(muxer.mux(e) for e in events))
    video = [(e.dts_ms, e.pts_ms, e.keyframe, e.data) for e in events
             if isinstance(e, AccessUnit) and e.kind is TrackKind.VIDEO]  # fmt: skip
    audio = [(e.dts_ms, e.data) for e in events
             if isinstance(e, AccessUnit) and e.kind is TrackKind.AUDIO]  # fmt: skip
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.width == 640
        assert container.streams.audio[0].codec_context.sample_rate == 48000
        got_video, got_audio = [], []
        for p in container.demux():
            if p.size == 0:
                continue
            if p.stream.type == "video":
                got_video.append((p.dts, p.pts, p.is_keyframe, bytes(p)))
            else:
                got_audio.append((p.dts, bytes(p)))
    assert got_video == video and got_audio == audio
    # And FFmpeg decodes it: every video unit becomes a picture.
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == len(video)

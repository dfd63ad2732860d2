"""The fMP4 writer on its own: box trees read back by our independent walker and by PyAV/ffprobe."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path
from typing import Any

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.media.units import AudioConfig, VideoConfig
from live.package import fmp4

VIDEO = VideoConfig("h264", "avc1.64001f", 1280, 720, b"\x01\x64\x00\x1f\xff\xe1\x00\x00\x01\x00\x00")
HEVC = VideoConfig("h265", "hvc1.1.4.L93.B0", 640, 360, bytes(23))
AUDIO = AudioConfig("aac", "mp4a.40.2", 48000, 2, 2, b"\x11\x90")


def _stsd_entry(data: bytes, trak_box: object) -> bytes:
    stbl = trak_box.find(b"mdia")[0].find(b"minf")[0].find(b"stbl")[0]  # type: ignore[attr-defined]
    stsd = stbl.find(b"stsd")[0]
    (count,) = struct.unpack_from(">I", data, stsd.payload_start + 4)
    assert count == 1
    return data[stsd.payload_start + 12 : stsd.payload_start + 16]


@pytest.mark.parametrize(
    ("tracks", "entries"),
    [
        ([fmp4.video_track(VIDEO)], [b"avc1"]),
        ([fmp4.video_track(HEVC)], [b"hvc1"]),
        ([fmp4.audio_track(AUDIO, 1)], [b"mp4a"]),
        ([fmp4.video_track(VIDEO, 1), fmp4.audio_track(AUDIO, 2)], [b"avc1", b"mp4a"]),
    ],
)
def test_init_segment_is_ftyp_then_moov_with_one_trak_and_trex_per_track(
    tracks: list[fmp4.Track], entries: list[bytes], boxes: Any
) -> None:
    data = fmp4.init_segment(tracks)
    top = boxes.walk(data)
    assert [b.kind for b in top] == [b"ftyp", b"moov"]
    assert b"cmfc" in data[top[0].start : top[0].end]
    moov = top[1]
    assert [c.kind for c in moov.children] == [b"mvhd"] + [b"trak"] * len(tracks) + [b"mvex"]
    assert [_stsd_entry(data, t) for t in moov.find(b"trak")] == entries
    trex = moov.find(b"mvex")[0].find(b"trex")
    assert [struct.unpack_from(">I", data, t.payload_start + 4)[0] for t in trex] == [
        t.track_id for t in tracks
    ]
    for trak, track in zip(moov.find(b"trak"), tracks, strict=True):
        mdhd = trak.find(b"mdia")[0].find(b"mdhd")[0]
        (timescale,) = struct.unpack_from(">I", data, mdhd.payload_start + 12)
        assert timescale == track.timescale


def test_init_segment_rejects_duplicate_track_ids_and_unknown_codecs() -> None:
    with pytest.raises(fmp4.Fmp4Error, match="distinct"):
        fmp4.init_segment([fmp4.video_track(VIDEO, 1), fmp4.audio_track(AUDIO, 1)])
    with pytest.raises(fmp4.Fmp4Error, match="vp9"):
        fmp4.init_segment([fmp4.video_track(VideoConfig("vp9", "vp09", 640, 360, b"x"))])
    with pytest.raises(fmp4.Fmp4Error, match="opus"):
        fmp4.init_segment([fmp4.audio_track(AudioConfig("opus", "opus", 48000, 2, 0, b"x"))])
    with pytest.raises(fmp4.Fmp4Error, match="at least one"):
        fmp4.init_segment([])


def test_fragment_rejects_empty_runs_and_bad_sequence_numbers() -> None:
    with pytest.raises(fmp4.Fmp4Error, match="at least one sample"):
        fmp4.fragment(1, [fmp4.TrackRun(1, 0, [])])
    with pytest.raises(fmp4.Fmp4Error, match="sequence number"):
        fmp4.fragment(0, [fmp4.TrackRun(1, 0, [fmp4.Sample(b"x", 1, True)])])
    with pytest.raises(fmp4.Fmp4Error, match="composition offset"):
        fmp4.fragment(1, [fmp4.TrackRun(1, 0, [fmp4.Sample(b"x", 1, True, 1 << 31)])])


def _esds_asc(data: bytes) -> bytes:
    """Read the DecoderSpecificInfo out of an esds by walking the descriptors (14496-1 8.3.3)."""
    pos = data.index(b"esds") + 8

    def header(p: int) -> tuple[int, int, int]:
        tag, size, p = data[p], 0, p + 1
        while True:
            b = data[p]
            p += 1
            size = (size << 7) | (b & 0x7F)
            if not b & 0x80:
                return tag, size, p

    tag, _, pos = header(pos)
    assert tag == 0x03
    tag, _, pos = header(pos + 3)
    assert tag == 0x04
    tag, size, pos = header(pos + 13)
    assert tag == 0x05
    return data[pos : pos + size]


@given(asc=st.binary(min_size=2, max_size=400))
@settings(max_examples=60)
def test_esds_carries_any_length_of_audio_specific_config_intact(asc: bytes, boxes: Any) -> None:
    data = fmp4.init_segment([fmp4.audio_track(AudioConfig("aac", "mp4a.40.2", 44100, 2, 2, asc), 1)])
    boxes.walk(data)
    assert _esds_asc(data) == asc


sample_st = st.builds(
    fmp4.Sample,
    data=st.binary(min_size=0, max_size=64),
    duration=st.integers(0, 0xFFFF_FFFF),
    sync=st.booleans(),
    composition_offset=st.integers(-(1 << 31), (1 << 31) - 1),
)


@given(
    sequence=st.integers(1, 0xFFFF_FFFF),
    runs=st.lists(
        st.tuples(st.integers(0, (1 << 64) - 1), st.lists(sample_st, min_size=1, max_size=20)),
        min_size=1,
        max_size=3,
    ),
    segment_start=st.booleans(),
)
@settings(max_examples=150)
def test_fragment_fields_read_back_exactly_and_box_sizes_tile_the_bytes(
    sequence: int, runs: list[tuple[int, list[fmp4.Sample]]], segment_start: bool, boxes: Any
) -> None:
    track_runs = [fmp4.TrackRun(i + 1, t, samples) for i, (t, samples) in enumerate(runs)]
    data = fmp4.fragment(sequence, track_runs, segment_start=segment_start)
    top = boxes.walk(data)
    assert [b.kind for b in top] == ([b"styp"] if segment_start else []) + [b"moof", b"mdat"]
    (frag,) = boxes.read_fragments(data)
    assert frag.sequence == sequence
    assert len(frag.trafs) == len(track_runs)
    for traf, run in zip(frag.trafs, track_runs, strict=True):
        assert (traf.track_id, traf.decode_time) == (run.track_id, run.decode_time)
        for got, want in zip(traf.samples, run.samples, strict=True):
            assert (got.duration, got.size, got.cts) == (
                want.duration,
                len(want.data),
                want.composition_offset,
            )
            assert data[got.offset : got.offset + got.size] == want.data
            assert got.flags == (fmp4.SYNC_SAMPLE_FLAGS if want.sync else fmp4.NON_SYNC_SAMPLE_FLAGS)


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs Debian's ffprobe")
def test_pyav_reads_fragments_with_negative_composition_offsets(tmp_path: Path) -> None:
    """trun version 1 signed offsets (pts before dts) survive a demuxer we did not write."""
    track = fmp4.audio_track(AUDIO, 1)
    silent = b"\x21\x10\x04\x60\x8c\x1c"  # one silent AAC-LC stereo raw data block
    samples = [fmp4.Sample(silent, 1024, True, -512 if i % 2 else 0) for i in range(8)]
    out = tmp_path / "a.mp4"
    out.write_bytes(fmp4.init_segment([track]) + fmp4.fragment(1, [fmp4.TrackRun(1, 4096, samples)]))
    with av.open(str(out)) as container:
        stamps = [(p.dts, p.pts) for p in container.demux() if p.size]
    assert [d for d, _ in stamps] == [4096 + 1024 * i for i in range(8)]
    # FFmpeg's mov demuxer moves every pts by the most negative offset (its ctts "dts_shift"),
    # so the offsets read back are ours plus one constant.
    assert [(p or 0) - (d or 0) - 512 for d, p in stamps] == [-512 if i % 2 else 0 for i in range(8)]
    probe = subprocess.run(["ffprobe", "-v", "error", str(out)], capture_output=True, text=True, check=True)
    assert probe.stderr == ""

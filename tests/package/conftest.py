"""Shared fixtures for the packager tests: real media made by ffmpeg, and an independent box reader.

The box reader is deliberately written from ISO/IEC 14496-12 here, not imported from the
writer, so a mistake in one is not silently shared by the other; PyAV/ffprobe are the checks
by parsers we did not write at all.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import pytest
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"dinf", b"stbl", b"mvex", b"moof", b"traf"}


@dataclass
class Box:
    kind: bytes
    start: int
    end: int  # exclusive
    children: list[Box] = field(default_factory=list)

    @property
    def payload_start(self) -> int:
        return self.start + 8

    def find(self, kind: bytes) -> list[Box]:
        return [c for c in self.children if c.kind == kind]


def walk(data: bytes, start: int = 0, end: int | None = None) -> list[Box]:
    """Every box in ``data[start:end]``; fails unless the size fields tile the range exactly."""
    end = len(data) if end is None else end
    boxes: list[Box] = []
    pos = start
    while pos < end:
        assert end - pos >= 8, f"truncated box header at {pos}"
        size, kind = struct.unpack_from(">I4s", data, pos)
        assert size >= 8, f"box {kind!r} at {pos} has size {size}"
        assert pos + size <= end, f"box {kind!r} at {pos} (size {size}) overruns its parent ending at {end}"
        b = Box(kind, pos, pos + size)
        if kind in CONTAINERS:
            b.children = walk(data, pos + 8, pos + size)
        boxes.append(b)
        pos += size
    assert pos == end
    return boxes


@dataclass
class TrunSample:
    duration: int
    size: int
    flags: int
    cts: int
    offset: int  # absolute position of the sample's bytes in the file


@dataclass
class Traf:
    track_id: int
    decode_time: int
    samples: list[TrunSample]


@dataclass
class Fragment:
    sequence: int
    trafs: list[Traf]
    moof_start: int


def read_fragments(data: bytes) -> list[Fragment]:
    """Parse every moof (mfhd/tfhd/tfdt/trun) and check each trun's samples lie in the next mdat."""
    top = walk(data)
    fragments: list[Fragment] = []
    for i, b in enumerate(top):
        if b.kind != b"moof":
            continue
        mdat = top[i + 1]
        assert mdat.kind == b"mdat", "a moof must be followed by its mdat"
        (sequence,) = struct.unpack_from(">I", data, b.find(b"mfhd")[0].payload_start + 4)
        trafs = []
        expected_offset = mdat.start + 8
        for traf in b.find(b"traf"):
            tfhd = traf.find(b"tfhd")[0]
            (vf,) = struct.unpack_from(">I", data, tfhd.payload_start)
            assert vf & 0xFFFFFF == 0x020000, "tfhd must say default-base-is-moof and nothing else"
            (track_id,) = struct.unpack_from(">I", data, tfhd.payload_start + 4)
            tfdt = traf.find(b"tfdt")[0]
            assert data[tfdt.payload_start] == 1
            (decode_time,) = struct.unpack_from(">Q", data, tfdt.payload_start + 4)
            trun = traf.find(b"trun")[0]
            (vf,) = struct.unpack_from(">I", data, trun.payload_start)
            assert vf >> 24 == 1 and vf & 0xFFFFFF == 0x000F01
            count, data_offset = struct.unpack_from(">Ii", data, trun.payload_start + 4)
            assert trun.end - trun.start == 20 + 16 * count
            pos = b.start + data_offset
            assert pos == expected_offset, "runs must be laid out back to back in the mdat"
            samples = []
            for k in range(count):
                dur, size, flags, cts = struct.unpack_from(">IIIi", data, trun.payload_start + 12 + 16 * k)
                samples.append(TrunSample(dur, size, flags, cts, pos))
                pos += size
            expected_offset = pos
            trafs.append(Traf(track_id, decode_time, samples))
        assert expected_offset == mdat.end, "the mdat holds exactly the runs' samples"
        fragments.append(Fragment(sequence, trafs, b.start))
    return fragments


# -- real media -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Media:
    video: VideoConfig | None
    audio: AudioConfig | None
    units: list[AccessUnit]
    frame_rate: float

    def only(self, kind: TrackKind) -> list[AccessUnit]:
        return [u for u in self.units if u.kind is kind]


def media_from_file(path: Path, *, t0: float = 1_700_000_000.0) -> Media:
    """Demux FLV (H.264) or Matroska (H.265, no B-frames) with PyAV into our units: both
    clocks are milliseconds and both carry length-prefixed NAL units with an avcC/hvcC record."""
    with av.open(str(path)) as container:
        vs = container.streams.video[0] if container.streams.video else None
        as_ = container.streams.audio[0] if container.streams.audio else None
        video = audio = None
        rate = 30.0
        if vs is not None:
            record = bytes(vs.codec_context.extradata or b"")
            ctx = vs.codec_context
            if ctx.name == "hevc":
                codec_string = f"hvc1.{record[1] & 0x1F}.6.L{record[12]}.B0"
                video = VideoConfig("h265", codec_string, ctx.width, ctx.height, record,
                                    nal_length_size=(record[21] & 3) + 1)  # fmt: skip
            else:
                codec_string = f"avc1.{record[1]:02x}{record[2]:02x}{record[3]:02x}"
                video = VideoConfig("h264", codec_string, ctx.width, ctx.height, record,
                                    nal_length_size=(record[4] & 3) + 1)  # fmt: skip
            rate = float(vs.average_rate or vs.guessed_rate or 30)
        if as_ is not None:
            asc = bytes(as_.codec_context.extradata or b"")
            audio = AudioConfig(
                "aac", f"mp4a.40.{asc[0] >> 3}", as_.codec_context.sample_rate,
                as_.codec_context.channels, asc[0] >> 3, asc,
            )  # fmt: skip
        units = []
        for p in container.demux():
            if p.size == 0 or p.pts is None:
                continue
            assert float(p.time_base) == 0.001
            dts = p.dts if p.dts is not None else p.pts  # Matroska without B-frames: dts = pts
            kind = TrackKind.VIDEO if p.stream.type == "video" else TrackKind.AUDIO
            units.append(
                AccessUnit(kind, int(dts), int(p.pts), bytes(p), bool(p.is_keyframe),
                           t0 + dts / 1000 + 0.25, t0 + dts / 1000)
            )  # fmt: skip
    return Media(video, audio, units, rate)


CLIPS: dict[str, tuple[str, ...]] = {
    # 30 fps, B-frames (composition offsets), 2 s GOP, AAC 48 kHz mono
    "30fps_bframes": (
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
        "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000", "-t", "5",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "60", "-bf", "2", "-c:a", "aac",
    ),
    # 25 fps, no B-frames, 1 s GOP plus scene-cut keyframes off, AAC 44.1 kHz stereo
    "25fps_baseline_44k": (
        "-f", "lavfi", "-i", "testsrc2=size=256x144:rate=25",
        "-f", "lavfi", "-i", "sine=f=440:sample_rate=44100", "-t", "4",
        "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "baseline", "-g", "25",
        "-sc_threshold", "0", "-c:a", "aac", "-ac", "2",
    ),
    # 60 fps with an irregular GOP (keyint 45: keyframes off the 2 s grid)
    "60fps_gop45": (
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=60",
        "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000", "-t", "4",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "45", "-bf", "3", "-c:a", "aac",
    ),
    # H.265 (hvc1 + hvcC), in Matroska because Debian's ffmpeg 5.1 cannot put HEVC in FLV
    "hevc_30fps.mkv": (
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30",
        "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000", "-t", "3",
        "-c:v", "libx265", "-x265-params", "log-level=error:keyint=30:bframes=0", "-c:a", "aac",
    ),
}  # fmt: skip


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Media]:
    made: dict[str, Media] = {}
    folder = tmp_path_factory.mktemp("package-media")

    def get(name: str) -> Media:
        if name not in made:
            ffmpeg = shutil.which("ffmpeg")
            if ffmpeg is None:
                pytest.fail("Debian's ffmpeg CLI is required for the packager tests")
            out = folder / (name if name.endswith(".mkv") else f"{name}.flv")
            fmt = "matroska" if name.endswith(".mkv") else "flv"
            subprocess.run(
                [ffmpeg, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *CLIPS[name], "-f", fmt,
                 str(out)],
                check=True, timeout=120,
            )  # fmt: skip
            made[name] = media_from_file(out)
        return made[name]

    return get


class BoxReader:
    """The independent box reader, handed to tests as the ``boxes`` fixture."""

    walk = staticmethod(walk)
    read_fragments = staticmethod(read_fragments)


@pytest.fixture(scope="session")
def boxes() -> type[BoxReader]:
    return BoxReader

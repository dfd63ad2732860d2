"""A media file as the transcoder's input: the same records ingest produces, read with PyAV.

Used by file-mode transcoding (VOD upload, the throughput benchmark) and by tests that need
real H.264. MP4/MOV/FLV/MKV demuxers hand H.264 out in AVCC form with the avcC record as
extradata, which is exactly what ``VideoConfig``/``AccessUnit`` carry.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av

from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig


@dataclass(frozen=True, slots=True)
class FileSource:
    video: VideoConfig
    audio: AudioConfig | None
    fps: float
    path: Path


def video_config_from_record(codec: str, record: bytes, width: int, height: int) -> VideoConfig:
    """VideoConfig around an avcC record (ISO/IEC 14496-15 5.3.3.1) or an hvcC for H.265."""
    if codec == "h264":
        if len(record) < 7 or record[0] != 1:
            raise ValueError("not an AVCDecoderConfigurationRecord (avcC)")
        profile, compat, level = record[1], record[2], record[3]
        return VideoConfig(
            "h264",
            f"avc1.{profile:02x}{compat:02x}{level:02x}",
            width,
            height,
            record,
            nal_length_size=(record[4] & 3) + 1,
            profile_idc=profile,
            level_idc=level,
        )
    if codec == "h265":
        if len(record) < 23 or record[0] != 1:
            raise ValueError("not an HEVCDecoderConfigurationRecord (hvcC)")
        return VideoConfig(
            "h265",
            f"hvc1.{record[1] & 0x1F}.4.L{record[12]}.B0",
            width,
            height,
            record,
            nal_length_size=(record[21] & 3) + 1,
            profile_idc=record[1] & 0x1F,
            level_idc=record[12],
        )
    raise ValueError(f"unsupported video codec {codec!r}")


def audio_config_from_asc(record: bytes, sample_rate: int, channels: int) -> AudioConfig:
    """AudioConfig around an AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1)."""
    if len(record) < 2:
        raise ValueError("AudioSpecificConfig too short")
    object_type = record[0] >> 3
    return AudioConfig("aac", f"mp4a.40.{object_type}", sample_rate, channels, object_type, bytes(record))


def open_file(path: str | Path) -> FileSource:
    """Read the stream headers of ``path``."""
    with av.open(str(path)) as container:
        vstream = container.streams.video[0]
        ctx = vstream.codec_context
        codec = {"h264": "h264", "hevc": "h265"}.get(ctx.name)
        if codec is None or not ctx.extradata:
            raise ValueError(f"{path}: video must be H.264 or H.265 in AVCC/HVCC form")
        video = video_config_from_record(codec, bytes(ctx.extradata), ctx.width, ctx.height)
        rate = vstream.average_rate or vstream.guessed_rate or 30
        audio = None
        if container.streams.audio:
            actx = container.streams.audio[0].codec_context
            if actx.name == "aac" and actx.extradata:
                audio = audio_config_from_asc(bytes(actx.extradata), actx.sample_rate, actx.channels)
        return FileSource(video, audio, float(rate), Path(path))


def read_units(path: str | Path, *, with_audio: bool = True) -> Iterator[AccessUnit]:
    """Every access unit of ``path`` in file order, timestamps in milliseconds."""
    with av.open(str(path)) as container:
        streams: list[av.stream.Stream] = [container.streams.video[0]]
        if with_audio and container.streams.audio:
            streams.append(container.streams.audio[0])
        for packet in container.demux(streams):
            if packet.size == 0 or packet.pts is None or packet.time_base is None:
                continue
            tb = packet.time_base
            pts = round(packet.pts * tb * 1000)
            dts = round(packet.dts * tb * 1000) if packet.dts is not None else pts
            kind = TrackKind.VIDEO if packet.stream.type == "video" else TrackKind.AUDIO
            now = time.time()
            yield AccessUnit(kind, dts, pts, bytes(packet), bool(packet.is_keyframe), now, now)

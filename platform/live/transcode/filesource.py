"""A media file as the transcoder's input: the same records ingest produces, read with PyAV.

Used by file-mode transcoding (VOD upload, the throughput benchmark) and by tests that need
real H.264. MP4/MOV/FLV/MKV demuxers hand H.264 out in AVCC form with the avcC record as
extradata, which is exactly what ``VideoConfig``/``AccessUnit`` carry; the records are read
with the same ``live.media`` parsers ingest uses.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av

from live.media import aac, avc, hevc
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig


@dataclass(frozen=True, slots=True)
class FileSource:
    video: VideoConfig
    audio: AudioConfig | None
    fps: float
    path: Path


def open_file(path: str | Path) -> FileSource:
    """Read the stream headers of ``path``."""
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path}: no video stream")
        vstream = container.streams.video[0]
        ctx = vstream.codec_context
        codec = {"h264": "h264", "hevc": "h265"}.get(ctx.name)
        if codec is None or not ctx.extradata:
            raise ValueError(f"{path}: video must be H.264 or H.265 in AVCC/HVCC form")
        record = bytes(ctx.extradata)
        if codec == "h264":
            video = avc.video_config_from_record(record)
        else:
            video = hevc.video_config_from_record(record)
        rate = vstream.average_rate or vstream.guessed_rate or 30
        audio = None
        if container.streams.audio:
            actx = container.streams.audio[0].codec_context
            if actx.name == "aac" and actx.extradata:
                audio = aac.audio_config_from_asc(bytes(actx.extradata))
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

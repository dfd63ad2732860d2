"""Our FLV demux of ffmpeg-made files agrees with PyAV's (FFmpeg's own demuxer) on every unit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest
from live.media import avc, flv
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig

pytestmark = pytest.mark.ffmpeg


def _demux(path: Path) -> tuple[list[VideoConfig | AudioConfig | AccessUnit], flv.FlvTagDemuxer]:
    demuxer = flv.FlvTagDemuxer()
    events: list[VideoConfig | AudioConfig | AccessUnit] = []
    with path.open("rb") as f:
        for item in flv.iter_flv(iter(lambda: f.read(4096), b"")):
            if isinstance(item, flv.FlvTag):
                events += demuxer.feed(item.tag_type, item.timestamp_ms, item.body, 1234.5)
    return events, demuxer


def _pyav(path: Path) -> dict[str, object]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = container.streams.audio[0]
        packets: dict[str, list[tuple[int | None, int | None, bool, bytes]]] = {
            "video": [],
            "audio": [],
        }
        for packet in container.demux():
            if packet.size == 0:
                continue
            assert packet.time_base == 1 / 1000 or float(packet.time_base) == 0.001
            packets[packet.stream.type].append(
                (packet.dts, packet.pts, packet.is_keyframe, bytes(packet))
            )
        return {
            "width": video.codec_context.width,
            "height": video.codec_context.height,
            "video_extradata": bytes(video.codec_context.extradata or b""),
            "sample_rate": audio.codec_context.sample_rate,
            "channels": audio.codec_context.channels,
            "audio_extradata": bytes(audio.codec_context.extradata or b""),
            "video": packets["video"],
            "audio": packets["audio"],
        }


def test_flv_demux_matches_pyav_for_every_unit(
    clip: Any, make_clip: Callable[[str], Path]
) -> None:
    path = make_clip(clip.name)
    events, demuxer = _demux(path)
    ref = _pyav(path)

    video_configs = [e for e in events if isinstance(e, VideoConfig)]
    audio_configs = [e for e in events if isinstance(e, AudioConfig)]
    assert len(video_configs) == 1 and len(audio_configs) == 1
    vc, ac = video_configs[0], audio_configs[0]
    assert (vc.width, vc.height) == (clip.width, clip.height) == (ref["width"], ref["height"])
    assert vc.record == ref["video_extradata"]
    assert (ac.sample_rate, ac.channels) == (clip.sample_rate, clip.channels)
    assert (ac.sample_rate, ac.channels) == (ref["sample_rate"], ref["channels"])
    assert ac.record == ref["audio_extradata"]
    assert ac.codec_string == "mp4a.40.2"
    record = avc.parse_avc_record(vc.record)
    # Our record builder writes what FFmpeg writes for the same parameter sets.
    assert avc.build_avc_record(vc.sps, vc.pps, vc.nal_length_size) == vc.record
    assert vc.codec_string == f"avc1.{vc.record[1]:02x}{vc.record[2]:02x}{vc.record[3]:02x}"
    assert record.profile_idc == vc.profile_idc == avc.parse_sps(vc.sps[0]).profile_idc

    video = [e for e in events if isinstance(e, AccessUnit) and e.kind is TrackKind.VIDEO]
    audio = [e for e in events if isinstance(e, AccessUnit) and e.kind is TrackKind.AUDIO]
    assert [(u.dts_ms, u.pts_ms, u.keyframe, u.data) for u in video] == ref["video"]
    assert [(u.dts_ms, u.pts_ms, True, u.data) for u in audio] == ref["audio"]
    assert all(u.ingest_wallclock == 1234.5 for u in video + audio)
    assert not demuxer.dropped.get(flv.DropReason.NO_VIDEO_CONFIG)
    # Keyframe flags agree with the bitstream: exactly the units holding an IDR slice.
    assert [u.keyframe for u in video] == [
        avc.contains_idr(u.data, vc.nal_length_size) for u in video
    ]


def test_b_frames_give_nonzero_composition_offsets(flv_360p: Path) -> None:
    events, _ = _demux(flv_360p)
    video = [e for e in events if isinstance(e, AccessUnit) and e.kind is TrackKind.VIDEO]
    assert len(video) == 90
    assert any(u.pts_ms != u.dts_ms for u in video)
    assert [u.dts_ms for u in video] == sorted(u.dts_ms for u in video)
    assert [i for i, u in enumerate(video) if u.keyframe] == [0, 60]


def test_interlaced_sps_codes_field_pairs_and_reports_frame_height(
    make_clip: Callable[[str], Path],
) -> None:
    events, _ = _demux(make_clip("interlaced_1080i"))
    config = next(e for e in events if isinstance(e, VideoConfig))
    sps = avc.parse_sps(config.sps[0])
    assert not sps.frame_mbs_only
    assert (sps.width, sps.height) == (1920, 1080)
    assert sps.crop == (0, 0, 0, 2)  # 1088 coded lines; a crop unit is 2 lines x 2 fields


def test_high444_sps_has_chroma_format_3(make_clip: Callable[[str], Path]) -> None:
    events, _ = _demux(make_clip("high444_cif"))
    config = next(e for e in events if isinstance(e, VideoConfig))
    assert config.profile_idc == 244
    assert avc.parse_sps(config.sps[0]).chroma_format_idc == 3
    record = avc.parse_avc_record(config.record)
    assert (record.chroma_format_idc, record.bit_depth_luma) == (3, 8)

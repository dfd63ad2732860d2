"""Decode-once/encode-many on real H.264, checked by decoding every rung with PyAV."""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import av
import pytest
from av.audio.codeccontext import AudioCodecContext
from av.codec.context import CodecContext
from av.video.codeccontext import VideoCodecContext
from live.media.avc import contains_idr
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig
from live.transcode.encoders import select_encoder
from live.transcode.filesource import open_file, read_units
from live.transcode.guard import GuardSettings
from live.transcode.ladder import LadderSettings, RungSpec, SourceInfo, build_ladder
from live.transcode.pipeline import (
    RenditionConfig,
    RenditionDropped,
    RenditionUnit,
    TranscodeEvent,
    TranscodePipeline,
    TranscodeSettings,
)

pytestmark = pytest.mark.ffmpeg


def _run(
    path: Path,
    *,
    ladder_settings: LadderSettings | None = None,
    settings: TranscodeSettings | None = None,
    stale_from: int | None = None,
    stale_count: int = 0,
) -> tuple[TranscodePipeline, list[AccessUnit], list[TranscodeEvent]]:
    source = open_file(path)
    info = SourceInfo(source.video.width, source.video.height, source.fps, source.video.codec, source.audio)
    pipeline = TranscodePipeline(
        source.video,
        build_ladder(info, ladder_settings),
        select_encoder((ladder_settings or LadderSettings()).video_codec),
        settings or TranscodeSettings(realtime=False),
        audio=source.audio,
    )
    units = list(read_units(path))
    events: list[TranscodeEvent] = list(pipeline.start())
    video_index = 0
    for unit in units:
        if unit.kind is TrackKind.AUDIO:
            events += pipeline.push_audio(unit)
            continue
        arrival = None
        if stale_from is not None and stale_from <= video_index < stale_from + stale_count:
            arrival = time.monotonic() - 60.0  # arrived a minute ago: far past max_lag_s
        events += pipeline.push_video(unit, arrival=arrival)
        video_index += 1
    events += pipeline.flush()
    return pipeline, units, events


def _by_rendition(events: list[TranscodeEvent]) -> dict[str, list[AccessUnit]]:
    out: dict[str, list[AccessUnit]] = defaultdict(list)
    for event in events:
        if isinstance(event, RenditionUnit):
            out[event.rendition].append(event.unit)
    return out


def _configs(events: list[TranscodeEvent]) -> dict[str, VideoConfig | AudioConfig]:
    return {e.rendition: e.config for e in events if isinstance(e, RenditionConfig)}


def _decode_video(config: VideoConfig, units: list[AccessUnit]) -> list[av.VideoFrame]:
    """Decode with FFmpeg's H.264 decoder, failing on any decode error."""
    ctx = CodecContext.create("h264", "r")
    assert isinstance(ctx, VideoCodecContext)
    ctx.extradata = config.record
    ctx.options = {"err_detect": "explode"}
    frames: list[av.VideoFrame] = []
    for unit in units:
        packet = av.Packet(unit.data)
        packet.pts = packet.dts = unit.pts_ms
        packet.time_base = Fraction(1, 1000)
        frames += ctx.decode(packet)
    frames += ctx.decode(None)
    return frames


def _source_video(units: list[AccessUnit]) -> list[AccessUnit]:
    return [u for u in units if u.kind is TrackKind.VIDEO]


def test_every_rung_decodes_with_the_source_frames_timestamps_and_ladder_sizes(
    source_720p30: Path,
) -> None:
    pipeline, units, events = _run(source_720p30)
    source_pts = sorted(u.pts_ms for u in _source_video(units))
    outputs, configs = _by_rendition(events), _configs(events)
    assert len(source_pts) == 90
    assert set(outputs) == {r.name for r in pipeline.ladder.video}
    for rung in pipeline.ladder.encoded:
        config = configs[rung.name]
        assert isinstance(config, VideoConfig)
        assert (config.width, config.height) == (rung.width, rung.height)
        assert config.codec_string.startswith("avc1.")
        rung_units = outputs[rung.name]
        assert [u.pts_ms for u in rung_units] == source_pts
        assert all(u.dts_ms == u.pts_ms for u in rung_units), "no B-frames: DTS = PTS"
        frames = _decode_video(config, rung_units)
        assert len(frames) == len(source_pts)
        assert {(f.width, f.height) for f in frames} == {(rung.width, rung.height)}
        assert [f.pts for f in frames] == source_pts
    metrics = pipeline.metrics()
    assert metrics.frames_decoded == 90 and metrics.decode_errors == 0
    assert dict(metrics.frames_encoded) == {r.name: 90 for r in pipeline.ladder.encoded}


def test_outputs_carry_the_source_capture_and_ingest_wallclocks(source_720p30: Path) -> None:
    _, units, events = _run(source_720p30)
    by_pts = {u.pts_ms: u for u in _source_video(units)}
    for name, rung_units in _by_rendition(events).items():
        for unit in rung_units:
            source = by_pts[unit.pts_ms]
            assert unit.capture_wallclock == source.capture_wallclock, name
            assert unit.ingest_wallclock == source.ingest_wallclock, name


def test_idrs_sit_at_identical_pts_on_every_rung_at_each_segment_boundary(
    source_720p30: Path,
) -> None:
    pipeline, units, events = _run(source_720p30)
    outputs = _by_rendition(events)
    source_pts = sorted(u.pts_ms for u in _source_video(units))
    expected = {next(p for p in source_pts if p >= b) for b in (0, 2000)}
    for rung in pipeline.ladder.encoded:
        keyframes = {u.pts_ms for u in outputs[rung.name] if u.keyframe}
        assert keyframes == expected, rung.name
        for unit in outputs[rung.name]:
            assert contains_idr(unit.data) == unit.keyframe


def test_reduced_frame_rate_rungs_keep_every_boundary_frame(source_360p60: Path) -> None:
    ladder = LadderSettings(rungs=(RungSpec("360p60", 360, 60.0, 900), RungSpec("180p30", 180, 30.0, 300)))
    pipeline, units, events = _run(source_360p60, ladder_settings=ladder)
    outputs, configs = _by_rendition(events), _configs(events)
    source_pts = sorted(u.pts_ms for u in _source_video(units))
    full, half = outputs["360p60"], outputs["180p30"]
    assert [u.pts_ms for u in full] == source_pts
    assert [u.pts_ms for u in half] == source_pts[::2]
    assert {u.pts_ms for u in full if u.keyframe} == {u.pts_ms for u in half if u.keyframe}
    assert {u.pts_ms for u in half if u.keyframe} == {0, 2000} & set(source_pts) | {0}
    half_config = configs["180p30"]
    assert isinstance(half_config, VideoConfig)
    assert len(_decode_video(half_config, half)) == len(source_pts) // 2
    assert pipeline.ladder.rung("180p30").fps == 30.0


def test_passthrough_rung_forwards_the_source_units_unchanged(source_360p30_av: Path) -> None:
    pipeline, units, events = _run(source_360p30_av)
    assert pipeline.ladder.passthrough is not None
    assert _by_rendition(events)["source"] == _source_video(units)
    assert _configs(events)["source"] == pipeline.source


def test_aac_lc_audio_passes_through_untouched(source_360p30_av: Path) -> None:
    pipeline, units, events = _run(source_360p30_av)
    audio_in = [u for u in units if u.kind is TrackKind.AUDIO]
    assert audio_in and _by_rendition(events)["audio"] == audio_in
    assert pipeline.ladder.audio is not None and not pipeline.ladder.audio.transcode


def test_non_lc_aac_is_transcoded_to_aac_lc_that_decodes(source_aac_main: Path) -> None:
    source = open_file(source_aac_main)
    assert source.audio is not None and source.audio.object_type == 1
    pipeline, units, events = _run(source_aac_main)
    config = _configs(events)["audio"]
    assert isinstance(config, AudioConfig)
    assert config.object_type == 2 and config.record[0] >> 3 == 2
    audio_out = _by_rendition(events)["audio"]
    decoder = CodecContext.create("aac", "r")
    assert isinstance(decoder, AudioCodecContext)
    decoder.extradata = config.record
    samples = 0
    for unit in audio_out:
        for frame in decoder.decode(av.Packet(unit.data)):
            samples += frame.samples
    # 2 s of 44.1 kHz in, about 2 s out (encoder priming and padding are a few frames)
    assert abs(samples - 2 * 44100) <= 4 * 1024
    pts = [u.pts_ms for u in audio_out]
    assert pts == sorted(pts) and pts[-1] - pts[0] >= 1900


def test_late_frames_are_dropped_not_queued_and_boundaries_stay_aligned(
    source_720p30: Path,
) -> None:
    # stale frames arrived 60 s ago; a 30 s limit keeps a slow moment on a busy machine from
    # dropping any other frame
    guard = GuardSettings(window_s=1000.0, max_lag_s=30.0)
    settings = TranscodeSettings(realtime=True, guard=guard)
    pipeline, units, events = _run(source_720p30, settings=settings, stale_from=20, stale_count=10)
    metrics = pipeline.metrics()
    # thinned, not dropped in a burst: 3 skipped, 1 encoded (0.1 s apart at most), 3, 1, 2
    assert metrics.frames_dropped_late == 8
    outputs = _by_rendition(events)
    assert len(outputs["source"]) == 90, "passthrough costs nothing and is never dropped"
    keyframe_sets = {
        frozenset(u.pts_ms for u in outputs[r.name] if u.keyframe) for r in pipeline.ladder.encoded
    }
    assert len(keyframe_sets) == 1
    for rung in pipeline.ladder.encoded:
        assert len(outputs[rung.name]) == 82
        config = _configs(events)[rung.name]
        assert isinstance(config, VideoConfig)
        assert len(_decode_video(config, outputs[rung.name])) == 82
        # no hole a player would stall at: the longest step is 4 frames, under a 0.2 s part
        pts = [u.pts_ms for u in outputs[rung.name]]
        assert max(b - a for a, b in itertools.pairwise(pts)) <= 4 * 34


def test_per_frame_delay_percentiles_are_measured_for_every_frame(source_720p30: Path) -> None:
    guard = GuardSettings(window_s=1000.0, max_lag_s=1000.0)
    settings = TranscodeSettings(realtime=True, guard=guard)
    pipeline, _, _ = _run(source_720p30, settings=settings)
    metrics = pipeline.metrics()
    assert metrics.delay_samples == 90
    assert metrics.delay_p50_ms is not None and metrics.delay_p95_ms is not None
    assert metrics.delay_p99_ms is not None
    assert 0 < metrics.delay_p50_ms <= metrics.delay_p95_ms <= metrics.delay_p99_ms


def test_sustained_overload_degrades_inside_the_ladder_before_stopping_a_rung(
    source_360p30_av: Path,
) -> None:
    # An overload ratio of 1e-6 makes any real encode count as overload, so the guard must act
    # after every 0.5 s window: a faster preset first (taken at the next segment's IDR), then
    # the top rung's frame rate, then every rung's; a rung stops only when nothing else is left.
    guard = GuardSettings(window_s=0.5, overload_ratio=1e-6, max_lag_s=1000.0)
    pipeline, _, events = _run(source_360p30_av, settings=TranscodeSettings(guard=guard))
    metrics = pipeline.metrics()
    steps = [record.step for record in metrics.shed]
    assert steps[:2] == ["faster_preset", "halve_top_fps"], steps
    assert "stop_top_rung" not in steps[:2]
    assert metrics.preset in ("superfast", "ultrafast")  # switched at the 2 s boundary
    assert min(fps for _, fps in metrics.rung_fps) >= 10  # never below 10 fps (no holes)
    assert dict(metrics.rung_fps).get("360p30", 15) <= 15
    outputs = _by_rendition(events)
    configs = _configs(events)
    for rung in pipeline.ladder.encoded:  # the new encoders' frames decode with the first SPS/PPS
        config = configs[rung.name]
        assert isinstance(config, VideoConfig)
        assert len(_decode_video(config, outputs[rung.name])) == len(outputs[rung.name])
    assert len(outputs["360p30"]) < 90, "a halved frame rate encodes fewer frames"
    stopped = [e.rendition for e in events if isinstance(e, RenditionDropped)]
    assert stopped == (["360p30"] if "stop_top_rung" in steps else [])
    assert "160p30" in metrics.active_rungs and "source" in metrics.active_rungs


def _decode_hevc(config: VideoConfig, units: list[AccessUnit]) -> list[av.VideoFrame]:
    ctx = CodecContext.create("hevc", "r")
    assert isinstance(ctx, VideoCodecContext)
    ctx.extradata = config.record
    ctx.options = {"err_detect": "explode"}
    frames: list[av.VideoFrame] = []
    for unit in units:
        packet = av.Packet(unit.data)
        packet.pts = packet.dts = unit.pts_ms
        frames += ctx.decode(packet)
    return frames + ctx.decode(None)


def test_h265_ladder_yields_hvcc_configs_and_rungs_that_decode_with_aligned_idrs(
    source_360p30_av: Path,
) -> None:
    ladder = LadderSettings(
        video_codec="h265",
        rungs=(RungSpec("360p", 360, 30.0, 500), RungSpec("180p", 180, 30.0, 200)),
    )
    pipeline, units, events = _run(source_360p30_av, ladder_settings=ladder)
    assert pipeline.encoder_choice.codec == "h265"
    source_pts = sorted(u.pts_ms for u in _source_video(units))
    outputs, configs = _by_rendition(events), _configs(events)
    keyframe_sets = set()
    for rung in pipeline.ladder.encoded:
        config = configs[rung.name]
        assert isinstance(config, VideoConfig)
        assert config.codec == "h265" and config.codec_string.startswith("hvc1.1.")
        assert config.record[0] == 1 and config.record[22] == 3  # three parameter-set arrays
        frames = _decode_hevc(config, outputs[rung.name])
        assert [f.pts for f in frames] == source_pts
        assert {(f.width, f.height) for f in frames} == {(rung.width, rung.height)}
        keyframe_sets.add(frozenset(u.pts_ms for u in outputs[rung.name] if u.keyframe))
    assert keyframe_sets == {frozenset({0, 2000})}


def test_corrupt_access_units_are_counted_and_the_stream_goes_on(source_aac_main: Path) -> None:
    source = open_file(source_aac_main)
    assert source.audio is not None
    info = SourceInfo(source.video.width, source.video.height, source.fps, source.video.codec, source.audio)
    pipeline = TranscodePipeline(
        source.video,
        build_ladder(info),
        select_encoder(),
        TranscodeSettings(realtime=False),
        audio=source.audio,
    )
    pipeline.start()
    units = list(read_units(source_aac_main))
    garbage = b"\x00\x00\x00\x05\x41\xff\xff\xff\xff"  # a P-slice NAL of nonsense
    events: list[TranscodeEvent] = []
    for index, unit in enumerate(units):
        if index == 20:
            events += pipeline.push_video(dataclasses.replace(unit, data=garbage, pts_ms=-1))
            events += pipeline.push_audio(dataclasses.replace(unit, kind=TrackKind.AUDIO, data=b"\xff" * 7))
        if unit.kind is TrackKind.VIDEO:
            events += pipeline.push_video(unit)
        else:
            events += pipeline.push_audio(unit)
    events += pipeline.flush()
    metrics = pipeline.metrics()
    assert metrics.decode_errors == 2  # one video, one audio unit: counted, not fatal
    video_in = [u for u in units if u.kind is TrackKind.VIDEO]
    assert metrics.frames_decoded == len(video_in)
    outputs = _by_rendition(events)
    assert [u.pts_ms for u in outputs["160p30"]] == sorted(u.pts_ms for u in video_in)
    assert len(outputs["audio"]) >= 80  # 2 s of 44.1 kHz AAC-LC is about 86 frames

"""Ladder policy invariants (never upscale, aspect, even sizes, fps caps, audio, passthrough)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.media.units import AudioConfig
from live.transcode.ladder import (
    DEFAULT_RUNGS,
    LadderError,
    LadderSettings,
    RungSpec,
    SourceInfo,
    build_ladder,
    fps_divisor,
)

FPS = st.sampled_from([10.0, 15.0, 23.976, 24.0, 25.0, 29.97, 30.0, 48.0, 50.0, 59.94, 60.0, 120.0])
SIZES = st.tuples(st.integers(2, 4096), st.integers(2, 4096))
CODECS = st.sampled_from(["h264", "h265"])


def _aac(object_type: int) -> AudioConfig:
    return AudioConfig("aac", f"mp4a.40.{object_type}", 48000, 2, object_type, b"\x11\x90")


@given(size=SIZES, fps=FPS, codec=CODECS)
@settings(max_examples=200)
def test_ladder_never_upscales_and_keeps_even_sizes_and_aspect(
    size: tuple[int, int], fps: float, codec: str
) -> None:
    width, height = size
    ladder = build_ladder(SourceInfo(width, height, fps, codec))
    for rung in ladder.encoded:
        assert rung.width <= width and rung.height <= height
        assert rung.width % 2 == 0 and rung.height % 2 == 0
        assert rung.width >= 2 and rung.height >= 2
        # the long side follows the source ratio to within rounding to an even number
        if width >= height:
            assert abs(rung.width - rung.height * width / height) <= 2
        else:
            assert abs(rung.height - rung.width * height / width) <= 2


@given(size=SIZES, fps=FPS, codec=CODECS)
@settings(max_examples=200)
def test_no_rung_exceeds_source_fps_or_its_cap(size: tuple[int, int], fps: float, codec: str) -> None:
    ladder = build_ladder(SourceInfo(size[0], size[1], fps, codec))
    caps = {f"{s.height}p": s.max_fps for s in DEFAULT_RUNGS}
    for rung in ladder.video:
        assert rung.fps <= fps + 1e-9
        assert rung.fps == pytest.approx(fps / rung.fps_divisor)
        if not rung.passthrough:
            prefix = rung.name.split("p")[0] + "p"
            if prefix in caps:
                assert rung.fps <= max(s.max_fps for s in DEFAULT_RUNGS if f"{s.height}p" == prefix) * 1.01


@given(size=SIZES, fps=FPS, codec=CODECS)
@settings(max_examples=200)
def test_rung_names_are_unique_and_rungs_are_largest_first(
    size: tuple[int, int], fps: float, codec: str
) -> None:
    ladder = build_ladder(SourceInfo(size[0], size[1], fps, codec))
    names = [r.name for r in ladder.video]
    assert len(names) == len(set(names))
    pixels = [r.pixels for r in ladder.encoded]
    assert pixels == sorted(pixels, reverse=True)
    assert ladder.video, "every source yields at least one rendition"


@given(short=st.integers(1080, 4096), fps=FPS)
@settings(max_examples=100)
def test_60fps_top_rung_only_for_sources_of_at_least_50fps(short: int, fps: float) -> None:
    ladder = build_ladder(SourceInfo(short * 16 // 9 // 2 * 2, short, fps))
    high_rate_1080 = [r for r in ladder.encoded if r.height == 1080 and r.fps > 30.5]
    assert bool(high_rate_1080) == (fps >= 50)


def test_720p30_source_gets_its_size_and_every_smaller_default_rung() -> None:
    ladder = build_ladder(SourceInfo(1280, 720, 30.0))
    assert [(r.name, r.width, r.height) for r in ladder.video] == [
        ("source", 1280, 720),
        ("720p30", 1280, 720),
        ("480p30", 854, 480),
        ("360p30", 640, 360),
        ("160p30", 284, 160),
    ]


def test_1080p60_source_gets_60_and_30fps_1080_rungs_and_halved_lower_rungs() -> None:
    ladder = build_ladder(SourceInfo(1920, 1080, 60.0))
    summary = [(r.name, r.fps_divisor) for r in ladder.encoded]
    assert summary == [
        ("1080p60", 1),
        ("1080p30", 2),
        ("720p30", 2),
        ("480p30", 2),
        ("360p30", 2),
        ("160p30", 2),
    ]


def test_portrait_source_scales_by_its_short_side() -> None:
    ladder = build_ladder(SourceInfo(720, 1280, 30.0))
    rung = ladder.rung("480p30")
    assert (rung.width, rung.height) == (480, 854)


def test_bitrates_come_from_the_configured_rungs() -> None:
    custom = LadderSettings(rungs=(RungSpec("hd", 720, 30.0, 3333), RungSpec("sd", 360, 30.0, 444)))
    ladder = build_ladder(SourceInfo(1280, 720, 30.0), custom)
    assert [(r.name, r.video_kbps) for r in ladder.encoded] == [("720p30", 3333), ("360p30", 444)]


def test_passthrough_rung_only_for_codecs_that_allow_it() -> None:
    assert build_ladder(SourceInfo(1280, 720, 30.0, "h264")).passthrough is not None
    assert build_ladder(SourceInfo(1280, 720, 30.0, "h265")).passthrough is None
    allow_hevc = LadderSettings(passthrough_codecs=frozenset({"h264", "h265"}))
    assert build_ladder(SourceInfo(1280, 720, 30.0, "h265"), allow_hevc).passthrough is not None


def test_tiny_source_without_passthrough_gets_one_rung_at_its_own_size() -> None:
    ladder = build_ladder(SourceInfo(121, 99, 30.0, "h265"))
    assert [(r.width, r.height) for r in ladder.video] == [(120, 98)]
    assert ladder.video[0].name == "98p30"


def test_aac_lc_audio_passes_through_and_other_aac_is_transcoded_to_lc() -> None:
    lc = build_ladder(SourceInfo(1280, 720, 30.0, audio=_aac(2))).audio
    assert lc is not None and not lc.transcode
    he = build_ladder(SourceInfo(1280, 720, 30.0, audio=_aac(5))).audio
    assert he is not None and he.transcode and he.object_type == 2 and he.bitrate_kbps == 128
    assert build_ladder(SourceInfo(1280, 720, 30.0)).audio is None


@pytest.mark.parametrize("source", [SourceInfo(0, 720, 30.0), SourceInfo(1280, 720, 0.0)])
def test_unusable_source_is_the_publishers_fault(source: SourceInfo) -> None:
    with pytest.raises(LadderError, match="source reports"):
        build_ladder(source)


@given(src=st.floats(1.0, 240.0), cap=st.floats(1.0, 120.0))
@settings(max_examples=200)
def test_fps_divisor_is_the_smallest_that_meets_the_cap(src: float, cap: float) -> None:
    n = fps_divisor(src, cap)
    assert n >= 1
    assert src / n <= cap * 1.0101
    if n > 1:
        assert src / (n - 1) > cap

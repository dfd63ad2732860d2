"""The segmenter with a publisher's own keyframes: cutting at them, and gaps instead of overruns.

A passthrough rendition is cut at the publisher's keyframes (``SegmentCut.KEYFRAMES``) with a
TARGETDURATION from the measured keyframe interval; a keyframe that comes later than that, or
a rung whose encoder stopped, leaves gap parts (RFC 8216bis 4.4.4.7) and never a segment over
TARGETDURATION, which the origin would refuse and the packager would answer by withdrawing an
advertised rendition.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st
from live.media.units import AccessUnit, TrackKind
from live.package.parts import Part
from live.package.segmenter import SegmentCut, Segmenter, SegmenterSettings, SegmenterState

from tests.package.test_segmenter import AUDIO, VIDEO, audio_units, interleave, video_units

FRAME_MS = 33
PART_S = 0.334


def keyframe_stream(gops: Sequence[int], frame_ms: int = FRAME_MS, t0: int = 0) -> list[AccessUnit]:
    """Frames in GOPs of the given lengths (each starting with a keyframe)."""
    keys = [i == 0 for n in gops for i in range(n)]
    return video_units([frame_ms] * len(keys), keys, [0] * len(keys), t0=t0)


def keyframe_settings(max_gop_s: float, segment_s: float = 2.0) -> tuple[SegmenterSettings, int]:
    target_duration = max(round(segment_s), math.ceil(max_gop_s - 1e-9))
    return (
        SegmenterSettings(PART_S, segment_s, cut=SegmentCut.KEYFRAMES, keyframe_interval_s=max_gop_s,
                          max_segment_s=target_duration + 0.499),
        target_duration,
    )


def cut(units: Sequence[AccessUnit], seg_settings: SegmenterSettings, *,
        audio: bool = False) -> tuple[Segmenter, list[Part]]:
    seg = Segmenter("source", seg_settings)
    seg.configure(VIDEO, AUDIO if audio else None, bandwidth=1_000_000, frame_rate=30.0)
    parts: list[Part] = []
    for unit in units:
        parts += seg.push(unit)
    return seg, parts + seg.flush()


def segments(parts: list[Part]) -> list[list[Part]]:
    return [list(group) for _, group in itertools.groupby(parts, key=lambda p: p.msn)]


def check_playlist_rules(parts: list[Part], target_duration: int) -> None:
    """What the origin enforces: numbering, parts within PART-TARGET, segments within
    TARGETDURATION once rounded, media segments starting independent, gaps without media."""
    msn, index = 0, 0
    for p in parts:
        assert (p.msn, p.index) == (msn, index)
        assert 0 < p.duration_s <= PART_S + 1e-9, p
        assert (p.data == b"") == p.gap
        if p.index == 0 and not p.gap:
            assert p.independent
        msn, index = (msn + 1, 0) if p.segment_end else (msn, index + 1)
    assert parts[-1].segment_end
    for seg in segments(parts):
        assert round(sum(p.duration_s for p in seg)) <= target_duration, seg
        assert all(p.gap for p in seg) or not seg[0].gap, "a segment is media or gap, never gap first"


@given(gops=st.lists(st.integers(1, 120), min_size=1, max_size=12))
@settings(max_examples=150, deadline=None)
def test_keyframe_cut_segments_start_at_the_sources_keyframes_within_target_duration(gops: list[int]) -> None:
    """Any GOP pattern the measurement saw (odd GOPs, a long first one): every segment starts at
    one of the publisher's keyframes and stays within TARGETDURATION; no frame is lost."""
    units = keyframe_stream(gops)
    seg_settings, target_duration = keyframe_settings(max(gops) * FRAME_MS / 1000)
    seg, parts = cut(units, seg_settings)
    check_playlist_rules(parts, target_duration)
    assert not any(p.gap for p in parts)
    keyframe_times = {u.dts_ms * 90 for u in units if u.keyframe}
    assert {p.decode_time for p in parts if p.index == 0} <= keyframe_times
    assert seg.stats.samples_out == len(units)


def test_a_gop_of_80_frames_at_30_fps_gives_segments_of_its_own_length() -> None:
    """``-g 80`` at 30 fps: keyframes every 2.67 s, off the 2 s grid the transcoder uses. Cut
    on the grid they overran TARGETDURATION=2 and the source rendition was withdrawn."""
    units = keyframe_stream([80] * 6)
    seg_settings, target_duration = keyframe_settings(80 * FRAME_MS / 1000)
    assert target_duration == 3
    _, parts = cut(units, seg_settings)
    check_playlist_rules(parts, target_duration)
    assert [p.decode_time // 90 for p in parts if p.index == 0] == [i * 80 * FRAME_MS for i in range(6)]


def test_frequent_keyframes_are_grouped_into_segments_of_the_segment_target() -> None:
    units = keyframe_stream([15] * 20)  # a keyframe every 0.5 s
    seg_settings, target_duration = keyframe_settings(15 * FRAME_MS / 1000)
    _, parts = cut(units, seg_settings)
    check_playlist_rules(parts, target_duration)
    lengths = [round(sum(p.duration_s for p in s), 3) for s in segments(parts)]
    gop_s = 15 * FRAME_MS / 1000  # the first keyframe at or past 2 s ends each segment
    assert all(2.0 - FRAME_MS / 2000 <= length < 2.0 + gop_s for length in lengths[:-1]), lengths


def test_a_keyframe_later_than_measured_leaves_a_gap_not_an_overlong_segment() -> None:
    """The publisher measured at 2.67 s GOPs then sends a 9 s one: the segment closes within
    TARGETDURATION, gap parts cover the rest of the GOP, and the next keyframe opens a media
    segment again; the playlist timeline stays continuous."""
    gops = [80, 80, 270, 80, 80]
    units = keyframe_stream(gops)
    seg_settings, target_duration = keyframe_settings(80 * FRAME_MS / 1000)
    seg, parts = cut(units, seg_settings)
    check_playlist_rules(parts, target_duration)
    gap = [p for p in parts if p.gap]
    assert gap and seg.stats.gap_parts == len(gap)
    long_gop_start = sum(gops[:2]) * FRAME_MS
    resumed = sum(gops[:3]) * FRAME_MS
    assert all(long_gop_start * 90 < p.decode_time < resumed * 90 for p in gap)
    after = next(p for p in parts if p.decode_time == resumed * 90)
    assert after.index == 0 and after.independent and not after.gap
    for a, b in itertools.pairwise(parts):  # no hole in the playlist's timeline
        assert a.decode_time + round(a.duration_s * 90000) == b.decode_time
    assert seg.state is SegmenterState.FINISHED
    assert seg.stats.dropped_before_keyframe > 0


def test_grid_cut_rung_whose_boundary_idr_came_late_gaps_instead_of_overrunning() -> None:
    """A transcoded rung whose grid IDR was lost (frames dropped under load): 3 s without a
    keyframe. It used to make a 3 s segment the origin refused, and the rung was retired."""
    keys = [i in (0, 90) for i in range(120)]
    units = video_units([FRAME_MS] * 120, keys, [0] * 120)
    seg_settings = SegmenterSettings(PART_S, 2.0, max_segment_s=2.499)
    seg, parts = cut(units, seg_settings)
    check_playlist_rules(parts, 2)
    assert any(p.gap for p in parts)
    assert next(p for p in parts if p.decode_time == 90 * FRAME_MS * 90).independent


@given(
    gops=st.lists(st.integers(1, 200), min_size=1, max_size=10),
    measured=st.integers(10, 90),
    with_audio=st.booleans(),
)
@settings(max_examples=150, deadline=None)
def test_any_gop_pattern_keeps_every_segment_within_target_duration(
    gops: list[int], measured: int, with_audio: bool
) -> None:
    units = keyframe_stream(gops)
    seg_settings, target_duration = keyframe_settings(measured * FRAME_MS / 1000)
    if with_audio:
        units = interleave(units, audio_units(len(units) * FRAME_MS * 48 // 1024))
    _, parts = cut(units, seg_settings, audio=with_audio)
    check_playlist_rules(parts, target_duration)


def test_a_stopped_rung_continues_as_gap_parts_on_the_segment_grid() -> None:
    """The real-time guard stops a rung for good: it stays in the playlists as gap segments
    (players switch away without an error) aligned with the other rungs' 2 s grid."""
    seg = Segmenter("720p30", SegmenterSettings(PART_S, 2.0, max_segment_s=2.499))
    seg.configure(VIDEO, None, bandwidth=1_000_000, frame_rate=30.0)
    units = keyframe_stream([60, 60, 60, 60])
    parts: list[Part] = []
    for unit in units[:75]:
        parts += seg.push(unit)
    parts += seg.begin_gap()
    assert seg.state is SegmenterState.GAP
    for unit in units[75:]:  # another rung's frames drive the clock
        parts += seg.extend_gap(unit)
    parts += seg.flush()
    check_playlist_rules(parts, 2)
    gap = [p for p in parts if p.gap]
    assert gap[0].decode_time == 75 * FRAME_MS * 90
    starts = [p.decode_time for p in parts if p.index == 0]
    assert 4000 * 90 in starts and 6000 * 90 in starts  # gap segments end on the grid
    for a, b in itertools.pairwise(parts):
        assert a.decode_time + round(a.duration_s * 90000) == b.decode_time
    assert parts[-1].decode_time + round(parts[-1].duration_s * 90000) >= units[-1].dts_ms * 90


def test_gap_parts_appear_while_the_gap_lasts_not_only_when_it_ends() -> None:
    """A player blocking on the next part must get one within the part target, or its
    request times out (503): gap parts are emitted as the clock passes them."""
    seg = Segmenter("source", keyframe_settings(2.0)[0])
    seg.configure(VIDEO, None, bandwidth=1_000_000, frame_rate=30.0)
    emitted_at: list[tuple[int, Part]] = []
    for unit in keyframe_stream([300]):
        emitted_at += [(unit.dts_ms, p) for p in seg.push(unit)]
    gap = [(t, p) for t, p in emitted_at if p.gap]
    assert len(gap) > 10
    for t, part in gap:
        end_ms = (part.decode_time / 90 + part.duration_s * 1000)
        assert 0 <= t - end_ms <= PART_S * 1000 + FRAME_MS


def test_audio_during_a_gap_is_dropped_and_never_piles_up() -> None:
    units = interleave(keyframe_stream([900]), audio_units(30 * 47))
    seg = Segmenter("source", keyframe_settings(2.0)[0])
    seg.configure(VIDEO, AUDIO, bandwidth=1_000_000, frame_rate=30.0)
    for unit in units:  # 30 s without a second keyframe: no "video track stalled" error
        seg.push(unit)
        assert len(seg._audio_track.queue) < 48 * 2
    parts = seg.flush()
    assert parts[-1].segment_end


def test_gap_parts_carry_the_media_clock() -> None:
    units = [AccessUnit(TrackKind.VIDEO, u.dts_ms, u.pts_ms, u.data, u.keyframe, 5000.0 + u.dts_ms / 1000)
             for u in keyframe_stream([200])]
    seg_settings, _ = keyframe_settings(2.0)
    _, parts = cut(units, seg_settings)
    for p in parts:
        assert abs(p.capture_wallclock - (5000.0 + p.decode_time / 90000)) < 0.01

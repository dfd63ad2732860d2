"""The segmenter: LL-HLS part/segment rules as properties, and real H.264/AAC checked by PyAV/ffprobe."""

from __future__ import annotations

import itertools
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig
from live.package import fmp4
from live.package.parts import InitSegment, Part
from live.package.segmenter import Segmenter, SegmenterError, SegmenterSettings, SegmenterState

VIDEO = VideoConfig("h264", "avc1.64001f", 640, 360, b"\x01\x64\x00\x1f\xff\xe1\x00\x00\x01\x00\x00")
AUDIO = AudioConfig("aac", "mp4a.40.2", 48000, 2, 2, b"\x11\x90")
AAC_MS = 1024 * 1000 / 48000


def run(
    units: Sequence[AccessUnit],
    *,
    video: VideoConfig | None = VIDEO,
    audio: AudioConfig | None = None,
    part_s: float = 0.333,
    segment_s: float = 2.0,
    styp: bool = False,
) -> tuple[Segmenter, InitSegment, list[Part]]:
    seg = Segmenter("r", SegmenterSettings(part_s, segment_s, styp))
    init = seg.configure(video, audio, bandwidth=2_000_000, frame_rate=30.0)
    parts: list[Part] = []
    for u in units:
        parts += seg.push(u)
    parts += seg.flush()
    return seg, init, parts


def check_part_rules(parts: list[Part], seg: Segmenter, max_sample_ticks: int | None = None) -> None:
    """RFC 8216bis 4.4.4.9 / Apple LL-HLS: numbering, independence, durations."""
    target = seg.part_target_ticks
    msn, index = 0, 0
    gap_segment = False
    for i, p in enumerate(parts):
        assert (p.msn, p.index) == (msn, index), f"part {i} numbered {p.msn}.{p.index}"
        ticks = round(p.duration_s * seg.timescale)
        if index == 0:  # a segment starts independent, or is missing time (EXT-X-GAP) throughout
            gap_segment = p.gap
            assert p.independent or p.gap, f"segment {msn} does not start with an independent part"
        elif gap_segment:
            assert p.gap, f"part {p.msn}.{p.index} has media in a gap segment"
        assert 0 < ticks <= target, f"part {p.msn}.{p.index} lasts {ticks} ticks, over {target}"
        if not p.segment_end and not p.gap and max_sample_ticks is not None and max_sample_ticks <= target:
            # greedy filling: a part closes early only when its next frame would not have fit
            assert ticks + max_sample_ticks > target, f"part {p.msn}.{p.index} closed at {ticks}/{target}"
            if max_sample_ticks * 100 <= target * 15:
                assert ticks * 100 >= target * 85, f"part {p.msn}.{p.index} is {ticks}/{target} ticks"
        if p.segment_end:
            msn, index = msn + 1, 0
        else:
            index += 1
    assert parts[-1].segment_end


# -- synthetic streams ------------------------------------------------------------------------


def video_units(
    durations: Sequence[int], keys: Sequence[bool], ctss: Sequence[int], t0: int = 0
) -> list[AccessUnit]:
    units, t = [], t0
    for i, (d, k, c) in enumerate(zip(durations, keys, ctss, strict=True)):
        units.append(AccessUnit(TrackKind.VIDEO, t, t + c, b"v%d" % i * (1 + i % 7), k, 1000.0 + t / 1000))
        t += d
    return units


def audio_units(n: int, t0: float = 0.0) -> list[AccessUnit]:
    return [
        AccessUnit(TrackKind.AUDIO, round(t0 + i * AAC_MS), round(t0 + i * AAC_MS), b"a%d" % i, True, 0.0)
        for i in range(n)
    ]


def interleave(*tracks: list[AccessUnit]) -> list[AccessUnit]:
    return sorted((u for t in tracks for u in t), key=lambda u: u.dts_ms)  # stable: ties keep track order


@st.composite
def video_streams(draw: st.DrawFn, max_ms: int = 50) -> tuple[list[int], list[bool], list[int]]:
    n = draw(st.integers(1, 150))
    durations = draw(st.lists(st.integers(1, max_ms), min_size=n, max_size=n))
    keys = [True, *draw(st.lists(st.booleans() | st.just(False), min_size=n - 1, max_size=n - 1))]
    ctss = draw(st.lists(st.integers(0, 200), min_size=n, max_size=n))
    return durations, keys, ctss


def samples_by_track(boxes: Any, parts: list[Part]) -> dict[int, list[tuple[int, Any, bytes]]]:
    """(decode time, trun sample, bytes) of every sample in the parts, per track."""
    out: dict[int, list[tuple[int, Any, bytes]]] = {}
    sequence: int | None = None
    for p in parts:
        if p.gap:  # missing time: no fragment (and no mfhd sequence number spent)
            assert p.data == b""
            continue
        data = p.data
        (frag,) = boxes.read_fragments(data)
        assert sequence is None or frag.sequence == sequence + 1, "mfhd sequence numbers must be consecutive"
        sequence = frag.sequence
        for traf in frag.trafs:
            t = traf.decode_time
            for s in traf.samples:
                out.setdefault(traf.track_id, []).append((t, s, data[s.offset : s.offset + s.size]))
                t += s.duration
    return out


@given(data=st.data(), part_s=st.sampled_from([0.2, 0.25, 0.333]), segment_s=st.sampled_from([1.0, 2.0]))
@settings(max_examples=120, deadline=None)
def test_video_parts_keep_duration_rules_and_lose_no_sample(
    data: st.DataObject, part_s: float, segment_s: float, boxes: Any
) -> None:
    """Frames up to 15 % of the part target: every non-final part must reach 85 % of it."""
    durations, keys, ctss = data.draw(video_streams(max_ms=int(part_s * 150)))
    assert max(durations) * 100 <= part_s * 1000 * 15
    units = video_units(durations, keys, ctss)
    seg, _, parts = run(units, part_s=part_s, segment_s=segment_s)
    check_part_rules(parts, seg, max(durations) * 90)
    samples = samples_by_track(boxes, parts)[1]
    assert [data for _, _, data in samples] == [u.data for u in units]
    # every DTS, PTS and sync flag is the input's, exactly, at 90 kHz
    assert [t for t, _, _ in samples] == [u.dts_ms * 90 for u in units]
    assert [s.cts for _, s, _ in samples] == [(u.pts_ms - u.dts_ms) * 90 for u in units]
    assert [s.flags == fmp4.SYNC_SAMPLE_FLAGS for _, s, _ in samples] == [u.keyframe for u in units]
    # tfdt continuity: each part starts where the previous one ended
    for a, b in itertools.pairwise(parts):
        assert a.decode_time + round(a.duration_s * 90000) == b.decode_time
    # segments cut on the absolute grid: each starts at the first keyframe at or past the grid
    # point after the previous start (within half a frame)
    starts = [p.decode_time for p in parts if p.index == 0]
    grid, half = round(segment_s * 90000), max(durations) * 45
    key_times = [u.dts_ms * 90 for u in units if u.keyframe]
    for a, b in itertools.pairwise(starts):
        assert b >= (a // grid + 1) * grid - half
        assert all(k < ((a + half) // grid + 1) * grid for k in key_times if a < k < b)
    st_ = seg.stats
    assert (st_.samples_in, st_.samples_out, st_.parts, st_.segments) == (
        len(units),
        len(units),
        len(parts),
        len(starts),
    )


@given(stream=video_streams(max_ms=3000), part_s=st.sampled_from([0.2, 0.333]))
@settings(max_examples=60, deadline=None)
def test_holes_longer_than_the_part_target_are_gaps_not_overlong_parts(
    stream: tuple[list[int], list[bool], list[int]], part_s: float, boxes: Any
) -> None:
    durations, keys, ctss = stream
    units = video_units(durations, keys, ctss)
    seg, _, parts = run(units, part_s=part_s)
    check_part_rules(parts, seg, max(durations) * 90)  # no part over the target, ever
    target = seg.part_target_ticks
    kept = [u for u in units[units.index(next(u for u in units if u.keyframe)) :]]
    holes = [(a, b) for a, b in itertools.pairwise(kept) if (b.dts_ms - a.dts_ms) * 90 > target]
    assert seg.stats.gaps == len(holes)
    samples = samples_by_track(boxes, parts)[1]
    assert [t for t, _, _ in samples] == [u.dts_ms * 90 for u in kept]  # the timeline is kept
    starts = {p.decode_time for p in parts if p.index == 0}
    gap_spans = [(p.decode_time, p.decode_time + round(p.duration_s * seg.timescale)) for p in parts if p.gap]
    for _before, after in holes:  # a part ends at every gap; a keyframe after one opens a segment
        assert any(p.decode_time == after.dts_ms * 90 for p in parts)
        if after.keyframe:
            assert after.dts_ms * 90 in starts
            # ... after gap parts that cover the hole without a break up to that keyframe
            assert any(end == after.dts_ms * 90 for _, end in gap_spans)
    assert all(a_end == b_start for (_, a_end), (b_start, _) in itertools.pairwise(gap_spans)
               if b_start <= a_end)  # gap parts never overlap


def test_a_worker_restart_gap_closes_the_segment_and_the_next_keyframe_opens_one() -> None:
    """Regression: a restarted transcoder resumes 1.6 s later at a keyframe; the frame before
    the hole used to get the whole hole as its duration (a 1.6 s part the origin refuses)."""
    before = video_units([33] * 20, [i == 0 for i in range(20)], [0] * 20)
    after = video_units([33] * 30, [i == 0 for i in range(30)], [0] * 30, t0=before[-1].dts_ms + 1633)
    seg, _, parts = run(before + after, part_s=0.334)
    assert max(p.duration_s for p in parts) <= 0.334
    assert seg.stats.gaps == 1
    resumed = [p for p in parts if p.decode_time == after[0].dts_ms * 90]
    assert len(resumed) == 1 and resumed[0].index == 0 and resumed[0].independent
    assert [p.segment_end for p in parts if p.msn == resumed[0].msn - 1][-1]


@given(
    stream=video_streams(max_ms=45),
    audio_offset=st.floats(0, 40),
    part_s=st.sampled_from([0.2, 0.333]),
)
@settings(max_examples=80, deadline=None)
def test_muxed_parts_carry_every_audio_frame_before_their_cut_exactly_once(
    stream: tuple[list[int], list[bool], list[int]], audio_offset: float, part_s: float, boxes: Any
) -> None:
    durations, keys, ctss = stream
    video = video_units(durations, keys, ctss)
    end = video[-1].dts_ms
    audio = [u for u in audio_units(int(end / AAC_MS) + 3, audio_offset) if u.dts_ms <= end + 50]
    units = interleave(video, audio)
    seg, init, parts = run(units, audio=AUDIO, part_s=part_s)
    assert init.codecs == "avc1.64001f,mp4a.40.2"
    check_part_rules(parts, seg, max(durations) * 90)
    tracks = samples_by_track(boxes, parts)
    assert [d for _, _, d in tracks[1]] == [u.data for u in video]
    assert [d for _, _, d in tracks.get(2, [])] == [u.data for u in audio]
    # audio decode times stay on the 1024 grid (no drift), within a millisecond of the input
    times = [t for t, _, _ in tracks.get(2, [])]
    assert all(b - a == 1024 for a, b in itertools.pairwise(times))
    assert all(abs(t / 48 - u.dts_ms) <= 1 for t, u in zip(times, audio, strict=True))
    # an audio frame sits in the part whose video cut follows it
    cuts = [p.decode_time // 90 for p in parts[1:]] + [10**9]
    for p, start, cut in zip(parts, [-1, *cuts], cuts, strict=False):
        (frag,) = boxes.read_fragments(p.data)
        for traf in frag.trafs[1:]:
            last = traf.decode_time + 1024 * (len(traf.samples) - 1)
            assert start - 1 <= traf.decode_time / 48 and last / 48 < cut + 1


@given(
    stream=video_streams(max_ms=45),
    lags=st.lists(st.integers(0, 400), min_size=1, max_size=50),
)
@settings(max_examples=60, deadline=None)
def test_loosely_interleaved_audio_lands_in_a_later_part_never_lost_or_reordered(
    stream: tuple[list[int], list[bool], list[int]], lags: list[int], boxes: Any
) -> None:
    """Publishers send audio up to a few hundred ms behind video; each track alone is in order."""
    durations, keys, ctss = stream
    video = video_units(durations, keys, ctss)
    audio = audio_units(int(video[-1].dts_ms / AAC_MS) + 1)
    arrival = sorted(
        [(u.dts_ms, 0, i, u) for i, u in enumerate(video)]
        + [(u.dts_ms + lags[i % len(lags)], 1, i, u) for i, u in enumerate(audio)],
        key=lambda x: (x[0], x[1], x[2]),
    )
    # a late frame cannot overtake the frame before it on the same track
    ordered: list[AccessUnit] = []
    last_audio = -1
    for _, kind, i, u in arrival:
        if kind == 1 and i <= last_audio:
            continue
        if kind == 1:
            ordered += audio[last_audio + 1 : i + 1]
            last_audio = i
        else:
            ordered.append(u)
    seg, _, parts = run(ordered, audio=AUDIO)
    check_part_rules(parts, seg, max(durations) * 90)
    tracks = samples_by_track(boxes, parts)
    assert [d for _, _, d in tracks[1]] == [u.data for u in video]
    assert [d for _, _, d in tracks.get(2, [])] == [u.data for u in audio]
    times = [t for t, _, _ in tracks.get(2, [])]
    assert all(b - a == 1024 for a, b in itertools.pairwise(times))


@given(n=st.integers(1, 400), t0=st.floats(0, 5000), part_s=st.sampled_from([0.2, 0.25, 0.333]))
@settings(max_examples=60, deadline=None)
def test_audio_only_segments_cut_on_the_absolute_segment_grid(
    n: int, t0: float, part_s: float, boxes: Any
) -> None:
    units = audio_units(n, t0)
    seg, init, parts = run(units, video=None, audio=AUDIO, part_s=part_s)
    assert (init.codecs, init.width) == ("mp4a.40.2", None)
    check_part_rules(parts, seg, 1024)
    samples = samples_by_track(boxes, parts)[2]
    assert [d for _, _, d in samples] == [u.data for u in units]
    for p in parts[1:]:
        if p.index == 0:  # the first frame within half a frame of a multiple of 2 s
            assert p.decode_time % 96000 < 512 or p.decode_time % 96000 >= 96000 - 512


def test_a_part_is_emitted_as_soon_as_the_next_keyframe_proves_the_segment_boundary() -> None:
    seg = Segmenter("r", SegmenterSettings(0.333, 1.0))
    seg.configure(VIDEO, bandwidth=1)
    units = video_units([40] * 26, [i % 25 == 0 for i in range(26)], [0] * 26)
    emitted = [seg.push(u) for u in units]
    assert emitted[25] and emitted[25][-1].segment_end  # the keyframe at 1.0 s closes segment 0 at once
    assert [p.duration_s for e in emitted for p in e] == [0.32, 0.32, 0.32, 0.04]
    # a full 0.32 s part (8 frames) goes out when the 9th frame's duration is known, one frame later
    assert [(i, len(e)) for i, e in enumerate(emitted) if e] == [(9, 1), (17, 1), (25, 2)]


def test_flush_gives_the_held_back_frame_the_previous_frame_duration(boxes: Any) -> None:
    units = video_units([40, 40, 40, 40, 25, 99], [True] + [False] * 5, [0] * 6)
    seg, _, parts = run(units, part_s=0.2)
    durations = [s.duration for _, s, _ in samples_by_track(boxes, parts)[1]]
    assert durations == [3600] * 4 + [2250, 2250]
    assert [p.duration_s for p in parts] == [0.185, 0.025]  # 0.185 + 0.025 > 0.2: the last frame splits off
    assert [p.segment_end for p in parts] == [False, True]
    assert seg.flush() == [] and seg.state is SegmenterState.FINISHED


def test_part_carries_the_capture_wallclock_of_its_first_frame_else_the_ingest_one() -> None:
    units = [
        AccessUnit(TrackKind.VIDEO, i * 100, i * 100, b"x", i == 0, 50.0 + i, 40.0 + i if i % 2 else None)
        for i in range(12)
    ]
    _, _, parts = run(units, part_s=0.333)
    firsts = [next(u for u in units if u.dts_ms * 90 == p.decode_time) for p in parts]
    expected = [
        u.capture_wallclock if u.capture_wallclock is not None else u.ingest_wallclock for u in firsts
    ]
    assert [p.capture_wallclock for p in parts] == expected
    assert len(set(expected)) == len(parts) > 2


def test_units_before_the_first_keyframe_are_dropped_and_counted(boxes: Any) -> None:
    units = video_units([33] * 20, [False, False, False, True] + [False] * 16, [0] * 20)
    audio = audio_units(3)
    seg, _, parts = run(interleave(units, audio), audio=AUDIO)
    assert seg.stats.dropped_before_keyframe == 3 + 3  # three P-frames, three audio frames before t=99
    assert parts[0].independent and parts[0].decode_time == units[3].dts_ms * 90
    assert len(samples_by_track(boxes, parts)[1]) == 17


def test_contract_violations_are_errors_naming_the_rendition() -> None:
    seg = Segmenter("720p")
    unit = AccessUnit(TrackKind.VIDEO, 0, 0, b"x", True, 0.0)
    with pytest.raises(SegmenterError, match="720p: access unit pushed before configure"):
        seg.push(unit)
    seg.configure(VIDEO, bandwidth=1)
    with pytest.raises(SegmenterError, match="configure\\(\\) called twice"):
        seg.configure(VIDEO, bandwidth=1)
    with pytest.raises(SegmenterError, match="no audio track"):
        seg.push(AccessUnit(TrackKind.AUDIO, 0, 0, b"a", True, 0.0))
    seg.push(AccessUnit(TrackKind.VIDEO, 100, 100, b"x", True, 0.0))
    with pytest.raises(SegmenterError, match="video DTS 100 ms not after the previous 100 ms"):
        seg.push(AccessUnit(TrackKind.VIDEO, 100, 100, b"x", False, 0.0))
    assert seg.state is SegmenterState.STREAMING
    seg.flush()
    with pytest.raises(SegmenterError, match="after flush"):
        seg.push(AccessUnit(TrackKind.VIDEO, 200, 200, b"x", False, 0.0))
    negative = Segmenter("n")
    negative.configure(VIDEO, bandwidth=1)
    with pytest.raises(SegmenterError, match="n: negative DTS -33 ms"):
        negative.push(AccessUnit(TrackKind.VIDEO, -33, 0, b"x", True, 0.0))
    with pytest.raises(ValueError, match="part target"):
        SegmenterSettings(part_target_s=0.0)


def test_muxed_audio_backlog_without_video_is_bounded() -> None:
    seg = Segmenter("m")
    seg.configure(VIDEO, AUDIO, bandwidth=1)
    seg.push(AccessUnit(TrackKind.VIDEO, 0, 0, b"x", True, 0.0))
    with pytest.raises(SegmenterError, match="video track stalled"):
        for u in audio_units(1000):
            seg.push(u)


# -- real H.264/AAC through parsers we did not write -------------------------------------------


def _ffmpeg_errors(path: Path) -> str:
    """ffprobe's demux check and a full ffmpeg decode; both must print nothing at -v error."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", str(path)],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    decode = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-f", "null", "-"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return probe.stderr + decode.stderr


needs_ffmpeg = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="needs Debian's ffmpeg/ffprobe")


@needs_ffmpeg
@pytest.mark.parametrize("layout", ["video", "audio", "muxed"])
@pytest.mark.parametrize("part_s", [0.2, 0.25, 0.333])
@pytest.mark.parametrize("name", ["30fps_bframes", "25fps_baseline_44k", "60fps_gop45", "hevc_30fps.mkv"])
def test_real_h264_aac_segments_demux_and_decode_with_identical_timestamps(
    name: str, part_s: float, layout: str, clip: Callable[[str], Any], boxes: Any, tmp_path: Path
) -> None:
    media = clip(name)
    video = media.video if layout != "audio" else None
    audio = media.audio if layout != "video" else None
    units = [
        u for u in media.units if (u.kind is TrackKind.VIDEO) == (video is not None) or layout == "muxed"
    ]
    seg, init, parts = run(units, video=video, audio=audio, part_s=part_s, styp=part_s == 0.25)
    prim = [u for u in units if u.kind is (TrackKind.VIDEO if video else TrackKind.AUDIO)]
    max_ticks = max((b.dts_ms - a.dts_ms) * seg.timescale // 1000 for a, b in itertools.pairwise(prim))
    check_part_rules(parts, seg, max_ticks + 1)
    # in a muxed rendition, audio before the first keyframe's DTS has no segment and is dropped
    first_key = next((u.dts_ms for u in units if u.kind is TrackKind.VIDEO and u.keyframe), -1)
    kept = [u for u in units if u.kind is TrackKind.VIDEO or u.dts_ms >= first_key]
    assert seg.stats.gaps == 0 and seg.stats.dropped_before_keyframe == len(units) - len(kept)
    out = tmp_path / "out.mp4"
    out.write_bytes(init.data + b"".join(p.data for p in parts))
    assert _ffmpeg_errors(out) == ""

    with av.open(str(out)) as container:
        got = {"video": [], "audio": []}  # type: dict[str, list[Any]]
        for packet in container.demux():
            if packet.size:
                assert packet.dts is not None and packet.pts is not None and packet.time_base is not None
                got[packet.stream.type].append(
                    (packet.dts * packet.time_base, packet.pts * packet.time_base, bytes(packet),
                     packet.is_keyframe)
                )  # fmt: skip
        decoded = {"video": 0, "audio": 0}
        container.seek(0)
        for frame in container.decode(*container.streams):
            decoded["video" if isinstance(frame, av.VideoFrame) else "audio"] += 1
    vin = [u for u in kept if u.kind is TrackKind.VIDEO]
    ain = [u for u in kept if u.kind is TrackKind.AUDIO]
    assert [(d * 1000, p * 1000, data, k) for d, p, data, k in got["video"]] == [
        (u.dts_ms, u.pts_ms, u.data, u.keyframe) for u in vin
    ]
    assert [data for _, _, data, _ in got["audio"]] == [u.data for u in ain]
    assert all(abs(d * 1000 - u.dts_ms) <= 1 for (d, _, _, _), u in zip(got["audio"], ain, strict=True))
    assert decoded["video"] == len(vin)
    assert decoded["audio"] >= len(ain) - 1  # the AAC decoder may hold back its priming frame

    # segments start at keyframes; every input keyframe far enough into a segment starts one
    tracks = samples_by_track(boxes, parts)
    primary = 1 if video else 2
    starts = [p.decode_time for p in parts if p.index == 0]
    if video:
        key_times = {u.dts_ms * 90 for u in vin if u.keyframe}
        assert set(starts) <= key_times
        assert sum(len(v) for v in tracks.values()) == len(kept)
    assert len(tracks[primary]) == len(vin or ain)
    assert parts[-1].segment_end
    assert all(p.capture_wallclock > 1_600_000_000 for p in parts)


@needs_ffmpeg
def test_each_segment_decodes_on_its_own_after_the_init_segment(
    clip: Callable[[str], Any], boxes: Any, tmp_path: Path
) -> None:
    """What a player joining live does: init + any one segment must decode from its first frame."""
    media = clip("60fps_gop45")
    _, init, parts = run(media.units, video=media.video, audio=media.audio, part_s=0.2)
    segments: dict[int, list[Part]] = {}
    for p in parts:
        segments.setdefault(p.msn, []).append(p)
    assert len(segments) >= 2
    for msn, seg_parts in segments.items():
        out = tmp_path / f"seg{msn}.mp4"
        out.write_bytes(init.data + b"".join(p.data for p in seg_parts))
        assert _ffmpeg_errors(out) == "", f"segment {msn}"
        with av.open(str(out)) as container:
            frames = list(container.decode(video=0))
        video_samples = len(samples_by_track(boxes, seg_parts)[1])
        assert len(frames) == video_samples and frames[0].key_frame


def test_a_stream_starting_off_the_grid_cuts_at_the_next_grid_idr() -> None:
    """Regression: the transcoder puts IDRs on the absolute 2 s grid; a stream whose first kept
    frame is at 1.4 s must cut at the IDR at 2.0 s (a short first segment), not skip it and run
    a 2.6 s segment past TARGETDURATION (which the origin refuses)."""
    frames = 150  # 1.4 s .. 6.4 s at 25 fps (40 ms frames), IDRs at 1.4 s and every 2 s mark
    times = [1400 + 40 * i for i in range(frames)]
    keys = [i == 0 or t % 2000 == 0 for i, t in enumerate(times)]
    units = video_units([40] * frames, keys, [0] * frames, t0=1400)
    _, _, parts = run(units, part_s=0.2)
    starts = [p.decode_time // 90 for p in parts if p.index == 0]
    assert starts == [1400, 2000, 4000, 6000]
    assert max(sum(p.duration_s for p in parts if p.msn == m) for m in range(3)) <= 2.0 + 1e-9


@given(jitter=st.lists(st.floats(-0.2, 0.2), min_size=90, max_size=90))
@settings(max_examples=50, deadline=None)
def test_part_wallclocks_follow_media_time_not_arrival_jitter(jitter: list[float]) -> None:
    """PROGRAM-DATE-TIME comes from these: they must advance exactly with the media timeline."""
    units = [
        AccessUnit(TrackKind.VIDEO, 33 * i, 33 * i, b"v%d" % i, i % 60 == 0, 1000.0 + 0.033 * i + j)
        for i, j in enumerate(jitter)
    ]
    _, _, parts = run(units, part_s=0.334)
    anchor = parts[0]
    for part in parts:
        expected = anchor.capture_wallclock + (part.decode_time - anchor.decode_time) / 90000
        assert part.capture_wallclock == pytest.approx(expected, abs=1e-9)


def test_part_wallclock_reanchors_after_a_gap() -> None:
    before = video_units([33] * 20, [i == 0 for i in range(20)], [0] * 20)
    after = video_units([33] * 20, [i == 0 for i in range(20)], [0] * 20, t0=before[-1].dts_ms + 1633)
    shifted = [replace(u, ingest_wallclock=u.ingest_wallclock + 5.0) for u in after]  # clocks jump
    _, _, parts = run(before + shifted, part_s=0.334)
    resumed = next(p for p in parts if p.decode_time == shifted[0].dts_ms * 90)
    assert resumed.capture_wallclock == pytest.approx(shifted[0].ingest_wallclock)


def _audio_end_and_cut(boxes: Any, parts: list[Part]) -> list[tuple[float, float]]:
    """(audio end, video cut) in seconds for every part followed by another."""
    out = []
    for p, nxt in itertools.pairwise(parts):
        (frag,) = boxes.read_fragments(p.data)
        audio = [traf for traf in frag.trafs if traf.track_id == 2]
        if audio:
            end = audio[0].decode_time + sum(s.duration for s in audio[0].samples)
            out.append((end / 48000, nxt.decode_time / 90000))
    return out


def test_part_audio_ends_past_its_video_when_an_aac_frame_starts_on_the_cut(boxes: Any) -> None:
    """ffmpeg's FLV: audio and video both start at 21 ms, so every 8 s an AAC frame starts exactly
    on a segment cut, and ffmpeg sends it after the video frame of the same timestamp. Audio
    ending exactly on the cut reads as 1 us short in Chromium's buffered ranges and hls.js stalls
    at the live edge; the part must wait for that frame and end its audio past its video."""
    video = [
        AccessUnit(
            TrackKind.VIDEO, 21 + round(k * 1000 / 30), 21 + round(k * 1000 / 30), b"v", k % 60 == 0, 0.0
        )
        for k in range(30 * 17)
    ]
    audio = audio_units(int(17 * 48000 / 1024), t0=21.0)
    seg, _, parts = run(interleave(video, audio), audio=AUDIO)
    check_part_rules(parts, seg)
    ends = _audio_end_and_cut(boxes, parts)
    assert any(abs(cut - 8.021) < 1e-9 for _, cut in ends), "the stream must have a cut on an AAC frame start"
    late = [(end, cut) for end, cut in ends if end < cut + 0.001]
    assert not late, f"audio ends at or before its part's video cut: {late[:3]}"


@given(stream=video_streams(max_ms=45), audio_offset=st.floats(0, 60), part_s=st.sampled_from([0.2, 0.333]))
@settings(max_examples=80, deadline=None)
def test_muxed_part_audio_always_covers_its_video_while_audio_flows(
    stream: tuple[list[int], list[bool], list[int]], audio_offset: float, part_s: float, boxes: Any
) -> None:
    durations, keys, ctss = stream
    video = video_units(durations, keys, ctss)
    end = video[-1].dts_ms
    audio = audio_units(int((end - audio_offset) / AAC_MS) + 4, audio_offset)
    seg, _, parts = run(interleave(video, audio), audio=AUDIO, part_s=part_s)
    last_audio_s = audio[-1].dts_ms / 1000
    for audio_end, cut in _audio_end_and_cut(boxes, parts):
        if cut + 0.05 < last_audio_s:
            assert audio_end >= cut + 0.001 - 1e-9, (audio_end, cut)

"""MPEG-TS demultiplexing (ISO/IEC 13818-1) against PyAV on Debian ffmpeg's own TS output,
and against hostile input: random bytes, lost and truncated packets, any split."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live.media import mpegts
from live.media.avc import split_avcc
from live.media.mpegts import PACKET_SIZE, ProgramMap, TsDemuxer
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig

fixture_ok = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
RunFfmpeg = Callable[[str, tuple[str, ...], str], Path]


def _ts(run_ffmpeg: RunFfmpeg, name: str, *args: str) -> bytes:
    base = ("-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi",
            "-i", "sine=f=440:sample_rate=48000")
    return run_ffmpeg(name, (*base, *args), "mpegts").read_bytes()


@pytest.fixture(scope="module")
def ts_h264(run_ffmpeg: RunFfmpeg) -> bytes:
    return _ts(run_ffmpeg, "h264.ts", "-t", "3", "-c:v", "libx264", "-g", "30", "-bf", "2",
               "-pix_fmt", "yuv420p", "-c:a", "aac")


def demux_all(data: bytes, cuts: list[int] | None = None) -> tuple[list[mpegts.Event], TsDemuxer]:
    demuxer = TsDemuxer()
    events: list[mpegts.Event] = []
    bounds = [0, *sorted(cuts or []), len(data)]
    for start, end in itertools.pairwise(bounds):
        events += demuxer.feed(data[start:end], 0.0)
    events += demuxer.flush(0.0)
    return events, demuxer


def units(events: list[mpegts.Event], kind: TrackKind) -> list[AccessUnit]:
    return [e for e in events if isinstance(e, AccessUnit) and e.kind is kind]


def test_crc32_is_the_mpeg2_crc() -> None:
    assert mpegts.crc32_mpeg2(b"123456789") == 0x0376E6E7  # the CRC-32/MPEG-2 check value


def test_every_ffmpeg_clip_demuxes_like_pyav(clip: Any, run_ffmpeg: RunFfmpeg) -> None:
    path = run_ffmpeg(f"{clip.name}.ts", clip.args, "mpegts")
    events, demuxer = demux_all(path.read_bytes())
    with av.open(str(path)) as container:
        packets = [(p.stream.type, p.pts, p.dts, p.is_keyframe, bytes(p))
                   for p in container.demux() if p.size]
    video = units(events, TrackKind.VIDEO)
    pyav_video = [p for p in packets if p[0] == "video"]
    assert len(video) == len(pyav_video)
    first = pyav_video[0][2]
    for unit, (_, pts, dts, keyframe, _data) in zip(video, pyav_video, strict=True):
        assert unit.dts_ms - video[0].dts_ms == pytest.approx((dts - first) / 90, abs=1)
        assert unit.pts_ms - unit.dts_ms == pytest.approx((pts - dts) / 90, abs=1)
        assert unit.keyframe == keyframe
    assert len(units(events, TrackKind.AUDIO)) == sum(1 for p in packets if p[0] == "audio")
    config = next(e for e in events if isinstance(e, VideoConfig))
    assert (config.width, config.height) == (clip.width, clip.height)
    audio = next(e for e in events if isinstance(e, AudioConfig))
    assert (audio.sample_rate, audio.channels) == (clip.sample_rate, clip.channels)
    assert demuxer.stats.continuity_errors == demuxer.stats.pes_dropped == demuxer.stats.bad_units == 0


def test_video_units_are_length_prefixed_without_parameter_sets_or_delimiters(ts_h264: bytes) -> None:
    events, _ = demux_all(ts_h264)
    assert isinstance(events[0], ProgramMap) and events[0].video_codec == "h264"
    for unit in units(events, TrackKind.VIDEO):
        kinds = {nal[0] & 0x1F for nal in split_avcc(unit.data)}
        assert not kinds & {7, 8, 9}
        assert (5 in kinds) == unit.keyframe


def test_the_first_timestamp_lands_at_the_timeline_start(ts_h264: bytes) -> None:
    events, _ = demux_all(ts_h264)
    stamps = [e.dts_ms for e in events if isinstance(e, AccessUnit)]
    assert min(stamps) >= 0 and stamps[0] == mpegts.TIMELINE_START_MS


def test_timestamps_stay_monotonic_across_the_33_bit_wrap(run_ffmpeg: RunFfmpeg) -> None:
    wrap_s = mpegts.TIMESTAMP_WRAP / mpegts.CLOCK_HZ
    data = _ts(run_ffmpeg, "wrap.ts", "-t", "4", "-c:v", "libx264", "-g", "30", "-pix_fmt",
               "yuv420p", "-c:a", "aac", "-output_ts_offset", f"{wrap_s - 2:.3f}")
    events, _ = demux_all(data)
    video = [u.dts_ms for u in units(events, TrackKind.VIDEO)]
    audio = [u.dts_ms for u in units(events, TrackKind.AUDIO)]
    assert len(video) == 120
    assert all(0 < b - a < 40 for a, b in itertools.pairwise(video))
    assert all(0 < b - a < 25 for a, b in itertools.pairwise(audio))
    assert video[-1] - video[0] == pytest.approx(119 * 1000 / 30, abs=2)


def test_the_unwrapper_keeps_a_late_unit_from_before_the_wrap() -> None:
    clock = mpegts.TimestampUnwrapper33()
    wrap = mpegts.TIMESTAMP_WRAP
    assert clock.unwrap(wrap - 10) == wrap - 10
    assert clock.unwrap(5) == wrap + 5
    assert clock.unwrap(wrap - 3) == wrap - 3
    assert clock.unwrap(20) == wrap + 20


@fixture_ok
@given(cuts=st.lists(st.integers(min_value=0, max_value=200_000), max_size=40))
def test_any_split_demuxes_the_same(ts_h264: bytes, cuts: list[int]) -> None:
    whole, _ = demux_all(ts_h264)
    split, _ = demux_all(ts_h264, [c % (len(ts_h264) + 1) for c in cuts])
    assert split == whole


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=4000), cuts=st.lists(st.integers(0, 4000), max_size=8))
def test_random_bytes_never_raise(data: bytes, cuts: list[int]) -> None:
    events, demuxer = demux_all(data, [c % (len(data) + 1) for c in cuts])
    assert all(not isinstance(e, AccessUnit) for e in events) or demuxer.video is not None


@settings(max_examples=200, deadline=None)
@given(packets=st.lists(st.binary(min_size=PACKET_SIZE - 1, max_size=PACKET_SIZE - 1), max_size=30))
def test_random_packets_with_a_sync_byte_never_raise(packets: list[bytes]) -> None:
    demux_all(b"".join(b"\x47" + p for p in packets))


@fixture_ok
@given(seed=st.integers(0, 2**32 - 1), loss=st.floats(0.001, 0.2))
def test_lost_packets_are_counted_and_survived(ts_h264: bytes, seed: int, loss: float) -> None:
    rng = random.Random(seed)
    packets = [ts_h264[i : i + PACKET_SIZE] for i in range(0, len(ts_h264), PACKET_SIZE)]
    kept = [p for i, p in enumerate(packets) if i < 4 or rng.random() > loss]
    events, demuxer = demux_all(b"".join(kept))
    if len(kept) < len(packets):
        assert demuxer.stats.continuity_errors > 0
    video = units(events, TrackKind.VIDEO)
    assert all(b.dts_ms > a.dts_ms for a, b in itertools.pairwise(video))


@fixture_ok
@given(seed=st.integers(0, 2**32 - 1))
def test_truncated_and_corrupted_packets_are_survived(ts_h264: bytes, seed: int) -> None:
    rng = random.Random(seed)
    out = bytearray()
    for i in range(0, len(ts_h264), PACKET_SIZE):
        packet = bytearray(ts_h264[i : i + PACKET_SIZE])
        roll = rng.random()
        if roll < 0.02:
            packet = packet[: rng.randrange(1, PACKET_SIZE)]  # truncated: sync is lost
        elif roll < 0.04:
            at = rng.randrange(1, PACKET_SIZE)
            packet[at] ^= 1 << rng.randrange(8)
        out += packet
    demuxer = TsDemuxer()
    demuxer.feed(bytes(out), 0.0)
    assert demuxer.stats.packets > 0
    recovered = demuxer.feed(ts_h264, 0.0)  # after the damage, clean input demuxes again
    assert len(units(recovered, TrackKind.VIDEO)) >= 80


def test_an_audio_only_program_has_no_video_pid(run_ffmpeg: RunFfmpeg) -> None:
    data = run_ffmpeg("audio_only.ts", ("-f", "lavfi", "-i", "sine", "-t", "1", "-c:a", "aac"),
                      "mpegts").read_bytes()
    events, _ = demux_all(data)
    program = next(e for e in events if isinstance(e, ProgramMap))
    assert program.video_pid is None and program.audio_codec == "aac"
    assert units(events, TrackKind.AUDIO)


def test_a_duplicate_packet_is_dropped_not_counted_as_loss(ts_h264: bytes) -> None:
    packets = [ts_h264[i : i + PACKET_SIZE] for i in range(0, len(ts_h264), PACKET_SIZE)]
    doubled = b"".join(p + p if i == 10 else p for i, p in enumerate(packets))
    events, demuxer = demux_all(doubled)
    assert demuxer.stats.continuity_errors == 0
    assert events == demux_all(ts_h264)[0]


def test_an_oversized_pes_is_dropped(ts_h264: bytes) -> None:
    demuxer = TsDemuxer(max_pes_size=2000)
    events = demuxer.feed(ts_h264, 0.0) + demuxer.flush(0.0)
    assert demuxer.stats.pes_dropped > 0
    assert units(events, TrackKind.AUDIO)

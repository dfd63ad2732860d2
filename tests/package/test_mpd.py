"""The DASH MPD model (ISO/IEC 23009-1): timelines, low-latency attributes, element order.

No XML schema of ISO/IEC 23009-1 ships in a package we can install, so these are structural
checks with ElementTree against the schema's rules we rely on; ffprobe and dash.js read the
served MPD in tests/origin and tests/e2e.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st
from live.media.units import AudioConfig
from live.package import fmp4
from live.package.mpd import (
    LiveMpd,
    MpdRepresentation,
    ServiceLatency,
    TimelineSegment,
    init_timescale,
    iso_duration,
    render_mpd,
    timeline_runs,
)

NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}
T = 90_000


def segments(*spec: tuple[int, int]) -> tuple[TimelineSegment, ...]:
    return tuple(TimelineSegment(n, t, d) for n, (t, d) in enumerate(spec, start=5))


def rep(name: str, bandwidth: int, segs: tuple[TimelineSegment, ...], **kw: object) -> MpdRepresentation:
    fields: dict[str, object] = {"width": 1280, "height": 720, "frame_rate": 30.0, **kw}
    return MpdRepresentation(
        id=name, bandwidth=bandwidth, codecs="avc1.64001f,mp4a.40.2", mime_type="video/mp4",
        timescale=T, initialization=f"{name}/e1/init.mp4", media=f"{name}/e1/$Number$.m4s",
        segments=segs, availability_time_offset=1.666, **fields)  # type: ignore[arg-type]


def mpd(*reps: MpdRepresentation, ended: bool = False) -> LiveMpd:
    return LiveMpd(period_id="e1", availability_start=1.7e9, publish_time=1.7e9 + 30,
                   minimum_update_period_s=0.5, min_buffer_time_s=1.0, max_segment_duration_s=2.0,
                   time_shift_buffer_depth_s=30.0, latency=ServiceLatency(1500, 800, 3000),
                   utc_timing_url="http://127.0.0.1:1/dash/time", representations=reps, ended=ended)


def test_equal_durations_collapse_into_repeat_counts_and_gaps_restate_t() -> None:
    segs = segments((0, 2 * T), (2 * T, 2 * T), (4 * T, 2 * T), (6 * T, T), (9 * T, 2 * T))
    assert list(timeline_runs(segs)) == [(0, 2 * T, 2), (None, T, 0), (9 * T, 2 * T, 0)]


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4)), max_size=40))
def test_a_timeline_expands_back_to_its_segments(spec: list[tuple[int, int]]) -> None:
    segs, t = [], 1000
    for gap, d in spec:
        t += gap
        segs.append(TimelineSegment(len(segs), t, d))
        t += d
    expanded, cursor = [], None
    for start, d, r in timeline_runs(segs):
        cursor = start if start is not None else cursor
        assert cursor is not None
        for _ in range(r + 1):
            expanded.append((cursor, d))
            cursor += d
    assert expanded == [(s.start, s.duration) for s in segs]


def test_the_live_mpd_has_the_low_latency_and_timing_elements_in_schema_order() -> None:
    segs = segments((0, 2 * T), (2 * T, 2 * T), (4 * T, 2 * T))
    text = render_mpd(mpd(rep("720p", 3_000_000, segs), rep("360p", 800_000, segs)))
    root = ET.fromstring(text)
    assert root.tag == "{urn:mpeg:dash:schema:mpd:2011}MPD"
    assert root.get("type") == "dynamic" and root.get("minimumUpdatePeriod") == "PT0.5S"
    assert root.get("availabilityStartTime", "").endswith("Z")
    assert [child.tag.split("}")[1] for child in root] == ["ServiceDescription", "Period", "UTCTiming"]
    latency = root.find("d:ServiceDescription/d:Latency", NS)
    assert latency is not None and latency.get("target") == "1500"
    utc = root.find("d:UTCTiming", NS)
    assert utc is not None and utc.get("schemeIdUri") == "urn:mpeg:dash:utc:http-iso:2014"
    reps = root.findall("d:Period/d:AdaptationSet/d:Representation", NS)
    assert [r.get("id") for r in reps] == ["360p", "720p"]  # ascending bandwidth
    template = reps[0].find("d:SegmentTemplate", NS)
    assert template is not None
    assert template.get("media") == "360p/e1/$Number$.m4s" and template.get("startNumber") == "5"
    assert template.get("availabilityTimeOffset") == "1.666"
    assert template.get("availabilityTimeComplete") == "false"
    s = template.findall("d:SegmentTimeline/d:S", NS)
    assert [(x.get("t"), x.get("d"), x.get("r")) for x in s] == [("0", str(2 * T), "2")]


def test_an_ended_stream_turns_static_with_its_duration() -> None:
    segs = segments((0, 2 * T), (2 * T, T))
    root = ET.fromstring(render_mpd(mpd(rep("720p", 1, segs), ended=True)))
    assert root.get("type") == "static" and root.get("minimumUpdatePeriod") is None
    assert root.get("mediaPresentationDuration") == "PT3S"


def test_fractional_frame_rates_are_ratios() -> None:
    segs = segments((0, T))
    text = render_mpd(mpd(rep("720p", 1, segs, frame_rate=29.97)))
    assert 'frameRate="30000/1001"' in text


@pytest.mark.parametrize(("seconds", "text"), [(2, "PT2S"), (0.334, "PT0.334S"), (0, "PT0S")])
def test_durations_are_xs_durations(seconds: float, text: str) -> None:
    assert iso_duration(seconds) == text


def test_the_timescale_is_read_from_the_init_segments_mdhd() -> None:
    audio = AudioConfig("aac", "mp4a.40.2", 48000, 2, 2, bytes([0x11, 0x90]))
    init = fmp4.init_segment([fmp4.audio_track(audio, 1)])
    assert init_timescale(init) == 48000
    with pytest.raises(ValueError):
        init_timescale(b"\x00\x00\x00\x08free")

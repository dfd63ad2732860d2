"""The ladder packager against a recording sink: init before parts, retirement, end of stream.

The sink here is a list of calls, so these tests prove what any ``PartSink`` (the origin, a
remote push, a DVR store) is told and in which order, with no origin involved.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig
from live.package.ladder_packager import LadderPackager, PackagingSettings, rung_bandwidth
from live.package.parts import InitSegment, Part
from live.package.sink import PartSink, PublishError
from live.package.timing import ChannelTiming
from live.transcode.events import RenditionConfig, RenditionDropped, RenditionUnit

RECORD = b"\x01\x64\x00\x1f\xff\xe1\x00\x00\x01\x00\x00"
HIGH = VideoConfig("h264", "avc1.64001f", 640, 360, RECORD)
LOW = VideoConfig("h264", "avc1.64000d", 284, 160, RECORD)
AUDIO = AudioConfig("aac", "mp4a.40.2", 48000, 2, 2, b"\x11\x90")
AAC_MS = 1024 * 1000 / 48000
SETTINGS = PackagingSettings()


@dataclass
class RecordingSink:
    """Every call, in order; ``refuse`` names renditions whose parts it rejects."""

    calls: list[tuple[str, ...]] = field(default_factory=list)
    inits: dict[str, InitSegment] = field(default_factory=dict)
    timings: list[ChannelTiming] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    parts: dict[str, list[Part]] = field(default_factory=dict)

    def publish_init(self, channel: str, init: InitSegment, timing: ChannelTiming) -> None:
        self.calls.append(("init", channel, init.rendition))
        self.inits[init.rendition] = init
        self.timings.append(timing)

    def publish_part(self, channel: str, part: Part) -> None:
        if part.rendition in self.refuse:
            raise PublishError(f"{channel}/{part.rendition}: refused")
        self.calls.append(("part", channel, part.rendition))
        self.parts.setdefault(part.rendition, []).append(part)

    def drop_rendition(self, channel: str, rendition: str) -> None:
        self.calls.append(("drop", channel, rendition))

    def end(self, channel: str) -> None:
        self.calls.append(("end", channel))

    def of(self, rendition: str) -> list[str]:
        return [call[0] for call in self.calls if call[2:] == (rendition,)]


def stream_events(seconds: float, renditions: tuple[str, ...] = ("360p30", "160p30")) -> list[object]:
    """What a transcoder emits: one config per rendition, then 30 fps video with an IDR every
    2 s on every rung and AAC frames, in DTS order."""
    events: list[object] = []
    frames = round(seconds * 30)
    for i in range(frames):
        t = round(i * 1000 / 30)
        for name in renditions:
            events.append(RenditionUnit(name, AccessUnit(TrackKind.VIDEO, t, t, b"v%d" % i, i % 60 == 0,
                                                         1000.0 + t / 1000)))
    audio = [RenditionUnit("audio", AccessUnit(TrackKind.AUDIO, round(k * AAC_MS), round(k * AAC_MS),
                                               b"a%d" % k, True, 1000.0 + k * AAC_MS / 1000))
             for k in range(int(seconds * 1000 / AAC_MS))]
    timed = sorted(events + audio, key=lambda e: e.unit.dts_ms)  # type: ignore[attr-defined]
    return timed


def configs() -> list[object]:
    return [RenditionConfig("360p30", HIGH, 800, 30.0), RenditionConfig("160p30", LOW, None, 30.0),
            RenditionConfig("audio", AUDIO, 96)]


def test_every_rendition_gets_its_init_before_any_part_and_the_stream_ends_once() -> None:
    sink = RecordingSink()
    packager = LadderPackager("alpha", sink, SETTINGS, source_has_audio=True)
    for event in configs() + stream_events(5.0):
        packager.handle(event)
    packager.finish()
    for name in ("360p30", "160p30"):
        calls = sink.of(name)
        assert calls[0] == "init" and calls.count("init") == 1
        assert calls.count("part") >= 5 / SETTINGS.part_target_s - 2
        assert "drop" not in calls
        assert "mp4a.40.2" in sink.inits[name].codecs  # every rung muxes the shared audio
    assert sink.calls[-1] == ("end", "alpha")
    assert [c for c in sink.calls if c[0] == "end"] == [("end", "alpha")]
    assert {c[1] for c in sink.calls} == {"alpha"}
    assert sink.timings == [SETTINGS.timing] * 2
    assert packager.parts_published == sum(1 for c in sink.calls if c[0] == "part")
    assert packager.active == ("160p30", "360p30") and packager.retired == {}
    assert sink.inits["360p30"].bandwidth == rung_bandwidth(HIGH, 800, 96)
    assert sink.inits["160p30"].bandwidth == rung_bandwidth(LOW, None, 96)


def test_no_init_goes_out_until_the_audio_configuration_is_known() -> None:
    sink = RecordingSink()
    packager = LadderPackager("alpha", sink, SETTINGS, source_has_audio=True)
    video_only = [e for e in stream_events(1.0) if getattr(e, "rendition", "") != "audio"]
    for event in [RenditionConfig("360p30", HIGH, 800, 30.0), *video_only]:
        packager.handle(event)
    assert sink.calls == []  # units before the rung is configured are not packaged
    packager.handle(RenditionConfig("audio", AUDIO, 96))
    assert sink.calls == [("init", "alpha", "360p30")]


def test_a_rendition_the_transcoder_stops_stays_advertised_as_gap_segments() -> None:
    """The real-time guard's last resort stops a rung: players that loaded the multivariant
    playlist keep getting its playlist (EXT-X-GAP), never a 404 for a withdrawn rendition."""
    sink = RecordingSink()
    packager = LadderPackager("alpha", sink, SETTINGS, source_has_audio=True)
    events = stream_events(6.0)
    half = len(events) // 2
    for event in configs() + events[:half]:
        packager.handle(event)
    parts_before = sink.of("360p30").count("part")
    packager.handle(RenditionDropped("360p30", "encoder overloaded (load 1.40)"))
    packager.handle(RenditionDropped("360p30", "again"))
    for event in events[half:]:
        if getattr(event, "rendition", "") != "360p30":  # the stopped encoder sends nothing more
            packager.handle(event)
    packager.finish()
    assert "drop" not in sink.of("360p30")
    assert sink.of("360p30").count("part") > parts_before + 6  # gap parts while the stream goes on
    assert sink.parts["360p30"][-1].gap and sink.parts["360p30"][-1].segment_end
    assert not any(p.gap for p in sink.parts["160p30"])
    assert packager.active == ("160p30", "360p30")
    assert packager.gaps == {"360p30": "transcoder stopped it: encoder overloaded (load 1.40)"}
    assert sink.calls[-1] == ("end", "alpha")


def test_a_part_the_sink_refuses_retires_that_rendition_and_the_others_go_on() -> None:
    sink = RecordingSink(refuse={"160p30"})
    packager = LadderPackager("alpha", sink, SETTINGS, source_has_audio=True)
    for event in configs() + stream_events(3.0):
        packager.handle(event)
    packager.finish()
    assert sink.of("160p30") == ["init", "drop"]
    assert packager.retired["160p30"].startswith("packaging failed: alpha/160p30: refused")
    assert sink.of("360p30").count("part") > 5
    assert packager.active == ("360p30",)


def test_a_stream_that_never_configured_still_ends_at_the_sink() -> None:
    sink = RecordingSink()
    LadderPackager("alpha", sink, SETTINGS, source_has_audio=True).finish()
    assert sink.calls == [("end", "alpha")]


def test_the_recording_sink_is_a_part_sink() -> None:
    sink: PartSink = RecordingSink()
    assert isinstance(sink, PartSink)


def source_events(gops: list[int], seconds: float) -> list[object]:
    """A ladder with the publisher's own 30 fps video passed through: GOPs of ``gops`` frames
    (cycled), the transcoded rungs on the 2 s grid."""
    events = stream_events(seconds, ("160p30",))
    keys, frame = set(), 0
    while frame <= seconds * 30:
        for gop in gops:
            keys.add(frame)
            frame += gop
    frames = [RenditionUnit("source", AccessUnit(TrackKind.VIDEO, round(i * 1000 / 30), round(i * 1000 / 30),
                                                 b"s%d" % i, i in keys, 1000.0 + i / 30))
              for i in range(round(seconds * 30))]
    return sorted(events + frames, key=lambda e: e.unit.dts_ms)  # type: ignore[attr-defined]


def source_configs() -> list[object]:
    return [RenditionConfig("source", HIGH, None, 30.0, passthrough=True),
            RenditionConfig("160p30", LOW, None, 30.0), RenditionConfig("audio", AUDIO, 96)]


def test_nothing_is_advertised_until_the_publishers_keyframe_interval_is_measured() -> None:
    """``-g 80`` at 30 fps: keyframes every 2.67 s. The channel's TARGETDURATION becomes 3 before
    any init is published, and the source is cut at its own keyframes without a retirement."""
    sink = RecordingSink()
    packager = LadderPackager("alpha", sink, SETTINGS, source_has_audio=True)
    events = source_configs() + source_events([80], 12.0)
    first_init = None
    for i, event in enumerate(events):
        packager.handle(event)
        if first_init is None and sink.calls:
            first_init = i
            assert getattr(event, "rendition", None) == "source"
            assert event.unit.keyframe and event.unit.dts_ms == 5333  # type: ignore[attr-defined]
    packager.finish()
    assert set(sink.timings) == {ChannelTiming(3, SETTINGS.part_target_s)}
    assert [c[2] for c in sink.calls if c[0] == "init"] == ["source", "160p30"]
    assert packager.retired == {} and packager.gaps == {}
    starts = [p.decode_time // 90 for p in sink.parts["source"] if p.index == 0]
    assert starts == [round(k * 80 * 1000 / 30) for k in range(len(starts))] and len(starts) == 5
    assert not any(p.gap for p in sink.parts["source"])
    assert sink.calls[-1] == ("end", "alpha")


def test_odd_keyframe_times_and_a_long_first_gop_are_covered_by_the_measurement() -> None:
    sink = RecordingSink()
    packager = LadderPackager("alpha", sink, SETTINGS, source_has_audio=True)
    for event in source_configs() + source_events([99, 39, 63], 20.0):
        packager.handle(event)
    packager.finish()
    assert sink.timings[0].target_duration_s == 4
    assert packager.retired == {}
    for msn in {p.msn for p in sink.parts["source"]}:
        assert round(sum(p.duration_s for p in sink.parts["source"] if p.msn == msn)) <= 4


def test_a_publisher_with_keyframes_too_rare_keeps_its_source_out_of_the_ladder() -> None:
    sink = RecordingSink()
    packager = LadderPackager("alpha", sink, SETTINGS, source_has_audio=True)
    for event in source_configs() + source_events([270], 12.0):
        packager.handle(event)
    packager.finish()
    assert [c[2] for c in sink.calls if c[0] == "init"] == ["160p30"]
    assert sink.timings == [SETTINGS.timing]
    assert packager.retired["source"].startswith("not advertised: keyframes")
    assert "drop" not in [c[0] for c in sink.calls]


def test_without_a_passthrough_rendition_nothing_waits() -> None:
    sink = RecordingSink()
    packager = LadderPackager("alpha", sink, SETTINGS, source_has_audio=True)
    events = configs() + stream_events(1.0)
    for event in events[:4]:
        packager.handle(event)
    assert [c[0] for c in sink.calls] == ["init", "init"]

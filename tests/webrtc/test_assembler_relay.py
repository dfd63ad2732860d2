"""WHIP frames to access units, and the relay's fan-out of the ladder to WHEP viewers."""

from __future__ import annotations

from fractions import Fraction

import av
import pytest
from live.media.avc import split_avcc
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig
from live.transcode.events import RenditionConfig, RenditionDropped, RenditionUnit
from live.webrtc.assembler import OPUS_CONFIG, WhipAssembler
from live.webrtc.relay import MAX_QUEUED_VIDEO, ChannelRelay, ViewerFeed


def annexb_frames(count: int = 4, gop: int = 2) -> list[bytes]:
    """What aiortc hands a WHIP session: Annex B frames, SPS/PPS in band before each IDR."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 64, 48, "yuv420p"
    ctx.time_base = Fraction(1, 30)
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": f"keyint={gop}"}
    out = []
    for n in range(count):
        frame = av.VideoFrame(64, 48, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([n * 10 % 256]) * plane.buffer_size)
        frame.pts = n
        out += [bytes(p) for p in ctx.encode(frame)]
    return out + [bytes(p) for p in ctx.encode(None)]


def test_whip_frames_become_a_config_and_length_prefixed_units_without_parameter_sets() -> None:
    assembler = WhipAssembler()
    items = []
    for n, frame in enumerate(annexb_frames()):
        items += assembler.video(frame, n * 3000, arrival=100.0 + n / 30)
    configs = [i for i in items if isinstance(i, VideoConfig)]
    units = [i for i in items if isinstance(i, AccessUnit)]
    assert len(configs) == 1 and (configs[0].width, configs[0].height) == (64, 48)
    assert [u.pts_ms for u in units] == [0, 33, 67, 100]
    assert [u.keyframe for u in units] == [True, False, True, False]
    for unit in units:
        assert all(nal[0] & 0x1F not in (7, 8, 9) for nal in split_avcc(unit.data))


def test_frames_before_any_parameter_set_are_counted_not_pushed() -> None:
    assembler = WhipAssembler()
    frames = annexb_frames()
    assert assembler.video(frames[1], 0, 0.0) == []
    assert assembler.frames_before_config == 1
    assert assembler.video(b"garbage", 0, 0.0) == [] and assembler.bad_frames == 1


def test_audio_and_video_share_one_timeline_from_their_first_arrival() -> None:
    assembler = WhipAssembler()
    first = assembler.audio(b"\xfc\x01", 0, arrival=10.0)
    assert first[0] == OPUS_CONFIG
    later = assembler.audio(b"\xfc\x02", 960, arrival=10.02)
    video = assembler.video(annexb_frames()[0], 0, arrival=10.5)
    assert [u.pts_ms for u in (first[1], later[0])] == [0, 20]
    assert isinstance(video[-1], AccessUnit) and video[-1].pts_ms == 500


def _video_config() -> VideoConfig:
    items = WhipAssembler().video(annexb_frames()[0], 0, 0.0)
    config = items[0]
    assert isinstance(config, VideoConfig)
    return config


def _unit(ms: int, keyframe: bool) -> AccessUnit:
    return AccessUnit(TrackKind.VIDEO, ms, ms, b"\x00\x00\x00\x02\x41\x00", keyframe, 0.0)


@pytest.fixture
def relay() -> ChannelRelay:
    relay = ChannelRelay("demo")
    config = _video_config()
    relay.handle(RenditionConfig("360p30", config, 700))
    relay.handle(RenditionConfig("160p30", config, 250))
    return relay


def test_one_packet_object_goes_to_every_viewer_of_a_rendition(relay: ChannelRelay) -> None:
    viewers = [ViewerFeed("360p30", audio=False) for _ in range(3)]
    for viewer in viewers:
        relay.attach(viewer)
    relay.handle(RenditionUnit("360p30", _unit(0, True)))
    packets = [v._video[0] for v in viewers]
    assert all(p is packets[0] for p in packets)
    assert bytes(packets[0]).startswith(b"\x00\x00\x00\x01\x67")  # SPS in front of the IDR
    assert packets[0].pts == 0 and packets[0].time_base == Fraction(1, 1000)


def test_a_viewer_starts_and_switches_at_idrs_only(relay: ChannelRelay) -> None:
    viewer = ViewerFeed("360p30", audio=False)
    relay.attach(viewer)
    relay.handle(RenditionUnit("360p30", _unit(0, False)))
    assert not viewer._video  # no picture before the first IDR
    relay.handle(RenditionUnit("360p30", _unit(33, True)))
    viewer.switch_to("160p30")
    relay.handle(RenditionUnit("160p30", _unit(67, False)))
    relay.handle(RenditionUnit("360p30", _unit(67, False)))
    relay.handle(RenditionUnit("160p30", _unit(100, True)))
    relay.handle(RenditionUnit("360p30", _unit(100, True)))
    assert [p.pts for p in viewer._video] == [33, 67, 100]
    assert viewer.rendition == "160p30" and viewer.switches == 1


def test_a_viewer_that_falls_behind_loses_its_queue_and_waits_for_an_idr(relay: ChannelRelay) -> None:
    viewer = ViewerFeed("360p30", audio=False)
    relay.attach(viewer)
    for n in range(MAX_QUEUED_VIDEO + 5):
        relay.handle(RenditionUnit("360p30", _unit(n, n == 0)))
    assert viewer.dropped == MAX_QUEUED_VIDEO and not viewer._video
    relay.handle(RenditionUnit("360p30", _unit(100, True)))
    assert [p.pts for p in viewer._video] == [100]


def test_no_viewer_means_no_packet_work_and_dropped_rungs_disappear(relay: ChannelRelay) -> None:
    relay.handle(RenditionUnit("360p30", _unit(0, True)))
    assert relay.units_in == {"360p30": 1}
    relay.handle(RenditionDropped("360p30", "too slow"))
    assert set(relay.renditions) == {"160p30"}


async def test_the_end_of_the_stream_ends_every_viewer(relay: ChannelRelay) -> None:
    viewer = ViewerFeed("360p30", audio=False)
    relay.attach(viewer)
    relay.handle(None)
    assert await viewer.next_video() is None and relay.ended


def test_aac_is_transcoded_to_opus_once_for_all_listeners() -> None:
    encoder = av.CodecContext.create("aac", "w")
    encoder.sample_rate, encoder.layout, encoder.format = 48000, "stereo", "fltp"
    encoder.time_base = Fraction(1, 48000)
    encoder.flags = int(encoder.flags) | (1 << 22)
    encoder.open()
    relay = ChannelRelay("demo")
    relay.handle(RenditionConfig("audio", AudioConfig("aac", "mp4a.40.2", 48000, 2, 2,
                                                      bytes(encoder.extradata)), 128))
    listeners = [ViewerFeed("x", audio=True) for _ in range(2)]
    for viewer in listeners:
        relay.attach(viewer)
    pts = 0
    for _ in range(20):
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts = 48000, pts
        pts += 1024
        for packet in encoder.encode(frame):
            relay.handle(RenditionUnit("audio", AccessUnit(TrackKind.AUDIO, 0, 0, bytes(packet), True, 0.0)))
    assert listeners[0]._audio and len(listeners[0]._audio) == len(listeners[1]._audio)
    assert all(a is b for a, b in zip(listeners[0]._audio, listeners[1]._audio, strict=True))
    assert listeners[0]._audio[0].time_base == Fraction(1, 48000)

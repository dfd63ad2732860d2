"""FLV tag bodies (FLV spec v10.1 E.4.2, E.4.3; Enhanced RTMP v1) to configs and access units,
and the muxer that builds them back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live.media import aac, avc, flv, hevc
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig

Event = VideoConfig | AudioConfig | AccessUnit
WALLCLOCK = 1_700_000_000.25
fixture_ok = settings(
    max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def real_tags(flv_360p: Path) -> list[flv.FlvTag]:
    return flv.read_flv(flv_360p.read_bytes())[1]


@pytest.fixture(scope="module")
def configs(real_tags: list[flv.FlvTag]) -> tuple[VideoConfig, AudioConfig]:
    demuxer = flv.FlvTagDemuxer()
    for tag in real_tags[:4]:
        demuxer.feed(tag.tag_type, tag.timestamp_ms, tag.body, 0.0)
    assert demuxer.video_config is not None and demuxer.audio_config is not None
    return demuxer.video_config, demuxer.audio_config


def _feed_all(demuxer: flv.FlvTagDemuxer, tags: list[flv.FlvTag]) -> list[Event]:
    events: list[Event] = []
    for tag in tags:
        events += demuxer.feed(tag.tag_type, tag.timestamp_ms, tag.body, WALLCLOCK)
    return events


def _nals(nal_length_size: int) -> st.SearchStrategy[bytes]:
    return st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=4).map(
        lambda nals: avc.join_avcc(nals, nal_length_size)
    )


@st.composite
def unit_sequences(draw: st.DrawFn, nal_length_size: int) -> list[AccessUnit]:
    units: list[AccessUnit] = []
    dts = draw(st.integers(0, 2**31))
    for _ in range(draw(st.integers(0, 12))):
        dts += draw(st.integers(0, 100))
        if draw(st.booleans()):
            cto = draw(st.integers(-(2**23), 2**23 - 1))
            units.append(
                AccessUnit(TrackKind.VIDEO, dts, dts + cto, draw(_nals(nal_length_size)),
                           draw(st.booleans()), WALLCLOCK)
            )  # fmt: skip
        else:
            data = draw(st.binary(min_size=1, max_size=64))
            units.append(AccessUnit(TrackKind.AUDIO, dts, dts, data, True, WALLCLOCK))
    return units


@fixture_ok
@given(data=st.data())
def test_muxed_tags_demux_to_the_same_configs_and_units(
    configs: tuple[VideoConfig, AudioConfig], data: st.DataObject
) -> None:
    real_video, audio = configs
    nal_length_size = data.draw(st.sampled_from([1, 2, 4]))
    video = avc.video_config_from_parameter_sets(real_video.sps, real_video.pps, nal_length_size)
    units = data.draw(unit_sequences(nal_length_size))
    muxer = flv.FlvTagMuxer()
    tags = [muxer.mux(video), muxer.mux(audio), *(muxer.mux(u) for u in units)]
    tags.append(muxer.end_of_sequence(units[-1].dts_ms if units else 0))
    # Through an FLV file and back, as a recorder and a player would see them.
    _, reread = flv.read_flv(flv.write_flv(tags))
    assert reread == tags
    demuxer = flv.FlvTagDemuxer()
    assert _feed_all(demuxer, reread) == [video, audio, *units]
    assert demuxer.dropped == {flv.DropReason.END_OF_SEQUENCE: 1}


def test_units_before_their_sequence_header_are_dropped_with_a_reason(
    real_tags: list[flv.FlvTag],
) -> None:
    media = [t for t in real_tags[:12] if t.tag_type != flv.TAG_SCRIPT]
    headers = [next(t for t in media if t.tag_type == kind) for kind in (flv.TAG_VIDEO, flv.TAG_AUDIO)]
    frames = [t for t in media if t not in headers]
    demuxer = flv.FlvTagDemuxer()
    assert _feed_all(demuxer, frames) == []
    assert demuxer.dropped[flv.DropReason.NO_VIDEO_CONFIG] >= 1
    assert demuxer.dropped[flv.DropReason.NO_AUDIO_CONFIG] >= 1
    events = _feed_all(demuxer, headers + frames)
    assert isinstance(events[0], VideoConfig) and isinstance(events[1], AudioConfig)
    assert len(events) == 2 + len(frames)


def test_repeated_sequence_header_is_not_a_new_config_but_a_changed_one_is(
    configs: tuple[VideoConfig, AudioConfig],
) -> None:
    video, audio = configs
    demuxer = flv.FlvTagDemuxer()
    header = flv.video_sequence_header_body(video)
    assert demuxer.feed(flv.TAG_VIDEO, 0, header, 0.0) == [video]
    assert demuxer.feed(flv.TAG_VIDEO, 40, header, 0.0) == []
    assert demuxer.dropped == {flv.DropReason.REPEATED_CONFIG: 1}
    other = aac.audio_config_from_asc(aac.build_audio_specific_config(2, 44100, 2))
    assert demuxer.feed(flv.TAG_AUDIO, 0, flv.audio_sequence_header_body(audio), 0.0) == [audio]
    assert demuxer.feed(flv.TAG_AUDIO, 50, flv.audio_sequence_header_body(other), 0.0) == [other]
    assert demuxer.audio_config == other


def test_negative_composition_offset_gives_pts_before_dts(
    configs: tuple[VideoConfig, AudioConfig],
) -> None:
    video, _ = configs
    demuxer = flv.FlvTagDemuxer()
    demuxer.feed(flv.TAG_VIDEO, 0, flv.video_sequence_header_body(video), 0.0)
    body = bytes([0x27, 1, 0xFF, 0xFF, 0xCE]) + avc.join_avcc([b"\x41\x9a"])  # cto -50
    [unit] = demuxer.feed(flv.TAG_VIDEO, 1000, body, 2.5)
    assert isinstance(unit, AccessUnit)
    assert (unit.dts_ms, unit.pts_ms, unit.keyframe, unit.ingest_wallclock) == (1000, 950, False, 2.5)


def test_composition_offset_beyond_24_bits_cannot_be_muxed(
    configs: tuple[VideoConfig, AudioConfig],
) -> None:
    video, _ = configs
    unit = AccessUnit(TrackKind.VIDEO, 0, 2**23, avc.join_avcc([b"\x65\x88"]), True, 0.0)
    with pytest.raises(ValueError, match="24 bits"):
        flv.video_frame_body(video, unit)


def test_muxing_a_unit_before_its_config_is_a_caller_error() -> None:
    unit = AccessUnit(TrackKind.AUDIO, 0, 0, b"\x21", True, 0.0)
    with pytest.raises(ValueError, match="before an AudioConfig"):
        flv.FlvTagMuxer().mux(unit)


@pytest.mark.parametrize(
    ("tag_type", "body", "reason"),
    [
        (flv.TAG_VIDEO, b"", "empty video tag"),
        (flv.TAG_VIDEO, b"\x12\x00", "codec id 2"),  # Sorenson H.263
        (flv.TAG_VIDEO, b"\x07\x00", "reserved frame type 0"),
        (flv.TAG_VIDEO, b"\x17\x00\x00", "header needs 5"),
        (flv.TAG_VIDEO, b"\x17\x03\x00\x00\x00", "AVCPacketType 3"),
        (flv.TAG_VIDEO, b"\x17\x00\x00\x00\x00\x01\x64", "too short"),
        (flv.TAG_VIDEO, b"\x90av01\x00", "FourCC"),
        (flv.TAG_VIDEO, b"\x91hvc1\x00", "composition time"),
        (flv.TAG_AUDIO, b"", "empty audio tag"),
        (flv.TAG_AUDIO, b"\x2f\x01\x00", "SoundFormat 2"),  # MP3
        (flv.TAG_AUDIO, b"\xaf", "no AACPacketType"),
        (flv.TAG_AUDIO, b"\xaf\x00\x16\x90", "reserved"),
        (flv.TAG_AUDIO, b"\xaf\x02", "AACPacketType 2"),
        (7, b"\x00", "unknown FLV tag type 7"),
    ],
)
def test_malformed_bodies_raise_flv_error_naming_the_problem(
    tag_type: int, body: bytes, reason: str
) -> None:
    with pytest.raises(flv.FlvError, match=reason):
        flv.FlvTagDemuxer().feed(tag_type, 0, body, 0.0)


def test_frame_with_broken_nal_lengths_is_rejected(configs: tuple[VideoConfig, AudioConfig]) -> None:
    video, _ = configs
    demuxer = flv.FlvTagDemuxer()
    demuxer.feed(flv.TAG_VIDEO, 0, flv.video_sequence_header_body(video), 0.0)
    with pytest.raises(flv.FlvError, match="claims 256 bytes"):
        demuxer.feed(flv.TAG_VIDEO, 0, b"\x17\x01\x00\x00\x00\x00\x00\x01\x00\x65", 0.0)


@settings(max_examples=200)
@given(st.sampled_from([flv.TAG_AUDIO, flv.TAG_VIDEO, flv.TAG_SCRIPT, 0, 31]), st.binary(max_size=64))
def test_random_bodies_raise_only_flv_error(tag_type: int, body: bytes) -> None:
    try:
        flv.FlvTagDemuxer().feed(tag_type, 0, body, 0.0)
    except flv.FlvError:
        pass


@fixture_ok
@given(data=st.data())
def test_mutated_real_bodies_raise_only_flv_error(
    real_tags: list[flv.FlvTag], data: st.DataObject
) -> None:
    demuxer = flv.FlvTagDemuxer()
    _feed_all(demuxer, real_tags[:4])
    tag = data.draw(st.sampled_from(real_tags[:40]))
    body = bytearray(tag.body)
    for _ in range(data.draw(st.integers(1, 4))):
        action = data.draw(st.sampled_from(["flip", "truncate", "insert"]))
        if action == "truncate":
            del body[data.draw(st.integers(0, len(body))) :]
        elif action == "flip" and body:
            body[data.draw(st.integers(0, len(body) - 1))] ^= data.draw(st.integers(1, 255))
        else:
            body.insert(data.draw(st.integers(0, len(body))), data.draw(st.integers(0, 255)))
    try:
        demuxer.feed(tag.tag_type, tag.timestamp_ms, memoryview(body), 0.0)
    except flv.FlvError:
        pass


def test_enhanced_avc1_fourcc_gives_the_same_config_as_legacy_avc(
    configs: tuple[VideoConfig, AudioConfig],
) -> None:
    video, _ = configs
    body = bytes([0x80 | 1 << 4 | flv.PACKET_SEQUENCE_START]) + flv.FOURCC_AVC + video.record
    assert flv.FlvTagDemuxer().feed(flv.TAG_VIDEO, 0, body, 0.0) == [video]


def test_video_command_frames_are_skipped(configs: tuple[VideoConfig, AudioConfig]) -> None:
    demuxer = flv.FlvTagDemuxer()
    assert demuxer.feed(flv.TAG_VIDEO, 0, b"\x57\x00", 0.0) == []
    assert demuxer.dropped == {flv.DropReason.VIDEO_COMMAND: 1}


def _hevc_from_mp4(path: Path) -> tuple[bytes, list[tuple[int, int, bool, bytes]]]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        record = bytes(stream.codec_context.extradata or b"")
        tb = stream.time_base
        assert tb is not None
        packets = [
            (int(p.dts * tb * 1000), int(p.pts * tb * 1000), p.is_keyframe, bytes(p))
            for p in container.demux(stream)
            if p.size and p.dts is not None and p.pts is not None
        ]
    return record, packets


@pytest.mark.ffmpeg
def test_enhanced_rtmp_hevc_round_trips_through_flv_tags(
    hevc_mp4: Path, make_clip: Callable[[str], Path]
) -> None:
    record, packets = _hevc_from_mp4(hevc_mp4)
    config = hevc.video_config_from_record(record)
    assert (config.codec, config.width, config.height) == ("h265", 854, 480)
    assert config.codec_string.startswith("hvc1.1.6.L")  # Main profile, compatible with 1 and 2
    units = [AccessUnit(TrackKind.VIDEO, d, p, data, k, WALLCLOCK) for d, p, k, data in packets]
    assert any(u.pts_ms != u.dts_ms for u in units) and any(u.pts_ms == u.dts_ms for u in units)
    muxer = flv.FlvTagMuxer()
    tags = [muxer.mux(config), *(muxer.mux(u) for u in units)]
    assert all(t.body[0] & 0x80 and t.body[1:5] == b"hvc1" for t in tags)
    assert _feed_all(flv.FlvTagDemuxer(), tags) == [config, *units]

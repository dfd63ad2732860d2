"""AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) and ADTS (1.A.2) parsing and building."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.media import aac, flv
from live.media.bits import BitWriter
from live.media.units import AccessUnit, AudioConfig, TrackKind

rates = st.sampled_from(aac.SAMPLE_RATES) | st.integers(1, (1 << 24) - 1)


@settings(max_examples=200)
@given(st.sampled_from([1, 2, 3, 4]), rates, st.sampled_from([1, 2, 3, 4, 5, 6, 8]))
def test_asc_build_then_parse_round_trips(object_type: int, rate: int, channels: int) -> None:
    record = aac.build_audio_specific_config(object_type, rate, channels)
    config = aac.audio_config_from_asc(record)
    assert (config.object_type, config.sample_rate, config.channels) == (
        object_type, rate, channels,
    )  # fmt: skip
    assert config.codec_string == f"mp4a.40.{object_type}"
    assert config.record == record
    # A table rate takes 2 bytes; an explicit (escape index 15) rate takes 24 more bits.
    assert len(record) == (2 if rate in aac.SAMPLE_RATES else 5)


@settings(max_examples=100)
@given(st.sampled_from([5, 29]), st.sampled_from([16000, 22050, 24000, 32000, 44100, 48000, 96000]))
def test_he_aac_asc_round_trips_with_output_rate_and_channels(object_type: int, rate: int) -> None:
    channels = 2
    record = aac.build_audio_specific_config(object_type, rate, channels)
    asc = aac.parse_audio_specific_config(record)
    assert (asc.object_type, asc.core_object_type) == (object_type, 2)
    assert (asc.sample_rate, asc.core_sample_rate, asc.channels) == (rate, rate // 2, 2)
    assert asc.channel_config == (1 if object_type == 29 else 2)
    assert asc.codec_string == f"mp4a.40.{object_type}"


def test_known_asc_vectors() -> None:
    lc_44k_stereo = aac.parse_audio_specific_config(b"\x12\x10")
    assert (lc_44k_stereo.object_type, lc_44k_stereo.sample_rate, lc_44k_stereo.channels) == (
        2, 44100, 2,
    )  # fmt: skip
    lc_48k_mono = aac.parse_audio_specific_config(b"\x11\x88")
    assert (lc_48k_mono.sample_rate, lc_48k_mono.channels) == (48000, 1)
    assert aac.build_audio_specific_config(2, 44100, 2) == b"\x12\x10"
    assert aac.build_audio_specific_config(2, 48000, 6) == b"\x11\xb0"


def test_object_type_escape_31_reads_six_more_bits() -> None:
    w = BitWriter()
    w.write_bits(31, 5)
    w.write_bits(42 - 32, 6)  # USAC
    w.write_bits(3, 4)  # 48 kHz
    w.write_bits(2, 4)  # stereo
    asc = aac.parse_audio_specific_config(w.getvalue())
    assert (asc.object_type, asc.sample_rate, asc.channels) == (42, 48000, 2)
    assert asc.codec_string == "mp4a.40.42"


def test_sample_rate_escape_15_reads_a_24_bit_rate() -> None:
    w = BitWriter()
    w.write_bits(2, 5)
    w.write_bits(15, 4)
    w.write_bits(37800, 24)
    w.write_bits(1, 4)
    w.write_bits(0, 3)
    asc = aac.parse_audio_specific_config(w.getvalue())
    assert (asc.sample_rate, asc.channels) == (37800, 1)


def test_channel_config_zero_counts_channels_in_the_program_config_element() -> None:
    w = BitWriter()
    w.write_bits(2, 5)
    w.write_bits(3, 4)
    w.write_bits(0, 4)  # channelConfiguration 0: a PCE follows the GASpecificConfig
    w.write_bits(0, 3)  # frameLengthFlag, dependsOnCoreCoder, extensionFlag
    w.write_bits(0, 4)  # element_instance_tag
    w.write_bits(1, 2)  # object_type
    w.write_bits(3, 4)  # sampling_frequency_index
    w.write_bits(2, 4)  # front elements: SCE + CPE
    w.write_bits(0, 4)  # side
    w.write_bits(1, 4)  # back: CPE
    w.write_bits(1, 2)  # LFE
    w.write_bits(0, 3)  # assoc data
    w.write_bits(0, 4)  # valid cc
    w.write_bits(0, 3)  # no mixdowns
    for is_cpe in (0, 1, 1):
        w.write_bits(is_cpe, 1)
        w.write_bits(0, 4)
    w.write_bits(0, 4)  # LFE tag
    asc = aac.parse_audio_specific_config(w.getvalue() + b"\x00")
    assert asc.channels == 6


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b"", "empty"),
        (b"\x12", "truncated"),
        (b"\x16\x90", "reserved"),  # samplingFrequencyIndex 13
        (b"\x11\x80\x00", "truncated"),  # channelConfiguration 0 but no whole PCE
        (b"\x11\xc8", "reserved"),  # channelConfiguration 9
        (b"\x01\x90", "object type 0"),
    ],
)
def test_bad_asc_raises_aac_error_with_reason(record: bytes, reason: str) -> None:
    with pytest.raises(aac.AacError, match=reason):
        aac.parse_audio_specific_config(record)


@settings(max_examples=200)
@given(st.binary(max_size=24))
def test_random_bytes_as_asc_raise_only_aac_error(data: bytes) -> None:
    try:
        aac.audio_config_from_asc(data)
    except aac.AacError:
        pass


@settings(max_examples=200)
@given(
    st.sampled_from([1, 2, 3, 4]),
    st.sampled_from(aac.SAMPLE_RATES),
    st.sampled_from([1, 2, 3, 4, 5, 6, 8]),
    st.integers(0, 8000),
)
def test_adts_header_build_then_parse_round_trips(
    object_type: int, rate: int, channels: int, payload_length: int
) -> None:
    config = aac.audio_config_from_asc(aac.build_audio_specific_config(object_type, rate, channels))
    header = aac.build_adts_header(config, payload_length)
    parsed = aac.parse_adts_header(header)
    assert parsed.payload_length == payload_length and parsed.header_length == 7
    assert aac.audio_config_from_adts(parsed) == config


def test_adts_from_ffmpeg_carries_the_same_blocks_as_flv(
    make_clip: Callable[[str], Path],
    run_ffmpeg: Callable[[str, tuple[str, ...], str], Path],
) -> None:
    source = make_clip("480p_odd_width_stereo")
    adts = run_ffmpeg("stereo.aac", ("-i", str(source), "-vn", "-c:a", "copy"), "adts")
    demuxer = flv.FlvTagDemuxer()
    events: list[object] = []
    for tag in flv.read_flv(source.read_bytes())[1]:
        events += demuxer.feed(tag.tag_type, tag.timestamp_ms, tag.body, 0.0)
    flv_config = next(e for e in events if isinstance(e, AudioConfig))
    flv_blocks = [
        e.data for e in events if isinstance(e, AccessUnit) and e.kind is TrackKind.AUDIO
    ]
    frames = list(aac.iter_adts_frames(adts.read_bytes()))
    assert [payload for _, payload in frames] == flv_blocks
    adts_config = aac.audio_config_from_adts(frames[0][0])
    assert (adts_config.sample_rate, adts_config.channels, adts_config.object_type) == (
        flv_config.sample_rate, flv_config.channels, flv_config.object_type,
    )  # fmt: skip


def test_truncated_adts_stream_is_reported() -> None:
    config = aac.audio_config_from_asc(b"\x12\x10")
    frame = aac.build_adts_header(config, 10) + bytes(10)
    assert len(list(aac.iter_adts_frames(frame * 3))) == 3
    with pytest.raises(aac.AacError, match="claims 17 bytes"):
        list(aac.iter_adts_frames(frame + frame[:12]))
    with pytest.raises(aac.AacError, match="syncword"):
        list(aac.iter_adts_frames(b"\x00" + frame))

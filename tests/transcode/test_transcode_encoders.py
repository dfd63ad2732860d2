"""Encoder probing/selection, x264 settings, and Annex B -> AVCC/avcC conversion."""

from __future__ import annotations

import shutil
import subprocess

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.media.bits import MediaFormatError, escape_rbsp
from live.transcode.avc import (
    annexb_to_avcc,
    avc_config_from_annexb,
    avcc_nal_types,
    split_annexb,
)
from live.transcode.encoders import (
    HARDWARE,
    EncoderChoice,
    EncoderSettings,
    encoder_options,
    open_encoder,
    probe_encoder,
    select_encoder,
    x264_params,
)
from live.transcode.hevc import codec_string as hevc_codec_string
from live.transcode.hevc import hevc_config_from_annexb
from live.transcode.ladder import LadderSettings, SourceInfo, build_ladder


def test_probe_of_an_encoder_ffmpeg_lacks_says_so() -> None:
    reason = probe_encoder("no_such_encoder_xyz")
    assert reason is not None and "not compiled" in reason


def test_probe_of_libx264_succeeds_with_a_real_encode() -> None:
    assert probe_encoder("libx264") is None


def test_hardware_encoder_is_chosen_only_when_its_test_encode_works() -> None:
    choice = select_encoder("h264")
    hw_failure = probe_encoder("h264_nvenc")
    if hw_failure is None:
        assert (choice.name, choice.hardware) == ("h264_nvenc", True)
    else:
        assert (choice.name, choice.hardware) == ("libx264", False)
        assert "h264_nvenc" in choice.reason


def test_software_choice_when_hardware_is_disabled() -> None:
    choice = select_encoder("h264", prefer_hardware=False)
    assert (choice.name, choice.hardware) == ("libx264", False)
    assert "disabled" in choice.reason


def test_h265_ladder_selects_an_hevc_encoder() -> None:
    choice = select_encoder("h265")
    assert choice.name in ("hevc_nvenc", "libx265") and choice.codec == "h265"


def test_x264_settings_are_low_latency_closed_gop_with_segment_keyint() -> None:
    rung = build_ladder(SourceInfo(1280, 720, 30.0)).rung("720p30")
    choice = select_encoder("h264", prefer_hardware=False)
    opts = encoder_options(choice, rung, EncoderSettings(preset="faster", segment_s=2.0))
    assert opts["preset"] == "faster" and opts["tune"] == "zerolatency"
    assert opts["forced-idr"] == "1"
    params = dict(kv.split("=") for kv in x264_params(rung, EncoderSettings()).split(":"))
    assert params["keyint"] == params["min-keyint"] == "60"
    assert params["bframes"] == "0" and params["scenecut"] == "0" and params["open-gop"] == "0"
    assert params["bitrate"] == "2500"


def test_opened_encoder_config_is_an_avcc_record_ffmpeg_accepts() -> None:
    rung = build_ladder(SourceInfo(640, 360, 30.0)).rung("360p30")
    ctx = open_encoder(select_encoder("h264", prefer_hardware=False), rung, EncoderSettings())
    config = avc_config_from_annexb(bytes(ctx.extradata or b""), rung.width, rung.height)
    record = config.record
    assert record[0] == 1 and record[4] == 0xFF and record[5] & 0x1F == 1
    assert config.codec_string == f"avc1.{record[1]:02x}{record[2]:02x}{record[3]:02x}"
    frame = av.VideoFrame(rung.width, rung.height, "yuv420p")
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.pts = 0
    packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    data = annexb_to_avcc(bytes(packets[0]))
    assert 5 in avcc_nal_types(data)
    decoder = av.CodecContext.create("h264", "r")
    decoder.extradata = record
    frames = decoder.decode(av.Packet(data)) + decoder.decode(None)
    assert [(f.width, f.height) for f in frames] == [(rung.width, rung.height)]


nal_payloads = st.lists(
    st.binary(min_size=1, max_size=64).map(lambda b: escape_rbsp(bytes([0x41]) + b + b"\x80")),
    min_size=1,
    max_size=8,
)


@given(nals=nal_payloads, long_codes=st.lists(st.booleans(), min_size=8, max_size=8))
@settings(max_examples=200)
def test_annexb_split_returns_every_nal_whatever_the_start_code_length(
    nals: list[bytes], long_codes: list[bool]
) -> None:
    stream = b"".join(
        (b"\x00\x00\x00\x01" if long_codes[i] else b"\x00\x00\x01") + nal for i, nal in enumerate(nals)
    )
    assert split_annexb(stream) == nals
    avcc = annexb_to_avcc(stream, drop_types=frozenset())
    assert avcc_nal_types(avcc) == [n[0] & 0x1F for n in nals]


def test_avcc_length_running_past_the_unit_is_a_format_error() -> None:
    with pytest.raises(MediaFormatError):
        avcc_nal_types(b"\x00\x00\x00\x09\x65\x00")


def test_extradata_without_parameter_sets_is_a_format_error() -> None:
    with pytest.raises(MediaFormatError):
        avc_config_from_annexb(b"\x00\x00\x01\x65\x88", 16, 16)


def test_hevc_codec_string_follows_iso_14496_15_annex_e() -> None:
    # Main profile, compatibility flags for profiles 1 and 2, level 3.1, progressive+frame-only
    ptl = bytes([0x01, 0x60, 0, 0, 0, 0xB0, 0, 0, 0, 0, 0, 93])
    assert hevc_codec_string(ptl) == "hvc1.1.6.L93.B0"
    high_tier = bytes([0x22, 0x20, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 120])
    assert hevc_codec_string(high_tier) == "hvc1.2.4.H120.90"


def test_hevc_extradata_without_parameter_sets_is_a_format_error() -> None:
    with pytest.raises(MediaFormatError):
        hevc_config_from_annexb(b"\x00\x00\x01\x40\x01\x0c", 16, 16)


# AVCodecContext options every encoder takes (libavcodec/options_table.h), not private ones.
_GENERIC = {"b", "maxrate", "bufsize", "g", "bf", "threads"}


@pytest.mark.ffmpeg
@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_nvenc_options_are_options_the_nvenc_encoders_define(codec: str) -> None:
    # No NVENC here to open, so check every private option name against FFmpeg's own table.
    if shutil.which("ffmpeg") is None:
        pytest.fail("Debian's ffmpeg CLI is required")
    choice = EncoderChoice(HARDWARE[codec], codec, True, "test")
    rung = build_ladder(SourceInfo(1280, 720, 30.0), LadderSettings(video_codec=codec)).encoded[0]
    options = encoder_options(choice, rung, EncoderSettings())
    help_text = subprocess.run(
        ["ffmpeg", "-hide_banner", "-h", f"encoder={choice.name}"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    defined = {line.split()[0][1:] for line in help_text.splitlines() if line.startswith("  -")}
    assert set(options) - _GENERIC <= defined
    assert options["bf"] == "0" and options["forced-idr"] == "1" and options["zerolatency"] == "1"
    assert options["g"] == "60"

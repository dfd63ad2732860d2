"""Encoder probing/selection, encoder settings, and encoder headers as decoder configs."""

from __future__ import annotations

import shutil
import subprocess

import av
import pytest
from live.media.avc import contains_idr
from live.media.bits import MediaFormatError
from live.transcode.avc import config_from_global_header, packet_to_avcc
from live.transcode.encoders import (
    HARDWARE,
    EncoderChoice,
    EncoderSettings,
    encoder_options,
    faster_preset,
    open_encoder,
    probe_encoder,
    select_encoder,
    x264_params,
)
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


@pytest.mark.parametrize(("codec", "decoder_name"), [("h264", "h264"), ("h265", "hevc")])
def test_encoder_header_becomes_a_record_ffmpeg_decodes_the_first_frame_with(
    codec: str, decoder_name: str
) -> None:
    settings = LadderSettings(video_codec=codec)
    rung = build_ladder(SourceInfo(640, 360, 30.0), settings).rung("360p30")
    ctx = open_encoder(select_encoder(codec, prefer_hardware=False), rung, EncoderSettings())
    config = config_from_global_header(codec, bytes(ctx.extradata or b""))
    assert (config.codec, config.width, config.height) == (codec, 640, 360)
    assert config.codec_string.startswith("avc1." if codec == "h264" else "hvc1.")
    assert config.record[0] == 1 and config.nal_length_size == 4
    frame = av.VideoFrame(rung.width, rung.height, "yuv420p")
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.pts = 0
    packets = list(ctx.encode(frame)) + list(ctx.encode(None))
    data = packet_to_avcc(bytes(packets[0]))
    if codec == "h264":
        assert contains_idr(data)
    decoder = av.CodecContext.create(decoder_name, "r")
    decoder.extradata = config.record
    frames = decoder.decode(av.Packet(data)) + decoder.decode(None)
    assert [(f.width, f.height) for f in frames] == [(rung.width, rung.height)]


def test_encoder_header_without_parameter_sets_is_a_format_error() -> None:
    with pytest.raises(MediaFormatError):
        config_from_global_header("h264", b"\x00\x00\x01\x65\x88")
    with pytest.raises(MediaFormatError):
        config_from_global_header("h265", b"\x00\x00\x01\x40\x01\x0c")
    with pytest.raises(ValueError, match="codec"):
        config_from_global_header("vp9", b"")


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


def test_every_faster_preset_keeps_the_parameter_sets_so_no_new_init_segment_is_needed() -> None:
    """The guard's first step reopens a rung's encoder with a faster preset at an IDR; players
    keep decoding with the init segment they have, so the SPS/PPS must stay byte-identical."""
    choice = EncoderChoice("libx264", "h264", False, "test")
    for rung in build_ladder(SourceInfo(1280, 720, 30.0)).encoded:
        settings = EncoderSettings()
        first = bytes(open_encoder(choice, rung, settings).extradata or b"")
        steps = []
        while (faster := faster_preset(choice, settings)) is not None:
            settings = faster
            steps.append(settings.preset)
            assert bytes(open_encoder(choice, rung, settings).extradata or b"") == first, settings.preset
        assert steps == ["superfast", "ultrafast"]


def test_only_x264_has_a_faster_preset_step() -> None:
    assert faster_preset(EncoderChoice("h264_nvenc", "h264", True, "test"), EncoderSettings()) is None
    assert faster_preset(EncoderChoice("libx264", "h264", False, "test"),
                         EncoderSettings(preset="ultrafast")) is None

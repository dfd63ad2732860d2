"""HEVCDecoderConfigurationRecord and SPS (ISO/IEC 14496-15 8.3.3.1, ITU-T H.265 7.3.2.2)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.media import hevc


@pytest.fixture(scope="module")
def hvcc(hevc_mp4: Path) -> tuple[bytes, int, int]:
    with av.open(str(hevc_mp4)) as container:
        ctx = container.streams.video[0].codec_context
        return bytes(ctx.extradata or b""), ctx.width, ctx.height


@pytest.mark.ffmpeg
def test_x265_record_gives_pyav_picture_size_and_codec_string(hvcc: tuple[bytes, int, int]) -> None:
    record, width, height = hvcc
    config = hevc.video_config_from_record(record)
    assert (config.width, config.height) == (width, height) == (854, 480)
    assert config.codec_string == "hvc1.1.6.L90.90"  # Main, level 3, progressive/frame-only
    assert config.nal_length_size == 4 and config.profile_idc == 1 and config.level_idc == 90
    assert [hevc.nal_unit_type(n) for n in config.sps] == [hevc.NAL_SPS]
    assert [hevc.nal_unit_type(n) for n in config.pps] == [hevc.NAL_PPS]


@pytest.mark.ffmpeg
@pytest.mark.parametrize("nal_length_size", [1, 2, 4])
def test_record_rebuilt_from_parameter_sets_parses_to_the_same_fields(
    hvcc: tuple[bytes, int, int], nal_length_size: int
) -> None:
    original = hevc.parse_hevc_record(hvcc[0])
    vps, sps, pps = (original.nal_units(t) for t in (hevc.NAL_VPS, hevc.NAL_SPS, hevc.NAL_PPS))
    rebuilt = hevc.parse_hevc_record(hevc.build_hevc_record(vps, sps, pps, nal_length_size))
    assert rebuilt.codec_string == original.codec_string
    assert (rebuilt.chroma_format_idc, rebuilt.bit_depth_luma, rebuilt.bit_depth_chroma) == (
        original.chroma_format_idc, original.bit_depth_luma, original.bit_depth_chroma,
    )  # fmt: skip
    assert rebuilt.nal_length_size == nal_length_size
    assert rebuilt.arrays == ((hevc.NAL_VPS, vps), (hevc.NAL_SPS, sps), (hevc.NAL_PPS, pps))


def test_codec_string_follows_14496_15_annex_e() -> None:
    # Main 10, compatible with profile 2 only, main tier level 4.1, progressive source flag.
    assert hevc.codec_string(0, 0, 2, 0x20000000, 123, b"\xb0\x00\x00\x00\x00\x00") == (
        "hvc1.2.4.L123.B0"
    )
    assert hevc.codec_string(1, 1, 1, 0x60000000, 150, bytes(6)) == "hvc1.A1.6.H150"


@settings(max_examples=200)
@given(st.binary(max_size=96))
def test_random_bytes_as_record_raise_only_hevc_error(data: bytes) -> None:
    try:
        hevc.video_config_from_record(b"\x01" + data)
    except hevc.HevcError:
        pass


@pytest.mark.ffmpeg
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_truncated_or_mutated_sps_raises_only_hevc_error(
    hvcc: tuple[bytes, int, int], data: st.DataObject
) -> None:
    sps = bytearray(hevc.parse_hevc_record(hvcc[0]).nal_units(hevc.NAL_SPS)[0])
    if data.draw(st.booleans()):
        sps = sps[: data.draw(st.integers(0, len(sps)))]
    else:
        sps[data.draw(st.integers(0, len(sps) - 1))] ^= data.draw(st.integers(1, 255))
    try:
        hevc.parse_hevc_sps(bytes(sps))
    except hevc.HevcError:
        pass


HEVC_VARIANTS = {
    # Two temporal sub-layers (profile_tier_level sub-layer fields) and a conformance window.
    "hevc_1080p_sublayers.mp4": (
        "1920x1080", ("-preset", "ultrafast", "-x265-params",
                      "log-level=error:temporal-layers=1:bframes=3:keyint=25"),
        1, 8, "hvc1.1.6.L120.90",
    ),
    "hevc_main10_odd.mp4": (
        "426x240", ("-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-x265-params",
                    "log-level=error"),
        2, 10, "hvc1.2.4.L",
    ),
}  # fmt: skip


@pytest.mark.ffmpeg
@pytest.mark.parametrize("name", list(HEVC_VARIANTS))
def test_x265_variants_parse_to_pyav_size_profile_and_bit_depth(
    name: str, run_ffmpeg: Callable[[str, tuple[str, ...], str], Path]
) -> None:
    size, options, profile, depth, codec_prefix = HEVC_VARIANTS[name]
    path = run_ffmpeg(
        name,
        ("-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25", "-t", "0.4", "-c:v", "libx265",
         *options, "-tag:v", "hvc1"),
        "mp4",
    )  # fmt: skip
    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        record, width, height = bytes(ctx.extradata or b""), ctx.width, ctx.height
    config = hevc.video_config_from_record(record)
    assert (config.width, config.height) == (width, height) == tuple(map(int, size.split("x")))
    assert config.profile_idc == profile
    assert config.codec_string.startswith(codec_prefix)
    sps = hevc.parse_hevc_sps(config.sps[0])
    assert (sps.bit_depth_luma, sps.bit_depth_chroma) == (depth, depth)
    parsed = hevc.parse_hevc_record(record)
    assert (parsed.bit_depth_luma, parsed.profile_idc) == (depth, profile)

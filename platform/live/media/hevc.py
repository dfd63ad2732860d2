"""H.265/HEVC: the HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1) and enough of
the SPS (ITU-T H.265 7.3.2.2.1) for the picture size, for Enhanced RTMP ``hvc1`` streams.

Malformed input raises ``HevcError`` (a ``MediaFormatError``) and nothing else.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from live.media.bits import BitReader, BitstreamError, MediaFormatError, unescape_rbsp
from live.media.units import VideoConfig

NAL_VPS = 32
NAL_SPS = 33
NAL_PPS = 34
_IRAP_TYPES = range(16, 24)  # BLA, IDR, CRA (H.265 Table 7-1)
_RECORD_HEADER_SIZE = 23
_U16 = struct.Struct(">H")


class HevcError(MediaFormatError):
    """Malformed H.265 configuration record or parameter set."""


@dataclass(frozen=True, slots=True)
class HevcRecord:
    """The fields of an HEVCDecoderConfigurationRecord (14496-15 8.3.3.1.2)."""

    profile_space: int
    tier_flag: int
    profile_idc: int
    profile_compatibility_flags: int  # 32 bits, flag j in bit 31 - j
    constraint_indicator_flags: bytes  # 6 bytes
    level_idc: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    nal_length_size: int
    arrays: tuple[tuple[int, tuple[bytes, ...]], ...]  # (NAL unit type, NAL units)

    def nal_units(self, nal_type: int) -> tuple[bytes, ...]:
        return tuple(nal for kind, nals in self.arrays if kind == nal_type for nal in nals)

    @property
    def codec_string(self) -> str:
        return codec_string(
            self.profile_space,
            self.tier_flag,
            self.profile_idc,
            self.profile_compatibility_flags,
            self.level_idc,
            self.constraint_indicator_flags,
        )


@dataclass(frozen=True, slots=True)
class HevcSps:
    profile_idc: int
    level_idc: int
    chroma_format_idc: int
    width: int  # after the conformance window
    height: int
    bit_depth_luma: int
    bit_depth_chroma: int


def codec_string(
    profile_space: int,
    tier_flag: int,
    profile_idc: int,
    compatibility_flags: int,
    level_idc: int,
    constraint_flags: bytes,
) -> str:
    """ISO/IEC 14496-15 E.3: ``hvc1.[A-C]<profile>.<compat, bit-reversed hex>.<L|H><level>``
    followed by the constraint bytes, trailing zero bytes omitted (e.g. ``hvc1.1.6.L93.B0``)."""
    space = ("", "A", "B", "C")[profile_space]
    reversed_compat = int(f"{compatibility_flags:032b}"[::-1], 2)
    parts = [
        "hvc1",
        f"{space}{profile_idc}",
        f"{reversed_compat:X}",
        f"{'H' if tier_flag else 'L'}{level_idc}",
    ]
    constraint = bytes(constraint_flags).rstrip(b"\x00")
    parts.extend(f"{byte:02X}" for byte in constraint)
    return ".".join(parts)


def nal_unit_type(nal: bytes | bytearray | memoryview) -> int:
    if len(nal) < 2:
        raise HevcError(f"HEVC NAL unit of {len(nal)} bytes has no complete header")
    return (nal[0] >> 1) & 0x3F


def is_irap(nal: bytes | bytearray | memoryview) -> bool:
    """Whether a NAL unit is an IRAP picture's slice (a random access point)."""
    return nal_unit_type(nal) in _IRAP_TYPES


def parse_hevc_record(record: bytes | bytearray | memoryview) -> HevcRecord:
    data = bytes(record)
    if len(data) < _RECORD_HEADER_SIZE:
        raise HevcError(f"HEVCDecoderConfigurationRecord of {len(data)} bytes is too short")
    if data[0] != 1:
        raise HevcError(f"configurationVersion {data[0]} is not 1")
    length_size = (data[21] & 0x03) + 1
    if length_size == 3:
        raise HevcError("lengthSizeMinusOne 2 is not allowed (only 1, 2 or 4 byte lengths)")
    arrays: list[tuple[int, tuple[bytes, ...]]] = []
    pos = _RECORD_HEADER_SIZE
    for index in range(data[22]):
        if pos + 3 > len(data):
            raise HevcError(f"record ends inside the header of NAL array #{index}")
        nal_type = data[pos] & 0x3F
        (count,) = _U16.unpack_from(data, pos + 1)
        pos += 3
        nals: list[bytes] = []
        for n in range(count):
            if pos + 2 > len(data):
                raise HevcError(f"record ends inside the length of NAL unit {n} of array #{index}")
            (length,) = _U16.unpack_from(data, pos)
            pos += 2
            if length < 2 or pos + length > len(data):
                raise HevcError(
                    f"NAL unit {n} of array #{index} claims {length} bytes, "
                    f"{len(data) - pos} left"
                )
            nals.append(data[pos : pos + length])
            pos += length
        arrays.append((nal_type, tuple(nals)))
    return HevcRecord(
        profile_space=data[1] >> 6,
        tier_flag=(data[1] >> 5) & 1,
        profile_idc=data[1] & 0x1F,
        profile_compatibility_flags=int.from_bytes(data[2:6], "big"),
        constraint_indicator_flags=data[6:12],
        level_idc=data[12],
        chroma_format_idc=data[16] & 0x03,
        bit_depth_luma=(data[17] & 0x07) + 8,
        bit_depth_chroma=(data[18] & 0x07) + 8,
        nal_length_size=length_size,
        arrays=tuple(arrays),
    )


def _skip_profile_tier_level(r: BitReader, max_sub_layers_minus1: int) -> tuple[int, int]:
    """H.265 7.3.3 profile_tier_level(1, ...); returns (general_profile_idc, general_level_idc)."""
    r.skip_bits(3)  # general_profile_space, general_tier_flag
    profile_idc = r.read_bits(5)
    r.skip_bits(32 + 48)  # compatibility flags, constraint and reserved flags
    level_idc = r.read_bits(8)
    present = [(r.read_flag(), r.read_flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        r.skip_bits(2 * (8 - max_sub_layers_minus1))
    for profile_present, level_present in present:
        if profile_present:
            r.skip_bits(88)
        if level_present:
            r.skip_bits(8)
    return profile_idc, level_idc


def parse_hevc_sps(nal: bytes | bytearray | memoryview) -> HevcSps:
    data = bytes(nal)
    if nal_unit_type(data) != NAL_SPS:
        raise HevcError(f"NAL unit type {nal_unit_type(data)} is not an SPS ({NAL_SPS})")
    r = BitReader(unescape_rbsp(data[2:]))
    try:
        r.skip_bits(4)  # sps_video_parameter_set_id
        max_sub_layers_minus1 = r.read_bits(3)
        if max_sub_layers_minus1 > 6:
            raise HevcError(f"sps_max_sub_layers_minus1 {max_sub_layers_minus1} exceeds 6")
        r.skip_bits(1)  # sps_temporal_id_nesting_flag
        profile_idc, level_idc = _skip_profile_tier_level(r, max_sub_layers_minus1)
        if r.read_ue() > 15:
            raise HevcError("sps_seq_parameter_set_id exceeds 15")
        chroma_format_idc = r.read_ue()
        if chroma_format_idc > 3:
            raise HevcError(f"chroma_format_idc {chroma_format_idc} exceeds 3")
        separate_planes = r.read_flag() if chroma_format_idc == 3 else False
        width = r.read_ue()
        height = r.read_ue()
        if not (0 < width <= 1 << 16 and 0 < height <= 1 << 16):
            raise HevcError(f"picture size {width}x{height} is out of range")
        if r.read_flag():  # conformance_window_flag
            chroma_array_type = 0 if separate_planes else chroma_format_idc
            sub_w, sub_h = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}[chroma_array_type]
            left, right, top, bottom = r.read_ue(), r.read_ue(), r.read_ue(), r.read_ue()
            width -= sub_w * (left + right)
            height -= sub_h * (top + bottom)
            if width <= 0 or height <= 0:
                raise HevcError("conformance window leaves no picture")
        bit_depth_luma = 8 + r.read_ue()
        bit_depth_chroma = 8 + r.read_ue()
    except BitstreamError as exc:
        raise HevcError(f"truncated HEVC SPS: {exc}") from exc
    return HevcSps(
        profile_idc=profile_idc,
        level_idc=level_idc,
        chroma_format_idc=chroma_format_idc,
        width=width,
        height=height,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
    )


def video_config_from_record(record: bytes | bytearray | memoryview) -> VideoConfig:
    parsed = parse_hevc_record(record)
    sps_list = parsed.nal_units(NAL_SPS)
    if not sps_list:
        raise HevcError("HEVCDecoderConfigurationRecord holds no SPS")
    sps = parse_hevc_sps(sps_list[0])
    return VideoConfig(
        codec="h265",
        codec_string=parsed.codec_string,
        width=sps.width,
        height=sps.height,
        record=bytes(record),
        sps=sps_list,
        pps=parsed.nal_units(NAL_PPS),
        nal_length_size=parsed.nal_length_size,
        profile_idc=parsed.profile_idc,
        level_idc=parsed.level_idc,
    )


def build_hevc_record(
    vps: Sequence[bytes], sps: Sequence[bytes], pps: Sequence[bytes], nal_length_size: int = 4
) -> bytes:
    """An HEVCDecoderConfigurationRecord whose profile/tier/level fields are copied from the
    first SPS's profile_tier_level (14496-15 8.3.3.1.3)."""
    if nal_length_size not in (1, 2, 4):
        raise ValueError(f"nal_length_size must be 1, 2 or 4, not {nal_length_size}")
    if not (vps and sps and pps):
        raise ValueError("an HEVC record needs a VPS, an SPS and a PPS")
    parsed = parse_hevc_sps(sps[0])
    rbsp = unescape_rbsp(sps[0][2:])
    if len(rbsp) < 13:
        raise HevcError("SPS too short for profile_tier_level")
    ptl = rbsp[1:13]  # 12 bytes: space/tier/profile, compat(4), constraints(6), level
    out = bytearray([1]) + ptl
    # min_spatial_segmentation_idc 0, parallelismType 0, then chroma format and bit depths.
    out += bytes([0xF0, 0x00, 0xFC, 0xFC | parsed.chroma_format_idc])
    out += bytes([0xF8 | (parsed.bit_depth_luma - 8), 0xF8 | (parsed.bit_depth_chroma - 8)])
    out += b"\x00\x00"  # avgFrameRate unspecified
    out.append((1 << 3) | (nal_length_size - 1))  # constantFrameRate 0, one temporal layer
    arrays = [(NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)]
    out.append(len(arrays))
    for nal_type, nals in arrays:
        out.append(0x80 | nal_type)
        out += _U16.pack(len(nals))
        for nal in nals:
            out += _U16.pack(len(nal))
            out += nal
    return bytes(out)

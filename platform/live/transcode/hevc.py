"""H.265 encoder output turned into an ``hvcC`` VideoConfig (the optional H.265 ladder).

An HEVC encoder's global header is an Annex B run of VPS/SPS/PPS. The HEVCDecoderConfiguration
Record (ISO/IEC 14496-15 8.3.3.1) repeats the SPS's profile_tier_level (ITU-T H.265 7.3.3), its
chroma format and bit depths (7.3.2.2), then lists the parameter sets in arrays. The sample entry
is ``hvc1`` (parameter sets only in the record), so ``array_completeness`` is 1.
"""

from __future__ import annotations

from live.media.bits import BitReader, MediaFormatError, unescape_rbsp
from live.media.units import VideoConfig
from live.transcode.avc import split_annexb

NAL_VPS, NAL_SPS, NAL_PPS = 32, 33, 34


def nal_type(nal: bytes) -> int:
    """nal_unit_type from the two-byte HEVC NAL unit header (H.265 7.3.1.2)."""
    return (nal[0] >> 1) & 0x3F


def _profile_tier_level(reader: BitReader, max_sub_layers_minus1: int) -> bytes:
    """The 12 general bytes of profile_tier_level (H.265 7.3.3); sub-layer fields skipped."""
    general = bytes(reader.read_bits(8) for _ in range(12))
    present = [(reader.read_flag(), reader.read_flag()) for _ in range(max_sub_layers_minus1)]
    if max_sub_layers_minus1 > 0:
        reader.skip_bits(2 * (8 - max_sub_layers_minus1))
    for profile_present, level_present in present:
        reader.skip_bits(88 * profile_present + 8 * level_present)
    return general


def _sps_fields(sps: bytes) -> tuple[bytes, int, int, int, int, int]:
    """PTL bytes, chroma_format_idc, bit depths - 8, temporal layers, temporal_id_nesting."""
    reader = BitReader(unescape_rbsp(sps[2:]))
    reader.read_bits(4)  # sps_video_parameter_set_id
    max_sub_layers_minus1 = reader.read_bits(3)
    nesting = reader.read_bit()
    ptl = _profile_tier_level(reader, max_sub_layers_minus1)
    reader.read_ue()  # sps_seq_parameter_set_id
    chroma = reader.read_ue()
    if chroma == 3:
        reader.read_bit()
    reader.read_ue()  # pic_width_in_luma_samples
    reader.read_ue()  # pic_height_in_luma_samples
    if reader.read_flag():  # conformance_window_flag
        for _ in range(4):
            reader.read_ue()
    depth_luma, depth_chroma = reader.read_ue(), reader.read_ue()
    return ptl, chroma, depth_luma, depth_chroma, max_sub_layers_minus1 + 1, nesting


def codec_string(ptl: bytes) -> str:
    """RFC 6381 / ISO/IEC 14496-15 E.3 CODECS value, e.g. ``hvc1.1.6.L93.B0``."""
    space = "" if ptl[0] >> 6 == 0 else "ABC"[(ptl[0] >> 6) - 1]
    profile = ptl[0] & 0x1F
    compat = int.from_bytes(ptl[1:5], "big")
    reversed_compat = int(f"{compat:032b}"[::-1], 2)
    tier = "H" if ptl[0] & 0x20 else "L"
    constraints = ptl[5:11].rstrip(b"\x00")
    parts = [f"hvc1.{space}{profile}", f"{reversed_compat:X}", f"{tier}{ptl[11]}"]
    parts += [f"{b:X}" for b in constraints]
    return ".".join(parts)


def hevc_config_from_annexb(extradata: bytes, width: int, height: int) -> VideoConfig:
    """Build the VideoConfig (with its hvcC record) from an HEVC encoder's global header."""
    nals = split_annexb(extradata)
    arrays = {t: [n for n in nals if len(n) > 2 and nal_type(n) == t] for t in (32, 33, 34)}
    if not arrays[NAL_VPS] or not arrays[NAL_SPS] or not arrays[NAL_PPS]:
        raise MediaFormatError("encoder extradata holds no VPS, SPS and PPS")
    ptl, chroma, depth_luma, depth_chroma, layers, nesting = _sps_fields(arrays[NAL_SPS][0])
    record = bytearray([1])
    record += ptl  # profile_space..profile_idc, compatibility, constraints, level
    record += bytes([0xF0, 0x00, 0xFC, 0xFC | chroma, 0xF8 | depth_luma, 0xF8 | depth_chroma])
    record += b"\x00\x00"  # avgFrameRate unspecified
    record.append((layers & 7) << 3 | nesting << 2 | 3)  # lengthSizeMinusOne = 3
    record.append(3)
    for kind in (NAL_VPS, NAL_SPS, NAL_PPS):
        record.append(0x80 | kind)  # array_completeness = 1
        record += len(arrays[kind]).to_bytes(2, "big")
        for nal in arrays[kind]:
            record += len(nal).to_bytes(2, "big") + nal
    return VideoConfig(
        codec="h265",
        codec_string=codec_string(ptl),
        width=width,
        height=height,
        record=bytes(record),
        sps=tuple(arrays[NAL_SPS]),
        pps=tuple(arrays[NAL_PPS]),
        nal_length_size=4,
        profile_idc=ptl[0] & 0x1F,
        level_idc=ptl[11],
    )

"""What an encoder emits (Annex B byte streams) turned into what the rest of the path carries.

Encoders write H.264 as an Annex B byte stream (ITU-T H.264 Annex B: start-code prefixed NAL
units) and, with a global header, the SPS/PPS the same way. ``AccessUnit`` carries AVCC
(length-prefixed NAL units) and ``VideoConfig`` the AVCDecoderConfigurationRecord
(ISO/IEC 14496-15 5.3.3.1), so both are rewritten here. Pure functions, no I/O.
"""

from __future__ import annotations

from live.media.bits import BitReader, MediaFormatError, unescape_rbsp
from live.media.units import VideoConfig

NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
NAL_IDR = 5

# profile_idc values whose AVCDecoderConfigurationRecord carries chroma/bit-depth fields
# (ISO/IEC 14496-15 5.3.3.1.1) and whose SPS carries chroma_format_idc (H.264 7.3.2.1.1).
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex B stream (3- or 4-byte start codes), without their start codes."""
    nals: list[bytes] = []
    n = len(data)
    i = data.find(b"\x00\x00\x01")
    while i >= 0:
        start = i + 3
        nxt = data.find(b"\x00\x00\x01", start)
        end = n if nxt < 0 else nxt
        # a 4-byte start code's leading zero and trailing_zero_8bits belong to no NAL (B.1.1);
        # a NAL unit never ends in 0x00 (rbsp_trailing_bits, H.264 7.4.1)
        nal_end = end
        while nal_end > start and data[nal_end - 1] == 0:
            nal_end -= 1
        if nal_end > start:
            nals.append(data[start:nal_end])
        i = nxt
    return nals


def annexb_to_avcc(data: bytes, *, drop_types: frozenset[int] = frozenset({NAL_AUD})) -> bytes:
    """Rewrite start codes as 4-byte big-endian lengths, dropping access unit delimiters."""
    out = bytearray()
    for nal in split_annexb(data):
        if nal[0] & 0x1F in drop_types:
            continue
        out += len(nal).to_bytes(4, "big")
        out += nal
    return bytes(out)


def _sps_chroma(sps: bytes) -> tuple[int, int, int]:
    """chroma_format_idc, bit_depth_luma_minus8, bit_depth_chroma_minus8 (H.264 7.3.2.1.1)."""
    profile_idc = sps[1]
    if profile_idc not in _HIGH_PROFILES:
        return 1, 0, 0
    reader = BitReader(unescape_rbsp(sps[4:]))
    reader.read_ue()  # seq_parameter_set_id
    chroma = reader.read_ue()
    if chroma == 3:
        reader.read_bit()  # separate_colour_plane_flag
    return chroma, reader.read_ue(), reader.read_ue()


def avc_config_from_annexb(extradata: bytes, width: int, height: int) -> VideoConfig:
    """Build the VideoConfig (with its avcC record) from an encoder's Annex B global header."""
    nals = split_annexb(extradata)
    sps = [n for n in nals if n[0] & 0x1F == NAL_SPS]
    pps = [n for n in nals if n[0] & 0x1F == NAL_PPS]
    if not sps or not pps or len(sps[0]) < 4:
        raise MediaFormatError("encoder extradata holds no usable SPS and PPS")
    first = sps[0]
    profile, compat, level = first[1], first[2], first[3]
    record = bytearray([1, profile, compat, level, 0xFC | 3, 0xE0 | len(sps)])
    for nal in sps:
        record += len(nal).to_bytes(2, "big") + nal
    record.append(len(pps))
    for nal in pps:
        record += len(nal).to_bytes(2, "big") + nal
    if profile in _HIGH_PROFILES:
        chroma, depth_luma, depth_chroma = _sps_chroma(first)
        record += bytes([0xFC | chroma, 0xF8 | depth_luma, 0xF8 | depth_chroma, 0])
    return VideoConfig(
        codec="h264",
        codec_string=f"avc1.{profile:02x}{compat:02x}{level:02x}",
        width=width,
        height=height,
        record=bytes(record),
        sps=tuple(sps),
        pps=tuple(pps),
        nal_length_size=4,
        profile_idc=profile,
        level_idc=level,
    )


def avcc_nal_types(data: bytes, nal_length_size: int = 4) -> list[int]:
    """nal_unit_type of every NAL unit in an AVCC access unit."""
    types: list[int] = []
    pos = 0
    while pos + nal_length_size <= len(data):
        size = int.from_bytes(data[pos : pos + nal_length_size], "big")
        pos += nal_length_size
        if size == 0 or pos + size > len(data):
            raise MediaFormatError(f"AVCC NAL length {size} runs past the access unit")
        types.append(data[pos] & 0x1F)
        pos += size
    return types

"""H.264/AVC: decoder configuration records, sequence parameter sets and NAL unit framing.

FLV and MP4 carry H.264 as an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) plus
access units of length-prefixed NAL units ("AVCC"); encoders and MPEG-TS write Annex B byte
streams with start codes instead (ITU-T H.264 Annex B). Everything here is pure: bytes in,
values out, and malformed input raises ``AvcError`` (a ``MediaFormatError``) and nothing else.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from live.media.bits import BitReader, BitstreamError, MediaFormatError, unescape_rbsp
from live.media.units import VideoConfig

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
NAL_END_OF_SEQUENCE = 10
NAL_SPS_EXT = 13

# H.264 7.3.2.1.1: profiles whose SPS carries chroma_format_idc, bit depths and scaling lists.
HIGH_PROFILES_WITH_CHROMA_INFO = frozenset(
    {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}
)
# ISO/IEC 14496-15 5.3.3.1.2 (2014 and later): every profile but Baseline, Main and Extended
# has the chroma/bit-depth extension in its record (the first edition listed 100/110/122/144
# only; FFmpeg writes it for all, e.g. High 4:4:4 Predictive, 244).
_PROFILES_WITHOUT_RECORD_EXTENSION = frozenset({66, 77, 88})

_U16 = struct.Struct(">H")
_MAX_DIMENSION = 1 << 16


class AvcError(MediaFormatError):
    """Malformed H.264 configuration record, parameter set or NAL framing."""


@dataclass(frozen=True, slots=True)
class AvcRecord:
    """The fields of an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1.2)."""

    profile_idc: int
    profile_compatibility: int
    level_idc: int
    nal_length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    chroma_format_idc: int | None = None
    bit_depth_luma: int | None = None
    bit_depth_chroma: int | None = None
    sps_ext: tuple[bytes, ...] = ()

    @property
    def codec_string(self) -> str:
        return codec_string(self.profile_idc, self.profile_compatibility, self.level_idc)


@dataclass(frozen=True, slots=True)
class Sps:
    """The parts of a sequence parameter set (H.264 7.3.2.1.1) later stages need."""

    profile_idc: int
    constraint_flags: int  # constraint_set0..5 flags and reserved_zero_2bits, as one byte
    level_idc: int
    sps_id: int
    chroma_format_idc: int
    separate_colour_plane: bool
    bit_depth_luma: int
    bit_depth_chroma: int
    log2_max_frame_num: int
    pic_order_cnt_type: int
    max_num_ref_frames: int
    frame_mbs_only: bool
    width: int  # after frame cropping
    height: int
    crop: tuple[int, int, int, int]  # left, right, top, bottom offsets in crop units
    sar: tuple[int, int] | None = None  # sample aspect ratio from the VUI
    timing: tuple[int, int] | None = None  # num_units_in_tick, time_scale from the VUI
    fixed_frame_rate: bool = False

    @property
    def frame_rate(self) -> float | None:
        """Frames per second from VUI timing (E.2.1: a frame is two ticks), if signalled."""
        if self.timing is None or self.timing[0] == 0:
            return None
        return self.timing[1] / (2 * self.timing[0])


# Table E-1: aspect_ratio_idc to sample aspect ratio.
_SAR_TABLE: dict[int, tuple[int, int]] = {
    1: (1, 1), 2: (12, 11), 3: (10, 11), 4: (16, 11), 5: (40, 33), 6: (24, 11), 7: (20, 11),
    8: (32, 11), 9: (80, 33), 10: (18, 11), 11: (15, 11), 12: (64, 33), 13: (160, 99),
    14: (4, 3), 15: (3, 2), 16: (2, 1),
}  # fmt: skip


def codec_string(profile_idc: int, profile_compatibility: int, level_idc: int) -> str:
    """RFC 6381 3.3 ``avc1.PPCCLL``: profile, constraint byte and level as hex."""
    return f"avc1.{profile_idc:02x}{profile_compatibility:02x}{level_idc:02x}"


def nal_unit_type(nal: bytes | bytearray | memoryview) -> int:
    if not nal:
        raise AvcError("empty NAL unit")
    return nal[0] & 0x1F


def _skip_scaling_list(reader: BitReader, size: int) -> None:
    """H.264 7.3.2.1.1.1 scaling_list(): only its length matters to us."""
    last_scale = 8
    next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            delta = reader.read_se()
            if not -128 <= delta <= 127:
                raise AvcError(f"delta_scale {delta} outside -128..127")
            next_scale = (last_scale + delta + 256) % 256
        last_scale = next_scale if next_scale != 0 else last_scale


def _read_ue_max(reader: BitReader, name: str, maximum: int) -> int:
    value = reader.read_ue()
    if value > maximum:
        raise AvcError(f"{name} {value} exceeds {maximum}")
    return value


def parse_sps(nal: bytes | bytearray | memoryview) -> Sps:
    """Parse a sequence parameter set NAL unit (with its one-byte NAL header)."""
    data = bytes(nal)
    if len(data) < 4:
        raise AvcError(f"SPS of {len(data)} bytes is too short")
    if data[0] & 0x80:
        raise AvcError("SPS NAL header has forbidden_zero_bit set")
    if data[0] & 0x1F != NAL_SPS:
        raise AvcError(f"NAL unit type {data[0] & 0x1F} is not an SPS ({NAL_SPS})")
    reader = BitReader(unescape_rbsp(data[1:]))
    try:
        return _parse_sps_rbsp(reader)
    except BitstreamError as exc:
        raise AvcError(f"truncated SPS: {exc}") from exc


def _parse_sps_rbsp(r: BitReader) -> Sps:
    profile_idc = r.read_bits(8)
    constraint_flags = r.read_bits(8)
    level_idc = r.read_bits(8)
    sps_id = _read_ue_max(r, "seq_parameter_set_id", 31)
    chroma_format_idc = 1
    separate_colour_plane = False
    bit_depth_luma = bit_depth_chroma = 8
    if profile_idc in HIGH_PROFILES_WITH_CHROMA_INFO:
        chroma_format_idc = _read_ue_max(r, "chroma_format_idc", 3)
        if chroma_format_idc == 3:
            separate_colour_plane = r.read_flag()
        bit_depth_luma = 8 + _read_ue_max(r, "bit_depth_luma_minus8", 6)
        bit_depth_chroma = 8 + _read_ue_max(r, "bit_depth_chroma_minus8", 6)
        r.skip_bits(1)  # qpprime_y_zero_transform_bypass_flag
        if r.read_flag():  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format_idc != 3 else 12):
                if r.read_flag():
                    _skip_scaling_list(r, 16 if i < 6 else 64)
    log2_max_frame_num = 4 + _read_ue_max(r, "log2_max_frame_num_minus4", 12)
    pic_order_cnt_type = _read_ue_max(r, "pic_order_cnt_type", 2)
    if pic_order_cnt_type == 0:
        _read_ue_max(r, "log2_max_pic_order_cnt_lsb_minus4", 12)
    elif pic_order_cnt_type == 1:
        r.skip_bits(1)  # delta_pic_order_always_zero_flag
        r.read_se()  # offset_for_non_ref_pic
        r.read_se()  # offset_for_top_to_bottom_field
        cycle = _read_ue_max(r, "num_ref_frames_in_pic_order_cnt_cycle", 255)
        for _ in range(cycle):
            r.read_se()
    max_num_ref_frames = _read_ue_max(r, "max_num_ref_frames", 16)
    r.skip_bits(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = 1 + _read_ue_max(r, "pic_width_in_mbs_minus1", _MAX_DIMENSION // 16)
    height_map_units = 1 + _read_ue_max(r, "pic_height_in_map_units_minus1", _MAX_DIMENSION // 16)
    frame_mbs_only = r.read_flag()
    if not frame_mbs_only:
        r.skip_bits(1)  # mb_adaptive_frame_field_flag
    r.skip_bits(1)  # direct_8x8_inference_flag
    crop = (0, 0, 0, 0)
    if r.read_flag():  # frame_cropping_flag
        crop = (r.read_ue(), r.read_ue(), r.read_ue(), r.read_ue())
    # 7.4.2.1.1: crop units depend on ChromaArrayType and field coding.
    chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
    sub_width, sub_height = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}[chroma_array_type]
    crop_unit_x = sub_width
    crop_unit_y = sub_height * (2 - int(frame_mbs_only))
    coded_width = width_mbs * 16
    coded_height = (2 - int(frame_mbs_only)) * height_map_units * 16
    width = coded_width - crop_unit_x * (crop[0] + crop[1])
    height = coded_height - crop_unit_y * (crop[2] + crop[3])
    if width <= 0 or height <= 0:
        raise AvcError(f"frame cropping {crop} leaves no picture of {coded_width}x{coded_height}")
    sar: tuple[int, int] | None = None
    timing: tuple[int, int] | None = None
    fixed_frame_rate = False
    if r.read_flag():  # vui_parameters_present_flag: E.1.1 up to timing_info
        if r.read_flag():  # aspect_ratio_info_present_flag
            idc = r.read_bits(8)
            sar = (r.read_bits(16), r.read_bits(16)) if idc == 255 else _SAR_TABLE.get(idc)
        if r.read_flag():  # overscan_info_present_flag
            r.skip_bits(1)
        if r.read_flag():  # video_signal_type_present_flag
            r.skip_bits(4)  # video_format, video_full_range_flag
            if r.read_flag():  # colour_description_present_flag
                r.skip_bits(24)
        if r.read_flag():  # chroma_loc_info_present_flag
            r.read_ue()
            r.read_ue()
        if r.read_flag():  # timing_info_present_flag
            timing = (r.read_bits(32), r.read_bits(32))
            fixed_frame_rate = r.read_flag()
    return Sps(
        profile_idc=profile_idc,
        constraint_flags=constraint_flags,
        level_idc=level_idc,
        sps_id=sps_id,
        chroma_format_idc=chroma_format_idc,
        separate_colour_plane=separate_colour_plane,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
        log2_max_frame_num=log2_max_frame_num,
        pic_order_cnt_type=pic_order_cnt_type,
        max_num_ref_frames=max_num_ref_frames,
        frame_mbs_only=frame_mbs_only,
        width=width,
        height=height,
        crop=crop,
        sar=sar,
        timing=timing,
        fixed_frame_rate=fixed_frame_rate,
    )


def _read_parameter_sets(
    data: bytes, pos: int, count: int, what: str
) -> tuple[tuple[bytes, ...], int]:
    sets: list[bytes] = []
    for index in range(count):
        if pos + 2 > len(data):
            raise AvcError(f"record ends inside the length of {what} #{index}")
        (length,) = _U16.unpack_from(data, pos)
        pos += 2
        if length == 0:
            raise AvcError(f"{what} #{index} is empty")
        if pos + length > len(data):
            raise AvcError(
                f"{what} #{index} claims {length} bytes, record has {len(data) - pos} left"
            )
        sets.append(data[pos : pos + length])
        pos += length
    return tuple(sets), pos


def parse_avc_record(record: bytes | bytearray | memoryview) -> AvcRecord:
    """Parse an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1.2).

    The high-profile chroma/bit-depth extension is read when present; many encoders omit it,
    so its absence is not an error.
    """
    data = bytes(record)
    if len(data) < 7:
        raise AvcError(f"AVCDecoderConfigurationRecord of {len(data)} bytes is too short")
    if data[0] != 1:
        raise AvcError(f"configurationVersion {data[0]} is not 1")
    profile_idc, compat, level_idc = data[1], data[2], data[3]
    length_size = (data[4] & 0x03) + 1
    if length_size == 3:
        raise AvcError("lengthSizeMinusOne 2 is not allowed (only 1, 2 or 4 byte lengths)")
    sps, pos = _read_parameter_sets(data, 6, data[5] & 0x1F, "SPS")
    if pos >= len(data):
        raise AvcError("record ends before numOfPictureParameterSets")
    pps_count = data[pos]
    pps, pos = _read_parameter_sets(data, pos + 1, pps_count, "PPS")
    for nal in sps:
        if nal[0] & 0x1F != NAL_SPS:
            raise AvcError(f"SPS entry holds NAL unit type {nal[0] & 0x1F}")
    for nal in pps:
        if nal[0] & 0x1F != NAL_PPS:
            raise AvcError(f"PPS entry holds NAL unit type {nal[0] & 0x1F}")
    chroma: int | None = None
    luma_depth: int | None = None
    chroma_depth: int | None = None
    sps_ext: tuple[bytes, ...] = ()
    if profile_idc not in _PROFILES_WITHOUT_RECORD_EXTENSION and len(data) - pos >= 4:
        chroma = data[pos] & 0x03
        luma_depth = (data[pos + 1] & 0x07) + 8
        chroma_depth = (data[pos + 2] & 0x07) + 8
        sps_ext, pos = _read_parameter_sets(data, pos + 4, data[pos + 3], "SPS extension")
    return AvcRecord(
        profile_idc=profile_idc,
        profile_compatibility=compat,
        level_idc=level_idc,
        nal_length_size=length_size,
        sps=sps,
        pps=pps,
        chroma_format_idc=chroma,
        bit_depth_luma=luma_depth,
        bit_depth_chroma=chroma_depth,
        sps_ext=sps_ext,
    )


def build_avc_record(
    sps: Sequence[bytes], pps: Sequence[bytes], nal_length_size: int = 4
) -> bytes:
    """Build an AVCDecoderConfigurationRecord; profile, constraints and level come from the
    first SPS, and high profiles get the chroma/bit-depth extension (5.3.3.1.2) from it."""
    if nal_length_size not in (1, 2, 4):
        raise ValueError(f"nal_length_size must be 1, 2 or 4, not {nal_length_size}")
    if not sps:
        raise ValueError("an AVC record needs at least one SPS")
    if len(sps) > 31 or len(pps) > 255:
        raise ValueError("too many parameter sets for an AVC record")
    first = parse_sps(sps[0])
    out = bytearray(
        [1, first.profile_idc, first.constraint_flags, first.level_idc, 0xFC | (nal_length_size - 1)]
    )
    for count_byte, group in ((0xE0 | len(sps), sps), (len(pps), pps)):
        out.append(count_byte)
        for nal in group:
            if not 0 < len(nal) <= 0xFFFF:
                raise ValueError(f"parameter set of {len(nal)} bytes cannot go in a record")
            out += _U16.pack(len(nal))
            out += nal
    if first.profile_idc not in _PROFILES_WITHOUT_RECORD_EXTENSION:
        out.append(0xFC | first.chroma_format_idc)
        out.append(0xF8 | (first.bit_depth_luma - 8))
        out.append(0xF8 | (first.bit_depth_chroma - 8))
        out.append(0)
    return bytes(out)


def video_config_from_record(record: bytes | bytearray | memoryview) -> VideoConfig:
    """A VideoConfig for a record: codec string from the record, picture size from its SPS."""
    parsed = parse_avc_record(record)
    if not parsed.sps:
        raise AvcError("AVCDecoderConfigurationRecord holds no SPS")
    if not parsed.pps:
        raise AvcError("AVCDecoderConfigurationRecord holds no PPS")
    sps = parse_sps(parsed.sps[0])
    return VideoConfig(
        codec="h264",
        codec_string=parsed.codec_string,
        width=sps.width,
        height=sps.height,
        record=bytes(record),
        sps=parsed.sps,
        pps=parsed.pps,
        nal_length_size=parsed.nal_length_size,
        profile_idc=parsed.profile_idc,
        level_idc=parsed.level_idc,
    )


def video_config_from_parameter_sets(
    sps: Sequence[bytes], pps: Sequence[bytes], nal_length_size: int = 4
) -> VideoConfig:
    return video_config_from_record(build_avc_record(sps, pps, nal_length_size))


def split_annexb(stream: bytes | bytearray | memoryview) -> list[bytes]:
    """NAL units of an Annex B byte stream (B.2), without start codes or trailing zeros."""
    data = bytes(stream)
    nals: list[bytes] = []
    start = data.find(b"\x00\x00\x01")
    if start < 0:
        if data.strip(b"\x00"):
            raise AvcError("Annex B stream has no start code")
        return nals
    if data[:start].strip(b"\x00"):
        raise AvcError(f"{start} bytes before the first Annex B start code")
    pos = start + 3
    while True:
        nxt = data.find(b"\x00\x00\x01", pos)
        end = len(data) if nxt < 0 else nxt
        nal = data[pos:end].rstrip(b"\x00")
        if nal:
            nals.append(nal)
        if nxt < 0:
            return nals
        pos = nxt + 3


def split_avcc(
    data: bytes | bytearray | memoryview, nal_length_size: int = 4
) -> list[bytes]:
    """NAL units of a length-prefixed access unit (ISO/IEC 14496-15 5.3.4.2)."""
    if nal_length_size not in (1, 2, 3, 4):
        raise ValueError(f"nal_length_size must be 1 to 4, not {nal_length_size}")
    buf = bytes(data)
    nals: list[bytes] = []
    pos = 0
    while pos < len(buf):
        if pos + nal_length_size > len(buf):
            raise AvcError(f"access unit ends inside a NAL length prefix at byte {pos}")
        length = int.from_bytes(buf[pos : pos + nal_length_size], "big")
        pos += nal_length_size
        if length == 0:
            raise AvcError(f"zero-length NAL unit at byte {pos - nal_length_size}")
        if pos + length > len(buf):
            raise AvcError(
                f"NAL unit at byte {pos - nal_length_size} claims {length} bytes, "
                f"{len(buf) - pos} left"
            )
        nals.append(buf[pos : pos + length])
        pos += length
    return nals


def join_avcc(nals: Iterable[bytes | bytearray | memoryview], nal_length_size: int = 4) -> bytes:
    limit = 1 << (8 * nal_length_size)
    out = bytearray()
    for nal in nals:
        if not 0 < len(nal) < limit:
            raise ValueError(f"NAL unit of {len(nal)} bytes does not fit a {nal_length_size}-byte length")
        out += len(nal).to_bytes(nal_length_size, "big")
        out += nal
    return bytes(out)


def annexb_to_avcc(stream: bytes | bytearray | memoryview, nal_length_size: int = 4) -> bytes:
    return join_avcc(split_annexb(stream), nal_length_size)


def avcc_to_annexb(data: bytes | bytearray | memoryview, nal_length_size: int = 4) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + nal for nal in split_avcc(data, nal_length_size))


def contains_idr(data: bytes | bytearray | memoryview, nal_length_size: int = 4) -> bool:
    """Whether a length-prefixed access unit holds an IDR slice (nal_unit_type 5)."""
    return any(nal[0] & 0x1F == NAL_IDR for nal in split_avcc(data, nal_length_size))


def parameter_sets(nals: Iterable[bytes]) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
    """The SPS and PPS NAL units among ``nals`` (e.g. an encoder's first Annex B output)."""
    sps: list[bytes] = []
    pps: list[bytes] = []
    for nal in nals:
        kind = nal_unit_type(nal)
        if kind == NAL_SPS and nal not in sps:
            sps.append(nal)
        elif kind == NAL_PPS and nal not in pps:
            pps.append(nal)
    return tuple(sps), tuple(pps)


def check_avcc(data: bytes | bytearray | memoryview, nal_length_size: int = 4) -> int:
    """Number of NAL units in a length-prefixed access unit, checking its framing without
    copying (the per-frame check on the ingest path)."""
    view = memoryview(data)
    total = len(view)
    pos = 0
    count = 0
    while pos < total:
        if pos + nal_length_size > total:
            raise AvcError(f"access unit ends inside a NAL length prefix at byte {pos}")
        length = int.from_bytes(view[pos : pos + nal_length_size], "big")
        if length == 0:
            raise AvcError(f"zero-length NAL unit at byte {pos}")
        pos += nal_length_size + length
        if pos > total:
            raise AvcError(
                f"NAL unit at byte {pos - length - nal_length_size} claims {length} bytes, "
                f"{total - (pos - length)} left"
            )
        count += 1
    return count

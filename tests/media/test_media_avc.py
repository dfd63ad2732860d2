"""H.264 records, SPS parsing and NAL framing (ISO/IEC 14496-15 5.3.3.1, ITU-T H.264 7.3.2.1.1).

The SPS property tests use an independent serializer below that writes every syntax element
the parser reads, so random field values reach every branch (high-profile chroma and scaling
lists, all POC types, field coding, cropping, VUI); real encoder output is covered by the ffmpeg
comparison in test_media_vs_pyav.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from live.media import avc
from live.media.avc import HIGH_PROFILES_WITH_CHROMA_INFO
from live.media.bits import BitWriter, MediaFormatError, escape_rbsp


@dataclass(frozen=True)
class SpsFields:
    profile_idc: int
    constraint_flags: int
    level_idc: int
    sps_id: int
    chroma_format_idc: int
    separate_colour_plane: bool
    bit_depth_luma: int
    bit_depth_chroma: int
    scaling_lists: tuple[tuple[int, ...] | None, ...] | None
    log2_max_frame_num: int
    poc_type: int
    poc_cycle: tuple[int, ...]
    max_num_ref_frames: int
    width_mbs: int
    height_map_units: int
    frame_mbs_only: bool
    crop: tuple[int, int, int, int] | None
    sar_idc: int | None = None
    sar: tuple[int, int] = (1, 1)
    timing: tuple[int, int] | None = None
    extra: tuple[int, ...] = field(default=())

    def crop_units(self) -> tuple[int, int]:
        cat = 0 if self.separate_colour_plane else self.chroma_format_idc
        sub_w, sub_h = {0: (1, 1), 1: (2, 2), 2: (2, 1), 3: (1, 1)}[cat]
        return sub_w, sub_h * (2 - int(self.frame_mbs_only))

    @property
    def width(self) -> int:
        left, right = (self.crop or (0, 0, 0, 0))[:2]
        return self.width_mbs * 16 - self.crop_units()[0] * (left + right)

    @property
    def height(self) -> int:
        top, bottom = (self.crop or (0, 0, 0, 0))[2:]
        coded = (2 - int(self.frame_mbs_only)) * self.height_map_units * 16
        return coded - self.crop_units()[1] * (top + bottom)


def _write_scaling_list(w: BitWriter, deltas: tuple[int, ...]) -> None:
    last = nxt = 8
    for delta in deltas:
        if nxt == 0:
            break
        w.write_se(delta)
        nxt = (last + delta + 256) % 256
        last = nxt if nxt != 0 else last


def write_sps(f: SpsFields) -> bytes:
    """The SPS NAL unit (header byte 0x67, emulation prevention applied)."""
    w = BitWriter()
    w.write_bits(f.profile_idc, 8)
    w.write_bits(f.constraint_flags, 8)
    w.write_bits(f.level_idc, 8)
    w.write_ue(f.sps_id)
    if f.profile_idc in HIGH_PROFILES_WITH_CHROMA_INFO:
        w.write_ue(f.chroma_format_idc)
        if f.chroma_format_idc == 3:
            w.write_flag(f.separate_colour_plane)
        w.write_ue(f.bit_depth_luma - 8)
        w.write_ue(f.bit_depth_chroma - 8)
        w.write_flag(False)
        w.write_flag(f.scaling_lists is not None)
        if f.scaling_lists is not None:
            for entry in f.scaling_lists:
                w.write_flag(entry is not None)
                if entry is not None:
                    _write_scaling_list(w, entry)
    w.write_ue(f.log2_max_frame_num - 4)
    w.write_ue(f.poc_type)
    if f.poc_type == 0:
        w.write_ue(2)
    elif f.poc_type == 1:
        w.write_flag(True)
        w.write_se(-3)
        w.write_se(5)
        w.write_ue(len(f.poc_cycle))
        for offset in f.poc_cycle:
            w.write_se(offset)
    w.write_ue(f.max_num_ref_frames)
    w.write_flag(False)
    w.write_ue(f.width_mbs - 1)
    w.write_ue(f.height_map_units - 1)
    w.write_flag(f.frame_mbs_only)
    if not f.frame_mbs_only:
        w.write_flag(True)
    w.write_flag(True)
    w.write_flag(f.crop is not None)
    if f.crop is not None:
        for value in f.crop:
            w.write_ue(value)
    vui = f.sar_idc is not None or f.timing is not None
    w.write_flag(vui)
    if vui:
        w.write_flag(f.sar_idc is not None)
        if f.sar_idc is not None:
            w.write_bits(f.sar_idc, 8)
            if f.sar_idc == 255:
                w.write_bits(f.sar[0], 16)
                w.write_bits(f.sar[1], 16)
        w.write_flag(True)  # overscan info
        w.write_flag(False)
        w.write_flag(True)  # video signal type with colour description
        w.write_bits(5, 3)
        w.write_flag(False)
        w.write_flag(True)
        w.write_bits(0x010101, 24)
        w.write_flag(True)  # chroma location
        w.write_ue(1)
        w.write_ue(2)
        w.write_flag(f.timing is not None)
        if f.timing is not None:
            w.write_bits(f.timing[0], 32)
            w.write_bits(f.timing[1], 32)
            w.write_flag(True)
        for value in f.extra:  # the rest of the VUI, which the parser does not read
            w.write_bits(value, 8)
    w.write_trailing_bits()
    return b"\x67" + escape_rbsp(w.getvalue())


@st.composite
def sps_fields(draw: st.DrawFn) -> SpsFields:
    high = draw(st.booleans())
    profile = draw(st.sampled_from([100, 110, 122, 244])) if high else draw(
        st.sampled_from([66, 77, 88])
    )
    chroma = draw(st.integers(0, 3)) if high else 1
    separate = draw(st.booleans()) if chroma == 3 else False
    scaling: tuple[tuple[int, ...] | None, ...] | None = None
    if high and draw(st.booleans()):
        count = 12 if chroma == 3 else 8
        scaling = tuple(
            draw(
                st.none()
                | st.lists(
                    st.integers(-128, 127), min_size=16 if i < 6 else 64, max_size=16 if i < 6 else 64
                ).map(tuple)
            )
            for i in range(count)
        )
    frame_mbs_only = draw(st.booleans())
    width_mbs = draw(st.integers(1, 256))
    height_units = draw(st.integers(1, 136))
    probe = SpsFields(
        profile, 0, 0, 0, chroma, separate, 8, 8, None, 4, 0, (), 0,
        width_mbs, height_units, frame_mbs_only, None,
    )  # fmt: skip
    unit_x, unit_y = probe.crop_units()
    crop = None
    if draw(st.booleans()):
        max_x = (width_mbs * 16 - 1) // unit_x
        max_y = (probe.height - 1) // unit_y
        left = draw(st.integers(0, max_x))
        right = draw(st.integers(0, max_x - left))
        top = draw(st.integers(0, max_y))
        bottom = draw(st.integers(0, max_y - top))
        crop = (left, right, top, bottom)
    poc_type = draw(st.integers(0, 2))
    sar_idc = draw(st.none() | st.sampled_from([1, 2, 14, 16, 255]))
    return SpsFields(
        profile_idc=profile,
        constraint_flags=draw(st.integers(0, 255)),
        level_idc=draw(st.sampled_from([10, 13, 21, 30, 31, 40, 42, 51, 62])),
        sps_id=draw(st.integers(0, 31)),
        chroma_format_idc=chroma,
        separate_colour_plane=separate,
        bit_depth_luma=draw(st.integers(8, 14)) if high else 8,
        bit_depth_chroma=draw(st.integers(8, 14)) if high else 8,
        scaling_lists=scaling,
        log2_max_frame_num=draw(st.integers(4, 16)),
        poc_type=poc_type,
        poc_cycle=tuple(draw(st.lists(st.integers(-1000, 1000), max_size=8)))
        if poc_type == 1
        else (),
        max_num_ref_frames=draw(st.integers(0, 16)),
        width_mbs=width_mbs,
        height_map_units=height_units,
        frame_mbs_only=frame_mbs_only,
        crop=crop,
        sar_idc=sar_idc,
        sar=(draw(st.integers(1, 0xFFFF)), draw(st.integers(1, 0xFFFF))),
        timing=draw(st.none() | st.tuples(st.integers(1, 2**32 - 1), st.integers(1, 2**32 - 1))),
        extra=tuple(draw(st.lists(st.integers(0, 255), max_size=6))),
    )


def _pps(payload: bytes) -> bytes:
    return b"\x68" + escape_rbsp(payload + b"\x80")


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(sps_fields())
def test_sps_parse_recovers_every_written_field(fields: SpsFields) -> None:
    sps = avc.parse_sps(write_sps(fields))
    assert (sps.profile_idc, sps.constraint_flags, sps.level_idc, sps.sps_id) == (
        fields.profile_idc, fields.constraint_flags, fields.level_idc, fields.sps_id,
    )  # fmt: skip
    assert sps.chroma_format_idc == fields.chroma_format_idc
    assert sps.separate_colour_plane == fields.separate_colour_plane
    assert (sps.bit_depth_luma, sps.bit_depth_chroma) == (
        fields.bit_depth_luma, fields.bit_depth_chroma,
    )  # fmt: skip
    assert sps.log2_max_frame_num == fields.log2_max_frame_num
    assert sps.pic_order_cnt_type == fields.poc_type
    assert sps.max_num_ref_frames == fields.max_num_ref_frames
    assert sps.frame_mbs_only == fields.frame_mbs_only
    assert (sps.width, sps.height) == (fields.width, fields.height)
    assert sps.crop == (fields.crop or (0, 0, 0, 0))
    assert sps.timing == fields.timing
    expected_sar = {None: None, 1: (1, 1), 2: (12, 11), 14: (4, 3), 16: (2, 1), 255: fields.sar}
    assert sps.sar == expected_sar[fields.sar_idc]


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(sps_fields(), min_size=1, max_size=3),
    st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=4),
    st.sampled_from([1, 2, 4]),
)
def test_avc_record_build_then_parse_round_trips(
    fields: list[SpsFields], pps_payloads: list[bytes], nal_length_size: int
) -> None:
    sps = [write_sps(f) for f in fields]
    pps = [_pps(p) for p in pps_payloads]
    record = avc.build_avc_record(sps, pps, nal_length_size)
    parsed = avc.parse_avc_record(record)
    first = fields[0]
    assert parsed.sps == tuple(sps) and parsed.pps == tuple(pps)
    assert parsed.nal_length_size == nal_length_size
    assert (parsed.profile_idc, parsed.profile_compatibility, parsed.level_idc) == (
        first.profile_idc, first.constraint_flags, first.level_idc,
    )  # fmt: skip
    if first.profile_idc in (66, 77, 88):
        assert parsed.chroma_format_idc is None
    else:
        assert parsed.chroma_format_idc == first.chroma_format_idc
        assert (parsed.bit_depth_luma, parsed.bit_depth_chroma) == (
            first.bit_depth_luma, first.bit_depth_chroma,
        )  # fmt: skip
    config = avc.video_config_from_record(record)
    assert (config.width, config.height) == (first.width, first.height)
    assert config.codec_string == (
        f"avc1.{first.profile_idc:02x}{first.constraint_flags:02x}{first.level_idc:02x}"
    )
    assert config.record == record and config.nal_length_size == nal_length_size


def test_codec_string_is_rfc6381_hex() -> None:
    assert avc.codec_string(100, 0, 31) == "avc1.64001f"
    assert avc.codec_string(66, 0xC0, 30) == "avc1.42c01e"


@settings(max_examples=200)
@given(st.binary(max_size=80))
def test_random_bytes_as_record_raise_only_avc_error(data: bytes) -> None:
    try:
        avc.video_config_from_record(data)
    except avc.AvcError:
        pass


@settings(max_examples=200)
@given(sps_fields(), st.data())
def test_truncated_or_mutated_sps_raises_only_avc_error(fields: SpsFields, data: st.DataObject) -> None:
    nal = bytearray(write_sps(fields))
    if data.draw(st.booleans()):
        nal = nal[: data.draw(st.integers(0, len(nal)))]
    else:
        index = data.draw(st.integers(0, len(nal) - 1))
        nal[index] ^= data.draw(st.integers(1, 255))
    try:
        avc.parse_sps(bytes(nal))
    except avc.AvcError:
        pass


def test_sps_with_wrong_nal_type_is_rejected() -> None:
    with pytest.raises(avc.AvcError, match="not an SPS"):
        avc.parse_sps(b"\x68\x42\x00\x1e\xff")


def test_record_with_three_byte_lengths_is_rejected() -> None:
    with pytest.raises(avc.AvcError, match="lengthSizeMinusOne 2"):
        avc.parse_avc_record(b"\x01\x42\x00\x1e\xfe\xe0\x00")


def _nal(payload: bytes, nal_type: int) -> bytes:
    # A NAL unit as an encoder emits it: header byte, escaped payload, non-zero last byte.
    return bytes([0x60 | nal_type]) + escape_rbsp(payload + b"\x80")


nal_lists = st.lists(
    st.builds(_nal, st.binary(max_size=64), st.sampled_from([1, 5, 6, 7, 8, 9])),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200)
@given(nal_lists, st.sampled_from([1, 2, 4]), st.booleans())
def test_annexb_and_avcc_conversions_round_trip(
    nals: list[bytes], nal_length_size: int, three_byte_codes: bool
) -> None:
    avcc = avc.join_avcc(nals, nal_length_size)
    assert avc.split_avcc(avcc, nal_length_size) == nals
    assert avc.check_avcc(avcc, nal_length_size) == len(nals)
    annexb = avc.avcc_to_annexb(avcc, nal_length_size)
    assert avc.split_annexb(annexb) == nals
    assert avc.annexb_to_avcc(annexb, nal_length_size) == avcc
    short = b"".join(b"\x00\x00\x01" + n for n in nals) if three_byte_codes else annexb
    assert avc.split_annexb(short + b"\x00\x00") == nals  # trailing_zero_8bits are dropped
    assert avc.contains_idr(avcc, nal_length_size) == any(n[0] & 0x1F == 5 for n in nals)


@settings(max_examples=200)
@given(st.binary(max_size=64), st.sampled_from([1, 2, 4]))
def test_check_avcc_agrees_with_split_avcc_on_any_bytes(data: bytes, size: int) -> None:
    try:
        nals = avc.split_avcc(data, size)
    except avc.AvcError:
        with pytest.raises(avc.AvcError):
            avc.check_avcc(data, size)
    else:
        assert avc.check_avcc(data, size) == len(nals)


def test_truncated_avcc_names_the_bad_nal() -> None:
    with pytest.raises(avc.AvcError, match="claims 9 bytes"):
        avc.split_avcc(b"\x00\x00\x00\x09\x65\x88", 4)


def test_annexb_garbage_before_first_start_code_is_rejected() -> None:
    with pytest.raises(avc.AvcError, match="before the first"):
        avc.split_annexb(b"\x12\x00\x00\x01\x65\x88")


def test_parameter_sets_are_collected_from_an_encoder_stream() -> None:
    sps = write_sps(
        SpsFields(66, 0xC0, 30, 0, 1, False, 8, 8, None, 4, 2, (), 1, 20, 15, True, None)
    )
    pps = _pps(b"\xce\x3c")
    idr = _nal(b"\x88\x84", 5)
    stream = b"".join(b"\x00\x00\x00\x01" + n for n in (sps, pps, idr, sps))
    found_sps, found_pps = avc.parameter_sets(avc.split_annexb(stream))
    assert found_sps == (sps,) and found_pps == (pps,)
    config = avc.video_config_from_parameter_sets(found_sps, found_pps)
    assert (config.width, config.height, config.codec_string) == (320, 240, "avc1.42c01e")


def test_media_format_errors_are_value_errors_for_callers() -> None:
    assert issubclass(avc.AvcError, MediaFormatError)
    assert issubclass(MediaFormatError, ValueError)

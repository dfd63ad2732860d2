"""Bit reader/writer and emulation prevention (ITU-T H.264 7.4.1, 9.1)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.media.bits import BitReader, BitstreamError, BitWriter, escape_rbsp, unescape_rbsp

fields = st.lists(
    st.one_of(
        st.tuples(st.just("bits"), st.integers(0, 40)).flatmap(
            lambda t: st.tuples(st.just("bits"), st.integers(0, 2 ** t[1] - 1), st.just(t[1]))
        ),
        st.tuples(st.just("ue"), st.integers(0, 2**32 - 2), st.just(0)),
        st.tuples(st.just("se"), st.integers(-(2**31) + 1, 2**31 - 1), st.just(0)),
    ),
    max_size=30,
)


@settings(max_examples=200)
@given(fields)
def test_written_fields_read_back_in_order(items: list[tuple[str, int, int]]) -> None:
    w = BitWriter()
    for kind, value, width in items:
        if kind == "bits":
            w.write_bits(value, width)
        elif kind == "ue":
            w.write_ue(value)
        else:
            w.write_se(value)
    r = BitReader(w.getvalue())
    for kind, value, width in items:
        if kind == "bits":
            assert r.read_bits(width) == value
        elif kind == "ue":
            assert r.read_ue() == value
        else:
            assert r.read_se() == value
    assert r.bits_left < 8


def test_exp_golomb_codes_match_the_h264_table() -> None:
    # H.264 Table 9-2: 1 -> 0, 010 -> 1, 011 -> 2, 00100 -> 3; se: 1, -1, 2 for codes 1, 2, 3.
    r = BitReader(bytes([0b10100110, 0b01000000]))
    assert [r.read_ue(), r.read_ue(), r.read_ue(), r.read_ue()] == [0, 1, 2, 3]
    r = BitReader(bytes([0b01001100, 0b10000000]))
    assert [r.read_se(), r.read_se(), r.read_se()] == [1, -1, 2]


def test_reading_past_the_end_raises_bitstream_error() -> None:
    r = BitReader(b"\xff")
    r.read_bits(6)
    with pytest.raises(BitstreamError, match="needed 3 bits"):
        r.read_bits(3)
    with pytest.raises(BitstreamError):
        BitReader(b"\x00\x00\x00\x00\x00").read_ue()


@settings(max_examples=200)
@given(st.binary(max_size=200))
def test_emulation_prevention_round_trips_and_removes_start_code_prefixes(data: bytes) -> None:
    escaped = escape_rbsp(data)
    assert unescape_rbsp(escaped) == data
    for bad in (b"\x00\x00\x00", b"\x00\x00\x01", b"\x00\x00\x02"):
        assert bad not in escaped

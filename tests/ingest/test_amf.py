"""AMF0/AMF3: round trips, known encodings, and hostile input."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.ingest.rtmp import amf0, amf3

keys = st.text(min_size=1, max_size=12)
scalars = st.one_of(
    st.none(),
    st.just(amf0.UNDEFINED),
    st.booleans(),
    st.floats(allow_nan=False),
    st.text(max_size=40),
)
amf0_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(keys, inner, max_size=5),
        st.dictionaries(keys, inner, max_size=5).map(amf0.EcmaArray),
    ),
    max_leaves=20,
)


@given(st.lists(amf0_values, max_size=6))
def test_amf0_round_trips_any_value_sequence(values: list[Any]) -> None:
    decoded = amf0.decode(amf0.encode(*values))
    assert decoded == values
    assert [type(v) for v in decoded] == [type(v) for v in values]


def test_amf0_encodes_the_connect_command_byte_for_byte() -> None:
    encoded = amf0.encode("connect", 1.0, {"app": "live"})
    assert encoded == (
        b"\x02\x00\x07connect"
        b"\x00\x3f\xf0\x00\x00\x00\x00\x00\x00"
        b"\x03\x00\x03app\x02\x00\x04live\x00\x00\x09"
    )


def test_amf0_long_strings_and_dates_round_trip() -> None:
    text = "x" * 70_000
    date = amf0.AmfDate(1.7e12, 60)
    assert amf0.decode(amf0.encode(text, date)) == [text, date]


@given(st.binary(max_size=200))
@settings(max_examples=300)
def test_amf0_decode_of_random_bytes_raises_only_amf_error(data: bytes) -> None:
    try:
        amf0.decode(data)
    except amf0.AmfError:
        pass


@given(st.lists(amf0_values, min_size=1, max_size=4), st.data())
def test_amf0_truncated_input_is_reported_not_crashed(values: list[Any], data: st.DataObject) -> None:
    encoded = amf0.encode(*values)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    try:
        decoded = amf0.decode(encoded[:cut])
    except amf0.AmfError:
        return
    assert len(decoded) < len(values) or decoded != values


def test_amf0_nesting_depth_is_bounded() -> None:
    payload = b"\x0a\x00\x00\x00\x01" * (amf0.MAX_DEPTH + 5) + b"\x05"
    with pytest.raises(amf0.AmfError, match="nesting"):
        amf0.decode(payload)


def test_amf0_strict_array_count_is_bounded() -> None:
    with pytest.raises(amf0.AmfError, match="exceeds"):
        amf0.decode(b"\x0a\xff\xff\xff\xff")


amf3_values = st.recursive(
    st.one_of(
        st.none(), st.booleans(), st.integers(-(1 << 28), (1 << 28) - 1),
        st.floats(allow_nan=False), st.text(max_size=30), st.binary(max_size=20),
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=20,
)


@given(amf3_values)
def test_amf3_round_trips_through_the_avmplus_marker(value: Any) -> None:
    payload = b"\x11" + amf3.encode_value(value)
    assert amf0.decode(payload) == [value]


def test_amf3_string_references_resolve() -> None:
    # array of two strings, the second a reference to the first (index 0)
    payload = b"\x09\x05\x01" + b"\x06\x07abc" + b"\x06\x00"
    value, end = amf3.decode_value(memoryview(payload), 0)
    assert value == ["abc", "abc"] and end == len(payload)


@given(st.binary(max_size=200))
@settings(max_examples=300)
def test_amf3_decode_of_random_bytes_raises_only_amf_error(data: bytes) -> None:
    try:
        amf0.decode(b"\x11" + data)
    except amf0.AmfError:
        pass


def test_amf0_number_special_values_survive() -> None:
    inf, = amf0.decode(amf0.encode(math.inf))
    assert inf == math.inf

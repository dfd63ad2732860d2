"""AMF0 (Adobe Action Message Format 0, amf0-file-format-specification.pdf) encode and decode.

RTMP commands (connect, createStream, publish, onStatus, ...) and @setDataFrame metadata are
AMF0 value sequences. Python values map as: Number <-> float, Boolean <-> bool, String and
Long String <-> str, Object <-> dict, ECMA Array <-> EcmaArray (a dict subclass, so a round trip
keeps the marker), Strict Array <-> list, Null <-> None, Undefined <-> UNDEFINED, Date <-> AmfDate,
XML Document <-> XmlDocument, Typed Object <-> TypedObject. The AVM+ marker switches one value to
AMF3 (live.ingest.rtmp.amf3), which is how some encoders send objects.

Decoding is bounded: nesting depth and element counts are capped so a hostile peer cannot make
the server recurse or allocate without limit.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from live.ingest.rtmp import amf3
from live.ingest.rtmp.errors import RtmpProtocolError

NUMBER = 0x00
BOOLEAN = 0x01
STRING = 0x02
OBJECT = 0x03
MOVIECLIP = 0x04
NULL = 0x05
UNDEFINED_MARKER = 0x06
REFERENCE = 0x07
ECMA_ARRAY = 0x08
OBJECT_END = 0x09
STRICT_ARRAY = 0x0A
DATE = 0x0B
LONG_STRING = 0x0C
UNSUPPORTED = 0x0D
RECORDSET = 0x0E
XML_DOCUMENT = 0x0F
TYPED_OBJECT = 0x10
AVMPLUS = 0x11

MAX_DEPTH = 32
MAX_ELEMENTS = 65_536

_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_DATE_TAIL = struct.Struct(">dh")


class AmfError(RtmpProtocolError):
    """A malformed AMF value from the peer."""


class _Undefined:
    """AMF0 undefined: distinct from null, which some peers care about."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED = _Undefined()


class EcmaArray(dict[str, Any]):
    """An associative array sent with the ECMA Array marker (onMetaData uses it)."""


@dataclass(frozen=True, slots=True)
class AmfDate:
    milliseconds: float  # since the epoch, UTC
    timezone_minutes: int = 0


@dataclass(frozen=True, slots=True)
class XmlDocument:
    text: str


@dataclass(frozen=True, slots=True)
class TypedObject:
    class_name: str
    members: dict[str, Any]


def decode(data: bytes | memoryview) -> list[Any]:
    """Decode every value in ``data``; raises AmfError on malformed or truncated input."""
    view = memoryview(data)
    values: list[Any] = []
    offset = 0
    while offset < len(view):
        value, offset = _decode_value(view, offset, 0)
        values.append(value)
    return values


def encode(*values: Any) -> bytes:
    """Encode values in order into one AMF0 byte string."""
    out = bytearray()
    for value in values:
        _encode_value(out, value)
    return bytes(out)


def _need(view: memoryview, offset: int, size: int) -> None:
    if offset + size > len(view):
        raise AmfError(f"AMF0 value truncated at byte {offset} (need {size} more)")


def _read_utf8(view: memoryview, offset: int, size: int) -> tuple[str, int]:
    _need(view, offset, size)
    try:
        text = bytes(view[offset : offset + size]).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AmfError(f"AMF0 string at byte {offset} is not UTF-8") from exc
    return text, offset + size


def _read_short_string(view: memoryview, offset: int) -> tuple[str, int]:
    _need(view, offset, 2)
    (size,) = _U16.unpack_from(view, offset)
    return _read_utf8(view, offset + 2, size)


def _read_members(
    view: memoryview, offset: int, depth: int, into: dict[str, Any]
) -> int:
    """Read key/value pairs up to the empty-key + OBJECT_END terminator."""
    while True:
        key, offset = _read_short_string(view, offset)
        if key == "":
            _need(view, offset, 1)
            if view[offset] != OBJECT_END:
                raise AmfError(f"AMF0 object: empty key without object-end marker at {offset}")
            return offset + 1
        if len(into) >= MAX_ELEMENTS:
            raise AmfError(f"AMF0 object has more than {MAX_ELEMENTS} members")
        into[key], offset = _decode_value(view, offset, depth + 1)


def _decode_value(view: memoryview, offset: int, depth: int) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise AmfError(f"AMF0 nesting deeper than {MAX_DEPTH}")
    _need(view, offset, 1)
    marker = view[offset]
    offset += 1
    if marker == NUMBER:
        _need(view, offset, 8)
        return _DOUBLE.unpack_from(view, offset)[0], offset + 8
    if marker == BOOLEAN:
        _need(view, offset, 1)
        return view[offset] != 0, offset + 1
    if marker == STRING:
        return _read_short_string(view, offset)
    if marker == LONG_STRING:
        _need(view, offset, 4)
        (size,) = _U32.unpack_from(view, offset)
        return _read_utf8(view, offset + 4, size)
    if marker == XML_DOCUMENT:
        _need(view, offset, 4)
        (size,) = _U32.unpack_from(view, offset)
        text, offset = _read_utf8(view, offset + 4, size)
        return XmlDocument(text), offset
    if marker == NULL:
        return None, offset
    if marker in (UNDEFINED_MARKER, UNSUPPORTED):
        return UNDEFINED, offset
    if marker == OBJECT:
        obj: dict[str, Any] = {}
        return obj, _read_members(view, offset, depth, obj)
    if marker == ECMA_ARRAY:
        _need(view, offset, 4)  # the count is a hint only; the terminator ends the array
        arr = EcmaArray()
        return arr, _read_members(view, offset + 4, depth, arr)
    if marker == TYPED_OBJECT:
        class_name, offset = _read_short_string(view, offset)
        members: dict[str, Any] = {}
        offset = _read_members(view, offset, depth, members)
        return TypedObject(class_name, members), offset
    if marker == STRICT_ARRAY:
        _need(view, offset, 4)
        (count,) = _U32.unpack_from(view, offset)
        if count > MAX_ELEMENTS:
            raise AmfError(f"AMF0 strict array of {count} elements exceeds {MAX_ELEMENTS}")
        offset += 4
        items: list[Any] = []
        for _ in range(count):
            item, offset = _decode_value(view, offset, depth + 1)
            items.append(item)
        return items, offset
    if marker == DATE:
        _need(view, offset, 10)
        millis, tz = _DATE_TAIL.unpack_from(view, offset)
        return AmfDate(millis, tz), offset + 10
    if marker == AVMPLUS:
        try:
            return amf3.decode_value(view, offset, depth)
        except amf3.Amf3Error as exc:
            raise AmfError(str(exc)) from exc
    if marker == REFERENCE:
        raise AmfError("AMF0 references are not accepted in RTMP commands")
    raise AmfError(f"unknown AMF0 marker 0x{marker:02x} at byte {offset - 1}")


def _write_short_string(out: bytearray, text: str) -> None:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("AMF0 key longer than 65535 bytes")
    out += _U16.pack(len(raw))
    out += raw


def _write_members(out: bytearray, members: Iterable[tuple[str, Any]]) -> None:
    for key, value in members:
        _write_short_string(out, key)
        _encode_value(out, value)
    out += b"\x00\x00\x09"


def _encode_value(out: bytearray, value: Any) -> None:
    if value is None:
        out.append(NULL)
    elif value is UNDEFINED:
        out.append(UNDEFINED_MARKER)
    elif isinstance(value, bool):
        out.append(BOOLEAN)
        out.append(1 if value else 0)
    elif isinstance(value, int | float):
        out.append(NUMBER)
        out += _DOUBLE.pack(float(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out.append(STRING)
            out += _U16.pack(len(raw))
        else:
            out.append(LONG_STRING)
            out += _U32.pack(len(raw))
        out += raw
    elif isinstance(value, EcmaArray):
        out.append(ECMA_ARRAY)
        out += _U32.pack(len(value))
        _write_members(out, value.items())
    elif isinstance(value, dict):
        out.append(OBJECT)
        _write_members(out, value.items())
    elif isinstance(value, list | tuple):
        out.append(STRICT_ARRAY)
        out += _U32.pack(len(value))
        for item in value:
            _encode_value(out, item)
    elif isinstance(value, AmfDate):
        out.append(DATE)
        out += _DATE_TAIL.pack(value.milliseconds, value.timezone_minutes)
    elif isinstance(value, XmlDocument):
        raw = value.text.encode("utf-8")
        out.append(XML_DOCUMENT)
        out += _U32.pack(len(raw))
        out += raw
    elif isinstance(value, TypedObject):
        out.append(TYPED_OBJECT)
        _write_short_string(out, value.class_name)
        _write_members(out, value.members.items())
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as AMF0")

"""AMF3 (amf3_spec_121207) values, as they appear inside AMF0 via the AVM+ marker.

Only what encoders put in RTMP commands and metadata is needed, but every AMF3 type decodes,
with the string, object and trait reference tables the format requires. Encoding writes
values without references (always legal) so tests can round-trip.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

MAX_DEPTH = 32
MAX_ELEMENTS = 65_536

UNDEFINED = 0x00
NULL = 0x01
FALSE = 0x02
TRUE = 0x03
INTEGER = 0x04
DOUBLE = 0x05
STRING = 0x06
XML_DOC = 0x07
DATE = 0x08
ARRAY = 0x09
OBJECT = 0x0A
XML = 0x0B
BYTE_ARRAY = 0x0C

_DOUBLE = struct.Struct(">d")


class Amf3Error(ValueError):
    """Malformed AMF3 input."""


@dataclass(frozen=True, slots=True)
class Amf3Traits:
    class_name: str
    dynamic: bool
    externalizable: bool
    members: tuple[str, ...]


@dataclass(slots=True)
class Amf3Object:
    class_name: str = ""
    members: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Tables:
    strings: list[str] = field(default_factory=list)
    objects: list[Any] = field(default_factory=list)
    traits: list[Amf3Traits] = field(default_factory=list)


def decode_value(view: memoryview, offset: int, depth: int = 0) -> tuple[Any, int]:
    """Decode one AMF3 value at ``offset``; returns (value, next offset)."""
    return _Decoder(view).value(offset, depth)


class _Decoder:
    def __init__(self, view: memoryview) -> None:
        self.view = view
        self.tables = _Tables()

    def _need(self, offset: int, size: int) -> None:
        if offset + size > len(self.view):
            raise Amf3Error(f"AMF3 value truncated at byte {offset}")

    def u29(self, offset: int) -> tuple[int, int]:
        result = 0
        for i in range(4):
            self._need(offset, 1)
            byte = self.view[offset]
            offset += 1
            if i == 3:
                return (result << 8) | byte, offset
            result = (result << 7) | (byte & 0x7F)
            if not byte & 0x80:
                return result, offset
        raise AssertionError("unreachable")

    def string(self, offset: int) -> tuple[str, int]:
        header, offset = self.u29(offset)
        if not header & 1:
            index = header >> 1
            if index >= len(self.tables.strings):
                raise Amf3Error(f"AMF3 string reference {index} out of range")
            return self.tables.strings[index], offset
        size = header >> 1
        self._need(offset, size)
        try:
            text = bytes(self.view[offset : offset + size]).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Amf3Error("AMF3 string is not UTF-8") from exc
        if text:
            self.tables.strings.append(text)
        return text, offset + size

    def _object_ref(self, header: int) -> Any:
        index = header >> 1
        if index >= len(self.tables.objects):
            raise Amf3Error(f"AMF3 object reference {index} out of range")
        return self.tables.objects[index]

    def value(self, offset: int, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise Amf3Error(f"AMF3 nesting deeper than {MAX_DEPTH}")
        self._need(offset, 1)
        marker = self.view[offset]
        offset += 1
        if marker in (UNDEFINED, NULL):
            return None, offset
        if marker == FALSE:
            return False, offset
        if marker == TRUE:
            return True, offset
        if marker == INTEGER:
            raw, offset = self.u29(offset)
            return (raw - (1 << 29) if raw & (1 << 28) else raw), offset
        if marker == DOUBLE:
            self._need(offset, 8)
            return _DOUBLE.unpack_from(self.view, offset)[0], offset + 8
        if marker == STRING:
            return self.string(offset)
        if marker in (XML_DOC, XML, BYTE_ARRAY):
            header, offset = self.u29(offset)
            if not header & 1:
                return self._object_ref(header), offset
            size = header >> 1
            self._need(offset, size)
            blob = bytes(self.view[offset : offset + size])
            item: Any = blob if marker == BYTE_ARRAY else blob.decode("utf-8", "replace")
            self.tables.objects.append(item)
            return item, offset + size
        if marker == DATE:
            header, offset = self.u29(offset)
            if not header & 1:
                return self._object_ref(header), offset
            self._need(offset, 8)
            millis = _DOUBLE.unpack_from(self.view, offset)[0]
            self.tables.objects.append(millis)
            return millis, offset + 8
        if marker == ARRAY:
            return self._array(offset, depth)
        if marker == OBJECT:
            return self._object(offset, depth)
        raise Amf3Error(f"unknown AMF3 marker 0x{marker:02x} at byte {offset - 1}")

    def _array(self, offset: int, depth: int) -> tuple[Any, int]:
        header, offset = self.u29(offset)
        if not header & 1:
            return self._object_ref(header), offset
        count = header >> 1
        if count > MAX_ELEMENTS:
            raise Amf3Error(f"AMF3 array of {count} elements exceeds {MAX_ELEMENTS}")
        assoc: dict[str, Any] = {}
        dense: list[Any] = []
        slot = len(self.tables.objects)
        self.tables.objects.append(dense)
        while True:
            key, offset = self.string(offset)
            if key == "":
                break
            if len(assoc) >= MAX_ELEMENTS:
                raise Amf3Error("AMF3 array has too many associative members")
            assoc[key], offset = self.value(offset, depth + 1)
        for _ in range(count):
            item, offset = self.value(offset, depth + 1)
            dense.append(item)
        if assoc:
            merged: dict[str, Any] = dict(assoc)
            merged.update({str(i): v for i, v in enumerate(dense)})
            self.tables.objects[slot] = merged
            return merged, offset
        return dense, offset

    def _traits(self, header: int, offset: int) -> tuple[Amf3Traits, int]:
        if not header & 2:
            index = header >> 2
            if index >= len(self.tables.traits):
                raise Amf3Error(f"AMF3 traits reference {index} out of range")
            return self.tables.traits[index], offset
        externalizable = bool(header & 4)
        dynamic = bool(header & 8)
        count = header >> 4
        if count > MAX_ELEMENTS:
            raise Amf3Error("AMF3 traits with too many sealed members")
        class_name, offset = self.string(offset)
        names = []
        for _ in range(count):
            name, offset = self.string(offset)
            names.append(name)
        traits = Amf3Traits(class_name, dynamic, externalizable, tuple(names))
        self.tables.traits.append(traits)
        return traits, offset

    def _object(self, offset: int, depth: int) -> tuple[Any, int]:
        header, offset = self.u29(offset)
        if not header & 1:
            return self._object_ref(header), offset
        traits, offset = self._traits(header, offset)
        if traits.externalizable:
            raise Amf3Error(f"AMF3 externalizable class {traits.class_name!r} is not supported")
        obj = Amf3Object(traits.class_name)
        self.tables.objects.append(obj.members if not traits.class_name else obj)
        for name in traits.members:
            obj.members[name], offset = self.value(offset, depth + 1)
        if traits.dynamic:
            while True:
                key, offset = self.string(offset)
                if key == "":
                    break
                if len(obj.members) >= MAX_ELEMENTS:
                    raise Amf3Error("AMF3 object has too many members")
                obj.members[key], offset = self.value(offset, depth + 1)
        return (obj.members if not traits.class_name else obj), offset


def _write_u29(out: bytearray, value: int) -> None:
    value &= 0x1FFFFFFF
    if value < 0x80:
        out.append(value)
    elif value < 0x4000:
        out += bytes(((value >> 7) | 0x80, value & 0x7F))
    elif value < 0x200000:
        out += bytes(((value >> 14) | 0x80, ((value >> 7) & 0x7F) | 0x80, value & 0x7F))
    else:
        out += bytes(
            (
                (value >> 22) | 0x80,
                ((value >> 15) & 0x7F) | 0x80,
                ((value >> 8) & 0x7F) | 0x80,
                value & 0xFF,
            )
        )


def _write_string(out: bytearray, text: str) -> None:
    raw = text.encode("utf-8")
    _write_u29(out, (len(raw) << 1) | 1)
    out += raw


def encode_value(value: Any) -> bytes:
    """Encode one value as AMF3 with no references."""
    out = bytearray()
    _encode(out, value)
    return bytes(out)


def _encode(out: bytearray, value: Any) -> None:
    if value is None:
        out.append(NULL)
    elif value is True:
        out.append(TRUE)
    elif value is False:
        out.append(FALSE)
    elif isinstance(value, int) and -(1 << 28) <= value < (1 << 28):
        out.append(INTEGER)
        _write_u29(out, value)
    elif isinstance(value, int | float):
        out.append(DOUBLE)
        out += _DOUBLE.pack(float(value))
    elif isinstance(value, str):
        out.append(STRING)
        _write_string(out, value)
    elif isinstance(value, bytes):
        out.append(BYTE_ARRAY)
        _write_u29(out, (len(value) << 1) | 1)
        out += value
    elif isinstance(value, list | tuple):
        out.append(ARRAY)
        _write_u29(out, (len(value) << 1) | 1)
        out.append(0x01)  # empty associative part
        for item in value:
            _encode(out, item)
    elif isinstance(value, dict | Amf3Object):
        members = value.members if isinstance(value, Amf3Object) else value
        class_name = value.class_name if isinstance(value, Amf3Object) else ""
        out.append(OBJECT)
        _write_u29(out, 0x0B)  # inline object, inline traits, dynamic, no sealed members
        _write_string(out, class_name)
        for key, item in members.items():
            if key == "":
                raise ValueError("AMF3 dynamic member names cannot be empty")
            _write_string(out, key)
            _encode(out, item)
        out.append(0x01)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as AMF3")

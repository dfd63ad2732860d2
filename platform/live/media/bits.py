"""Bit-level reading and writing for codec headers (H.264/H.265 parameter sets, AAC configs).

Parameter sets are MSB-first bit strings with unsigned and signed Exp-Golomb codes
(ITU-T H.264 9.1). ``MediaFormatError`` is the root of every "the bytes we were given are not a
valid header" error in ``live.media``; a reader never raises IndexError, only that.
"""

from __future__ import annotations


class MediaFormatError(ValueError):
    """Malformed or unsupported media bytes from outside (a publisher, a file): not our bug."""


class BitstreamError(MediaFormatError):
    """A bit string ended early or held a value no conforming encoder writes."""


# Exp-Golomb codes longer than this encode values beyond 2**32, which no H.264/H.265 syntax
# element reaches; refusing them bounds the work a hostile header can cause.
_MAX_EXP_GOLOMB_ZEROS = 32


class BitReader:
    """MSB-first reader over a byte string."""

    __slots__ = ("_data", "_end", "_pos")

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._end = len(self._data) * 8

    @property
    def position(self) -> int:
        """Bits consumed so far."""
        return self._pos

    @property
    def bits_left(self) -> int:
        return self._end - self._pos

    def read_bits(self, count: int) -> int:
        if count < 0:
            raise ValueError("negative bit count")
        if count > self._end - self._pos:
            raise BitstreamError(
                f"needed {count} bits at bit {self._pos}, only {self._end - self._pos} left"
            )
        value = 0
        pos = self._pos
        remaining = count
        data = self._data
        while remaining:
            byte = data[pos >> 3]
            offset = pos & 7
            take = min(8 - offset, remaining)
            value = (value << take) | ((byte >> (8 - offset - take)) & ((1 << take) - 1))
            pos += take
            remaining -= take
        self._pos = pos
        return value

    def read_bit(self) -> int:
        return self.read_bits(1)

    def read_flag(self) -> bool:
        return self.read_bits(1) == 1

    def skip_bits(self, count: int) -> None:
        if count > self._end - self._pos:
            raise BitstreamError(f"cannot skip {count} bits, only {self._end - self._pos} left")
        self._pos += count

    def read_ue(self) -> int:
        """Unsigned Exp-Golomb ue(v) (H.264 9.1)."""
        zeros = 0
        while self.read_bits(1) == 0:
            zeros += 1
            if zeros > _MAX_EXP_GOLOMB_ZEROS:
                raise BitstreamError(f"Exp-Golomb code with more than {zeros - 1} leading zeros")
        return (1 << zeros) - 1 + self.read_bits(zeros)

    def read_se(self) -> int:
        """Signed Exp-Golomb se(v) (H.264 9.1.1): 1, -1, 2, -2, ..."""
        code = self.read_ue()
        return (code + 1) >> 1 if code & 1 else -(code >> 1)


class BitWriter:
    """MSB-first writer, the inverse of BitReader."""

    __slots__ = ("_acc", "_nbits", "_out")

    def __init__(self) -> None:
        self._out = bytearray()
        self._acc = 0
        self._nbits = 0

    def write_bits(self, value: int, count: int) -> None:
        if count < 0 or value < 0 or value >> count:
            raise ValueError(f"{value} does not fit in {count} bits")
        self._acc = (self._acc << count) | value
        self._nbits += count
        while self._nbits >= 8:
            self._nbits -= 8
            self._out.append((self._acc >> self._nbits) & 0xFF)
        self._acc &= (1 << self._nbits) - 1

    def write_flag(self, flag: bool) -> None:
        self.write_bits(1 if flag else 0, 1)

    def write_ue(self, value: int) -> None:
        if value < 0:
            raise ValueError("ue(v) cannot hold a negative value")
        code = value + 1
        length = code.bit_length()
        self.write_bits(0, length - 1)
        self.write_bits(code, length)

    def write_se(self, value: int) -> None:
        self.write_ue(2 * value - 1 if value > 0 else -2 * value)

    @property
    def bit_length(self) -> int:
        return len(self._out) * 8 + self._nbits

    def byte_aligned(self) -> bool:
        return self._nbits == 0

    def write_trailing_bits(self) -> None:
        """rbsp_trailing_bits (H.264 7.3.2.11): a stop bit, then zeros to a byte boundary."""
        self.write_bits(1, 1)
        if self._nbits:
            self.write_bits(0, 8 - self._nbits)

    def getvalue(self) -> bytes:
        """The bytes written, the last partial byte padded with zero bits."""
        if self._nbits:
            return bytes(self._out) + bytes([(self._acc << (8 - self._nbits)) & 0xFF])
        return bytes(self._out)


def unescape_rbsp(nal_payload: bytes | bytearray | memoryview) -> bytes:
    """Remove emulation_prevention_three_byte (H.264 7.4.1): 00 00 03 -> 00 00."""
    data = bytes(nal_payload)
    if b"\x00\x00\x03" not in data:
        return data
    out = bytearray()
    zeros = 0
    for byte in data:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def escape_rbsp(rbsp: bytes | bytearray | memoryview) -> bytes:
    """Insert emulation_prevention_three_byte wherever 00 00 would precede 00-03 (H.264 7.4.1)."""
    out = bytearray()
    zeros = 0
    for byte in bytes(rbsp):
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)

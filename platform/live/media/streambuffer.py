"""A byte buffer for incremental parsers written as generator coroutines.

The websockets ``streams.py`` idea: a parser is a generator that ``yield from
buffer.read_exact(n)``; when fewer than ``n`` bytes are buffered it yields, and the caller
resumes it after feeding more. A message split across any number of reads then parses the
same, with no hand-kept offsets. A read cursor avoids copying the buffer on every consume.
"""

from __future__ import annotations

from collections.abc import Generator


class StreamBuffer:
    """Bytes received but not yet parsed."""

    __slots__ = ("_data", "_pos")

    def __init__(self) -> None:
        self._data = bytearray()
        self._pos = 0

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._pos and self._pos >= len(self._data) // 2:
            del self._data[: self._pos]
            self._pos = 0
        self._data += data

    def __len__(self) -> int:
        return len(self._data) - self._pos

    def read_exact(self, size: int) -> Generator[None, None, bytes]:
        while len(self._data) - self._pos < size:
            yield
        start = self._pos
        self._pos = start + size
        return bytes(self._data[start : self._pos])

    def read_into(self, target: bytearray, size: int) -> Generator[None, None, None]:
        """Append exactly ``size`` bytes to ``target`` as they arrive (no intermediate copy)."""
        remaining = size
        while remaining:
            while len(self._data) == self._pos:
                yield
            take = min(remaining, len(self._data) - self._pos)
            target += memoryview(self._data)[self._pos : self._pos + take]
            self._pos += take
            remaining -= take

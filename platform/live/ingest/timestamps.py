"""Turn 32-bit wrapping millisecond timestamps (RTMP, FLV) into a monotonic 64-bit timeline."""

from __future__ import annotations

_WRAP = 1 << 32
_HALF = 1 << 31


class TimestampUnwrapper:
    """A jump back of more than half the 32-bit range is a wrap, not a reordering.

    Small steps back (B-frame-free streams never do this, but audio and video interleave with
    slightly different clocks) stay as they are, so reordering is visible downstream.
    """

    __slots__ = ("_epoch", "_last")

    def __init__(self) -> None:
        self._epoch = 0
        self._last: int | None = None

    def unwrap(self, timestamp: int) -> int:
        timestamp &= _WRAP - 1
        last = self._last
        if last is not None:
            if timestamp - last < -_HALF:
                self._epoch += _WRAP
            elif timestamp - last > _HALF and self._epoch:
                return self._epoch - _WRAP + timestamp  # a late unit from before the wrap
        self._last = timestamp
        return self._epoch + timestamp

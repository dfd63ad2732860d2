"""How often a publisher sends keyframes, measured before its passthrough rendition is advertised.

A passthrough rendition can only be cut where the publisher put keyframes, and real publishers
put them anywhere: OBS with keyframe interval 0 (auto) leaves x264's default of 250 frames,
ffmpeg ``-g 80`` at 30 fps gives 2.67 s, some encoders open with a longer first GOP. Its
segments' TARGETDURATION (RFC 8216bis 4.4.3.1) must cover its longest GOP, and a channel's
timing is fixed before any player sees its multivariant playlist; so the packager holds the
channel back while ``KeyframeProbe`` watches the first intervals, then decides once.

Pure: the source's video units in, a ``KeyframeVerdict`` out.
"""

from __future__ import annotations

from dataclasses import dataclass

from live.media.units import AccessUnit, TrackKind


@dataclass(frozen=True, slots=True)
class KeyframeVerdict:
    """Whether the passthrough rendition is advertised, and the keyframe interval it is cut to."""

    advertise: bool
    interval_s: float | None  # the longest interval measured; None when none was
    reason: str


class KeyframeProbe:
    """Watches keyframe intervals until ``intervals`` were seen or one ran past ``max_interval_s``."""

    __slots__ = ("_intervals", "_keys", "_last_dts", "_max_interval_ms", "verdict")

    def __init__(self, *, intervals: int = 2, max_interval_s: float = 6.0) -> None:
        if intervals < 1 or max_interval_s <= 0:
            raise ValueError("need at least one interval and a positive maximum")
        self._intervals = intervals
        self._max_interval_ms = round(max_interval_s * 1000)
        self._keys: list[int] = []
        self._last_dts: int | None = None
        self.verdict: KeyframeVerdict | None = None

    @property
    def measured_s(self) -> float | None:
        if len(self._keys) < 2:
            return None
        return max(b - a for a, b in zip(self._keys, self._keys[1:], strict=False)) / 1000

    def observe(self, unit: AccessUnit) -> KeyframeVerdict | None:
        """Take one source video unit (DTS order); the verdict once it is reached."""
        if self.verdict is not None or unit.kind is not TrackKind.VIDEO:
            return self.verdict
        self._last_dts = unit.dts_ms
        if unit.keyframe:
            if self._keys and unit.dts_ms - self._keys[-1] > self._max_interval_ms:
                return self._refuse(unit.dts_ms - self._keys[-1])
            self._keys.append(unit.dts_ms)
            if len(self._keys) > self._intervals:
                measured = self.measured_s
                self.verdict = KeyframeVerdict(
                    True, measured, f"keyframes at most {measured:.3f} s apart over "
                                    f"{self._intervals} intervals")
        elif self._keys and unit.dts_ms - self._keys[-1] > self._max_interval_ms:
            return self._refuse(unit.dts_ms - self._keys[-1])
        return self.verdict

    def conclude(self) -> KeyframeVerdict:
        """Decide now with what was seen (end of stream, or the packager cannot wait longer)."""
        if self.verdict is None:
            measured = self.measured_s
            if measured is None:
                self.verdict = KeyframeVerdict(False, None, "no keyframe interval measured in time")
            else:
                self.verdict = KeyframeVerdict(True, measured, f"keyframes at most {measured:.3f} s "
                                                               f"apart over {len(self._keys) - 1} intervals")
        return self.verdict

    def _refuse(self, gap_ms: int) -> KeyframeVerdict:
        self.verdict = KeyframeVerdict(
            False, None, f"keyframes {gap_ms / 1000:.1f} s apart, over the "
                         f"{self._max_interval_ms / 1000:.0f} s a segment may last")
        return self.verdict

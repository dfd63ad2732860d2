"""Real-time guard: when encoding cannot keep up, degrade in a fixed order, inside the ladder.

Pure state machine: the pipeline reports, per source frame, how long the frame's work took
and the frame interval it had; the guard answers with the next step once the work has exceeded
the time available over a whole window (a few seconds of media, so one slow frame or a
keyframe burst never triggers it). Every rendition in the multivariant playlist was promised to
the players that loaded it, so the order degrades quality before it takes anything away, and
operators and viewers can predict it:

1. a faster encoder preset on every rung (same parameter sets, so no new init segment);
2. half the frame rate on the top rung (the most expensive one);
3. half the frame rate on every rung, never below ``min_fps``;
4. only then stop the top rung's encoder; the packager keeps that rendition listed as
   EXT-X-GAP segments (RFC 8216bis 4.4.4.7), so players switch away without an error. The
   last encoded rung is never stopped.

Frames arriving too late are skipped by the pipeline itself at every stage, thinned so that no
hole in the timeline reaches a part target; latency never accumulates in a queue.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum


class ShedStep(Enum):
    FASTER_PRESET = "faster_preset"
    HALVE_TOP_FPS = "halve_top_fps"
    HALVE_FPS = "halve_fps"
    STOP_TOP_RUNG = "stop_top_rung"


SHED_ORDER: tuple[ShedStep, ...] = (
    ShedStep.FASTER_PRESET,
    ShedStep.HALVE_TOP_FPS,
    ShedStep.HALVE_FPS,
    ShedStep.STOP_TOP_RUNG,
)


@dataclass(frozen=True, slots=True)
class GuardSettings:
    window_s: float = 3.0  # media seconds of sustained overload before shedding one step
    overload_ratio: float = 1.0  # work time / frame interval above which a window counts
    #: a frame older than this when its encode would start is skipped (a player holds only
    #: PART-HOLD-BACK, 0.6 s, of media: a frame later than this makes it stall)
    max_lag_s: float = 0.25
    #: ... unless the rungs went this long without a frame: late frames are thinned, never dropped
    #: in a burst, so no hole in a rung's timeline reaches a part target (a player stalls there)
    max_skip_s: float = 0.1

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.overload_ratio <= 0 or self.max_lag_s <= 0 or self.max_skip_s <= 0:
            raise ValueError("guard settings must be positive")


class RealtimeGuard:
    """Windowed overload detector choosing the next ``ShedStep``."""

    __slots__ = ("_last_load", "_media_s", "_settings", "_work_s")

    def __init__(self, settings: GuardSettings | None = None) -> None:
        self._settings = settings or GuardSettings()
        self._media_s = 0.0
        self._work_s = 0.0
        self._last_load = 0.0

    @property
    def last_window_load(self) -> float:
        """Work time over media time in the last closed window (0 before the first closes)."""
        return self._last_load

    def observe(self, work_s: float, interval_s: float, possible: Collection[ShedStep]) -> ShedStep | None:
        """Account one frame; return the first ``possible`` step in ``SHED_ORDER`` to take now,
        if the window just closed overloaded."""
        if work_s < 0 or interval_s <= 0:
            raise ValueError("work_s must be >= 0 and interval_s > 0")
        self._media_s += interval_s
        self._work_s += work_s
        if self._media_s < self._settings.window_s * (1 - 1e-9):  # float sums of 1/fps
            return None
        self._last_load = self._work_s / self._media_s
        overloaded = self._last_load > self._settings.overload_ratio
        self._media_s = self._work_s = 0.0
        if not overloaded:
            return None
        return next((step for step in SHED_ORDER if step in possible), None)

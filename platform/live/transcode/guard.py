"""Real-time guard: when encoding cannot keep up, shed load in a fixed order.

Pure state machine: the pipeline reports, per source frame, how long the frame's work took
and the frame interval it had; the guard answers with the next shedding step once the work has
exceeded the time available over a whole window (a few seconds of media, so one slow frame or a
keyframe burst never triggers it). The order is fixed so operators and viewers can predict it:
drop the top encoded rung, then halve the frame rate, then alternate, never dropping the last
encoded rung and never going below ``min_fps``. Frames arriving too late are dropped by the
pipeline itself; latency never accumulates in a queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ShedStep(Enum):
    DROP_TOP_RUNG = "drop_top_rung"
    HALVE_FPS = "halve_fps"


SHED_ORDER: tuple[ShedStep, ...] = (ShedStep.DROP_TOP_RUNG, ShedStep.HALVE_FPS)


@dataclass(frozen=True, slots=True)
class GuardSettings:
    window_s: float = 3.0  # media seconds of sustained overload before shedding one step
    overload_ratio: float = 1.0  # work time / frame interval above which a window counts
    max_lag_s: float = 0.5  # a frame older than this when its encode would start is dropped

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.overload_ratio <= 0 or self.max_lag_s <= 0:
            raise ValueError("guard settings must be positive")


class RealtimeGuard:
    """Windowed overload detector choosing the next ``ShedStep``."""

    __slots__ = ("_last_load", "_media_s", "_next", "_settings", "_work_s")

    def __init__(self, settings: GuardSettings | None = None) -> None:
        self._settings = settings or GuardSettings()
        self._next = 0  # index into SHED_ORDER of the step to try first
        self._media_s = 0.0
        self._work_s = 0.0
        self._last_load = 0.0

    @property
    def last_window_load(self) -> float:
        """Work time over media time in the last closed window (0 before the first closes)."""
        return self._last_load

    def observe(
        self, work_s: float, interval_s: float, *, can_drop: bool, can_halve: bool
    ) -> ShedStep | None:
        """Account one frame; return the step to take now, if the window closed overloaded."""
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
        possible = {ShedStep.DROP_TOP_RUNG: can_drop, ShedStep.HALVE_FPS: can_halve}
        for offset in range(len(SHED_ORDER)):
            step = SHED_ORDER[(self._next + offset) % len(SHED_ORDER)]
            if possible[step]:
                self._next = (SHED_ORDER.index(step) + 1) % len(SHED_ORDER)
                return step
        return None

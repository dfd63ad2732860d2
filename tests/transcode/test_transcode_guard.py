"""Real-time guard state machine: when it sheds, and in which order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.transcode.guard import GuardSettings, RealtimeGuard, ShedStep

INTERVAL = 1 / 30


def _feed(guard: RealtimeGuard, work: float, frames: int, **able: bool) -> list[ShedStep]:
    steps = []
    for _ in range(frames):
        step = guard.observe(
            work, INTERVAL, can_drop=able.get("can_drop", True), can_halve=able.get("can_halve", True)
        )
        if step is not None:
            steps.append(step)
    return steps


def test_sustained_overload_sheds_in_the_fixed_order_one_step_per_window() -> None:
    guard = RealtimeGuard(GuardSettings(window_s=1.0))
    steps = _feed(guard, work=INTERVAL * 1.5, frames=4 * 30)
    assert steps == [
        ShedStep.DROP_TOP_RUNG,
        ShedStep.HALVE_FPS,
        ShedStep.DROP_TOP_RUNG,
        ShedStep.HALVE_FPS,
    ]
    assert guard.last_window_load == pytest.approx(1.5)


def test_keeping_up_never_sheds() -> None:
    guard = RealtimeGuard(GuardSettings(window_s=1.0))
    assert _feed(guard, work=INTERVAL * 0.9, frames=10 * 30) == []


def test_a_short_spike_inside_a_window_that_keeps_up_does_not_shed() -> None:
    guard = RealtimeGuard(GuardSettings(window_s=3.0))
    steps = _feed(guard, work=INTERVAL * 3, frames=10)  # a third of a second at 3x
    steps += _feed(guard, work=INTERVAL * 0.5, frames=80)  # the rest of the window at 0.5x
    assert steps == []


def test_impossible_steps_are_skipped_and_nothing_left_means_no_step() -> None:
    guard = RealtimeGuard(GuardSettings(window_s=1.0))
    assert _feed(guard, INTERVAL * 2, 30, can_drop=False) == [ShedStep.HALVE_FPS]
    assert _feed(guard, INTERVAL * 2, 30, can_halve=False) == [ShedStep.DROP_TOP_RUNG]
    assert _feed(guard, INTERVAL * 2, 60, can_drop=False, can_halve=False) == []


@given(
    works=st.lists(st.floats(0, 1.0), min_size=1, max_size=400),
    can_drop=st.booleans(),
    can_halve=st.booleans(),
)
@settings(max_examples=200)
def test_guard_only_returns_possible_steps_and_at_most_one_per_window(
    works: list[float], can_drop: bool, can_halve: bool
) -> None:
    window = 0.5
    guard = RealtimeGuard(GuardSettings(window_s=window))
    steps = 0
    for work in works:
        step = guard.observe(work, INTERVAL, can_drop=can_drop, can_halve=can_halve)
        if step is ShedStep.DROP_TOP_RUNG:
            assert can_drop
        if step is ShedStep.HALVE_FPS:
            assert can_halve
        steps += step is not None
    assert steps <= len(works) * INTERVAL / window + 1


def test_bad_observations_are_rejected() -> None:
    guard = RealtimeGuard()
    with pytest.raises(ValueError):
        guard.observe(-1.0, INTERVAL, can_drop=True, can_halve=True)
    with pytest.raises(ValueError):
        guard.observe(0.0, 0.0, can_drop=True, can_halve=True)

"""Real-time guard state machine: when it sheds, and in which order."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.transcode.guard import SHED_ORDER, GuardSettings, RealtimeGuard, ShedStep

INTERVAL = 1 / 30
ALL = frozenset(ShedStep)


def _feed(guard: RealtimeGuard, work: float, frames: int,
          possible: frozenset[ShedStep] = ALL) -> list[ShedStep]:
    steps = []
    for _ in range(frames):
        step = guard.observe(work, INTERVAL, possible)
        if step is not None:
            steps.append(step)
    return steps


def test_sustained_overload_sheds_one_step_per_window_in_the_fixed_order() -> None:
    guard = RealtimeGuard(GuardSettings(window_s=1.0))
    possible = set(ALL)
    taken = []
    for _ in range(4):  # each step taken becomes impossible, as when its last notch is used
        (step,) = _feed(guard, work=INTERVAL * 1.5, frames=30, possible=frozenset(possible))
        taken.append(step)
        possible.discard(step)
    assert taken == list(SHED_ORDER)
    assert guard.last_window_load == pytest.approx(1.5)


def test_the_ladder_degrades_before_any_rung_stops() -> None:
    """A faster preset, then frame rate, and only then a rung stops (it stays listed as gaps)."""
    assert SHED_ORDER.index(ShedStep.STOP_TOP_RUNG) == len(SHED_ORDER) - 1
    assert SHED_ORDER[0] is ShedStep.FASTER_PRESET
    assert SHED_ORDER.index(ShedStep.HALVE_TOP_FPS) < SHED_ORDER.index(ShedStep.HALVE_FPS)
    guard = RealtimeGuard(GuardSettings(window_s=1.0))
    assert _feed(guard, INTERVAL * 2, 90) == [ShedStep.FASTER_PRESET] * 3


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
    assert _feed(guard, INTERVAL * 2, 30, ALL - {ShedStep.FASTER_PRESET}) == [ShedStep.HALVE_TOP_FPS]
    assert _feed(guard, INTERVAL * 2, 30, frozenset({ShedStep.STOP_TOP_RUNG})) == [ShedStep.STOP_TOP_RUNG]
    assert _feed(guard, INTERVAL * 2, 60, frozenset()) == []


@given(
    works=st.lists(st.floats(0, 1.0), min_size=1, max_size=400),
    possible=st.frozensets(st.sampled_from(list(ShedStep))),
)
@settings(max_examples=200)
def test_guard_only_returns_possible_steps_and_at_most_one_per_window(
    works: list[float], possible: frozenset[ShedStep]
) -> None:
    window = 0.5
    guard = RealtimeGuard(GuardSettings(window_s=window))
    steps = 0
    for work in works:
        step = guard.observe(work, INTERVAL, possible)
        if step is not None:
            assert step in possible
            assert all(earlier not in possible for earlier in SHED_ORDER[:SHED_ORDER.index(step)])
        steps += step is not None
    assert steps <= len(works) * INTERVAL / window + 1


def test_bad_observations_are_rejected() -> None:
    guard = RealtimeGuard()
    with pytest.raises(ValueError):
        guard.observe(-1.0, INTERVAL, ALL)
    with pytest.raises(ValueError):
        guard.observe(0.0, 0.0, ALL)

"""Segment boundary and frame-rate decimation: aligned IDRs on every rung, for any timeline."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.transcode.pipeline import BoundaryClock, keeps, percentile

timelines = st.lists(st.integers(1, 200), min_size=1, max_size=300).map(
    lambda steps: [sum(steps[:i]) for i in range(len(steps))]
)


@given(
    pts=timelines,
    start=st.integers(0, 10_000),
    segment_ms=st.sampled_from([500, 1000, 2000, 6000]),
)
@settings(max_examples=200)
def test_boundary_frames_are_the_first_at_or_past_each_reached_multiple(
    pts: list[int], start: int, segment_ms: int
) -> None:
    clock = BoundaryClock(segment_ms / 1000)
    timeline = [start + p for p in pts]
    marked = [p for p in timeline if clock.crosses(p)]
    expected = [timeline[0]]
    for p in timeline[1:]:
        if p // segment_ms > expected[-1] // segment_ms:
            expected.append(p)
    assert marked == expected


@given(pts=timelines, divisors=st.sets(st.integers(1, 8), min_size=1, max_size=5),
       skipped=st.sets(st.integers(0, 400)))
@settings(max_examples=200)
def test_every_rung_keeps_every_boundary_frame_and_thins_by_time_between(
    pts: list[int], divisors: set[int], skipped: set[int]
) -> None:
    """Frames the guard skipped (``skipped``) never stretch a rung's spacing: it keeps the first
    frame at least ``divisor`` - 1/2 intervals after its last, so its steps are what its rate
    asks for, or the offered frames' own steps, plus less than one frame."""
    interval = 1000 / 30
    offered = [p for i, p in enumerate(pts) if i not in skipped or i == 0]
    clock = BoundaryClock(2.0)
    kept: dict[int, list[int]] = {d: [] for d in divisors}
    boundaries = []
    for p in offered:
        boundary = clock.crosses(p)
        if boundary:
            boundaries.append(p)
        for d in divisors:
            if keeps(p, kept[d][-1] if kept[d] else None, d, interval, boundary=boundary):
                kept[d].append(p)
    steps = [b - a for a, b in itertools.pairwise(offered)]
    for d, frames in kept.items():
        assert set(boundaries) <= set(frames)
        assert set(frames) <= set(offered)
        widest_offered = max(steps, default=0)
        for a, b in itertools.pairwise(frames):
            assert b - a <= max(d * interval, widest_offered) + widest_offered
            if b not in boundaries and d > 1:
                assert b - a >= (d - 0.5) * interval


def test_a_restarted_clock_cuts_at_the_same_pts_as_the_original() -> None:
    pts = list(range(0, 10_000, 33))
    original = BoundaryClock(2.0)
    cuts = [p for p in pts if original.crosses(p)]
    restarted = BoundaryClock(2.0)
    resumed = [p for p in pts if p >= 4500 and restarted.crosses(p)]
    assert resumed[0] == 4521  # the resume point itself is an IDR
    assert resumed[1:] == [p for p in cuts if p > 4521]


@given(samples=st.lists(st.floats(0, 1e4), min_size=1, max_size=200), q=st.floats(0, 100))
@settings(max_examples=200)
def test_percentile_is_a_sample_and_splits_the_samples_at_q(samples: list[float], q: float) -> None:
    value = percentile(samples, q)
    assert value in samples
    below = sum(1 for s in samples if s <= value)
    assert below >= len(samples) * q / 100


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 95) is None
    with pytest.raises(ValueError):
        BoundaryClock(0.0)

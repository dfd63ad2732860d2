"""The probe's playout clock: a frame late for its slot is a stall, and the clock waits for it."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.selftest.probe import DecodedFrame, Percentiles, _Tally

T0 = 1_795_000_000.0


def frames(arrivals: list[float], fps: int = 30, capture_lead_s: float = 0.2) -> list[DecodedFrame]:
    """Frame i captured at T0 + i/fps, decoded at T0 + arrivals[i], painted with its capture."""
    return [DecodedFrame(T0 + arrival, i / fps, round((T0 + i / fps - capture_lead_s) * 1000))
            for i, arrival in enumerate(arrivals)]


def play(decoded: list[DecodedFrame]) -> _Tally:
    tally = _Tally()
    for frame in decoded:
        tally.frame(frame)
    return tally


def test_frames_that_arrive_in_time_never_stall_and_show_on_their_slot() -> None:
    # parts of 5 frames arriving together, each part a little before its first frame's slot
    arrivals = [(i // 5) * 5 / 30 for i in range(30)]
    tally = play(frames(arrivals))
    assert tally.stalls == 0 and tally.stall_s == 0
    assert tally.playout == pytest.approx([200.0] * 30, abs=1)


def test_a_late_part_is_one_stall_and_delays_everything_after_it() -> None:
    arrivals = [i / 30 for i in range(10)] + [10 / 30 + 0.5 + i / 30 for i in range(10)]
    tally = play(frames(arrivals))
    assert tally.stalls == 1 and tally.stall_s == pytest.approx(0.5, abs=1e-6)
    assert tally.playout[:10] == pytest.approx([200.0] * 10, abs=1)
    assert tally.playout[10:] == pytest.approx([700.0] * 10, abs=1)


def test_unreadable_frames_are_counted_but_not_measured() -> None:
    tally = _Tally()
    tally.frame(DecodedFrame(T0, 0.0, None))
    tally.frame(DecodedFrame(T0 + 0.1, 1 / 30, round(T0 * 1000)))
    assert (tally.frames, tally.unreadable, len(tally.latencies)) == (2, 1, 1)


@given(st.lists(st.floats(0, 0.3), min_size=1, max_size=120))
@settings(max_examples=200)
def test_playout_never_precedes_decode_and_shows_frames_one_slot_apart_at_least(delays: list[float]) -> None:
    arrivals = [i / 30 + d for i, d in enumerate(delays)]
    decoded = frames(arrivals)
    tally = play(decoded)
    assert all(p >= d - 1e-6 for p, d in zip(tally.playout, tally.latencies, strict=True))
    shown = [f.painted_ms + p for f, p in zip(decoded, tally.playout, strict=True)]
    assert all(b - a >= 1000 / 30 - 2 for a, b in itertools.pairwise(shown))
    if all(arrival <= arrivals[0] + i / 30 for i, arrival in enumerate(arrivals)):
        assert tally.stalls == 0
        assert max(tally.playout) - min(tally.playout) <= 2  # one constant delay, no waits


def test_percentiles_of_nothing_are_none_and_of_something_are_ordered() -> None:
    assert Percentiles.of([]) is None
    p = Percentiles.of([float(x) for x in range(1, 101)])
    assert p is not None and p.min <= p.p50 <= p.p95 <= p.p99 <= p.max == 100

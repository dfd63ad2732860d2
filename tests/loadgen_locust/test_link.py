"""Properties of the viewer's link schedule parser and pacer (pure: no clock, no socket)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.locustfiles.link import MAX_CHUNK, MIN_CHUNK, LinkPacer, LinkSchedule

steps = st.lists(
    st.tuples(st.integers(1, 1_000_000), st.integers(1, 500)), max_size=5, unique_by=lambda s: s[1]
)


@settings(max_examples=150)
@given(st.integers(1, 1_000_000), steps)
def test_schedule_text_round_trips_and_each_step_holds_until_the_next(
    first: int, rest: list[tuple[int, int]]
) -> None:
    items = [(0, first), *sorted((at, kbps) for kbps, at in rest)]
    schedule = LinkSchedule.parse(",".join(f"{kbps}@{at}" for at, kbps in items))
    assert schedule.steps == tuple((float(at), float(kbps)) for at, kbps in items)
    for i, (at, kbps) in enumerate(items):
        assert schedule.kbps_at(at) == kbps
        end = items[i + 1][0] if i + 1 < len(items) else at + 10
        assert schedule.kbps_at((at + end) / 2) == kbps


def test_a_bare_rate_is_constant() -> None:
    assert LinkSchedule.parse("2500").steps == ((0.0, 2500.0),)
    assert LinkSchedule.parse(" 400 @ 0 , 3000@20 ").kbps_at(25) == 3000


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "item 1 ''"),
        ("fast", "item 1 'fast'"),
        ("3000@0,400", "item 2 '400'"),
        ("3000@0,0@5", "kbit/s must be > 0"),
        ("3000@0,-5@5", "kbit/s must be > 0"),
        ("3000@0,400@-1", "seconds must be >= 0"),
        ("3000@5", "first item must start at 0"),
        ("3000@0,400@20,500@10", "times must increase"),
        ("3000@0,inf@4", "kbit/s must be > 0"),
    ],
)
def test_bad_schedules_are_refused_naming_the_item(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint.replace("(", r"\(")):
        LinkSchedule.parse(text)


@settings(max_examples=150)
@given(
    st.integers(8, 100_000),
    st.lists(st.tuples(st.floats(0.0, 2.0), st.integers(0, 200_000)), min_size=1, max_size=40),
)
def test_pacer_never_delivers_faster_than_the_link(kbps: int, reads: list[tuple[float, int]]) -> None:
    """Bytes in a busy stretch take exactly bytes*8/rate; an idle link starts at once."""
    pacer = LinkPacer(LinkSchedule.parse(str(kbps)), origin=0.0)
    now, busy_from, busy_bytes = 0.0, None, 0
    for gap, size in reads:
        now += gap
        delay = pacer.take(now, size)
        assert delay >= 0
        if busy_from is None or now >= busy_from + busy_bytes * 8 / (kbps * 1000):
            busy_from, busy_bytes = now, 0  # link was idle: this read starts a new busy stretch
        busy_bytes += size
        assert now + delay == pytest.approx(busy_from + busy_bytes * 8 / (kbps * 1000), abs=1e-6)


def test_pacer_applies_the_rate_in_force_when_a_chunk_goes_on_the_link() -> None:
    pacer = LinkPacer(LinkSchedule.parse("8000@0,800@10"), origin=100.0)
    assert pacer.take(100.0, 10_000) == pytest.approx(0.01)
    assert pacer.take(110.0, 10_000) == pytest.approx(0.1)
    assert MIN_CHUNK <= pacer.chunk_bytes(110.0) <= MAX_CHUNK
    assert pacer.chunk_bytes(100.0) > pacer.chunk_bytes(110.0)
    with pytest.raises(ValueError, match="bytes"):
        pacer.take(111.0, -1)

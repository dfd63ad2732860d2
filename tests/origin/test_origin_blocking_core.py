"""Blocking-reload arithmetic (RFC 8216bis 6.2.5.2) and the wait set, against brute-force models."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from live.origin.blocking import (
    ANY_PART,
    DirectiveError,
    Directives,
    PartTarget,
    Progress,
    SegmentTarget,
    WaitSet,
    advance_part_limit,
    check_reachable,
    parse_directives,
    parts_ahead,
)


def test_directives_parse_msn_part_and_skip() -> None:
    assert parse_directives({}) == Directives()
    assert parse_directives({"_HLS_msn": "12"}) == Directives(12, None, False)
    assert parse_directives({"_HLS_msn": "12", "_HLS_part": "3", "_HLS_skip": "YES"}) == \
        Directives(12, 3, True)
    assert parse_directives({"_HLS_skip": "v2"}).skip


@pytest.mark.parametrize(("query", "reason"), [
    ({"_HLS_part": "1"}, "requires _HLS_msn"),
    ({"_HLS_msn": "-1"}, "non-negative"),
    ({"_HLS_msn": "x"}, "non-negative"),
    ({"_HLS_msn": "\uff11\uff12"}, "non-negative"),  # fullwidth digits
    ({"_HLS_msn": "1" * 19}, "non-negative"),
    ({"_HLS_msn": "1", "_HLS_part": ""}, "non-negative"),
    ({"_HLS_skip": "NO"}, "expected YES or v2"),
])
def test_malformed_directives_are_client_errors(query: dict[str, str], reason: str) -> None:
    with pytest.raises(DirectiveError, match=reason):
        parse_directives(query)


def test_part_index_past_a_segments_last_part_means_the_next_segment() -> None:
    closed = Progress(4, 5, segment_end=True)  # segment 4 had parts 0-5
    assert PartTarget(4, 5).ready(closed)
    assert not PartTarget(4, 6).ready(closed)  # = part 5.0, not there yet
    assert PartTarget(4, 6).ready(Progress(5, 0, False))
    assert PartTarget(4, 99).ready(Progress(5, 0, False))


def test_segment_target_waits_for_the_segment_to_complete() -> None:
    assert not SegmentTarget(4).ready(Progress(4, 5, False))
    assert SegmentTarget(4).ready(Progress(4, 5, True))
    assert SegmentTarget(4).ready(Progress(5, 0, False))
    assert not SegmentTarget(0).ready(None)
    assert ANY_PART.ready(Progress(0, 0, False)) and not ANY_PART.ready(None)


def test_advance_part_limit_follows_the_rfc() -> None:
    assert advance_part_limit(0.25) == pytest.approx(12.0)
    assert advance_part_limit(1 / 3) == pytest.approx(9.0)
    assert advance_part_limit(1.0) == 3.0
    assert advance_part_limit(2.0) == 3.0


def test_msn_more_than_two_past_the_last_is_refused() -> None:
    last = Progress(10, 2, False)
    check_reachable(Directives(12), last, 0.334, 6)
    with pytest.raises(DirectiveError, match="more than two segments"):
        check_reachable(Directives(13), last, 0.334, 6)


def test_part_beyond_the_advance_limit_is_refused() -> None:
    last = Progress(10, 2, False)  # limit 3 / 0.334 = 8.98 parts ahead
    check_reachable(Directives(10, 10), last, 0.334, 6)  # 8 ahead
    with pytest.raises(DirectiveError, match="advance part limit is 8"):
        check_reachable(Directives(10, 11), last, 0.334, 6)  # 9 ahead
    # across the boundary: 10.3, 10.4, 10.5 then 11.0 ... 11.5 is 9 ahead
    check_reachable(Directives(11, 4), last, 0.334, 6)
    with pytest.raises(DirectiveError):
        check_reachable(Directives(11, 5), last, 0.334, 6)


def test_index_past_a_closed_segment_counts_as_the_next_part_for_the_limit() -> None:
    closed = Progress(10, 5, True)
    assert parts_ahead(closed, PartTarget(10, 40), 6) == 1
    check_reachable(Directives(10, 40), closed, 0.334, 6)


def test_requests_for_published_positions_are_always_reachable() -> None:
    last = Progress(10, 2, True)
    check_reachable(Directives(0, 50), last, 0.334, 6)
    check_reachable(Directives(3), last, 0.334, 6)


# -- properties ---------------------------------------------------------------------------------

def stream_positions(layout: list[int]) -> list[Progress]:
    """Every progress a rendition passes through when its segments have ``layout`` parts."""
    out = []
    for msn, count in enumerate(layout):
        for index in range(count):
            out.append(Progress(msn, index, index == count - 1))
    return out


def brute_part_ready(history: list[Progress], layout: list[int], msn: int, part: int) -> bool:
    """The RFC's reading, literally: the part exists, or it is past a complete segment's last
    part and part 0 of the next segment exists."""
    published = {(p.msn, p.part) for p in history}
    if (msn, part) in published:
        return True
    complete = {p.msn for p in history if p.segment_end}
    if msn in complete and part >= layout[msn]:
        return (msn + 1, 0) in published
    return False


layouts = st.lists(st.integers(1, 7), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(layouts, st.data())
def test_part_readiness_matches_the_literal_rule(layout: list[int], data: st.DataObject) -> None:
    positions = stream_positions(layout)
    upto = data.draw(st.integers(0, len(positions)))
    history = positions[:upto]
    progress = history[-1] if history else None
    msn = data.draw(st.integers(0, len(layout) - 1))
    part = data.draw(st.integers(0, 9))
    assert PartTarget(msn, part).ready(progress) == brute_part_ready(history, layout, msn, part)
    brute_segment = any(p.msn == msn and p.segment_end for p in history)
    assert SegmentTarget(msn).ready(progress) == brute_segment


@settings(max_examples=200, deadline=None)
@given(layouts, st.data())
def test_parts_ahead_counts_parts_to_publish_when_segments_are_regular(
        layout: list[int], data: st.DataObject) -> None:
    per = data.draw(st.integers(1, 7))
    regular = [per] * len(layout)
    positions = stream_positions(regular)
    here = data.draw(st.integers(0, len(positions) - 1))
    there = data.draw(st.integers(here, len(positions) - 1))
    target = positions[there]
    assert parts_ahead(positions[here], PartTarget(target.msn, target.part), per) == there - here


@settings(max_examples=200, deadline=None)
@given(layouts, st.lists(st.tuples(st.booleans(), st.integers(0, 12), st.integers(0, 8)), max_size=30),
       st.data())
def test_wait_set_releases_exactly_the_ready_targets_once(
        layout: list[int], wanted: list[tuple[bool, int, int]], data: st.DataObject) -> None:
    positions = stream_positions(layout)
    waits: WaitSet[object] = WaitSet()
    tokens: dict[object, PartTarget | SegmentTarget] = {}
    for is_part, msn, part in wanted:
        target: PartTarget | SegmentTarget = PartTarget(msn, part) if is_part else SegmentTarget(msn)
        token = waits.token_for(target, object)
        assert tokens.setdefault(token, target) == target  # equal targets share a token
    pending = dict(tokens)
    steps = sorted(data.draw(st.lists(st.integers(0, len(positions) - 1), max_size=6)))
    for step in steps:
        progress = positions[step]
        released = waits.release(progress)
        assert len(set(map(id, released))) == len(released)
        for token in released:
            assert pending.pop(token).ready(progress)
        assert not any(target.ready(progress) for target in pending.values())
        assert len(waits) == len(pending)
    assert set(map(id, waits.drain())) == set(map(id, pending))
    assert len(waits) == 0

"""The sequencer turns any arrival order, with duplicates and losses, into the log's order once."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from live.chat.sequencer import Sequencer


@settings(max_examples=200)
@given(data=st.data(), n=st.integers(1, 60))
def test_any_interleaving_with_duplicates_delivers_each_id_once_in_order(data: st.DataObject, n: int) -> None:
    arrivals = data.draw(st.permutations(list(range(1, n + 1))))
    dups = data.draw(st.lists(st.integers(1, n), max_size=20))
    stream = list(arrivals)
    for d in dups:
        stream.insert(data.draw(st.integers(0, len(stream))), d)
    seq: Sequencer[int] = Sequencer(1)
    out: list[int] = []
    for event_id in stream:
        out.extend(seq.offer(event_id, event_id))
        gap = seq.gap()
        if gap is not None:
            assert gap[0] == seq.next_id <= gap[1]
    assert out == list(range(1, n + 1))
    assert seq.gap() is None and seq.pending() == 0


@settings(max_examples=200)
@given(data=st.data(), n=st.integers(1, 60))
def test_lost_ids_given_up_via_skip_to_never_reorder_the_rest(data: st.DataObject, n: int) -> None:
    kept = sorted(data.draw(st.sets(st.integers(1, n))))
    arrivals = data.draw(st.permutations(kept))
    seq: Sequencer[int] = Sequencer(1, max_pending=data.draw(st.integers(1, 70)))
    out: list[int] = []
    for event_id in arrivals:
        out.extend(seq.offer(event_id, event_id))
    while (gap := seq.gap()) is not None:
        out.extend(seq.skip_to(gap[1] + 1))
    assert out == sorted(out) and len(set(out)) == len(out)
    assert set(out) <= set(kept)
    # only a full pending buffer can force ids to be given up early; with room, nothing kept is lost
    if len(kept) <= seq.max_pending:
        assert out == kept


def test_stale_ids_below_the_start_are_dropped() -> None:
    seq: Sequencer[str] = Sequencer(10)
    assert seq.offer(9, "old") == []
    assert seq.offer(11, "b") == [] and seq.gap() == (10, 10)
    assert seq.offer(10, "a") == ["a", "b"]

"""Properties of the viewer's pure ABR rule and playout buffer model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.locustfiles.player_model import PlayoutBuffer, ThroughputAbr

bandwidths = st.lists(st.integers(1, 10_000_000), min_size=1, max_size=6, unique=True).map(
    lambda xs: tuple(sorted(xs)))
samples = st.lists(st.tuples(st.floats(0.05, 4.0), st.floats(0.0, 8.0), st.integers(0, 5_000_000)),
                   max_size=60)


@settings(max_examples=150)
@given(bandwidths, samples)
def test_abr_index_stays_within_the_renditions_and_moves_one_step_at_a_time(
        bws: tuple[int, ...], obs: list[tuple[float, float, int]]) -> None:
    abr = ThroughputAbr(bws)
    previous = abr.index
    for media_s, download_s, size in obs:
        index = abr.observe(media_s, download_s, size)
        assert 0 <= index < len(bws)
        assert abs(index - previous) <= 1
        if download_s > media_s:
            assert index == max(0, previous - 1)
        previous = index


@settings(max_examples=100)
@given(bandwidths, st.floats(0.1, 2.0))
def test_abr_climbs_to_the_top_under_sustained_headroom(bws: tuple[int, ...], media_s: float) -> None:
    abr = ThroughputAbr(bws)
    huge = bws[-1]  # bytes: throughput over a 10 ms download dwarfs every bandwidth
    for _ in range(abr.up_after * len(bws)):
        abr.observe(media_s, 0.01, huge)
    assert abr.index == len(bws) - 1


def test_abr_rejects_unordered_renditions() -> None:
    with pytest.raises(ValueError, match="ascending"):
        ThroughputAbr((2_000_000, 1_000_000))


arrivals = st.lists(st.tuples(st.floats(0.0, 3.0), st.floats(0.0, 2.0)), max_size=80)


@settings(max_examples=150)
@given(st.floats(0.0, 3.0), arrivals)
def test_buffer_accounts_every_second_as_played_buffered_or_stalled(
        threshold: float, steps: list[tuple[float, float]]) -> None:
    buf = PlayoutBuffer(start_threshold=threshold)
    now, added, stall_sum = 0.0, 0.0, 0.0
    for gap, media in steps:
        now += gap
        stall = buf.add(now, media)
        added += media
        if stall is not None:
            assert stall >= 0
            stall_sum += stall
        assert buf.level >= 0
        # media is conserved: what arrived is either played or still buffered
        assert buf.played_s + buf.level == pytest.approx(added, abs=1e-6)
    assert buf.stalled_s == pytest.approx(stall_sum)
    assert 0.0 <= buf.rebuffer_ratio <= 1.0


def test_buffer_records_a_stall_when_media_arrives_after_the_buffer_ran_dry() -> None:
    buf = PlayoutBuffer(start_threshold=0.5)
    assert buf.add(0.0, 1.0) is None and buf.playing
    assert buf.add(3.0, 1.0) == pytest.approx(2.0)  # dry at t=1, refilled at t=3
    assert buf.stalls == 1
    assert buf.rebuffer_ratio == pytest.approx(2.0 / 3.0)

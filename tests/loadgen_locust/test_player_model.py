"""Properties of the viewer's pure throughput estimator, ABR rule, rendition clock and playout buffer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadgen.locustfiles.player_model import (
    BandwidthEstimator,
    PlayoutBuffer,
    RenditionClock,
    ThroughputAbr,
    choose_rendition,
)

bandwidths = st.lists(st.integers(1, 10_000_000), min_size=1, max_size=6, unique=True).map(
    lambda xs: tuple(sorted(xs))
)
#: (bytes, transfer seconds) of media transfers
transfers = st.lists(st.tuples(st.integers(0, 5_000_000), st.floats(0.0, 8.0)), max_size=60)


@settings(max_examples=150)
@given(
    st.lists(st.tuples(st.integers(1, 5_000_000), st.floats(0.0, 8.0)), min_size=1, max_size=60),
    st.floats(0.5, 20),
    st.floats(0.5, 20),
)
def test_estimate_stays_within_the_sampled_throughputs_and_never_exceeds_either_ewma(
    samples: list[tuple[int, float]], fast: float, slow: float
) -> None:
    est = BandwidthEstimator(fast_half_life=fast, slow_half_life=slow)
    rates = []
    for size, seconds in samples:
        est.sample(size, seconds)
        rates.append(size * 8 / max(seconds, est.min_sample_s))
        assert min(rates) * (1 - 1e-9) <= est.estimate_bps <= max(rates) * (1 + 1e-9)


def test_estimate_is_the_default_until_the_first_sample_then_floors_transfer_time_at_50_ms() -> None:
    est = BandwidthEstimator()
    assert est.estimate_bps == 500_000
    est.sample(12_500, 0.001)  # 100 kbit in 1 ms: counted as 50 ms, so 2 Mbit/s
    assert est.estimate_bps == pytest.approx(2_000_000)


def test_estimate_drops_faster_than_it_climbs_like_hls_js() -> None:
    """Equal transfer time at 0.5 then at 3 Mbit/s: the fall is larger than the climb back."""
    est = BandwidthEstimator()
    for _ in range(60):
        est.sample(75_000, 0.2)  # 3 Mbit/s
    top = est.estimate_bps
    for _ in range(30):
        est.sample(12_500, 0.2)  # 0.5 Mbit/s, 6 s of transfer time
    low = est.estimate_bps
    for _ in range(30):
        est.sample(75_000, 0.2)  # 3 Mbit/s again, 6 s
    back = est.estimate_bps
    assert top == pytest.approx(3_000_000)
    assert 500_000 < low < 1_200_000
    assert back - low < top - low
    assert back < 2_600_000


@settings(max_examples=200)
@given(bandwidths, st.data(), st.floats(0.0, 50_000_000))
def test_choice_is_the_highest_rendition_that_fits_with_more_headroom_to_go_up(
    bws: tuple[int, ...], data: st.DataObject, estimate: float
) -> None:
    current = data.draw(st.integers(0, len(bws) - 1))
    chosen = choose_rendition(bws, current, estimate)
    assert 0 <= chosen < len(bws)
    factor = 0.95 if chosen <= current else 0.7
    if bws[chosen] < factor * estimate:
        # nothing better fits
        for higher in range(chosen + 1, len(bws)):
            assert bws[higher] >= (0.95 if higher <= current else 0.7) * estimate
    else:
        assert chosen == 0  # nothing fits: the lowest
    # more throughput never picks a lower rendition
    assert choose_rendition(bws, current, estimate * 2) >= chosen


def test_between_the_two_factors_the_player_stays_where_it_is() -> None:
    bws = (400_000, 900_000, 1_000_000)
    estimate = 1_200_000  # 0.95 x 1.2 M fits 1 M, 0.7 x 1.2 M does not
    assert choose_rendition(bws, 2, estimate) == 2
    assert choose_rendition(bws, 1, estimate) == 1
    assert choose_rendition(bws, 0, estimate) == 0


@settings(max_examples=150)
@given(bandwidths, transfers)
def test_abr_index_stays_within_the_renditions_and_follows_the_rule(
    bws: tuple[int, ...], obs: list[tuple[int, float]]
) -> None:
    abr = ThroughputAbr(bws)
    for size, seconds in obs:
        previous = abr.index
        index = abr.observe(size, seconds)
        assert 0 <= index < len(bws)
        assert index == choose_rendition(bws, previous, abr.estimator.estimate_bps)


@settings(max_examples=100)
@given(bandwidths, st.floats(0.1, 2.0))
def test_abr_climbs_to_the_top_when_throughput_dwarfs_every_rendition(
    bws: tuple[int, ...], media_s: float
) -> None:
    abr = ThroughputAbr(bws)
    for _ in range(5):
        abr.observe(bws[-1] * 2, 0.05)  # bytes: 16 x 2 x the top bandwidth per second
    assert abr.index == len(bws) - 1


def test_abr_falls_to_the_lowest_when_the_link_cannot_carry_the_top() -> None:
    abr = ThroughputAbr((400_000, 900_000, 1_000_000), index=2)
    for _ in range(20):
        abr.observe(62_500, 1.0)  # 500 kbit/s
    assert abr.index == 0


def test_abr_rejects_unordered_renditions() -> None:
    with pytest.raises(ValueError, match="ascending"):
        ThroughputAbr((2_000_000, 1_000_000))


def test_estimator_rejects_bad_samples_and_half_lives() -> None:
    with pytest.raises(ValueError, match="half-life"):
        BandwidthEstimator(fast_half_life=0)
    with pytest.raises(ValueError, match="sample"):
        BandwidthEstimator().sample(100, float("nan"))


@settings(max_examples=100)
@given(st.lists(st.tuples(st.floats(0.0, 5.0), st.sampled_from(["a", "b", "c"])), max_size=30))
def test_rendition_clock_books_every_second_to_exactly_one_rendition(steps: list[tuple[float, str]]) -> None:
    clock = RenditionClock()
    now, booked = 0.0, 0.0
    assert clock.enter(now, "a") is None
    for gap, name in steps:
        now += gap
        left = clock.current
        ended = clock.enter(now, name)
        assert ended is not None and ended[0] == left
        booked += ended[1]
    now += 1.0
    last = clock.stop(now)
    assert last is not None and last[1] == pytest.approx(1.0)
    booked += last[1]
    assert booked == pytest.approx(now)
    assert sum(clock.totals.values()) == pytest.approx(now)
    assert clock.stop(now + 5) is None  # stopped: nothing more is booked


arrivals = st.lists(st.tuples(st.floats(0.0, 3.0), st.floats(0.0, 2.0)), max_size=80)


@settings(max_examples=150)
@given(st.floats(0.0, 3.0), arrivals)
def test_buffer_accounts_every_second_as_played_buffered_or_stalled(
    threshold: float, steps: list[tuple[float, float]]
) -> None:
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

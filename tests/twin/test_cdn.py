from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from twin.model.cdn import TierQueue, deliver

BITRATE = np.array([6e6, 3.5e6, 1.5e6])
PART = 0.333


def _deliver(served: np.ndarray, channels: np.ndarray, pops: np.ndarray):
    return deliver(served, channels, pops, BITRATE, PART, np.full(pops.shape, 1e18))


def test_coalescing_keeps_origin_flat_when_a_watched_stream_goes_10x() -> None:
    channels = np.array([1.0, 1.0, 50.0])
    pops = np.array([10.0, 5.0])
    served = np.full((3, 2, 3), 2000.0)
    before = _deliver(served, channels, pops)
    spiked = served.copy()
    spiked[0] *= 10.0
    after = _deliver(spiked, channels, pops)
    assert after.edge_rps.sum() > before.edge_rps.sum() * 3
    assert after.origin_rps == pytest.approx(before.origin_rps, rel=1e-6)
    assert after.edge_demand_bps.sum() > before.edge_demand_bps.sum()


def test_one_viewer_costs_one_upstream_fetch_per_object() -> None:
    served = np.zeros((1, 1, 3))
    served[0, 0, 0] = 1e-9  # vanishing audience: each object has P(active) ~ its mean
    d = _deliver(served, np.array([1.0]), np.array([1.0]))
    assert d.edge_miss_rps[0] == pytest.approx(d.edge_rps[0], rel=1e-6)


@settings(max_examples=100, deadline=None)
@given(
    served=hnp.arrays(np.float64, (4, 3, 3), elements=st.floats(0.0, 1e7)),
    channels=hnp.arrays(np.float64, 4, elements=st.floats(1.0, 1e5)),
    pops=hnp.arrays(np.float64, 3, elements=st.floats(1.0, 100.0)),
)
def test_tiers_never_send_upstream_more_than_they_receive(served, channels, pops) -> None:
    d = _deliver(served, channels, pops)
    assert np.all(d.edge_miss_rps <= d.edge_rps * (1 + 1e-9) + 1e-9)
    assert np.all(d.shield_miss_rps <= d.edge_miss_rps * (1 + 1e-9) + 1e-9)
    # egress equals bitrate x viewers, per region
    assert np.allclose(d.edge_demand_bps, served.sum(axis=0) @ BITRATE, rtol=1e-9)
    assert np.all(d.edge_hit_ratio >= -1e-9) and np.all(d.edge_hit_ratio <= 1 + 1e-9)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0.0, 1e6), min_size=1, max_size=50), st.integers(1, 50))
def test_tier_backlog_stays_bounded_and_drains(loads: list[float], servers: int) -> None:
    q = TierQueue("t", service_rate=100.0, max_delay_s=5.0)
    for load in loads:
        q.step(1.0, load, servers)
        assert 0.0 <= q.backlog <= servers * 100.0 * 5.0 + 1e-6
        assert q.extra_delay <= 5.0 + 1e-9
    for _ in range(10):
        q.step(1.0, 0.0, servers)
    assert q.backlog == 0.0 and q.mean_wait() == 0.0

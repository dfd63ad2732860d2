"""Conservation: viewers in = viewers out + present; egress = bitrate x viewers per tier."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.model.viewers import FluidAudience, rendition_shares
from twin.run import simulate

from .conftest import shortened


@pytest.fixture(scope="module")
def spike_run(cal):
    return simulate(shortened("viral-spike-10x", 420.0, tracers=5), seed=3, calibration=cal)


def test_viewers_in_equal_viewers_out_plus_present(spike_run) -> None:
    t = spike_run.totals
    assert t["viewers_initial"] + t["viewers_arrived"] == pytest.approx(
        t["viewers_departed"] + t["viewers_present"], rel=1e-12
    )
    for row in spike_run.rows:  # and at every recorded step
        assert t["viewers_initial"] + row["arrived"] == pytest.approx(
            row["departed"] + row["viewers"], rel=1e-12
        )


def test_streams_started_minus_stopped_are_live(spike_run) -> None:
    t = spike_run.totals
    assert t["streams_initial"] + t["streams_started"] - t["streams_stopped"] == t["streams_live"]


def test_edge_egress_is_bitrate_times_viewers_per_region(spike_run, cal) -> None:
    regions = spike_run.regions
    for row in spike_run.rows:
        demand = 0.0
        for name in regions:
            viewers = [row[f"served.{name}.{r.name}"] for r in cal.ladder]
            region_bps = sum(v * r.bitrate_bps for v, r in zip(viewers, cal.ladder, strict=True))
            assert row[f"viewers.{name}"] == pytest.approx(sum(viewers), rel=1e-9)
            # delivered egress is the demand, capped by the region's NIC capacity
            assert row[f"egress_gbps.{name}"] * 1e9 <= region_bps * (1 + 1e-9)
            assert row[f"egress_gbps.{name}"] * 1e9 == pytest.approx(
                min(region_bps, region_bps / max(row[f"edge_util.{name}"], 1.0)), rel=1e-9
            )
            demand += region_bps
        assert row["egress_edge_demand_tbps"] * 1e12 == pytest.approx(demand, rel=1e-9)
        assert row["viewers_served"] == pytest.approx(sum(row[f"viewers.{n}"] for n in regions), rel=1e-9)


def test_upstream_tiers_carry_less_than_the_tier_below(spike_run) -> None:
    for row in spike_run.rows:
        assert row["egress_origin_tbps"] <= row["egress_shield_tbps"] * (1 + 1e-9)
        assert row["origin_rps"] <= row["shield_rps"] * (1 + 1e-9) <= row["edge_rps"] * (1 + 1e-9)


def test_rendition_shares_are_a_distribution(cal) -> None:
    full = rendition_shares(cal, True)
    assert full.sum() == pytest.approx(1.0) and np.all(full >= 0)
    assert list(rendition_shares(cal, False)) == [1.0] + [0.0] * (len(cal.ladder) - 1)


@settings(max_examples=60, deadline=None)
@given(
    targets=st.lists(st.lists(st.floats(0.0, 1e8), min_size=3, max_size=3), min_size=1, max_size=40),
    dt=st.floats(0.1, 60.0),
    session=st.floats(10.0, 1e5),
)
def test_fluid_audience_conserves_viewers_for_any_target_path(targets, dt, session) -> None:
    weights = np.full((3, 2, 2), 0.25)
    aud = FluidAudience(weights, session)
    aud.fill(np.array(targets[0]))
    for target in targets[1:]:
        aud.step(dt, np.array(target))
        assert np.all(aud.v >= 0.0)
        total = aud.initial + aud.arrived
        assert total == pytest.approx(aud.departed + aud.present, rel=1e-9, abs=1e-6)
        # the cohort never overshoots its target
        # a cohort below its target reaches it; one above only decays
        assert np.all(aud.v >= np.array(target)[:, None, None] * weights * (1 - 1e-12) - 1e-6)

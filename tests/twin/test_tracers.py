"""Tracer viewers, observed through the real model on shortened shipped scenarios."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from twin.calibration.parameters import Calibration
from twin.run import simulate
from twin.scenario.schema import Scenario

from .conftest import shortened


@pytest.fixture(scope="module")
def quiet_run(cal):
    return simulate(shortened("baseline", 240.0, tracers=30), seed=4, calibration=cal)


def test_latency_sits_between_the_pipeline_floor_and_the_hold_back_target(quiet_run, cal) -> None:
    lat = quiet_run.tracer_stats.all_latency()
    floor = (
        cal.publisher_encode_s
        + cal.transcode_latency_s
        + cal.package_s
        + cal.part_s
        + cal.shield_rtt_s
        + cal.origin_rtt_s
        + cal.display_s
    )
    # a player sits PART-HOLD-BACK behind the newest part at its edge, and that part is at the
    # edge pipeline + shield and origin RTTs after its last frame was captured
    target = floor - cal.part_s + cal.hold_back_parts * cal.part_s
    assert lat.size > 0.9 * 30 * 240 / cal.part_s * 0.9
    assert np.percentile(lat, 1) >= floor
    # players converge to the hold-back target (catching up at 1.1x), not drift
    assert np.percentile(lat, 50) == pytest.approx(target, abs=0.1)


def test_a_tracer_never_accounts_more_time_than_it_lived(quiet_run) -> None:
    stats = quiet_run.tracer_stats
    lived = 30 * 240.0
    # watch counts whole parts even while catching up at 1.1x, hence the 10 % allowance
    assert sum(stats.watch_s) + sum(stats.stall_s) <= lived * 1.1
    assert sum(stats.watch_s) >= 0.8 * lived


def test_viewers_in_a_failed_region_stall_and_rejoin_after_failover(cal) -> None:
    run = simulate(shortened("region-outage", 420.0, tracers=60), seed=4, calibration=cal)
    stats = run.tracer_stats
    cut = int(300 / stats.window_s)

    def ratio(lo: int, hi: int) -> float:
        stall, watch = sum(stats.stall_s[lo:hi]), sum(stats.watch_s[lo:hi])
        return stall / (stall + watch)

    before, during = ratio(0, cut), ratio(cut, len(stats.stall_s))
    assert during > 0.05 and during > 10 * before
    assert stats.failed_starts == 0  # everyone who joined got a picture eventually


def _steady(rtt_ms: float, bandwidth_mbps: float, cal: Calibration) -> tuple[Scenario, Calibration]:
    """Baseline for two minutes with every viewer on the same access: one RTT, one bandwidth."""
    sc = shortened("baseline", 120.0, tracers=10)
    sc = dataclasses.replace(sc, regions=tuple(dataclasses.replace(r, rtt_ms=rtt_ms) for r in sc.regions))
    same = dataclasses.replace(
        cal, viewer_rtt_sigma=0.0, viewer_bandwidth_sigma=1e-3, viewer_bandwidth_median_mbps=bandwidth_mbps
    )
    return sc, same


def _stall_ratio(run) -> float:
    stall, watch = sum(run.tracer_stats.stall_s), sum(run.tracer_stats.watch_s)
    return stall / (stall + watch)


@pytest.mark.parametrize("rtt_ms", [150.0, 400.0])
def test_a_round_trip_longer_than_a_part_does_not_accumulate(rtt_ms: float, cal: Calibration) -> None:
    # a round trip plus the transfer of a 6 Mbit/s part at 18 Mbit/s exceeds the part: fetched
    # one after another the parts would fall behind; requested from the preload hint they keep up
    sc, same = _steady(rtt_ms, 18.0, cal)
    assert rtt_ms / 1000 + 6e6 * cal.part_s / 18e6 > cal.part_s
    run = simulate(sc, seed=3, calibration=same)
    lat = run.tracer_stats.all_latency()
    assert lat.size > 0.9 * 10 * 120 / cal.part_s
    assert _stall_ratio(run) < 0.005  # the join's wait aside, nobody rebuffers
    # the same latency at the end of the run as after the join: nothing adds up
    late = np.concatenate([np.asarray(w) for w in run.tracer_stats.latency[6:12] if w])
    early = np.concatenate([np.asarray(w) for w in run.tracer_stats.latency[1:3] if w])
    assert np.percentile(late, 99) <= np.percentile(early, 99) + 0.05
    # a longer round trip shows the parts later, by about one trip for the playlist to come
    edge_floor = same.publisher_encode_s + same.transcode_latency_s + same.package_s
    assert np.median(lat) < edge_floor + same.shield_rtt_s + same.origin_rtt_s + (
        same.hold_back_parts * cal.part_s + 2 * rtt_ms / 1000 + same.display_s
    )


def test_a_link_slower_than_the_lowest_rendition_rebuffers(cal: Calibration) -> None:
    sc, same = _steady(25.0, 0.8 * cal.ladder[-1].bitrate_bps / 1e6, cal)
    assert _stall_ratio(simulate(sc, seed=3, calibration=same)) > 0.1

"""Tracer viewers, observed through the real model on shortened shipped scenarios."""

from __future__ import annotations

import numpy as np
import pytest

from twin.run import simulate

from .conftest import shortened

TWIN_SERIAL_FETCH = pytest.mark.xfail(strict=False, reason=(
    "issue #22 open: the twin now models the platform's 0.2 s parts (#13), and its tracers fetch "
    "each part one round trip after it is ready instead of holding the preload-hinted request "
    "ahead of it, so they fall behind, stall and rejoin"))


@pytest.fixture(scope="module")
def quiet_run(cal):
    return simulate(shortened("baseline", 240.0, tracers=30), seed=4, calibration=cal)


@TWIN_SERIAL_FETCH
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
    target = cal.hold_back_parts * cal.part_s + cal.part_s + cal.display_s
    assert lat.size > 0.9 * 30 * 240 / cal.part_s * 0.9
    assert np.percentile(lat, 1) >= floor
    # players converge to the hold-back target (catching up at 1.1x), not drift
    assert np.percentile(lat, 50) == pytest.approx(target, abs=0.1)


@TWIN_SERIAL_FETCH
def test_a_tracer_never_accounts_more_time_than_it_lived(quiet_run) -> None:
    stats = quiet_run.tracer_stats
    lived = 30 * 240.0
    # watch counts whole parts even while catching up at 1.1x, hence the 10 % allowance
    assert sum(stats.watch_s) + sum(stats.stall_s) <= lived * 1.1
    assert sum(stats.watch_s) >= 0.8 * lived


@TWIN_SERIAL_FETCH
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

"""The twin as the small real deployment: the mapping from a real: section and what it predicts."""

from __future__ import annotations

import dataclasses
import math

import pytest
from live.package.ladder_packager import PackagingSettings

from twin.calibration.parameters import Calibration
from twin.validation.deployment import (
    DeploymentError,
    predict,
    real_ladder,
    small_deployment,
    stream_load,
    viewer_pattern,
)

from .twin_runs import real_spec

NO_FAULTS = """real:
  duration_s: 40
  warmup_s: 10
  channels: 3
  viewers: 30
  viewer_shares: [0.5, 0.3, 0.2]
"""


def test_mapping_has_one_region_one_node_per_role_and_the_runs_channels(cal: Calibration) -> None:
    spec = real_spec()
    scenario, direct, small = small_deployment(spec, cal)
    assert len(scenario.regions) == 1 and scenario.regions[0].rtt_ms < 1.0
    fleet = scenario.fleet
    assert (fleet.gpu.nodes, fleet.cpu.nodes, fleet.origin.nodes, fleet.chat.nodes) == (0, 1, 1, 1)
    assert scenario.workload.streamers == 2 and scenario.workload.viewers == 40
    assert direct.channel_shares == (0.75, 0.25)
    assert scenario.duration_s == spec.warmup_s + spec.duration_s
    assert [(f.kind, f.stream_rank) for f in scenario.faults] == [("viral_spike", 1), ("worker_restart", 2)]
    spike = scenario.faults[0]
    assert (spike.at_s, spike.factor, spike.ramp_s, spike.duration_s) == (25, 3, 10, 15)
    # the calibration as the machine sees it: the platform's ladder for a 640x360 source
    assert [r.name for r in small.ladder] == ["source", "360p30", "160p30"]
    assert direct.frames_per_part == round(30 * PackagingSettings().part_target_s)  # 30 fps source


def test_ladder_source_has_no_transcode_work(cal: Calibration) -> None:
    spec = dataclasses.replace(real_spec(NO_FAULTS), ladder="source")
    assert [r.passthrough for r in real_ladder(spec)] == [True]
    assert stream_load(spec)[0] == 0.0
    pred = predict(spec, cal)
    assert pred.measured["cpu_cores"]["transcode"] == 0.0


def test_full_ladder_encodes_every_rung_but_the_source(cal: Calibration) -> None:
    spec = real_spec(NO_FAULTS)
    mpixels, mbit = stream_load(spec)
    assert mpixels == pytest.approx((640 * 360 * 2 + 284 * 160) * 30 / 1e6)
    assert mbit == pytest.approx((1500 + 700 + 250) / 1000)
    pred = predict(spec, cal)
    assert pred.measured["cpu_cores"]["transcode"] == pytest.approx(
        3 * mpixels * cal.transcode_core_s_per_mpixel
    )


def test_every_viewer_request_reaches_the_origin_and_costs_platform_cpu(cal: Calibration) -> None:
    spec = real_spec(NO_FAULTS)
    rps, held = viewer_pattern(spec, cal.part_s)
    assert 2.0 / cal.part_s * 0.95 < rps < 2.0 / cal.part_s * 1.1 and 0.95 < held <= 1.0
    base = predict(spec, cal).measured
    more = predict(dataclasses.replace(spec, viewers=60), cal).measured
    probes = 2.0 / cal.part_s  # the one probe viewer; its replicas only sample latency
    assert base["origin_rps"] == pytest.approx(30 * rps + probes)
    assert more["origin_rps"] - base["origin_rps"] == pytest.approx(30 * rps)
    assert more["cpu_cores"]["platform"] - base["cpu_cores"]["platform"] == pytest.approx(
        30 * rps * cal.origin_cpu_s_per_request + 30 * held * cal.held_request_cpu_s
    )


def test_viral_spike_grows_origin_load_without_a_cache_tier(cal: Calibration) -> None:
    pred = predict(real_spec(), cal)
    rows = {r["t_s"]: r for r in pred.rows}
    before, during = rows[24.0], rows[45.0]
    assert during["viewers"] == pytest.approx(40 + 30 * 2)
    assert during["origin_rps"] > 2.0 * before["origin_rps"] * 0.9


def test_viewers_leave_when_the_spike_ends_like_locust_stops_users(cal: Calibration) -> None:
    """Locust's load shape stops surplus users within a second; the twin must not keep them for
    a platform-scale viewing session (it over-predicted the spike run's requests by 22 %)."""
    pred = predict(real_spec(), cal)
    rows = {r["t_s"]: r for r in pred.rows}
    assert rows[45.0]["viewers"] == pytest.approx(100)  # spike: 10 s ramp from 25 s, 15 s hold
    assert rows[55.0]["viewers"] == pytest.approx(40, abs=1)


def test_worker_restart_stops_that_streams_output_for_the_restart_time(cal: Calibration) -> None:
    spec = real_spec()
    pred = predict(spec, cal)
    rows = {r["t_s"]: r for r in pred.rows}
    per_stream = stream_load(spec)[0] * cal.transcode_core_s_per_mpixel
    assert rows[55.0]["cpu_transcode"] == pytest.approx(2 * per_stream)
    assert rows[56.0]["cpu_transcode"] == pytest.approx(per_stream)
    assert rows[56.0]["transcode_restarts"] == 1.0
    end = 55.0 + math.ceil(cal.transcode_restart_s)
    assert rows[end + 1]["cpu_transcode"] == pytest.approx(2 * per_stream)
    slower = predict(spec, dataclasses.replace(cal, transcode_restart_s=10.0))
    slow_rows = {r["t_s"]: r for r in slower.rows}
    assert slow_rows[64.0]["transcode_restarts"] == 1.0 and slow_rows[66.0]["transcode_restarts"] == 0.0


def test_probe_decode_latency_is_the_pipeline_plus_half_a_part_and_playout_never_less(
    cal: Calibration,
) -> None:
    spec = real_spec(NO_FAULTS)
    decode = predict(spec, cal, clock="decode").measured["glass_to_glass_s"]
    playout = predict(spec, cal, clock="playout").measured["glass_to_glass_s"]
    pipeline = cal.publisher_encode_s + cal.transcode_latency_s + cal.package_s + cal.display_s
    assert decode["p50"] == pytest.approx(pipeline + cal.part_s / 2, abs=0.05)
    assert decode["p95"] <= pipeline + cal.part_s + 0.05
    assert playout["p50"] >= decode["p50"] and playout["p95"] >= decode["p95"]
    # playout holds the join offset: at most one segment behind the part the probe joined on
    assert playout["p95"] <= pipeline + cal.part_s + 2.0 + 0.1
    passthrough = predict(spec, cal, clock="decode", probe_rendition="passthrough").measured
    assert passthrough["glass_to_glass_s"]["p50"] == pytest.approx(decode["p50"] - cal.transcode_latency_s)


def test_prediction_is_deterministic_for_a_seed(cal: Calibration) -> None:
    spec = real_spec()
    assert predict(spec, cal, seed=3).measured == predict(spec, cal, seed=3).measured


def test_unknown_clock_or_probe_rendition_is_refused(cal: Calibration) -> None:
    with pytest.raises(DeploymentError, match="clock"):
        predict(real_spec(NO_FAULTS), cal, clock="wall")
    with pytest.raises(DeploymentError, match="probe_rendition"):
        small_deployment(real_spec(NO_FAULTS), cal, probe_rendition="720p")

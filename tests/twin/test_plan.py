"""`twin plan` finds the known optimum of a small scenario, and writes a plan a planner can read."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from twin.calibration.parameters import Calibration
from twin.cli import main
from twin.plan import Planner, fleet_of, knobs, plan, with_fleet, with_load
from twin.replications import Metrics, twin_metrics
from twin.scenario.reader import load_scenario
from twin.scenario.schema import Scenario

SMALL = {
    "name": "small-plan",
    "description": "One region, 100 full-ladder streams, 20k viewers.",
    "duration_s": 120,
    "step_s": 1,
    "record_every_s": 10,
    "head_streams": 20,
    "regions": [
        {
            "name": "local",
            "viewer_share": 1.0,
            "streamer_share": 1.0,
            "rtt_ms": 20,
            "edge_pops": 2,
            "edge_servers_per_pop": 8,
            "shield_servers": 4,
            "ingest_capacity_streams": 1000,
            "failover_to": "-",
        }
    ],
    "fleet": {
        "gpu": {"nodes": 10, "min_nodes": 10, "max_nodes": 10},
        "cpu": {"nodes": 0, "min_nodes": 0, "max_nodes": 0},
        "origin": {"nodes": 4, "min_nodes": 4, "max_nodes": 4},
        "chat": {"nodes": 2, "min_nodes": 2, "max_nodes": 2},
        "ad_servers": 1,
        "target_utilization": 0.7,
        "autoscale_period_s": 30,
    },
    "workload": {
        "viewers": 20000,
        "streamers": 100,
        "start_hour": 21,
        "peak_hour": 21,
        "trough_ratio": 0.4,
        "top_k": 10,
        "top_k_share": 0.5,
        "full_ladder_share": 1.0,
        "chatter_share": 0.0,
        "tracers": 10,
    },
    "faults": [],
    "slos": {
        "glass_to_glass_p95_s": 5.0,
        "rebuffer_ratio": 0.01,
        "availability": 0.9995,
        "chat_delay_p99_s": 2.0,
    },
}


@pytest.fixture()
def small(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL), encoding="utf-8")
    return path


def _in_process(cal: Calibration):  # the search is the same whoever runs the replications
    def run(scenario: Scenario, seeds: list[int]) -> list[Metrics]:
        return [twin_metrics(scenario, cal, s) for s in seeds]

    return run


def test_plan_finds_the_known_optimum_of_a_small_scenario(small: Path, cal: Calibration) -> None:
    sc = load_scenario(small)
    seeds = [1, 2, 3]
    runs = [twin_metrics(sc, cal, s) for s in seeds]
    # the optimum from the calibration: every stream on a GPU (no CPU pool), and the edges'
    # NICs carrying the peak egress (two PoPs)
    streams = max(r["util_peak.gpu"] * 10 * cal.gpu_streams_full for r in runs)
    gpu_opt = math.ceil(round(streams) / cal.gpu_streams_full)
    egress_gbps = max(r["peak_egress_tbps"] for r in runs) * 1e3
    edge_opt = math.ceil(egress_gbps / (2 * cal.edge_server_gbps))
    planner = Planner(sc, cal, _in_process(cal), seeds, knobs(sc, cal))
    result = plan(planner, tiers=("gpu", "edge.local"))
    counts = {t["tier"]: t["count"] for t in result["tiers"]}
    assert (counts["gpu"], counts["edge.local"]) == (gpu_opt, edge_opt) == (5, 2)
    # one node fewer is not enough: the binding constraint names the SLO that fails there
    below = planner.evaluate({**counts, "gpu": gpu_opt - 1})
    assert not below.feasible
    assert "availability" in next(t["binding"] for t in result["tiers"] if t["tier"] == "gpu")
    assert result["cost_usd"] < result["scenario_fleet"]["cost_usd"]
    assert result["headroom_multiplier"] > 1.0
    assert result["twin_hours"] == pytest.approx(result["replications_run"] * 120 / 3600)
    # no fleet is simulated twice
    assert result["replications_run"] == (result["fleets_evaluated"] + 1) * len(seeds)


def test_with_fleet_fixes_every_pool_and_with_load_scales_spikes_or_viewers(small: Path) -> None:
    sc = load_scenario(small)
    fixed = with_fleet(sc, {**fleet_of(sc), "gpu": 7, "edge.local": 3})
    assert (fixed.fleet.gpu.nodes, fixed.fleet.gpu.min_nodes, fixed.fleet.gpu.max_nodes) == (7, 7, 7)
    assert fixed.regions[0].edge_servers_per_pop == 3
    assert with_load(sc, 1.5).workload.viewers == 30000  # no spike: all viewers


def test_plan_command_writes_plan_and_report_through_dask(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan"
    argv = ["plan", str(small), "--out", str(out), "--replications", "2", "--tiers", "gpu", "--quiet"]
    assert main(argv) == 0
    result = json.loads((out / "plan.json").read_text())
    assert {t["tier"]: t["count"] for t in result["tiers"]}["gpu"] == 5
    assert result["planned_for_load"] == 1.0
    page = (out / "report.html").read_text()
    assert "Fleet to buy" in page and "twin-hours" in page and "data:image/png" in page

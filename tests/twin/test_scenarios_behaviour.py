"""Scenario tests: each fault scenario shows what it should, asserted on the summary.

Runs are shortened (see conftest.shortened) but keep each fault's timing, so the effects are
the same ones the full scenarios produce.
"""

from __future__ import annotations

import json

import pytest

from twin.run import simulate
from twin.summary import summarize

from .conftest import shortened


def _effect(summary: dict, kind: str) -> dict:
    return next(e for e in summary["fault_effects"] if e["kind"] == kind)


def test_spike_multiplies_the_stream_but_not_the_origin_load(cal) -> None:
    s = summarize(simulate(shortened("viral-spike-10x", 480.0, tracers=10), seed=1, calibration=cal))
    e = _effect(s, "viral_spike")
    assert e["stream_growth"] == pytest.approx(10.0, rel=0.02)
    assert e["origin_rps_growth"] < 1.01  # coalescing at edges and shields
    assert s["availability"] == 1.0


def test_region_outage_dips_availability_and_recovers(cal) -> None:
    s = summarize(simulate(shortened("region-outage", 1000.0, tracers=10), seed=1, calibration=cal))
    e = _effect(s, "region_outage")
    assert e["availability_before"] == 1.0
    assert (
        e["availability_min"] < 0.8
    )  # the region's viewers until DNS failover, its streamers until reconnect
    assert e["recovered_at_s"] is not None and e["recovered_at_s"] <= 300 + 30 + 20
    assert e["availability_end"] == 1.0
    assert s["availability"] < 0.9995  # and the run fails its availability SLO
    assert not next(x for x in s["slos"] if x["slo"] == "availability")["pass"]


def test_transcoder_loss_waits_for_new_nodes_then_recovers(cal) -> None:
    s = summarize(simulate(shortened("transcoder-loss", 900.0, tracers=5), seed=1, calibration=cal))
    e = _effect(s, "transcoder_loss")
    assert e["availability_min"] < 0.95
    # recovery needs the autoscaler's period plus GPU provisioning (240 s in the calibration)
    assert 300 + 240 <= e["recovered_at_s"] <= 300 + 240 + 2 * 30 + 20
    assert s["fleet"]["gpu"]["nodes_failed"] == 180
    assert s["fleet"]["gpu"]["nodes_peak"] >= 300


def test_chat_storm_delays_delivery_until_chat_nodes_arrive(cal) -> None:
    s = summarize(simulate(shortened("chat-storm", 700.0, tracers=5), seed=1, calibration=cal))
    e = _effect(s, "chat_storm")
    assert e["chat_delay_max_s"] > 2.0
    assert s["chat"]["peak_refused_connections"] > 0
    assert s["fleet"]["chat"]["nodes_peak"] > 6
    assert not next(x for x in s["slos"] if x["slo"] == "chat_delay_p99_s")["pass"]


def test_baseline_meets_every_slo(cal) -> None:
    s = summarize(simulate(shortened("baseline", 300.0, tracers=40), seed=2, calibration=cal))
    assert s["all_slos_pass"], s["slos"]
    assert s["latency_s"]["p95"] < 2.0


def test_same_scenario_and_seed_give_the_same_summary_bit_for_bit(cal) -> None:
    sc = shortened("viral-spike-10x", 360.0, tracers=8)
    a = json.dumps(summarize(simulate(sc, seed=11, calibration=cal)), sort_keys=True)
    b = json.dumps(summarize(simulate(sc, seed=11, calibration=cal)), sort_keys=True)
    c = json.dumps(summarize(simulate(sc, seed=12, calibration=cal)), sort_keys=True)
    assert a == b
    assert a != c


def test_ad_break_on_the_spiked_stream_overwhelms_the_ad_servers(cal) -> None:
    s = summarize(simulate(shortened("viral-spike-10x", 620.0, tracers=3), seed=1, calibration=cal))
    # 2.2M viewers ask for a decision within 2 s: ~1.1M req/s against 20 x 5,000 req/s
    assert s["ads"]["peak_rps"] == pytest.approx(s["viewers"]["top_stream_peak"] / 2.0, rel=0.05)
    assert s["ads"]["fill_ratio"] == pytest.approx(20 * 5000 / s["ads"]["peak_rps"], rel=0.05)
    assert s["ads"]["impressions"] > 0

"""node_loss: origin and chat nodes fail and are replaced; a region's edge or shield servers are
out for a while and come back."""

from __future__ import annotations

import dataclasses

import pytest

from twin.run import simulate
from twin.scenario.nodes import ScenarioError
from twin.scenario.reader import parse_scenario
from twin.scenario.schema import Fault, FaultKind, LossTier
from twin.summary import summarize

from .conftest import SCENARIOS, shortened

BASELINE = (SCENARIOS / "baseline.yaml").read_text(encoding="utf-8")


def _with_fault(line: str) -> str:
    return BASELINE.replace("faults: []", f"faults:\n  - {line}")


def test_edge_and_shield_loss_need_a_known_region_and_a_duration() -> None:
    with pytest.raises(ScenarioError, match="region"):
        parse_scenario(_with_fault("{kind: node_loss, tier: edge, share: 0.5, at_s: 60, duration_s: 60}"))
    with pytest.raises(ScenarioError, match="unknown region"):
        parse_scenario(
            _with_fault("{kind: node_loss, tier: shield, region: mars, share: 0.5, at_s: 60, duration_s: 60}")
        )
    sc = parse_scenario(_with_fault("{kind: node_loss, tier: origin, share: 0.5, at_s: 60}"))
    assert sc.faults[0].tier is LossTier.ORIGIN


def _run(fault: Fault, tracers: int = 4):
    sc = dataclasses.replace(shortened("baseline", 600.0, tracers=tracers), faults=(fault,))
    return simulate(sc, seed=1)


def test_origin_loss_fails_half_the_pool_and_the_autoscaler_replaces_it(cal) -> None:
    result = _run(Fault(FaultKind.NODE_LOSS, 60.0, 0.0, share=0.5, tier=LossTier.ORIGIN))
    origin = next(t for t in result.tiers if t["tier"] == "origin")
    assert origin["nodes_failed"] > 0
    util = [(r["t_s"], r["util_origin"]) for r in result.rows]
    before = max(u for t, u in util if t < 60)
    assert max(u for t, u in util if 60 < t < 60 + cal.origin_provisioning_s) > 1.5 * before
    assert origin["nodes_end"] >= origin["nodes_start"] - origin["nodes_failed"] // 2  # replaced


def test_edge_loss_overloads_the_region_then_its_servers_come_back() -> None:
    result = _run(Fault(FaultKind.NODE_LOSS, 60.0, 120.0, region="na-east", share=0.6, tier=LossTier.EDGE))
    util = {r["t_s"]: r["edge_util.na-east"] for r in result.rows}
    before, during, after = util[50.0], util[120.0], util[300.0]
    assert during == pytest.approx(before / 0.4, rel=0.05)  # 60 % of the servers gone
    assert after == pytest.approx(before, rel=0.1)
    effect = summarize(result)["fault_effects"][0]
    assert effect["utilization_peak"] > effect["utilization_before"]


def test_packet_loss_caps_the_tracers_throughput_and_raises_latency() -> None:
    from twin.model.tracers import mathis_bps

    assert mathis_bps(0.05, 0.02) == pytest.approx(1460 * 8 / 0.05 * (1.5 / 0.02) ** 0.5)
    clean = summarize(_run(Fault(FaultKind.NODE_LOSS, 60.0, 0.0, share=0.0, tier=LossTier.ORIGIN), 40))
    lossy = summarize(_run(Fault(FaultKind.VIEWER_PACKET_LOSS, 30.0, 560.0, region="eu", share=0.05), 40))
    assert lossy["latency_s"]["p95"] > clean["latency_s"]["p95"]


def test_chat_broker_failover_delays_messages_for_as_long_as_it_lasts() -> None:
    result = _run(Fault(FaultKind.CHAT_BROKER_FAILOVER, 60.0, 20.0))
    delays = {r["t_s"]: r["chat_delay_s"] for r in result.rows}
    assert delays[50.0] < 1.0
    assert delays[80.0] == pytest.approx(20.0, abs=1.5)  # the oldest message waited the whole failover
    assert delays[200.0] < 1.0  # drained once the broker was back
    assert summarize(result)["chat"]["delay_p99_s"] > 2.0

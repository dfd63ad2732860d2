"""What `loadgen run` reads from `live cdn --metrics-port` once a second, and how a window of it
becomes measured.json's shield requests/s and edge hit ratio."""

from __future__ import annotations

import pytest
from live.cdn.config import Role
from live.cdn.metrics import NodeCounters, render_prometheus
from prometheus_client.parser import text_string_to_metric_families

from loadgen.realrun.reduce import cdn_measured
from loadgen.realrun.sample import Metrics, cdn_rates


def _metrics(text: str) -> Metrics:
    out: Metrics = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def _tier(edge_hits: int, edge_misses: int, shield: int) -> Metrics:
    """The tier's Prometheus text as `live cdn` renders it: two edges, one shield."""
    edge0, edge1, shield0 = (NodeCounters("edge0", Role.EDGE), NodeCounters("edge1", Role.EDGE),
                             NodeCounters("shield0", Role.SHIELD))
    edge0.responses.update({("HIT", "2xx"): edge_hits - edge_hits // 2, ("MISS", "2xx"): edge_misses})
    edge1.responses.update({("UPDATING", "2xx"): edge_hits // 2, ("-", "4xx"): 3})
    shield0.responses.update({("MISS", "2xx"): shield, ("HIT", "2xx"): 1})
    return _metrics(render_prometheus([shield0, edge0, edge1]))


def test_rates_come_from_the_counters_of_two_scrapes() -> None:
    before, after = _tier(100, 10, 10), _tier(300, 30, 20)
    rates = cdn_rates(after, before, dt=2.0)
    assert rates["edge_rps"] == pytest.approx((200 + 20) / 2)  # the 3 uncached 404s did not change
    assert rates["edge_lookups_per_s"] == pytest.approx((200 + 20) / 2)
    assert rates["edge_hits_per_s"] == pytest.approx(200 / 2)
    assert rates["shield_rps"] == pytest.approx(10 / 2)


def test_a_restarted_tier_never_gives_negative_rates() -> None:
    rates = cdn_rates({}, _tier(100, 10, 10), dt=1.0)
    assert all(v == 0.0 for v in rates.values())


def test_the_window_hit_ratio_weighs_each_second_by_its_lookups() -> None:
    rows = [
        {"t_s": t, "dt_s": 1.0, "shield_rps": 10.0, "edge_rps": lookups, "edge_hits_per_s": hits,
         "edge_lookups_per_s": lookups}
        for t, hits, lookups in ((0.5, 0.0, 0.0), (1.5, 90.0, 100.0), (2.5, 290.0, 300.0), (9.0, 0.0, 50.0))
    ]
    m = cdn_measured(rows, (1.0, 3.0))
    assert m["edge_hit_ratio"] == pytest.approx(380 / 400)
    assert m["edge_rps"] == pytest.approx(200.0) and m["shield_rps"] == pytest.approx(10.0)
    assert cdn_measured([{"t_s": 1.5, "dt_s": 1.0}], (1.0, 3.0)) == {}  # a run without tiers

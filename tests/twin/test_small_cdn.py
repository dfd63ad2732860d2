"""The twin's model of the real run's nginx tiers (`real.cdn`): coalescing per watched
(channel, rendition) at each edge and at the shield, plain playlist fetches passing the caches."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.calibration.parameters import Calibration
from twin.model.cdn import SmallTiers, deliver_small_cdn
from twin.scenario.schema import RealCdn
from twin.validation.checks import compare
from twin.validation.deployment import predict, small_tiers

from .twin_runs import real_spec

STEADY = """real:
  duration_s: 30
  warmup_s: 10
  channels: 1
  viewers: 20
  cdn: {shields: 1, edges: 2}
"""
TIERS = SmallTiers(edges=2, shields=1, upstream_per_object_s=10.0, plain_per_viewer_s=0.05)
BITRATE = np.array([800e3, 700e3, 250e3])


def _served(per_rung: list[list[float]]) -> np.ndarray:
    return np.array(per_rung, dtype=np.float64)[:, None, :]  # (channels, 1 region, rungs)


def test_a_rendition_watched_at_both_edges_costs_each_edge_one_stream_and_the_origin_one() -> None:
    served = _served([[1000.0, 0.0, 0.0]])
    d = deliver_small_cdn(served, BITRATE, TIERS, edge_rps=20_000.0, viewers=1000.0, probe_rung=None)
    plain = 1000.0 * TIERS.plain_per_viewer_s
    assert d.edge_miss_rps[0] == pytest.approx(2 * 10.0 + plain)
    assert d.origin_rps == pytest.approx(10.0 + plain)
    assert d.edge_hit_ratio[0] == pytest.approx(1 - (20.0 + plain) / 20_000.0)


def test_the_probe_on_an_unwatched_rung_is_an_object_of_its_own() -> None:
    served = _served([[1000.0, 0.0, 0.0]])
    without = deliver_small_cdn(served, BITRATE, TIERS, 20_000.0, 1000.0, None)
    probed = deliver_small_cdn(served, BITRATE, TIERS, 20_010.0, 1000.0, probe_rung=2)
    assert probed.edge_miss_rps[0] - without.edge_miss_rps[0] == pytest.approx(10.0)
    assert probed.origin_rps - without.origin_rps == pytest.approx(10.0)


@settings(max_examples=60, deadline=None)
@given(
    viewers=st.lists(st.floats(0.0, 500.0), min_size=3, max_size=3),
    edges=st.integers(1, 8),
    shields=st.integers(1, 4),
)
def test_upstream_load_is_bounded_by_the_objects_not_the_viewers(
    viewers: list[float], edges: int, shields: int
) -> None:
    tiers = dataclasses.replace(TIERS, edges=edges, shields=shields, plain_per_viewer_s=0.0)
    d = deliver_small_cdn(_served([viewers]), BITRATE, tiers, 1e6, sum(viewers), None)
    watched = sum(1 for x in viewers if x > 0)
    # the origin sees at most one stream per watched rendition, each edge at most one as well
    assert d.origin_rps <= watched * 10.0 + 1e-9
    assert d.origin_rps <= d.edge_miss_rps[0] + 1e-9 <= edges * d.origin_rps + 1e-6
    assert d.edge_miss_rps[0] <= sum(viewers) * 10.0 + 1e-6  # never more than the viewers asked


def test_a_cdn_section_maps_to_its_tiers_and_none_without(cal: Calibration) -> None:
    spec = real_spec(STEADY)
    tiers = small_tiers(spec, cal.part_s)
    assert tiers is not None and (tiers.edges, tiers.shields) == (2, 1)
    assert tiers.upstream_per_object_s == pytest.approx(2 / cal.part_s)
    assert small_tiers(dataclasses.replace(spec, cdn=None), cal.part_s) is None


def test_the_prediction_puts_the_load_on_the_edges_and_coalesces_it(cal: Calibration) -> None:
    spec = real_spec(STEADY)
    cdn = predict(spec, cal).measured
    direct = predict(dataclasses.replace(spec, cdn=None), cal).measured
    assert "shield_rps" not in direct
    assert cdn["edge_rps"] == pytest.approx(direct["origin_rps"], rel=0.01)  # the same viewers
    assert cdn["origin_rps"] < cdn["shield_rps"] < cdn["edge_rps"] / 3
    assert 0.5 < cdn["edge_hit_ratio"] < 1.0
    more_edges = predict(dataclasses.replace(spec, cdn=RealCdn(1, 4)), cal).measured
    assert more_edges["shield_rps"] > cdn["shield_rps"]  # one stream per edge
    assert more_edges["origin_rps"] == pytest.approx(cdn["origin_rps"], rel=0.01)  # one per shield


def test_cdn_metrics_are_checked_only_for_a_cdn_run(cal: Calibration) -> None:
    spec = real_spec(STEADY)
    pred = predict(spec, cal).measured
    plain = {c.metric for c in compare(pred, pred, spec.bands)}
    assert plain.isdisjoint({"shield requests/s", "edge hit ratio"})
    checks = {c.metric: c for c in compare(pred, pred, spec.bands, cdn=True)}
    assert checks["shield requests/s"].ok and checks["edge hit ratio"].ok
    off = dict(pred, edge_hit_ratio=pred["edge_hit_ratio"] - 2 * spec.bands.hit_ratio_abs)
    hit = {c.metric: c for c in compare(pred, off, spec.bands, cdn=True)}["edge hit ratio"]
    assert not hit.ok and hit.absolute and math.isclose(hit.error, 2 * spec.bands.hit_ratio_abs)

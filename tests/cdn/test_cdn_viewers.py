"""Viewers through real tiers (origin -> 1 shield -> 2 edges): coalescing, a 10x spike, an edge
killed with SIGKILL.

The origin is the real app fed in real time (parts of 0.5 s, longer than the platform's 0.2 s, so the
asyncio viewers of one Python process keep up on a 2-core machine); the viewers are
``live.selftest.viewer_fleet`` (plain join, then blocking reload + new parts, failover across
edges). Scaled to what one loaded 2-core machine holds: 200 viewers for coalescing, a spike of
30 -> 300 viewers (bench/cdn_spike.py runs larger ones). With more, the viewers of this one
process fall behind live on a 2-core CI machine, and a lagging viewer asks the origin for
playlist positions the others skipped: more distinct URLs, each still fetched once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from live.cdn.config import Role
from live.cdn.launcher import CdnCluster
from live.cdn.metrics import parse_log_line
from live.selftest.viewer_fleet import ViewerFleet

from .conftest import LIVE_PART_S, is_plain_reload, live_tier

pytestmark = pytest.mark.slow

PLAYLIST = "/hls/alpha/720p.m3u8"
COALESCING_VIEWERS = 200
SPIKE_BASE, SPIKE_FACTOR, SPIKE_RAMP_S = 30, 10, 10.0
RESUME_BOUND_S = 2.0


def edge_cache_statuses(cluster: CdnCluster, since: float) -> tuple[int, int]:
    """(answered without an upstream request, cache lookups) at the edges since ``since`` (epoch)."""
    hits = lookups = 0
    for node in cluster.nodes:
        if node.plan.role is not Role.EDGE:
            continue
        for text in (node.plan.directory / "access.log").read_text().splitlines():
            line = parse_log_line(text)
            if line is None or line.cache_status == "-" or float(text.split("\t", 1)[0]) < since:
                continue
            lookups += 1
            hits += line.upstream_addr == "-"
    return hits, lookups


async def test_two_hundred_viewers_cost_the_origin_one_request_per_url(tmp_path: Path) -> None:
    async with live_tier(tmp_path) as live:
        fleet = ViewerFleet(live.edges, PLAYLIST)
        joined_at = time.monotonic()
        try:
            await fleet.add(COALESCING_VIEWERS)
            await asyncio.sleep(10)
        finally:
            await fleet.close()
        join_span_s = time.monotonic() - joined_at
        totals = fleet.totals
    requests = live.origin.requests
    repeated = {path: n for path, n in requests.items() if n > 1 and not is_plain_reload(path)}
    print(f"coalescing: {COALESCING_VIEWERS} viewers, {totals.requests} viewer requests, "
          f"{totals.parts} parts; origin {sum(requests.values())} requests for "
          f"{len(requests)} URLs; plain reloads {requests[PLAYLIST]}")
    assert totals.errors == 0
    assert totals.parts >= COALESCING_VIEWERS * 10 / LIVE_PART_S * 0.8
    assert not repeated, f"answered more than once by the origin through one shield: {repeated}"
    # plain reloads are keyed by the tenth of a second: at most one per slot the joins spanned
    assert requests[PLAYLIST] <= join_span_s * 10 + 2


async def test_a_tenfold_spike_leaves_the_origin_flat_and_the_edges_hitting(tmp_path: Path) -> None:
    async with live_tier(tmp_path) as live:
        fleet = ViewerFleet(live.edges, PLAYLIST)
        try:
            await fleet.add(SPIKE_BASE)
            await asyncio.sleep(3)
            before = len(live.published)
            await asyncio.sleep(8)
            ramp = len(live.published)
            ramp_started = time.time()
            await fleet.ramp(SPIKE_BASE * (SPIKE_FACTOR - 1), SPIKE_RAMP_S)
            after = len(live.published)
            steady_at = time.time()
            await asyncio.sleep(8)
            end = len(live.published)
            await asyncio.sleep(1.2)  # the edges' access logs flush every second
            spike_hits, spike_lookups = edge_cache_statuses(live.cluster, ramp_started)
            hits, lookups = edge_cache_statuses(live.cluster, steady_at)
        finally:
            await fleet.close()
        totals = fleet.totals
    marks = live.published

    def per_part(start: int, stop: int) -> tuple[float, float]:
        """(origin requests per part, those that are not joins' plain reloads) between the part
        publishes that bound a window (a plain reload sampled at another instant than the total
        once moved a late join's reloads into the next window)."""
        (total0, plain0), (total1, plain1) = marks[start - 1], marks[stop - 1]
        total, plain = total1 - total0, plain1 - plain0
        return total / (stop - start), (total - plain) / (stop - start)

    _, steady_before = per_part(before, ramp)
    ramp_total, ramp_media = per_part(ramp, after)
    _, steady_after = per_part(after, end)
    plain_per_s = (marks[after - 1][1] - marks[ramp - 1][1]) / ((after - ramp) * LIVE_PART_S)
    print(f"spike {SPIKE_BASE} -> {SPIKE_BASE * SPIKE_FACTOR} viewers in {SPIKE_RAMP_S:g} s: origin "
          f"requests/part before {steady_before:.2f}, ramp {ramp_total:.2f} (without plain "
          f"reloads {ramp_media:.2f}, plain reloads {plain_per_s:.1f}/s), after {steady_after:.2f}; "
          f"edge hit ratio over the spike {spike_hits / max(spike_lookups, 1):.4f}, at 10x "
          f"{hits}/{lookups} = {hits / max(lookups, 1):.4f}; "
          f"{totals.requests} viewer requests, {totals.errors} errors")
    assert totals.errors == 0
    repeated = {path: n for path, n in live.origin.requests.items() if n > 1 and not is_plain_reload(path)}
    assert not repeated, f"answered more than once by the origin through one shield: {repeated}"
    assert steady_after <= 1.1 * steady_before
    assert ramp_media <= 1.1 * steady_before
    # joins' plain reloads reach the origin at most once per 100 ms slot (plus slot edges)
    assert plain_per_s <= 10 + 2
    assert hits / lookups > 0.99


async def test_viewers_of_a_killed_edge_resume_on_the_other_within_two_seconds(tmp_path: Path) -> None:
    async with live_tier(tmp_path) as live:
        fleet = ViewerFleet(live.edges, PLAYLIST)
        try:
            await fleet.add(100)
            await asyncio.sleep(4)
            on_edge0 = [v for v in fleet.viewers if v.edge == 0]
            killed_at = time.monotonic()
            live.cluster.kill("edge0")
            await asyncio.sleep(5)
        finally:
            await fleet.close()
    gaps = []
    for viewer in on_edge0:
        resumes = [(failed, resumed) for failed, resumed in viewer.stats.resumes if failed >= killed_at]
        assert resumes, "every viewer of the killed edge must notice"
        resumed = resumes[0][1]
        assert resumed is not None
        gaps.append(resumed - killed_at)
        assert viewer.edge == 1
        assert viewer.stats.errors == 0
    print(f"failover: {len(on_edge0)} viewers moved; resume after kill max {max(gaps):.3f} s, "
          f"median {sorted(gaps)[len(gaps) // 2]:.3f} s")
    assert max(gaps) <= RESUME_BOUND_S

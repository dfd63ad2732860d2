"""Faults of the CDN's nginx tiers under viewers: kill -9 and SIGSTOP of an edge and of the shield.

The tier is tests/cdn's live tier (the real origin app fed in real time with 0.5 s parts, one
shield, two edges, real nginx); the viewers are `live.selftest.viewer_fleet` (LL-HLS blocking
reloads, failover across edges). Each fault is named as a scenario would name it (`edge-1`,
`shield-1`) and performed through `loadgen.faults.plan` against the tier's nodes
(`loadgen.faults.cdn`). Promises checked:
- a viewer behind the surviving edge never stalls (no gap between parts over STALL_S);
- every viewer plays within RESUME_BOUND_S of the faulted node coming back, and the viewers of a
  killed edge resume on the other edge within RESUME_BOUND_S of the kill, without an error;
- the origin sees no burst after recovery beyond what coalescing allows: each media URL at
  most once, plain reloads at most once per 100 ms slot (the tier's cache key for them).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from live.selftest.viewer_fleet import Viewer, ViewerFleet

from loadgen.faults import plan
from loadgen.faults.cdn import tier_targets
from loadgen.faults.timeline import Timeline
from tests.cdn.conftest import LIVE_PART_S, is_plain_reload, live_tier
from twin.scenario.schema import RealFault, RealFaultKind

pytestmark = pytest.mark.slow

PLAYLIST = "/hls/alpha/720p.m3u8"
VIEWERS = 40
FAULT_S = 3.0
RESUME_BOUND_S = 2.0
STALL_S = 3 * LIVE_PART_S  # three parts without a new one: a player's buffer would run dry
AFTER_S = 4.0  # watched after the node is back
BURST_WINDOW_S = 3.0
SAMPLE_S = 0.05
MAX_SAMPLES = 2000  # the sampler's bound: 100 s of samples


@dataclass
class PartLog:
    """When each viewer's part count grew, sampled every SAMPLE_S (bounded)."""

    viewers: list[Viewer]
    arrivals: list[list[float]] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        self.arrivals = [[] for _ in self.viewers]
        seen = [v.stats.parts for v in self.viewers]
        for _ in range(MAX_SAMPLES):
            if stop.is_set():
                return
            now = time.monotonic()
            for i, viewer in enumerate(self.viewers):
                if viewer.stats.parts > seen[i]:
                    seen[i] = viewer.stats.parts
                    self.arrivals[i].append(now)
            await asyncio.sleep(SAMPLE_S)

    def longest_gap(self, i: int, start: float, end: float) -> float:
        times = [start, *(t for t in self.arrivals[i] if start < t < end), end]
        return max(b - a for a, b in itertools.pairwise(times))

    def first_after(self, i: int, at: float) -> float | None:
        return next((t for t in self.arrivals[i] if t >= at), None)


CASES = [("kill", "edge-1"), ("hang", "edge-1"), ("kill", "shield-1"), ("hang", "shield-1")]


@pytest.mark.parametrize(("kind", "target"), CASES, ids=[f"{k}-{t}" for k, t in CASES])
async def test_a_cdn_node_fault_keeps_viewers_playing_and_the_origin_flat(
    tmp_path: Path, kind: str, target: str
) -> None:
    timeline = Timeline(f"cdn-{kind}-{target}")
    stop = asyncio.Event()
    try:
        async with live_tier(tmp_path) as live:
            targets = plan.Targets(processes=dict(tier_targets(live.cluster, asyncio.get_running_loop())))
            fault = RealFault(kind=RealFaultKind(kind), at_s=0, duration_s=FAULT_S, target=target)
            fleet = ViewerFleet(live.edges, PLAYLIST)
            parts = PartLog(fleet.viewers)
            sampler: asyncio.Task[None] | None = None
            try:
                await fleet.add(VIEWERS)
                sampler = asyncio.create_task(parts.run(stop))
                await asyncio.sleep(4)
                on_edge = [v.edge for v in fleet.viewers]
                errors_before = fleet.totals.errors
                started = time.monotonic()
                await asyncio.to_thread(plan.perform, fault, targets, timeline)
                ended = time.monotonic()
                await asyncio.sleep(AFTER_S)
            finally:
                stop.set()
                if sampler is not None:
                    await sampler
                await fleet.close()
            origin_log = list(live.origin.log)
        errors = fleet.totals.errors - errors_before
    finally:
        timeline.write()

    faulted_edge = int(target.split("-")[1]) - 1 if target.startswith("edge") else None
    survivors = [i for i, edge in enumerate(on_edge) if faulted_edge is not None and edge != faulted_edge]
    hit = [i for i in range(len(on_edge)) if i not in survivors]
    resume_after_back = [(parts.first_after(i, ended) or float("inf")) - ended for i in hit]
    resume_after_fault = [(parts.first_after(i, started) or float("inf")) - started for i in hit]
    survivor_gaps = [parts.longest_gap(i, started - 1.0, ended + AFTER_S - 0.5) for i in survivors]
    hit_gaps = [parts.longest_gap(i, started - 1.0, ended + AFTER_S - 0.5) for i in hit]
    window = [path for at, path in origin_log if ended <= at < ended + BURST_WINDOW_S]
    media = [path for path in window if not is_plain_reload(path)]
    repeated = sorted({path for path in media if media.count(path) > 1})
    plain = len(window) - len(media)
    per_part_before = sum(1 for at, _ in origin_log if started - 3.0 <= at < started) / (3.0 / LIVE_PART_S)
    per_part_after = len(window) / (BURST_WINDOW_S / LIVE_PART_S)
    timeline.result(
        viewers=VIEWERS, fault_s=round(ended - started, 3), faulted_viewers=len(hit),
        viewer_errors=errors, failovers=fleet.totals.failovers,
        worst_resume_after_back_s=round(max(resume_after_back), 3),
        worst_resume_after_fault_start_s=round(max(resume_after_fault), 3),
        worst_stall_faulted_s=round(max(hit_gaps), 3),
        stalls_faulted_s=sorted(round(gap, 2) for gap in hit_gaps),
        worst_stall_surviving_edge_s=round(max(survivor_gaps, default=0.0), 3),
        origin_requests_per_part_before=round(per_part_before, 2),
        origin_requests_per_part_after=round(per_part_after, 2),
        origin_repeated_media_after=repeated[:5], origin_plain_reloads_after=plain,
    )
    timeline.write()
    results = timeline.results
    print(f"{kind} {target}: {results}")
    assert max(resume_after_back) <= RESUME_BOUND_S, results
    assert not repeated, f"the origin answered a media URL twice after recovery: {repeated[:5]}"
    assert plain <= BURST_WINDOW_S * 10 + 2, results
    if faulted_edge is not None:
        assert survivors and max(survivor_gaps) <= STALL_S, results
        assert errors == 0, results
    if kind == "kill" and faulted_edge is not None:  # moved to the other edge at once
        assert max(resume_after_fault) <= RESUME_BOUND_S, results
        assert all(fleet.viewers[i].edge != faulted_edge for i in hit), "a viewer stayed on the dead edge"

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

The link between shield and origin is faulted too (a 10 s partition, 20 % loss): the shield's
upstream goes through a forwarder inside a namespace (`forward_child.py`), so it crosses the
user-space wire of `loadgen.faults.netns` both ways; the viewers must play within
RESUME_BOUND_S of data crossing the link again.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from live.cdn.config import Role
from live.selftest.viewer_fleet import Viewer, ViewerFleet

from loadgen.faults import plan
from loadgen.faults.cdn import tier_targets
from loadgen.faults.netns import NetnsLink
from loadgen.faults.services import READY_TIMEOUT_S, ChildService, free_port, wait_port
from loadgen.faults.timeline import Timeline
from tests.cdn.conftest import (
    LIVE_PART_S,
    CountingFeed,
    CountingOrigin,
    Feed,
    is_plain_reload,
    live_tier,
    make_store,
    tier,
)
from twin.scenario.schema import RealFault, RealFaultKind

from .harness import PYTHON, ROOT, child_env

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


LINK_CASES = [
    RealFault(kind=RealFaultKind.PARTITION, at_s=0, duration_s=10.0, between=("shield-1", "origin")),
    RealFault(kind=RealFaultKind.LOSS, at_s=0, duration_s=4.0, between=("shield-1", "origin"), loss_pct=20),
]


@pytest.mark.parametrize("fault", LINK_CASES, ids=[f.kind.value for f in LINK_CASES])
async def test_a_fault_on_the_shield_origin_link_ends_with_every_viewer_playing(
    tmp_path: Path, needs_root: None, fault: RealFault
) -> None:
    timeline = Timeline(f"cdn-link-{fault.kind.value}-shield-origin")
    stop = asyncio.Event()
    origin = CountingOrigin(make_store(2, LIVE_PART_S))
    feed = CountingFeed(origin.store, renditions=(Feed.renditions[0],),
                        parts_per_segment=round(2 / LIVE_PART_S), part_s=LIVE_PART_S, part_bytes=4000)
    feed.marks, feed.origin = [], origin
    publisher: asyncio.Task[None] | None = None
    try:
        with NetnsLink() as link:
            await origin.start()
            assert origin.runner is not None
            outside = web.TCPSite(origin.runner, link.outside, 0)
            await outside.start()
            assert outside._server is not None
            origin_port = outside._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            forward_port = free_port()
            forwarder = ChildService(
                "forwarder", [*link.exec_prefix(), PYTHON, str(ROOT / "tests/chaos/forward_child.py"),
                              link.inside, str(forward_port), link.outside, str(origin_port)],
                tmp_path / "forwarder.log", env=child_env())
            try:
                forwarder.start()
                await asyncio.to_thread(wait_port, forward_port, time.monotonic() + READY_TIMEOUT_S,
                                        link.inside, forwarder)
                feed.start().parts(2 * feed.parts_per_segment)
                publisher = asyncio.create_task(feed.run(stop))
                upstream = f"http://{link.inside}:{forward_port}"
                async with tier(tmp_path, [upstream], shields=1, edges=2) as cluster:
                    targets = plan.Targets(links={frozenset(fault.between): link})
                    fleet = ViewerFleet(cluster.urls(Role.EDGE), PLAYLIST)
                    parts = PartLog(fleet.viewers)
                    sampler: asyncio.Task[None] | None = None
                    try:
                        await fleet.add(VIEWERS)
                        sampler = asyncio.create_task(parts.run(stop))
                        await asyncio.sleep(4)
                        errors_before = fleet.totals.errors
                        started = time.monotonic()
                        await asyncio.to_thread(plan.perform, fault, targets, timeline)
                        healed = time.monotonic()
                        await asyncio.sleep(AFTER_S)
                        flow = link.report()
                    finally:
                        stop.set()
                        if sampler is not None:
                            await sampler
                        await fleet.close()
                    errors = fleet.totals.errors - errors_before
            finally:
                forwarder.close()
    finally:
        stop.set()
        if publisher is not None:
            await publisher
        await origin.close()
        timeline.write()
    # after a partition TCP's backed-off retransmissions cross seconds after the heal: the
    # promise counts from when data crosses again (docs/chaos.md)
    firsts = [t for t in (flow["to_ns_first"], flow["to_host_first"]) if t is not None]
    through = max(healed, min(firsts, default=healed))
    timeline.events.append({"t_s": round(through - timeline.t0, 3), "event": "data through again"})
    window = [path for at, path in origin.log if through <= at < through + BURST_WINDOW_S]
    media = [path for path in window if not is_plain_reload(path)]
    repeated = sorted({path for path in media if media.count(path) > 1})
    everyone = range(len(fleet.viewers))
    resume = [(parts.first_after(i, through) or float("inf")) - through for i in everyone]
    gaps = [parts.longest_gap(i, started - 1.0, healed + AFTER_S - 0.5) for i in everyone]
    timeline.result(
        viewers=VIEWERS, fault_s=round(healed - started, 3), viewer_errors=errors,
        data_through_after_heal_s=round(through - healed, 3),
        worst_resume_after_data_through_s=round(max(resume), 3),
        worst_resume_after_heal_s=round(max((parts.first_after(i, healed) or float("inf")) - healed
                                            for i in everyone), 3),
        worst_stall_s=round(max(gaps), 3), median_stall_s=round(sorted(gaps)[len(gaps) // 2], 3),
        origin_repeated_media_after=repeated[:5], origin_plain_reloads_after=len(window) - len(media),
    )
    timeline.write()
    results = timeline.results
    print(f"{fault.kind} shield-origin: {results}")
    assert max(resume) <= RESUME_BOUND_S, results
    assert not repeated, f"the origin answered a media URL twice after recovery: {repeated[:5]}"
    assert len(window) - len(media) <= BURST_WINDOW_S * 10 + 2, results

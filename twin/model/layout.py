"""Where viewers fetch from: the fleet's CDN layout, or the small deployment's origin itself.

`CdnLayout` is the platform at scale: viewers -> edge PoPs of their serving region -> the
region's shields -> the origin pool (twin.model.cdn), popularity groups from the scenario's
law, streamers that come and go. `DirectLayout` is the single machine `twin validate`
models (`Direct`, built by twin.validation.deployment): every request reaches the origin,
which is the one platform process whose CPU is modeled from per-unit costs (or, with the real
run's nginx tiers, the edges take them and the origin sees what they could not coalesce); a handful of
channels with fixed shares that never stop; the probe viewer's replicas. The `Twin` asks its
layout, never which layout it has.
"""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import simpy

from twin.calibration.parameters import Calibration
from twin.model.autoscale import NodePool
from twin.model.cdn import (
    NO_WAIT,
    Delivery,
    SmallTiers,
    TierQueue,
    deliver,
    deliver_direct,
    deliver_small_cdn,
)
from twin.model.tracers import Delays, DeliveryView, ProbePath, ProbeStats, probe
from twin.popularity import StreamGroups, build_groups, fit_popularity
from twin.scenario.schema import Scenario

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Direct:
    """The single-machine layout (`twin validate`): viewers fetch from the origin itself.

    Without `cdn` every request reaches the origin, which is the one platform process; its CPU
    is modeled from the per-unit costs of the calibration. With `cdn` (the run's nginx edges
    and shields) the edges take the requests and the origin sees what they and the shields
    could not coalesce (twin.model.cdn.deliver_small_cdn). `channel_shares`
    replaces the popularity law (a handful of channels with stated watch shares); channels
    never stop (they are fixed publishers) and all are transcoded on the one machine.
    `requests_per_viewer_s` and `held_per_viewer` describe the load generator's viewers
    (twin.validation.deployment derives them); `probes` replicas of the probe viewer follow
    `probe_rank` from `probe_start_s` with staggered joins (twin.model.tracers.probe): they
    sample the probe's latency distribution, while the origin carries the load of
    `probe_viewers`.
    """

    channel_shares: tuple[float, ...]
    full_ladder: bool
    mpixels_per_stream: float
    mbit_per_stream: float
    requests_per_viewer_s: float
    held_per_viewer: float
    chatters: float
    chat_messages_per_s: float
    segment_s: float
    frames_per_part: int
    probe_rank: int
    probes: int
    probe_start_s: float
    probe_pipeline_s: float
    transfer_s: float
    decode_s: float
    probe_viewers: int = 1
    #: the real run's nginx edges and shields (`cdn:`); None: viewers fetch from the origin
    cdn: SmallTiers | None = None


class Layout(Protocol):
    """What the `Twin` needs from a delivery layout."""

    groups: StreamGroups
    origin_queue: TierQueue
    streamers_churn: bool  # whether broadcasts start and stop during the run

    def transcoder_calibration(self, calibration: Calibration) -> Calibration: ...

    def deliver(
        self,
        dt: float,
        now: float,
        served: FloatArray,
        up: FloatArray,
        present: float,
        chat_deliveries_per_s: float,
        restarting: float,
    ) -> Delivery: ...

    def chat_rooms(self, members: FloatArray, storm: dict[int, float]) -> None: ...

    def delays(self, region: int) -> Delays: ...

    def shield_utilization(self) -> float: ...

    def region_shield_utilization(self, region: int) -> float: ...

    def lose_servers(self, tier: str, region: int, share: float) -> int: ...

    def restore_servers(self, tier: str, region: int) -> None: ...

    def machine(self) -> dict[str, float]: ...

    def start_probes(
        self, env: simpy.Environment, view: DeliveryView, calibration: Calibration, seed: int, end_s: float
    ) -> ProbeStats | None: ...


class CdnLayout:
    """The fleet: edge PoPs and shields per region in front of an autoscaled origin pool."""

    streamers_churn = True

    def __init__(
        self, scenario: Scenario, calibration: Calibration, origin_pool: NodePool, bitrate: FloatArray
    ) -> None:
        w = scenario.workload
        full_channels = round(w.streamers * w.full_ladder_share)
        law = fit_popularity(w.streamers, w.top_k, w.top_k_share, w.top1_share)
        self.groups = build_groups(law, scenario.head_streams, full_channels)
        self.calibration = calibration
        self.regions = scenario.regions
        self.origin_pool = origin_pool
        self.bitrate = bitrate
        self.pops = np.array([float(r.edge_pops) for r in scenario.regions])
        self.edge_capacity = np.array(
            [
                r.edge_pops * r.edge_servers_per_pop * calibration.edge_server_gbps * 1e9
                for r in scenario.regions
            ]
        )
        regions = scenario.regions
        self.edge_queues = [TierQueue(f"edge.{r.name}", calibration.edge_rps_per_server) for r in regions]
        self.shield_queues = [
            TierQueue(f"shield.{r.name}", calibration.shield_rps_per_server) for r in regions
        ]
        self.origin_queue = TierQueue("origin", calibration.origin_rps_per_server)
        # servers of each region out of service (node_loss faults): edge per PoP, shield in all
        self.edge_lost = np.zeros(len(regions))
        self.shield_lost = np.zeros(len(regions))

    def lose_servers(self, tier: str, region: int, share: float) -> int:
        """Take round(share x servers) of a region's edge (per PoP) or shield servers out; how many."""
        r = self.regions[region]
        if tier == "edge":
            per_pop = min(r.edge_servers_per_pop, round(r.edge_servers_per_pop * share))
            self.edge_lost[region] = per_pop
            return int(per_pop * r.edge_pops)
        lost = min(r.shield_servers, round(r.shield_servers * share))
        self.shield_lost[region] = lost
        return int(lost)

    def restore_servers(self, tier: str, region: int) -> None:
        (self.edge_lost if tier == "edge" else self.shield_lost)[region] = 0.0

    def transcoder_calibration(self, calibration: Calibration) -> Calibration:
        return calibration

    def deliver(
        self,
        dt: float,
        now: float,
        served: FloatArray,
        up: FloatArray,
        present: float,
        chat_deliveries_per_s: float,
        restarting: float,
    ) -> Delivery:
        channels, part_s = self.groups.channels, self.calibration.part_s
        per_pop = np.array([float(r.edge_servers_per_pop) for r in self.regions])
        capacity = (
            self.edge_capacity * (1.0 - self.edge_lost / per_pop)
            if self.edge_lost.any()
            else self.edge_capacity
        )
        d = deliver(served, channels, self.pops, self.bitrate, part_s, capacity)
        for r, region in enumerate(self.regions):
            edges = region.edge_servers_per_pop - self.edge_lost[r]
            self.edge_queues[r].step(dt, float(d.edge_rps[r]) / self.pops[r], edges)
            self.shield_queues[r].step(
                dt, float(d.edge_miss_rps[r]), region.shield_servers - self.shield_lost[r]
            )
        self.origin_queue.step(dt, d.origin_rps, self.origin_pool.up)
        return d

    def chat_rooms(self, members: FloatArray, storm: dict[int, float]) -> None:
        """Chat members follow the audience (`chatter_share`); nothing to add."""

    def delays(self, region: int) -> Delays:
        """Edge to shield to origin and back (RTTs), the shield's and origin's waits, the edge's wait."""
        upstream = self.calibration.shield_rtt_s + self.calibration.origin_rtt_s
        shield, edge = self.shield_queues[region], self.edge_queues[region]
        return upstream, shield.law(), self.origin_queue.law(), edge.law()

    def shield_utilization(self) -> float:
        return max(q.utilization for q in self.shield_queues)

    def region_shield_utilization(self, region: int) -> float:
        return self.shield_queues[region].utilization

    def machine(self) -> dict[str, float]:
        return {}

    def start_probes(
        self, env: simpy.Environment, view: DeliveryView, calibration: Calibration, seed: int, end_s: float
    ) -> ProbeStats | None:
        return None


class DirectLayout:
    """The one machine: the origin is the edge, the platform process's CPU is the model's output."""

    streamers_churn = False  # the real run's publishers never stop

    def __init__(
        self, direct: Direct, scenario: Scenario, calibration: Calibration, bitrate: FloatArray
    ) -> None:
        n = len(direct.channel_shares)
        self.groups = StreamGroups(
            first_rank=np.arange(1, n + 1, dtype=np.int64),
            channels=np.ones(n),
            share=np.array(direct.channel_shares, dtype=np.float64),
            full_ladder=np.full(n, direct.full_ladder),
        )
        self.direct = direct
        self.calibration = calibration
        self.streamers = scenario.workload.streamers
        self.bitrate = bitrate
        self.origin_queue = TierQueue("origin", calibration.origin_rps_per_server)
        self.load: dict[str, float] = {}  # the machine's modeled load this step

    def transcoder_calibration(self, calibration: Calibration) -> Calibration:
        # the one machine runs one worker per channel, however loaded: none is refused
        per_node = float(max(self.streamers, 1))
        return dataclasses.replace(calibration, cpu_streams_full=per_node, cpu_streams_source=per_node)

    def deliver(
        self,
        dt: float,
        now: float,
        served: FloatArray,
        up: FloatArray,
        present: float,
        chat_deliveries_per_s: float,
        restarting: float,
    ) -> Delivery:
        """One step of the single machine: origin load, then the platform process's CPU model."""
        direct, calibration = self.direct, self.calibration
        probes = float(direct.probe_viewers) if now >= direct.probe_start_s else 0.0
        rps = present * direct.requests_per_viewer_s + probes * 2.0 / calibration.part_s
        held = present * direct.held_per_viewer + probes
        if direct.cdn is None:
            d = deliver_direct(served, self.bitrate, rps)
        else:  # the edges take every request; the origin sees what the shields could not coalesce
            probe_rung = len(calibration.ladder) - 1 if probes else None
            d = deliver_small_cdn(served, self.bitrate, direct.cdn, rps, present, probe_rung)
            rps = d.origin_rps
            # a viewer's 2 requests a part hold `held_per_viewer` at once; an object's stream alike
            held = (rps * calibration.part_s / 2.0) * direct.held_per_viewer
        streams = float(self.groups.size)  # every channel publishes, watched or not
        transcoded = float(up.sum()) if direct.full_ladder else 0.0  # a killed worker costs nothing
        other = (
            calibration.platform_idle_cores
            + calibration.ingest_cpu_s_per_mbit * direct.mbit_per_stream * streams
            + calibration.held_request_cpu_s * held
            + calibration.chat_cpu_s_per_delivery * chat_deliveries_per_s
        )
        # the platform is one asyncio process: one core shared by ingest, packaging, origin, chat
        spare = max(1.0 - other, 1e-3)
        self.origin_queue.mu = spare / calibration.origin_cpu_s_per_request
        self.origin_queue.step(dt, rps, 1)
        self.load = {
            "held_requests": held,
            "cpu_platform": other + calibration.origin_cpu_s_per_request * rps,
            "cpu_transcode": calibration.transcode_core_s_per_mpixel * direct.mpixels_per_stream * transcoded,
            "transcode_restarts": restarting,
        }
        return d

    def chat_rooms(self, members: FloatArray, storm: dict[int, float]) -> None:
        if self.direct.chatters:
            members[0] = self.direct.chatters  # chat users join channel 1, watching or not
            storm[0] = self.direct.chat_messages_per_s

    def delays(self, region: int) -> Delays:
        """The origin is the edge: no upstream hop, the origin's wait at the edge."""
        return 0.0, NO_WAIT, NO_WAIT, self.origin_queue.law()

    def shield_utilization(self) -> float:
        return 0.0  # no shield tier

    def region_shield_utilization(self, region: int) -> float:
        return 0.0

    def lose_servers(self, tier: str, region: int, share: float) -> int:
        return 0  # one machine: no edge or shield tier

    def restore_servers(self, tier: str, region: int) -> None:
        return None

    def machine(self) -> dict[str, float]:
        return self.load

    def start_probes(
        self, env: simpy.Environment, view: DeliveryView, calibration: Calibration, seed: int, end_s: float
    ) -> ProbeStats | None:
        """Replicas of the probe viewer on `probe_rank`, joins staggered over one segment."""
        d = self.direct
        stats = ProbeStats()
        rng = random.Random(seed * 7_919 + 3)
        group = self.groups.group_of_rank(d.probe_rank)
        for i in range(d.probes):
            replica_rng = random.Random(rng.getrandbits(64))  # drawn before the join offset
            path = ProbePath(
                group=group,
                start_s=d.probe_start_s + (i + rng.random()) / d.probes * d.segment_s,
                end_s=end_s,
                pipeline_s=d.probe_pipeline_s,
                segment_parts=max(1, round(d.segment_s / calibration.part_s)),
                frames_per_part=d.frames_per_part,
                transfer_s=d.transfer_s,
                decode_s=d.decode_s,
            )
            env.process(probe(env, view, calibration, replica_rng, stats, path))
        return stats

"""The twin: wires the components into one SimPy environment and records what happens.

Layers: a `Scenario` (what to simulate) and a `Calibration` (what things cost and how fast
they are) go in; a `RunResult` of plain data (time series rows, tier table, tracer stats,
totals) comes out. Nothing here reads or writes files.

Time advances in fixed steps of `scenario.step_s` for the fluid parts (audience, delivery
tiers, chat, ads), driven by one SimPy process; the discrete parts are their own SimPy
processes on the same clock: autoscalers, node provisioning, scheduled faults and the tracer
viewers. All randomness comes from generators seeded by the run seed, and nothing depends on
wall time or hash order, so a scenario and seed give the same result bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import simpy

from twin.calibration.parameters import Calibration
from twin.model.autoscale import NodePool, autoscaler
from twin.model.cdn import Delivery, TierQueue, deliver, deliver_direct
from twin.model.chat import ChatCluster
from twin.model.regions import Regions, RegionState
from twin.model.tracers import ProbeStats, TracerStats, probe, tracer
from twin.model.transcoder import TranscoderFleet
from twin.model.viewers import FluidAudience, diurnal, rendition_shares
from twin.popularity import StreamGroups, build_groups, fit_popularity
from twin.scenario.schema import Fault, Scenario

FloatArray = npt.NDArray[np.float64]


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that counts the events it processes (for events/s figures)."""

    def __init__(self) -> None:
        super().__init__()
        self.processed = 0

    def step(self) -> None:
        self.processed += 1
        super().step()


@dataclass(frozen=True, slots=True)
class Direct:
    """The single-machine layout (`twin validate`): viewers fetch from the origin itself.

    No edge or shield tier: every request reaches the origin, which is the one platform
    process; its CPU is modeled from the per-unit costs of the calibration. `channel_shares`
    replaces the popularity law (a handful of channels with stated watch shares); channels
    never stop (they are fixed publishers) and all are transcoded on the one machine.
    `requests_per_viewer_s` and `held_per_viewer` describe the load generator's viewers
    (twin.validation.deployment derives them); `probes` replicas of the probe viewer follow
    `probe_rank` from `probe_start_s` with staggered joins (twin.model.tracers.probe): they sample
    the probe's latency distribution, while the origin carries the load of `probe_viewers`.
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


@dataclass(frozen=True, slots=True)
class RunResult:
    """Everything a run produced, as plain data for `summary` and `run` (no files, no wall time)."""

    scenario: Scenario
    seed: int
    rows: list[dict[str, float]]
    regions: list[str]
    tracer_stats: TracerStats
    totals: dict[str, float]
    tiers: list[dict[str, Any]]
    events: int
    faults: list[dict[str, Any]] = field(default_factory=list)
    probe_stats: ProbeStats | None = None


class Twin:
    def __init__(self, scenario: Scenario, cal: Calibration, seed: int, direct: Direct | None = None) -> None:
        self.sc = scenario
        self.cal = cal
        self.seed = seed
        self.direct = direct
        self.env = CountingEnvironment()
        self.rng = np.random.default_rng(seed)
        w = scenario.workload
        regions = scenario.regions
        self.region_names = [r.name for r in regions]
        self.R = len(regions)
        full_channels = round(w.streamers * w.full_ladder_share)
        if direct is None:
            pop = fit_popularity(w.streamers, w.top_k, w.top_k_share, w.top1_share)
            self.groups: StreamGroups = build_groups(pop, scenario.head_streams, full_channels)
        else:
            n = len(direct.channel_shares)
            self.groups = StreamGroups(
                first_rank=np.arange(1, n + 1, dtype=np.int64),
                channels=np.ones(n),
                share=np.array(direct.channel_shares, dtype=np.float64),
                full_ladder=np.full(n, direct.full_ladder),
            )
        self.G = self.groups.size
        self.bitrate = np.array([r.bitrate_bps for r in cal.ladder])
        self.K = len(cal.ladder)
        full_mix = rendition_shares(cal, True)
        src_mix = rendition_shares(cal, False)
        mix = np.where(self.groups.full_ladder[:, None], full_mix[None, :], src_mix[None, :])  # (G, K)
        self.region_share = np.array([r.viewer_share for r in regions])
        self.audience = FluidAudience(
            self.region_share[None, :, None] * mix[:, None, :], cal.viewer_session_mean_s
        )
        self.pops = np.array([float(r.edge_pops) for r in regions])
        self.edge_capacity = np.array(
            [r.edge_pops * r.edge_servers_per_pop * cal.edge_server_gbps * 1e9 for r in regions]
        )
        self.head = self.groups.channels == 1.0
        # pools
        f = scenario.fleet
        env = self.env
        self.gpu = NodePool(env, "gpu", f.gpu.nodes, f.gpu.min_nodes, f.gpu.max_nodes, cal.gpu_provisioning_s)
        self.cpu = NodePool(env, "cpu", f.cpu.nodes, f.cpu.min_nodes, f.cpu.max_nodes, cal.cpu_provisioning_s)
        self.origin = NodePool(
            env, "origin", f.origin.nodes, f.origin.min_nodes, f.origin.max_nodes, cal.origin_provisioning_s
        )
        self.chat_pool = NodePool(
            env, "chat", f.chat.nodes, f.chat.min_nodes, f.chat.max_nodes, cal.chat_provisioning_s
        )
        live0 = self._streamer_target(0.0)
        fleet_cal = cal
        if direct is not None:
            # the one machine runs one worker per channel, however loaded: none is refused
            per_node = float(max(w.streamers, 1))
            fleet_cal = dataclasses.replace(cal, cpu_streams_full=per_node, cpu_streams_source=per_node)
        self.fleet = TranscoderFleet(
            fleet_cal,
            self.gpu,
            self.cpu,
            round(live0 * w.full_ladder_share),
            round(live0 * (1.0 - w.full_ladder_share)),
            self.rng,
        )
        self.chat = ChatCluster(cal, self.chat_pool)
        self.edge_q = [TierQueue(f"edge.{r.name}", cal.edge_rps_per_server) for r in regions]
        self.shield_q = [TierQueue(f"shield.{r.name}", cal.shield_rps_per_server) for r in regions]
        self.origin_q = TierQueue("origin", cal.origin_rps_per_server)
        self.ad_q = TierQueue("ads", cal.ad_rps_per_server, max_delay_s=cal.ad_decision_window_s)
        # per-head-stream fates: ingest region and the uniform draw compared to the down share
        self.ingest_region = self.rng.choice(
            self.R, size=self.G, p=np.array([r.streamer_share for r in regions])
        )
        self.fate = self.rng.random(self.G)
        self.ingest_lost = np.zeros(
            self.R
        )  # share of all streams whose ingest region failed, not yet re-homed
        self.failover = [
            self.region_names.index(r.failover_to) if r.failover_to != "-" else (i + 1) % self.R
            for i, r in enumerate(regions)
        ]
        self.regions = Regions(self.failover, cal.failover_extra_rtt_s)
        self.outage_epoch = [0] * self.R
        self.spikes: list[Fault] = [x for x in scenario.faults if x.kind == "viral_spike"]
        self.storms: list[Fault] = [x for x in scenario.faults if x.kind == "chat_storm"]
        self.ads: list[Fault] = [x for x in scenario.faults if x.kind == "ad_break"]
        self.group_down = np.zeros(self.G)
        self.restart_until = np.zeros(self.G)  # worker_restart: a stream's output stops until then
        self.probe_stats = ProbeStats() if direct is not None else None
        self.machine: dict[str, float] = {}  # direct layout: the machine's modeled load this step
        self.delivery: Delivery | None = None
        self.bw_factor = [1.0] * self.R
        self.rtts = [r.rtt_ms / 1000.0 for r in regions]
        self.rows: list[dict[str, float]] = []
        self.fault_log: list[dict[str, Any]] = []
        self.stats = TracerStats.empty(scenario.duration_s, scenario.record_every_s)
        self.totals: dict[str, float] = {
            k: 0.0
            for k in (
                "viewer_seconds",
                "unavailable_viewer_seconds",
                "egress_bytes",
                "cost_usd",
                "cost_egress_usd",
                "cost_compute_usd",
                "cost_storage_usd",
                "ad_requests",
                "ad_unfilled",
                "ad_impressions",
                "commerce_events",
                "chat_delay_weighted",
                "fluid_stall_viewer_seconds",
            )
        }
        self.peaks: dict[str, float] = {}
        self.chat_delays: list[float] = []
        self.progress: Callable[[float], None] | None = None

    # ---- workload ---------------------------------------------------------------------------
    def _diurnal(self, t: float) -> float:
        w = self.sc.workload
        return diurnal(t, w.start_hour, w.peak_hour, w.trough_ratio)

    def _streamer_target(self, t: float) -> float:
        return self.sc.workload.streamers * self._diurnal(t)

    def group_targets(self, t: float) -> FloatArray:
        targets = self.sc.workload.viewers * self._diurnal(t) * self.groups.share
        for s in self.spikes:
            if t >= s.at_s:
                ramp = 1.0 if s.ramp_s <= 0 else min(1.0, (t - s.at_s) / s.ramp_s)
                if t > s.at_s + s.ramp_s + s.duration_s:
                    ramp = 0.0
                g = self.groups.group_of_rank(s.stream_rank)
                per_channel = targets[g] / self.groups.channels[g]
                targets[g] += per_channel * (s.factor - 1.0) * ramp
        return targets

    # ---- DeliveryView for tracers -----------------------------------------------------------
    def pick_stream(self, u: float) -> int:
        per_group = self.audience.v.sum(axis=(1, 2))
        cum = np.cumsum(per_group)
        return min(int(np.searchsorted(cum, u * cum[-1], side="right")), self.G - 1)

    def pick_region(self, u: float) -> int:
        return min(int(np.searchsorted(np.cumsum(self.region_share), u, side="right")), self.R - 1)

    def group_full_ladder(self, group: int) -> bool:
        return bool(self.groups.full_ladder[group])

    def stream_down(self, group: int, u: float) -> bool:
        if self.head[group]:
            return bool(self.group_down[group] > 0.5)
        return bool(u < self.group_down[group])

    def serving(self, home: int) -> tuple[int, float]:
        return self.regions.serving(home)

    def edge_bandwidth_factor(self, region: int) -> float:
        return self.bw_factor[region]

    def edge_wait(self, region: int, u1: float, u2: float) -> float:
        if self.direct is not None:
            return self.origin_q.sample_wait(u1, u2)
        return self.edge_q[region].sample_wait(u1, u2)

    def upstream_delay(self, region: int, u1: float, u2: float, u3: float, u4: float) -> float:
        if self.direct is not None:
            return 0.0  # the origin is the edge
        return (
            self.cal.shield_rtt_s
            + self.shield_q[region].sample_wait(u1, u2)
            + self.cal.origin_rtt_s
            + self.origin_q.sample_wait(u3, u4)
        )

    def rtt_s(self, region: int) -> float:
        return self.rtts[region]

    # ---- faults -----------------------------------------------------------------------------
    def _fault(self, f: Fault) -> simpy.events.ProcessGenerator:
        yield self.env.timeout(f.at_s)
        log: dict[str, Any] = {"kind": f.kind, "at_s": f.at_s}
        if f.kind == "region_outage":
            r = self.region_names.index(f.region)
            self.regions.apply(r, "outage")
            self.outage_epoch[r] += 1
            self.ingest_lost[r] = self.sc.regions[r].streamer_share
            log.update(region=f.region, duration_s=f.duration_s)
            self.fault_log.append(log)
            self.env.process(self._rehome_ingest(r))
            self.env.process(self._dns_failover(r, self.outage_epoch[r]))
            yield self.env.timeout(f.duration_s)
            self.regions.apply(r, "recover")
        elif f.kind == "worker_restart":
            g = self.groups.group_of_rank(f.stream_rank)
            self.restart_until[g] = max(self.restart_until[g], f.at_s + self.cal.transcode_restart_s)
            log.update(stream_rank=f.stream_rank, restart_s=self.cal.transcode_restart_s)
            self.fault_log.append(log)
        elif f.kind == "transcoder_loss":
            pool = self.gpu if f.node_type == "gpu" else self.cpu
            log.update(node_type=f.node_type, nodes_lost=pool.fail(f.share))
            self.fate = self.rng.random(self.G)
            self.fault_log.append(log)
        else:
            log.update(stream_rank=f.stream_rank, duration_s=f.duration_s)
            self.fault_log.append(log)

    def _dns_failover(self, r: int, epoch: int) -> simpy.events.ProcessGenerator:
        """After DNS TTL + health checks, the region's viewers go to its failover region."""
        yield self.env.timeout(self.cal.dns_failover_s)
        if self.outage_epoch[r] == epoch and self.regions.states[r] is RegionState.DOWN:
            self.regions.apply(r, "failover")

    def _rehome_ingest(self, r: int) -> simpy.events.ProcessGenerator:
        """Streamers whose ingest PoP died reconnect (OBS retry) to the failover region's ingest."""
        yield self.env.timeout(self.cal.ingest_reconnect_s)
        target = self.failover[r]
        live = self.fleet.live
        spare = (
            self.sc.regions[target].ingest_capacity_streams - live * self.sc.regions[target].streamer_share
        )
        moved = min(self.ingest_lost[r], max(0.0, spare) / max(live, 1))
        self.ingest_lost[r] -= moved

    # ---- the fluid step ---------------------------------------------------------------------
    def _stream_down(self, t: float) -> FloatArray:
        full = self.fleet.down_fraction("full")
        src = self.fleet.down_fraction("source")
        tx = np.where(self.groups.full_ladder, full, src)
        down = np.where(self.head, (self.fate < tx).astype(np.float64), tx)
        ingest_head = self.ingest_lost[self.ingest_region] > 0.0
        ingest = np.where(self.head, ingest_head.astype(np.float64), self.ingest_lost.sum())
        restarting = (t < self.restart_until).astype(np.float64)
        return 1.0 - (1.0 - down) * (1.0 - ingest) * (1.0 - restarting)

    def _step(self, t: float, dt: float) -> None:
        sc, cal = self.sc, self.cal
        if self.direct is None:  # the real run's publishers never stop
            self.fleet.churn(dt, self._streamer_target(t + dt), sc.workload.full_ladder_share)
        self.fleet.place(t + dt)
        self.audience.step(dt, self.group_targets(t + dt))
        v = self.audience.v
        self.group_down = self._stream_down(t + dt)
        up = 1.0 - self.group_down
        mapping = np.zeros((self.R, self.R))
        for home in range(self.R):
            region, _ = self.serving(home)
            if region >= 0:
                mapping[home, region] = 1.0
        live_v = v * up[:, None, None]
        served = (
            np.einsum("grk,rs->gsk", live_v, mapping)
            if not np.array_equal(mapping, np.eye(self.R))
            else live_v
        )
        present = float(v.sum())
        served_total = float(served.sum())
        if self.direct is None:
            d = deliver(served, self.groups.channels, self.pops, self.bitrate, cal.part_s, self.edge_capacity)
            for r in range(self.R):
                self.edge_q[r].step(
                    dt, float(d.edge_rps[r]) / self.pops[r], sc.regions[r].edge_servers_per_pop
                )
                self.shield_q[r].step(dt, float(d.edge_miss_rps[r]), sc.regions[r].shield_servers)
            self.origin_q.step(dt, d.origin_rps, self.origin.up)
        else:
            d = self._direct_step(dt, v, served, up)
        self.delivery = d
        self.bw_factor = [min(1.0, 1.0 / x) if x > 0 else 1.0 for x in d.overload.tolist()]
        # chat and ads
        members = v.sum(axis=(1, 2)) * up * sc.workload.chatter_share
        storm: dict[int, float] = {}
        if self.direct is not None and self.direct.chatters:
            members[0] = self.direct.chatters  # chat users join channel 1, watching or not
            storm[0] = self.direct.chat_messages_per_s
        for s in self.storms:
            if s.at_s <= t < s.at_s + s.duration_s:
                g = self.groups.group_of_rank(s.stream_rank)
                storm[g] = s.messages_per_s
                members[g] = max(members[g], float(v[g].sum()) * up[g] * s.share)
        self.chat.step(dt, members, self.groups.channels, storm)
        ad_rate = 0.0
        ad_slots = 0.0
        for a in self.ads:
            if a.at_s <= t < a.at_s + cal.ad_decision_window_s:
                g = self.groups.group_of_rank(a.stream_rank)
                rate = float(v[g].sum()) * up[g] / self.groups.channels[g] / cal.ad_decision_window_s
                ad_rate += rate
                ad_slots += rate * math.ceil(a.duration_s / cal.ad_slot_s)
        self.ad_q.step(dt, ad_rate, sc.fleet.ad_servers)
        ad_cap = sc.fleet.ad_servers * cal.ad_rps_per_server
        filled = min(1.0, ad_cap / ad_rate) if ad_rate else 0.0
        self.totals["ad_requests"] += ad_rate * dt
        self.totals["ad_unfilled"] += max(0.0, ad_rate - ad_cap) * dt
        self.totals["ad_impressions"] += ad_slots * filled * dt
        # accounting
        for pool in (self.gpu, self.cpu, self.origin, self.chat_pool):
            pool.account(dt)
        tot = self.totals
        tot["viewer_seconds"] += present * dt
        tot["unavailable_viewer_seconds"] += (present - served_total) * dt
        overload = d.overload
        stall_share = np.where(overload > 1.0, 1.0 - 1.0 / np.maximum(overload, 1e-12), 0.0)
        tot["fluid_stall_viewer_seconds"] += float((d.viewers * stall_share).sum()) * dt
        egress_bytes = float(d.edge_delivered_bps.sum()) * dt / 8.0
        tot["egress_bytes"] += egress_bytes
        edge_servers = sum(r.edge_pops * r.edge_servers_per_pop + r.shield_servers for r in sc.regions)
        compute = (
            (
                self.gpu.up * cal.cost_gpu_node_h
                + self.cpu.up * cal.cost_cpu_node_h
                + self.origin.up * cal.cost_origin_node_h
                + self.chat_pool.up * cal.cost_chat_node_h
                + edge_servers * cal.cost_edge_server_h
                + sc.fleet.ad_servers * cal.cost_ad_server_h
            )
            * dt
            / 3600
        )
        ladder_bps = self._ladder_bps()
        storage_gb = ladder_bps * cal.dvr_window_s / 8.0 / 1e9
        storage = storage_gb * cal.cost_storage_gb_month * dt / (730.0 * 3600.0)
        egress_cost = egress_bytes / 1e9 * cal.cost_egress_gb
        tot["cost_compute_usd"] += compute
        tot["cost_storage_usd"] += storage
        tot["cost_egress_usd"] += egress_cost
        tot["cost_usd"] += compute + storage + egress_cost
        tot["commerce_events"] += present * cal.commerce_events_per_viewer_h / 3600.0 * dt
        tot["chat_delay_weighted"] += self.chat.delay_s * dt
        self.chat_delays.append(self.chat.delay_s)
        self._peak("egress_edge_bps", float(d.edge_delivered_bps.sum()))
        self._peak("viewers", present)
        self._peak("dvr_storage_gb", storage_gb)
        self._peak("dvr_write_bps", ladder_bps)
        self._peak("origin_rps", d.origin_rps)
        self._peak("chat_deliveries_per_s", self.chat.deliveries_per_s)
        self._peak("chat_refused_connections", self.chat.refused)
        self._peak("ad_rps", ad_rate)
        self._peak("live_streams", float(self.fleet.live))
        if (t + dt) % sc.record_every_s < dt / 2 or (t + dt) >= sc.duration_s - dt / 2:
            self._record(t + dt, v, d, present, served_total, storage_gb)

    def _direct_step(self, dt: float, v: FloatArray, served: FloatArray, up: FloatArray) -> Delivery:
        """One step of the single machine: origin load, then the platform process's CPU model."""
        direct, cal = self.direct, self.cal
        assert direct is not None
        viewers = float(v.sum())
        probes = float(direct.probe_viewers) if self.env.now >= direct.probe_start_s else 0.0
        rps = viewers * direct.requests_per_viewer_s + probes * 2.0 / cal.part_s
        d = deliver_direct(served, self.bitrate, rps)
        streams = float(self.G)  # every channel publishes, watched or not
        transcoded = float(up.sum()) if direct.full_ladder else 0.0  # a killed worker costs nothing
        held = viewers * direct.held_per_viewer + probes
        deliveries = self.chat.deliveries_per_s
        other = (
            cal.platform_idle_cores
            + cal.ingest_cpu_s_per_mbit * direct.mbit_per_stream * streams
            + cal.held_request_cpu_s * held
            + cal.chat_cpu_s_per_delivery * deliveries
        )
        # the platform is one asyncio process: one core shared by ingest, packaging, origin, chat
        spare = max(1.0 - other, 1e-3)
        self.origin_q.mu = spare / cal.origin_cpu_s_per_request
        self.origin_q.step(dt, rps, 1)
        self.machine = {
            "held_requests": held,
            "cpu_platform": other + cal.origin_cpu_s_per_request * rps,
            "cpu_transcode": cal.transcode_core_s_per_mpixel * direct.mpixels_per_stream * transcoded,
            "transcode_restarts": float((self.env.now < self.restart_until).sum()),
        }
        return d

    def _ladder_bps(self) -> float:
        full = float(self.bitrate.sum()) * self.fleet.demand["full"]
        return full + float(self.bitrate[0]) * self.fleet.demand["source"]

    def _peak(self, key: str, value: float) -> None:
        self.peaks[key] = max(self.peaks.get(key, -math.inf), value)

    def _record(
        self, t: float, v: FloatArray, d: Delivery, present: float, served: float, storage_gb: float
    ) -> None:
        gpu_u, cpu_u = self.fleet.utilization()
        top = self.groups.group_of_rank(1)
        row: dict[str, float] = {
            "t_s": t,
            "viewers": present,
            "viewers_served": served,
            "availability": served / present if present else 1.0,
            "top_stream_viewers": float(v[top].sum()),
            "live_streams": float(self.fleet.live),
            "streams_down": float(
                self.fleet.demand["full"] * self.fleet.down_fraction("full")
                + self.fleet.demand["source"] * self.fleet.down_fraction("source")
            ),
            "arrived": self.audience.arrived,
            "departed": self.audience.departed,
            "egress_edge_tbps": float(d.edge_delivered_bps.sum()) / 1e12,
            "egress_edge_demand_tbps": float(d.edge_demand_bps.sum()) / 1e12,
            "egress_shield_tbps": float(d.shield_egress_bps.sum()) / 1e12,
            "egress_origin_tbps": d.origin_egress_bps / 1e12,
            "edge_rps": float(d.edge_rps.sum()),
            "shield_rps": float(d.edge_miss_rps.sum()),
            "origin_rps": d.origin_rps,
            "edge_hit_ratio": float(1.0 - d.edge_miss_rps.sum() / d.edge_rps.sum())
            if d.edge_rps.sum()
            else 1.0,
            "shield_hit_ratio": (
                float(1.0 - d.shield_miss_rps.sum() / d.edge_miss_rps.sum()) if d.edge_miss_rps.sum() else 1.0
            ),
            "util_edge": float(d.overload.max()),
            "util_shield": max(q.utilization for q in self.shield_q),
            "util_origin": self.origin_q.utilization,
            "util_gpu": gpu_u,
            "util_cpu": cpu_u,
            "util_chat": self.chat.utilization,
            "nodes_gpu": float(self.gpu.up),
            "nodes_cpu": float(self.cpu.up),
            "nodes_origin": float(self.origin.up),
            "nodes_chat": float(self.chat_pool.up),
            "origin_wait_ms": self.origin_q.mean_wait() * 1000.0,
            "chat_connections": self.chat.connections,
            "chat_messages_per_s": self.chat.messages_per_s,
            "chat_deliveries_per_s": self.chat.deliveries_per_s,
            "chat_delay_s": self.chat.delay_s,
            "chat_refused_connections": self.chat.refused,
            "ad_rps": self.ad_q.utilization * self.sc.fleet.ad_servers * self.cal.ad_rps_per_server,
            "dvr_storage_pb": storage_gb / 1e6,
            "cost_usd": self.totals["cost_usd"],
        }
        if self.direct is not None:
            row.update(self.machine)
        for r, name in enumerate(self.region_names):
            row[f"viewers.{name}"] = float(d.viewers[r])
            row[f"egress_gbps.{name}"] = float(d.edge_delivered_bps[r]) / 1e9
            row[f"edge_util.{name}"] = float(d.overload[r])
            row[f"edge_hit.{name}"] = float(d.edge_hit_ratio[r])
            for k, rung in enumerate(self.cal.ladder):
                row[f"served.{name}.{rung.name}"] = float(d.by_rk[r, k])
        self.rows.append(row)
        if self.progress is not None:
            self.progress(t)

    # ---- processes --------------------------------------------------------------------------
    def _stepper(self) -> simpy.events.ProcessGenerator:
        dt = self.sc.step_s
        steps = round(self.sc.duration_s / dt)
        for i in range(steps):
            self._step(i * dt, dt)
            yield self.env.timeout(dt)

    def run(self) -> RunResult:
        sc, cal, env = self.sc, self.cal, self.env
        self.audience.fill(self.group_targets(0.0))
        period = sc.fleet.autoscale_period_s
        target = sc.fleet.target_utilization
        env.process(autoscaler(env, self.gpu, self.fleet.gpu_needed, target, period))
        env.process(autoscaler(env, self.cpu, self.fleet.cpu_needed, target, period))
        env.process(autoscaler(env, self.origin, self.origin_q.servers_needed, target, period))
        env.process(autoscaler(env, self.chat_pool, self.chat.needed, target, period))
        for f in sc.faults:
            env.process(self._fault(f))
        env.process(self._stepper())
        tracer_rng = random.Random(self.seed * 1_000_003 + 17)
        for _ in range(sc.workload.tracers):
            env.process(
                tracer(env, self, cal, random.Random(tracer_rng.getrandbits(64)), self.stats, sc.duration_s)
            )
        if self.direct is not None and self.probe_stats is not None:
            d = self.direct
            probe_rng = random.Random(self.seed * 7_919 + 3)
            for i in range(d.probes):
                env.process(
                    probe(
                        env,
                        self,
                        cal,
                        random.Random(probe_rng.getrandbits(64)),
                        self.probe_stats,
                        self.groups.group_of_rank(d.probe_rank),
                        d.probe_start_s + (i + probe_rng.random()) / d.probes * d.segment_s,
                        sc.duration_s,
                        d.probe_pipeline_s,
                        max(1, round(d.segment_s / cal.part_s)),
                        d.frames_per_part,
                        d.transfer_s,
                        d.decode_s,
                    )
                )
        env.run(until=sc.duration_s)
        return self._result()

    def _result(self) -> RunResult:
        tiers = []
        for pool, cost in (
            (self.gpu, self.cal.cost_gpu_node_h),
            (self.cpu, self.cal.cost_cpu_node_h),
            (self.origin, self.cal.cost_origin_node_h),
            (self.chat_pool, self.cal.cost_chat_node_h),
        ):
            col = f"util_{pool.name}"
            utils = [row[col] for row in self.rows]
            tiers.append(
                {
                    "tier": pool.name,
                    "nodes_start": getattr(self.sc.fleet, pool.name).nodes,
                    "nodes_peak": pool.peak_up,
                    "nodes_end": pool.up,
                    "nodes_failed": pool.failed,
                    "node_hours": pool.node_seconds / 3600.0,
                    "cost_usd": pool.node_seconds / 3600.0 * cost,
                    "util_mean": float(np.mean(utils)),
                    "util_peak": float(np.max(utils)),
                }
            )
        for region in self.sc.regions:
            utils = [row[f"edge_util.{region.name}"] for row in self.rows]
            gbps = [row[f"egress_gbps.{region.name}"] for row in self.rows]
            tiers.append(
                {
                    "tier": f"edge.{region.name}",
                    "nodes_start": region.edge_pops * region.edge_servers_per_pop,
                    "nodes_peak": region.edge_pops * region.edge_servers_per_pop,
                    "nodes_end": region.edge_pops * region.edge_servers_per_pop,
                    "nodes_failed": 0,
                    "node_hours": region.edge_pops * region.edge_servers_per_pop * self.sc.duration_s / 3600,
                    "cost_usd": region.edge_pops
                    * region.edge_servers_per_pop
                    * self.sc.duration_s
                    / 3600
                    * self.cal.cost_edge_server_h,
                    "util_mean": float(np.mean(utils)),
                    "util_peak": float(np.max(utils)),
                    "egress_peak_gbps": float(np.max(gbps)),
                    "hit_ratio_mean": float(np.mean([row[f"edge_hit.{region.name}"] for row in self.rows])),
                }
            )
        totals = dict(self.totals)
        totals.update({f"peak_{k}": v for k, v in self.peaks.items()})
        totals["dropped_origin_requests"] = self.origin_q.dropped
        totals["chat_dropped_messages"] = self.chat.dropped
        totals["viewers_initial"] = self.audience.initial
        totals["viewers_arrived"] = self.audience.arrived
        totals["viewers_departed"] = self.audience.departed
        totals["viewers_present"] = self.audience.present
        totals["streams_started"] = float(self.fleet.started_total)
        totals["streams_stopped"] = float(self.fleet.stopped_total)
        totals["streams_initial"] = float(self.fleet.initial)
        totals["streams_live"] = float(self.fleet.live)
        totals["chat_delay_p99_s"] = float(np.percentile(self.chat_delays, 99)) if self.chat_delays else 0.0
        totals["groups"] = float(self.G)
        return RunResult(
            self.sc,
            self.seed,
            self.rows,
            self.region_names,
            self.stats,
            totals,
            tiers,
            self.env.processed,
            self.fault_log,
            self.probe_stats,
        )

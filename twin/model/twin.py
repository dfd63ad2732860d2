"""The twin: wires the components into one SimPy environment and steps the fluid parts.

Layers: a `Scenario` (what to simulate) and a `Calibration` (what things cost and how fast
they are) go in; a `RunResult` of plain data (time series rows, tier table, tracer stats,
totals) comes out. Nothing here reads or writes files.

Time advances in fixed steps of `scenario.step_s` for the fluid parts (audience, delivery
tiers, chat, ads), driven by one SimPy process; the discrete parts are their own SimPy
processes on the same clock: autoscalers, node provisioning, scheduled faults and the tracer
viewers. All randomness comes from generators seeded by the run seed, and nothing depends on
wall time or hash order, so a scenario and seed give the same result bit for bit.

The components live in their own modules: the audience (`viewers`), the delivery layout
(`layout`: the fleet's CDN, or the small deployment's origin), transcoders (`transcoder`),
chat (`chat`), node pools and autoscalers (`autoscale`), regions (`regions`), faults
(`faults`), ads, commerce and costs (`economics`), tracer and probe viewers (`tracers`) and
the recorded rows (`records`). The `Twin` only wires them and advances them in order.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import simpy

from twin.calibration.parameters import Calibration
from twin.model.autoscale import Pools, autoscaler
from twin.model.chat import ChatCluster
from twin.model.economics import Economics
from twin.model.faults import FaultSchedule, StreamOutages
from twin.model.layout import CdnLayout, Direct, DirectLayout, Layout
from twin.model.records import Recorder, RunResult
from twin.model.regions import Regions
from twin.model.tracers import Delays, ProbeStats, Route, TracerStats, tracer
from twin.model.transcoder import TranscoderFleet
from twin.model.viewers import FluidAudience, ViewerDemand, rendition_shares
from twin.scenario.schema import FaultKind, NodeType, Scenario

FloatArray = npt.NDArray[np.float64]

NO_ROUTE: Route = (-1, 0.0, 0.0, 0.0, 0.0)


class CountingEnvironment(simpy.Environment):
    """A SimPy environment that says how many events it has processed (for events/s figures).

    Counting in `step` costs a Python call per event, a third of SimPy's own cost per event:
    instead, every scheduled event draws an id from SimPy's counter (`Environment.schedule`),
    so the processed ones are the ids drawn less the events still queued.
    tests/twin/test_counting_environment.py holds it against a count taken in `step`.
    """

    @property
    def processed(self) -> int:
        scheduled = next(self._eid)  # the next id: how many were drawn before it
        self._eid = itertools.count(scheduled)  # give the id back
        return scheduled - len(self._queue)


class Twin:
    """One run of `scenario` under `calibration` with `seed`; `direct` models the small deployment."""

    def __init__(
        self, scenario: Scenario, calibration: Calibration, seed: int, direct: Direct | None = None
    ) -> None:
        self.scenario = scenario
        self.calibration = calibration
        self.seed = seed
        self.env = CountingEnvironment()
        self.rng = np.random.default_rng(seed)
        workload = scenario.workload
        regions = scenario.regions
        self.region_names = [r.name for r in regions]
        self.bitrate = np.array([r.bitrate_bps for r in calibration.ladder])
        self.pools = Pools.build(self.env, scenario.fleet, calibration)
        self.layout: Layout = (
            CdnLayout(scenario, calibration, self.pools.origin, self.bitrate)
            if direct is None
            else DirectLayout(direct, scenario, calibration, self.bitrate)
        )
        self.groups = self.layout.groups
        mix = np.where(
            self.groups.full_ladder[:, None],
            rendition_shares(calibration, True)[None, :],
            rendition_shares(calibration, False)[None, :],
        )  # (groups, renditions)
        self.region_share = np.array([r.viewer_share for r in regions])
        self.audience = FluidAudience(
            self.region_share[None, :, None] * mix[:, None, :], calibration.viewer_session_mean_s
        )
        self.demand = ViewerDemand(workload, self.groups, scenario.faults)
        live = self.demand.streamers(0.0)
        self.fleet = TranscoderFleet(
            self.layout.transcoder_calibration(calibration),
            self.pools.gpu,
            self.pools.cpu,
            round(live * workload.full_ladder_share),
            round(live * (1.0 - workload.full_ladder_share)),
            self.rng,
        )
        rtt_s = sum(r.viewer_share * r.rtt_ms for r in regions) / 1000.0
        self.chat = ChatCluster(calibration, self.pools.chat, rtt_s)
        self.outages = StreamOutages(self.groups, regions, self.fleet, self.rng)
        failover = [
            self.region_names.index(r.failover_to) if r.failover_to != "-" else (i + 1) % len(regions)
            for i, r in enumerate(regions)
        ]
        self.regions = Regions(failover, calibration.failover_extra_rtt_s)
        self.link_losses = [0.0] * len(regions)  # packet loss on each region's viewer links
        self.faults = FaultSchedule(
            self.env,
            calibration,
            regions,
            self.regions,
            self.outages,
            {NodeType.GPU: self.pools.gpu, NodeType.CPU: self.pools.cpu},
            {"origin": self.pools.origin, "chat": self.pools.chat},
            self.layout,
            self.link_losses,
            self.chat,
            self._changed,
        )
        self.chat_storms = [f for f in scenario.faults if f.kind == FaultKind.CHAT_STORM]
        self.economics = Economics(scenario, calibration, self.groups)
        self.recorder = Recorder(
            scenario,
            calibration,
            layout=self.layout,
            audience=self.audience,
            fleet=self.fleet,
            pools=self.pools,
            chat=self.chat,
            economics=self.economics,
        )
        self.version = 0  # DeliveryView.version: bumped by every step and by faults tracers see
        self._delays: list[Delays] = []  # per region, as of `_delays_version`
        self._delays_version = -1
        self.group_down = np.zeros(self.groups.size)
        self.down_shares = self.group_down.tolist()
        self.head_groups = self.outages.head.tolist()
        self.bandwidth_factor = [1.0] * len(regions)
        self.rtts = [r.rtt_ms / 1000.0 for r in regions]
        self.stats = TracerStats.empty(scenario.duration_s, scenario.record_every_s)
        self.peaks: dict[str, float] = {}
        self.chat_delays: list[float] = []
        self.progress: Callable[[float], None] | None = None

    # ---- DeliveryView for tracers -----------------------------------------------------------
    def pick_stream(self, u: float) -> int:
        per_group = self.audience.v.sum(axis=(1, 2))
        cum = np.cumsum(per_group)
        return min(int(np.searchsorted(cum, u * cum[-1], side="right")), self.groups.size - 1)

    def pick_region(self, u: float) -> int:
        regions = len(self.region_names)
        return min(int(np.searchsorted(np.cumsum(self.region_share), u, side="right")), regions - 1)

    def group_full_ladder(self, group: int) -> bool:
        return bool(self.groups.full_ladder[group])

    def stream_down(self, group: int, u: float) -> bool:
        # plain lists: a tracer asks once per part, and numpy scalar indexing costs ~10x more
        if self.head_groups[group]:
            return self.down_shares[group] > 0.5
        return u < self.down_shares[group]

    def delays(self, region: int) -> Delays:
        # every tracer asks after each change: read the tiers' laws once per change for all
        if self._delays_version != self.version:
            self._delays = [self.layout.delays(r) for r in range(len(self.region_names))]
            self._delays_version = self.version
        return self._delays[region]

    def route(self, home: int) -> Route:
        region, extra = self.regions.routes[home]
        if region < 0:
            return NO_ROUTE
        return region, self.rtts[region], extra, self.bandwidth_factor[region], self.link_losses[region]

    def _changed(self) -> None:
        self.version += 1

    # ---- the fluid step ---------------------------------------------------------------------
    def _served(self, v: FloatArray, up: FloatArray) -> FloatArray:
        """Viewers whose stream is up, moved from their home region to the region serving it."""
        regions = len(self.region_names)
        mapping = np.zeros((regions, regions))
        for home in range(regions):
            region, _ = self.regions.serving(home)
            if region >= 0:
                mapping[home, region] = 1.0
        live_v = v * up[:, None, None]
        if np.array_equal(mapping, np.eye(regions)):
            return live_v
        moved: FloatArray = np.einsum("grk,rs->gsk", live_v, mapping)
        return moved

    def _step(self, t: float, dt: float) -> None:
        scenario, totals = self.scenario, self.economics.totals
        if self.layout.streamers_churn:
            self.fleet.churn(dt, self.demand.streamers(t + dt), scenario.workload.full_ladder_share)
        self.fleet.place(t + dt)
        self.audience.step(dt, self.demand.targets(t + dt))
        v = self.audience.v
        self.group_down = self.outages.down(t + dt)
        self.down_shares = self.group_down.tolist()
        self.version += 1
        up = 1.0 - self.group_down
        served = self._served(v, up)
        present = float(v.sum())
        served_total = float(served.sum())
        now = self.env.now
        d = self.layout.deliver(
            dt, now, served, up, present, self.chat.deliveries_per_s, self.outages.restarting(now)
        )
        self.bandwidth_factor = [min(1.0, 1.0 / x) if x > 0 else 1.0 for x in d.overload.tolist()]
        # chat, then ads
        members = v.sum(axis=(1, 2)) * up * scenario.workload.chatter_share
        storm: dict[int, float] = {}
        self.layout.chat_rooms(members, storm)
        for s in self.chat_storms:
            if s.at_s <= t < s.at_s + s.duration_s:
                g = self.groups.group_of_rank(s.stream_rank)
                storm[g] = s.messages_per_s
                members[g] = max(members[g], float(v[g].sum()) * up[g] * s.share)
        self.chat.step(dt, members, self.groups.channels, storm)
        self.economics.ads(t, dt, v, up)
        # accounting
        for pool in self.pools.all():
            pool.account(dt)
        totals["viewer_seconds"] += present * dt
        totals["unavailable_viewer_seconds"] += (present - served_total) * dt
        overload = d.overload
        stall_share = np.where(overload > 1.0, 1.0 - 1.0 / np.maximum(overload, 1e-12), 0.0)
        totals["fluid_stall_viewer_seconds"] += float((d.viewers * stall_share).sum()) * dt
        egress_bytes = float(d.edge_delivered_bps.sum()) * dt / 8.0
        totals["egress_bytes"] += egress_bytes
        ladder_bps = self._ladder_bps()
        storage_gb = self.economics.bill(dt, self.pools, egress_bytes, ladder_bps)
        self.economics.commerce(dt, present)
        totals["chat_delay_weighted"] += self.chat.delay_s * dt
        self.chat_delays.append(self.chat.delay_p99_s)
        self._peak("egress_edge_bps", float(d.edge_delivered_bps.sum()))
        self._peak("viewers", present)
        self._peak("dvr_storage_gb", storage_gb)
        self._peak("dvr_write_bps", ladder_bps)
        self._peak("origin_rps", d.origin_rps)
        self._peak("chat_deliveries_per_s", self.chat.deliveries_per_s)
        self._peak("chat_refused_connections", self.chat.refused)
        self._peak("ad_rps", self.economics.ad_rate)
        self._peak("live_streams", float(self.fleet.live))
        if (t + dt) % scenario.record_every_s < dt / 2 or (t + dt) >= scenario.duration_s - dt / 2:
            self.recorder.record(t + dt, v, d, present, served_total, storage_gb)
            if self.progress is not None:
                self.progress(t + dt)

    def _ladder_bps(self) -> float:
        full = float(self.bitrate.sum()) * self.fleet.demand["full"]
        return full + float(self.bitrate[0]) * self.fleet.demand["source"]

    def _peak(self, key: str, value: float) -> None:
        self.peaks[key] = max(self.peaks.get(key, -math.inf), value)

    # ---- processes --------------------------------------------------------------------------
    def _stepper(self) -> simpy.events.ProcessGenerator:
        dt = self.scenario.step_s
        steps = round(self.scenario.duration_s / dt)
        for i in range(steps):
            self._step(i * dt, dt)
            yield self.env.timeout(dt)

    def run(self) -> RunResult:
        scenario, calibration, env = self.scenario, self.calibration, self.env
        self.audience.fill(self.demand.targets(0.0))
        period = scenario.fleet.autoscale_period_s
        target = scenario.fleet.target_utilization
        origin_queue = self.layout.origin_queue
        env.process(autoscaler(env, self.pools.gpu, self.fleet.gpu_needed, target, period))
        env.process(autoscaler(env, self.pools.cpu, self.fleet.cpu_needed, target, period))
        env.process(autoscaler(env, self.pools.origin, origin_queue.servers_needed, target, period))
        env.process(autoscaler(env, self.pools.chat, self.chat.needed, target, period))
        for fault in scenario.faults:
            env.process(self.faults.process(fault))
        env.process(self._stepper())
        tracer_rng = random.Random(self.seed * 1_000_003 + 17)
        for _ in range(scenario.workload.tracers):
            slot_rng = random.Random(tracer_rng.getrandbits(64))
            env.process(tracer(env, self, calibration, slot_rng, self.stats, scenario.duration_s))
        probe_stats = self.layout.start_probes(env, self, calibration, self.seed, scenario.duration_s)
        env.run(until=scenario.duration_s)
        return self._result(probe_stats)

    def _result(self, probe_stats: ProbeStats | None) -> RunResult:
        totals = dict(self.economics.totals)
        totals.update({f"peak_{k}": v for k, v in self.peaks.items()})
        totals["dropped_origin_requests"] = self.layout.origin_queue.dropped
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
        totals["groups"] = float(self.groups.size)
        return RunResult(
            self.scenario,
            self.seed,
            self.recorder.rows,
            self.region_names,
            self.stats,
            totals,
            self.recorder.tiers(),
            self.env.processed,
            self.faults.log,
            probe_stats,
        )

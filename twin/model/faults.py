"""Scheduled faults: SimPy processes dispatched on `FaultKind`, and the stream outages they leave.

Each scenario fault becomes one process that waits until `at_s` and acts: a region outage
takes the region down, re-homes its streamers' ingest after the OBS retry and fails its
viewers over after DNS TTL + health checks; a transcoder loss fails a share of a node pool
and redraws every stream's fate; a worker restart stops one stream's output for
`transcode_restart_s`; a node loss fails a share of the origin or chat pool (the autoscaler
replaces them after provisioning) or takes a share of one region's edge servers (every PoP) or
shield servers out for `duration_s`; viewer packet loss raises one region's link loss for
`duration_s` (the tracers' TCP throughput follows it); a chat broker failover cuts cross-node
fan-out for `duration_s`. Viral spikes, chat storms and ad breaks are windows the fluid step
reads (`twin.model.viewers.ViewerDemand`, the chat step, `twin.model.economics`): their
process only logs them. `StreamOutages.down` turns all of it into each group's share of
streams that deliver nothing this step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import simpy

from twin.calibration.parameters import Calibration
from twin.model.autoscale import NodePool
from twin.model.regions import Regions, RegionState
from twin.model.transcoder import TranscoderFleet
from twin.popularity import StreamGroups
from twin.scenario.schema import Fault, FaultKind, NodeType, Region

FloatArray = npt.NDArray[np.float64]


class StreamOutages:
    """Why streams deliver nothing: transcoder fates, lost ingest regions, restarting workers.

    Head streams (groups of one) have their own ingest region and a uniform `fate` draw that
    is compared with the down share of their ladder's transcoders; tail groups take the
    shares themselves.
    """

    def __init__(
        self,
        groups: StreamGroups,
        regions: tuple[Region, ...],
        fleet: TranscoderFleet,
        rng: np.random.Generator,
    ) -> None:
        self.groups = groups
        self.fleet = fleet
        self.rng = rng
        self.head = groups.channels == 1.0
        self.ingest_region = rng.choice(
            len(regions), size=groups.size, p=np.array([r.streamer_share for r in regions])
        )
        self.fate = rng.random(groups.size)
        # share of all streams whose ingest region failed and that have not re-homed yet
        self.ingest_lost = np.zeros(len(regions))
        self.restart_until = np.zeros(groups.size)  # worker_restart: a stream's output stops until then

    def redraw_fates(self) -> None:
        self.fate = self.rng.random(self.groups.size)

    def restarting(self, now: float) -> float:
        """How many streams' workers are restarting at `now`."""
        return float((now < self.restart_until).sum())

    def down(self, t: float) -> FloatArray:
        """Each group's share of streams that deliver nothing at `t` (1 or 0 for head streams)."""
        full = self.fleet.down_fraction("full")
        src = self.fleet.down_fraction("source")
        tx = np.where(self.groups.full_ladder, full, src)
        down = np.where(self.head, (self.fate < tx).astype(np.float64), tx)
        ingest_head = self.ingest_lost[self.ingest_region] > 0.0
        ingest = np.where(self.head, ingest_head.astype(np.float64), self.ingest_lost.sum())
        restarting = (t < self.restart_until).astype(np.float64)
        return 1.0 - (1.0 - down) * (1.0 - ingest) * (1.0 - restarting)


class ServerTiers(Protocol):
    """The delivery layout's regional servers, as a `node_loss` fault needs them."""

    def lose_servers(self, tier: str, region: int, share: float) -> int: ...

    def restore_servers(self, tier: str, region: int) -> None: ...


class BrokerSwitch(Protocol):
    """The chat cluster's broker, as a failover fault needs it."""

    broker_down: bool


class FaultSchedule:
    """The scenario's faults as SimPy processes; `log` records what each did, in order."""

    def __init__(
        self,
        env: simpy.Environment,
        calibration: Calibration,
        regions: tuple[Region, ...],
        region_states: Regions,
        outages: StreamOutages,
        pools: dict[NodeType, NodePool],
        service_pools: dict[str, NodePool] | None = None,
        layout: ServerTiers | None = None,
        link_loss: list[float] | None = None,
        chat: BrokerSwitch | None = None,
        changed: Callable[[], None] | None = None,
    ) -> None:
        self.env = env
        self.calibration = calibration
        self.regions = regions
        self.region_names = [r.name for r in regions]
        self.region_states = region_states
        self.outages = outages
        self.pools = pools
        self.service_pools = service_pools or {}
        self.layout = layout
        self.link_loss = link_loss
        self.chat = chat
        # told whenever a region's state or a region's link loss changes: tracers cache both
        self.changed = changed or (lambda: None)
        self.outage_epoch = [0] * len(regions)
        self.log: list[dict[str, Any]] = []

    def process(self, fault: Fault) -> simpy.events.ProcessGenerator:
        yield self.env.timeout(fault.at_s)
        entry: dict[str, Any] = {"kind": fault.kind, "at_s": fault.at_s}
        match fault.kind:
            case FaultKind.REGION_OUTAGE:
                region = self.region_names.index(fault.region)
                self.region_states.apply(region, "outage")
                self.changed()
                self.outage_epoch[region] += 1
                self.outages.ingest_lost[region] = self.regions[region].streamer_share
                entry.update(region=fault.region, duration_s=fault.duration_s)
                self.log.append(entry)
                self.env.process(self._rehome_ingest(region))
                self.env.process(self._dns_failover(region, self.outage_epoch[region]))
                yield self.env.timeout(fault.duration_s)
                self.region_states.apply(region, "recover")
                self.changed()
            case FaultKind.WORKER_RESTART:
                group = self.outages.groups.group_of_rank(fault.stream_rank)
                until = self.outages.restart_until
                until[group] = max(until[group], fault.at_s + self.calibration.transcode_restart_s)
                entry.update(stream_rank=fault.stream_rank, restart_s=self.calibration.transcode_restart_s)
                self.log.append(entry)
            case FaultKind.TRANSCODER_LOSS:
                pool = self.pools[NodeType(fault.node_type)]
                entry.update(node_type=fault.node_type, nodes_lost=pool.fail(fault.share))
                self.outages.redraw_fates()
                self.log.append(entry)
            case FaultKind.NODE_LOSS:
                tier = str(fault.tier)
                if tier in self.service_pools:
                    entry.update(tier=tier, nodes_lost=self.service_pools[tier].fail(fault.share))
                    self.log.append(entry)
                elif self.layout is not None:
                    region = self.region_names.index(fault.region)
                    lost = self.layout.lose_servers(tier, region, fault.share)
                    entry.update(tier=tier, region=fault.region, nodes_lost=lost, duration_s=fault.duration_s)
                    self.log.append(entry)
                    yield self.env.timeout(fault.duration_s)
                    self.layout.restore_servers(tier, region)
            case FaultKind.VIEWER_PACKET_LOSS if self.link_loss is not None:
                region = self.region_names.index(fault.region)
                self.link_loss[region] = fault.share
                self.changed()
                entry.update(region=fault.region, loss=fault.share, duration_s=fault.duration_s)
                self.log.append(entry)
                yield self.env.timeout(fault.duration_s)
                self.link_loss[region] = 0.0
                self.changed()
            case FaultKind.CHAT_BROKER_FAILOVER if self.chat is not None:
                self.chat.broker_down = True
                entry.update(duration_s=fault.duration_s)
                self.log.append(entry)
                yield self.env.timeout(fault.duration_s)
                self.chat.broker_down = False
            case FaultKind.VIRAL_SPIKE | FaultKind.CHAT_STORM | FaultKind.AD_BREAK:
                entry.update(stream_rank=fault.stream_rank, duration_s=fault.duration_s)
                self.log.append(entry)

    def _dns_failover(self, region: int, epoch: int) -> simpy.events.ProcessGenerator:
        """After DNS TTL + health checks, the region's viewers go to its failover region."""
        yield self.env.timeout(self.calibration.dns_failover_s)
        if self.outage_epoch[region] == epoch and self.region_states.states[region] is RegionState.DOWN:
            self.region_states.apply(region, "failover")
            self.changed()

    def _rehome_ingest(self, region: int) -> simpy.events.ProcessGenerator:
        """Streamers whose ingest PoP died reconnect (OBS retry) to the failover region's ingest."""
        yield self.env.timeout(self.calibration.ingest_reconnect_s)
        target = self.region_states.failover[region]
        live = self.outages.fleet.live
        spare = self.regions[target].ingest_capacity_streams - live * self.regions[target].streamer_share
        lost = self.outages.ingest_lost
        moved = min(lost[region], max(0.0, spare) / max(live, 1))
        lost[region] -= moved

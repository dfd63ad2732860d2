"""What a run leaves behind as plain data: the time-series rows, the tier table, the `RunResult`.

`Recorder` reads the components' state at each recording instant into one flat row (the
columns of timeseries.csv) and, at the end, sums the pools and edge regions into the tier
table (tiers.csv). `RunResult` carries them with the totals to `twin.summary` and `twin.run`;
nothing here reads or writes files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from twin.calibration.parameters import Calibration
from twin.model.autoscale import Pools
from twin.model.cdn import Delivery
from twin.model.chat import ChatCluster
from twin.model.economics import Economics
from twin.model.layout import Layout
from twin.model.tracers import ProbeStats, TracerStats
from twin.model.transcoder import TranscoderFleet
from twin.model.viewers import FluidAudience
from twin.scenario.schema import Scenario

FloatArray = npt.NDArray[np.float64]


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


class Recorder:
    """One row per recording instant from the components' state; the tier table at the end."""

    def __init__(
        self,
        scenario: Scenario,
        calibration: Calibration,
        *,
        layout: Layout,
        audience: FluidAudience,
        fleet: TranscoderFleet,
        pools: Pools,
        chat: ChatCluster,
        economics: Economics,
    ) -> None:
        self.scenario = scenario
        self.calibration = calibration
        self.layout = layout
        self.audience = audience
        self.fleet = fleet
        self.pools = pools
        self.chat = chat
        self.economics = economics
        self.region_names = [r.name for r in scenario.regions]
        self.rows: list[dict[str, float]] = []

    def record(
        self, t: float, v: FloatArray, d: Delivery, present: float, served: float, storage_gb: float
    ) -> None:
        gpu_u, cpu_u = self.fleet.utilization()
        top = self.layout.groups.group_of_rank(1)
        fleet, pools, chat, origin_queue = self.fleet, self.pools, self.chat, self.layout.origin_queue
        row: dict[str, float] = {
            "t_s": t,
            "viewers": present,
            "viewers_served": served,
            "availability": served / present if present else 1.0,
            "top_stream_viewers": float(v[top].sum()),
            "live_streams": float(fleet.live),
            "streams_down": float(
                fleet.demand["full"] * fleet.down_fraction("full")
                + fleet.demand["source"] * fleet.down_fraction("source")
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
            "util_shield": self.layout.shield_utilization(),
            "util_origin": origin_queue.utilization,
            "util_gpu": gpu_u,
            "util_cpu": cpu_u,
            "util_chat": chat.utilization,
            "nodes_gpu": float(pools.gpu.up),
            "nodes_cpu": float(pools.cpu.up),
            "nodes_origin": float(pools.origin.up),
            "nodes_chat": float(pools.chat.up),
            "origin_wait_ms": origin_queue.mean_wait() * 1000.0,
            "chat_connections": chat.connections,
            "chat_messages_per_s": chat.messages_per_s,
            "chat_deliveries_per_s": chat.deliveries_per_s,
            "chat_delay_s": chat.delay_s,
            "chat_delay_p99_s": chat.delay_p99_s,
            "chat_refused_connections": chat.refused,
            "ad_rps": self.economics.ad_rps_served(),
            "dvr_storage_pb": storage_gb / 1e6,
            "cost_usd": self.economics.totals["cost_usd"],
        }
        row.update(self.layout.machine())
        for r, name in enumerate(self.region_names):
            row[f"viewers.{name}"] = float(d.viewers[r])
            row[f"egress_gbps.{name}"] = float(d.edge_delivered_bps[r]) / 1e9
            row[f"edge_util.{name}"] = float(d.overload[r])
            row[f"edge_hit.{name}"] = float(d.edge_hit_ratio[r])
            row[f"shield_util.{name}"] = float(self.layout.region_shield_utilization(r))
            for k, rung in enumerate(self.calibration.ladder):
                row[f"served.{name}.{rung.name}"] = float(d.by_rk[r, k])
        self.rows.append(row)

    def tiers(self) -> list[dict[str, Any]]:
        """Per pool and per edge region: nodes, node-hours, cost and utilization over the run."""
        calibration, scenario, rows = self.calibration, self.scenario, self.rows
        tiers = []
        for pool, cost in zip(
            self.pools.all(),
            (
                calibration.cost_gpu_node_h,
                calibration.cost_cpu_node_h,
                calibration.cost_origin_node_h,
                calibration.cost_chat_node_h,
            ),
            strict=True,
        ):
            utils = [row[f"util_{pool.name}"] for row in rows]
            tiers.append(
                {
                    "tier": pool.name,
                    "nodes_start": getattr(scenario.fleet, pool.name).nodes,
                    "nodes_peak": pool.peak_up,
                    "nodes_end": pool.up,
                    "nodes_failed": pool.failed,
                    "node_hours": pool.node_seconds / 3600.0,
                    "cost_usd": pool.node_seconds / 3600.0 * cost,
                    "util_mean": float(np.mean(utils)),
                    "util_peak": float(np.max(utils)),
                }
            )
        for region in scenario.regions:
            servers = region.edge_pops * region.edge_servers_per_pop
            utils = [row[f"edge_util.{region.name}"] for row in rows]
            gbps = [row[f"egress_gbps.{region.name}"] for row in rows]
            tiers.append(
                {
                    "tier": f"edge.{region.name}",
                    "nodes_start": servers,
                    "nodes_peak": servers,
                    "nodes_end": servers,
                    "nodes_failed": 0,
                    "node_hours": servers * scenario.duration_s / 3600,
                    "cost_usd": servers * scenario.duration_s / 3600 * calibration.cost_edge_server_h,
                    "util_mean": float(np.mean(utils)),
                    "util_peak": float(np.max(utils)),
                    "egress_peak_gbps": float(np.max(gbps)),
                    "hit_ratio_mean": float(np.mean([row[f"edge_hit.{region.name}"] for row in rows])),
                }
            )
        for region in scenario.regions:
            if not region.shield_servers:
                continue
            utils = [row[f"shield_util.{region.name}"] for row in rows]
            node_hours = region.shield_servers * scenario.duration_s / 3600
            tiers.append(
                {
                    "tier": f"shield.{region.name}",
                    "nodes_start": region.shield_servers,
                    "nodes_peak": region.shield_servers,
                    "nodes_end": region.shield_servers,
                    "nodes_failed": 0,
                    "node_hours": node_hours,
                    "cost_usd": node_hours * calibration.cost_edge_server_h,
                    "util_mean": float(np.mean(utils)),
                    "util_peak": float(np.max(utils)),
                }
            )
        return tiers

"""What the audience earns and what the fleet costs: ad decisions, commerce events, the bill.

Ad breaks: every viewer of the channel asks the ad decision servers for a pod within
`ad_decision_window_s` of the break; a pod has one slot per `ad_slot_s` of the break, and a
request the servers cannot answer in the window goes unfilled (no impressions). Commerce is a
rate per viewer-hour. Costs: node-hours of every pool and edge/shield/ad server, DVR storage
of the live ladders over the DVR window, and edge egress, all from the calibration's prices.
Everything accumulates into the run's `totals` (plain floats, one key per figure).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from twin.calibration.parameters import Calibration
from twin.model.autoscale import Pools
from twin.model.cdn import TierQueue
from twin.popularity import StreamGroups
from twin.scenario.schema import FaultKind, Scenario

FloatArray = npt.NDArray[np.float64]

TOTALS = (
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


class Economics:
    """Ad decisions, commerce and costs, step by step, into `totals`."""

    def __init__(self, scenario: Scenario, calibration: Calibration, groups: StreamGroups) -> None:
        self.calibration = calibration
        self.groups = groups
        self.ad_servers = scenario.fleet.ad_servers
        self.ad_queue = TierQueue(
            "ads", calibration.ad_rps_per_server, max_delay_s=calibration.ad_decision_window_s
        )
        self.ad_breaks = [f for f in scenario.faults if f.kind == FaultKind.AD_BREAK]
        self.edge_servers = sum(
            r.edge_pops * r.edge_servers_per_pop + r.shield_servers for r in scenario.regions
        )
        self.totals: dict[str, float] = {k: 0.0 for k in TOTALS}
        self.ad_rate = 0.0

    def ads(self, t: float, dt: float, v: FloatArray, up: FloatArray) -> None:
        """Ad decision requests of the breaks open at `t` against the ad servers."""
        calibration, totals = self.calibration, self.totals
        rate_total = 0.0
        slots = 0.0
        for brk in self.ad_breaks:
            if brk.at_s <= t < brk.at_s + calibration.ad_decision_window_s:
                g = self.groups.group_of_rank(brk.stream_rank)
                rate = float(v[g].sum()) * up[g] / self.groups.channels[g] / calibration.ad_decision_window_s
                rate_total += rate
                slots += rate * math.ceil(brk.duration_s / calibration.ad_slot_s)
        self.ad_queue.step(dt, rate_total, self.ad_servers)
        capacity = self.ad_servers * calibration.ad_rps_per_server
        filled = min(1.0, capacity / rate_total) if rate_total else 0.0
        totals["ad_requests"] += rate_total * dt
        totals["ad_unfilled"] += max(0.0, rate_total - capacity) * dt
        totals["ad_impressions"] += slots * filled * dt
        self.ad_rate = rate_total

    def ad_rps_served(self) -> float:
        return self.ad_queue.utilization * self.ad_servers * self.calibration.ad_rps_per_server

    def bill(self, dt: float, pools: Pools, egress_bytes: float, ladder_bps: float) -> float:
        """Compute, storage and egress cost of one step; returns the DVR storage held (GB)."""
        calibration, totals = self.calibration, self.totals
        gpu, cpu, origin, chat = pools.all()
        compute = (
            (
                gpu.up * calibration.cost_gpu_node_h
                + cpu.up * calibration.cost_cpu_node_h
                + origin.up * calibration.cost_origin_node_h
                + chat.up * calibration.cost_chat_node_h
                + self.edge_servers * calibration.cost_edge_server_h
                + self.ad_servers * calibration.cost_ad_server_h
            )
            * dt
            / 3600
        )
        storage_gb = ladder_bps * calibration.dvr_window_s / 8.0 / 1e9
        storage = storage_gb * calibration.cost_storage_gb_month * dt / (730.0 * 3600.0)
        egress_cost = egress_bytes / 1e9 * calibration.cost_egress_gb
        totals["cost_compute_usd"] += compute
        totals["cost_storage_usd"] += storage
        totals["cost_egress_usd"] += egress_cost
        totals["cost_usd"] += compute + storage + egress_cost
        return storage_gb

    def commerce(self, dt: float, present: float) -> None:
        self.totals["commerce_events"] += (
            present * self.calibration.commerce_events_per_viewer_h / 3600.0 * dt
        )

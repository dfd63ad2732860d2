"""From a `RunResult` to the summary: every SLO with its measured value and verdict, peaks,
fleet sizes, cost per viewer-hour, and what each fault did.

Pure function of the result: no wall-clock figures go in, so the summary of a scenario and
seed is the same bit for bit (wall time and events/s live in timing.json beside it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from twin.model.records import RunResult


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def latency_table(result: RunResult) -> list[dict[str, float]]:
    stats = result.tracer_stats
    pct = stats.percentiles((50.0, 95.0, 99.0))
    rows = []
    for i, (p50, p95, p99) in enumerate(pct):
        t = (i + 1) * stats.window_s
        if t > result.scenario.duration_s + stats.window_s / 2:
            break
        watch, stall = stats.watch_s[i], stats.stall_s[i]
        rows.append(
            {
                "t_s": t,
                "g2g_p50_s": p50,
                "g2g_p95_s": p95,
                "g2g_p99_s": p99,
                "samples": float(len(stats.latency[i])),
                "rebuffer_ratio": stall / (watch + stall) if watch + stall else math.nan,
            }
        )
    return rows


def _fault_effects(result: RunResult) -> list[dict[str, Any]]:
    rows = result.rows
    t = np.array([r["t_s"] for r in rows])
    effects: list[dict[str, Any]] = []
    for f in result.scenario.faults:
        before = t <= f.at_s
        during = (t > f.at_s) & (t <= f.at_s + f.ramp_s + max(f.duration_s, 60.0))
        after = t > f.at_s + f.ramp_s + f.duration_s + 300.0
        e: dict[str, Any] = {"kind": f.kind, "at_s": f.at_s}
        if f.kind == "viral_spike" and before.any() and during.any():
            top = np.array([r["top_stream_viewers"] for r in rows]) if f.stream_rank == 1 else None
            origin = np.array([r["origin_rps"] for r in rows])
            if top is not None:
                e["stream_viewers_before"] = float(top[before][-1])
                e["stream_viewers_peak"] = float(top[during].max())
                e["stream_growth"] = e["stream_viewers_peak"] / max(e["stream_viewers_before"], 1e-12)
            e["origin_rps_before"] = float(origin[before][-1])
            e["origin_rps_peak_during"] = float(origin[during].max())
            e["origin_rps_growth"] = e["origin_rps_peak_during"] / max(e["origin_rps_before"], 1e-12)
        if f.kind in ("region_outage", "transcoder_loss", "node_loss"):
            avail = np.array([r["availability"] for r in rows])
            window = (t > f.at_s) & (t <= f.at_s + max(f.duration_s, 600.0))
            e["availability_before"] = float(avail[before][-1]) if before.any() else None
            e["availability_min"] = float(avail[window].min()) if window.any() else None
            e["availability_end"] = float(avail[-1])
            dipped = bool(window.any() and avail[window].min() < 0.9999)
            e["dipped"] = dipped
            e["recovered_at_s"] = None
            if dipped:
                worst = float(t[window][int(np.argmin(avail[window]))])
                back = (t > worst) & (avail >= 0.9999)
                e["recovered_at_s"] = float(t[back][0]) if back.any() else None
        if f.kind == "node_loss":
            window = (t > f.at_s) & (t <= f.at_s + max(f.duration_s, 600.0))
            if f.tier == "chat":
                delay = np.array([r["chat_delay_p99_s"] for r in rows])
                e["chat_delay_p99_max_s"] = float(delay[window].max()) if window.any() else None
            else:
                col = {"origin": "util_origin", "shield": "util_shield", "edge": "util_edge"}[str(f.tier)]
                util = np.array([r[col] for r in rows])
                e["utilization_before"] = float(util[before][-1]) if before.any() else None
                e["utilization_peak"] = float(util[window].max()) if window.any() else None
        if f.kind == "chat_storm":
            delay = np.array([r["chat_delay_s"] for r in rows])
            e["chat_delay_max_s"] = float(delay[during].max()) if during.any() else 0.0
            e["chat_delay_end_s"] = float(delay[-1])
            e["chat_delay_after_s"] = float(delay[after].max()) if after.any() else None
        effects.append(e)
    return effects


def summarize(result: RunResult) -> dict[str, Any]:
    scenario = result.scenario
    totals = result.totals
    stats = result.tracer_stats
    lat = stats.all_latency()
    watch = sum(stats.watch_s)
    stall = sum(stats.stall_s)
    rebuffer = stall / (watch + stall) if watch + stall else math.nan
    availability = 1.0 - totals["unavailable_viewer_seconds"] / totals["viewer_seconds"]
    p = [float(x) for x in np.percentile(lat, (50, 95, 99))] if lat.size else [math.nan] * 3
    slos = [
        {
            "slo": "glass_to_glass_p95_s",
            "target": scenario.slos.glass_to_glass_p95_s,
            "op": "<",
            "measured": _num(p[1]),
            "pass": bool(p[1] < scenario.slos.glass_to_glass_p95_s),
        },
        {
            "slo": "rebuffer_ratio",
            "target": scenario.slos.rebuffer_ratio,
            "op": "<",
            "measured": _num(rebuffer),
            "pass": bool(rebuffer < scenario.slos.rebuffer_ratio),
        },
        {
            "slo": "availability",
            "target": scenario.slos.availability,
            "op": ">=",
            "measured": availability,
            "pass": bool(availability >= scenario.slos.availability),
        },
        {
            "slo": "chat_delay_p99_s",
            "target": scenario.slos.chat_delay_p99_s,
            "op": "<",
            "measured": totals["chat_delay_p99_s"],
            "pass": bool(totals["chat_delay_p99_s"] < scenario.slos.chat_delay_p99_s),
        },
    ]
    viewer_hours = totals["viewer_seconds"] / 3600.0
    return {
        "scenario": scenario.name,
        "description": scenario.description,
        "seed": result.seed,
        "duration_s": scenario.duration_s,
        "simpy_events": result.events,
        "slos": slos,
        "all_slos_pass": all(s["pass"] for s in slos),
        "viewers": {
            "peak": totals["peak_viewers"],
            "top_stream_peak": max(r["top_stream_viewers"] for r in result.rows),
            "viewer_hours": viewer_hours,
            "initial": totals["viewers_initial"],
            "arrived": totals["viewers_arrived"],
            "departed": totals["viewers_departed"],
            "present_end": totals["viewers_present"],
        },
        "streams": {
            "peak_live": totals["peak_live_streams"],
            "initial": totals["streams_initial"],
            "started": totals["streams_started"],
            "stopped": totals["streams_stopped"],
            "live_end": totals["streams_live"],
        },
        "latency_s": {
            "p50": _num(p[0]),
            "p95": _num(p[1]),
            "p99": _num(p[2]),
            "samples": int(lat.size),
            "tracer_sessions": stats.sessions,
            "startup_p50_s": _num(float(np.percentile(stats.startup_s, 50))) if stats.startup_s else None,
            "startup_p95_s": _num(float(np.percentile(stats.startup_s, 95))) if stats.startup_s else None,
            "failed_starts": stats.failed_starts,
        },
        "rebuffer_ratio": _num(rebuffer),
        "fluid_overload_stall_ratio": totals["fluid_stall_viewer_seconds"] / totals["viewer_seconds"],
        "availability": availability,
        "peak_egress_tbps": totals["peak_egress_edge_bps"] / 1e12,
        "egress_pb": totals["egress_bytes"] / 1e15,
        "peak_origin_rps": totals["peak_origin_rps"],
        "dropped_origin_requests": totals["dropped_origin_requests"],
        "chat": {
            "peak_deliveries_per_s": totals["peak_chat_deliveries_per_s"],
            "delay_p99_s": totals["chat_delay_p99_s"],
            "dropped_messages": totals["chat_dropped_messages"],
            "peak_refused_connections": totals["peak_chat_refused_connections"],
        },
        "ads": {
            "peak_rps": totals["peak_ad_rps"],
            "requests": totals["ad_requests"],
            "fill_ratio": 1.0 - totals["ad_unfilled"] / totals["ad_requests"]
            if totals["ad_requests"]
            else None,
            "impressions": totals["ad_impressions"],
        },
        "commerce_events": totals["commerce_events"],
        "dvr": {
            "peak_storage_pb": totals["peak_dvr_storage_gb"] / 1e6,
            "peak_write_tbps": totals["peak_dvr_write_bps"] / 1e12,
        },
        "fleet": {t["tier"]: {k: v for k, v in t.items() if k != "tier"} for t in result.tiers},
        "cost": {
            "total_usd": totals["cost_usd"],
            "compute_usd": totals["cost_compute_usd"],
            "egress_usd": totals["cost_egress_usd"],
            "storage_usd": totals["cost_storage_usd"],
            "per_viewer_hour_usd": totals["cost_usd"] / viewer_hours if viewer_hours else None,
        },
        "model": {
            "stream_groups": int(totals["groups"]),
            "regions": result.regions,
            "tracers": scenario.workload.tracers,
            "step_s": scenario.step_s,
        },
        "faults": result.faults,
        "fault_effects": _fault_effects(result),
    }

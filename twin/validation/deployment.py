"""The twin configured as the small real deployment: what `loadgen run` starts on one machine.

A scenario's `real:` section (`RealSpec`) becomes a twin `Scenario` plus the `Direct` layout:
one region at loopback RTT whose viewers fetch from the origin itself, or through the run's
nginx edges and shields when the section has `cdn:` (`small_tiers`), one origin (the platform
process), one CPU transcoder node (this machine) carrying every channel, one chat node;
`channels` streams with the run's ABR ladder and viewer shares; `viral_spike` as the twin's
viral spike and `worker_kill` as `worker_restart` (the stream's output stops for
`transcode_restart_s`). `predict` runs it and returns what the real run measures, in the same
units and over the same window (docs/validation.md).

The load generator's viewers are part of the deployment, so their request pattern is stated
here from loadgen/locustfiles/llhls_viewer.py, not fitted: sessions of `LOCUST_SESSION_S`
with a pause of `LOCUST_WAIT_S` (mean) between them; two requests per part while watching
(the preload-hinted part, held until it exists, then the blocking reload it answers at once);
per session a multivariant, a media playlist, an init segment, the parts listed since the
newest segment start (half a segment on average) and one playlist + init + part per ABR
up-switch from the lowest rung.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from live.transcode.ladder import Rung, SourceInfo, build_ladder

from twin.calibration import platform_rules
from twin.calibration.parameters import Calibration, Rendition
from twin.model.cdn import SmallTiers
from twin.model.layout import Direct
from twin.model.records import RunResult
from twin.model.twin import Twin
from twin.scenario.schema import (
    Fault,
    FaultKind,
    Fleet,
    PoolSpec,
    RealFaultKind,
    RealSpec,
    Region,
    Scenario,
    Slos,
    Workload,
)

LOCUST_SESSION_S = 60.0  # LIVETWIN_VIEWER_SESSION_S default (llhls_viewer.py)
LOCUST_WAIT_S = 0.75  # wait_time = between(0.5, 1.0)
LOCUST_USER_LEAVE_S = 1.0  # the load shape stops surplus users within a tick (1 s)
SEGMENT_S = platform_rules.segment_s()  # the platform's own segment target (IDR every segment)
LOOPBACK_RTT_MS = 0.1
LOOPBACK_BPS = 1e9  # what one Python HTTP client pulls over loopback, order of magnitude
PROBES = 100  # probe replicas with staggered joins: the probe's expected distribution (no load)
TRACERS = 40
CLOCKS = ("decode", "playout")
CDN_REQUESTS_PER_PART = 2.0  # a blocking reload and a preload-hinted part per watched object


class DeploymentError(ValueError):
    """The run cannot be modeled as stated (its description is at fault)."""


def real_ladder(spec: RealSpec) -> tuple[Rung, ...]:
    """The renditions the platform makes of one publisher: its own ladder policy, run on the source."""
    src = spec.source
    ladder = build_ladder(SourceInfo(src.width, src.height, float(src.fps), video_kbps=src.bitrate_kbps))
    if spec.ladder == "source":
        return tuple(r for r in ladder.video if r.passthrough) or ladder.video[:1]
    return tuple(ladder.video)


def rung_kbps(rung: Rung, spec: RealSpec) -> float:
    """A rung's video bitrate; a passthrough rung (no `video_kbps`) carries the source's own."""
    return float(rung.video_kbps if rung.video_kbps is not None else spec.source.bitrate_kbps)


def stream_load(spec: RealSpec) -> tuple[float, float]:
    """(megapixels/s a worker decodes + encodes, Mbit/s the platform ingests + packages) per channel."""
    src = spec.source
    rungs = real_ladder(spec)
    encoded = [r for r in rungs if not r.passthrough]
    if not encoded:
        mpixels = 0.0  # passthrough only: no worker
    else:
        mpixels = (src.width * src.height * src.fps + sum(r.width * r.height * r.fps for r in encoded)) / 1e6
    mbit = (src.bitrate_kbps + sum(rung_kbps(r, spec) for r in encoded)) / 1000.0
    return mpixels, mbit


def viewer_pattern(spec: RealSpec, part_s: float) -> tuple[float, float]:
    """(origin requests/s, held requests) per Locust viewer, from the viewer's request loop."""
    cycle = LOCUST_SESSION_S + LOCUST_WAIT_S
    duty = LOCUST_SESSION_S / cycle
    variants = len(real_ladder(spec))
    join = 3.0 + (SEGMENT_S / part_s - 1.0) / 2.0 + 3.0 * (variants - 1)
    return duty * 2.0 / part_s + join / cycle, duty


def small_tiers(spec: RealSpec, part_s: float) -> SmallTiers | None:
    """The run's nginx tiers as the twin sees them (None without a `cdn:` section).

    Per watched (channel, rendition) an edge forwards one blocking reload and one preload-hinted
    part per part (coalesced: nginx `proxy_cache_lock`); every plain playlist fetch (a join's
    multivariant and media playlist, and the media playlist of its one ABR up-switch: over
    loopback the Locust viewer jumps from the lowest rung straight to the top, measured
    40 SWITCH_UP 160p30->source in 40 sessions) passes the caches, which key plain reloads by
    the tenth of a second (docs/cdn.md).
    """
    if spec.cdn is None:
        return None
    cycle = LOCUST_SESSION_S + LOCUST_WAIT_S
    plain = 2.0 + (1.0 if len(real_ladder(spec)) > 1 else 0.0)
    return SmallTiers(
        edges=spec.cdn.edges,
        shields=spec.cdn.shields,
        upstream_per_object_s=CDN_REQUESTS_PER_PART / part_s,
        plain_per_viewer_s=plain / cycle,
    )


def small_calibration(calibration: Calibration, spec: RealSpec) -> Calibration:
    """The calibration as the one machine sees it: the run's ladder, loopback viewers."""
    rungs = sorted(real_ladder(spec), key=lambda r: -rung_kbps(r, spec))
    ladder: list[Rendition] = []
    for r in rungs:
        bps = rung_kbps(r, spec) * 1000.0
        if not ladder or bps < ladder[-1].bitrate_bps:
            ladder.append(
                Rendition(
                    r.name,
                    bps,
                    "the platform's ladder policy for the run's source",
                    r.width,
                    r.height,
                    r.fps,
                    r.passthrough,
                )
            )
    return dataclasses.replace(
        calibration,
        ladder=tuple(ladder),
        viewer_bandwidth_median_mbps=LOOPBACK_BPS / 1e6,
        viewer_bandwidth_sigma=0.05,
        viewer_rtt_sigma=0.05,
        # Locust users never leave on their own (a session ends and the same user rejoins); the
        # load shape stops them the second the schedule drops. Second-long sessions that the
        # arrivals refill every step make the fluid follow the schedule the same way.
        viewer_session_mean_s=LOCUST_USER_LEAVE_S,
    )


def small_deployment(
    spec: RealSpec, calibration: Calibration, name: str = "real", probe_rendition: str = "transcoded"
) -> tuple[Scenario, Direct, Calibration]:
    """Map the real run to the twin: (scenario, direct layout, calibration as the machine sees it).

    `probe_rendition` says whether the probe watches a `transcoded` rung or the `passthrough`
    source (then the transcode delay is not on its path).
    """
    if probe_rendition not in ("transcoded", "passthrough"):
        raise DeploymentError(f"probe_rendition must be transcoded or passthrough, got {probe_rendition!r}")
    channels = spec.channels
    end = spec.warmup_s + spec.duration_s
    region = Region("local", 1.0, 1.0, LOOPBACK_RTT_MS, 1, 1, 1, channels, "-")
    one = PoolSpec(1, 1, 1)
    fleet = Fleet(PoolSpec(0, 0, 0), one, one, one, 1, 0.99, 3600.0)
    full = spec.ladder == "full" and any(not r.passthrough for r in real_ladder(spec))
    workload = Workload(
        viewers=float(spec.viewers),
        streamers=channels,
        start_hour=0.0,
        peak_hour=0.0,
        trough_ratio=1.0,
        top_k=1,
        top_k_share=1.0,
        top1_share=None,
        full_ladder_share=1.0 if full else 0.0,
        chatter_share=0.0,
        tracers=TRACERS if spec.viewers else 0,
    )
    faults = []
    for f in spec.faults:
        if f.kind == RealFaultKind.VIRAL_SPIKE:
            faults.append(
                Fault(
                    FaultKind.VIRAL_SPIKE,
                    f.at_s,
                    f.duration_s,
                    stream_rank=f.stream_rank,
                    factor=f.factor,
                    ramp_s=f.ramp_s,
                )
            )
        elif f.kind == RealFaultKind.WORKER_KILL:
            faults.append(Fault(FaultKind.WORKER_RESTART, f.at_s, 0.0, stream_rank=f.stream_rank))
        else:
            raise DeploymentError(f"real fault kind {f.kind!r} has no twin counterpart")
    scenario = Scenario(
        name=f"{name} (small deployment)",
        description="the scenario's real: section as the twin's single-machine deployment",
        duration_s=end,
        step_s=1.0,
        record_every_s=1.0,
        head_streams=channels,
        regions=(region,),
        fleet=fleet,
        workload=workload,
        faults=tuple(faults),
        slos=Slos(1.5, 0.01, 0.9995, 2.0),
    )
    small = small_calibration(calibration, spec)
    rps, held = viewer_pattern(spec, calibration.part_s)
    mpixels, mbit = stream_load(spec)
    transcoded = full and probe_rendition == "transcoded"
    direct = Direct(
        channel_shares=spec.viewer_shares,
        full_ladder=full,
        mpixels_per_stream=mpixels,
        mbit_per_stream=mbit,
        requests_per_viewer_s=rps,
        held_per_viewer=held,
        chatters=float(spec.chatters),
        chat_messages_per_s=spec.chat_messages_per_s,
        segment_s=SEGMENT_S,
        frames_per_part=max(1, round(calibration.part_s * spec.source.fps)),
        probe_rank=1,
        probes=PROBES,
        probe_start_s=spec.warmup_s,
        probe_pipeline_s=calibration.publisher_encode_s
        + (calibration.transcode_latency_s if transcoded else 0.0)
        + calibration.package_s,
        transfer_s=spec.source.bitrate_kbps * 1000.0 * calibration.part_s / LOOPBACK_BPS,
        decode_s=calibration.display_s,
        cdn=small_tiers(spec, calibration.part_s),
    )
    return scenario, direct, small


@dataclass(frozen=True, slots=True)
class Prediction:
    """The twin's numbers in the real run's units (measured.json's `measured` keys) and its rows."""

    measured: dict[str, Any]
    rows: list[dict[str, float]]
    window_s: tuple[float, float]


def _window_mean(rows: list[dict[str, float]], key: str, lo: float, hi: float) -> float:
    values = [r[key] for r in rows if lo < r["t_s"] <= hi]
    return float(np.mean(values)) if values else math.nan


def summarize_prediction(result: RunResult, spec: RealSpec, clock: str = "playout") -> Prediction:
    """Window means and percentiles of a small-deployment run, keyed like measured.json."""
    if clock not in CLOCKS:
        raise DeploymentError(f"glass-to-glass clock must be one of {', '.join(CLOCKS)}, got {clock!r}")
    lo, hi = spec.warmup_s, spec.warmup_s + spec.duration_s
    rows = result.rows
    probe = result.probe_stats
    g2g = {"p50": math.nan, "p95": math.nan, "p99": math.nan, "clock": clock}
    if probe is not None:
        t = np.array(probe.t)
        values = np.array(probe.decode_s if clock == "decode" else probe.playout_s)
        inside = values[(t >= lo) & (t < hi)] if t.size else values
        if inside.size:
            p50, p95, p99 = (float(x) for x in np.percentile(inside, (50, 95, 99)))
            g2g.update(p50=p50, p95=p95, p99=p99)
    stats = result.tracer_stats
    first, last = int(lo / stats.window_s), min(math.ceil(hi / stats.window_s), len(stats.watch_s))
    watch = sum(stats.watch_s[first:last])
    stall = sum(stats.stall_s[first:last])
    rebuffer = stall / (watch + stall) if watch + stall else 0.0
    measured = {
        "origin_rps": _window_mean(rows, "origin_rps", lo, hi),
        "origin_rps_peak": max((r["origin_rps"] for r in rows if lo < r["t_s"] <= hi), default=math.nan),
        "held_requests_mean": _window_mean(rows, "held_requests", lo, hi),
        "chat_deliveries_per_s": _window_mean(rows, "chat_deliveries_per_s", lo, hi),
        "cpu_cores": {
            "platform": _window_mean(rows, "cpu_platform", lo, hi),
            "transcode": _window_mean(rows, "cpu_transcode", lo, hi),
        },
        "glass_to_glass_s": g2g,
        "rebuffer_ratio": rebuffer,
        "viewers_mean": _window_mean(rows, "viewers", lo, hi),
    }
    if spec.cdn is not None:
        window = [r for r in rows if lo < r["t_s"] <= hi]
        edge = sum(r["edge_rps"] for r in window)
        misses = sum(r["shield_rps"] for r in window)
        measured.update(
            shield_rps=_window_mean(rows, "shield_rps", lo, hi),
            edge_rps=_window_mean(rows, "edge_rps", lo, hi),
            edge_hit_ratio=1.0 - misses / edge if edge else math.nan,
        )
    return Prediction(measured, rows, (lo, hi))


def predict(
    spec: RealSpec,
    calibration: Calibration,
    *,
    seed: int = 1,
    clock: str = "playout",
    name: str = "real",
    probe_rendition: str = "transcoded",
) -> Prediction:
    """Run the twin as the small deployment over the real run's timeline and summarize its window."""
    scenario, direct, small = small_deployment(spec, calibration, name, probe_rendition)
    result = Twin(scenario, small, seed, direct=direct).run()
    return summarize_prediction(result, spec, clock)

"""The fluid (cohort) audience: viewer counts per stream group x home region x rendition.

100M viewers cannot be 100M processes. Viewers are held as real-valued counts V[g, r, k]
advanced in steps of dt. Sessions are exponential with mean S, so over a step a cohort keeps
exp(-dt/S) of itself: departures are exact in expectation. Arrivals are whatever brings the
cohort to its target (diurnal curve x popularity x spike x region share x rendition share),
never negative; when a target falls faster than sessions end, the cohort simply decays.
Arrivals, departures and the present count are tallied in the same float arithmetic, so
viewers in = viewers out + present holds to rounding (the conservation test checks it).

Rendition shares come from the viewers' bandwidth law: a viewer takes the highest rung whose
bitrate is at most `abr_safety` x its bandwidth (lognormal), exactly the rule the tracer
viewers apply, so the fluid and the tracers agree on the mix.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from twin.calibration.parameters import Calibration
from twin.popularity import StreamGroups
from twin.scenario.schema import Fault, FaultKind, Workload

FloatArray = npt.NDArray[np.float64]


def rendition_shares(calibration: Calibration, full_ladder: bool) -> FloatArray:
    """Share of viewers on each rung, for a stream with the full ladder or source only."""
    k = len(calibration.ladder)
    shares = np.zeros(k)
    if not full_ladder:
        shares[0] = 1.0
        return shares
    mu = math.log(calibration.viewer_bandwidth_median_mbps * 1e6)
    sigma = calibration.viewer_bandwidth_sigma

    def cdf(bps: float) -> float:
        return 0.5 * (1.0 + math.erf((math.log(bps) - mu) / (sigma * math.sqrt(2.0))))

    # thresholds: viewer takes rung i iff bw >= rate_i / safety and bw < rate_{i-1} / safety
    above = 1.0
    for i, rung in enumerate(calibration.ladder):
        thr = cdf(rung.bitrate_bps / calibration.abr_safety)
        shares[i] = above - thr if i < k - 1 else above
        above = thr
    return shares


def diurnal(t_s: float, start_hour: float, peak_hour: float, trough_ratio: float) -> float:
    """Concurrency relative to the daily peak: a raised cosine between trough and 1."""
    hour = (start_hour + t_s / 3600.0) % 24.0
    phase = 2.0 * math.pi * (hour - peak_hour) / 24.0
    return trough_ratio + (1.0 - trough_ratio) * (1.0 + math.cos(phase)) / 2.0


class FluidAudience:
    """V[g, r, k] with exact in/out bookkeeping."""

    def __init__(self, weights: FloatArray, session_mean_s: float) -> None:
        self.weights = weights  # (G, R, K): region share x rendition share per group
        self.session_mean_s = session_mean_s
        self.v = np.zeros_like(weights)
        self.arrived = 0.0
        self.departed = 0.0

    def fill(self, group_targets: FloatArray) -> None:
        """Start at the target without counting it as arrivals; record it as initial."""
        self.v = group_targets[:, None, None] * self.weights
        self.initial = float(self.v.sum())

    def step(self, dt: float, group_targets: FloatArray) -> None:
        keep = math.exp(-dt / self.session_mean_s)
        target = group_targets[:, None, None] * self.weights
        kept = self.v * keep
        arrivals = np.maximum(target - kept, 0.0)
        self.departed += float(self.v.sum() - kept.sum())
        self.arrived += float(arrivals.sum())
        self.v = kept + arrivals

    @property
    def present(self) -> float:
        return float(self.v.sum())


class ViewerDemand:
    """How many viewers each stream group wants at time t: diurnal curve x popularity x spikes.

    A viral spike multiplies its channel's target by `factor`, reached linearly over `ramp_s`,
    held for `duration_s`, then gone; a tail group holds many channels, so only one channel's
    share of it grows.
    """

    def __init__(self, workload: Workload, groups: StreamGroups, faults: tuple[Fault, ...]) -> None:
        self.workload = workload
        self.groups = groups
        self.spikes = [f for f in faults if f.kind == FaultKind.VIRAL_SPIKE]

    def level(self, t: float) -> float:
        w = self.workload
        return diurnal(t, w.start_hour, w.peak_hour, w.trough_ratio)

    def streamers(self, t: float) -> float:
        return self.workload.streamers * self.level(t)

    def targets(self, t: float) -> FloatArray:
        targets = self.workload.viewers * self.level(t) * self.groups.share
        for s in self.spikes:
            if t >= s.at_s:
                ramp = 1.0 if s.ramp_s <= 0 else min(1.0, (t - s.at_s) / s.ramp_s)
                if t > s.at_s + s.ramp_s + s.duration_s:
                    ramp = 0.0
                g = self.groups.group_of_rank(s.stream_rank)
                per_channel = targets[g] / self.groups.channels[g]
                targets[g] += per_channel * (s.factor - 1.0) * ramp
        return targets

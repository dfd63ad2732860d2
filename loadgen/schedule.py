"""The viewer schedule of a real run: how many Locust viewers watch each channel at time t.

Pure functions of the scenario's `real:` section, shared by the Locust shape (which sets the
total user count each second), the viewer users (which pick their channel per session with
the current per-channel targets as weights) and the run's report. Time counts from the moment
every publisher is live, as the scenario's fault times do.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from twin.scenario.schema import RealFaultKind, RealSpec


@dataclass(frozen=True, slots=True)
class Spike:
    """Channel `rank`'s viewers grow to `factor` x over `ramp_s` from `at_s`, hold `hold_s`, then return."""

    rank: int
    at_s: float
    ramp_s: float
    hold_s: float
    factor: float

    def multiplier(self, t: float) -> float:
        if t < self.at_s:
            return 1.0
        if t < self.at_s + self.ramp_s:
            return 1.0 + (self.factor - 1.0) * (t - self.at_s) / self.ramp_s
        if t < self.at_s + self.ramp_s + self.hold_s:
            return self.factor
        return 1.0


@dataclass(frozen=True, slots=True)
class ViewerSchedule:
    base: tuple[int, ...]  # viewers per channel (rank order) at steady state
    spikes: tuple[Spike, ...]
    chatters: int
    spawn_rate: float
    end_s: float

    @classmethod
    def from_spec(cls, spec: RealSpec) -> ViewerSchedule:
        base = _apportion(spec.viewers, spec.viewer_shares)
        spikes = tuple(
            Spike(f.stream_rank, f.at_s, f.ramp_s, f.duration_s, f.factor)
            for f in spec.faults
            if f.kind == RealFaultKind.VIRAL_SPIKE
        )
        return cls(base, spikes, spec.chatters, spec.spawn_rate, spec.warmup_s + spec.duration_s)

    def targets(self, t: float) -> tuple[float, ...]:
        """Expected viewers per channel at time t (fractional during a ramp)."""
        out = [float(b) for b in self.base]
        for spike in self.spikes:
            out[spike.rank - 1] *= spike.multiplier(t)
        return tuple(out)

    def viewers(self, t: float) -> int:
        return round(sum(self.targets(t)))

    def peak_viewers(self) -> int:
        times = [0.0] + [s.at_s + s.ramp_s for s in self.spikes]
        return max(self.viewers(t) for t in times)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ViewerSchedule:
        data = json.loads(text)
        return cls(
            tuple(int(b) for b in data["base"]),
            tuple(Spike(**s) for s in data["spikes"]),
            int(data["chatters"]),
            float(data["spawn_rate"]),
            float(data["end_s"]),
        )


def _apportion(total: int, shares: tuple[float, ...]) -> tuple[int, ...]:
    """Split `total` users by `shares` with largest remainders (counts sum to `total`)."""
    exact = [total * s for s in shares]
    counts = [int(x) for x in exact]
    order = sorted(range(len(shares)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return tuple(counts)


def pick_channel(targets: tuple[float, ...], u: float) -> int:
    """Channel index for a new viewer session: weighted by the current targets (u uniform in [0, 1))."""
    total = sum(targets)
    if total <= 0:
        return 0
    acc = 0.0
    for i, weight in enumerate(targets):
        acc += weight / total
        if u < acc:
            return i
    return len(targets) - 1

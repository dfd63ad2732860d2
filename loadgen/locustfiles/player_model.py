"""Pure player models used by the Locust viewer: throughput ABR (hls.js rules) and a playout buffer.

No I/O and no clocks: callers pass in measured durations and wall-clock instants, so the
rules are property-testable (hls.js low-latency behaviour, simplified).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(slots=True)
class Ewma:
    """Exponentially weighted moving average whose half-life is counted in sample weight.

    hls.js ``src/utils/ewma.ts``: weights are download seconds, so a slow transfer counts more
    than a fast one; ``estimate`` divides out the bias of starting from zero.
    """

    half_life: float
    _alpha: float = field(init=False, repr=False)
    _raw: float = field(default=0.0, init=False, repr=False)
    total_weight: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.half_life) and self.half_life > 0):
            raise ValueError(f"EWMA half-life must be a positive number of seconds, not {self.half_life!r}")
        self._alpha = math.exp(math.log(0.5) / self.half_life)

    def sample(self, weight: float, value: float) -> None:
        adj = self._alpha**weight
        self._raw = value * (1 - adj) + adj * self._raw
        self.total_weight += weight

    @property
    def estimate(self) -> float:
        zero_factor = 1 - self._alpha**self.total_weight
        return self._raw / zero_factor if zero_factor > 0 else 0.0


@dataclass(slots=True)
class BandwidthEstimator:
    """hls.js ``EwmaBandWidthEstimator``: the lower of a fast and a slow EWMA of throughput.

    Each sample is bytes over transfer seconds, weighted by those seconds and floored at
    ``min_sample_s`` (hls.js: 50 ms). Half-lives default to hls.js ``abrEwmaFastLive`` (3 s)
    and ``abrEwmaSlowLive`` (9 s); before any sample the estimate is ``default_bps``
    (``abrEwmaDefaultEstimate``, 500 kbit/s). Taking the minimum adapts down fast, up slowly.
    """

    fast_half_life: float = 3.0
    slow_half_life: float = 9.0
    default_bps: float = 500_000.0
    min_sample_s: float = 0.05
    _fast: Ewma = field(init=False, repr=False)
    _slow: Ewma = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._fast = Ewma(self.fast_half_life)
        self._slow = Ewma(self.slow_half_life)

    def sample(self, size_bytes: int, transfer_s: float) -> None:
        """Record one transfer: ``size_bytes`` moved in ``transfer_s`` (first to last byte)."""
        if size_bytes < 0 or not math.isfinite(transfer_s) or transfer_s < 0:
            raise ValueError(f"bad throughput sample: {size_bytes} bytes in {transfer_s!r} s")
        seconds = max(transfer_s, self.min_sample_s)
        bps = size_bytes * 8 / seconds
        self._fast.sample(seconds, bps)
        self._slow.sample(seconds, bps)

    @property
    def estimate_bps(self) -> float:
        if self._fast.total_weight < 0.001:
            return self.default_bps
        return min(self._fast.estimate, self._slow.estimate)


def choose_rendition(
    bandwidths: tuple[int, ...],
    current: int,
    estimate_bps: float,
    bw_factor: float = 0.95,
    bw_up_factor: float = 0.7,
) -> int:
    """The highest rendition whose BANDWIDTH fits under the estimate scaled for its direction.

    hls.js ``findBestLevel`` for live streams: renditions at or below ``current`` must fit in
    ``bw_factor`` x estimate (``abrBandWidthFactor``), those above in ``bw_up_factor`` x
    estimate (``abrBandWidthUpFactor``), so switching up needs more headroom than staying.
    When nothing fits, the lowest rendition.
    """
    for index in range(len(bandwidths) - 1, -1, -1):
        factor = bw_factor if index <= current else bw_up_factor
        if bandwidths[index] < factor * estimate_bps:
            return index
    return 0


@dataclass(slots=True)
class ThroughputAbr:
    """Rendition choice by measured throughput over bandwidth-ordered renditions.

    Every media transfer feeds the estimator; the rendition for the next fetch is
    ``choose_rendition`` of the new estimate, as hls.js picks ``nextAutoLevel`` before each load.
    """

    bandwidths: tuple[int, ...]  # ascending
    index: int = 0
    estimator: BandwidthEstimator = field(default_factory=BandwidthEstimator)
    bw_factor: float = 0.95
    bw_up_factor: float = 0.7

    def __post_init__(self) -> None:
        if not self.bandwidths:
            raise ValueError("ThroughputAbr needs at least one rendition bandwidth")
        if list(self.bandwidths) != sorted(self.bandwidths):
            raise ValueError("rendition bandwidths must be ascending")
        if not 0 <= self.index < len(self.bandwidths):
            raise ValueError(f"start index {self.index} outside 0..{len(self.bandwidths) - 1}")
        if not 0 < self.bw_up_factor <= self.bw_factor:
            raise ValueError("need 0 < bw_up_factor <= bw_factor (switching up needs more headroom)")

    def observe(self, size_bytes: int, transfer_s: float) -> int:
        """Record one media transfer; return the (possibly new) rendition index."""
        self.estimator.sample(size_bytes, transfer_s)
        self.index = choose_rendition(
            self.bandwidths, self.index, self.estimator.estimate_bps, self.bw_factor, self.bw_up_factor
        )
        return self.index


@dataclass(slots=True)
class RenditionClock:
    """Wall-clock seconds spent on each rendition, booked stint by stint (switch to switch)."""

    totals: dict[str, float] = field(default_factory=dict)
    current: str | None = None
    since: float = 0.0

    def enter(self, now: float, rendition: str) -> tuple[str, float] | None:
        """Playback moved to ``rendition`` at ``now``; return the stint that just ended, if any."""
        ended = self.stop(now)
        self.current, self.since = rendition, now
        return ended

    def stop(self, now: float) -> tuple[str, float] | None:
        """End the current stint at ``now``: book it and return (rendition, seconds)."""
        if self.current is None:
            return None
        stint = max(0.0, now - self.since)
        self.totals[self.current] = self.totals.get(self.current, 0.0) + stint
        ended, self.current = (self.current, stint), None
        return ended


@dataclass(slots=True)
class PlayoutBuffer:
    """Seconds of media buffered ahead of the playhead, and the stalls it suffered.

    Playback starts once ``start_threshold`` seconds are buffered; when the buffer runs dry
    playback stalls until ``start_threshold`` is buffered again (a rebuffer).
    """

    start_threshold: float = 0.0
    level: float = 0.0
    playing: bool = False
    now: float | None = None
    played_s: float = 0.0
    stalled_s: float = 0.0
    stalls: int = 0
    _stall_started: float | None = field(default=None, repr=False)

    def advance(self, now: float) -> float | None:
        """Move the clock to ``now``; return a finished-stall duration when one just ended."""
        if self.now is None or now <= self.now:
            self.now = now if self.now is None else self.now
            return None
        elapsed = now - self.now
        self.now = now
        if self.playing:
            if elapsed >= self.level:
                self.played_s += self.level
                stall_from = now - (elapsed - self.level)
                self.level = 0.0
                self.playing = False
                self.stalls += 1
                self._stall_started = stall_from
            else:
                self.level -= elapsed
                self.played_s += elapsed
        return None

    def add(self, now: float, media_s: float) -> float | None:
        """Media arrived at ``now``; return the stall length (s) if this ended a stall."""
        self.advance(now)
        self.level += max(0.0, media_s)
        if not self.playing and self.level >= self.start_threshold and self.level > 0:
            self.playing = True
            if self._stall_started is not None:
                stall = now - self._stall_started
                self.stalled_s += stall
                self._stall_started = None
                return stall
        return None

    @property
    def rebuffer_ratio(self) -> float:
        total = self.played_s + self.stalled_s
        return 0.0 if total == 0 else self.stalled_s / total

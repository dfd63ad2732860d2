"""Pure player models used by the Locust viewer: throughput ABR and a playout buffer.

No I/O and no clocks: callers pass in measured durations and wall-clock instants, so the
rules are property-testable (hls.js low-latency behaviour, simplified).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class ThroughputAbr:
    """Rendition choice by measured throughput over bandwidth-ordered renditions.

    Down one step as soon as a part takes longer to download than its own duration (the
    player cannot keep up); up one step after ``up_after`` consecutive parts fetched in
    under ``headroom`` of their duration and the next rendition's bandwidth fits the
    measured throughput.
    """

    bandwidths: tuple[int, ...]  # ascending
    index: int = 0
    up_after: int = 8
    headroom: float = 0.5
    _fast_streak: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if not self.bandwidths:
            raise ValueError("ThroughputAbr needs at least one rendition bandwidth")
        if list(self.bandwidths) != sorted(self.bandwidths):
            raise ValueError("rendition bandwidths must be ascending")
        if not 0 <= self.index < len(self.bandwidths):
            raise ValueError(f"start index {self.index} outside 0..{len(self.bandwidths) - 1}")

    def observe(self, media_s: float, download_s: float, size_bytes: int) -> int:
        """Record one part download; return the (possibly new) rendition index."""
        if media_s <= 0:
            return self.index
        if download_s > media_s:
            self._fast_streak = 0
            self.index = max(0, self.index - 1)
            return self.index
        if download_s <= media_s * self.headroom:
            self._fast_streak += 1
        else:
            self._fast_streak = 0
        if self._fast_streak >= self.up_after and self.index + 1 < len(self.bandwidths):
            throughput_bps = size_bytes * 8 / max(download_s, 1e-6)
            if throughput_bps >= self.bandwidths[self.index + 1]:
                self.index += 1
                self._fast_streak = 0
        return self.index


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

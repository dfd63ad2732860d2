"""A channel's LL-HLS timing: what the packager cuts to, and what every sink and playlist states.

The packager fixes it when a stream starts (PART-TARGET from its part target, TARGETDURATION
from its segment target) and hands it to its sink with every init segment; the origin derives
its playlist and serving windows from it (RFC 8216bis 4.4.3.1, 4.4.3.8, 4.4.4.9, 6.2.5.2).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChannelTiming:
    """A channel's fixed LL-HLS timing; TARGETDURATION and PART-TARGET never change mid-stream."""

    target_duration_s: int = 2
    part_target_s: float = 0.334
    #: Delta updates are for long playlists: skip only segments older than this (offer them
    #: once the window exceeds 2 minutes; the 4 h DVR window needs them).
    min_skip_window_s: float = 120.0

    def __post_init__(self) -> None:
        if self.target_duration_s < 1:
            raise ValueError(f"target_duration_s={self.target_duration_s} must be >= 1")
        if not 0.0 < self.part_target_s <= self.target_duration_s:
            raise ValueError(f"part_target_s={self.part_target_s} must be in (0, target_duration_s]")

    @property
    def part_hold_back_s(self) -> float:
        return 3.0 * self.part_target_s

    @property
    def hold_back_s(self) -> float:
        return 3.0 * self.target_duration_s

    @property
    def can_skip_until_s(self) -> float:
        """RFC 8216bis 4.4.3.8: at least six target durations; here at least two minutes."""
        return max(6.0 * self.target_duration_s, self.min_skip_window_s)

    @property
    def part_list_window_s(self) -> float:
        """Part lines older than this leave the playlist."""
        return 3.0 * self.target_duration_s

    @property
    def part_file_window_s(self) -> float:
        """Part files older than this are no longer served (3 target durations after delisting)."""
        return 6.0 * self.target_duration_s

    @property
    def blocking_timeout_s(self) -> float:
        """Answer 503 after holding a blocking request this long (RFC 8216bis 6.2.5.2)."""
        return 3.0 * self.target_duration_s

    @property
    def nominal_parts_per_segment(self) -> int:
        return max(1, round(self.target_duration_s / self.part_target_s))

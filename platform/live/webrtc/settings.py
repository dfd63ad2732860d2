"""The WebRTC settings object, built at the edge (CLI) and passed down; pure, no aiortc."""

from __future__ import annotations

from dataclasses import dataclass, field

from live.webrtc.sessions import WebRtcLimits


@dataclass(frozen=True, slots=True)
class WhipSettings:
    #: Ask for an IDR each time the timeline crosses a multiple of this (the segment length);
    #: 0 = only when transcoding starts and after loss.
    keyframe_interval_s: float = 2.0

    def __post_init__(self) -> None:
        if self.keyframe_interval_s < 0:
            raise ValueError("keyframe_interval_s must be >= 0")


@dataclass(frozen=True, slots=True)
class WebRtcSettings:
    limits: WebRtcLimits = field(default_factory=WebRtcLimits)
    whip: WhipSettings = field(default_factory=WhipSettings)
    start_bps: int = 2_500_000  # a WHEP viewer's first rendition: the best under this
    reap_interval_s: float = 1.0

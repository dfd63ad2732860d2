"""What a transcode emits per rendition: its configuration, its access units, its retirement.

These are the transcoder's output contract, read by the supervisor's wire, the packager and
tests. They live apart from ``pipeline`` (which needs PyAV) so that their readers, the packager
above all, import plain dataclasses and no codec library.
"""

from __future__ import annotations

from dataclasses import dataclass

from live.media.units import AccessUnit, AudioConfig, VideoConfig


@dataclass(frozen=True, slots=True)
class RenditionConfig:
    """Decoder configuration of one output rendition; always sent before its first unit."""

    rendition: str
    config: VideoConfig | AudioConfig
    bitrate_kbps: int | None
    frame_rate: float | None = None
    passthrough: bool = False  # the publisher's own video, cut at its own keyframes


@dataclass(frozen=True, slots=True)
class RenditionUnit:
    rendition: str
    unit: AccessUnit


@dataclass(frozen=True, slots=True)
class RenditionDropped:
    """A rung stopped for good (real-time guard); packager and origin retire its playlist."""

    rendition: str
    reason: str


TranscodeEvent = RenditionConfig | RenditionUnit | RenditionDropped

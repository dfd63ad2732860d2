"""ABR ladder policy: which renditions a live source is transcoded into.

Pure: a source description and settings in, a ``Ladder`` out. The rules every ladder obeys
(and the property tests in ``tests/transcode/test_ladder.py`` prove):

- never upscale: no rung is larger than the source in either dimension;
- keep the aspect ratio: the width follows the source's ratio, rounded to an even number
  (4:2:0 chroma needs even dimensions, ISO/IEC 14496-10 Table 6-1);
- no rung runs at a higher frame rate than the source; a rung with a lower cap takes every
  n-th source frame (n = ``fps_divisor``), so its frames are a subset of the source's and
  segment-boundary frames can be kept on every rung;
- the 60 fps top rung exists only for sources of at least 50 fps;
- the source itself is offered as a passthrough rung when its codec allows it;
- audio is transcoded to AAC-LC only when the source audio is not AAC-LC already.

Rung names carry the delivered height (the short side, so portrait sources work) and frame rate
("720p30"), so two sources of different rates never yield the same name for different content.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from live.media.units import AudioConfig

AAC_LC = 2  # audioObjectType of AAC-LC (ISO/IEC 14496-3 1.5.1.1, Table 1.1)

# Sampling rates AAC-LC encoders take (ISO/IEC 14496-3 1.6.3.4, samplingFrequencyIndex).
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)


class LadderError(ValueError):
    """The source description cannot be transcoded (the publisher's stream is at fault)."""


@dataclass(frozen=True, slots=True)
class RungSpec:
    """One configurable rung of the ladder template.

    ``height`` is the target short side; ``max_fps`` caps the frame rate; the rung is only
    used for sources of at least ``min_source_fps`` (1080p60 needs a >= 50 fps source).
    """

    label: str
    height: int
    max_fps: float
    video_kbps: int
    min_source_fps: float = 0.0

    def __post_init__(self) -> None:
        if self.height < 2 or self.height % 2:
            raise ValueError(f"rung {self.label!r}: height must be an even number >= 2")
        if self.max_fps <= 0 or self.video_kbps <= 0:
            raise ValueError(f"rung {self.label!r}: max_fps and video_kbps must be positive")


DEFAULT_RUNGS: tuple[RungSpec, ...] = (
    RungSpec("1080p60", 1080, 60.0, 6000, min_source_fps=50.0),
    RungSpec("1080p30", 1080, 30.0, 4500),
    RungSpec("720p", 720, 30.0, 2500),
    RungSpec("480p", 480, 30.0, 1200),
    RungSpec("360p", 360, 30.0, 700),
    RungSpec("160p", 160, 30.0, 250),
)


@dataclass(frozen=True, slots=True)
class LadderSettings:
    """The ladder template and the choices around it (one typed object, built at the edge)."""

    rungs: tuple[RungSpec, ...] = DEFAULT_RUNGS
    video_codec: str = "h264"  # codec of the encoded rungs: "h264" or "h265"
    passthrough_codecs: frozenset[str] = field(default_factory=lambda: frozenset({"h264"}))
    audio_kbps: int = 128
    audio_max_channels: int = 2

    def __post_init__(self) -> None:
        if self.video_codec not in ("h264", "h265"):
            raise ValueError(f"video_codec must be 'h264' or 'h265', not {self.video_codec!r}")
        if self.audio_kbps <= 0 or self.audio_max_channels <= 0:
            raise ValueError("audio_kbps and audio_max_channels must be positive")


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What the ladder needs to know about the incoming stream."""

    width: int
    height: int
    fps: float
    codec: str = "h264"
    audio: AudioConfig | None = None
    video_kbps: int | None = None  # measured or announced source bitrate, if known


@dataclass(frozen=True, slots=True)
class Rung:
    """One delivered video rendition."""

    name: str
    width: int
    height: int
    fps: float
    fps_divisor: int  # keep every n-th source frame
    codec: str
    video_kbps: int | None  # None for passthrough (the source's own bitrate)
    passthrough: bool = False

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True, slots=True)
class AudioPlan:
    """The delivered audio rendition: the source's AAC-LC as is, or a transcode to AAC-LC."""

    transcode: bool
    sample_rate: int
    channels: int
    object_type: int = AAC_LC
    bitrate_kbps: int | None = None  # None when passed through


@dataclass(frozen=True, slots=True)
class Ladder:
    source: SourceInfo
    video: tuple[Rung, ...]  # passthrough first, then encoded rungs, largest first
    audio: AudioPlan | None

    @property
    def encoded(self) -> tuple[Rung, ...]:
        return tuple(r for r in self.video if not r.passthrough)

    @property
    def passthrough(self) -> Rung | None:
        return next((r for r in self.video if r.passthrough), None)

    def rung(self, name: str) -> Rung:
        for r in self.video:
            if r.name == name:
                return r
        raise KeyError(name)


def fps_divisor(source_fps: float, max_fps: float) -> int:
    """Smallest n with source_fps / n <= max_fps (a 1 % tolerance keeps 30.3 fps at n = 1)."""
    return max(1, math.ceil(source_fps / max_fps - 0.01))


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def _scaled_size(src_w: int, src_h: int, short: int) -> tuple[int, int]:
    """Size with short side ``short`` and the source's aspect ratio, both even, never larger."""
    if src_w >= src_h:
        w, h = _even(short * src_w / src_h), short
    else:
        w, h = short, _even(short * src_h / src_w)
    # rounding the long side up may pass an odd source dimension by one pixel
    return min(w, src_w - src_w % 2), min(h, src_h - src_h % 2)


def _rate_label(fps: float) -> str:
    return str(round(fps)) if abs(fps - round(fps)) < 0.05 else f"{fps:.2f}".rstrip("0")


def audio_plan(audio: AudioConfig | None, settings: LadderSettings) -> AudioPlan | None:
    """AAC-LC passes through untouched; any other object type (HE-AAC, ...) is transcoded."""
    if audio is None:
        return None
    if audio.codec == "aac" and audio.object_type == AAC_LC:
        return AudioPlan(False, audio.sample_rate, audio.channels)
    rate = audio.sample_rate if audio.sample_rate in _AAC_RATES else 48000
    channels = max(1, min(audio.channels, settings.audio_max_channels))
    return AudioPlan(True, rate, channels, AAC_LC, settings.audio_kbps)


def build_ladder(source: SourceInfo, settings: LadderSettings | None = None) -> Ladder:
    """Derive the ladder for ``source`` from the template in ``settings``."""
    settings = settings or LadderSettings()
    if source.width < 2 or source.height < 2:
        raise LadderError(f"source reports an unusable picture size {source.width}x{source.height}")
    if not math.isfinite(source.fps) or source.fps <= 0:
        raise LadderError(f"source reports an unusable frame rate {source.fps!r}")

    src_short = min(source.width, source.height)
    rungs: list[Rung] = []
    seen: set[tuple[int, int, int]] = set()
    for spec in sorted(settings.rungs, key=lambda s: (s.height, s.max_fps), reverse=True):
        if spec.height > src_short or source.fps < spec.min_source_fps:
            continue
        width, height = _scaled_size(source.width, source.height, spec.height)
        divisor = fps_divisor(source.fps, spec.max_fps)
        key = (width, height, divisor)
        if key in seen:
            continue
        seen.add(key)
        fps = source.fps / divisor
        rungs.append(
            Rung(
                name=f"{spec.height}p{_rate_label(fps)}",
                width=width,
                height=height,
                fps=fps,
                fps_divisor=divisor,
                codec=settings.video_codec,
                video_kbps=spec.video_kbps,
            )
        )

    passthrough_ok = source.codec in settings.passthrough_codecs
    if not rungs and not passthrough_ok and settings.rungs:
        # Smaller than every template rung and not deliverable as is: one rung at source size.
        smallest = min(settings.rungs, key=lambda s: s.height)
        width, height = _scaled_size(source.width, source.height, max(2, src_short - src_short % 2))
        divisor = fps_divisor(source.fps, smallest.max_fps)
        fps = source.fps / divisor
        rungs.append(
            Rung(
                f"{min(width, height)}p{_rate_label(fps)}",
                width,
                height,
                fps,
                divisor,
                settings.video_codec,
                smallest.video_kbps,
            )
        )

    video: list[Rung] = []
    if passthrough_ok:
        video.append(
            Rung(
                "source",
                source.width,
                source.height,
                source.fps,
                1,
                source.codec,
                source.video_kbps,
                passthrough=True,
            )
        )
    video.extend(rungs)
    if not video:
        raise LadderError("the ladder template is empty and the source codec cannot pass through")
    return Ladder(source, tuple(video), audio_plan(source.audio, settings))

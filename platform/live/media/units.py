"""Normalized media units: what every ingest protocol produces and every later stage consumes.

Timestamps are integers in milliseconds on the publisher's timeline (RTMP and FLV use a
1 kHz clock), so no stage ever rounds them. The ingest wall-clock is the server's
``time.time()`` when the message carrying the unit was complete; latency is read against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class TrackKind(Enum):
    VIDEO = "video"
    AUDIO = "audio"


@dataclass(frozen=True, slots=True)
class VideoConfig:
    """Decoder configuration of an H.264 (or H.265) video track.

    ``record`` is the raw AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1), or the
    HEVCDecoderConfigurationRecord for H.265; it goes into the fMP4 ``avcC``/``hvcC`` box as is.
    """

    codec: str  # "h264" or "h265"
    codec_string: str  # RFC 6381 string for CODECS=, e.g. "avc1.64001f"
    width: int
    height: int
    record: bytes
    sps: tuple[bytes, ...] = ()
    pps: tuple[bytes, ...] = ()
    nal_length_size: int = 4
    profile_idc: int = 0
    level_idc: int = 0


@dataclass(frozen=True, slots=True)
class AudioConfig:
    """Decoder configuration of an audio track: AAC (``record`` is the ISO/IEC 14496-3 1.6.2.1
    AudioSpecificConfig), or Opus from WHIP (``record`` is the RFC 7845 5.1 OpusHead), which the
    transcoder turns into the ladder's AAC."""

    codec: str  # "aac" or "opus"
    codec_string: str  # e.g. "mp4a.40.2"
    sample_rate: int
    channels: int
    object_type: int  # 2 = AAC-LC
    record: bytes  # the raw AudioSpecificConfig (or OpusHead)


@dataclass(frozen=True, slots=True)
class AccessUnit:
    """One coded frame (video) or one AAC raw data block (audio).

    ``data`` for video is length-prefixed NAL units (AVCC form, ``nal_length_size`` bytes each),
    exactly as FLV and MP4 carry them. ``pts_ms = dts_ms + composition offset``.
    """

    kind: TrackKind
    dts_ms: int
    pts_ms: int
    data: bytes
    keyframe: bool
    ingest_wallclock: float  # seconds since the epoch when the unit reached the server
    capture_wallclock: float | None = field(default=None)  # publisher clock, if known

"""WHIP media to the platform's access units: depacketized RTP frames in, AccessUnits out.

aiortc reassembles each RTP frame (RFC 6184 FU-A/STAP-A for H.264, one packet per Opus frame)
and hands us its payload and its RTP timestamp counted from the track's first packet. This
module turns those into what RTMP ingest produces (``live.media.units``): H.264 as
length-prefixed NAL units with the SPS/PPS lifted out into a ``VideoConfig`` (ISO/IEC 14496-15
5.3.3.1), Opus (RFC 7587) as-is with an OpusHead (RFC 7845 5.1) as its configuration, so the
transcoder decodes it to the ladder's AAC. Nothing is decoded here.

The two RTP clocks have unrelated origins; without waiting for RTCP sender reports, both tracks
are placed on one millisecond timeline by the arrival of their first frame (the first frame of
any track is 0 ms), which is as close as a live ingest needs for lip sync.
"""

from __future__ import annotations

import struct
from typing import Final

from live.media.avc import (
    NAL_AUD,
    NAL_IDR,
    NAL_PPS,
    NAL_SPS,
    AvcError,
    join_avcc,
    split_annexb,
    video_config_from_parameter_sets,
)
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig

VIDEO_CLOCK_HZ: Final = 90_000
OPUS_CLOCK_HZ: Final = 48_000
_OUT_OF_BAND: Final = frozenset({NAL_SPS, NAL_PPS, NAL_AUD})
#: RFC 7845 5.1: version 1, 2 channels, 312 samples pre-skip, 48 kHz input, 0 dB, family 0.
OPUS_HEAD: Final = b"OpusHead" + struct.pack("<BBHIhB", 1, 2, 312, OPUS_CLOCK_HZ, 0, 0)
OPUS_CONFIG: Final = AudioConfig("opus", "opus", OPUS_CLOCK_HZ, 2, 0, OPUS_HEAD)

Item = AccessUnit | VideoConfig | AudioConfig


class _TrackClock:
    __slots__ = ("offset_ms", "rate")

    def __init__(self, offset_ms: float, rate: int) -> None:
        self.offset_ms = offset_ms
        self.rate = rate

    def ms(self, rtp_ts: int) -> int:
        return round(self.offset_ms + rtp_ts * 1000 / self.rate)


class WhipAssembler:
    """One WHIP publication's frames to access units and configurations."""

    def __init__(self) -> None:
        self._first_arrival: float | None = None
        self._clocks: dict[TrackKind, _TrackClock] = {}
        self.video_config: VideoConfig | None = None
        self._audio_sent = False
        self.frames_before_config = 0
        self.bad_frames = 0

    def _clock(self, kind: TrackKind, rate: int, arrival: float) -> _TrackClock:
        clock = self._clocks.get(kind)
        if clock is None:
            if self._first_arrival is None:
                self._first_arrival = arrival
            clock = self._clocks[kind] = _TrackClock((arrival - self._first_arrival) * 1000, rate)
        return clock

    def video(self, annexb: bytes, rtp_ts: int, arrival: float) -> list[Item]:
        """One reassembled H.264 frame (Annex B) at ``rtp_ts`` (90 kHz, from the track's start)."""
        try:
            nals = split_annexb(annexb)
        except AvcError:
            self.bad_frames += 1
            return []
        items: list[Item] = []
        sps = tuple(n for n in nals if n[0] & 0x1F == NAL_SPS)
        pps = tuple(n for n in nals if n[0] & 0x1F == NAL_PPS)
        if sps and pps:
            config = self.video_config
            if config is None or config.sps != sps[:1] or config.pps != pps[:1]:
                try:
                    config = video_config_from_parameter_sets(sps[:1], pps[:1])
                except (AvcError, ValueError, IndexError):
                    self.bad_frames += 1
                    return []
                if config != self.video_config:
                    self.video_config = config
                    items.append(config)
        if self.video_config is None:
            self.frames_before_config += 1
            return items
        body = [n for n in nals if n[0] & 0x1F not in _OUT_OF_BAND]
        if not body:
            return items
        ms = self._clock(TrackKind.VIDEO, VIDEO_CLOCK_HZ, arrival).ms(rtp_ts)
        keyframe = any(n[0] & 0x1F == NAL_IDR for n in body)
        items.append(AccessUnit(TrackKind.VIDEO, ms, ms, join_avcc(body), keyframe, arrival))
        return items

    def announce_audio(self) -> AudioConfig:
        """The Opus configuration, once, ahead of the first packet (it never varies)."""
        self._audio_sent = True
        return OPUS_CONFIG

    def audio(self, payload: bytes, rtp_ts: int, arrival: float) -> list[Item]:
        """One Opus packet at ``rtp_ts`` (48 kHz, from the track's start)."""
        if not payload:
            return []
        items: list[Item] = []
        if not self._audio_sent:
            self._audio_sent = True
            items.append(OPUS_CONFIG)
        ms = self._clock(TrackKind.AUDIO, OPUS_CLOCK_HZ, arrival).ms(rtp_ts)
        items.append(AccessUnit(TrackKind.AUDIO, ms, ms, payload, True, arrival))
        return items

"""One channel's encoded ladder fanned out to its WHEP viewers, with no per-viewer coding.

The media path hands every transcoder event of the channel to ``ChannelRelay.handle`` (a tap
beside the packager: the segmenter is not involved). Video access units are turned into one
Annex B ``av.Packet`` per rendition (SPS/PPS in front of each IDR, since the ladder keeps them
out of band) and that same packet object goes to every viewer of the rendition, whose aiortc
sender only packetizes and encrypts it. The ladder's AAC is transcoded to Opus here once per
channel, only while someone listens (RFC 7587: WebRTC has no AAC).

A viewer starts, and switches rendition, at an IDR of the rendition it goes to. Its queue is
bounded: a viewer that cannot keep up loses what is queued and waits for the next IDR rather
than falling further behind live (its ``dropped`` counts those frames).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

import av
from av.audio.codeccontext import AudioCodecContext
from av.codec.context import CodecContext

from live.media.avc import avcc_to_annexb
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig
from live.transcode.events import RenditionConfig, RenditionDropped, RenditionUnit
from live.webrtc.abr import RenditionOption

log = logging.getLogger(__name__)

MS: Final = Fraction(1, 1000)
OPUS_RATE: Final = 48_000
#: Frames a viewer may have queued before it is cut back to the next IDR (about 1 s at 30 fps).
MAX_QUEUED_VIDEO: Final = 30
MAX_QUEUED_AUDIO: Final = 50


@dataclass(frozen=True, slots=True)
class Rendition:
    name: str
    config: VideoConfig
    bandwidth_bps: int
    parameter_sets: bytes  # Annex B SPS + PPS, put in front of every IDR

    @property
    def option(self) -> RenditionOption:
        return RenditionOption(self.name, self.bandwidth_bps)


def rendition_from(event: RenditionConfig) -> Rendition:
    config = event.config
    assert isinstance(config, VideoConfig)
    kbps = event.bitrate_kbps or max(config.width * config.height // 300, 300)
    headers = b"".join(b"\x00\x00\x00\x01" + nal for nal in (*config.sps, *config.pps))
    return Rendition(event.rendition, config, kbps * 1000, headers)


class ViewerFeed:
    """What one viewer is sent: a rendition (switching at IDRs) and the channel's Opus audio."""

    def __init__(self, rendition: str, *, audio: bool) -> None:
        self.rendition = rendition
        self.pending: str | None = None
        self.wants_audio = audio
        self._video: deque[av.Packet[Any]] = deque()
        self._audio: deque[av.Packet[Any]] = deque()
        self._video_ready = asyncio.Event()
        self._audio_ready = asyncio.Event()
        self.awaiting_keyframe = True
        self.ended = False
        self.sent = 0
        self.dropped = 0
        self.switches = 0

    def switch_to(self, rendition: str) -> None:
        self.pending = None if rendition == self.rendition else rendition

    def offer_video(self, rendition: str, keyframe: bool, packet: av.Packet[Any]) -> None:
        if keyframe and self.pending == rendition:
            self.rendition, self.pending = rendition, None
            self.switches += 1
            self.awaiting_keyframe = True
        if rendition != self.rendition:
            return
        if self.awaiting_keyframe:
            if not keyframe:
                return
            self.awaiting_keyframe = False
        if len(self._video) >= MAX_QUEUED_VIDEO:
            self.dropped += len(self._video)
            self._video.clear()
            self.awaiting_keyframe = not keyframe
            if not keyframe:
                return
        self._video.append(packet)
        self._video_ready.set()

    def offer_audio(self, packet: av.Packet[Any]) -> None:
        if len(self._audio) >= MAX_QUEUED_AUDIO:
            self._audio.popleft()
        self._audio.append(packet)
        self._audio_ready.set()

    def end(self) -> None:
        self.ended = True
        self._video_ready.set()
        self._audio_ready.set()

    async def next_video(self) -> av.Packet[Any] | None:
        """The next packet to send, or None once the stream ended."""
        while not self._video:
            if self.ended:
                return None
            self._video_ready.clear()
            await self._video_ready.wait()
        self.sent += 1
        return self._video.popleft()

    async def next_audio(self) -> av.Packet[Any] | None:
        while not self._audio:
            if self.ended:
                return None
            self._audio_ready.clear()
            await self._audio_ready.wait()
        return self._audio.popleft()


class OpusTranscoder:
    """The channel's AAC to Opus (20 ms frames at 48 kHz), packets timed in 1/48000 s."""

    def __init__(self, source: AudioConfig) -> None:
        decoder = CodecContext.create("aac", "r")
        assert isinstance(decoder, AudioCodecContext)
        decoder.extradata = source.record
        self.decoder = decoder
        encoder = CodecContext.create("libopus", "w")
        assert isinstance(encoder, AudioCodecContext)
        encoder.sample_rate = OPUS_RATE
        encoder.layout = "stereo"
        encoder.format = "s16"
        encoder.bit_rate = 64_000
        encoder.time_base = Fraction(1, OPUS_RATE)
        encoder.options = {"application": "lowdelay", "frame_duration": "20"}
        encoder.open()
        self.encoder = encoder
        self.resampler = av.AudioResampler(format="s16", layout="stereo", rate=OPUS_RATE,
                                           frame_size=encoder.frame_size or 960)
        self._origin: int | None = None
        self._samples = 0

    def push(self, unit: AccessUnit) -> list[av.Packet[Any]]:
        if self._origin is None:
            self._origin = unit.pts_ms * OPUS_RATE // 1000
        try:
            decoded = self.decoder.decode(av.Packet(unit.data))
        except av.FFmpegError as exc:
            log.warning("AAC unit at %d ms undecodable for Opus: %s", unit.pts_ms, exc)
            return []
        packets: list[av.Packet[Any]] = []
        for frame in decoded:
            frame.pts = None
            for resampled in self.resampler.resample(frame):
                resampled.pts = self._samples
                self._samples += resampled.samples
                for packet in self.encoder.encode(resampled):
                    packet.pts = self._origin + int(packet.pts or 0)
                    packet.time_base = Fraction(1, OPUS_RATE)
                    packets.append(packet)
        return packets


class ChannelRelay:
    """The tap on one channel's transcoder output and the set of viewers fed from it."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.renditions: dict[str, Rendition] = {}
        self.audio_config: AudioConfig | None = None
        self.viewers: set[ViewerFeed] = set()
        self.ended = False
        self.units_in: dict[str, int] = {}
        self._opus: OpusTranscoder | None = None
        self._on_end: list[Callable[[], None]] = []

    # -- tap side ------------------------------------------------------------------------------

    def handle(self, event: object) -> None:
        """One transcoder event (``None`` = the stream ended)."""
        if isinstance(event, RenditionUnit):
            self._on_unit(event)
        elif isinstance(event, RenditionConfig):
            if isinstance(event.config, VideoConfig):
                if event.config.codec == "h264":
                    self.renditions[event.rendition] = rendition_from(event)
            elif isinstance(event.config, AudioConfig) and self.audio_config != event.config:
                self.audio_config, self._opus = event.config, None
        elif isinstance(event, RenditionDropped):
            self.renditions.pop(event.rendition, None)
        elif event is None:
            self.end()

    def _on_unit(self, event: RenditionUnit) -> None:
        unit = event.unit
        self.units_in[event.rendition] = self.units_in.get(event.rendition, 0) + 1
        if unit.kind is TrackKind.AUDIO:
            listeners = [v for v in self.viewers if v.wants_audio]
            if listeners:
                for packet in self._opus_packets(unit):
                    for viewer in listeners:
                        viewer.offer_audio(packet)
            return
        rendition = self.renditions.get(event.rendition)
        if rendition is None:
            return
        watching = [v for v in self.viewers
                    if v.rendition == rendition.name or v.pending == rendition.name]
        if not watching:
            return
        data = avcc_to_annexb(unit.data, rendition.config.nal_length_size)
        packet = av.Packet(rendition.parameter_sets + data if unit.keyframe else data)
        packet.pts = packet.dts = unit.pts_ms
        packet.time_base = MS
        for viewer in watching:
            viewer.offer_video(rendition.name, unit.keyframe, packet)

    def _opus_packets(self, unit: AccessUnit) -> list[av.Packet[Any]]:
        if self.audio_config is None or self.audio_config.codec != "aac":
            return []
        if self._opus is None:
            try:
                self._opus = OpusTranscoder(self.audio_config)
            except (av.FFmpegError, ValueError) as exc:
                log.warning("%s: no Opus for WHEP viewers: %s", self.channel, exc)
                self.audio_config = None
                return []
        return self._opus.push(unit)

    # -- viewer side ---------------------------------------------------------------------------

    def attach(self, viewer: ViewerFeed) -> None:
        self.viewers.add(viewer)
        if self.ended:
            viewer.end()

    def detach(self, viewer: ViewerFeed) -> None:
        self.viewers.discard(viewer)
        if not self.viewers:
            self._opus = None  # the Opus encoder runs only while someone listens

    def on_end(self, callback: Callable[[], None]) -> None:
        self._on_end.append(callback)

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        for viewer in tuple(self.viewers):
            viewer.end()
        for callback in self._on_end:
            callback()

    def options(self) -> list[RenditionOption]:
        return [r.option for r in self.renditions.values()]

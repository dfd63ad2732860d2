"""A WHIP publication (RFC 9725): one aiortc peer connection feeding the live-stream registry.

The route has checked the offer, the stream key and the limits and claimed the channel; this
shell negotiates H.264 and Opus only, receives coded frames without decoding them
(``passthrough``), turns them into access units (``assembler``) and pushes them into the claimed
``LiveStream``, exactly where RTMP ingest pushes its own, so transcoding and packaging follow.

Keyframes: a browser's encoder sends an IDR only when asked, so the session asks (RTCP PLI,
RFC 4585 6.3.1) once the transcoder has started, after loss (aiortc's jitter buffer does), and
each time the stream's timeline crosses a multiple of ``keyframe_interval_s`` (the segment
length). The IDR then lands a frame or two past the grid point the packager cuts segments on,
well inside the half second RFC 8216bis 4.4.3.1 rounding allows, so even the passthrough rung
(the publisher's own H.264) can be packaged for LL-HLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from live.ingest.registry import LiveStream
from live.media.units import AccessUnit, AudioConfig, VideoConfig
from live.webrtc import passthrough
from live.webrtc.assembler import WhipAssembler
from live.webrtc.sdp import Offer
from live.webrtc.settings import WhipSettings

log = logging.getLogger(__name__)

_ACCEPTED = {"video": ("video/H264", "video/rtx"), "audio": ("audio/opus",)}


def prepare_transceivers(pc: RTCPeerConnection, offer: Offer, direction: str,
                         tracks: Mapping[str, MediaStreamTrack] | None = None) -> None:
    """One transceiver per offered media section, in order, preferring only H.264 and Opus.

    aiortc picks the codecs of an answer while it applies the offer, from the transceivers
    already there; made beforehand with their preferences, they are the ones the offer's
    sections bind to. ``tracks`` (WHEP) gives each kind the track it sends.
    """
    for section in offer.sections:
        if section.kind not in _ACCEPTED:
            continue
        track = (tracks or {}).get(section.kind)
        transceiver = pc.addTransceiver(track if track is not None else section.kind,
                                        direction=direction)
        capabilities = (RTCRtpReceiver if direction == "recvonly" else RTCRtpSender).getCapabilities(
            section.kind)
        if capabilities is not None:
            transceiver.setCodecPreferences(
                [c for c in capabilities.codecs if c.mimeType in _ACCEPTED[section.kind]])


class WhipSession:
    """One publisher's peer connection, from answer to close."""

    def __init__(self, session_id: str, stream: LiveStream, settings: WhipSettings,
                 on_close: Callable[[WhipSession, str], None]) -> None:
        self.id = session_id
        self.stream = stream
        self.settings = settings
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.assembler = WhipAssembler()
        self._on_close = on_close
        self._tasks: set[asyncio.Task[None]] = set()
        self._video_receiver: RTCRtpReceiver | None = None
        self.keyframe_requests = 0
        self._grid_slot = 0
        self.closed = False

    async def answer(self, offer_sdp: str, offer: Offer) -> str:
        """Negotiate; the answer SDP carries every ICE candidate (no trickle needed)."""
        pc = self.pc
        pc.on("connectionstatechange", self._on_state)
        prepare_transceivers(pc, offer, "recvonly")
        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        for transceiver in pc.getTransceivers():
            passthrough.register(transceiver.receiver.track)
            if transceiver.kind == "video":
                self._video_receiver = transceiver.receiver
            self._spawn(self._consume(transceiver.receiver.track))
        await pc.setLocalDescription(await pc.createAnswer())
        if any(t.kind == "audio" and t.currentDirection != "inactive" for t in pc.getTransceivers()):
            # Opus's configuration is fixed, so the transcoder knows about the audio before the
            # first packet (the jitter buffer holds audio back longer than the first keyframe)
            self.stream.set_audio_config(self.assembler.announce_audio())
        self._spawn(self._request_keyframes())
        return pc.localDescription.sdp

    @property
    def connection_state(self) -> str:
        return str(self.pc.connectionState)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self._spawn(self.close(f"peer connection {self.pc.connectionState}"))

    async def _consume(self, track: MediaStreamTrack) -> None:
        stream, assembler = self.stream, self.assembler
        video = track.kind == "video"
        grid_ms = round(self.settings.keyframe_interval_s * 1000)
        try:
            while True:
                frame = await track.recv()
                arrival = time.time()
                # a JitterFrame (``passthrough``): the coded frame and its RTP timestamp
                data, timestamp = bytes(frame.data), int(frame.timestamp)  # type: ignore[union-attr]
                items = (assembler.video(data, timestamp, arrival) if video
                         else assembler.audio(data, timestamp, arrival))
                for item in items:
                    if isinstance(item, AccessUnit):
                        stream.push(item)
                        if video and grid_ms:
                            self._keyframe_on_grid(item, grid_ms)
                    elif isinstance(item, VideoConfig):
                        stream.set_video_config(item)
                        self.request_keyframe()
                    elif isinstance(item, AudioConfig):
                        stream.set_audio_config(item)
        except MediaStreamError:
            await self.close(f"{track.kind} track ended")

    def request_keyframe(self) -> None:
        """Send a PLI for the video the publisher sends (a no-op before its first packet)."""
        receiver = self._video_receiver
        if receiver is None or self.closed:
            return
        for source in receiver.getSynchronizationSources():
            self.keyframe_requests += 1
            self._spawn(receiver._send_rtcp_pli(source.source))

    def _keyframe_on_grid(self, unit: AccessUnit, grid_ms: int) -> None:
        slot = unit.pts_ms // grid_ms
        if slot > self._grid_slot:
            self._grid_slot = slot
            if not unit.keyframe:
                self.request_keyframe()

    async def _request_keyframes(self) -> None:
        """A PLI once the transcoder runs, so it starts from a fresh IDR, not a held one."""
        while not self.closed and self.stream.transcode is None:
            await asyncio.sleep(0.1)
        self.request_keyframe()

    async def close(self, reason: str) -> None:
        """End the publication (idempotent): peer connection, tasks and the channel claim."""
        if self.closed:
            return
        self.closed = True
        self._on_close(self, reason)
        current = asyncio.current_task()
        for task in tuple(self._tasks):
            if task is not current:
                task.cancel()
        with contextlib.suppress(Exception):
            await self.pc.close()
        log.info("whip %s: %s ended (%s)", self.id[:8], self.stream.channel, reason)

"""A WHEP viewer (draft-ietf-wish-whep): one aiortc peer connection sending the relay's packets.

The viewer's tracks return ``av.Packet``s from its ``ViewerFeed`` (aiortc then packetizes them,
RFC 6184 / RFC 7587, without encoding anything). The viewer's REMB feedback
(draft-alvestrand-rmcat-remb) is read beside aiortc's own handling and drives its
``RenditionChooser``; the relay makes the switch at the next IDR. A viewer that asked for one
rendition (``/whep/{channel}/{rendition}``) stays on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import av
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RTCP_PSFB_APP, RTCP_PSFB_PLI, RtcpPsfbPacket, unpack_remb_fci

from live.webrtc.abr import RenditionChooser
from live.webrtc.relay import ChannelRelay, ViewerFeed
from live.webrtc.sdp import Offer
from live.webrtc.whip import prepare_transceivers

log = logging.getLogger(__name__)

class FeedTrack(MediaStreamTrack):
    """A track whose frames are the relay's already-encoded packets."""

    def __init__(self, kind: str, feed: ViewerFeed) -> None:
        super().__init__()
        self.kind = kind
        self._next: Callable[[], Awaitable[av.Packet[Any] | None]] = (
            feed.next_video if kind == "video" else feed.next_audio)

    async def recv(self) -> av.Packet[Any]:  # type: ignore[override]
        packet = await self._next()
        if packet is None:
            self.stop()
            raise MediaStreamError
        return packet


class WhepSession:
    """One viewer's peer connection, from answer to close."""

    def __init__(self, session_id: str, relay: ChannelRelay, start: str, *, fixed: bool,
                 on_close: Callable[[WhepSession, str], None]) -> None:
        self.id = session_id
        self.relay = relay
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.feed = ViewerFeed(start, audio=False)
        options = relay.options()
        self.chooser = None if fixed or not options else RenditionChooser(options, start,
                                                                          now=time.monotonic())
        self._on_close = on_close
        self._tasks: set[asyncio.Task[None]] = set()
        self.estimate_bps: int | None = None
        self.keyframe_requests = 0
        self.closed = False

    async def answer(self, offer_sdp: str, offer: Offer) -> str:
        pc = self.pc
        pc.on("connectionstatechange", self._on_state)
        self.feed.wants_audio = self.relay.audio_config is not None
        tracks = {"video": FeedTrack("video", self.feed)}
        if self.feed.wants_audio:
            tracks["audio"] = FeedTrack("audio", self.feed)
        prepare_transceivers(pc, offer, "sendonly", tracks)
        await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "video":
                self._watch_feedback(transceiver.sender)
        self.relay.attach(self.feed)
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    def _watch_feedback(self, sender: RTCRtpSender) -> None:
        """See the viewer's REMB and PLI before aiortc's sender handles them."""
        handle = sender._handle_rtcp_packet

        async def observe(packet: Any) -> None:
            if isinstance(packet, RtcpPsfbPacket):
                if packet.fmt == RTCP_PSFB_PLI:
                    self.keyframe_requests += 1
                elif packet.fmt == RTCP_PSFB_APP:
                    with contextlib.suppress(ValueError):
                        bitrate, _ = unpack_remb_fci(packet.fci)
                        self.on_estimate(bitrate)
            await handle(packet)

        sender._handle_rtcp_packet = observe  # type: ignore[method-assign]

    def on_estimate(self, bitrate_bps: int) -> None:
        self.estimate_bps = bitrate_bps
        if self.chooser is None:
            return
        self.chooser.update_options(self.relay.options())
        target = self.chooser.on_estimate(bitrate_bps, time.monotonic())
        if target is not None:
            self.feed.switch_to(target)

    @property
    def connection_state(self) -> str:
        return str(self.pc.connectionState)

    def _on_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            reason = f"peer connection {self.pc.connectionState}"
            task = asyncio.get_running_loop().create_task(self.close(reason))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.relay.detach(self.feed)
        self.feed.end()
        self._on_close(self, reason)
        with contextlib.suppress(Exception):
            await self.pc.close()
        log.info("whep %s: viewer of %s left (%s; %d frames sent, %d dropped)",
                 self.id[:8], self.relay.channel, reason, self.feed.sent, self.feed.dropped)

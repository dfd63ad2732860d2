"""WHIP and WHEP clients on aiortc: a clock-painting publisher and a frame-counting viewer.

They are what the WebRTC tests, the WHEP fan-out benchmark and its load process drive the
platform with, standing in for OBS and a browser. The publisher paints its capture clock
(``clockcode``) into synthetic frames that aiortc encodes as H.264; the viewer receives the
coded frames without decoding them (``live.webrtc.passthrough``) and counts them, so one process
can hold dozens of viewers, or decodes them to read the painted clock (``read_clock``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from dataclasses import dataclass, field

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, MediaStreamTrack

from live.selftest import clockcode
from live.webrtc import passthrough

SDP = "application/sdp"


class ClockVideoTrack(MediaStreamTrack):
    """Synthetic frames at ``fps`` with ``time.time()`` in ms painted into each."""

    kind = "video"

    def __init__(self, width: int = 640, height: int = 360, fps: int = 30) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._start: float | None = None
        self._count = 0
        self._picture = np.full((height, width, 3), 96, dtype=np.uint8)

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._count / self.fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        clockcode.paint(self._picture, int(time.time() * 1000))
        frame = av.VideoFrame.from_ndarray(self._picture, format="rgb24")
        frame.pts = self._count * (90_000 // self.fps)
        frame.time_base = fractions.Fraction(1, 90_000)
        self._count += 1
        return frame


@dataclass(slots=True)
class HttpAnswer:
    status: int
    body: str
    location: str | None
    headers: dict[str, str] = field(default_factory=dict)


async def post_offer(http: aiohttp.ClientSession, url: str, sdp: str,
                     token: str | None = None) -> HttpAnswer:
    headers = {"Content-Type": SDP}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with http.post(url, data=sdp.encode(), headers=headers) as response:
        return HttpAnswer(response.status, await response.text(), response.headers.get("Location"),
                          dict(response.headers))


class WhipPublisher:
    """``async with WhipPublisher(base, channel, key) as publisher``: publishing until exit."""

    def __init__(self, base_url: str, channel: str, stream_key: str, *,
                 track: MediaStreamTrack | None = None, audio: bool = False) -> None:
        self.url = f"{base_url}/whip/{channel}"
        self.base_url = base_url
        self.stream_key = stream_key
        self.track = track or ClockVideoTrack()
        self.audio = AudioStreamTrack() if audio else None  # Opus-encoded silence
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.location: str | None = None
        self.answer: HttpAnswer | None = None

    async def __aenter__(self) -> WhipPublisher:
        self.pc.addTransceiver(self.track, direction="sendonly")
        if self.audio is not None:
            self.pc.addTransceiver(self.audio, direction="sendonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        async with aiohttp.ClientSession() as http:
            self.answer = await post_offer(http, self.url, self.pc.localDescription.sdp,
                                           self.stream_key)
        if self.answer.status != 201:
            await self.pc.close()
            raise RuntimeError(f"WHIP POST answered {self.answer.status}: {self.answer.body}")
        self.location = self.answer.location
        await self.pc.setRemoteDescription(RTCSessionDescription(self.answer.body, "answer"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self.location is not None:
            with contextlib.suppress(aiohttp.ClientError):
                async with aiohttp.ClientSession() as http:
                    await http.delete(self.base_url + self.location)
            self.location = None
        await self.pc.close()


@dataclass(slots=True)
class ViewerStats:
    frames: int = 0
    keyframes: int = 0
    bytes: int = 0
    first_frame_at: float | None = None
    audio_packets: int = 0
    latencies_ms: list[float] = field(default_factory=list)


class WhepViewer:
    """A WHEP viewer counting the coded frames it gets (and decoding them if ``read_clock``)."""

    def __init__(self, base_url: str, channel: str, rendition: str | None = None, *,
                 read_clock: bool = False, audio: bool = True) -> None:
        self.base_url = base_url
        self.url = f"{base_url}/whep/{channel}" + (f"/{rendition}" if rendition else "")
        self.read_clock = read_clock
        self.audio = audio
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.stats = ViewerStats()
        self.location: str | None = None
        self.answer: HttpAnswer | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self, http: aiohttp.ClientSession | None = None) -> HttpAnswer:
        """POST the offer; on 201 the viewer runs until ``close``. Returns the HTTP answer."""
        self.pc.addTransceiver("video", direction="recvonly")
        if self.audio:
            self.pc.addTransceiver("audio", direction="recvonly")
        await self.pc.setLocalDescription(await self.pc.createOffer())
        if http is None:
            async with aiohttp.ClientSession() as own:
                answer = await post_offer(own, self.url, self.pc.localDescription.sdp)
        else:
            answer = await post_offer(http, self.url, self.pc.localDescription.sdp)
        self.answer = answer
        if answer.status != 201:
            await self.pc.close()
            return answer
        self.location = answer.location
        await self.pc.setRemoteDescription(RTCSessionDescription(answer.body, "answer"))
        loop = asyncio.get_running_loop()
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio" or not self.read_clock:
                passthrough.register(transceiver.receiver.track)  # before aiortc starts receiving
            self._tasks.append(loop.create_task(self._count(transceiver.receiver.track)))
        return answer

    async def _count(self, track: MediaStreamTrack) -> None:
        stats = self.stats
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if track.kind == "audio":
                    stats.audio_packets += 1
                    continue
                now = time.time()
                if stats.first_frame_at is None:
                    stats.first_frame_at = now
                stats.frames += 1
                if isinstance(frame, av.VideoFrame):
                    ms = clockcode.read(frame.to_ndarray(format="gray"))
                    if ms is not None:
                        stats.latencies_ms.append(now * 1000 - ms)
                else:
                    data = bytes(frame.data)  # type: ignore[attr-defined]
                    stats.bytes += len(data)
                    stats.keyframes += b"\x00\x00\x01\x65" in data or b"\x00\x00\x01\x25" in data

    async def close(self, http: aiohttp.ClientSession | None = None) -> None:
        for task in self._tasks:
            task.cancel()
        if self.location is not None:
            with contextlib.suppress(aiohttp.ClientError):
                if http is None:
                    async with aiohttp.ClientSession() as own:
                        await own.delete(self.base_url + self.location)
                else:
                    await http.delete(self.base_url + self.location)
            self.location = None
        await self.pc.close()

"""Which channels are live right now, who publishes them, and how healthy each stream is.

Every ingest protocol claims a channel here before it accepts media, so "one publisher per
channel" holds across RTMP, SRT and WHIP. Consumers (the transcoder, the status API) read
from it; nothing in it touches a socket.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig

#: Ends one publication at once (the ingest closes that publisher's connection); gets a reason.
StopPublisher = Callable[[str], None]

#: How far back the bitrate and frame-rate estimates look.
HEALTH_WINDOW_S = 5.0

#: The ingest protocol a stream arrived by, as ``/api/v1/streams`` reports it.
IngestProtocol = Literal["rtmp", "srt", "whip"]
#: The same, as values (``claim`` refuses any other).
INGEST_PROTOCOLS: tuple[str, ...] = get_args(IngestProtocol)

StreamListener = Callable[["LiveStream", "AccessUnit | VideoConfig | AudioConfig | None"], None]


class ChannelBusy(Exception):
    """Another publisher already holds this channel."""


@dataclass(frozen=True, slots=True)
class TranscodeStatus:
    """What the media pipeline reports about one stream's transcoding and packaging."""

    state: str
    encoder: str | None
    encoder_hardware: bool
    encoder_reason: str | None
    restarts: int
    renditions: tuple[str, ...]
    retired: dict[str, str]
    delay_p50_ms: float | None
    delay_p95_ms: float | None
    frames_dropped_late: int
    shed: tuple[str, ...]
    parts_published: int
    failure: str | None
    #: the real-time guard's state now: the encoder preset and each encoded rung's frame rate
    preset: str | None = None
    rung_fps: dict[str, float] = field(default_factory=dict)
    #: advertised renditions without media for good (listed as EXT-X-GAP), and why
    gaps: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamHealth:
    """What `/api/v1/streams` shows for one live stream: public, so never who publishes it.

    The publisher's address stays in ``LiveStream.remote`` (logs, the channel owner's view).
    """

    channel: str
    protocol: IngestProtocol
    video_codec: str | None
    audio_codec: str | None
    width: int | None
    height: int | None
    fps: float
    bitrate_kbps: float
    uptime_s: float
    video_frames: int
    audio_frames: int
    keyframes: int
    transcode: TranscodeStatus | None = None  # once the media pipeline runs


@dataclass(eq=False, slots=True)
class LiveStream:
    """One live publication of a channel, from publish to teardown."""

    channel: str
    protocol: IngestProtocol
    remote: str
    started_at: float = field(default_factory=time.monotonic)
    video: VideoConfig | None = None
    audio: AudioConfig | None = None
    video_frames: int = 0
    audio_frames: int = 0
    keyframes: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Set by the media pipeline: returns its status for the streams API.
    transcode: Callable[[], TranscodeStatus] | None = None
    #: Set by the ingest that claimed the channel: cuts this publisher (``LiveStreamRegistry.stop``).
    stop_publisher: StopPublisher | None = None
    _recent: deque[tuple[float, int, bool]] = field(default_factory=deque)
    _listeners: list[StreamListener] = field(default_factory=list)

    def set_video_config(self, config: VideoConfig) -> None:
        self.video = config
        self._notify(config)

    def set_audio_config(self, config: AudioConfig) -> None:
        self.audio = config
        self._notify(config)

    def push(self, unit: AccessUnit, now: float | None = None) -> None:
        """Account for one access unit and hand it to every listener."""
        now = time.monotonic() if now is None else now
        is_video = unit.kind is TrackKind.VIDEO
        if is_video:
            self.video_frames += 1
            self.keyframes += unit.keyframe
        else:
            self.audio_frames += 1
        recent = self._recent
        recent.append((now, len(unit.data), is_video))
        horizon = now - HEALTH_WINDOW_S
        while recent and recent[0][0] < horizon:
            recent.popleft()
        self._notify(unit)

    def subscribe(self, listener: StreamListener) -> Callable[[], None]:
        """Call ``listener(stream, item)`` for every config and unit; ``item`` None means ended."""
        self._listeners.append(listener)
        if self.video is not None:
            listener(self, self.video)
        if self.audio is not None:
            listener(self, self.audio)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _notify(self, item: AccessUnit | VideoConfig | AudioConfig | None) -> None:
        for listener in tuple(self._listeners):
            listener(self, item)

    def health(self, now: float | None = None) -> StreamHealth:
        now = time.monotonic() if now is None else now
        uptime = max(now - self.started_at, 0.0)
        span = min(uptime, HEALTH_WINDOW_S)
        horizon = now - HEALTH_WINDOW_S
        in_window = [r for r in self._recent if r[0] >= horizon]
        total_bytes = sum(size for _, size, _ in in_window)
        video_count = sum(1 for _, _, is_video in in_window if is_video)
        return StreamHealth(
            channel=self.channel,
            protocol=self.protocol,
            video_codec=self.video.codec if self.video else None,
            audio_codec=self.audio.codec if self.audio else None,
            width=self.video.width if self.video else None,
            height=self.video.height if self.video else None,
            fps=round(video_count / span, 2) if span > 0 else 0.0,
            bitrate_kbps=round(total_bytes * 8 / span / 1000, 1) if span > 0 else 0.0,
            uptime_s=round(uptime, 3),
            video_frames=self.video_frames,
            audio_frames=self.audio_frames,
            keyframes=self.keyframes,
            transcode=self.transcode() if self.transcode is not None else None,
        )


class LiveStreamRegistry:
    """The set of live streams, keyed by channel name."""

    def __init__(self) -> None:
        self._streams: dict[str, LiveStream] = {}
        self._on_start: list[Callable[[LiveStream], None]] = []

    def claim(self, channel: str, protocol: IngestProtocol, remote: str,
              stop_publisher: StopPublisher | None = None) -> LiveStream:
        """Make ``channel`` live for this publisher, or raise ChannelBusy.

        ``stop_publisher(reason)`` is how ``stop`` cuts this publisher later (key rotation, the
        owner's stop); an ingest that passes none cannot be stopped from outside.
        """
        if protocol not in INGEST_PROTOCOLS:
            raise ValueError(f"unknown ingest protocol {protocol!r}: add it to IngestProtocol")
        if channel in self._streams:
            raise ChannelBusy(channel)
        stream = LiveStream(channel=channel, protocol=protocol, remote=remote,
                            stop_publisher=stop_publisher)
        self._streams[channel] = stream
        for hook in tuple(self._on_start):
            hook(stream)
        return stream

    def release(self, stream: LiveStream) -> None:
        """End the stream (idempotent); listeners get a final ``None``."""
        if self._streams.get(stream.channel) is stream:
            del self._streams[stream.channel]
            stream._notify(None)

    def stop(self, channel: str, reason: str) -> bool:
        """End ``channel``'s live publication now: cut its publisher, then release the stream.

        Answers whether a stream was live. The release happens here, not when the publisher's
        connection winds down, so the channel is off air when this returns.
        """
        stream = self._streams.get(channel)
        if stream is None:
            return False
        if stream.stop_publisher is not None:
            stream.stop_publisher(reason)
        self.release(stream)
        return True

    def on_stream_start(self, hook: Callable[[LiveStream], None]) -> None:
        self._on_start.append(hook)

    def get(self, channel: str) -> LiveStream | None:
        return self._streams.get(channel)

    def __iter__(self) -> Iterator[LiveStream]:
        return iter(tuple(self._streams.values()))

    def __len__(self) -> int:
        return len(self._streams)

"""The media path of one live stream: ingest registry -> transcode worker -> packager -> origin.

``LiveMediaPaths`` watches the live-stream registry. For every stream that goes live it runs a
``StreamMediaPath``: a transcode worker process (``TranscodeSupervisor``) fed the ingest's
access units, and a ``LadderPackager`` (one ``Segmenter`` per encoded rung, video muxed with
the shared AAC track, so a player needs one playlist per quality) writing to the origin store as
its ``PartSink``. A rung whose packaging fails is retired with a logged reason; the stream and
its other rungs go on. On an ingest node the packager pushes to remote origins instead
(``live.package.push``), or as well. Taps (``LiveMediaPaths.tap``) see the same transcoder events beside the
packager, configurations first, so WHEP forwards the encoded ladder without touching the segmenter.

Each stream writes to the origin through its own ``StreamSink``: when a publisher reconnects,
the new stream opens the channel afresh while the old one may still be flushing, and the old
one's last parts and its end must not land in (or end) the new stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from live.ingest.registry import LiveStream, LiveStreamRegistry, TranscodeStatus
from live.media.avc import AvcError, parse_avc_record, parse_sps
from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig
from live.origin.store import ChannelState, OriginStore
from live.package.ladder_packager import LadderPackager, PackagingSettings
from live.package.parts import InitSegment, Part
from live.package.push import CmafPush
from live.package.sink import PartSink, TeeSink
from live.package.timing import ChannelTiming
from live.transcode.events import RenditionConfig
from live.transcode.supervisor import (
    SupervisorSettings,
    TranscodeSupervisor,
    WorkerRestarted,
)

log = logging.getLogger("live.mediapath")

#: Called with every transcoder event of a stream, then None when the stream has ended.
EventTap = Callable[[object], None]

#: Access units held while the stream's configuration is still unknown (about 4 s at 30 fps).
MAX_PRESTART_UNITS = 240


@dataclass(frozen=True, slots=True)
class MediaPathSettings:
    packaging: PackagingSettings = field(default_factory=PackagingSettings)
    supervisor: SupervisorSettings = field(default_factory=SupervisorSettings)


def source_frame_rate(stream: LiveStream, video: VideoConfig) -> float:
    """The publisher's frame rate: onMetaData first, then the SPS timing info, else 30."""
    for key in ("framerate", "fps", "videoframerate"):
        value = stream.metadata.get(key)
        if isinstance(value, int | float) and 1 <= value <= 240:
            return float(value)
    if video.codec == "h264":
        with contextlib.suppress(AvcError, IndexError):
            sps = parse_sps(parse_avc_record(video.record).sps[0])
            if sps.frame_rate and 1 <= sps.frame_rate <= 240:
                return float(sps.frame_rate)
    return 30.0


class StreamSink:
    """The origin as the ``PartSink`` of one stream of a channel, which it opens: once a newer
    stream opened the channel, what this one still publishes, drops or ends goes nowhere."""

    def __init__(self, origin: OriginStore, channel: str, timing: ChannelTiming) -> None:
        self.origin = origin
        self.channel = channel
        self.state: ChannelState = origin.open(channel, timing)

    @property
    def current(self) -> bool:
        return self.origin.channel(self.channel) is self.state

    def publish_init(self, channel: str, init: InitSegment, timing: ChannelTiming) -> None:
        if self.current:
            self.origin.publish_init(channel, init, timing)

    def publish_part(self, channel: str, part: Part) -> None:
        if self.current:
            self.origin.publish_part(channel, part)

    def drop_rendition(self, channel: str, rendition: str) -> None:
        if self.current:
            self.origin.drop_rendition(channel, rendition)

    def end(self, channel: str) -> None:
        if self.current:
            self.origin.end(channel)


class StreamMediaPath:
    """Transcode and package one live stream into the origin."""

    def __init__(self, stream: LiveStream, origin: OriginStore | None, settings: MediaPathSettings,
                 recorder: PartSink | None = None, push: CmafPush | None = None) -> None:
        self.stream = stream
        self.origin = origin
        self.recorder = recorder
        self.push = push
        self.settings = settings
        self.channel = stream.channel
        self.supervisor: TranscodeSupervisor | None = None
        self._video: VideoConfig | None = None
        self._audio: AudioConfig | None = None
        self._prestart: deque[AccessUnit] = deque()
        self._ended = asyncio.Event()
        self.packager: LadderPackager | None = None
        self.sink: StreamSink | None = None
        self._task: asyncio.Task[None] | None = None
        self.failure = ""
        self._configs: dict[str, RenditionConfig] = {}
        self._taps: list[EventTap] = []

    @property
    def ended(self) -> bool:
        """The publisher is gone (or a newer stream of the channel replaced this one)."""
        return self._ended.is_set()

    # -- ingest side (called synchronously by the RTMP session) --------------------------------

    def on_item(self, _: LiveStream, item: AccessUnit | VideoConfig | AudioConfig | None) -> None:
        if item is None:
            self._ended.set()
        elif isinstance(item, AccessUnit):
            if item.kind is TrackKind.AUDIO and self._task is not None and self._audio is None:
                return  # audio that began after the transcoder started without it: no track for it
            if self.supervisor is not None:
                self.supervisor.submit(item)
            else:
                self._hold(item)
        elif isinstance(item, VideoConfig):
            if self._video is not None and self._video != item:
                log.warning("%s: video configuration changed mid-stream; keeping the first",
                            self.channel)
            self._video = self._video or item
        elif isinstance(item, AudioConfig):
            self._audio = self._audio or item

    def _hold(self, unit: AccessUnit) -> None:
        if not self._prestart and not (unit.kind is TrackKind.VIDEO and unit.keyframe):
            return  # nothing before the first keyframe can be decoded
        self._prestart.append(unit)
        if len(self._prestart) > MAX_PRESTART_UNITS:
            self._prestart.popleft()
        if self._task is None and self._video is not None and unit.kind is TrackKind.VIDEO:
            self._task = asyncio.get_running_loop().create_task(self._run())

    # -- output side --------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._video is not None
        video = self._video
        fps = source_frame_rate(self.stream, video)
        sinks: list[PartSink] = []
        start_msn = 0
        if self.origin is not None:  # the local origin first: what it refuses goes nowhere else
            self.sink = StreamSink(self.origin, self.channel, self.settings.packaging.timing)
            sinks.append(self.sink)
        elif self.push is not None:
            # an ingest-only node: if the origins carry this channel live (its publisher came
            # from another, dead ingest node), the stream continues their playlists
            start_msn = await self.push.resume_point(self.channel)
            if start_msn:
                log.info("%s: continuing the origins' stream at segment %d", self.channel, start_msn)
        if self.push is not None:
            sinks.append(self.push.stream(self.channel, start_msn))
        if self.recorder is not None:
            sinks.append(self.recorder)
        sink: PartSink = sinks[0] if len(sinks) == 1 else TeeSink(*sinks)
        self.packager = LadderPackager(self.channel, sink, self.settings.packaging,
                                       source_has_audio=self._audio is not None,
                                       start_msn=start_msn)
        supervisor = TranscodeSupervisor(
            self.channel, video, fps, audio=self._audio, settings=self.settings.supervisor
        )
        try:
            await supervisor.start()
            self.supervisor = supervisor
            held, self._prestart = self._prestart, deque()
            for unit in held:
                supervisor.submit(unit)
            self.stream.transcode = self.status
            log.info("%s: transcoding at %.2f fps", self.channel, fps)
            ender = asyncio.get_running_loop().create_task(self._close_on_end(supervisor))
            try:
                async for event in supervisor.events():
                    self._on_event(event)
            finally:
                ender.cancel()
        except Exception as exc:  # a bug or a worker that could not start: stop this stream only
            self.failure = f"{type(exc).__name__}: {exc}"
            log.exception("%s: media path failed", self.channel)
        finally:
            await supervisor.close()
            self._finish()

    async def _close_on_end(self, supervisor: TranscodeSupervisor) -> None:
        await self._ended.wait()
        await supervisor.close()

    def _on_event(self, event: object) -> None:
        if isinstance(event, WorkerRestarted):
            log.warning("%s: transcode worker restarted (pid %d): %s",
                        self.channel, event.pid, event.reason)
            return
        if self.packager is not None:
            self.packager.handle(event)
        if isinstance(event, RenditionConfig):
            self._configs[event.rendition] = event
        for tap in tuple(self._taps):
            tap(event)

    def add_tap(self, tap: EventTap) -> Callable[[], None]:
        """Also send every transcoder event to ``tap`` (the configurations so far at once)."""
        for config in tuple(self._configs.values()):
            tap(config)
        self._taps.append(tap)
        return lambda: self._taps.remove(tap) if tap in self._taps else None

    def _finish(self) -> None:
        for tap in tuple(self._taps):
            tap(None)
        self._taps.clear()
        if self.packager is not None:
            self.packager.finish()  # through its StreamSink: a newer stream is never ended
        log.info("%s: stream ended (%d parts published)", self.channel, self.parts_published)

    @property
    def parts_published(self) -> int:
        return self.packager.parts_published if self.packager is not None else 0

    def status(self) -> TranscodeStatus:
        """What `/api/v1/streams` shows about this stream's transcoding."""
        metrics = self.supervisor.metrics() if self.supervisor is not None else None
        encoder = metrics.encoder if metrics is not None else None
        worker = metrics.worker if metrics is not None else None
        return TranscodeStatus(
            state=metrics.state if metrics is not None else "starting",
            encoder=encoder.name if encoder is not None else None,
            encoder_hardware=bool(encoder is not None and encoder.hardware),
            encoder_reason=encoder.reason if encoder is not None else None,
            restarts=metrics.restarts if metrics is not None else 0,
            renditions=self.packager.active if self.packager is not None else (),
            retired=self.packager.retired if self.packager is not None else {},
            delay_p50_ms=worker.delay_p50_ms if worker is not None else None,
            delay_p95_ms=worker.delay_p95_ms if worker is not None else None,
            frames_dropped_late=worker.frames_dropped_late if worker is not None else 0,
            shed=tuple(f"{s.step}:{s.detail}" for s in worker.shed) if worker is not None else (),
            parts_published=self.parts_published,
            failure=self.failure or None,
            preset=(worker.preset or None) if worker is not None else None,
            rung_fps={name: round(fps, 3) for name, fps in worker.rung_fps} if worker is not None else {},
            gaps=self.packager.gaps if self.packager is not None else {},
        )

    async def wait(self) -> None:
        if self._task is not None:
            await self._task


class LiveMediaPaths:
    """Start a StreamMediaPath for every stream that goes live; stop them all on close."""

    def __init__(self, registry: LiveStreamRegistry, origin: OriginStore | None,
                 settings: MediaPathSettings | None = None, *, recorder: PartSink | None = None,
                 push: CmafPush | None = None) -> None:
        if origin is None and push is None:
            raise ValueError("a media path needs a local origin, a push to origins, or both")
        self.origin = origin  # None on an ingest-only node
        self.recorder = recorder  # also gets every packaged part (the DVR), after the origin
        self.push = push  # CMAF push to remote origins (DASH-IF ingest), after the local origin
        self.settings = settings or MediaPathSettings()
        self.by_channel: dict[str, StreamMediaPath] = {}
        registry.on_stream_start(self._on_start)

    def tap(self, channel: str, tap: EventTap) -> Callable[[], None] | None:
        """``StreamMediaPath.add_tap`` on the channel's live path; None when it is not live."""
        path = self.by_channel.get(channel)
        if path is None or path.ended:
            return None
        return path.add_tap(tap)

    def _on_start(self, stream: LiveStream) -> None:
        path = StreamMediaPath(stream, self.origin, self.settings, self.recorder, self.push)
        previous = self.by_channel.get(stream.channel)
        if previous is not None:
            previous._ended.set()
        self.by_channel[stream.channel] = path
        stream.subscribe(path.on_item)

    async def close(self, timeout_s: float = 15.0) -> None:
        for path in self.by_channel.values():
            path._ended.set()
        tasks = [p.wait() for p in self.by_channel.values()]
        if tasks:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await asyncio.gather(*tasks, return_exceptions=True)


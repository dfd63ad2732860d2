"""Package a transcoder's renditions into one channel's CMAF output, live or from a file.

The transcoder emits per-rendition events (``live.transcode.events``): a configuration, then
access units, perhaps a retirement. ``LadderPackager`` turns them into init segments and parts
through one ``Segmenter`` per video rung, each muxing the shared audio track, and writes them to
a ``PartSink`` (``sink``): the origin store for a live stream or ``live transcode``, a remote
origin or a DVR store later, with no change here. A rung is configured once both its and the
audio's configurations are known, so every rung's init segment carries both tracks. A rung
whose packaging fails is retired with a logged reason; the stream and its other rungs go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig
from live.package.segmenter import Segmenter, SegmenterError, SegmenterSettings
from live.package.sink import PartSink, PublishError
from live.package.timing import ChannelTiming
from live.transcode.events import RenditionConfig, RenditionDropped, RenditionUnit

log = logging.getLogger(__name__)

AUDIO_OVERHEAD = 1.1  # BANDWIDTH is a peak: leave room above the nominal bitrates


@dataclass(frozen=True, slots=True)
class PackagingSettings:
    """The part and segment targets every rung is cut to; the channel's timing follows."""

    # ms timestamps make 10 frames at 30 fps span 333-334 ms: 0.334 s keeps them in one part
    part_target_s: float = 0.334
    segment_target_s: float = 2.0

    @property
    def timing(self) -> ChannelTiming:
        return ChannelTiming(
            target_duration_s=round(self.segment_target_s),
            part_target_s=self.part_target_s,
        )

    @property
    def segmenter(self) -> SegmenterSettings:
        return SegmenterSettings(part_target_s=self.part_target_s,
                                 segment_target_s=self.segment_target_s)


def rung_bandwidth(video: VideoConfig, video_kbps: int | None, audio_kbps: int) -> int:
    """BANDWIDTH (bits/s) of a rung muxed with the audio: the nominal bitrates (the video's
    estimated from its size when the ladder names none) plus headroom for the peak."""
    video_kbps = video_kbps or max(video.width * video.height // 300, 300)
    return int((video_kbps + audio_kbps) * 1000 * AUDIO_OVERHEAD)


@dataclass(slots=True)
class _Rung:
    name: str
    config: VideoConfig
    bitrate_kbps: int | None
    frame_rate: float | None
    segmenter: Segmenter | None = None
    retired: str = ""


class LadderPackager:
    """One channel's renditions, from transcoder events to a ``PartSink``."""

    def __init__(self, channel: str, sink: PartSink, settings: PackagingSettings,
                 *, source_has_audio: bool) -> None:
        self.channel = channel
        self.sink = sink
        self.settings = settings
        self.timing = settings.timing
        self.source_has_audio = source_has_audio
        self.rungs: dict[str, _Rung] = {}
        self.audio_rendition: RenditionConfig | None = None
        self.parts_published = 0

    def handle(self, event: object) -> None:
        if isinstance(event, RenditionUnit):
            self._on_unit(event)
        elif isinstance(event, RenditionConfig):
            self._on_config(event)
        elif isinstance(event, RenditionDropped):
            rung = self.rungs.get(event.rendition)
            if rung is not None:
                self._retire(rung, f"transcoder dropped it: {event.reason}")

    def _on_config(self, event: RenditionConfig) -> None:
        if isinstance(event.config, AudioConfig):
            if self.audio_rendition is None:
                self.audio_rendition = event
            elif self.audio_rendition.config != event.config:
                log.warning("%s: a restarted worker produced a different audio configuration; "
                            "the renditions keep the first", self.channel)
            self._configure_ready()
            return
        existing = self.rungs.get(event.rendition)
        if existing is not None:
            if existing.config != event.config:
                log.warning("%s/%s: a restarted worker produced a different configuration; "
                            "the rung keeps its first init segment", self.channel, event.rendition)
            return
        self.rungs[event.rendition] = _Rung(
            event.rendition, event.config, event.bitrate_kbps, event.frame_rate
        )
        self._configure_ready()

    def _configure_ready(self) -> None:
        if self.source_has_audio and self.audio_rendition is None:
            return
        audio_config = self.audio_rendition.config if self.audio_rendition else None
        assert audio_config is None or isinstance(audio_config, AudioConfig)
        audio_kbps = (self.audio_rendition.bitrate_kbps or 128) if self.audio_rendition else 0
        for rung in self.rungs.values():
            if rung.segmenter is not None or rung.retired:
                continue
            bandwidth = rung_bandwidth(rung.config, rung.bitrate_kbps, audio_kbps)
            segmenter = Segmenter(rung.name, self.settings.segmenter)
            try:
                init = segmenter.configure(rung.config, audio_config, bandwidth=bandwidth,
                                           frame_rate=rung.frame_rate)
                self.sink.publish_init(self.channel, init, self.timing)
            except (SegmenterError, PublishError, ValueError) as exc:
                self._retire(rung, f"cannot package: {exc}")
                continue
            rung.segmenter = segmenter

    def _on_unit(self, event: RenditionUnit) -> None:
        unit = event.unit
        if unit.kind is TrackKind.AUDIO:
            for each in self.rungs.values():
                if each.segmenter is not None:
                    self._push(each, unit)
            return
        rung = self.rungs.get(event.rendition)
        if rung is not None and rung.segmenter is not None:
            self._push(rung, unit)

    def _push(self, rung: _Rung, unit: AccessUnit) -> None:
        assert rung.segmenter is not None
        try:
            for part in rung.segmenter.push(unit):
                self.sink.publish_part(self.channel, part)
                self.parts_published += 1
        except (SegmenterError, PublishError) as exc:
            self._retire(rung, f"packaging failed: {exc}")

    def _retire(self, rung: _Rung, reason: str) -> None:
        if not rung.retired:
            rung.retired = reason
            rung.segmenter = None
            self.sink.drop_rendition(self.channel, rung.name)
            log.warning("%s/%s: rendition retired: %s", self.channel, rung.name, reason)

    def finish(self) -> None:
        """End of stream: flush every segmenter and end the channel at the sink."""
        for rung in self.rungs.values():
            if rung.segmenter is None:
                continue
            try:
                for part in rung.segmenter.flush():
                    self.sink.publish_part(self.channel, part)
                    self.parts_published += 1
            except (SegmenterError, PublishError) as exc:
                self._retire(rung, f"flush failed: {exc}")
        self.sink.end(self.channel)

    @property
    def active(self) -> tuple[str, ...]:
        return tuple(sorted(r.name for r in self.rungs.values() if not r.retired))

    @property
    def retired(self) -> dict[str, str]:
        return {r.name: r.retired for r in self.rungs.values() if r.retired}

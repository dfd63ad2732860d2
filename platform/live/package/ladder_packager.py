"""Package a transcoder's renditions into one channel's CMAF output, live or from a file.

The transcoder emits per-rendition events (``live.transcode.events``): a configuration, then
access units, perhaps a retirement. ``LadderPackager`` turns them into init segments and parts
through one ``Segmenter`` per video rung, each muxing the shared audio track, and writes them to
a ``PartSink`` (``sink``): the origin store for a live stream or ``live transcode``, a remote
origin or a DVR store later, with no change here. A rung is configured once both its and the
audio's configurations are known, so every rung's init segment carries both tracks.

A rendition advertised in the multivariant playlist answers for the life of the stream:

- the publisher's own (passthrough) rendition is cut at its keyframes, which need not fall on
  the ladder's segment grid. The packager holds the channel back (no init is published, so
  the origin lists nothing) while ``KeyframeProbe`` measures the publisher's keyframe
  interval; then, once, it fixes the channel's TARGETDURATION to cover it and advertises the
  passthrough rendition, or leaves it out when its keyframes are too rare;
- a keyframe later than that, or a rung the transcoder stops for good (the real-time guard's
  last resort), becomes gap parts and EXT-X-GAP segments (RFC 8216bis 4.4.4.7), timed by the
  other renditions' units, so players switch away without an error.

A rung whose packaging fails all the same (a bug) is retired with a logged reason; the stream
and its other rungs go on.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig
from live.package.keyframes import KeyframeProbe, KeyframeVerdict
from live.package.parts import Part
from live.package.segmenter import SegmentCut, Segmenter, SegmenterError, SegmenterSettings
from live.package.sink import PartSink, PublishError
from live.package.timing import ChannelTiming
from live.transcode.events import RenditionConfig, RenditionDropped, RenditionUnit

log = logging.getLogger(__name__)

AUDIO_OVERHEAD = 1.1  # BANDWIDTH is a peak: leave room above the nominal bitrates
#: Slack RFC 8216bis 4.4.3.1 allows over TARGETDURATION: durations are compared once rounded.
_ROUNDING_SLACK_S = 0.499
#: Transcoder events held while the publisher's keyframes are measured (about 12 s of a full ladder).
_MAX_HELD_EVENTS = 4096


@dataclass(frozen=True, slots=True)
class PackagingSettings:
    """The part and segment targets every rung is cut to; the channel's timing follows."""

    # Glass-to-glass is at least PART-HOLD-BACK (3 part targets, RFC 8216bis 4.4.3.8) plus the
    # path to the origin, so parts of 0.2 s make a viewer 0.4 s closer to live than 1/3 s did.
    # ms timestamps make 6 frames at 29.97 or 59.94 fps span 200-201 ms: 0.201 s keeps them
    # in one part (at 25, 30, 50 and 60 fps they span exactly 200 ms).
    part_target_s: float = 0.201
    segment_target_s: float = 2.0
    #: Keyframe intervals of the publisher measured before its passthrough rendition is advertised
    source_intervals_measured: int = 2
    #: A passthrough rendition whose keyframes come rarer than this is not advertised
    max_source_keyframe_interval_s: float = 6.0

    @property
    def timing(self) -> ChannelTiming:
        """The channel's timing when no passthrough rendition needs longer segments."""
        return self.timing_for(None)

    def timing_for(self, source_keyframe_interval_s: float | None) -> ChannelTiming:
        """TARGETDURATION covers the segment target and the publisher's longest keyframe interval."""
        target = round(self.segment_target_s)
        if source_keyframe_interval_s is not None:
            target = max(target, math.ceil(source_keyframe_interval_s - 0.001))
        return ChannelTiming(target_duration_s=target, part_target_s=self.part_target_s)

    @property
    def segmenter(self) -> SegmenterSettings:
        return self.segmenter_for(self.timing)

    def segmenter_for(self, timing: ChannelTiming,
                      source_keyframe_interval_s: float | None = None) -> SegmenterSettings:
        """A transcoded rung's segmenter (cut on the grid), or with a measured keyframe interval
        the passthrough rendition's (cut at the publisher's keyframes); both bounded by
        TARGETDURATION."""
        max_segment_s = timing.target_duration_s + _ROUNDING_SLACK_S
        if source_keyframe_interval_s is None:
            return SegmenterSettings(part_target_s=self.part_target_s,
                                     segment_target_s=self.segment_target_s,
                                     max_segment_s=max_segment_s)
        return SegmenterSettings(part_target_s=self.part_target_s,
                                 segment_target_s=self.segment_target_s,
                                 cut=SegmentCut.KEYFRAMES,
                                 keyframe_interval_s=source_keyframe_interval_s,
                                 max_segment_s=max_segment_s)


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
    passthrough: bool = False
    segmenter: Segmenter | None = None
    retired: str = ""
    gap: str = ""  # why it is in a gap for good (its encoder stopped); cleared if units return


class LadderPackager:
    """One channel's renditions, from transcoder events to a ``PartSink``."""

    def __init__(self, channel: str, sink: PartSink, settings: PackagingSettings,
                 *, source_has_audio: bool, start_msn: int = 0) -> None:
        self.channel = channel
        self.start_msn = start_msn  # every rung's first segment number (a resumed stream)
        self.sink = sink
        self.settings = settings
        self.timing = settings.timing  # fixed once the publisher's keyframes were measured
        self._source_interval: float | None = None
        self._passthrough_name: str | None = None
        self.source_has_audio = source_has_audio
        self.rungs: dict[str, _Rung] = {}
        self.audio_rendition: RenditionConfig | None = None
        self.parts_published = 0
        self.source_verdict: KeyframeVerdict | None = None
        self._probe = KeyframeProbe(intervals=settings.source_intervals_measured,
                                    max_interval_s=settings.max_source_keyframe_interval_s)
        self._held: deque[object] | None = deque()  # events held until the verdict; then None

    def handle(self, event: object) -> None:
        held = self._held
        if held is not None:
            held.append(event)
            if self._verdict_reached(event) or len(held) > _MAX_HELD_EVENTS:
                self._decide()
            return
        self._dispatch(event)

    def _dispatch(self, event: object) -> None:
        if isinstance(event, RenditionUnit):
            self._on_unit(event)
        elif isinstance(event, RenditionConfig):
            self._on_config(event)
        elif isinstance(event, RenditionDropped):
            rung = self.rungs.get(event.rendition)
            if rung is not None:
                self._stop(rung, event.reason)

    # -- the decision before anything is advertised ----------------------------------------------

    def _verdict_reached(self, event: object) -> bool:
        """Whether the channel's timing can be fixed now (the held events then go out)."""
        if isinstance(event, RenditionConfig):
            if event.passthrough:
                self._passthrough_name = event.rendition
            return False
        if not isinstance(event, RenditionUnit):
            return False
        if self._passthrough_name is None:
            return True  # no passthrough rendition: the ladder's own timing, at once
        if event.rendition != self._passthrough_name:
            return False
        return self._probe.observe(event.unit) is not None

    def _decide(self) -> None:
        held, self._held = self._held, None
        interval: float | None = None
        if self._passthrough_name is not None:
            verdict = self.source_verdict = self._probe.conclude()
            if verdict.advertise:
                interval = verdict.interval_s
                log.info("%s/%s: advertised, cut at its own keyframes (%s)",
                         self.channel, self._passthrough_name, verdict.reason)
            else:
                log.warning("%s/%s: not advertised: %s", self.channel, self._passthrough_name,
                            verdict.reason)
        self.timing = self.settings.timing_for(interval)
        self._source_interval = interval
        for event in held or ():
            self._dispatch(event)

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
            if existing.config != event.config and not existing.retired:
                log.warning("%s/%s: a restarted worker produced a different configuration; "
                            "the rung keeps its first init segment", self.channel, event.rendition)
            return
        rung = self.rungs[event.rendition] = _Rung(
            event.rendition, event.config, event.bitrate_kbps, event.frame_rate, event.passthrough
        )
        verdict = self.source_verdict
        if rung.passthrough and verdict is not None and not verdict.advertise:
            rung.retired = f"not advertised: {verdict.reason}"
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
            interval = self._source_interval if rung.passthrough else None
            segmenter = Segmenter(rung.name, self.settings.segmenter_for(self.timing, interval),
                                  start_msn=self.start_msn)
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
        else:
            rung = self.rungs.get(event.rendition)
            if rung is not None and rung.segmenter is not None:
                if rung.gap:
                    log.info("%s/%s: frames again after its gap", self.channel, rung.name)
                    rung.gap = ""
                self._push(rung, unit)
        for each in self.rungs.values():  # the other renditions' media time moves gaps on
            if each.gap and each.segmenter is not None and each.name != event.rendition:
                self._publish(each, lambda segmenter: segmenter.extend_gap(unit))

    def _push(self, rung: _Rung, unit: AccessUnit) -> None:
        self._publish(rung, lambda segmenter: segmenter.push(unit))

    def _publish(self, rung: _Rung, step: Callable[[Segmenter], list[Part]]) -> None:
        assert rung.segmenter is not None
        try:
            for part in step(rung.segmenter):
                self.sink.publish_part(self.channel, part)
                self.parts_published += 1
        except (SegmenterError, PublishError) as exc:
            self._retire(rung, f"packaging failed: {exc}")

    def _stop(self, rung: _Rung, reason: str) -> None:
        """The transcoder stopped this rung for good: it stays advertised, as gap segments."""
        if rung.retired or rung.gap:
            return
        rung.gap = f"transcoder stopped it: {reason}"
        log.warning("%s/%s: rendition continues as gaps: %s", self.channel, rung.name, rung.gap)
        if rung.segmenter is not None:
            self._publish(rung, lambda segmenter: segmenter.begin_gap())

    def _retire(self, rung: _Rung, reason: str) -> None:
        if not rung.retired:
            rung.retired = reason
            rung.segmenter = None
            self.sink.drop_rendition(self.channel, rung.name)
            log.warning("%s/%s: rendition retired: %s", self.channel, rung.name, reason)

    def finish(self) -> None:
        """End of stream: flush every segmenter and end the channel at the sink."""
        if self._held is not None:
            self._decide()
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

    @property
    def gaps(self) -> dict[str, str]:
        """Advertised renditions with no media for good, listed as gaps: why."""
        return {r.name: r.gap for r in self.rungs.values() if r.gap and not r.retired}

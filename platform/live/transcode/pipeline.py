"""Decode once, scale once per rung, encode every rung: one live stream's transcode.

``TranscodePipeline`` is the synchronous core a worker process drives (no I/O: access units in,
``TranscodeEvent``s out). Per source frame it decodes once (PyAV, the ``VideoConfig`` record as
extradata, AVCC packets), scales once per encoded rung straight from the decoded picture, and
encodes each rung. Outputs keep the source's presentation timestamps in milliseconds and carry
its capture and ingest wall-clocks; DTS equals PTS because no rung uses B-frames.

Segment alignment (ISO/IEC 23000-19 7.3.2, RFC 8216bis 4.4.4.2 for aligned variant switching):
the first frame whose PTS reaches each multiple of ``segment_s`` on the source timeline is
encoded as an IDR on every rung. Rungs at a reduced frame rate restart their decimation phase on
that frame, so it exists on every rung, and a restarted worker computes the same boundaries.

Real time: a frame older than ``GuardSettings.max_lag_s`` when its turn comes is not encoded
(skipped, counted; thinned to at most ``max_skip_s`` without a frame, so a player never meets a
hole in the timeline), and sustained overload degrades the ladder (``guard.py``): a faster preset
(every rung's encoder reopened at the next boundary IDR, with the same parameter sets), half the
top rung's frame rate, half every rung's, and only then the top rung stops (``RenditionDropped``;
the packager keeps it listed as gaps).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av
from av.audio.codeccontext import AudioCodecContext
from av.codec.context import CodecContext
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType, VideoFrame
from av.video.reformatter import Interpolation, VideoReformatter

from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig
from live.transcode.avc import config_from_global_header, packet_to_avcc
from live.transcode.decoders import DecoderChoice, open_decoder
from live.transcode.encoders import EncoderChoice, EncoderSettings, faster_preset, open_encoder
from live.transcode.events import RenditionConfig, RenditionDropped, RenditionUnit, TranscodeEvent
from live.transcode.guard import GuardSettings, RealtimeGuard, ShedStep
from live.transcode.ladder import AAC_LC, AudioPlan, Ladder, Rung

log = logging.getLogger(__name__)

AUDIO_RENDITION = "audio"
_MAX_INFLIGHT = 256  # frames between decode and the last rung's packet; far above any codec delay
_DELAY_SAMPLES = 3600  # delay percentiles cover the last two minutes at 30 fps
#: The guard never halves a rung below this: with late frames thinned to 0.1 s apart, a rung at
#: 10 fps or more never steps past a 0.2 s part target (a hole a player stalls at).
_MIN_FPS = 10.0


class TranscodeInputError(ValueError):
    """The publisher's stream cannot be decoded as configured (its fault, not ours)."""


@dataclass(frozen=True, slots=True)
class ShedRecord:
    step: str  # ShedStep value
    detail: str  # the new preset, the rung and its new frame-rate divisor, or the rung stopped
    at_pts_ms: int
    load: float  # work / media time of the window that triggered it


@dataclass(frozen=True, slots=True)
class TranscodeMetrics:
    encoder: EncoderChoice
    decoder: DecoderChoice
    frames_in: int
    frames_decoded: int
    frames_dropped_late: int
    decode_errors: int
    frames_encoded: tuple[tuple[str, int], ...]
    active_rungs: tuple[str, ...]
    fps_factor: int  # extra frame-rate divisor applied by the guard to every rung (1 = none)
    shed: tuple[ShedRecord, ...]
    delay_samples: int
    delay_p50_ms: float | None
    delay_p95_ms: float | None
    delay_p99_ms: float | None
    preset: str = ""  # the encoder preset the rungs run at now (the guard may have sped it up)
    rung_fps: tuple[tuple[str, float], ...] = ()  # each encoded rung's frame rate now


@dataclass(frozen=True, slots=True)
class TranscodeSettings:
    encoder: EncoderSettings = field(default_factory=EncoderSettings)
    guard: GuardSettings = field(default_factory=GuardSettings)
    realtime: bool = True  # False: file mode, no frame is ever dropped for lateness
    interpolation: str = "BILINEAR"  # swscale algorithm for the per-rung scale
    parallel_rungs: int = 2  # rungs scaled+encoded concurrently (PyAV releases the GIL)
    decoder_threads: int = 1  # >1 uses frame threads: throughput at the price of frames of delay
    prefer_hardware_decode: bool = True  # NVDEC when its test decode works (the worker probes)


def percentile(samples: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100), None for no samples."""
    ordered = sorted(samples)
    if not ordered:
        return None
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return ordered[int(rank) - 1]


class BoundaryClock:
    """Which frames open a segment: the first at or past each multiple of the segment length.

    Boundaries are multiples of the segment length on the source timeline, not counted from
    the first frame, so a restarted worker cuts at the same PTS as the one it replaces.
    """

    __slots__ = ("_next", "_segment_ms")

    def __init__(self, segment_s: float) -> None:
        self._segment_ms = round(segment_s * 1000)
        if self._segment_ms <= 0:
            raise ValueError("segment length must be at least 1 ms")
        self._next: int | None = None

    def crosses(self, pts_ms: int) -> bool:
        """Offer the next frame (display order); True if it must be an IDR on every rung."""
        if self._next is not None and pts_ms < self._next:
            return False
        self._next = (pts_ms // self._segment_ms + 1) * self._segment_ms
        return True


def keeps(pts_ms: int, last_kept_ms: int | None, divisor: int, interval_ms: float, *, boundary: bool) -> bool:
    """Whether a rung at 1/``divisor`` of the source frame rate encodes the frame at ``pts_ms``.

    It keeps every boundary frame (the IDR every rung shares) and each frame at least
    ``divisor`` - 1/2 frame intervals after the last it kept: decimation by time, not by count,
    so frames the real-time guard skipped never stretch a rung's spacing past what its rate
    asks for (a step longer than a part target is a hole a player stalls at).
    """
    if boundary or last_kept_ms is None or divisor <= 1:
        return True
    return pts_ms - last_kept_ms >= (divisor - 0.5) * interval_ms


@dataclass(slots=True)
class _Inflight:
    unit: AccessUnit
    arrival: float
    pending: int


class _VideoRung:
    __slots__ = ("config", "divisor", "encoded", "encoder", "last_kept", "rung", "scaler")

    def __init__(self, rung: Rung, encoder: VideoCodecContext) -> None:
        self.rung = rung
        self.encoder = encoder
        self.scaler = VideoReformatter()
        self.config = config_from_global_header(rung.codec, bytes(encoder.extradata or b""))
        if (self.config.width, self.config.height) != (rung.width, rung.height):
            raise RuntimeError(f"encoder for {rung.name} wrote an SPS of another picture size")
        self.encoded = 0
        self.divisor = 1  # frame-rate divisor the guard put on this rung alone
        self.last_kept: int | None = None  # PTS of the last frame it encoded


class _AudioTranscoder:
    """Non-AAC-LC audio (HE-AAC, AAC Main, WHIP's Opus) to AAC-LC, timestamps kept in ms."""

    def __init__(self, source: AudioConfig, plan: AudioPlan) -> None:
        decoder = CodecContext.create(source.codec, "r")  # FFmpeg decoder names: "aac", "opus"
        assert isinstance(decoder, AudioCodecContext)
        decoder.extradata = source.record
        self.decoder = decoder
        encoder = CodecContext.create("aac", "w")
        assert isinstance(encoder, AudioCodecContext)
        encoder.sample_rate = plan.sample_rate
        encoder.layout = "stereo" if plan.channels == 2 else "mono"
        encoder.format = "fltp"
        encoder.bit_rate = (plan.bitrate_kbps or 128) * 1000
        encoder.time_base = Fraction(1, plan.sample_rate)
        encoder.flags = int(encoder.flags) | (1 << 22)  # global header: the AudioSpecificConfig
        encoder.options = {"profile": "aac_low"}
        encoder.open()
        self.encoder = encoder
        self.resampler = av.AudioResampler(
            format="fltp", layout=encoder.layout.name, rate=plan.sample_rate, frame_size=1024
        )
        record = bytes(encoder.extradata or b"")
        self.config = AudioConfig("aac", "mp4a.40.2", plan.sample_rate, plan.channels, AAC_LC, record)
        self.rate = plan.sample_rate
        self._origin_ms: int | None = None
        self._samples = 0
        self._last: AccessUnit | None = None

    def push(self, au: AccessUnit | None) -> list[AccessUnit]:
        frames: list[av.AudioFrame | None] = []
        if au is not None:
            if self._origin_ms is None:
                self._origin_ms = au.pts_ms
            self._last = au
            packet = av.Packet(au.data)
            try:
                decoded = self.decoder.decode(packet)
            except av.FFmpegError as exc:
                raise TranscodeInputError(f"audio access unit at {au.pts_ms} ms: {exc}") from exc
            for decoded_frame in decoded:
                decoded_frame.pts = None
                frames.extend(self.resampler.resample(decoded_frame))
        else:
            frames.extend(self.resampler.resample(None))
            frames.append(None)
        out: list[AccessUnit] = []
        for frame in frames:
            if frame is not None:
                frame.pts = self._samples
                self._samples += frame.samples
            for packet in self.encoder.encode(frame):
                assert self._last is not None and self._origin_ms is not None
                pts = self._origin_ms + (int(packet.pts or 0) * 1000) // self.rate
                out.append(
                    AccessUnit(
                        TrackKind.AUDIO,
                        pts,
                        pts,
                        bytes(packet),
                        True,
                        self._last.ingest_wallclock,
                        self._last.capture_wallclock,
                    )
                )
        return out


class TranscodePipeline:
    """One stream's transcode: ``start()``, then ``push_video``/``push_audio``, then ``flush()``."""

    def __init__(
        self,
        source: VideoConfig,
        ladder: Ladder,
        encoder: EncoderChoice,
        settings: TranscodeSettings | None = None,
        *,
        audio: AudioConfig | None = None,
        decoder: DecoderChoice | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or TranscodeSettings()
        self.ladder = ladder
        self.encoder_choice = encoder
        self.decoder_choice = decoder or DecoderChoice(
            "hevc" if source.codec == "h265" else "h264", source.codec, False, "software default"
        )
        self.source = source
        self._clock = clock
        if any(r.codec != encoder.codec for r in ladder.encoded):
            raise ValueError(f"encoder {encoder.name} cannot encode a {ladder.encoded[0].codec} ladder")
        self._interval_s = 1.0 / ladder.source.fps
        video_decoder = open_decoder(
            self.decoder_choice, source.record, threads=self.settings.decoder_threads
        )
        try:
            video_decoder.open()
        except av.FFmpegError as exc:
            raise TranscodeInputError(f"the publisher's {source.codec} configuration: {exc}") from exc
        self._decoder = video_decoder
        self._rungs = [_VideoRung(r, open_encoder(encoder, r, self.settings.encoder)) for r in ladder.encoded]
        self._rungs.sort(key=lambda vr: vr.rung.pixels, reverse=True)
        self._passthrough = ladder.passthrough
        self._interp = Interpolation[self.settings.interpolation.upper()]
        self._pool = (
            ThreadPoolExecutor(self.settings.parallel_rungs, thread_name_prefix="rung")
            if self.settings.parallel_rungs > 1 and len(self._rungs) > 1
            else None
        )
        self._boundaries = BoundaryClock(self.settings.encoder.segment_s)
        self._fps_factor = 1
        self._guard = RealtimeGuard(self.settings.guard)
        self._encoder_settings = self.settings.encoder
        self._next_preset: EncoderSettings | None = None  # switched to at the next boundary
        self._preset_refused = False
        self._last_encoded_pts: int | None = None  # the latest frame offered to the rungs
        self._inflight: dict[int, _Inflight] = {}
        self._arrivals: dict[int, tuple[AccessUnit, float]] = {}
        self._delays: deque[float] = deque(maxlen=_DELAY_SAMPLES)
        self._shed: list[ShedRecord] = []
        self._frames_in = self._decoded = self._late = self._errors = 0
        self._audio_source = audio
        self._audio: _AudioTranscoder | None = None
        plan = ladder.audio
        if audio is not None and plan is not None and plan.transcode:
            self._audio = _AudioTranscoder(audio, plan)
        self._closed = False

    # -- outputs -------------------------------------------------------------------------

    def start(self) -> list[TranscodeEvent]:
        """Every rendition's configuration, for the packager's init segments."""
        events: list[TranscodeEvent] = []
        if self._passthrough is not None:
            events.append(
                RenditionConfig(
                    self._passthrough.name,
                    self.source,
                    self._passthrough.video_kbps,
                    self._passthrough.fps,
                    passthrough=True,
                )
            )
        for vr in self._rungs:
            events.append(RenditionConfig(vr.rung.name, vr.config, vr.rung.video_kbps, vr.rung.fps))
        plan = self.ladder.audio
        if self._audio is not None and plan is not None:
            events.append(RenditionConfig(AUDIO_RENDITION, self._audio.config, plan.bitrate_kbps))
        elif self._audio_source is not None:
            events.append(RenditionConfig(AUDIO_RENDITION, self._audio_source, None))
        return events

    @property
    def configs(self) -> dict[str, VideoConfig | AudioConfig]:
        return {e.rendition: e.config for e in self.start() if isinstance(e, RenditionConfig)}

    def metrics(self) -> TranscodeMetrics:
        delays = list(self._delays)
        return TranscodeMetrics(
            encoder=self.encoder_choice,
            decoder=self.decoder_choice,
            frames_in=self._frames_in,
            frames_decoded=self._decoded,
            frames_dropped_late=self._late,
            decode_errors=self._errors,
            frames_encoded=tuple((vr.rung.name, vr.encoded) for vr in self._rungs),
            active_rungs=tuple(
                ([self._passthrough.name] if self._passthrough else []) + [vr.rung.name for vr in self._rungs]
            ),
            fps_factor=self._fps_factor,
            shed=tuple(self._shed),
            delay_samples=len(delays),
            delay_p50_ms=percentile(delays, 50),
            delay_p95_ms=percentile(delays, 95),
            delay_p99_ms=percentile(delays, 99),
            preset=self._encoder_settings.preset,
            rung_fps=tuple((vr.rung.name, self._rung_fps(vr)) for vr in self._rungs),
        )

    # -- inputs --------------------------------------------------------------------------

    def push_audio(self, au: AccessUnit) -> list[TranscodeEvent]:
        if self._audio is None:
            return [RenditionUnit(AUDIO_RENDITION, au)]
        try:
            units = self._audio.push(au)
        except TranscodeInputError as exc:
            self._errors += 1
            log.warning("%s", exc)
            return []
        return [RenditionUnit(AUDIO_RENDITION, u) for u in units]

    def push_video(self, au: AccessUnit, arrival: float | None = None) -> list[TranscodeEvent]:
        """Feed one source access unit; ``arrival`` is when it reached us (``clock`` time)."""
        if self._closed:
            raise RuntimeError("pipeline already flushed")
        arrived = self._clock() if arrival is None else arrival
        self._frames_in += 1
        events: list[TranscodeEvent] = []
        if self._passthrough is not None:
            events.append(RenditionUnit(self._passthrough.name, au))
        if not self._rungs:
            return events
        self._arrivals[au.pts_ms] = (au, arrived)
        while len(self._arrivals) > _MAX_INFLIGHT:
            del self._arrivals[next(iter(self._arrivals))]
        packet = av.Packet(au.data)
        packet.pts, packet.dts = au.pts_ms, au.dts_ms
        packet.time_base = Fraction(1, 1000)
        started = self._clock()
        try:
            frames = self._decoder.decode(packet)
        except av.FFmpegError as exc:
            self._errors += 1
            log.warning("undecodable video access unit at %d ms from publisher: %s", au.pts_ms, exc)
            return events
        decode_s = self._clock() - started
        for frame in frames:
            events.extend(self._frame(frame, decode_s))
        return events

    def flush(self) -> list[TranscodeEvent]:
        """End of stream: drain the decoder and every encoder."""
        if self._closed:
            return []
        events: list[TranscodeEvent] = []
        if self._rungs:
            for frame in self._decoder.decode(None):
                events.extend(self._frame(frame, 0.0))
            for vr in self._rungs:
                for packet in vr.encoder.encode(None):
                    events.extend(self._packet_events(vr, packet))
        if self._audio is not None:
            events.extend(RenditionUnit(AUDIO_RENDITION, u) for u in self._audio.push(None))
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown()
        return events

    # -- per frame -----------------------------------------------------------------------

    def _frame(self, frame: VideoFrame, decode_s: float) -> list[TranscodeEvent]:
        self._decoded += 1
        pts = frame.pts
        if pts is None:
            self._errors += 1
            return []
        origin = self._arrivals.pop(int(pts), None)
        if origin is None:  # the decoder invented a timestamp: nothing to carry through
            self._errors += 1
            return []
        unit, arrived = origin
        start = self._clock()
        realtime = self.settings.realtime
        if realtime and start - arrived > self.settings.guard.max_lag_s and self._may_skip(unit.pts_ms):
            self._late += 1
            return []
        boundary = self._boundaries.crosses(unit.pts_ms)
        self._last_encoded_pts = unit.pts_ms
        events: list[TranscodeEvent] = []
        if boundary and self._next_preset is not None:
            events.extend(self._switch_preset(self._next_preset))
        interval_ms = 1000.0 / self.ladder.source.fps
        chosen = [vr for vr in self._rungs
                  if keeps(unit.pts_ms, vr.last_kept, vr.rung.fps_divisor * vr.divisor * self._fps_factor,
                           interval_ms, boundary=boundary)]
        if not chosen:
            return events
        for vr in chosen:
            vr.last_kept = unit.pts_ms
        self._inflight[unit.pts_ms] = _Inflight(unit, arrived, len(chosen))
        while len(self._inflight) > _MAX_INFLIGHT:
            del self._inflight[next(iter(self._inflight))]
        pict = PictureType.I if boundary else PictureType.NONE
        if self._pool is not None and len(chosen) > 1:
            packet_lists = list(self._pool.map(lambda vr: self._encode(vr, frame, pict), chosen))
        else:
            packet_lists = [self._encode(vr, frame, pict) for vr in chosen]
        for vr, packets in zip(chosen, packet_lists, strict=True):
            for packet in packets:
                events.extend(self._packet_events(vr, packet))
        if realtime:
            events.extend(self._observe(decode_s + self._clock() - start, unit.pts_ms))
        return events

    def _may_skip(self, pts_ms: int) -> bool:
        """Whether a late frame may be skipped: only while the last one encoded is recent."""
        last = self._last_encoded_pts
        return last is None or pts_ms - last <= self.settings.guard.max_skip_s * 1000

    def _encode(self, vr: _VideoRung, frame: VideoFrame, pict: PictureType) -> list[av.Packet[Any]]:
        rung = vr.rung
        scaled = vr.scaler.reformat(frame, rung.width, rung.height, "yuv420p", interpolation=self._interp)
        # When no scaling is needed ``scaled is frame``: only one rung can have the source size,
        # so setting the encoder-facing properties below never races another rung's thread.
        scaled.pts = frame.pts
        scaled.time_base = Fraction(1, 1000)
        scaled.pict_type = pict
        return list(vr.encoder.encode(scaled))

    def _packet_events(self, vr: _VideoRung, packet: av.Packet[Any]) -> list[TranscodeEvent]:
        if packet.pts is None:
            return []
        pts = int(packet.pts)
        vr.encoded += 1
        entry = self._inflight.get(pts)
        if entry is not None:
            entry.pending -= 1
            if entry.pending <= 0:
                del self._inflight[pts]
                self._delays.append((self._clock() - entry.arrival) * 1000.0)
            ingest, capture = entry.unit.ingest_wallclock, entry.unit.capture_wallclock
        else:
            ingest, capture = time.time(), None
        unit = AccessUnit(
            TrackKind.VIDEO,
            pts,
            pts,
            packet_to_avcc(bytes(packet)),
            bool(packet.is_keyframe),
            ingest,
            capture,
        )
        return [RenditionUnit(vr.rung.name, unit)]

    def _rung_fps(self, vr: _VideoRung) -> float:
        """The frame rate ``vr`` encodes at now."""
        return self.ladder.source.fps / (vr.rung.fps_divisor * vr.divisor * self._fps_factor)

    def _possible_steps(self) -> set[ShedStep]:
        possible: set[ShedStep] = set()
        if (self._next_preset is None and not self._preset_refused
                and faster_preset(self.encoder_choice, self._encoder_settings) is not None):
            possible.add(ShedStep.FASTER_PRESET)
        if self._rungs:
            top = self._rungs[0]
            if self._rung_fps(top) / 2 >= _MIN_FPS:
                possible.add(ShedStep.HALVE_TOP_FPS)
        if self._rungs and min(self._rung_fps(vr) for vr in self._rungs) / 2 >= _MIN_FPS:
            possible.add(ShedStep.HALVE_FPS)
        if len(self._rungs) > 1:
            possible.add(ShedStep.STOP_TOP_RUNG)
        return possible

    def _observe(self, work_s: float, pts_ms: int) -> list[TranscodeEvent]:
        step = self._guard.observe(work_s, self._interval_s, self._possible_steps())
        if step is None:
            return []
        load = self._guard.last_window_load
        events: list[TranscodeEvent] = []
        if step is ShedStep.FASTER_PRESET:
            self._next_preset = faster_preset(self.encoder_choice, self._encoder_settings)
            assert self._next_preset is not None
            detail = f"preset {self._next_preset.preset} from the next segment"
        elif step is ShedStep.HALVE_TOP_FPS:
            top = self._rungs[0]
            top.divisor *= 2
            detail = f"{top.rung.name} fps divisor x{top.divisor}"
        elif step is ShedStep.HALVE_FPS:
            self._fps_factor *= 2
            detail = f"fps divisor x{self._fps_factor}"
        else:
            stopped = self._rungs.pop(0)
            for packet in stopped.encoder.encode(None):
                events.extend(self._packet_events(stopped, packet))
            detail = stopped.rung.name
            events.append(RenditionDropped(detail, f"encoder overloaded (load {load:.2f})"))
        log.warning("real-time guard: %s: %s (load %.2f)", step.value, detail, load)
        self._shed.append(ShedRecord(step.value, detail, pts_ms, load))
        return events

    def _switch_preset(self, settings: EncoderSettings) -> list[TranscodeEvent]:
        """Reopen every rung's encoder with ``settings`` on this boundary frame (an IDR on every
        rung), provided each writes the parameter sets its init segment already carries."""
        self._next_preset = None
        opened = [open_encoder(self.encoder_choice, vr.rung, settings) for vr in self._rungs]
        for vr, encoder in zip(self._rungs, opened, strict=True):
            if bytes(encoder.extradata or b"") != bytes(vr.encoder.extradata or b""):
                log.warning("real-time guard: preset %s changes %s's parameter sets; keeping %s",
                            settings.preset, vr.rung.name, self._encoder_settings.preset)
                self._preset_refused = True
                return []
        events: list[TranscodeEvent] = []
        for vr, encoder in zip(self._rungs, opened, strict=True):
            for packet in vr.encoder.encode(None):
                events.extend(self._packet_events(vr, packet))
            vr.encoder = encoder
        self._encoder_settings = settings
        return events

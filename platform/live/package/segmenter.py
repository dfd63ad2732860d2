"""Cut one rendition's access units into CMAF parts and segments for LL-HLS.

A ``Segmenter`` is a sans-I/O state machine: ``configure()`` returns the rendition's
``InitSegment``, ``push(unit)`` returns the ``Part``s that unit completes, ``flush()`` the rest
at end of stream. The rules it keeps (RFC 8216bis 4.4.4.9 and Apple's LL-HLS authoring rules):

- every segment starts with an independent part (a keyframe); a segment ends at the first
  keyframe at or past the next point of the absolute segment-target grid (within half a
  frame, for millisecond rounding), the grid the transcoder puts its IDRs on, so video and
  audio-only renditions align and a stream starting off the grid never overruns the target;
- a part never exceeds the part target; every part except the last of its segment is at least
  85 % of it whenever the frame durations allow (greedy filling gives ``>= target - one frame``,
  so frames up to 15 % of the target, e.g. 30 fps at 0.2 s, always do);
- a hole in the timeline longer than the part target (a restarted transcoder resumes at a
  later keyframe; a publisher stalls) is a gap, not a long frame: the frame before it keeps the
  previous frame's duration, and its part closes there. If a keyframe follows the gap, the
  segment ends there too, gap parts (below) cover the hole, and the keyframe opens a new
  segment: a player sees missing time, not a buffer with a hole in it (hls.js waits at such a
  hole for good). Otherwise the next part's ``tfdt`` jumps across the hole within the segment.
  No part ever exceeds the target. Gaps are counted in ``stats.gaps``;
- ``msn`` counts segments and ``index`` parts within one; the last part has ``segment_end``.

Two ways to cut (``SegmentCut``): ``GRID`` (above) for the transcoded rungs, whose IDRs the
transcoder puts on the grid, and ``KEYFRAMES`` for a passthrough rendition, whose keyframes are
the publisher's: a keyframe opens a new segment once the segment has reached the segment target,
or when waiting for the next keyframe (``keyframe_interval_s``, measured before the rendition was
advertised) could overrun ``max_segment_s``.

No segment ever exceeds ``max_segment_s`` (TARGETDURATION plus the rounding RFC 8216bis 4.4.3.1
allows). When the next frame would overrun it and is not a keyframe (a publisher whose
keyframes come later than measured, a transcoder that lost its grid IDR), the segment closes
there and the rendition is in a gap until the next keyframe: its frames are dropped and counted,
and gap parts (``Part.gap``, no media; RFC 8216bis 4.4.4.7 EXT-X-GAP and GAP=YES) cover the
time, cut at the part target and on the segment grid, each emitted once the media clock has
passed its end, so the playlist keeps moving. ``begin_gap()`` puts a rendition whose encoder
stopped for good in the same state, and ``extend_gap(unit)`` moves its clock on with another
rendition's units.

Timing: video uses a 90 kHz timescale, so millisecond timestamps convert exactly (x 90) and a
sample's duration is the difference of consecutive DTS: the sum of a part's durations is
exactly the distance between its first DTS and the next part's, with no drift. Audio timing
and the muxed audio queue are ``live.package.audio_track``.

The last sample's duration is only known when the next sample of that track arrives, so
the segmenter holds exactly one primary-track sample back and decides where it goes when its
successor's DTS proves its duration. A part is emitted as soon as its end is provable: when the
next sample would overflow it, when a keyframe opens the next segment, or when it is exactly
full. ``flush()`` gives the held-back sample the previous sample's duration (or 1/frame rate,
or 1024 ticks for AAC).

Each track's DTS must strictly increase (anything else is the caller's error). In a muxed
rendition (video + audio in one fMP4, two tracks) video drives the cuts and a part takes the
queued audio frames that start before its cut plus ``AUDIO_OVERHANG_MS``, so its audio always
ends at least that far past its video. Browsers report a muxed SourceBuffer's buffered range
as the intersection of its tracks, in whole microseconds rounded per frame: audio that ends
exactly on the cut (AAC frames land on it every 8 s when audio and video start together)
shows as ending 1 us before the part, and hls.js then never asks for the next, still partial
segment at the live edge (a stall of a whole segment). For the same reason a part whose
covering audio frame has not arrived yet (publishers interleave loosely; ffmpeg sends the
audio frame that shares a video frame's timestamp after it) waits for it, while audio flows,
until the next part closes at the latest; audio that still arrives late simply goes in the
next part, which is still a valid CMAF chunk since each track's ``tfdt`` is its own. Units
before the first video keyframe (and audio before its DTS) are dropped and counted: a segment
must start independent.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig
from live.package import fmp4
from live.package.audio_track import AUDIO_TRACK_ID, AudioLagError, AudioTrack, PendingSample
from live.package.parts import InitSegment, Part

_VIDEO_TRACK_ID = 1
_CLOCK_REANCHOR_S = 0.5  # part wall-clock strays this far from media time: re-anchor


class SegmenterError(ValueError):
    """The caller broke the segmenter's contract (order, configuration, lifecycle)."""


class SegmenterState(Enum):
    UNCONFIGURED = "unconfigured"
    AWAITING_KEYFRAME = "awaiting_keyframe"  # configured; nothing emitted until a keyframe
    STREAMING = "streaming"
    GAP = "gap"  # no media until the next keyframe; gap parts cover the time
    FINISHED = "finished"


class SegmentCut(Enum):
    """Where segments end: on the absolute segment grid, or at the source's own keyframes."""

    GRID = "grid"
    KEYFRAMES = "keyframes"


@dataclass(frozen=True, slots=True)
class SegmenterSettings:
    part_target_s: float = 0.333
    segment_target_s: float = 2.0
    styp: bool = False  # start each segment's first part with a ``styp`` box
    cut: SegmentCut = SegmentCut.GRID
    #: KEYFRAMES: the longest keyframe interval the source showed (cut before it could overrun)
    keyframe_interval_s: float | None = None
    #: No segment lasts longer (TARGETDURATION + rounding slack); None: no bound
    max_segment_s: float | None = None

    def __post_init__(self) -> None:
        if not 0.05 <= self.part_target_s <= 2.0:
            raise ValueError(f"part target {self.part_target_s} s outside 0.05-2 s")
        if self.segment_target_s < self.part_target_s:
            raise ValueError(
                f"segment target {self.segment_target_s} s shorter than part target {self.part_target_s} s"
            )
        if self.max_segment_s is not None and self.max_segment_s < self.segment_target_s:
            raise ValueError(
                f"max segment {self.max_segment_s} s shorter than segment target {self.segment_target_s} s"
            )
        if self.cut is SegmentCut.KEYFRAMES and not (self.keyframe_interval_s or 0) > 0:
            raise ValueError("cutting at the source's keyframes needs its measured keyframe interval")


@dataclass(frozen=True, slots=True)
class SegmenterStats:
    samples_in: int
    samples_out: int
    dropped_before_keyframe: int
    parts: int
    segments: int
    gaps: int
    gap_parts: int = 0


class _Sealed:
    """A part whose primary samples are final, waiting (at most one at a time) for its audio."""

    __slots__ = ("cut_t", "gap_start", "index", "msn", "samples", "segment_end", "sequence", "ticks")

    def __init__(
        self,
        samples: list[PendingSample],
        ticks: int,
        cut_t: int | None,
        segment_end: bool,
        msn: int,
        index: int,
        sequence: int,
    ) -> None:
        self.samples = samples
        self.ticks = ticks
        self.cut_t = cut_t  # primary-timescale time the part ends at; None at end of stream
        self.segment_end = segment_end
        self.msn = msn
        self.index = index
        self.sequence = sequence
        self.gap_start: int | None = None  # a gap part: where it starts (it has no samples)


class Segmenter:
    """Per-rendition packager state machine (see the module docstring for the rules)."""

    def __init__(self, rendition: str, settings: SegmenterSettings | None = None, *,
                 start_msn: int = 0) -> None:
        """``start_msn`` numbers the first segment: > 0 when this stream continues one another
        ingest node packaged (the origins' playlists go on after a discontinuity)."""
        if start_msn < 0:
            raise SegmenterError(f"start_msn {start_msn} must be >= 0")
        self.rendition = rendition
        self.settings = settings or SegmenterSettings()
        self.state = SegmenterState.UNCONFIGURED
        self._video: VideoConfig | None = None
        self._audio: AudioConfig | None = None
        self._primary = TrackKind.VIDEO
        self.timescale = 0
        self._part_target = 0
        self._segment_target = 0
        self._max_segment: int | None = None
        self._keyframe_interval = 0
        self._segment_ticks = 0  # playlist duration of the open segment so far
        self._default_duration = 0
        # gap: where the next gap part starts (None until a clock reaches it), how far time went
        self._gap_from: int | None = None
        self._gap_to = 0
        # primary track: the current part's samples and the one held back
        self._part: list[PendingSample] = []
        self._part_ticks = 0
        self._pending: PendingSample | None = None
        self._last_duration = 0
        self._segment_start = 0
        self._audio_track: AudioTrack | None = None  # timing; in a muxed rendition, the queue
        self._sealed: deque[_Sealed] = deque()
        self._last_dts: dict[TrackKind, int] = {}
        self._clock_anchor: tuple[float, int] | None = None  # (wall-clock, media ticks)
        self._msn = start_msn
        self._index = 0
        self._sequence = 1
        self._samples_in = self._samples_out = self._dropped = 0
        self._parts = self._segments = self._gaps = self._gap_parts = 0

    # -- lifecycle ----------------------------------------------------------------------------

    def configure(
        self,
        video: VideoConfig | None = None,
        audio: AudioConfig | None = None,
        *,
        bandwidth: int,
        frame_rate: float | None = None,
    ) -> InitSegment:
        """Fix the rendition's tracks and return its init segment (once per segmenter)."""
        if self.state is not SegmenterState.UNCONFIGURED:
            raise SegmenterError(
                f"{self.rendition}: configure() called twice; a new configuration needs a new Segmenter"
            )
        if video is None and audio is None:
            raise SegmenterError(f"{self.rendition}: a rendition needs a video or an audio track")
        if bandwidth <= 0:
            raise SegmenterError(f"{self.rendition}: bandwidth must be positive, got {bandwidth}")
        tracks: list[fmp4.Track] = []
        if video is not None:
            tracks.append(fmp4.video_track(video, _VIDEO_TRACK_ID))
        if audio is not None:
            tracks.append(fmp4.audio_track(audio, AUDIO_TRACK_ID))
        data = fmp4.init_segment(tracks)  # validates the configs before any state changes
        self._video, self._audio = video, audio
        self._primary = TrackKind.VIDEO if video is not None else TrackKind.AUDIO
        self.timescale = tracks[0].timescale
        self._audio_track = AudioTrack(audio, self.timescale) if audio is not None else None
        self._part_target = round(self.settings.part_target_s * self.timescale)
        self._segment_target = round(self.settings.segment_target_s * self.timescale)
        if self.settings.max_segment_s is not None:
            self._max_segment = round(self.settings.max_segment_s * self.timescale)
        self._keyframe_interval = round((self.settings.keyframe_interval_s or 0) * self.timescale)
        if video is not None:
            fps = frame_rate if frame_rate and frame_rate > 0 else 30.0
            self._default_duration = max(1, round(self.timescale / fps))
        else:
            self._default_duration = fmp4.AAC_FRAME_SAMPLES
        self.state = SegmenterState.AWAITING_KEYFRAME
        codecs = ",".join(c.codec_string for c in (video, audio) if c is not None)
        return InitSegment(
            self.rendition,
            data,
            codecs,
            bandwidth,
            video.width if video is not None else None,
            video.height if video is not None else None,
            frame_rate,
        )

    @property
    def part_target_ticks(self) -> int:
        return self._part_target

    @property
    def stats(self) -> SegmenterStats:
        return SegmenterStats(
            self._samples_in, self._samples_out, self._dropped, self._parts, self._segments, self._gaps,
            self._gap_parts,
        )

    def push(self, unit: AccessUnit) -> list[Part]:
        """Take the next access unit (DTS order); return the parts it completes."""
        if self.state is SegmenterState.UNCONFIGURED:
            raise SegmenterError(f"{self.rendition}: access unit pushed before configure()")
        if self.state is SegmenterState.FINISHED:
            raise SegmenterError(f"{self.rendition}: access unit pushed after flush()")
        if (unit.kind is TrackKind.VIDEO and self._video is None) or (
            unit.kind is TrackKind.AUDIO and self._audio is None
        ):
            raise SegmenterError(f"{self.rendition}: has no {unit.kind.value} track")
        self._check_order(unit)
        self._samples_in += 1
        sample = self._sample(unit)
        if unit.kind is not self._primary:
            self._queue_audio(sample)
            return self._release(force=False) if self._sealed else []
        if self.state is SegmenterState.AWAITING_KEYFRAME:
            # Audio before the first keyframe has no segment to go in; audio at its DTS does.
            self._drop_audio_before(unit.dts_ms)
            if not sample.sync:
                self._dropped += 1
                return []
            self.state = SegmenterState.STREAMING
            self._start_segment(sample.t)
        elif self.state is SegmenterState.GAP:
            if not sample.sync:
                self._dropped += 1
                self._fill_gap(sample.t, unit.capture_wallclock or unit.ingest_wallclock, final=False)
                return self._release(force=False)
            self._fill_gap(sample.t, sample.wallclock, final=True)
            self.state = SegmenterState.STREAMING
            self._start_segment(sample.t)
        self._advance(sample)
        return self._release(force=False)

    def begin_gap(self) -> list[Part]:
        """This rendition's encoder stopped for good: close its segment, then gap parts only.

        ``extend_gap()`` (another rendition's units) moves the gap's clock on from here.
        """
        if self.state is SegmenterState.UNCONFIGURED or self.state is SegmenterState.FINISHED:
            raise SegmenterError(f"{self.rendition}: begin_gap() outside a stream")
        if self.state is SegmenterState.GAP:
            return []
        start: int | None = None
        pending = self._pending
        if pending is not None:
            pending.duration = self._last_duration or self._default_duration
            if self._part and self._part_ticks + pending.duration > self._part_target:
                self._close(pending.t, segment_end=False)
            self._append(pending)
            self._pending = None
            start = pending.t + pending.duration
            self._close(start, segment_end=True)
        self._enter_gap(start)
        return self._release(force=False)

    def extend_gap(self, unit: AccessUnit) -> list[Part]:
        """In a gap: media time (another rendition's ``unit``) has reached ``unit.dts_ms``."""
        if self.state is not SegmenterState.GAP:
            return []
        t = unit.dts_ms * self.timescale // 1000
        self._fill_gap(t, unit.capture_wallclock or unit.ingest_wallclock, final=False)
        return self._release(force=False)

    def flush(self) -> list[Part]:
        """End of stream: emit what is held, the last part closing its segment."""
        if self.state is SegmenterState.UNCONFIGURED:
            raise SegmenterError(f"{self.rendition}: flush() before configure()")
        pending = self._pending
        if pending is not None:
            pending.duration = self._last_duration or self._default_duration
            if self._part and self._part_ticks + pending.duration > self._part_target:
                self._close(pending.t, segment_end=False)
            self._append(pending)
            self._pending = None
        if self._part:
            self._close(None, segment_end=True)
        if self.state is SegmenterState.GAP and self._gap_from is not None:
            self._fill_gap(self._gap_to, None, final=True)
        out = self._release(force=True)
        if self._audio_track is not None:
            self._dropped += self._audio_track.clear()
        self.state = SegmenterState.FINISHED
        return out

    # -- timing -------------------------------------------------------------------------------

    def _check_order(self, unit: AccessUnit) -> None:
        last = self._last_dts.get(unit.kind)
        if last is not None and unit.dts_ms <= last:
            raise SegmenterError(
                f"{self.rendition}: {unit.kind.value} DTS {unit.dts_ms} ms not after the previous {last} ms"
            )
        if unit.dts_ms < 0:
            raise SegmenterError(f"{self.rendition}: negative DTS {unit.dts_ms} ms")
        self._last_dts[unit.kind] = unit.dts_ms

    def _sample(self, unit: AccessUnit) -> PendingSample:
        if unit.kind is TrackKind.VIDEO:
            return PendingSample(unit, unit.dts_ms * 90, (unit.pts_ms - unit.dts_ms) * 90, unit.keyframe)
        assert self._audio_track is not None
        return self._audio_track.sample(unit)

    def _drop_audio_before(self, dts_ms: int) -> None:
        if self._audio_track is not None:
            self._dropped += self._audio_track.drop_before_ms(dts_ms)

    def _queue_audio(self, sample: PendingSample) -> None:
        assert self._audio_track is not None
        waiting = self.state in (SegmenterState.AWAITING_KEYFRAME, SegmenterState.GAP)
        try:
            self._dropped += self._audio_track.enqueue(sample, video_expected=not waiting)
        except AudioLagError as exc:
            raise SegmenterError(f"{self.rendition}: {exc}") from None

    # -- cutting ------------------------------------------------------------------------------

    def _advance(self, sample: PendingSample) -> None:
        held = self._pending
        if held is not None:
            duration = sample.t - held.t
            gap = duration > self._part_target
            if gap:
                self._gaps += 1
                duration = min(self._last_duration or self._default_duration, self._part_target)
            else:
                self._last_duration = duration
            held.duration = duration
            if self._part and self._part_ticks + held.duration > self._part_target:
                self._close(held.t, segment_end=False)
            self._append(held)
            if sample.sync and gap:
                self._bridge(held.t + held.duration, sample)
            elif sample.sync and self._segment_due(sample.t, held.duration):
                self._close(sample.t, segment_end=True)
                self._start_segment(sample.t)
            elif not sample.sync and self._overruns():
                self._close(sample.t, segment_end=True)
                self._dropped += 1
                self._pending = None
                self._enter_gap(sample.t)
                return
            elif gap or self._part_ticks >= self._part_target:
                self._close(sample.t, segment_end=False)
        self._pending = sample

    def _bridge(self, end: int, keyframe: PendingSample) -> None:
        """A hole from ``end`` to a keyframe: close the segment at ``end`` and cover the hole with
        gap parts, so players see missing time (EXT-X-GAP) instead of a buffer with a hole in it
        (hls.js waits at such a hole for good; a transcoder that dropped late frames after a
        stall leaves one). The keyframe then opens the next segment."""
        self._close(end, segment_end=True)
        self._enter_gap(end)
        self._fill_gap(keyframe.t, keyframe.wallclock, final=True)
        self.state = SegmenterState.STREAMING
        self._start_segment(keyframe.t)

    def _start_segment(self, t: int) -> None:
        self._segment_start = t
        self._segment_ticks = 0

    def _overruns(self) -> bool:
        """Whether one more frame would take the open segment past ``max_segment_s``."""
        limit = self._max_segment
        if limit is None:
            return False
        return self._segment_ticks + (self._last_duration or self._default_duration) > limit

    def _segment_due(self, t: int, last_duration: int) -> bool:
        """Whether a sync sample at ``t`` opens a new segment (within half a frame of the target).

        Segments cut on the absolute grid of segment targets: the first sync sample at or
        past the grid point after the one the segment started on opens the next segment. The
        transcoder forces IDRs on that same grid (so a restarted worker cuts where its
        predecessor would have), and a stream whose first frame is off the grid then gets one
        short first segment instead of a segment that skips a grid IDR and overruns the
        target duration. Audio (every frame sync) lands on the same grid as video.
        """
        target = self._segment_target
        if self.settings.cut is SegmentCut.KEYFRAMES:
            elapsed = self._segment_ticks  # the open segment's length up to ``t``
            limit = self._max_segment
            return 2 * elapsed + last_duration >= 2 * target or (
                limit is not None and elapsed + self._keyframe_interval > limit
            )
        # the grid point after the one this segment started on (within the same half frame)
        boundary = ((2 * self._segment_start + last_duration) // (2 * target) + 1) * target
        return 2 * t + last_duration >= 2 * boundary

    def _append(self, sample: PendingSample) -> None:
        self._part.append(sample)
        self._part_ticks += sample.duration
        self._segment_ticks += sample.duration

    # -- gaps ---------------------------------------------------------------------------------

    def _enter_gap(self, start: int | None) -> None:
        """No media from ``start`` (None: from wherever the gap's clock first says) on."""
        self.state = SegmenterState.GAP
        self._gap_from = start
        if start is not None:
            self._gap_to = start
            self._start_segment(start)

    def _fill_gap(self, t: int, wallclock: float | None, *, final: bool) -> None:
        """Seal the gap parts the clock has passed: up to ``t``, all of it when ``final`` (a
        keyframe at ``t`` ends the gap). Parts end at the part target and on the segment grid
        (where their segment ends); the last one before ``t`` waits, unless it ends on the grid,
        so the segment open when the gap ends always has a part left to close it."""
        if self._gap_from is None:
            if final:
                return
            self._gap_from = self._gap_to = t
            self._start_segment(t)
        self._gap_to = max(self._gap_to, t)
        if self._clock_anchor is None and wallclock is not None:
            self._clock_anchor = (wallclock - (t - self._gap_from) / self.timescale, self._gap_from)
        grid = self._segment_target
        while self._gap_from < t:
            start = self._gap_from
            boundary = (start // grid + 1) * grid
            end = min(start + self._part_target, boundary)
            if end >= t and (end != boundary or end > t):
                if final:
                    self._seal_gap(start, t, segment_end=True)
                break
            self._seal_gap(start, end, segment_end=end == boundary)

    def _seal_gap(self, start: int, end: int, *, segment_end: bool) -> None:
        sealed = _Sealed([], end - start, end, segment_end, self._msn, self._index, 0)
        sealed.gap_start = start
        self._sealed.append(sealed)
        self._gap_from = end
        self._parts += 1
        self._gap_parts += 1
        if segment_end:
            self._segments += 1
            self._msn += 1
            self._index = 0
            self._start_segment(end)
        else:
            self._index += 1

    def _media_clock(self, first: PendingSample) -> float:
        """The wall-clock of a part's first sample, advancing with media time.

        PROGRAM-DATE-TIME is the date of a segment's first sample (RFC 8216bis 4.4.4.6), so it
        must move in step with the media timeline; arrival clocks jitter by tens of ms, and
        players that align playlists by PDT then disagree with EXTINF. The clock is anchored
        on the first part and re-anchored when the sample's own clock strays by more than
        ``_CLOCK_REANCHOR_S`` (a gap, or a publisher whose media clock drifts).
        """
        anchor = self._clock_anchor
        if anchor is not None:
            predicted = anchor[0] + (first.t - anchor[1]) / self.timescale
            if abs(first.wallclock - predicted) <= _CLOCK_REANCHOR_S:
                return predicted
        self._clock_anchor = (first.wallclock, first.t)
        return first.wallclock

    def _close(self, cut_t: int | None, *, segment_end: bool) -> None:
        """Seal the current part, ending at ``cut_t`` (primary ticks; None at end of stream)."""
        self._sealed.append(
            _Sealed(self._part, self._part_ticks, cut_t, segment_end, self._msn, self._index, self._sequence)
        )
        self._parts += 1
        self._sequence += 1
        self._part = []
        self._part_ticks = 0
        if segment_end:
            self._segment_ticks = 0
            self._segments += 1
            self._msn += 1
            self._index = 0
        else:
            self._index += 1

    def _release(self, *, force: bool) -> list[Part]:
        """Emit sealed parts in order; only the newest may wait for the audio that covers its cut."""
        out: list[Part] = []
        sealed = self._sealed
        while sealed:
            head = sealed[0]
            if (not force and len(sealed) == 1 and head.gap_start is None
                    and not self._audio_covers(head.cut_t)):
                break
            out.append(self._emit(sealed.popleft()))
        return out

    def _audio_covers(self, cut_t: int | None) -> bool:
        """Whether the audio that ends this part (or proof that none is coming soon) has arrived."""
        track = self._audio_track
        if cut_t is None or track is None or self._primary is not TrackKind.VIDEO:
            return True
        return self.state is SegmenterState.GAP or track.covers(cut_t)

    def _emit(self, sealed: _Sealed) -> Part:
        """Build a sealed part; in a muxed rendition with the audio that starts before its cut."""
        if sealed.gap_start is not None:
            return self._emit_gap(sealed, sealed.gap_start)
        samples = sealed.samples
        first = samples[0]
        primary_id = _VIDEO_TRACK_ID if self._primary is TrackKind.VIDEO else AUDIO_TRACK_ID
        runs = [
            fmp4.TrackRun(
                primary_id,
                first.t,
                [fmp4.Sample(s.data, s.duration, s.sync, s.cts) for s in samples],
            )
        ]
        count = len(samples)
        track = self._audio_track
        audio = track.take_run(sealed.cut_t) if track is not None and track.queue else None
        if audio is not None:
            runs.append(audio)
            count += len(audio.samples)
        data = fmp4.fragment(sealed.sequence, runs, segment_start=self.settings.styp and sealed.index == 0)
        self._samples_out += count
        return Part(
            self.rendition,
            sealed.msn,
            sealed.index,
            data,
            sealed.ticks / self.timescale,
            first.sync,
            self._media_clock(first),
            sealed.segment_end,
            first.t,
        )

    def _emit_gap(self, sealed: _Sealed, start: int) -> Part:
        """A gap part; the audio queued for its time has no video to go with and is dropped."""
        track = self._audio_track
        if track is not None and sealed.cut_t is not None:
            self._dropped += track.drop_until(sealed.cut_t)
        anchor = self._clock_anchor
        clock = anchor[0] + (start - anchor[1]) / self.timescale if anchor is not None else 0.0
        return Part(
            self.rendition,
            sealed.msn,
            sealed.index,
            b"",
            sealed.ticks / self.timescale,
            False,
            clock,
            sealed.segment_end,
            start,
            gap=True,
        )

"""A rendition's audio track as the segmenter sees it: AAC timing, and in a muxed rendition the
frames that wait for the part they belong to.

Timing: audio uses the sample rate as timescale, and AAC frames sit on a 1024-tick grid that is
re-anchored to the millisecond timestamp only when it drifts by more than half a frame (a real
gap), so millisecond rounding never shortens or lengthens a frame.

Muxed (video + audio in one fMP4): video decides the cuts, and a part takes the queued audio
frames that start before its cut plus ``AUDIO_OVERHANG_MS``, so its audio always ends at least
that far past its video (why: the segmenter's module docstring). A part may wait for the frame
that covers its cut while audio flows; audio that still arrives late goes in the next part.
"""

from __future__ import annotations

from collections import deque

from live.media.units import AccessUnit, AudioConfig
from live.package import fmp4

AUDIO_TRACK_ID = 2
MAX_AUDIO_LAG_S = 10  # muxed: audio buffered while no video arrives, before it is an error
AUDIO_OVERHANG_MS = 1  # muxed: a part's audio ends at least this far past its video
AUDIO_FLOWING_S = 0.5  # muxed: a part waits for its audio only if audio arrived this recently


class PendingSample:
    """A sample waiting for its part: decode time in the track timescale, duration once known."""

    __slots__ = ("cts", "data", "dts_ms", "duration", "sync", "t", "wallclock")

    def __init__(self, unit: AccessUnit, t: int, cts: int, sync: bool) -> None:
        self.data = unit.data
        self.dts_ms = unit.dts_ms
        self.t = t
        self.cts = cts
        self.sync = sync
        self.duration = 0
        self.wallclock = (
            unit.capture_wallclock if unit.capture_wallclock is not None else unit.ingest_wallclock
        )


class AudioLagError(ValueError):
    """Audio piled up with no video to close a part: the publisher's video track stalled."""


class AudioTrack:
    """AAC frame timing and the muxed queue; counts nothing itself (callers get what it dropped)."""

    def __init__(self, config: AudioConfig, primary_timescale: int) -> None:
        self.rate = config.sample_rate
        self.primary_timescale = primary_timescale
        self.last_t: int | None = None  # the newest frame's time, audio ticks
        self.queue: deque[PendingSample] = deque()

    def sample(self, unit: AccessUnit) -> PendingSample:
        """`unit` timed on the 1024-tick grid (re-anchored only across a real gap)."""
        rate = self.rate
        exact = (unit.dts_ms * rate + 500) // 1000
        t = exact
        if self.last_t is not None:
            expected = self.last_t + fmp4.AAC_FRAME_SAMPLES
            t = (
                expected
                if abs(exact - expected) <= fmp4.AAC_FRAME_SAMPLES // 2
                else max(exact, self.last_t + 1)
            )
        self.last_t = t
        return PendingSample(unit, t, (unit.pts_ms - unit.dts_ms) * rate // 1000, True)

    # -- the muxed queue ----------------------------------------------------------------------

    def enqueue(self, sample: PendingSample, *, video_expected: bool) -> int:
        """Queue a frame for the part that will cover it; how many old frames were dropped.

        Without video to put it with yet (``video_expected`` false: before the first keyframe,
        in a gap) only the last ``MAX_AUDIO_LAG_S`` are kept; otherwise that much audio queued
        means the video stalled, an error.
        """
        queue = self.queue
        dropped = 0
        if queue and sample.t - queue[0].t > MAX_AUDIO_LAG_S * self.rate:
            if video_expected:
                raise AudioLagError(
                    f"{MAX_AUDIO_LAG_S} s of audio queued with no video to close a part; "
                    "the publisher's video track stalled"
                )
            queue.popleft()
            dropped = 1
        queue.append(sample)
        return dropped

    def drop_before_ms(self, dts_ms: int) -> int:
        """Drop queued frames before ``dts_ms`` (they precede the first keyframe); how many."""
        queue, dropped = self.queue, 0
        while queue and queue[0].dts_ms < dts_ms:
            queue.popleft()
            dropped += 1
        return dropped

    def limit(self, cut_t: int) -> int:
        """Frames starting before this (audio ticks x primary timescale) belong before the cut."""
        rate = self.rate
        return cut_t * rate + rate * self.primary_timescale * AUDIO_OVERHANG_MS // 1000

    def covers(self, cut_t: int) -> bool:
        """Whether the frame that ends a part cut at ``cut_t`` (primary ticks) has arrived, or
        audio is not flowing (then video is not held back for it)."""
        last = self.last_t
        scale = self.primary_timescale
        if last is None or last * scale < (cut_t - AUDIO_FLOWING_S * scale) * self.rate:
            return True
        return bool(self.queue) and self.queue[-1].t * scale >= self.limit(cut_t)

    def take_run(self, cut_t: int | None) -> fmp4.TrackRun | None:
        """The queued frames of the part cut at ``cut_t`` (None: all of them, end of stream)."""
        queue = self.queue
        limit = None if cut_t is None else self.limit(cut_t)
        audio: list[PendingSample] = []
        while queue and (limit is None or queue[0].t * self.primary_timescale < limit):
            audio.append(queue.popleft())
        if not audio:
            return None
        following = queue[0].t if queue else None
        samples: list[fmp4.Sample] = []
        for i, s in enumerate(audio):
            nxt = audio[i + 1].t if i + 1 < len(audio) else following
            duration = nxt - s.t if nxt is not None else fmp4.AAC_FRAME_SAMPLES
            samples.append(fmp4.Sample(s.data, duration, True, s.cts))
        return fmp4.TrackRun(AUDIO_TRACK_ID, audio[0].t, samples)

    def drop_until(self, cut_t: int) -> int:
        """Drop the frames of a gap part cut at ``cut_t`` (no video to go with); how many."""
        queue, limit, dropped = self.queue, self.limit(cut_t), 0
        while queue and queue[0].t * self.primary_timescale < limit:
            queue.popleft()
            dropped += 1
        return dropped

    def clear(self) -> int:
        """End of stream: drop what no part took; how many."""
        dropped = len(self.queue)
        self.queue.clear()
        return dropped

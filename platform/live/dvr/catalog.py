"""What the DVR knows in memory: recordings, their runs and tracks, and the retention rules.

A channel's broadcasts are *recordings*. While a stream is live its recording is the DVR: it
holds the last ``window_s`` of segments (oldest evicted first, every rendition at once so they
stay aligned for switching) and never more than ``max_bytes`` (over it the window shrinks, with a
logged warning, rather than the disk filling). When the stream ends cleanly the recording
becomes a VOD, kept ``vod_retention_s``. A recording a crash interrupted is resumed by the
channel's next stream (a new *run*, after a discontinuity, on the same timeline) as long as its
last segment is younger than the window; otherwise it is closed as a VOD.

Only metadata lives here, a few hundred bytes per segment; media stays on disk. Media sequence
numbers are contiguous within a recording and never repeat on a channel: a new recording starts
at the wall-clock second (or after the channel's last msn, if that is later), so DVR media URLs
are immutable even after every recording of a channel was deleted. Synchronous, no I/O: the
recorder turns what these methods return into store calls.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from live.dvr.index import InitRecord, Record, RunRecord, SegmentRecord
from live.package.timing import ChannelTiming

log = logging.getLogger("live.dvr")

#: How many seconds of the window the byte cap may cost before the next warning is logged.
SHRINK_WARNING_INTERVAL_S = 600.0


@dataclass(frozen=True, slots=True)
class DvrSettings:
    window_s: float = 4 * 3600.0
    #: Bytes of one channel's DVR window (all renditions); ``default_max_bytes`` sizes it.
    max_bytes: int = 40 * 10**9
    vod_retention_s: float = 7 * 86400.0
    #: fsync every file and index line (survives power loss; a process crash needs none).
    durable: bool = True
    #: Segment bytes queued for the disk at most; past it segments are dropped with a warning.
    max_pending_bytes: int = 256 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.window_s <= 0 or self.max_bytes <= 0 or self.vod_retention_s < 0:
            raise ValueError("window_s and max_bytes must be positive, vod_retention_s >= 0")


def default_max_bytes(window_s: float, ladder_bps: int, headroom: float = 1.25) -> int:
    """Bytes ``window_s`` of a ladder whose rungs sum to ``ladder_bps`` take, with headroom for
    container overhead and rate-control peaks."""
    return math.ceil(window_s * ladder_bps / 8 * headroom)


class Track:
    """One rendition's segments in one recording, oldest first (msns ascending)."""

    __slots__ = ("discontinuities_before", "duration_s", "nbytes", "segments")

    def __init__(self) -> None:
        self.segments: deque[SegmentRecord] = deque()
        self.nbytes = 0
        self.duration_s = 0.0
        self.discontinuities_before = 0  # discontinuities evicted from the front

    def add(self, record: SegmentRecord) -> None:
        self.segments.append(record)
        self.nbytes += record.nbytes
        self.duration_s += record.duration_s

    def pop_oldest(self) -> SegmentRecord:
        record = self.segments.popleft()
        self.nbytes -= record.nbytes
        self.duration_s -= record.duration_s
        if self.segments and self.segments[0].run != record.run:
            self.discontinuities_before += 1  # the EXT-X-DISCONTINUITY before the new front
        return record

    def find(self, msn: int) -> SegmentRecord | None:
        if not self.segments:
            return None
        first = self.segments[0].msn
        if 0 <= msn - first < len(self.segments):
            record = self.segments[msn - first]
            if record.msn == msn:
                return record
        return next((record for record in self.segments if record.msn == msn), None)

    @property
    def last_msn(self) -> int | None:
        return self.segments[-1].msn if self.segments else None


@dataclass(slots=True, eq=False)
class Recording:
    channel: str
    id: int  # the msn of its first run; in VOD URLs
    started_at: float
    runs: dict[int, RunRecord] = field(default_factory=dict)
    inits: dict[tuple[str, int], InitRecord] = field(default_factory=dict)  # (rendition, run)
    tracks: dict[str, Track] = field(default_factory=dict)
    ended_at: float | None = None
    live: bool = False  # a stream is writing to it now
    #: Its stream ended and the end is on its way to the disk; no new stream may resume it.
    ending: bool = False
    next_msn: int = 0
    version: int = 0  # bumped on every change; keys rendered playlists
    #: Rendered playlists of one version, kept by the HTTP shell: key -> (version, body).
    memo: dict[tuple[str, bool, bool], tuple[int, bytes]] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.ended_at is not None

    @property
    def timing(self) -> ChannelTiming:
        return next(reversed(self.runs.values())).timing if self.runs else ChannelTiming()

    @property
    def nbytes(self) -> int:
        return sum(track.nbytes for track in self.tracks.values())

    @property
    def duration_s(self) -> float:
        return max((track.duration_s for track in self.tracks.values()), default=0.0)

    @property
    def first_pdt(self) -> float:
        firsts = [track.segments[0].program_date_time for track in self.tracks.values()
                  if track.segments]
        return min(firsts, default=self.started_at)

    @property
    def last_end_pdt(self) -> float:
        ends = [track.segments[-1].end_pdt for track in self.tracks.values() if track.segments]
        return max(ends, default=self.started_at)

    def current_inits(self) -> list[InitRecord]:
        """The renditions of the latest run that has any (the DVR's variant streams)."""
        for run in reversed(self.runs):
            inits = [init for (_, r), init in self.inits.items() if r == run]
            if inits:
                return inits
        return []


@dataclass(frozen=True, slots=True)
class Video:
    """One past (or the current) broadcast of a channel, as ``/api/v1/channels/{name}/videos``
    lists it; times are epoch seconds."""

    id: str
    started_at: float  # program date-time of its oldest segment still kept
    ended_at: float | None  # null while live (or interrupted and resumable)
    duration_s: float  # media kept
    live: bool
    playback_path: str  # the multivariant playlist, relative to the server's base URL

    @classmethod
    def of(cls, recording: Recording) -> Video:
        return cls(str(recording.id), recording.first_pdt, recording.ended_at,
                   round(recording.duration_s, 3), recording.live,
                   f"/hls/{recording.channel}/vod/{recording.id}/master.m3u8")


@dataclass(frozen=True, slots=True)
class RunStart:
    """What ``DvrCatalog.begin_run`` decided: where the stream writes, and what it closed."""

    recording: Recording
    run: RunRecord
    closed: Recording | None  # an interrupted recording it closed as a VOD instead of resuming


class ChannelDvr:
    __slots__ = ("last_shrink_warning", "name", "next_msn", "recordings")

    def __init__(self, name: str) -> None:
        self.name = name
        self.recordings: dict[int, Recording] = {}
        self.next_msn = 0
        self.last_shrink_warning = -math.inf

    @property
    def current(self) -> Recording | None:
        return next(reversed(self.recordings.values())) if self.recordings else None


Listener = Callable[[Recording, str | None], None]


class DvrCatalog:
    """Every channel's recordings. Synchronous; ``clock`` is wall-clock epoch seconds."""

    def __init__(self, settings: DvrSettings, *, clock: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.channels: dict[str, ChannelDvr] = {}
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        """``listener(recording, rendition)`` after a track grows; ``None``: the recording ended
        or went away."""
        self._listeners.append(listener)

    def _notify(self, recording: Recording, rendition: str | None) -> None:
        recording.version += 1
        for listener in self._listeners:
            listener(recording, rendition)

    def channel(self, name: str) -> ChannelDvr | None:
        return self.channels.get(name)

    def recording(self, channel: str, recording: int | None = None) -> Recording | None:
        """One recording, or (``None``) the channel's latest: the DVR while live, else a VOD."""
        state = self.channels.get(channel)
        if state is None:
            return None
        return state.current if recording is None else state.recordings.get(recording)

    # -- restoring at start ---------------------------------------------------------------------

    def restore(self, channel: str, recording_id: int, records: list[Record]) -> Recording | None:
        """Rebuild one recording from its index; ``None`` when nothing usable is left in it."""
        state = self.channels.setdefault(channel, ChannelDvr(channel))
        recording = Recording(channel, recording_id, started_at=0.0)
        for record in records:
            if isinstance(record, RunRecord):
                recording.runs[record.run] = record
                recording.started_at = recording.started_at or record.started_at
            elif isinstance(record, InitRecord):
                recording.inits[(record.rendition, record.run)] = record
            elif isinstance(record, SegmentRecord):
                track = recording.tracks.setdefault(record.rendition, Track())
                if track.last_msn is None or record.msn > track.last_msn:
                    track.add(record)
                recording.next_msn = max(recording.next_msn, record.msn + 1)
            else:
                recording.ended_at = record.ended_at
        if not recording.runs:
            return None
        for track in recording.tracks.values():
            if track.segments:
                first_run = track.segments[0].run
                track.discontinuities_before = sum(1 for run in recording.runs if run < first_run)
        recording.next_msn = max(recording.next_msn, max(recording.runs))
        state.recordings[recording_id] = recording
        state.recordings = dict(sorted(state.recordings.items()))
        state.next_msn = max(state.next_msn, recording.next_msn)
        return recording

    # -- a stream's life ------------------------------------------------------------------------

    def begin_run(self, channel: str, timing: ChannelTiming) -> RunStart:
        now = self.clock()
        state = self.channels.setdefault(channel, ChannelDvr(channel))
        current = state.current
        closed = None
        if current is not None and not current.ended and not current.ending:
            if current.live or now - current.last_end_pdt <= self.settings.window_s:
                run = RunRecord(current.next_msn, now, timing.target_duration_s, timing.part_target_s)
                current.runs[run.run] = run
                current.live = True
                self._notify(current, None)
                return RunStart(current, run, None)
            self.close(current, current.last_end_pdt)
            closed = current
        first = max(state.next_msn, int(now))
        recording = Recording(channel, first, started_at=now, live=True, next_msn=first)
        run = RunRecord(first, now, timing.target_duration_s, timing.part_target_s)
        recording.runs[first] = run
        state.recordings[first] = recording
        state.next_msn = first
        self._notify(recording, None)
        return RunStart(recording, run, closed)

    def add_init(self, recording: Recording, record: InitRecord) -> None:
        recording.inits[(record.rendition, record.run)] = record
        self._notify(recording, None)

    def add_segment(self, recording: Recording, record: SegmentRecord) -> list[SegmentRecord]:
        """File a written segment; answers the segments retention evicts (delete their files)."""
        track = recording.tracks.setdefault(record.rendition, Track())
        if track.last_msn is not None and record.msn <= track.last_msn:
            raise ValueError(f"{recording.channel}/{record.rendition}: segment {record.msn} "
                             f"after {track.last_msn}")
        track.add(record)
        recording.next_msn = max(recording.next_msn, record.msn + 1)
        state = self.channels[recording.channel]
        state.next_msn = max(state.next_msn, recording.next_msn)
        evicted = self._evict(recording) if not recording.ended else []
        self._notify(recording, record.rendition)
        return evicted

    def end(self, recording: Recording, next_msn: int) -> None:
        """The stream ended cleanly; its last segments and the end are queued for the disk
        (``close`` follows once they are on it). From now on the next stream starts a recording
        of its own, after ``next_msn``, even if it begins before the end is on disk."""
        recording.live = False
        recording.ending = True
        state = self.channels[recording.channel]
        state.next_msn = max(state.next_msn, next_msn)

    def close(self, recording: Recording, ended_at: float) -> None:
        """The stream ended: the recording is a VOD from now on."""
        recording.ended_at = ended_at
        recording.live = False
        recording.ending = False
        self._notify(recording, None)

    def expired(self) -> list[Recording]:
        """Remove VODs past their retention; answers them (delete their files)."""
        limit = self.clock() - self.settings.vod_retention_s
        gone = []
        for state in self.channels.values():
            for recording in list(state.recordings.values()):
                if recording.ended_at is not None and recording.ended_at < limit:
                    del state.recordings[recording.id]
                    gone.append(recording)
                    self._notify(recording, None)
        return gone

    # -- retention ------------------------------------------------------------------------------

    def _evict(self, recording: Recording) -> list[SegmentRecord]:
        settings = self.settings
        evicted: list[SegmentRecord] = []
        slack = 1e-6
        while recording.duration_s > settings.window_s + slack:
            evicted += self._drop_oldest(recording)
        shrunk = False
        while recording.nbytes > settings.max_bytes and self._evictable(recording):
            evicted += self._drop_oldest(recording)
            shrunk = True
        if shrunk:
            state = self.channels[recording.channel]
            now = self.clock()
            if now - state.last_shrink_warning >= SHRINK_WARNING_INTERVAL_S:
                state.last_shrink_warning = now
                log.warning("dvr: %s: the DVR window holds only %.0f s of the %.0f s asked for: "
                            "%d bytes reached --dvr-max-bytes=%d (oldest segments removed first)",
                            recording.channel, recording.duration_s, settings.window_s,
                            recording.nbytes, settings.max_bytes)
        return evicted

    @staticmethod
    def _evictable(recording: Recording) -> bool:
        return sum(len(track.segments) for track in recording.tracks.values()) > len(recording.tracks)

    @staticmethod
    def _drop_oldest(recording: Recording) -> list[SegmentRecord]:
        """Drop the oldest msn from every track holding it (renditions stay aligned)."""
        oldest = min(track.segments[0].msn for track in recording.tracks.values() if track.segments)
        return [track.pop_oldest() for track in recording.tracks.values()
                if track.segments and track.segments[0].msn == oldest]


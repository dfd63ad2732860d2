"""What the origin holds per channel and rendition: init, parts, segments, live and DVR windows.

The packager publishes an ``InitSegment`` per rendition and then ``Part`` after ``Part``
(``live.package.parts``), through the ``live.package.sink.PartSink`` operations the store
implements (``publish_init``, ``publish_part``, ``drop_rendition``, ``end``). A segment is its
parts joined once, when its last part arrives; the parts are then re-pointed at slices of that
one buffer, so a segment and its parts cost their bytes once. Windows (RFC 8216bis 4.4.4.9,
Apple HLS authoring spec):

* part lines leave the playlist once older than 3 target durations; their files stay
  downloadable for 3 more, then the per-part records go;
* segments stay for the DVR window (time based, default 4 h) but never fewer than
  ``min_live_segments`` (a live playlist holds >= 6 segments);
* a per-channel byte budget bounds memory: over it, the oldest segment number is evicted from
  every rendition (keeping renditions aligned for switching), down to the live minimum.

The store is synchronous and does no I/O. Listeners (the HTTP shell's ``Blocker``) hear about
every change through ``add_listener``; publishing must therefore happen on the thread that
serves requests (the event loop thread).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from live.origin.blocking import Probe, Progress
from live.package.parts import InitSegment, Part
from live.package.sink import PublishError, StreamIds
from live.package.timing import ChannelTiming

if TYPE_CHECKING:
    from live.package.sink import PartSink

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
_EPOCH = re.compile(r"[0-9a-z]{1,16}\Z")
#: Names the URL layout reserves (``/hls/{channel}/master.m3u8``, the DVR's ``dvr/`` and ``vod/``).
_RESERVED_RENDITIONS = frozenset({"master", "dvr", "vod"})
#: Segments a rendition may lack when a resumed run starts (filled with EXT-X-GAP segments).
MAX_RESUME_HOLE = 3
#: Slack on part/segment durations for timestamp rounding (a 1/90000 s tick is far below it).
DURATION_SLACK_S = 0.001


@dataclass(frozen=True, slots=True)
class OriginSettings:
    timing: ChannelTiming = field(default_factory=ChannelTiming)
    dvr_window_s: float = 4 * 3600.0
    #: Bytes one channel may hold in memory (all renditions); oldest segments go first.
    channel_byte_budget: int = 512 * 1024 * 1024
    min_live_segments: int = 6
    #: Blocking requests held at once, all channels; beyond it new ones get 503.
    max_held_requests: int = 100_000

    def __post_init__(self) -> None:
        if self.min_live_segments < 1:
            raise ValueError("min_live_segments must be >= 1")
        if self.dvr_window_s <= 0 or self.channel_byte_budget <= 0:
            raise ValueError("dvr_window_s and channel_byte_budget must be positive")


@dataclass(slots=True, eq=False)
class StoredPart:
    msn: int
    index: int
    duration_s: float
    independent: bool
    start_s: float  # media time from the rendition's first part
    data: bytes | memoryview
    gap: bool = False  # no media: listed with GAP=YES, never served (RFC 8216bis 4.4.4.9)


@dataclass(slots=True, eq=False)
class Segment:
    msn: int
    start_s: float
    program_date_time: float  # capture wall-clock of its first part (epoch seconds)
    parts: list[StoredPart] = field(default_factory=list)
    duration_s: float = 0.0
    data: bytes | None = None  # set once complete
    nbytes: int = 0
    #: Its playlist lines once they can no longer change (complete, no part listed); a memo.
    block: str = ""
    decode_time: int = 0  # tfdt of its first sample (the DASH timeline's S@t)
    gap: bool = False  # made of gap parts: EXT-X-GAP (RFC 8216bis 4.4.4.7), never served
    #: The stream (run) it belongs to: in its media URLs, and names its init segment.
    epoch: str = ""
    #: The first segment of a resumed run (another ingest node took over): EXT-X-DISCONTINUITY.
    discontinuity: bool = False

    @property
    def complete(self) -> bool:
        return self.data is not None

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


class RenditionState:
    """One rendition's init, segments (oldest first, the last one possibly open) and progress."""

    __slots__ = ("by_msn", "discontinuity_sequence", "edge_s", "has_video", "init", "inits", "last",
                 "memo", "nbytes", "part_wire", "parts_from", "resuming", "segments", "wire")

    def __init__(self, init: InitSegment) -> None:
        self.init = init
        #: Init segments of earlier runs whose segments are still held, by epoch (a resume).
        self.inits: dict[str, InitSegment] = {}
        #: EXT-X-DISCONTINUITY tags evicted from the top (RFC 8216bis 6.2.2).
        self.discontinuity_sequence = 0
        #: Resumed: the next segment opens a new run (new init allowed, a discontinuity).
        self.resuming = False
        self.segments: deque[Segment] = deque()
        self.by_msn: dict[int, Segment] = {}
        self.edge_s = 0.0
        self.last: Progress | None = None
        self.nbytes = len(init.data)
        self.parts_from = 0  # msn of the oldest segment that may still hold part records
        #: Rendered playlists keyed by the HTTP shell's variant, valid for one channel version.
        self.memo: dict[tuple[bool, bool], tuple[int, bytes]] = {}
        #: Whole answers (head and body) to released blocking reloads, by the same variant, each
        #: valid for one channel version and one Date second: (version, date, bytes).
        self.wire: dict[tuple[bool, bool], tuple[int, str, bytes]] = {}
        #: The same for the last preload-hinted part released: (msn, index, date, bytes).
        self.part_wire: tuple[int, int, str, bytes] | None = None
        self.has_video = init.width is not None or any(
            codec.split(".")[0] in ("avc1", "avc3", "hvc1", "hev1", "av01", "vp09")
            for codec in init.codecs.split(",")
        )

    @property
    def name(self) -> str:
        return self.init.rendition

    def complete_segments(self) -> Iterator[Segment]:
        return (seg for seg in self.segments if seg.complete)

    @property
    def complete_count(self) -> int:
        if not self.segments:
            return 0
        return len(self.segments) - (0 if self.segments[-1].complete else 1)

    @property
    def parts_per_segment(self) -> int:
        for seg in reversed(self.segments):
            if seg.complete and seg.parts:
                return len(seg.parts)
        return 0

    def segment(self, msn: int) -> Segment | None:
        return self.by_msn.get(msn)

    def init_of(self, epoch: str, current: str) -> InitSegment | None:
        """The init segment of run ``epoch`` (``current`` is the channel's epoch now)."""
        return self.init if epoch == current else self.inits.get(epoch)

    def complete_segment(self, msn: int) -> Segment | None:
        seg = self.by_msn.get(msn)
        return seg if seg is not None and seg.complete else None

    def part_listed(self, part: StoredPart, timing: ChannelTiming) -> bool:
        return self.edge_s - part.start_s <= timing.part_list_window_s + DURATION_SLACK_S

    def part(self, msn: int, index: int, timing: ChannelTiming) -> StoredPart | None:
        """A part still downloadable (listed, or delisted less than 3 target durations ago)."""
        seg = self.by_msn.get(msn)
        if seg is None or not 0 <= index < len(seg.parts):
            return None
        part = seg.parts[index]
        if self.edge_s - part.start_s > timing.part_file_window_s + DURATION_SLACK_S:
            return None
        return part

    def average_bandwidth(self) -> int | None:
        """Mean bits/s over the complete segments held (AVERAGE-BANDWIDTH)."""
        total_bytes = total_s = 0.0
        for seg in self.complete_segments():
            if seg.gap:
                continue
            total_bytes += seg.nbytes
            total_s += seg.duration_s
        return round(total_bytes * 8 / total_s) if total_s > 0 else None

    def peak_bandwidth(self) -> int | None:
        peak = None
        for seg in self.complete_segments():
            if seg.duration_s > 0 and not seg.gap:
                bps = round(seg.nbytes * 8 / seg.duration_s)
                peak = bps if peak is None else max(peak, bps)
        return peak


class ChannelState:
    """One stream of one channel: created by its first init, reset when the channel restarts."""

    __slots__ = ("date_ranges", "ended", "epoch", "memo", "name", "renditions", "timing", "version")

    def __init__(self, name: str, epoch: str, timing: ChannelTiming) -> None:
        self.name = name
        self.epoch = epoch  # in every media URL, so a restarted stream never hits stale caches
        self.timing = timing
        self.renditions: dict[str, RenditionState] = {}
        self.ended = False
        self.version = 0  # bumped on every change; keys rendered-playlist memos
        #: The rendered multivariant playlist for one version, kept by the HTTP shell.
        self.memo: tuple[int, str] | None = None
        #: EXT-X-DATERANGE lines every media playlist carries (ad breaks), with when each ends.
        self.date_ranges: list[DateRange] = []

    def rendition(self, name: str) -> RenditionState | None:
        return self.renditions.get(name)

    @property
    def total_bytes(self) -> int:
        return sum(rend.nbytes for rend in self.renditions.values())


Listener = Callable[[str, str | None], None]

#: Date ranges kept per channel (the oldest go first); far more than breaks in a DVR window.
MAX_DATE_RANGES = 64


@dataclass(frozen=True, slots=True)
class DateRange:
    """Playlist lines about a span of wall-clock time (RFC 8216bis 4.4.5.1), and its end."""

    end_s: float
    lines: tuple[str, ...]


class OriginStore:
    """All channels the origin serves. Synchronous; see the module docstring for the windows."""

    def __init__(self, settings: OriginSettings | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings or OriginSettings()
        self._clock = clock
        self._channels: dict[str, ChannelState] = {}
        self._listeners: list[Listener] = []
        self._stream_ids = StreamIds(clock)

    # -- reading -----------------------------------------------------------------------------

    def channel(self, name: str) -> ChannelState | None:
        return self._channels.get(name)

    def progress_probe(self, state: ChannelState, rendition: str) -> Probe:
        """What a held request re-checks on each wake-up: (ended, progress) of ``rendition`` in
        ``state``, or None once the channel restarted (a newer state) or the rendition is gone."""
        def probe() -> tuple[bool, Progress | None] | None:
            if self.channel(state.name) is not state:
                return None
            rend = state.rendition(rendition)
            return None if rend is None else (state.ended, rend.last)
        return probe

    def channel_names(self) -> list[str]:
        return list(self._channels)

    def add_listener(self, listener: Listener) -> None:
        """``listener(channel, rendition)`` after a rendition changes; ``rendition=None`` when the
        whole channel ended, restarted or was removed."""
        self._listeners.append(listener)

    # -- publishing (the packager's side) -------------------------------------------------------

    def open(self, channel: str, timing: ChannelTiming | None = None, *,
             epoch: str | None = None) -> ChannelState:
        """Start a new stream on ``channel`` (replacing any previous one) with its timing.
        ``epoch`` is the stream's id when a packager elsewhere chose it (a CMAF push), so every
        origin fed by that packager serves the same media URLs; by default the store picks one."""
        if not _NAME.match(channel):
            raise PublishError(f"channel name {channel!r} must match {_NAME.pattern}")
        if epoch is not None and not _EPOCH.match(epoch):
            raise PublishError(f"stream epoch {epoch!r} must match {_EPOCH.pattern}")
        if epoch is None:
            epoch = self._stream_ids.next()
        replaced = channel in self._channels
        state = self._channels[channel] = ChannelState(channel, epoch,
                                                       timing or self.settings.timing)
        if replaced:
            self._notify(channel, None)
        return state

    def next_msn(self, channel: str) -> int | None:
        """Where a live channel's numbering goes on: one past the newest segment of any
        rendition (its open segment counts; a resume closes it). None when not live."""
        state = self._channels.get(channel)
        if state is None or state.ended:
            return None
        return max((rend.last.msn + 1 for rend in state.renditions.values()
                    if rend.last is not None), default=None)

    def resume(self, channel: str, epoch: str, timing: ChannelTiming, next_msn: int) -> ChannelState | None:
        """Continue the live channel's playlists with a new run ``epoch`` starting at segment
        ``next_msn`` (another ingest node took the stream over): every open segment is closed,
        a rendition behind ``next_msn`` (at most ``MAX_RESUME_HOLE`` segments) is filled with
        gap segments so numbering stays contiguous, and each rendition's next segment carries
        EXT-X-DISCONTINUITY and may come with a new init segment. None when that cannot be
        done (not live, other timing, ``next_msn`` behind the channel or too far ahead): the
        caller opens a new stream instead."""
        if not _EPOCH.match(epoch):
            raise PublishError(f"stream epoch {epoch!r} must match {_EPOCH.pattern}")
        state = self._channels.get(channel)
        lead = self.next_msn(channel)
        if state is None or lead is None or state.timing != timing \
                or not lead <= next_msn <= lead + MAX_RESUME_HOLE:
            return None
        for rend in state.renditions.values():
            if rend.segments and not rend.segments[-1].complete:
                self._complete(rend.segments[-1])
            if rend.last is not None:
                rend.last = Progress(rend.last.msn, rend.last.part, True)
                for msn in range(rend.last.msn + 1, next_msn):
                    self._gap_segment(state, rend, msn)
            if rend.last is not None or rend.segments:
                rend.inits[state.epoch] = rend.init
                rend.resuming = True
        state.epoch = epoch
        for rendition in state.renditions:
            self._changed(state, rendition)
        return state

    def _gap_segment(self, state: ChannelState, rend: RenditionState, msn: int) -> None:
        """Segment ``msn`` of ``rend`` never arrived before a resume: list it as EXT-X-GAP,
        as long as the same segment of another rendition (else TARGETDURATION)."""
        duration = float(state.timing.target_duration_s)
        for other in state.renditions.values():
            seg = other.complete_segment(msn)
            if seg is not None:
                duration = seg.duration_s
                break
        prev = rend.segments[-1] if rend.segments else None
        wallclock = prev.program_date_time + prev.duration_s if prev is not None else self._clock()
        seg = Segment(msn, rend.edge_s, wallclock, duration_s=duration, data=b"", gap=True,
                      epoch=prev.epoch if prev is not None else state.epoch)
        rend.segments.append(seg)
        rend.by_msn[msn] = seg
        rend.edge_s += duration
        rend.last = Progress(msn, 0, True)

    def publish_init(self, channel: str, init: InitSegment, timing: ChannelTiming | None = None) -> None:
        """Add a rendition. An init for an ended (or unknown) channel starts a new stream with
        ``timing`` (default: the store's); an open stream's timing is fixed by its first init."""
        state = self._channels.get(channel)
        if state is None or state.ended:
            state = self.open(channel, timing)
        elif timing is not None and timing != state.timing and not state.renditions:
            state.timing = timing  # nothing of the stream was listed yet: no player saw the old
        elif timing is not None and timing != state.timing:
            raise PublishError(f"{channel}/{init.rendition}: timing {timing} differs from the "
                               f"stream's {state.timing} (open a new stream to change it)")
        if not _NAME.match(init.rendition) or init.rendition in _RESERVED_RENDITIONS:
            raise PublishError(f"rendition name {init.rendition!r} must match {_NAME.pattern} "
                               f"and not be one of {sorted(_RESERVED_RENDITIONS)}")
        if init.bandwidth <= 0 or not init.codecs:
            raise PublishError(f"rendition {init.rendition!r}: bandwidth and codecs are required")
        existing = state.renditions.get(init.rendition)
        if existing is not None:
            if existing.init == init:
                return
            if existing.resuming:
                existing.init = init  # the new run's; the old one stays in ``inits``
                self._changed(state, init.rendition)
                return
            if existing.last is not None:
                raise PublishError(f"{channel}/{init.rendition}: a new init segment after parts "
                                   "needs a new stream (call open() first)")
        state.renditions[init.rendition] = RenditionState(init)
        self._changed(state, init.rendition)

    def publish_part(self, channel: str, part: Part) -> None:
        state = self._channels.get(channel)
        if state is None:
            raise PublishError(f"part for unknown channel {channel!r}: publish its init first")
        if state.ended:
            raise PublishError(f"part for ended channel {channel!r}: publish an init to restart")
        rend = state.renditions.get(part.rendition)
        if rend is None:
            raise PublishError(f"part for {channel}/{part.rendition} before its init segment")
        timing = state.timing
        self._check_part(channel, rend, part, timing)

        seg = rend.segments[-1] if rend.segments and not rend.segments[-1].complete else None
        if seg is None:
            seg = Segment(part.msn, rend.edge_s, part.capture_wallclock,
                          decode_time=part.decode_time, gap=part.gap, epoch=state.epoch,
                          discontinuity=rend.resuming)
            rend.resuming = False
            rend.segments.append(seg)
            rend.by_msn[part.msn] = seg
        seg.parts.append(StoredPart(part.msn, part.index, part.duration_s, part.independent,
                                    rend.edge_s, part.data, part.gap))
        seg.duration_s += part.duration_s
        seg.nbytes += len(part.data)
        rend.nbytes += len(part.data)
        rend.edge_s += part.duration_s
        rend.last = Progress(part.msn, part.index, part.segment_end)
        if part.segment_end:
            self._complete(seg)
        self._retire_parts(rend, timing)
        self._evict(state)
        self._changed(state, part.rendition)

    def end(self, channel: str) -> None:
        """The stream ended: close any open segment; playlists get EXT-X-ENDLIST."""
        state = self._channels.get(channel)
        if state is None or state.ended:
            return
        for rend in state.renditions.values():
            if rend.segments and not rend.segments[-1].complete:
                self._complete(rend.segments[-1])
                if rend.last is not None:
                    rend.last = Progress(rend.last.msn, rend.last.part, True)
        state.ended = True
        state.version += 1
        self._notify(channel, None)

    def drop_rendition(self, channel: str, rendition: str) -> None:
        """Withdraw one rendition (the packager retired it): it leaves the multivariant
        playlist and the rendition reports; its media answers 404 from now on."""
        state = self._channels.get(channel)
        if state is None or state.renditions.pop(rendition, None) is None:
            return
        self._changed(state, rendition)
        self._notify(channel, None)

    def remove(self, channel: str) -> None:
        if self._channels.pop(channel, None) is not None:
            self._notify(channel, None)

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _check_part(channel: str, rend: RenditionState, part: Part, timing: ChannelTiming) -> None:
        where = f"{channel}/{part.rendition} part {part.msn}.{part.index}"
        if part.msn < 0 or part.index < 0:
            raise PublishError(f"{where}: msn and index must be >= 0")
        if not 0 < part.duration_s <= timing.part_target_s + DURATION_SLACK_S:
            raise PublishError(f"{where}: duration {part.duration_s:.6f} s outside (0, PART-TARGET="
                               f"{timing.part_target_s}] (RFC 8216bis 4.4.4.9)")
        if bool(part.data) == part.gap:
            raise PublishError(f"{where}: " + ("a gap part carries no media" if part.gap else "empty part"))
        last = rend.last
        expected = (part.msn, 0) if last is None else last.next_part
        if (part.msn, part.index) != expected:
            raise PublishError(f"{where}: expected part {expected[0]}.{expected[1]} next")
        if part.index == 0 and not part.independent and not part.gap:
            raise PublishError(f"{where}: the first part of a segment must be independent")
        seg = rend.segments[-1] if rend.segments and not rend.segments[-1].complete else None
        if seg is not None and seg.gap != part.gap:
            raise PublishError(f"{where}: a segment is all media or all gap (RFC 8216bis 4.4.4.7)")
        seg_duration = (seg.duration_s if seg is not None else 0.0) + part.duration_s
        if round(seg_duration) > timing.target_duration_s:
            raise PublishError(f"{where}: segment {part.msn} would last {seg_duration:.3f} s, over "
                               f"TARGETDURATION={timing.target_duration_s} (RFC 8216bis 4.4.3.1)")

    @staticmethod
    def _complete(seg: Segment) -> None:
        data = b"".join(part.data for part in seg.parts)
        view = memoryview(data)
        offset = 0
        for part in seg.parts:
            size = len(part.data)
            part.data = view[offset:offset + size]
            offset += size
        seg.data = data

    @staticmethod
    def _retire_parts(rend: RenditionState, timing: ChannelTiming) -> None:
        """Drop part records of complete segments whose every part is past the file window."""
        if rend.segments:
            rend.parts_from = max(rend.parts_from, rend.segments[0].msn)
        while (seg := rend.by_msn.get(rend.parts_from)) is not None and seg.complete:
            if seg.parts and (rend.edge_s - seg.parts[-1].start_s
                              <= timing.part_file_window_s + DURATION_SLACK_S):
                return
            seg.parts = []
            rend.parts_from += 1

    def _evict(self, state: ChannelState) -> None:
        minimum = self.settings.min_live_segments
        for rend in state.renditions.values():
            while (rend.complete_count > minimum
                   and rend.edge_s - rend.segments[0].end_s
                   > self.settings.dvr_window_s + DURATION_SLACK_S):
                self._drop_oldest(rend)
        budget = self.settings.channel_byte_budget
        while state.total_bytes > budget:
            candidates = [rend for rend in state.renditions.values() if rend.complete_count > minimum]
            if not candidates:
                return  # the live minimum alone exceeds the budget; keep serving it
            oldest = min(rend.segments[0].msn for rend in candidates)
            for rend in candidates:
                if rend.segments[0].msn == oldest:
                    self._drop_oldest(rend)

    @staticmethod
    def _drop_oldest(rend: RenditionState) -> None:
        seg = rend.segments.popleft()
        del rend.by_msn[seg.msn]
        rend.nbytes -= seg.nbytes
        if seg.discontinuity:
            rend.discontinuity_sequence += 1
        if not rend.segments or rend.segments[0].epoch != seg.epoch:
            rend.inits.pop(seg.epoch, None)  # no segment of that run is left

    def next_segment_boundary(self, channel: str) -> float | None:
        """Wall-clock time the next segment of a live channel starts (None when not live)."""
        state = self._channels.get(channel)
        if state is None or state.ended or not state.renditions:
            return None
        rend = next(iter(state.renditions.values()))
        if not rend.segments:
            return None
        seg = rend.segments[-1]
        if seg.complete:
            return seg.program_date_time + seg.duration_s
        return seg.program_date_time + max(seg.duration_s, float(state.timing.target_duration_s))

    def add_date_range(self, channel: str, date_range: DateRange) -> None:
        """Carry ``date_range`` in every media playlist of the channel's current stream."""
        state = self._channels.get(channel)
        if state is None:
            return
        state.date_ranges.append(date_range)
        del state.date_ranges[:-MAX_DATE_RANGES]
        for rendition in state.renditions:
            self._changed(state, rendition)

    def _changed(self, state: ChannelState, rendition: str) -> None:
        state.version += 1
        self._notify(state.name, rendition)

    def _notify(self, channel: str, rendition: str | None) -> None:
        for listener in self._listeners:
            listener(channel, rendition)


if TYPE_CHECKING:
    # mypy proves the store is a packager's sink (live.package never imports the origin)
    _STORE_IS_A_PART_SINK: PartSink = OriginStore()

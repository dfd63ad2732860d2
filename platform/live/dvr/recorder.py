"""The DVR's ``PartSink``: packaged parts in, complete segments on disk and in the catalog.

It sits beside the origin behind a ``TeeSink`` (``live.package.sink``), so the segmenter is not
touched and the origin keeps only the live edge. Parts of a rendition's open segment are held by
reference (the same bytes the origin holds) until the segment completes: its last part
(``segment_end``), the first part of the next segment, or the end of the stream. The segment is
then queued for the writer thread and filed in the catalog once it is on disk, so a playlist
never lists a segment that a crash could lose. The packager's per-stream msns become the
recording's (``run + msn``). A stream's end closes its recording (a VOD) once its last
segments are on disk; the end is marked in the catalog at once, so a publisher that reconnects
before that starts a recording of its own instead of resuming the one being closed. Disk
trouble costs DVR segments, logged, never the live stream.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import partial

from live.dvr.catalog import DvrCatalog, Recording
from live.dvr.disk import SegmentStore
from live.dvr.index import EndRecord, InitRecord, SegmentRecord
from live.dvr.writer import Writer
from live.package.parts import InitSegment, Part
from live.package.timing import ChannelTiming

log = logging.getLogger("live.dvr")


@dataclass(slots=True)
class _OpenSegment:
    msn: int  # the packager's
    program_date_time: float
    chunks: list[bytes] = field(default_factory=list)
    duration_s: float = 0.0
    nbytes: int = 0


@dataclass(slots=True)
class _Stream:
    recording: Recording
    run: int
    first_run: bool  # the recording's first run: its first segment follows no discontinuity
    first_msn: int | None = None  # the packager's first msn (it maps to ``run``)
    next_msn: int = 0  # the recording's msn after the last segment completed
    open: dict[str, _OpenSegment] = field(default_factory=dict)
    with_parts: set[str] = field(default_factory=set)
    inits: dict[str, InitSegment] = field(default_factory=dict)


class DvrRecorder:
    """A ``PartSink`` that records every channel's complete segments."""

    def __init__(self, catalog: DvrCatalog, store: SegmentStore, writer: Writer) -> None:
        self.catalog = catalog
        self.store = store
        self.writer = writer
        self._streams: dict[str, _Stream] = {}
        self.segments_dropped = 0

    def sweep(self) -> None:
        """Delete VODs past their retention (on every new run, and whenever someone lists them)."""
        for recording in self.catalog.expired():
            log.info("dvr: %s recording %d expired (VOD retention)", recording.channel, recording.id)
            self.writer.submit(partial(self.store.delete_recording, recording.channel, recording.id),
                               what="removing an expired recording")

    def _begin(self, channel: str, timing: ChannelTiming) -> _Stream:
        self.sweep()
        start = self.catalog.begin_run(channel, timing)
        store, recording = self.store, start.recording
        if start.closed is not None:
            closed = start.closed
            end = EndRecord(closed.last_end_pdt)
            self.writer.submit(lambda: store.append(channel, closed.id, end), what="closing a recording")
        run = start.run
        self.writer.submit(lambda: store.append(channel, recording.id, run), what="starting a run")
        stream = _Stream(recording, run.run, first_run=run.run == recording.id)
        self._streams[channel] = stream
        log.info("dvr: %s: %s recording %d at msn %d", channel,
                 "starting" if stream.first_run else "resuming", recording.id, run.run)
        return stream

    # -- PartSink -------------------------------------------------------------------------------

    def publish_init(self, channel: str, init: InitSegment, timing: ChannelTiming) -> None:
        stream = self._streams.get(channel)
        if stream is None or stream.recording.ended or init.rendition in stream.with_parts:
            stream = self._begin(channel, timing)
        if stream.inits.get(init.rendition) == init:
            return
        stream.inits[init.rendition] = init
        store, recording, run = self.store, stream.recording, stream.run

        def filed(record: InitRecord) -> None:
            self.catalog.add_init(recording, record)

        self.writer.submit(lambda: store.write_init(channel, recording.id, run, init), filed,
                           what=f"writing {channel}/{init.rendition} init")

    def publish_part(self, channel: str, part: Part) -> None:
        stream = self._streams.get(channel)
        if stream is None or part.rendition not in stream.inits:
            return  # the origin refused it first, or the DVR started after this stream
        stream.with_parts.add(part.rendition)
        segment = stream.open.get(part.rendition)
        if segment is not None and segment.msn != part.msn:
            self._complete(channel, stream, part.rendition)
            segment = None
        if segment is None:
            segment = stream.open[part.rendition] = _OpenSegment(part.msn, part.capture_wallclock)
        segment.chunks.append(part.data)
        segment.duration_s += part.duration_s
        segment.nbytes += len(part.data)
        if part.segment_end:
            self._complete(channel, stream, part.rendition)

    def drop_rendition(self, channel: str, rendition: str) -> None:
        stream = self._streams.get(channel)
        if stream is not None:
            stream.open.pop(rendition, None)
            stream.inits.pop(rendition, None)

    def end(self, channel: str) -> None:
        stream = self._streams.pop(channel, None)
        if stream is None:
            return
        for rendition in list(stream.open):
            self._complete(channel, stream, rendition)
        store, recording, catalog = self.store, stream.recording, self.catalog
        # a stream that starts before the end below reaches the disk records on its own
        catalog.end(recording, stream.next_msn)

        def ended(_: None) -> None:
            catalog.close(recording, catalog.clock())

        end = EndRecord(catalog.clock())
        self.writer.submit(lambda: store.append(channel, recording.id, end), ended,
                           what=f"ending {channel} recording {recording.id}")

    # -- internals ------------------------------------------------------------------------------

    def _complete(self, channel: str, stream: _Stream, rendition: str) -> None:
        segment = stream.open.pop(rendition)
        if stream.first_msn is None:
            stream.first_msn = segment.msn
        msn = stream.run + segment.msn - stream.first_msn
        stream.next_msn = max(stream.next_msn, msn + 1)
        record = SegmentRecord(rendition, msn, segment.duration_s, segment.program_date_time,
                               stream.run, discontinuity=msn == stream.run and not stream.first_run,
                               nbytes=segment.nbytes)
        store, recording, chunks = self.store, stream.recording, segment.chunks

        def filed(_: None) -> None:
            self._file(recording, record)

        accepted = self.writer.submit(
            lambda: store.write_segment(channel, recording.id, record, chunks), filed,
            nbytes=segment.nbytes, what=f"writing {channel}/{rendition} segment {record.msn}")
        if not accepted:
            self.segments_dropped += 1
            log.warning("dvr: %s/%s: segment %d dropped: the disk is %d bytes behind",
                        channel, rendition, record.msn, self.writer_backlog())

    def writer_backlog(self) -> int:
        return int(getattr(self.writer, "pending_bytes", 0))

    def _file(self, recording: Recording, record: SegmentRecord) -> None:
        if self.catalog.recording(recording.channel, recording.id) is not recording:
            return
        try:
            evicted = self.catalog.add_segment(recording, record)
        except ValueError as exc:
            log.error("dvr: %s", exc)
            return
        if evicted:
            store, channel = self.store, recording.channel
            self.writer.submit(lambda: store.delete_segments(channel, recording.id, evicted),
                               what=f"removing {len(evicted)} segments of {channel}")

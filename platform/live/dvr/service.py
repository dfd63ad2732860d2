"""``Dvr``: the store, catalog, writer thread and recorder of one process, opened and closed as one.

Opening reads every recording back from disk (skipping corrupt entries with a logged reason),
closes as VODs the interrupted recordings no stream can resume any more, and removes VODs past
their retention; closing drains the writer so everything queued reaches the disk.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path

from live.dvr.catalog import DvrCatalog, DvrSettings, Recording, Video
from live.dvr.disk import LocalDiskStore, SegmentStore
from live.dvr.index import EndRecord
from live.dvr.recorder import DvrRecorder
from live.dvr.writer import InlineWriter, ThreadWriter, Writer

log = logging.getLogger("live.dvr")


class Dvr:
    """Everything the DVR is in one process; see ``open_dvr``."""

    def __init__(self, store: SegmentStore, catalog: DvrCatalog, writer: Writer) -> None:
        self.store = store
        self.catalog = catalog
        self.writer = writer
        self.recorder = DvrRecorder(catalog, store, writer)

    @property
    def settings(self) -> DvrSettings:
        return self.catalog.settings

    def restore(self) -> None:
        """Fill the catalog from the store (blocking: call before serving)."""
        now = self.catalog.clock()
        for loaded in self.store.load():
            recording = self.catalog.restore(loaded.channel, loaded.recording, loaded.records)
            if recording is None:
                log.warning("dvr: %s recording %d has no usable run; removing it",
                            loaded.channel, loaded.recording)
                self.store.delete_recording(loaded.channel, loaded.recording)
                continue
            log.info("dvr: %s recording %d: %.0f s restored%s%s", loaded.channel, recording.id,
                     recording.duration_s, " (VOD)" if recording.ended else " (interrupted)",
                     f", {loaded.skipped} entries skipped" if loaded.skipped else "")
        for state in self.catalog.channels.values():
            for recording in state.recordings.values():
                if recording.ended:
                    continue
                resumable = (recording is state.current
                             and now - recording.last_end_pdt <= self.settings.window_s)
                if not resumable:
                    self._close(recording)
        self.sweep()

    def _close(self, recording: Recording) -> None:
        end = EndRecord(recording.last_end_pdt)
        self.catalog.close(recording, end.ended_at)
        store = self.store
        self.writer.submit(lambda: store.append(recording.channel, recording.id, end),
                           what="closing an interrupted recording")

    def sweep(self) -> None:
        """Delete VODs past ``vod_retention_s``."""
        self.recorder.sweep()

    def videos(self, channel: str) -> list[Video]:
        """The channel's recordings, newest first."""
        self.sweep()
        state = self.catalog.channel(channel)
        if state is None:
            return []
        return [Video.of(recording) for recording in reversed(state.recordings.values())
                if recording.tracks]

    async def close(self) -> None:
        await asyncio.to_thread(self.writer.close)


async def open_dvr(root: Path, settings: DvrSettings, *,
                   clock: Callable[[], float] = time.time, inline: bool = False) -> Dvr:
    """Open the DVR under ``root``: restored from disk, writing through its own thread
    (``inline``: on the caller's, for tools and tests)."""
    store = LocalDiskStore(root, durable=settings.durable)
    writer: Writer = (InlineWriter() if inline else
                      ThreadWriter(asyncio.get_running_loop(), settings.max_pending_bytes))
    dvr = Dvr(store, DvrCatalog(settings, clock=clock), writer)
    await asyncio.to_thread(dvr.restore)
    return dvr

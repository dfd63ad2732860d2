"""A publisher that drops and comes straight back: the old recording's end is still waiting for
the disk (behind the writer thread) when the new stream begins. The end must close the old
recording only; the new stream records on, live, in a recording of its own, and a restart finds
the same."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from live.dvr.catalog import DvrCatalog, DvrSettings
from live.dvr.disk import LocalDiskStore
from live.dvr.playlists import render_dvr_media
from live.dvr.service import Dvr
from live.dvr.writer import ThreadWriter

from .conftest import Clock, Feed, make_dvr


async def drained(dvr: Dvr) -> None:
    """Wait until every job queued so far ran and its result reached the catalog."""
    done = asyncio.Event()
    dvr.writer.submit(lambda: None, lambda _: done.set(), what="marker")
    await asyncio.wait_for(done.wait(), 10)


async def test_a_quick_restart_does_not_end_the_new_recording(tmp_path: Path) -> None:
    clock = Clock()
    settings = DvrSettings(durable=False)
    writer = ThreadWriter(asyncio.get_running_loop(), settings.max_pending_bytes)
    dvr = Dvr(LocalDiskStore(tmp_path, durable=False), DvrCatalog(settings, clock=clock), writer)
    try:
        Feed(dvr, clock).start().run(20)
        await drained(dvr)
        old = dvr.catalog.recording("alpha")
        assert old is not None and old.live

        gate = threading.Event()  # the disk is slow: the writer is stuck on an earlier job
        dvr.writer.submit(lambda: gate.wait(10), what="a slow write")
        dvr.recorder.end("alpha")
        clock.now += 1
        feed = Feed(dvr, clock).start()  # the publisher is back before the end reached the disk
        feed.run(4)
        gate.set()
        await drained(dvr)
        feed.run(4)
        await drained(dvr)

        assert old.ended and not old.live
        assert render_dvr_media(old, "720p").endswith("#EXT-X-ENDLIST\n")
        new = dvr.catalog.recording("alpha")
        assert new is not None and new is not old
        assert new.live and not new.ended
        assert len(new.tracks["720p"].segments) == 4
        assert new.id >= old.next_msn  # msns never repeat on a channel
        assert "#EXT-X-ENDLIST" not in render_dvr_media(new, "720p")
        assert [video.live for video in dvr.videos("alpha")] == [True, False]
    finally:
        await asyncio.to_thread(writer.close)

    restarted = make_dvr(tmp_path, clock)  # and the disk says the same
    again = restarted.catalog.recording("alpha")
    assert again is not None and again.id == new.id and not again.ended
    assert len(again.tracks["720p"].segments) == 4
    vod = restarted.catalog.recording("alpha", old.id)
    assert vod is not None and vod.ended
    assert len(vod.tracks["720p"].segments) == 10

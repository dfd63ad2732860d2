"""The asyncio half of blocking reload: one event per awaited position, woken by store changes."""

from __future__ import annotations

import asyncio

import pytest
from live.origin.blocking import (
    ANY_PART,
    Blocker,
    Overloaded,
    PartTarget,
    Progress,
    SegmentTarget,
    WaitOutcome,
)


class Rendition:
    """What the probe reads: the rendition's progress and the channel's ended flag."""

    def __init__(self) -> None:
        self.progress: Progress | None = None
        self.ended = False
        self.gone = False

    def probe(self) -> tuple[bool, Progress | None] | None:
        return None if self.gone else (self.ended, self.progress)


async def test_waiters_are_released_when_their_position_is_published() -> None:
    blocker, rend = Blocker(100), Rendition()
    rend.progress = Progress(3, 1, False)
    near = asyncio.ensure_future(blocker.wait("a", "r", PartTarget(3, 2), rend.probe, 30))
    far = asyncio.ensure_future(blocker.wait("a", "r", SegmentTarget(3), rend.probe, 30))
    await asyncio.sleep(0)
    assert blocker.held == 2
    rend.progress = Progress(3, 2, False)
    blocker.notify("a", "r", rend.progress, False)
    assert await near is WaitOutcome.READY
    assert not far.done()
    rend.progress = Progress(3, 3, True)
    blocker.notify("a", "r", rend.progress, False)
    assert await far is WaitOutcome.READY
    assert blocker.held == 0


async def test_ready_targets_return_without_waiting() -> None:
    blocker, rend = Blocker(100), Rendition()
    rend.progress = Progress(0, 0, False)
    assert await blocker.wait("a", "r", ANY_PART, rend.probe, 0) is WaitOutcome.READY


async def test_unreached_target_times_out() -> None:
    blocker, rend = Blocker(100), Rendition()
    outcome = await blocker.wait("a", "r", ANY_PART, rend.probe, 0.01)
    assert outcome is WaitOutcome.TIMEOUT and blocker.held == 0


async def test_notifications_for_other_renditions_do_not_release() -> None:
    blocker, rend = Blocker(100), Rendition()
    task = asyncio.ensure_future(blocker.wait("a", "r", ANY_PART, rend.probe, 30))
    await asyncio.sleep(0)
    blocker.notify("a", "other", Progress(9, 0, False), False)
    blocker.notify("b", "r", Progress(9, 0, False), False)
    await asyncio.sleep(0.01)
    assert not task.done()
    rend.progress = Progress(0, 0, False)
    blocker.notify("a", "r", rend.progress, False)
    assert await task is WaitOutcome.READY


async def test_end_of_stream_releases_everyone_and_removal_reports_gone() -> None:
    blocker, rend = Blocker(100), Rendition()
    ended = asyncio.ensure_future(blocker.wait("a", "r", SegmentTarget(5), rend.probe, 30))
    await asyncio.sleep(0)
    rend.ended = True
    blocker.notify("a", None, None, True)
    assert await ended is WaitOutcome.READY
    rend.ended, rend.gone = False, False
    gone = asyncio.ensure_future(blocker.wait("a", "r", SegmentTarget(5), rend.probe, 30))
    await asyncio.sleep(0)
    rend.gone = True
    blocker.notify("a", None, None, True)
    assert await gone is WaitOutcome.GONE


async def test_shutdown_releases_holders_as_closed() -> None:
    blocker, rend = Blocker(100), Rendition()
    task = asyncio.ensure_future(blocker.wait("a", "r", ANY_PART, rend.probe, 30))
    await asyncio.sleep(0)
    blocker.drain_all()
    assert await task is WaitOutcome.CLOSED
    assert await blocker.wait("a", "r", ANY_PART, rend.probe, 30) is WaitOutcome.CLOSED


async def test_holding_beyond_the_cap_is_refused() -> None:
    blocker, rend = Blocker(1), Rendition()
    task = asyncio.ensure_future(blocker.wait("a", "r", ANY_PART, rend.probe, 30))
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):
        await blocker.wait("a", "r", ANY_PART, rend.probe, 30)
    blocker.drain_all()
    await task


async def test_one_event_serves_every_holder_of_a_position() -> None:
    blocker, rend = Blocker(10_000), Rendition()
    tasks = [asyncio.ensure_future(blocker.wait("a", "r", PartTarget(0, 1), rend.probe, 30))
             for _ in range(1000)]
    await asyncio.sleep(0)
    assert blocker.awaited("a", "r") == 1
    rend.progress = Progress(0, 1, False)
    blocker.notify("a", "r", rend.progress, False)
    assert set(await asyncio.gather(*tasks)) == {WaitOutcome.READY}

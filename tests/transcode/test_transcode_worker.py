"""Worker processes: real subprocesses, a real SIGKILL, and the stream carrying on."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from collections import defaultdict
from pathlib import Path

import pytest
from live.media.units import AccessUnit, TrackKind
from live.transcode.events import RenditionConfig, RenditionUnit
from live.transcode.filesource import open_file, read_units
from live.transcode.guard import GuardSettings
from live.transcode.pipeline import TranscodeSettings
from live.transcode.supervisor import (
    SupervisorEvent,
    SupervisorSettings,
    SupervisorState,
    TranscodeSupervisor,
    WorkerRestarted,
)

pytestmark = [pytest.mark.ffmpeg, pytest.mark.slow, pytest.mark.timeout(120)]

FPS = 30.0
# No lag drops or shedding here: these tests prove process isolation, not the real-time guard,
# and two shared cores must not turn a slow moment into a missing frame.
CALM = TranscodeSettings(guard=GuardSettings(window_s=1e6, max_lag_s=1e6))


def _looped(path: Path, loops: int) -> list[AccessUnit]:
    """The file's units repeated with shifted timestamps: a longer live stream from a short file."""
    units = list(read_units(path))
    span = max(u.pts_ms for u in units) + round(1000 / FPS)
    return [
        dataclasses.replace(u, dts_ms=u.dts_ms + i * span, pts_ms=u.pts_ms + i * span)
        for i in range(loops)
        for u in units
    ]


class Collector:
    def __init__(self, supervisor: TranscodeSupervisor) -> None:
        self.events: list[SupervisorEvent] = []
        self.task = asyncio.create_task(self._run(supervisor))

    async def _run(self, supervisor: TranscodeSupervisor) -> None:
        async for event in supervisor.events():
            self.events.append(event)

    def units(self) -> dict[str, list[AccessUnit]]:
        out: dict[str, list[AccessUnit]] = defaultdict(list)
        for event in self.events:
            if isinstance(event, RenditionUnit):
                out[event.rendition].append(event.unit)
        return out

    async def wait_units(self, rendition: str, count: int, timeout: float = 60.0) -> None:
        async def poll() -> None:
            while len(self.units()[rendition]) < count:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(poll(), timeout)


async def _publish(supervisor: TranscodeSupervisor, units: list[AccessUnit]) -> int:
    """Feed like a live publisher: one video frame per frame interval."""
    accepted = 0
    for unit in units:
        accepted += supervisor.submit(unit)
        if unit.kind is TrackKind.VIDEO:
            await asyncio.sleep(1 / FPS)
    return accepted


async def test_worker_process_transcodes_a_stream_and_reports_metrics(
    source_360p30_av: Path,
) -> None:
    source = open_file(source_360p30_av)
    supervisor = TranscodeSupervisor(
        "one", source.video, source.fps, audio=source.audio,
        settings=SupervisorSettings(transcode=CALM),
    )  # fmt: skip
    collector = Collector(supervisor)
    await supervisor.start()
    await asyncio.wait_for(supervisor.wait_ready(), 60)
    assert supervisor.pid is not None and supervisor.pid != os.getpid()
    units = list(read_units(source_360p30_av))
    accepted = await _publish(supervisor, units)
    await supervisor.close()
    await collector.task
    assert accepted == len(units)
    outputs = collector.units()
    video_in = [u for u in units if u.kind is TrackKind.VIDEO]
    assert supervisor.ladder is not None
    for rung in supervisor.ladder.encoded:
        assert sorted(u.pts_ms for u in outputs[rung.name]) == sorted(u.pts_ms for u in video_in)
    assert outputs["source"] == video_in
    assert outputs["audio"] == [u for u in units if u.kind is TrackKind.AUDIO]
    configs = {e.rendition for e in collector.events if isinstance(e, RenditionConfig)}
    assert configs == {r.name for r in supervisor.ladder.video} | {"audio"}
    metrics = supervisor.metrics()
    assert metrics.state == SupervisorState.CLOSED.value and metrics.restarts == 0
    assert metrics.encoder is not None and metrics.worker is not None
    assert metrics.worker.frames_decoded == len(video_in)
    assert metrics.worker.delay_p95_ms is not None


async def test_killed_worker_is_restarted_and_the_stream_resumes_at_a_keyframe(
    source_360p30_av: Path,
) -> None:
    source = open_file(source_360p30_av)
    settings = SupervisorSettings(transcode=CALM)
    victim = TranscodeSupervisor("victim", source.video, source.fps, settings=settings)
    bystander = TranscodeSupervisor("bystander", source.video, source.fps, settings=settings)
    victim_out, bystander_out = Collector(victim), Collector(bystander)
    await asyncio.gather(victim.start(), bystander.start())
    await asyncio.wait_for(asyncio.gather(victim.wait_ready(), bystander.wait_ready()), 60)
    video = [u for u in _looped(source_360p30_av, 3) if u.kind is TrackKind.VIDEO]
    first_pid, bystander_pid = victim.pid, bystander.pid
    assert first_pid is not None and bystander_pid is not None

    async def publish_and_kill() -> int:
        accepted = 0
        for index, unit in enumerate(video):
            accepted += victim.submit(unit)
            bystander.submit(unit)
            if index == 45:
                await victim_out.wait_units("360p30", 20)
                os.kill(first_pid, signal.SIGKILL)
            await asyncio.sleep(1 / FPS)
        return accepted

    accepted = await publish_and_kill()
    await victim_out.wait_units("360p30", 60)
    await asyncio.gather(victim.close(), bystander.close())
    await asyncio.gather(victim_out.task, bystander_out.task)

    restarts = [e for e in victim_out.events if isinstance(e, WorkerRestarted)]
    assert len(restarts) == 1 and restarts[0].pid != first_pid
    assert "-9" in restarts[0].reason
    assert victim.metrics().restarts == 1
    assert accepted < len(video), "input up to the next keyframe was dropped, not queued"
    # output after the restart exists and starts with an IDR on every rung
    index = victim_out.events.index(restarts[0])
    after: dict[str, list[AccessUnit]] = defaultdict(list)
    for event in victim_out.events[index:]:
        if isinstance(event, RenditionUnit):
            after[event.rendition].append(event.unit)
    assert victim.ladder is not None
    for rung in victim.ladder.video:
        resumed = after[rung.name]
        assert resumed, f"{rung.name} never resumed"
        assert resumed[0].keyframe
        assert resumed[-1].pts_ms > 2 * 3000
    # the other stream's worker was never touched
    assert bystander.metrics().restarts == 0
    assert not any(isinstance(e, WorkerRestarted) for e in bystander_out.events)
    assert len(bystander_out.units()["360p30"]) == len(video)


async def test_a_source_that_cannot_be_transcoded_fails_without_a_restart_loop(
    source_360p30_av: Path,
) -> None:
    source = open_file(source_360p30_av)
    broken = dataclasses.replace(source.video, width=0)
    supervisor = TranscodeSupervisor("broken", broken, source.fps)
    collector = Collector(supervisor)
    await supervisor.start()

    async def failed() -> None:
        while supervisor.state is not SupervisorState.FAILED:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(failed(), 60)
    assert supervisor.metrics().restarts == 0
    assert not supervisor.submit(next(read_units(source_360p30_av)))
    await supervisor.close()
    await collector.task


async def test_full_backlog_drops_input_up_to_the_next_keyframe_instead_of_queueing(
    source_360p30_av: Path,
) -> None:
    source = open_file(source_360p30_av)
    settings = SupervisorSettings(max_backlog=10, transcode=CALM)
    supervisor = TranscodeSupervisor("slow", source.video, source.fps, settings=settings)
    collector = Collector(supervisor)
    await supervisor.start()
    await asyncio.wait_for(supervisor.wait_ready(), 60)
    video = [u for u in read_units(source_360p30_av) if u.kind is TrackKind.VIDEO]
    # Without yielding to the event loop the worker's progress cannot be seen: exactly the
    # backlog limit goes through, then everything is dropped.
    accepted = [supervisor.submit(unit) for unit in video[:40]]
    assert accepted == [True] * 10 + [False] * 30
    assert supervisor.metrics().backlog == 10
    await collector.wait_units("360p30", 10)
    # backlog drained: still dropping until a keyframe, which is accepted
    rest = video[40:]
    results = []
    for unit in rest:
        results.append((unit.keyframe, supervisor.submit(unit)))
        while supervisor.metrics().backlog:  # one unit in flight at a time: never full
            await asyncio.sleep(0.005)
    first_ok = next(i for i, (_, ok) in enumerate(results) if ok)
    assert results[first_ok][0], "the first accepted unit after a drop is a keyframe"
    assert not any(ok for _, ok in results[:first_ok])
    await supervisor.close()
    await collector.task
    assert supervisor.metrics().inputs_dropped == 30 + first_ok
    assert len(collector.units()["360p30"]) == 10 + len(rest) - first_ok


async def test_a_stopped_worker_is_killed_by_the_watchdog_and_replaced(
    source_360p30_av: Path,
) -> None:
    source = open_file(source_360p30_av)
    settings = SupervisorSettings(transcode=CALM, stall_timeout_s=1.0)
    supervisor = TranscodeSupervisor("hung", source.video, source.fps, settings=settings)
    collector = Collector(supervisor)
    await supervisor.start()
    await asyncio.wait_for(supervisor.wait_ready(), 60)
    first_pid = supervisor.pid
    assert first_pid is not None
    video = [u for u in _looped(source_360p30_av, 3) if u.kind is TrackKind.VIDEO]
    for index, unit in enumerate(video):
        supervisor.submit(unit)
        if index == 30:
            await collector.wait_units("360p30", 10)
            os.kill(first_pid, signal.SIGSTOP)  # alive, holding its pipe, doing nothing
        await asyncio.sleep(1 / FPS)
    await collector.wait_units("360p30", 60)
    await supervisor.close()
    await collector.task
    restarts = [e for e in collector.events if isinstance(e, WorkerRestarted)]
    assert len(restarts) == 1 and "stalled" in restarts[0].reason
    assert restarts[0].pid != first_pid
    metrics = supervisor.metrics()
    assert metrics.stalls == 1 and metrics.restarts == 1
    index = collector.events.index(restarts[0])
    resumed = [
        e.unit for e in collector.events[index:] if isinstance(e, RenditionUnit) and e.rendition == "360p30"
    ]
    assert resumed and resumed[0].keyframe

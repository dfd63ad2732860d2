"""The parent side of a stream's transcode worker process: start it, feed it, keep it running.

``TranscodeSupervisor`` owns one stream's worker (``child``, spoken to in the messages of
``wire``). It is an explicit state machine (STARTING -> RUNNING -> RESTARTING -> STARTING ...
-> CLOSING -> CLOSED, or FAILED after too many crashes in a row). It never blocks the ingest
path: ``submit()`` is synchronous, and when the worker's backlog is full or the worker is being
restarted it drops input up to the next video keyframe (the only point a fresh decoder can
start from) rather than queue it, so latency never accumulates. A restarted worker resumes at
that keyframe with the same segment boundaries (they are multiples of the segment length on the
source timeline). A watchdog treats a worker that is alive but produces nothing while input
waits (a hung encoder, a stopped process) like a crashed one: it kills it, and the restart path
takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import Enum

from live.media.units import AccessUnit, AudioConfig, TrackKind, VideoConfig
from live.transcode.decoders import DecoderChoice
from live.transcode.encoders import EncoderChoice
from live.transcode.events import RenditionUnit, TranscodeEvent
from live.transcode.ladder import Ladder, LadderSettings
from live.transcode.pipeline import TranscodeMetrics, TranscodeSettings
from live.transcode.wire import (
    EXIT_BAD_INPUT,
    HEADER_SIZE,
    WorkerFlush,
    WorkerInput,
    WorkerOutput,
    WorkerProtocolError,
    WorkerReady,
    WorkerReport,
    WorkerStart,
    body_size,
    decode_body,
    encode_message,
)

log = logging.getLogger(__name__)


class SupervisorState(Enum):
    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    CLOSING = "closing"
    CLOSED = "closed"
    FAILED = "failed"


_TRANSITIONS: dict[SupervisorState, frozenset[SupervisorState]] = {
    SupervisorState.STARTING: frozenset(
        {
            SupervisorState.RUNNING,
            SupervisorState.RESTARTING,
            SupervisorState.CLOSING,
            SupervisorState.FAILED,
        }
    ),
    SupervisorState.RUNNING: frozenset(
        {SupervisorState.RESTARTING, SupervisorState.CLOSING, SupervisorState.FAILED}
    ),
    SupervisorState.RESTARTING: frozenset(
        {SupervisorState.STARTING, SupervisorState.FAILED, SupervisorState.CLOSING}
    ),
    SupervisorState.CLOSING: frozenset({SupervisorState.CLOSED}),
    SupervisorState.CLOSED: frozenset(),
    SupervisorState.FAILED: frozenset({SupervisorState.CLOSED}),
}


@dataclass(frozen=True, slots=True)
class SupervisorSettings:
    max_backlog: int = 90  # access units sent but not yet read by the worker (~3 s at 30 fps)
    max_restarts: int = 5  # consecutive crashes (no output in between) before giving up
    restart_backoff_s: float = 0.2  # doubled per consecutive crash
    stall_timeout_s: float = 5.0  # input pending and no output this long: the worker is hung
    start_timeout_s: float = 30.0  # a worker not ready this long after spawning is hung too
    max_events: int = 2048  # events awaiting the consumer before the reader stops reading
    ladder: LadderSettings = field(default_factory=LadderSettings)
    transcode: TranscodeSettings = field(default_factory=TranscodeSettings)


@dataclass(frozen=True, slots=True)
class SupervisorMetrics:
    state: str
    pid: int | None
    restarts: int
    stalls: int  # restarts caused by the watchdog (worker alive but stuck)
    inputs_dropped: int
    backlog: int
    encoder: EncoderChoice | None
    decoder: DecoderChoice | None
    worker: TranscodeMetrics | None


@dataclass(frozen=True, slots=True)
class WorkerRestarted:
    """Put in the event stream when a new worker took over (output resumes at a keyframe)."""

    pid: int
    reason: str


SupervisorEvent = TranscodeEvent | WorkerRestarted


class TranscodeSupervisor:
    """Parent-side owner of one stream's worker process."""

    def __init__(
        self,
        stream_id: str,
        video: VideoConfig,
        fps: float,
        *,
        audio: AudioConfig | None = None,
        settings: SupervisorSettings | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.settings = settings or SupervisorSettings()
        self._start = WorkerStart(stream_id, video, fps, audio, self.settings.ladder, self.settings.transcode)
        self.state = SupervisorState.STARTING
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._events: asyncio.Queue[SupervisorEvent | None] = asyncio.Queue(self.settings.max_events)
        self._sent = 0
        self._consumed = 0
        self._need_keyframe = False
        self._dropped = 0
        self._restarts = 0
        self._crashes_in_row = 0
        self._encoder: EncoderChoice | None = None
        self._decoder: DecoderChoice | None = None
        self._ladder: Ladder | None = None
        self._metrics: TranscodeMetrics | None = None
        self._ready = asyncio.Event()
        self._watchdog: asyncio.Task[None] | None = None
        self._last_progress = time.monotonic()
        self._kill_reason = ""
        self._stalls = 0
        self._failure = ""
        self._done = asyncio.Event()

    # -- state -------------------------------------------------------------------------

    def _to(self, new: SupervisorState, reason: str = "") -> None:
        if new not in _TRANSITIONS[self.state]:
            raise RuntimeError(f"supervisor {self.stream_id}: illegal {self.state} -> {new}")
        self.state = new
        if new is SupervisorState.FAILED:
            self._failure = reason
            self._ready.set()  # wake wait_ready() callers so they see the failure

    def _in(self, state: SupervisorState) -> bool:
        return self.state is state

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def ladder(self) -> Ladder | None:
        return self._ladder

    def metrics(self) -> SupervisorMetrics:
        return SupervisorMetrics(
            self.state.value,
            self.pid,
            self._restarts,
            self._stalls,
            self._dropped,
            self._sent - self._consumed,
            self._encoder,
            self._decoder,
            self._metrics,
        )

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self._spawn()

    async def wait_ready(self) -> None:
        """Until a worker has opened its encoders; raises if the stream failed instead."""
        await self._ready.wait()
        if self._in(SupervisorState.FAILED):
            raise RuntimeError(f"transcode {self.stream_id}: worker failed: {self._failure}")

    async def _spawn(self) -> None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "live.transcode.child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        self._proc = proc
        self._sent = self._consumed = 0
        self._last_progress = time.monotonic()
        self._kill_reason = ""
        if self._watchdog is None:
            self._watchdog = asyncio.create_task(self._watch(), name=f"watchdog-{self.stream_id}")
        assert proc.stdin is not None
        proc.stdin.write(encode_message(self._start))
        self._reader = asyncio.create_task(self._read(proc), name=f"transcode-{self.stream_id}")
        log.info("transcode %s: worker pid %d started", self.stream_id, proc.pid)

    async def close(self, timeout: float = 30.0) -> None:
        """Flush the worker (end of stream), deliver its last output, and stop it."""
        if self.state in (SupervisorState.CLOSED, SupervisorState.CLOSING):
            return
        failed = self.state is SupervisorState.FAILED
        if not failed:
            self._to(SupervisorState.CLOSING)
        proc = self._proc
        if proc is not None and proc.returncode is None and proc.stdin is not None:
            with contextlib.suppress(ConnectionError):
                proc.stdin.write(encode_message(WorkerFlush()))
                proc.stdin.close()
            try:
                await asyncio.wait_for(self._done.wait(), timeout)
            except TimeoutError:
                log.warning("transcode %s: worker did not finish, killing it", self.stream_id)
                proc.kill()
        if proc is not None:
            await proc.wait()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        self.state = SupervisorState.CLOSED
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
        await self._events.put(None)

    # -- input -------------------------------------------------------------------------

    def submit(self, unit: AccessUnit) -> bool:
        """Hand one access unit to the worker; False when it was dropped (never blocks)."""
        proc = self._proc
        if (
            self.state not in (SupervisorState.STARTING, SupervisorState.RUNNING)
            or proc is None
            or proc.stdin is None
            or proc.stdin.is_closing()
        ):
            self._dropped += 1
            self._need_keyframe = True
            return False
        if self._sent - self._consumed >= self.settings.max_backlog:
            self._dropped += 1
            self._need_keyframe = True
            return False
        if self._need_keyframe:
            if unit.kind is not TrackKind.VIDEO or not unit.keyframe:
                self._dropped += 1
                return False
            self._need_keyframe = False
        now = time.monotonic()
        try:
            proc.stdin.write(encode_message(WorkerInput(unit, now)))
        except (ConnectionError, RuntimeError):
            self._dropped += 1
            self._need_keyframe = True
            return False
        if self._sent == self._consumed:  # the worker was idle: a stall is timed from here
            self._last_progress = now
        self._sent += 1
        return True

    # -- watchdog ----------------------------------------------------------------------

    async def _watch(self) -> None:
        """Kill a worker that is alive but stuck; the reader then restarts it like a crash."""
        period = min(1.0, self.settings.stall_timeout_s / 4)
        while True:
            await asyncio.sleep(period)
            if self._in(SupervisorState.FAILED) or self._in(SupervisorState.CLOSED):
                return
            proc = self._proc
            if proc is None or proc.returncode is not None or self._kill_reason:
                continue
            idle = time.monotonic() - self._last_progress
            if self._in(SupervisorState.STARTING) and idle > self.settings.start_timeout_s:
                self._kill_reason = f"worker not ready after {idle:.1f} s"
            elif (
                self._in(SupervisorState.RUNNING)
                and self._sent > self._consumed
                and idle > self.settings.stall_timeout_s
            ):
                self._kill_reason = f"worker stalled: no output for {idle:.1f} s"
            else:
                continue
            self._stalls += 1
            log.warning("transcode %s: %s, killing pid %d", self.stream_id, self._kill_reason, proc.pid)
            proc.kill()

    # -- output ------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[SupervisorEvent]:
        """Every output event, in order, until the supervisor is closed."""
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    async def _read(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        reason = "worker closed its output"
        try:
            while True:
                size = body_size(await proc.stdout.readexactly(HEADER_SIZE))
                await self._handle(decode_body(await proc.stdout.readexactly(size)))
        except asyncio.IncompleteReadError:
            pass
        except WorkerProtocolError as exc:
            reason = str(exc)
            proc.kill()
        code = await proc.wait()
        if self.state is SupervisorState.CLOSING:
            self._done.set()
            return
        if code == EXIT_BAD_INPUT:
            log.error("transcode %s: the source cannot be transcoded", self.stream_id)
            self._to(SupervisorState.FAILED, "the source cannot be transcoded (see worker log)")
            return
        if self._kill_reason:
            reason = self._kill_reason
        elif code != 0:
            reason = f"worker exited with {code}"
        await self._restart(reason)

    async def _handle(self, message: object) -> None:
        self._last_progress = time.monotonic()
        if isinstance(message, WorkerOutput):
            self._consumed = message.consumed
            for event in message.events:
                await self._events.put(event)
            if any(isinstance(e, RenditionUnit) for e in message.events):
                self._crashes_in_row = 0
        elif isinstance(message, WorkerReady):
            self._encoder, self._decoder = message.encoder, message.decoder
            self._ladder = message.ladder
            if self.state is SupervisorState.STARTING:
                self._to(SupervisorState.RUNNING)
            self._ready.set()
        elif isinstance(message, WorkerReport):
            self._metrics = message.metrics
            if message.final:
                self._done.set()
        else:
            raise WorkerProtocolError(f"worker sent {type(message).__name__}")

    async def _restart(self, reason: str) -> None:
        if self.state not in (SupervisorState.STARTING, SupervisorState.RUNNING):
            return
        self._to(SupervisorState.RESTARTING)
        self._need_keyframe = True
        self._crashes_in_row += 1
        log.warning("transcode %s: %s; restarting", self.stream_id, reason)
        if self._crashes_in_row > self.settings.max_restarts:
            log.error("transcode %s: %d crashes in a row, giving up", self.stream_id, self._crashes_in_row)
            self._to(SupervisorState.FAILED, f"{self._crashes_in_row} crashes in a row: {reason}")
            return
        await asyncio.sleep(self.settings.restart_backoff_s * 2 ** (self._crashes_in_row - 1))
        if not self._in(SupervisorState.RESTARTING):  # closed while we waited
            return
        self._to(SupervisorState.STARTING)
        self._restarts += 1
        await self._spawn()
        assert self._proc is not None
        await self._events.put(WorkerRestarted(self._proc.pid, reason))


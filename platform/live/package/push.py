"""A packager's ``PartSink`` that pushes every track to one or more origins over HTTP.

Each track goes to each origin as one long-running chunked POST (DASH-IF Live Media Ingest
interface 1, format in ``live.package.ingest_wire``): the CMAF header first, then each part as
the packager produces it. Origins are independent: every (origin, track) pair has its own task
and its own queue, so a dead or slow origin never blocks the packager (``publish_*`` only
append to queues) nor another origin.

Failures follow the spec's failover section (docs/scaleout.md): a connection that fails or
stalls (queued parts not taken for ``stall_timeout_s``) is dropped and retried with exponential
backoff, without a retry limit; every new POST starts with the identical header, then resends
the parts of the previous and the current segment (the origin skips those it has; what the
broken connection had in flight is among them), then goes on. Each origin's
queued bytes are bounded; over the bound a track's queue is dropped and the track resumes at the
next segment start (the origin restarts that rendition there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp

from live.package.ingest_wire import END_OF_TRACK, encode_drop, encode_header, encode_part
from live.package.parts import InitSegment, Part
from live.package.sink import StreamIds
from live.package.timing import ChannelTiming

log = logging.getLogger("live.package.push")


@dataclass(frozen=True, slots=True)
class PushSettings:
    origins: tuple[str, ...]  # base URLs, e.g. http://10.0.0.2:8080
    token: str  # the origins' shared ingest secret
    max_queued_bytes: int = 64 * 1024 * 1024  # per origin, all tracks
    max_tracks: int = 4096  # per origin
    connect_timeout_s: float = 2.0
    stall_timeout_s: float = 5.0
    backoff_min_s: float = 0.1
    backoff_max_s: float = 5.0
    #: How long an ended track keeps retrying to deliver its last parts and end.
    end_timeout_s: float = 10.0
    #: How long a new stream waits for the origins to say where the channel goes on.
    resume_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if not self.origins or not self.token:
            raise ValueError("a CMAF push needs at least one origin URL and the ingest token")
        for url in self.origins:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"origin {url!r}: expected http(s)://HOST[:PORT]")


class _Origin:
    """One origin: its tracks and the bytes they have queued."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.tracks: dict[tuple[str, str, str], _Track] = {}
        self.queued_bytes = 0
        self.connected = 0
        self.failures = 0
        self.resyncs = 0


class _Track:
    """One track pushed to one origin: a queue, and a task that keeps a POST open for it."""

    def __init__(self, push: CmafPush, origin: _Origin, key: tuple[str, str, str], header: bytes) -> None:
        self.push = push
        self.origin = origin
        self.key = key
        self.header = header
        self.queue: deque[tuple[bool, bytes]] = deque()  # (starts a segment, item)
        #: The segment in progress and the one before, as handed to connections: a new
        #: connection resends them (what the broken one had in flight is among them).
        self.segment: list[bytes] = []
        self.previous: list[bytes] = []
        self.closing: bytes | None = None  # the last item (end or drop), sent after the queue
        self.closed_at = 0.0
        self.skipping = False  # dropped parts: wait for the next segment start
        self.wake = asyncio.Event()
        self.finished = False
        self.failing = False  # the last connection failed and none streamed since
        self.streams = 0  # connections that got as far as sending the header
        self._deadline: asyncio.Timeout | None = None
        self.task = asyncio.get_running_loop().create_task(self._run())

    @property
    def url(self) -> str:
        channel, stream, rendition = self.key
        return f"{self.origin.url}/ingest/{channel}/{stream}/{rendition}"

    # -- the packager's side (synchronous, never blocks) ---------------------------------------

    def put(self, item: bytes, segment_start: bool) -> None:
        if self.closing is not None:
            return
        if self.skipping and not segment_start:
            return
        self.skipping = False
        if self.origin.queued_bytes + len(item) > self.push.settings.max_queued_bytes:
            self._resync("queue full")
            return
        self.queue.append((segment_start, item))
        self.origin.queued_bytes += len(item)
        self._arm()
        self.wake.set()

    def close(self, item: bytes) -> None:
        if self.closing is None:
            self.closing = item
            self.closed_at = time.monotonic()
            self._arm()
            self.wake.set()

    def _resync(self, why: str) -> None:
        self.origin.resyncs += 1
        log.warning("push %s: %s; dropping its queue, resuming at the next segment", self.url, why)
        self.origin.queued_bytes -= sum(len(item) for _, item in self.queue)
        self.queue.clear()
        self.segment, self.previous = [], []
        self.skipping = True

    def _arm(self) -> None:
        """Work is waiting: the connection must take it within the stall timeout."""
        if self._deadline is not None and self._deadline.when() is None:
            self._deadline.reschedule(asyncio.get_running_loop().time()
                                      + self.push.settings.stall_timeout_s)

    # -- the connection's side -----------------------------------------------------------------

    async def _body(self) -> AsyncIterator[bytes]:
        yield self.header
        self.streams += 1
        if self.failing:
            self.failing = False
            log.info("push %s reconnected", self.url)
        for item in [*self.previous, *self.segment]:
            yield item
        while True:
            while self.queue:
                start, item = self.queue.popleft()
                self.origin.queued_bytes -= len(item)
                if start:
                    self.previous, self.segment = self.segment, []
                self.segment.append(item)
                self._progress()
                yield item
            if self.closing is not None:
                yield self.closing
                self._progress()
                return
            self.wake.clear()
            if self._deadline is not None:
                self._deadline.reschedule(None)
            await self.wake.wait()

    def _progress(self) -> None:
        if self._deadline is not None:
            self._deadline.reschedule(asyncio.get_running_loop().time()
                                      + self.push.settings.stall_timeout_s)

    async def _run(self) -> None:
        settings = self.push.settings
        backoff = settings.backoff_min_s
        while True:
            streams_before = self.streams
            try:
                status, text = await self._post_once()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                status, text = 0, f"{type(exc).__name__}: {exc}"
            if status == 200 and self.closing is not None:
                self.finished = True
                break
            self.origin.failures += 1
            if not self.failing:  # once per outage; the reconnect is logged too
                log.warning("push %s failed (%s); retrying", self.url,
                            f"HTTP {status}: {text.strip()}" if status else text)
            self.failing = True
            if status == 409:
                break  # the origin carries a newer stream of this channel
            if status in (400, 422):
                self._resync(f"the origin refused the push (HTTP {status})")
            if self.closing is not None and time.monotonic() - self.closed_at > settings.end_timeout_s:
                log.warning("push %s: gave up delivering the end of the track", self.url)
                break
            if self.streams > streams_before:  # it was streaming: retry at once, then back off
                backoff = settings.backoff_min_s
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, settings.backoff_max_s)
        self.origin.queued_bytes -= sum(len(item) for _, item in self.queue)
        self.queue.clear()
        self.origin.tracks.pop(self.key, None)

    async def _post_once(self) -> tuple[int, str]:
        session = self.push.session
        assert session is not None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.push.settings.connect_timeout_s)
        async with asyncio.timeout(None) as deadline:
            self._deadline = deadline
            if self.queue or self.closing is not None:
                self._arm()
            try:
                async with session.post(self.url, data=self._body(), timeout=timeout,
                                        headers=self.push.headers) as response:
                    self.origin.connected += 1
                    text = await response.text()
                    return response.status, text
            finally:
                self._deadline = None


class CmafPush:
    """Push packagers' output to ``settings.origins``; ``stream()`` is one stream's ``PartSink``."""

    def __init__(self, settings: PushSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.origins = [_Origin(url) for url in settings.origins]
        self.headers = {"Authorization": f"Bearer {settings.token}",
                        "Content-Type": "application/octet-stream"}
        self.session: aiohttp.ClientSession | None = None
        self._stream_ids = StreamIds(clock)

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def close(self) -> None:
        """Give ended tracks ``end_timeout_s`` to deliver, then stop every push."""
        tasks = [track.task for origin in self.origins for track in origin.tracks.values()]
        for origin in self.origins:
            for track in list(origin.tracks.values()):
                track.close(END_OF_TRACK)
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=self.settings.end_timeout_s)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)
        if self.session is not None:
            await self.session.close()
            self.session = None

    def stream(self, channel: str, start_msn: int = 0) -> StreamPush:
        """A new stream of ``channel``, named by a fresh stream id (its epoch at every origin);
        ``start_msn`` > 0 continues the channel the origins carry (``resume_point``)."""
        return StreamPush(self, channel, self._stream_ids.next(), start_msn)

    async def resume_point(self, channel: str) -> int:
        """Where ``channel``'s numbering goes on at the origins: the largest ``next_msn`` any
        origin answers within ``resume_timeout_s`` (0: no origin carries it live, or none
        answered; the stream then starts afresh). A publisher reconnecting to this or another
        ingest node thereby continues the same playlists."""
        session = self.session
        assert session is not None
        timeout = aiohttp.ClientTimeout(total=self.settings.resume_timeout_s)

        async def ask(origin: _Origin) -> int:
            try:
                async with session.get(f"{origin.url}/ingest/{channel}", timeout=timeout,
                                       headers=self.headers) as response:
                    if response.status != 200:
                        log.warning("resume point of %s at %s: HTTP %d", channel, origin.url,
                                    response.status)
                        return 0
                    value = (await response.json()).get("next_msn")
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError, AttributeError) as exc:
                log.warning("resume point of %s at %s: %s", channel, origin.url,
                            f"{type(exc).__name__}: {exc}")
                return 0
            return value if isinstance(value, int) and not isinstance(value, bool) \
                and 0 <= value < 2**53 else 0

        return max(await asyncio.gather(*(ask(origin) for origin in self.origins)))

    def track(self, origin: _Origin, key: tuple[str, str, str], header: bytes) -> _Track | None:
        track = origin.tracks.get(key)
        if track is not None:
            track.header = header
            return track
        if len(origin.tracks) >= self.settings.max_tracks:
            log.error("push to %s: %d tracks already; %s not pushed there", origin.url,
                      len(origin.tracks), "/".join(key))
            return None
        track = origin.tracks[key] = _Track(self, origin, key, header)
        return track

    def stats(self) -> list[dict[str, object]]:
        return [{"origin": o.url, "tracks": len(o.tracks), "queued_bytes": o.queued_bytes,
                 "connections": o.connected, "failures": o.failures, "resyncs": o.resyncs}
                for o in self.origins]


class StreamPush:
    """The ``PartSink`` of one stream: every operation fans out to every origin's track."""

    def __init__(self, push: CmafPush, channel: str, stream_id: str, start_msn: int = 0) -> None:
        self.push = push
        self.channel = channel
        self.stream_id = stream_id
        self.start_msn = start_msn
        self._renditions: set[str] = set()

    def _tracks(self, rendition: str) -> list[_Track]:
        key = (self.channel, self.stream_id, rendition)
        return [track for origin in self.push.origins
                if (track := origin.tracks.get(key)) is not None]

    def publish_init(self, channel: str, init: InitSegment, timing: ChannelTiming) -> None:
        header = encode_header(init, timing, self.start_msn)
        key = (self.channel, self.stream_id, init.rendition)
        self._renditions.add(init.rendition)
        for origin in self.push.origins:
            self.push.track(origin, key, header)

    def publish_part(self, channel: str, part: Part) -> None:
        item = encode_part(part)  # once, shared by every origin
        for track in self._tracks(part.rendition):
            track.put(item, part.index == 0)

    def drop_rendition(self, channel: str, rendition: str) -> None:
        self._renditions.discard(rendition)
        for track in self._tracks(rendition):
            track.close(encode_drop())

    def end(self, channel: str) -> None:
        for rendition in self._renditions:
            for track in self._tracks(rendition):
                track.close(END_OF_TRACK)
        self._renditions.clear()

"""Many light LL-HLS viewers on one media playlist, spread over CDN edges, failing over between them.

What the CDN tests and ``bench/cdn_spike.py`` put in front of the tiers: each viewer joins with
a plain playlist load, then loops like hls.js in low-latency mode on one rendition: a blocking
reload for the next part (``_HLS_msn``/``_HLS_part``, RFC 8216bis 6.2.5.2), then the new parts.
It decodes nothing (``probe`` does that), so one process holds hundreds of them. A viewer whose
edge refuses, resets or answers 5xx moves to the next edge in its list and asks again; a
request no edge answers is a viewer error. Every part's arrival is timed, so a failover's
resume gap can be read afterwards.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp

from live.selftest.hls_client import MediaPlaylist, parse_media


class EdgesDown(RuntimeError):
    """No edge answered one request."""


@dataclass
class ViewerStats:
    requests: int = 0
    parts: int = 0
    errors: int = 0
    failovers: int = 0
    #: (failure instant, first part received after it), monotonic seconds.
    resumes: list[tuple[float, float | None]] = field(default_factory=list)
    last_part_at: float | None = None


@dataclass
class Viewer:
    http: aiohttp.ClientSession
    edges: list[str]
    path: str  # media playlist path, e.g. /hls/alpha/720p.m3u8
    edge: int = 0
    blocking_timeout_s: float = 10.0
    stats: ViewerStats = field(default_factory=ViewerStats)

    async def _get(self, path: str, timeout_s: float) -> bytes:
        """One request, failing over across every edge once; EdgesDown when none answers."""
        for _ in range(len(self.edges)):
            self.stats.requests += 1
            try:
                async with self.http.get(self.edges[self.edge] + path,
                                         timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
                    if response.status < 500:
                        body = await response.read()
                        if response.status == 200:
                            return body
                        raise EdgesDown(f"{path}: HTTP {response.status}")
            except (aiohttp.ClientError, TimeoutError):
                pass
            self.stats.failovers += 1
            self.stats.resumes.append((time.monotonic(), None))
            self.edge = (self.edge + 1) % len(self.edges)
        raise EdgesDown(f"{path}: no edge answered")

    async def _playlist(self, query: str = "") -> MediaPlaylist:
        body = await self._get(self.path + query, self.blocking_timeout_s)
        return parse_media(body.decode(), self.path)

    async def _fetch_part(self, uri: str) -> None:
        await self._get(uri, self.blocking_timeout_s)
        now = time.monotonic()
        self.stats.parts += 1
        self.stats.last_part_at = now
        resumes = self.stats.resumes
        if resumes and resumes[-1][1] is None:
            for index in range(len(resumes) - 1, -1, -1):
                if resumes[index][1] is not None:
                    break
                resumes[index] = (resumes[index][0], now)

    async def run(self, stop: asyncio.Event) -> None:
        playlist: MediaPlaylist | None = None
        while not stop.is_set():
            try:
                if playlist is None:
                    playlist = await self._playlist()
                    newest = [p for s in playlist.segments for p in s.parts][-1:]
                    for part in newest:
                        if not part.gap:
                            await self._fetch_part(part.uri)
                msn, index = playlist.next_position
                playlist = await self._playlist(f"?_HLS_msn={msn}&_HLS_part={index}")
                for segment in playlist.segments:
                    if segment.msn < msn:
                        continue
                    for position, part in enumerate(segment.parts):
                        if (segment.msn > msn or position >= index) and not part.gap:
                            await self._fetch_part(part.uri)
            except (EdgesDown, ValueError, IndexError):  # PlaylistError is a ValueError
                self.stats.errors += 1
                playlist = None
                await asyncio.sleep(0.2)


@dataclass
class ViewerFleet:
    """Viewers added in batches onto one playlist, edges assigned round robin."""

    edges: list[str]
    path: str
    blocking_timeout_s: float = 10.0
    viewers: list[Viewer] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _http: aiohttp.ClientSession | None = None

    async def add(self, count: int) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        for _ in range(count):
            viewer = Viewer(self._http, self.edges, self.path, edge=len(self.viewers) % len(self.edges),
                            blocking_timeout_s=self.blocking_timeout_s)
            self.viewers.append(viewer)
            self._tasks.append(asyncio.create_task(viewer.run(self._stop)))

    async def ramp(self, count: int, over_s: float) -> None:
        """Add ``count`` viewers evenly over ``over_s`` seconds."""
        steps = max(1, int(over_s * 10))
        added = 0
        for step in range(1, steps + 1):
            target = count * step // steps
            await self.add(target - added)
            added = target
            await asyncio.sleep(over_s / steps)

    @property
    def totals(self) -> ViewerStats:
        total = ViewerStats()
        for viewer in self.viewers:
            stats = viewer.stats
            total.requests += stats.requests
            total.parts += stats.parts
            total.errors += stats.errors
            total.failovers += stats.failovers
            total.resumes += stats.resumes
        return total

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        try:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        finally:
            if self._http is not None:
                await self._http.close()

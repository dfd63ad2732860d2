"""A real origin (OriginStore + setup_origin over TCP) that counts every request it answers, fed
part by part, and real nginx tiers in front of it (``live.cdn.launcher``)."""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from live.cdn.config import Role, TlsFiles, Upstream
from live.cdn.launcher import CdnCluster, CdnError, ClusterSettings
from live.origin.app import setup_origin
from live.origin.store import OriginSettings, OriginStore
from live.package.parts import InitSegment, Part
from live.package.timing import ChannelTiming

VIDEO = InitSegment("720p", b"\x00\x00\x00\x18ftypiso6init-720p", "avc1.64001f,mp4a.40.2",
                    3_000_000, 1280, 720, 30.0)
AUDIO = InitSegment("audio", b"\x00\x00\x00\x18ftypiso6init-audio", "mp4a.40.2", 128_000)
_PART_LINE = re.compile(r'#EXT-X-PART:.*?URI="(?P<uri>[^"]+)"')


def require_nginx() -> None:
    if shutil.which("nginx") or os.access("/usr/sbin/nginx", os.X_OK):
        return
    if os.environ.get("CI"):
        pytest.fail("CI must provide Debian's nginx")
    pytest.skip("needs nginx (apt-get install nginx)")


@dataclass
class Feed:
    """Publishes ``parts_per_segment`` parts per segment to every rendition of ``channel``."""

    store: OriginStore
    channel: str = "alpha"
    renditions: tuple[InitSegment, ...] = (VIDEO, AUDIO)
    parts_per_segment: int = 6
    part_s: float = 1 / 3
    part_bytes: int = 2000
    msn: int = 0
    index: int = 0

    def start(self) -> Feed:
        for init in self.renditions:
            self.store.publish_init(self.channel, init)
        return self

    def part(self) -> None:
        end = self.index == self.parts_per_segment - 1
        wallclock = 1_700_000_000.0 + (self.msn * self.parts_per_segment + self.index) * self.part_s
        for init in self.renditions:
            tag = f"{self.channel}/{init.rendition}:{self.msn}.{self.index}:".encode()
            self.store.publish_part(self.channel, Part(
                init.rendition, self.msn, self.index, tag + b"\xa5" * (self.part_bytes - len(tag)),
                self.part_s, self.index == 0, wallclock, end))
        self.msn, self.index = (self.msn + 1, 0) if end else (self.msn, self.index + 1)

    def parts(self, count: int) -> None:
        for _ in range(count):
            self.part()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish in real time until ``stop`` is set."""
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stop.is_set():
            self.part()
            next_at += self.part_s
            await asyncio.sleep(max(0.0, next_at - loop.time()))


@dataclass
class CountingOrigin:
    """The real origin app on 127.0.0.1, with every answered request counted by path and query."""

    store: OriginStore
    requests: Counter[str] = field(default_factory=Counter)
    log: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, path and query)
    runner: web.AppRunner | None = None
    sites: list[web.TCPSite] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports[0]}"

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def count(self, predicate: Callable[[str], bool] = lambda _: True) -> int:
        return sum(n for path, n in self.requests.items() if predicate(path))

    async def start(self, listeners: int = 1) -> None:
        @web.middleware
        async def counting(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                           ) -> web.StreamResponse:
            self.requests[request.path_qs] += 1
            self.log.append((time.monotonic(), request.path_qs))
            return await handler(request)

        app = web.Application(middlewares=[counting])
        setup_origin(app, self.store)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self.runner.setup()
        for _ in range(listeners):
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            assert site._server is not None
            self.ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
            self.sites.append(site)

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def make_store(target: int = 2, part_target: float = 0.334) -> OriginStore:
    return OriginStore(OriginSettings(timing=ChannelTiming(target, part_target),
                                      max_held_requests=100_000))


@pytest.fixture
async def origin() -> AsyncIterator[CountingOrigin]:
    origin = CountingOrigin(make_store())
    await origin.start()
    try:
        yield origin
    finally:
        await origin.close()


@pytest.fixture
def feed(origin: CountingOrigin) -> Feed:
    return Feed(origin.store).start()


@asynccontextmanager
async def tier(data_dir: Path, origins: list[str], *, shields: int = 1, edges: int = 1,
               tls: TlsFiles | None = None, target_duration_s: int = 2) -> AsyncIterator[CdnCluster]:
    """A running tier on a free block of ports (retried when another process took one)."""
    require_nginx()
    for attempt in range(20):
        settings = ClusterSettings(
            origins=tuple(Upstream.parse(u) for u in origins), data_dir=data_dir / f"tier{attempt}",
            shields=shields, edges=edges, base_port=random.randrange(20_000, 60_000),
            cache_size="256m", tls=tls, target_duration_s=target_duration_s)
        cluster = CdnCluster(settings)
        try:
            await cluster.start()
        except CdnError as exc:
            if "taken" in str(exc):
                continue
            raise
        try:
            yield cluster
        finally:
            await cluster.stop()
        return
    raise RuntimeError("no free block of ports for the tier")


def part_uris(playlist: str) -> list[str]:
    return [m["uri"] for m in _PART_LINE.finditer(playlist)]


def hinted_uri(playlist: str) -> str:
    match = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(?P<uri>[^"]+)"', playlist)
    assert match is not None, playlist
    return match["uri"]


async def get(http: aiohttp.ClientSession, url: str, **kwargs: object) -> tuple[int, bytes, dict[str, str]]:
    async with http.get(url, **kwargs) as response:  # type: ignore[arg-type]
        return response.status, await response.read(), dict(response.headers)


#: parts of the live tier: longer than the platform's 0.2 s, so the asyncio or Locust viewers of
#: one process keep up on a 2-core machine
LIVE_PART_S = 0.5


@dataclass
class Live:
    """An origin fed in real time with LIVE_PART_S parts behind 1 shield and 2 edges."""

    origin: CountingOrigin
    feed: Feed
    cluster: CdnCluster
    #: (origin requests, of which plain reloads) at each part publish (index = parts published so
    #: far): both read at the same instant, so a window's counts share its boundaries
    published: list[tuple[int, int]]

    @property
    def edges(self) -> list[str]:
        return self.cluster.urls(Role.EDGE)


class CountingFeed(Feed):
    marks: list[tuple[int, int]]
    origin: CountingOrigin

    def part(self) -> None:
        super().part()
        self.marks.append((self.origin.count(), self.origin.count(is_plain_reload)))


@asynccontextmanager
async def live_tier(tmp_path: Path) -> AsyncIterator[Live]:
    origin = CountingOrigin(make_store(2, LIVE_PART_S))
    await origin.start()
    feed = CountingFeed(origin.store, renditions=(Feed.renditions[0],),
                        parts_per_segment=round(2 / LIVE_PART_S), part_s=LIVE_PART_S, part_bytes=4000)
    feed.marks, feed.origin = [], origin
    feed.start().parts(2 * feed.parts_per_segment)
    stop = asyncio.Event()
    publisher = asyncio.create_task(feed.run(stop))
    try:
        async with tier(tmp_path, [origin.url], shields=1, edges=2) as cluster:
            yield Live(origin, feed, cluster, feed.marks)
    finally:
        stop.set()
        await publisher
        await origin.close()


def is_plain_reload(path: str) -> bool:
    """A playlist request without _HLS_msn (a join's or a fallback's plain reload)."""
    return path.endswith(".m3u8")

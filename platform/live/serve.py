"""`live serve`: every platform role in one process on the embedded default.

The platform opens its resources (repository, media path, chat broker, RTMP listener, HTTP
site, chat listener) on one `AsyncExitStack`, so shutting down, or failing half-way through
start-up, closes exactly what was opened, in reverse order, and one close that fails does not
keep the others open. Tests start it on port 0 and read the bound ports back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

from aiohttp import web

from live.adcreatives import start_ad_creatives
from live.api.app import setup_api
from live.api.repository import Repository
from live.api.storage import open_repository
from live.chat.auth import RepositoryChatAuth
from live.chat.brokers import open_broker
from live.chat.server import ChatServer
from live.commerce.wiring import open_monetization
from live.config import ServeSettings
from live.ingest.registry import LiveStreamRegistry
from live.ingest.rtmp.server import RtmpServer, RtmpServerSettings
from live.mediapath import LiveMediaPaths, MediaPathSettings
from live.metrics import CHAT_KEY, STREAMS_KEY, TRANSCODES_KEY, setup_metrics
from live.origin.app import setup_origin
from live.origin.store import OriginSettings, OriginStore
from live.package.ladder_packager import PackagingSettings
from live.webui import setup_web

log = logging.getLogger("live.serve")


@dataclass(frozen=True, slots=True)
class BoundPorts:
    rtmp: int
    http: int
    chat: int


class Platform:
    """The running platform: ``async with Platform(settings) as platform: ...``."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.streams = LiveStreamRegistry()
        self.repo: Repository | None = None
        self.rtmp: RtmpServer | None = None
        self.origin = OriginStore(OriginSettings(timing=PackagingSettings().timing))
        self.media_paths: LiveMediaPaths | None = None
        self.chat: ChatServer | None = None
        self._runner: web.AppRunner | None = None
        self.app: web.Application | None = None
        self._resources = contextlib.AsyncExitStack()

    async def __aenter__(self) -> Platform:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Open everything; on failure, what was opened is closed before the error propagates."""
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(self._forget)
            await self._open(stack)
            self._resources = stack.pop_all()

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.repo = repo = await open_repository(settings.database, settings.data_dir)
        stack.push_async_callback(repo.close)
        for seed in settings.channels:
            await repo.ensure_channel(seed.name, seed.stream_key)

        async def resolve(stream_key: str) -> str | None:
            channel = await repo.channel_by_stream_key(stream_key)
            return channel.name if channel is not None else None

        self.media_paths = LiveMediaPaths(self.streams, self.origin, MediaPathSettings())
        stack.push_async_callback(self.media_paths.close)
        broker = open_broker(settings.chat_broker)
        stack.push_async_callback(broker.close)
        money = await open_monetization(stack, settings.payments, settings.database, settings.data_dir,
                                        repo, broker, self.origin)
        chat = ChatServer(RepositoryChatAuth(repo), broker, relationships=money.relationships)
        self.rtmp = RtmpServer(
            resolve, self.streams,
            RtmpServerSettings(host=settings.host, port=settings.rtmp_port),
        )
        stack.push_async_callback(self.rtmp.close)
        await self.rtmp.start()
        app = web.Application(client_max_size=1 << 20)
        api = setup_api(app, repo, self.streams,
                        public_base_rtmp=settings.rtmp_base, public_base_http=settings.http_base)
        money.mount(app, api)
        if settings.ad_creatives:
            start_ad_creatives(app, money.ads, settings.data_dir / "ads", settings.ad_creatives, stack)
        setup_origin(app, self.origin)
        setup_web(app, self.streams)
        app[STREAMS_KEY] = self.streams
        app[TRANSCODES_KEY] = self.media_paths
        app[CHAT_KEY] = chat
        setup_metrics(app)
        self.app = app
        self._runner = runner = web.AppRunner(app, access_log=None)
        stack.push_async_callback(runner.cleanup)  # also stops the site
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.http_port).start()
        money.start(f"http://{settings.url_host}:{self.ports.http}")
        self.chat = chat
        stack.push_async_callback(chat.close)
        await chat.start(settings.host, settings.chat_port)

    def _forget(self) -> None:
        """Closed: drop the handles (runs last, after every resource is closed)."""
        self.chat = None
        self._runner = None
        self.app = None
        self.rtmp = None
        self.media_paths = None
        self.repo = None

    @property
    def ports(self) -> BoundPorts:
        assert self.rtmp is not None and self._runner is not None
        http_port = 0
        for address in self._runner.addresses:
            if isinstance(address, tuple):
                http_port = int(address[1])
        return BoundPorts(rtmp=self.rtmp.port, http=http_port,
                          chat=self.chat.port if self.chat is not None else 0)

    async def close(self) -> None:
        """Close what ``start`` opened, newest first (a no-op when nothing is open)."""
        await self._resources.aclose()

    def publish_urls(self) -> list[str]:
        return [f"{self.rtmp_base()}/{seed.stream_key}  (channel {seed.name})"
                for seed in self.settings.channels]

    def rtmp_base(self) -> str:
        port = self.ports.rtmp
        return f"rtmp://{self.settings.url_host}:{port}/live"


async def serve(settings: ServeSettings, duration_s: float | None = None) -> None:
    """Run until SIGINT/SIGTERM (or ``duration_s``), printing where to publish and watch."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with Platform(settings) as platform:
        ports = platform.ports
        print(f"livetwin serving: RTMP on {settings.url_host}:{ports.rtmp}, "
              f"HTTP on {settings.http_base.rsplit(':', 1)[0]}:{ports.http}", flush=True)
        for line in platform.publish_urls():
            print(f"  publish: {line}", flush=True)
        if not settings.channels:
            print("  no channels yet: create one with POST /api/v1/channels "
                  "or start with --channel NAME=KEY", flush=True)
        print(f"  watch:   http://{settings.url_host}:{ports.http}/  (landing page, /watch/CHANNEL)",
              flush=True)
        print(f"  streams: http://{settings.url_host}:{ports.http}/api/v1/streams", flush=True)
        print(f"  chat:    ws://{settings.url_host}:{ports.chat}/chat/CHANNEL", flush=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration_s):
                await stop.wait()
    log.info("livetwin stopped")

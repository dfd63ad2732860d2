"""`live serve`: every platform role in one process on the embedded default.

The platform owns its resources (store, RTMP server, HTTP site) and releases them in reverse
order; tests start it on port 0 and read the bound ports back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass

from aiohttp import web

from live.api.app import setup_api
from live.api.repository import Repository
from live.api.storage import open_repository
from live.chat.auth import RepositoryChatAuth
from live.chat.broker import Broker, open_broker
from live.chat.server import ChatServer
from live.config import ServeSettings
from live.dvr.app import setup_dvr
from live.dvr.service import Dvr, open_dvr
from live.ingest.registry import LiveStreamRegistry
from live.ingest.rtmp.server import RtmpServer, RtmpServerSettings
from live.mediapath import LiveMediaPaths, MediaPathSettings
from live.metrics import setup_metrics
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
        self.origin = OriginStore(OriginSettings(timing=PackagingSettings().timing,
                                                 dvr_window_s=settings.live_window_s))
        self.dvr: Dvr | None = None
        self.media_paths: LiveMediaPaths | None = None
        self.chat: ChatServer | None = None
        self._broker: Broker | None = None
        self._runner: web.AppRunner | None = None
        self.app: web.Application | None = None
        self._site: web.TCPSite | None = None

    async def __aenter__(self) -> Platform:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        settings = self.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.repo = repo = await open_repository(settings.database, settings.data_dir)
        for seed in settings.channels:
            await repo.ensure_channel(seed.name, seed.stream_key)

        async def resolve(stream_key: str) -> str | None:
            channel = await repo.channel_by_stream_key(stream_key)
            return channel.name if channel is not None else None

        self.dvr = dvr = await open_dvr(settings.data_dir / "dvr", settings.dvr)
        self.media_paths = LiveMediaPaths(self.streams, self.origin, MediaPathSettings(),
                                          recorder=dvr.recorder)
        self.rtmp = RtmpServer(
            resolve, self.streams,
            RtmpServerSettings(host=settings.host, port=settings.rtmp_port),
        )
        await self.rtmp.start()
        app = web.Application(client_max_size=1 << 20)
        setup_api(app, repo, self.streams,
                  public_base_rtmp=settings.rtmp_base, public_base_http=settings.http_base,
                  videos=dvr.videos)
        setup_dvr(app, dvr.catalog, dvr.store)  # before the origin, whose routes would shadow it
        setup_origin(app, self.origin)
        setup_web(app, self.streams)
        setup_metrics(app, self)
        self.app = app
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, settings.host, settings.http_port)
        await self._site.start()
        self._broker = open_broker(settings.chat_broker)
        self.chat = ChatServer(RepositoryChatAuth(repo), self._broker)
        await self.chat.start(settings.host, settings.chat_port)

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
        if self.chat is not None:
            await self.chat.close()
            self.chat = None
        if self._broker is not None:
            await self._broker.close()
            self._broker = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self.app = None
        if self.rtmp is not None:
            await self.rtmp.close()
            self.rtmp = None
        if self.media_paths is not None:
            await self.media_paths.close()
            self.media_paths = None
        if self.dvr is not None:
            await self.dvr.close()
            self.dvr = None
        if self.repo is not None:
            await self.repo.close()
            self.repo = None

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
        dvr = settings.dvr
        print(f"  dvr:     {dvr.window_s / 3600:g} h window, at most {dvr.max_bytes / 1e9:.1f} GB a "
              f"channel, under {settings.data_dir / 'dvr'}; VODs kept "
              f"{dvr.vod_retention_s / 86400:g} days", flush=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration_s):
                await stop.wait()
    log.info("livetwin stopped")

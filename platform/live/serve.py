"""`live serve`: the platform's roles (ingest, origin, api, chat) in one process; all by default.

``--roles`` picks some: an ingest node pushes CMAF to ``--origin`` URLs, an origin node accepts
pushes holding ``--ingest-token`` (docs/scaleout.md).

The platform opens its resources (repository, media path, chat broker, RTMP listener, WebRTC
sessions, HTTP site, chat listener) on one `AsyncExitStack`, so shutting down, or failing
half-way through start-up, closes exactly what was opened, in reverse order, and one close that
fails does not keep the others open. Tests start it on port 0 and read the bound ports back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from live.adcreatives import start_ad_creatives
from live.api.app import Api, ApiSettings, setup_api
from live.api.repository import Repository
from live.api.storage import open_repository
from live.chat.auth import RepositoryChatAuth
from live.chat.brokers import open_broker
from live.chat.message_limits import open_message_limiter
from live.chat.server import ChatServer
from live.chat.settings import ChatSettings
from live.commerce.wiring import Monetization, open_monetization
from live.config import ROLES, ServeSettings
from live.dvr.app import setup_dvr
from live.dvr.service import Dvr, open_dvr
from live.http_limits import LimitedTCPSite, limited_runner
from live.ingest.leases import LeaseDirectory, LeaseSettings, StreamLeases
from live.ingest.registry import LiveStreamRegistry
from live.ingest.rtmp.server import RtmpServer, RtmpServerSettings
from live.ingest.srt.libsrt import SrtUnavailable
from live.ingest.srt.server import SrtServer, SrtServerSettings
from live.mediapath import LiveMediaPaths, MediaPathSettings
from live.metrics import CHAT_KEY, PUSH_KEY, STREAMS_KEY, TRANSCODES_KEY, setup_metrics
from live.origin.app import setup_origin
from live.origin.ingest import setup_ingest
from live.origin.store import OriginSettings, OriginStore
from live.package.ladder_packager import PackagingSettings
from live.package.push import CmafPush, PushSettings
from live.redaction import install_redaction, remove_redaction
from live.thumbnails import Thumbnails
from live.webrtc.routes import setup_webrtc
from live.webrtc.service import WebRtcService
from live.webui import WEB_UI_KEY, setup_web
from live.webui_account import PublishPoints
from live.webui_ops import Ops, admin_keys, check_admins, setup_ops

log = logging.getLogger("live.serve")


@dataclass(frozen=True, slots=True)
class BoundPorts:
    rtmp: int  # 0 without the ingest role
    http: int
    chat: int
    metrics: int  # the port /metrics is served on: the HTTP port unless --metrics-listen
    srt: int = 0  # 0 when no SRT listener runs


class Platform:
    """The running platform: ``async with Platform(settings) as platform: ...``."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.streams = LiveStreamRegistry()
        self.repo: Repository | None = None
        self.rtmp: RtmpServer | None = None
        self.srt: SrtServer | None = None
        self.origin = OriginStore(OriginSettings(timing=PackagingSettings().timing,
                                                 dvr_window_s=settings.live_window_s))
        self.dvr: Dvr | None = None
        self.media_paths: LiveMediaPaths | None = None
        self.chat: ChatServer | None = None
        self.webrtc: WebRtcService | None = None
        self.push: CmafPush | None = None  # an ingest node's CMAF push to remote origins
        self.leases: StreamLeases | None = None  # an ingest node's channel leases (NATS KV)
        self._money: Monetization | None = None
        self._runner: web.AppRunner | None = None
        self._metrics_runner: web.AppRunner | None = None
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
        roles = settings.roles
        stack.callback(remove_redaction, install_redaction())
        settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        repo: Repository | None = None
        if roles & {"ingest", "api", "chat"}:  # stream keys, accounts and channels
            self.repo = repo = await open_repository(settings.database, settings.data_dir)
            stack.push_async_callback(repo.close)
            for seed in settings.channels:
                await repo.ensure_channel(seed.name, seed.stream_key)
        dvr: Dvr | None = None
        if "origin" in roles:  # the origin keeps the live edge, its DVR the window on disk
            self.dvr = dvr = await open_dvr(settings.data_dir / "dvr", settings.dvr)
            stack.push_async_callback(dvr.close)
        if "ingest" in roles:
            push = None
            if settings.origins:
                assert settings.ingest_token is not None
                push = CmafPush(PushSettings(settings.origins, settings.ingest_token))
                await push.start()
                stack.push_async_callback(push.close)
            self.push = push
            self.media_paths = LiveMediaPaths(
                self.streams, self.origin if "origin" in roles else None, MediaPathSettings(),
                recorder=dvr.recorder if dvr is not None else None, push=push)
            stack.push_async_callback(self.media_paths.close)
        app = web.Application(client_max_size=1 << 20)
        chat: ChatServer | None = None
        api: Api | None = None
        if roles & {"api", "chat"}:
            assert repo is not None
            api = await self._open_api_chat(stack, app, repo, dvr)
            chat = self.chat
            self.chat = None  # set once listening, below
        if "ingest" in roles:
            assert repo is not None
            await self._open_ingest(stack, app, repo)
        if dvr is not None:
            setup_dvr(app, dvr.catalog, dvr.store)  # before the origin, whose routes would shadow it
        if "origin" in roles:
            setup_origin(app, self.origin)
            if settings.ingest_token:
                setup_ingest(app, self.origin, settings.ingest_token,
                             recorder=dvr.recorder if dvr is not None else None)
        if "api" in roles:
            thumbnails = None
            if "ingest" in roles:  # the streams (and so their keyframes) are on this node
                thumbnails = Thumbnails(self.streams)
                thumbnails.start()
                stack.push_async_callback(thumbnails.close)
            setup_web(app, self.streams, hls_base=settings.public_hls_url, api=api,
                      publish=self._publish_points,
                      chat_port=lambda: self.chat.port if self.chat is not None else 0,
                      thumbnails=thumbnails)
            assert repo is not None
            await check_admins(repo, settings.admins)
            setup_ops(app, Ops(app[WEB_UI_KEY], admin_keys(settings.admins),
                               settings.node_id or settings.url_host, self._metrics_source))
        app[STREAMS_KEY] = self.streams
        if self.media_paths is not None:
            app[TRANSCODES_KEY] = self.media_paths
        if chat is not None:
            app[CHAT_KEY] = chat
        if self.push is not None:
            app[PUSH_KEY] = self.push
        metrics_app = web.Application() if settings.metrics_listen is not None else None
        setup_metrics(app, serve_on=metrics_app, token=settings.metrics_token)
        self.app = app
        self._runner = runner = limited_runner(app, settings.http_limits)
        stack.push_async_callback(runner.cleanup)  # also stops the site
        await runner.setup()
        await LimitedTCPSite(runner, settings.host, settings.http_port, settings.http_limits).start()
        if metrics_app is not None and settings.metrics_listen is not None:
            self._metrics_runner = metrics_runner = limited_runner(metrics_app, settings.http_limits)
            stack.push_async_callback(metrics_runner.cleanup)
            await metrics_runner.setup()
            host, port = settings.metrics_listen
            await LimitedTCPSite(metrics_runner, host, port, settings.http_limits).start()
        if self._money is not None:
            self._money.start(f"http://{settings.url_host}:{self.ports.http}",
                              playlists_elsewhere=settings.public_hls_url is not None)
        if chat is not None and "chat" in roles:
            self.chat = chat
            stack.push_async_callback(chat.close)
            await chat.start(settings.host, settings.chat_port)

    async def _open_api_chat(self, stack: contextlib.AsyncExitStack, app: web.Application,
                             repo: Repository, dvr: Dvr | None) -> Api | None:
        """The API (with money and ads) and chat: they share the broker and the relationships.
        The API counts viewers from this node's chat (None without the api role)."""
        settings = self.settings
        broker = open_broker(settings.chat_broker)
        stack.push_async_callback(broker.close)
        money = await open_monetization(stack, settings.payments, settings.database, settings.data_dir,
                                        repo, broker, self.origin)
        if "chat" in settings.roles:
            chat_settings = ChatSettings()
            limiter = open_message_limiter(settings.chat_rate_store, chat_settings.rate_window_s,
                                           chat_settings.rate_limit_privileged)
            stack.push_async_callback(limiter.close)
            self.chat = ChatServer(RepositoryChatAuth(repo), broker, chat_settings, limiter=limiter,
                                   relationships=money.relationships)
        if "api" not in settings.roles:
            return None
        directory: LeaseDirectory | None = None
        if settings.control_plane is not None:  # list the streams of every ingest node
            directory = LeaseDirectory(settings.control_plane)
            await directory.start()
            stack.push_async_callback(directory.close)
        api = setup_api(app, repo, self.streams,
                        public_base_rtmp=settings.rtmp_base, public_base_http=settings.http_base,
                        public_base_hls=settings.hls_base,
                        settings=ApiSettings(trust_forwarded_for=settings.trust_forwarded_for),
                        videos=dvr.videos if dvr is not None else None,
                        viewer_counts=self.chat.viewers if self.chat is not None else None,
                        cluster=directory.channels if directory is not None else None)
        money.mount(app, api)
        if settings.ad_creatives:
            start_ad_creatives(app, money.ads, settings.data_dir / "ads", settings.ad_creatives,
                               stack)
        self._money = money
        return api

    async def _open_ingest(self, stack: contextlib.AsyncExitStack, app: web.Application,
                           repo: Repository) -> None:
        """RTMP, SRT and WHIP/WHEP into the media path."""
        settings = self.settings
        assert self.media_paths is not None

        leases: StreamLeases | None = None
        if settings.control_plane is not None:
            node = settings.node_id or f"{socket.gethostname()}-{os.getpid()}"
            details = (("origins", " ".join(settings.origins)), ("rtmp", settings.rtmp_base),
                       ("roles", ",".join(r for r in ROLES if r in settings.roles)))
            leases = StreamLeases(LeaseSettings(settings.control_plane, node, details=details),
                                  is_live=lambda channel: self.streams.get(channel) is not None,
                                  on_lost=self.streams.stop)
            await leases.start()
            stack.push_async_callback(leases.close)
            self.leases = leases

        async def resolve(stream_key: str) -> str | None:
            """The key's channel, leased to this node (``ChannelBusy`` when another holds it)."""
            channel = await repo.channel_by_stream_key(stream_key)
            if channel is not None and leases is not None:
                await leases.acquire(channel.name)
            return channel.name if channel is not None else None

        self.rtmp = RtmpServer(
            resolve, self.streams,
            RtmpServerSettings(host=settings.host, port=settings.rtmp_port),
        )
        stack.push_async_callback(self.rtmp.close)
        await self.rtmp.start()
        if settings.srt_port is not None:
            await self._start_srt(resolve, stack)
        self.webrtc = webrtc = WebRtcService(resolve, self.streams, self.media_paths, settings.webrtc)
        stack.push_async_callback(webrtc.close)
        await webrtc.start()
        setup_webrtc(app, webrtc)

    def _publish_points(self) -> PublishPoints:
        """Where the dashboard tells streamers to publish (the bound ports)."""
        srt = f"srt://{self.settings.url_host}:{self.ports.srt}" if self.srt is not None else None
        return PublishPoints(self.rtmp_base(), srt)

    def _forget(self) -> None:
        """Closed: drop the handles (runs last, after every resource is closed)."""
        self.chat = None
        self._money = None
        self.push = None
        self.leases = None
        self._runner = None
        self._metrics_runner = None
        self.app = None
        self.rtmp = None
        self.srt = None
        self.webrtc = None
        self.media_paths = None
        self.repo = None

    async def _start_srt(self, resolve: Callable[[str], Awaitable[str | None]],
                         stack: contextlib.AsyncExitStack) -> None:
        settings = self.settings
        assert settings.srt_port is not None
        srt = SrtServer(resolve, self.streams, SrtServerSettings(
            host=settings.host, port=settings.srt_port, latency_ms=settings.srt_latency_ms,
            passphrase=settings.srt_passphrase))
        try:
            await srt.start()
        except SrtUnavailable as exc:
            log.warning("SRT ingest off: %s", exc)
            return
        except OSError as exc:  # SrtError too: the port is taken
            if settings.srt_port_required:
                raise
            log.warning("SRT ingest off: cannot listen on UDP %s:%d (%s); pass --srt-port",
                        settings.host, settings.srt_port, exc)
            return
        stack.push_async_callback(srt.close)
        self.srt = srt

    def _metrics_source(self) -> tuple[str, str | None]:
        """Where /ops reads this node's /metrics, and with which token."""
        listen = self.settings.metrics_listen
        host = listen[0] if listen is not None else self.settings.host
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.ports.metrics}/metrics", self.settings.metrics_token

    @property
    def ports(self) -> BoundPorts:
        assert self._runner is not None
        http_port = _bound_port(self._runner)
        metrics_port = http_port if self._metrics_runner is None else _bound_port(self._metrics_runner)
        return BoundPorts(rtmp=self.rtmp.port if self.rtmp is not None else 0, http=http_port,
                          chat=self.chat.port if self.chat is not None else 0, metrics=metrics_port,
                          srt=self.srt.port if self.srt is not None else 0)

    async def close(self) -> None:
        """Close what ``start`` opened, newest first (a no-op when nothing is open)."""
        await self._resources.aclose()

    def publish_urls(self) -> list[str]:
        if self.rtmp is None:
            return []
        return [f"{self.rtmp_base()}/<key from {seed.source}>  (channel {seed.name})"
                for seed in self.settings.channels]

    def rtmp_base(self) -> str:
        port = self.ports.rtmp
        return f"rtmp://{self.settings.url_host}:{port}/live"


def _bound_port(runner: web.AppRunner) -> int:
    port = 0
    for address in runner.addresses:
        if isinstance(address, tuple):
            port = int(address[1])
    return port


async def serve(settings: ServeSettings, duration_s: float | None = None) -> None:
    """Run until SIGINT/SIGTERM (or ``duration_s``), printing where to publish and watch."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with Platform(settings) as platform:
        ports = platform.ports
        rtmp = f"RTMP on {settings.url_host}:{ports.rtmp}, " if ports.rtmp else ""
        print(f"livetwin serving ({','.join(r for r in ROLES if r in settings.roles)}): {rtmp}"
              f"HTTP on {settings.http_base.rsplit(':', 1)[0]}:{ports.http}", flush=True)
        if platform.push is not None:
            print(f"  pushing CMAF to: {' '.join(settings.origins)}", flush=True)
        if "origin" in settings.roles and settings.ingest_token:
            print(f"  ingest:  http://{settings.url_host}:{ports.http}/ingest/CHANNEL/STREAM/RENDITION "
                  "(CMAF pushes holding the ingest token)", flush=True)
        for line in platform.publish_urls():
            print(f"  publish: {line}", flush=True)
        if ports.srt:
            for seed in settings.channels:
                print(f"  publish: srt://{settings.url_host}:{ports.srt}?streamid=#!::r=live/"
                      f"<key from {seed.source}>,m=publish  (channel {seed.name})", flush=True)
        if not settings.channels and "api" in settings.roles:
            print("  no channels yet: create one with POST /api/v1/channels "
                  "or start with --channel NAME=KEY", flush=True)
        if "api" in settings.roles:
            print(f"  watch:   http://{settings.url_host}:{ports.http}/  (landing page, "
                  "/watch/CHANNEL)", flush=True)
            print(f"  streams: http://{settings.url_host}:{ports.http}/api/v1/streams", flush=True)
        if ports.chat:
            print(f"  chat:    ws://{settings.url_host}:{ports.chat}/chat/CHANNEL", flush=True)
        if settings.metrics_listen is not None:
            host = settings.metrics_listen[0]
            host = f"[{host}]" if ":" in host else host
            print(f"  metrics: http://{host}:{ports.metrics}/metrics", flush=True)
        dvr = settings.dvr
        if platform.dvr is not None:
            print(f"  dvr:     {dvr.window_s / 3600:g} h window, at most {dvr.max_bytes / 1e9:.1f} GB "
                  f"a channel, under {settings.data_dir / 'dvr'}; VODs kept "
                  f"{dvr.vod_retention_s / 86400:g} days", flush=True)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration_s):
                await stop.wait()
    log.info("livetwin stopped")

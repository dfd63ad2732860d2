"""`GET /metrics`: the platform's own measurements in Prometheus text format.

`loadgen run` scrapes this every second to measure what the twin predicts (origin requests per
second, held blocking requests, chat deliveries, transcode delay and restarts), and it finds a
stream's transcode worker process here (to kill it in a fault drill) instead of guessing from
process lists. Each application gets its own `CollectorRegistry`: nothing is registered
globally, so several platforms (tests) can run in one process. Gauges are read at scrape time
from the live objects the platform puts on the application under the typed keys below; only the
request counter is kept as requests pass. Transcoding is read through the small protocols below
(what a scrape needs of it), not the media path's classes.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterator
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from live.chat.server import ChatServer
from live.ingest.registry import LiveStreamRegistry
from live.mediapath import LiveMediaPaths
from live.origin.app import BLOCKER_KEY
from live.origin.ingest import INGEST_KEY
from live.package.push import CmafPush

STREAMS_KEY: Final = web.AppKey("streams", LiveStreamRegistry)
TRANSCODES_KEY: Final = web.AppKey("transcodes", LiveMediaPaths)
CHAT_KEY: Final = web.AppKey("chat", ChatServer)
PUSH_KEY: Final = web.AppKey("push", CmafPush)

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
REQUEST_KINDS: Final = ("multivariant", "playlist", "part", "segment", "init", "other")
_STATUS_CLASSES: Final = ("2xx", "3xx", "4xx", "5xx")


def request_kind(path: str) -> str | None:
    """What an origin path asks for; None for paths outside /hls/ (API, pages, metrics)."""
    if not path.startswith("/hls/"):
        return None
    name = path.rsplit("/", 1)[-1]
    if name == "master.m3u8":
        return "multivariant"
    if name.endswith(".m3u8"):
        return "playlist"
    if name.endswith(".m4s"):
        return "part" if name.count(".") == 2 else "segment"
    if name.endswith(".mp4"):
        return "init"
    return "other"


def _status_class(status: int) -> str:
    return f"{min(max(status // 100, 2), 5)}xx"


class PlatformCollector(Collector):
    """Reads the platform's live state at scrape time (no copies to keep in step).

    The stream registry must be on ``app``; the origin's blocker, transcoding and chat are
    reported when they are there (a node runs only some roles).
    """

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        app = self.app
        blocker = app.get(BLOCKER_KEY)  # absent on a node without the origin role
        if blocker is not None:
            held = GaugeMetricFamily("livetwin_origin_held_requests",
                                     "Blocking playlist/part requests held now")
            held.add_metric([], float(blocker.held))
            yield held

        live = GaugeMetricFamily("livetwin_live_streams", "Streams being published now")
        live.add_metric([], float(len(app[STREAMS_KEY])))
        yield live

        restarts = CounterMetricFamily(
            "livetwin_transcode_restarts", "Transcode worker restarts per stream", labels=["channel"]
        )
        delay = GaugeMetricFamily(
            "livetwin_transcode_delay_seconds",
            "Per-frame transcode delay percentile over the recent window",
            labels=["channel", "quantile"],
        )
        pid = GaugeMetricFamily(
            "livetwin_transcode_worker_pid", "Process id of the stream's transcode worker", labels=["channel"]
        )
        parts = CounterMetricFamily(
            "livetwin_parts_published", "CMAF parts published to the origin per stream", labels=["channel"]
        )
        guard = CounterMetricFamily(
            "livetwin_transcode_guard_steps",
            "Real-time guard steps taken per stream (faster_preset, halve_top_fps, halve_fps, stop_top_rung)",
            labels=["channel", "step"],
        )
        gaps = GaugeMetricFamily(
            "livetwin_renditions_in_gap", "Advertised renditions listed as EXT-X-GAP for good",
            labels=["channel"],
        )
        transcodes = app.get(TRANSCODES_KEY)
        paths = transcodes.by_channel if transcodes is not None else {}
        for channel, path in sorted(paths.items()):
            status = path.status()
            restarts.add_metric([channel], float(status.restarts))
            parts.add_metric([channel], float(status.parts_published))
            for step in ("faster_preset", "halve_top_fps", "halve_fps", "stop_top_rung"):
                taken = sum(1 for shed in status.shed if shed.split(":", 1)[0] == step)
                guard.add_metric([channel, step], float(taken))
            gaps.add_metric([channel], float(len(status.gaps)))
            for quantile, value in (("0.5", status.delay_p50_ms), ("0.95", status.delay_p95_ms)):
                if value is not None:
                    delay.add_metric([channel, quantile], value / 1000.0)
            supervisor = path.supervisor
            if supervisor is not None and supervisor.pid is not None and not path.ended:
                pid.add_metric([channel], float(supervisor.pid))
        yield from (restarts, delay, pid, parts, guard, gaps)

        chat = app.get(CHAT_KEY)
        if chat is not None:
            stats = chat.stats()
            delivered = CounterMetricFamily(
                "livetwin_chat_messages_delivered", "Chat messages written to clients (one per client)"
            )
            delivered.add_metric([], float(stats.messages_delivered))
            clients = GaugeMetricFamily("livetwin_chat_clients", "Connected chat clients")
            clients.add_metric([], float(stats.clients))
            yield delivered
            yield clients

        yield from _scale_out_metrics(app)


def _scale_out_metrics(app: web.Application) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """An ingest node's CMAF push per origin, and an origin's ingest endpoint (docs/scaleout.md)."""
    push = app.get(PUSH_KEY)
    if push is not None:
        queued = GaugeMetricFamily("livetwin_push_queued_bytes",
                                   "CMAF bytes queued for an origin, not yet sent", labels=["origin"])
        tracks = GaugeMetricFamily("livetwin_push_tracks", "Tracks pushed to an origin now",
                                   labels=["origin"])
        failures = CounterMetricFamily("livetwin_push_failures",
                                       "Pushes to an origin that failed or stalled (then retried)",
                                       labels=["origin"])
        resyncs = CounterMetricFamily("livetwin_push_resyncs",
                                      "Times a track's queue was dropped (full, or refused by the "
                                      "origin) and resumed at the next segment", labels=["origin"])
        for origin in push.origins:
            queued.add_metric([origin.url], float(origin.queued_bytes))
            tracks.add_metric([origin.url], float(len(origin.tracks)))
            failures.add_metric([origin.url], float(origin.failures))
            resyncs.add_metric([origin.url], float(origin.resyncs))
        yield from (queued, tracks, failures, resyncs)
    ingest = app.get(INGEST_KEY)
    if ingest is not None:
        pushes = GaugeMetricFamily("livetwin_ingest_pushes", "CMAF pushes (tracks) open now")
        pushes.add_metric([], float(ingest.open_pushes))
        applied = CounterMetricFamily("livetwin_ingest_parts", "Pushed parts added to the store")
        applied.add_metric([], float(ingest.streams.parts_applied))
        skipped = CounterMetricFamily("livetwin_ingest_parts_skipped",
                                      "Pushed parts skipped (resent, or before a segment start)")
        skipped.add_metric([], float(ingest.streams.parts_skipped))
        refused = CounterMetricFamily("livetwin_ingest_refused",
                                      "Pushes refused for a missing or wrong ingest token")
        refused.add_metric([], float(ingest.refused))
        yield from (pushes, applied, skipped, refused)


class PlatformMetrics:
    """The registry of one platform and the aiohttp pieces that feed and serve it."""

    def __init__(self, app: web.Application, token: str | None = None) -> None:
        self.token = token
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "livetwin_origin_requests",
            "HTTP requests the LL-HLS origin answered, by what they asked for and status class",
            ["kind", "status"],
            registry=self.registry,
        )
        for kind in REQUEST_KINDS:  # export zeros so rates exist from the first scrape
            for status in _STATUS_CLASSES:
                self.requests.labels(kind, status)
        self.registry.register(PlatformCollector(app))

    @web.middleware
    async def count_requests(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        kind = request_kind(request.path)
        if kind is None:
            return await handler(request)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            self.requests.labels(kind, _status_class(exc.status)).inc()
            raise
        self.requests.labels(kind, _status_class(response.status)).inc()
        return response

    async def serve(self, request: web.Request) -> web.Response:
        if self.token is not None and not _bearer_matches(request, self.token):
            return web.Response(status=401, text="/metrics needs Authorization: Bearer <metrics token>\n",
                                headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE})


def _bearer_matches(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def setup_metrics(
    app: web.Application, *, serve_on: web.Application | None = None, token: str | None = None
) -> PlatformMetrics:
    """Count origin requests on ``app`` and serve ``GET /metrics`` (what it reads: ``PlatformCollector``).

    ``/metrics`` is served on ``app`` unless ``serve_on`` names another application (one that
    listens on another address, ``live serve --metrics-listen``); with ``token`` it answers only
    requests that carry ``Authorization: Bearer <token>`` (``--metrics-token``).
    """
    metrics = PlatformMetrics(app, token)
    app.middlewares.append(metrics.count_requests)
    (app if serve_on is None else serve_on).router.add_get("/metrics", metrics.serve)
    return metrics

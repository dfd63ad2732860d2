"""The browser side: landing page, viewer page, studio, our static files and the vendored players.

The pages are HTML templates under ``platform/web/templates`` filled with escaped values, so a
channel name can never become markup; the player itself is ``platform/web/static/watch.js``
on top of hls.js (LL-HLS, RFC 8216bis) with Safari's native HLS as the fallback and WHEP
(``whep.js``) as its lowest-delay mode, or with ``?player=dash`` ``watch_dash.js`` on top of
dash.js (LL-DASH from the same CMAF); the studio (``studio.js``) publishes a camera, a screen or
a clock test card over WHIP. The viewer page's chat panel (``chat.js``, ``watch_chat.js``) talks
to the chat node on the page's host; the account pages and the dashboard are
``live.webui_account``. Neither library is copied into the repository:
``npm ci --prefix platform/web`` installs the exact versions pinned in ``package-lock.json`` and
this module serves them from ``node_modules``.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Final
from urllib.parse import urlsplit

from aiohttp import web

import live
from live.api.app import Api
from live.ingest.registry import LiveStreamRegistry, StreamHealth
from live.thumbnails import Thumbnails, setup_thumbnails
from live.webui_account import Accounts, Csrf, PublishPoints, setup_accounts

CHANNEL_NAME: Final = re.compile(r"[a-z0-9_]{3,25}")
_VOD_ID: Final = re.compile(r"[0-9]{1,18}")
_STATIC_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,64}\.(?P<ext>js|css|svg)")
_STATIC_TYPES: Final = {"js": "text/javascript", "css": "text/css", "svg": "image/svg+xml"}
HLS_JS_PATH: Final = Path("node_modules", "hls.js", "dist", "hls.min.js")
#: dash.js, the DASH-IF reference player (npm package ``dashjs``), for ``?player=dash``.
DASH_JS_PATH: Final = Path("node_modules", "dashjs", "dist", "modern", "umd", "dash.mediaplayer.min.js")
#: player -> (manifest URL pattern, player library, our page script)
PLAYERS: Final = {
    "hls": ("/hls/{channel}/master.m3u8", "/vendor/hls.js", "/static/watch.js"),
    "dash": ("/dash/{channel}/manifest.mpd", "/vendor/dash.js", "/static/watch_dash.js"),
}
NPM_HINT: Final = "run `npm ci --prefix platform/web` to install it"

# hls.js builds its transmuxing worker from a blob: URL and feeds MSE through blob: media URLs;
# everything else comes from this origin and no inline script or style is needed.
def content_security_policy(hls_origin: str | None = None, chat_origins: str = "") -> str:
    """The pages' policy; ``hls_origin`` (scheme://host[:port] of a CDN) may serve the streams,
    ``chat_origins`` (``ws://host:port wss://host:port``) is the chat node on another port.
    Forms post to this origin only (the account pages, log out)."""
    extra = f" {hls_origin}" if hls_origin else ""
    chat = f" {chat_origins}" if chat_origins else ""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"media-src 'self' blob:{extra}; connect-src 'self'{extra}{chat}; worker-src 'self' blob:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


CONTENT_SECURITY_POLICY: Final = content_security_policy()


def page_headers(hls_origin: str | None = None, chat_origins: str = "") -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(hls_origin, chat_origins),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


#: The studio may use the camera, microphone and screen of its own origin, nothing else may.
STUDIO_PERMISSIONS: Final = "camera=(self), microphone=(self), display-capture=(self)"


def default_web_root() -> Path:
    """``platform/web`` beside the (editable-installed) ``live`` package."""
    return Path(live.__file__).resolve().parent.parent / "web"


def valid_channel(name: str) -> bool:
    return CHANNEL_NAME.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class WebTemplates:
    """The page templates, read once at setup so a missing file fails at start, not per request."""

    index: Template
    watch: Template
    studio: Template

    @classmethod
    def load(cls, web_root: Path) -> WebTemplates:
        folder = web_root / "templates"
        try:
            return cls(
                index=Template((folder / "index.html").read_text(encoding="utf-8")),
                watch=Template((folder / "watch.html").read_text(encoding="utf-8")),
                studio=Template((folder / "studio.html").read_text(encoding="utf-8")),
            )
        except OSError as exc:
            raise RuntimeError(f"web UI templates missing under {folder}: {exc}") from exc


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _describe(health: StreamHealth) -> str:
    parts = []
    if health.width and health.height:
        parts.append(f"{health.width}x{health.height}")
    if health.fps:
        parts.append(f"{health.fps:g} fps")
    minutes, seconds = divmod(int(health.uptime_s), 60)
    parts.append(f"live for {minutes}:{seconds:02d}")
    return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class LiveChannel:
    """One landing-page entry: the stream's public health, its audience and its thumbnail."""

    health: StreamHealth
    viewers: int | None  # None: no chat node counts them
    thumbnail: str | None  # the JPEG's URL (changes with each new picture), None until made

    def as_json(self) -> dict[str, object]:
        h = self.health
        return {"channel": h.channel, "viewers": self.viewers, "width": h.width, "height": h.height,
                "fps": h.fps, "uptime_s": h.uptime_s, "thumbnail": self.thumbnail}


def by_viewers(channels: Iterable[LiveChannel]) -> list[LiveChannel]:
    """Valid names only, most viewers first, then by name."""
    valid = (c for c in channels if valid_channel(c.health.channel))
    return sorted(valid, key=lambda c: (-(c.viewers or 0), c.health.channel))


def render_channel_list(channels: Iterable[LiveChannel]) -> str:
    """The landing page's ``<li>`` cards; every value escaped, invalid names left out."""
    items = []
    for entry in by_viewers(channels):
        name = _e(entry.health.channel)
        viewers = "" if entry.viewers is None else f"{entry.viewers} watching · "
        thumb = (f'<img class="thumb" src="{_e(entry.thumbnail)}" alt="" width="320" height="180">'
                 if entry.thumbnail else '<span class="thumb none" aria-hidden="true"></span>')
        items.append(
            f'<li><a href="/watch/{name}">{thumb}<span class="name">{name}</span></a> '
            f'<span class="meta">{_e(viewers + _describe(entry.health))}</span></li>'
        )
    return "\n".join(items)


def render_index(template: Template, channels: Iterable[LiveChannel], nav: str = "") -> str:
    listing = render_channel_list(channels)
    return template.substitute(
        channels=listing,
        empty_hidden="hidden" if listing else "",
        nav=nav,
    )


def render_watch(template: Template, channel: str, player: str = "hls", hls_base: str = "", *,
                 nav: str = "", csrf: str = "", chat_port: int = 0, vod: str = "") -> str:
    """The viewer page for ``channel`` (already validated, escaped anyway): LL-HLS through
    hls.js, or with ``player="dash"`` LL-DASH through dash.js from the same CMAF.

    ``hls_base`` is where hls.js fetches the stream (``live serve --public-hls-url``, a CDN
    edge); empty means this server's own origin. DASH is served by this origin only.
    ``chat_port`` (0: no chat) is the chat node's port on the page's host. ``vod`` (digits, a
    past broadcast's id from the DVR's list) plays that recording instead of the live stream.
    """
    src, library, script = PLAYERS[player]
    base = hls_base if player == "hls" else ""
    source = base + src.format(channel=channel)
    if vod:
        source = f"/hls/{channel}/vod/{vod}/master.m3u8"  # recordings are on this origin's disk
    return template.substitute(
        channel=_e(channel),
        src=_e(source),
        vod=_e(vod),
        vod_hidden="" if vod else "hidden",
        player=_e(player),
        player_lib=_e(library),
        player_script=_e(script),
        dvr_src=_e(f"/hls/{channel}/dvr/master.m3u8"),
        videos=_e(f"/api/v1/channels/{channel}/videos"),
        nav=nav,
        csrf=_e(csrf),
        chat_port=_e(chat_port),
    )


def chat_origins(request: web.Request, chat_port: int) -> str:
    """The chat node as CSP sources: the page's own host name on the chat port (both schemes)."""
    host = request.url.raw_host
    if not chat_port or not host:
        return ""
    host = f"[{host}]" if ":" in host else host
    return f"ws://{host}:{chat_port} wss://{host}:{chat_port}"


class WebUi:
    """Handlers over the live-stream registry and one ``platform/web`` folder."""

    def __init__(self, streams: LiveStreamRegistry, web_root: Path, hls_base: str | None = None,
                 accounts: Accounts | None = None, chat_port: Callable[[], int] | None = None) -> None:
        self.streams = streams
        self.web_root = web_root
        self.hls_base = (hls_base or "").rstrip("/")
        parts = urlsplit(self.hls_base)
        self.hls_origin = f"{parts.scheme}://{parts.netloc}" if hls_base else None
        self.page_headers = page_headers(self.hls_origin)
        self.studio_headers = {**self.page_headers, "Permissions-Policy": STUDIO_PERMISSIONS}
        self.templates = WebTemplates.load(web_root)
        self.accounts = accounts
        self.chat_port = chat_port or (lambda: 0)
        self.thumbnails: Thumbnails | None = None

    def headers_for(self, request: web.Request) -> dict[str, str]:
        """Page headers whose CSP lets the page reach the chat node on the page's host."""
        return page_headers(self.hls_origin, chat_origins(request, self.chat_port()))

    async def _nav(self, request: web.Request) -> tuple[str, Csrf | None]:
        if self.accounts is None:
            return "", None
        csrf = Csrf(request, self.accounts.secure)
        return self.accounts.nav(await self.accounts.account(request), csrf), csrf

    def live_channels(self) -> list[LiveChannel]:
        now = time.monotonic()
        viewers = self.accounts.api.viewer_counts if self.accounts is not None else None
        entries = []
        for stream in self.streams:
            thumb = self.thumbnails.get(stream.channel) if self.thumbnails is not None else None
            url = f"/thumbnails/{stream.channel}.jpg?g={thumb.generation}" if thumb is not None else None
            entries.append(LiveChannel(stream.health(now), viewers(stream.channel) if viewers else None, url))
        return by_viewers(entries)

    async def index(self, request: web.Request) -> web.StreamResponse:
        nav, csrf = await self._nav(request)
        body = render_index(self.templates.index, self.live_channels(), nav)
        response = web.Response(text=body, content_type="text/html", headers=self.page_headers)
        return csrf.attach(response) if csrf is not None else response

    async def live_now(self, request: web.Request) -> web.StreamResponse:
        """``/live-now.json``: the landing page's list for its refresh, in the page's order."""
        return web.json_response({"channels": [c.as_json() for c in self.live_channels()]},
                                 headers={"Cache-Control": "no-store"})

    async def watch(self, request: web.Request) -> web.StreamResponse:
        channel = request.match_info["channel"]
        if not valid_channel(channel):
            raise web.HTTPNotFound(text="no such channel: names are 3-25 characters of a-z, 0-9, _\n")
        player = request.query.get("player", "hls")
        if player not in PLAYERS:
            raise web.HTTPBadRequest(text=f"player must be one of {', '.join(PLAYERS)}\n")
        vod = request.query.get("vod", "")
        if vod and (_VOD_ID.fullmatch(vod) is None or player != "hls"):
            raise web.HTTPBadRequest(text="vod must be a past broadcast's id (digits), played with hls\n")
        nav, csrf = await self._nav(request)
        body = render_watch(self.templates.watch, channel, player, self.hls_base, nav=nav,
                            csrf=csrf.token if csrf is not None else "", chat_port=self.chat_port(), vod=vod)
        response = web.Response(text=body, content_type="text/html", headers=self.headers_for(request))
        return csrf.attach(response) if csrf is not None else response

    async def studio(self, request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        if not valid_channel(channel):
            raise web.HTTPNotFound(text="no such channel: names are 3-25 characters of a-z, 0-9, _\n")
        body = self.templates.studio.substitute(channel=_e(channel))
        return web.Response(text=body, content_type="text/html", headers=self.studio_headers)

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        match = _STATIC_NAME.fullmatch(name)
        path = self.web_root / "static" / name
        if match is None or not path.is_file():
            raise web.HTTPNotFound(text=f"no static file {name!r}\n")
        return web.FileResponse(path, headers={
            "Content-Type": _STATIC_TYPES[match["ext"]],
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        })

    async def hls_js(self, request: web.Request) -> web.StreamResponse:
        return self._vendor(HLS_JS_PATH, "hls.js")

    async def dash_js(self, request: web.Request) -> web.StreamResponse:
        return self._vendor(DASH_JS_PATH, "dash.js")

    def _vendor(self, relative: Path, name: str) -> web.StreamResponse:
        path = self.web_root / relative
        if not path.is_file():
            return web.Response(
                status=503,
                text=f"{name} is not installed ({path} is missing): {NPM_HINT}\n",
                headers={"Cache-Control": "no-store", "Retry-After": "60"},
            )
        return web.FileResponse(path, headers={
            "Content-Type": "text/javascript",
            "Cache-Control": "public, max-age=300",
            "X-Content-Type-Options": "nosniff",
        })


WEB_UI_KEY: Final = web.AppKey("live.webui", WebUi)


def setup_web(app: web.Application, streams: LiveStreamRegistry,
              web_root: Path | None = None, hls_base: str | None = None, *,
              api: Api | None = None, publish: Callable[[], PublishPoints] | None = None,
              chat_port: Callable[[], int] | None = None,
              thumbnails: Thumbnails | None = None) -> None:
    """Mount ``/``, ``/watch/{channel}`` (``?player=dash`` for dash.js), ``/studio/{channel}``,
    ``/static/{name}``, ``/vendor/hls.js`` and ``/vendor/dash.js`` on ``app``; with ``api``
    also the account pages and the dashboard (``live.webui_account``).

    ``web_root`` defaults to the repository's ``platform/web``; the vendored hls.js comes from
    its ``node_modules`` and answers 503 (saying how to install it) while that is missing.
    ``hls_base`` points the viewer page's player at a CDN edge instead of this origin.
    ``chat_port()`` is the chat node's bound port (asked per page: it binds after the routes).
    ``thumbnails`` (``live.thumbnails``) adds ``/thumbnails/{channel}.jpg`` and the landing
    page's pictures.
    """
    root = (web_root or default_web_root()).resolve()
    ui = WebUi(streams, root, hls_base, chat_port=chat_port)
    if api is not None:
        rtmp = api.public_base_rtmp
        points = publish or (lambda: PublishPoints(rtmp, None))
        ui.accounts = Accounts(api, root / "templates", ui.headers_for, points, ui.chat_port)
        setup_accounts(app, ui.accounts)
    if thumbnails is not None:
        ui.thumbnails = thumbnails
        setup_thumbnails(app, thumbnails)
    app[WEB_UI_KEY] = ui
    app.router.add_get("/live-now.json", ui.live_now)
    app.router.add_get("/", ui.index)
    app.router.add_get("/watch/{channel}", ui.watch)
    app.router.add_get("/studio/{channel}", ui.studio)
    app.router.add_get("/static/{name}", ui.static)
    app.router.add_get("/vendor/hls.js", ui.hls_js)
    app.router.add_get("/vendor/dash.js", ui.dash_js)

"""The ``/api/v1`` aiohttp application: accounts, sessions, channels, stream keys, live streams.

Handlers stay thin: bodies go through ``validation`` (pure), storage through the
``Repository``, and every refusal is an ``ApiError`` that one middleware turns into
``{"error", "message"}`` JSON with its status. The API is mounted as a sub-application, so
that middleware covers exactly ``/api/v1`` (including its 404 and 405 answers) and nothing
the origin or the web pages serve beside it.

Secrets leave only to their owner and only once: a stream key in the answer that created or
rotated it, a token in the login answer; a live stream's publisher address only in its
channel owner's view.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp import web

from live.api.auth import TOKEN_MAX_CHARS, Passwords, bearer_token, new_stream_key, new_token, token_hash
from live.api.errors import ApiError, conflict, forbidden, not_found, rate_limited, unauthorized
from live.api.models import Account, Channel, Session
from live.api.openapi import API_PREFIX, openapi_document
from live.api.ratelimit import Backoff, FailureBackoff, Rate, TokenBuckets, client_key
from live.api.repository import Conflict, NotFound, Repository
from live.api.validation import (
    Credentials,
    body_too_large,
    channel_name_from_path,
    parse_channel_create,
    parse_channel_update,
    parse_credentials,
    parse_json,
    parse_page,
    parse_password_change,
)
from live.api.websession import CSRF_HEADER, SAFE_METHODS, SESSION_COOKIE, csrf_refusal
from live.dvr.catalog import Video
from live.ingest.registry import LiveStreamRegistry

log = logging.getLogger("live.api")

#: How many times a fresh random stream key is drawn if it collides (2**-192 each; paranoia).
_KEY_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """Limits and lifetimes of the API; the defaults are what `live serve` runs with."""

    session_ttl_s: float = 30 * 24 * 3600.0
    max_body_bytes: int = 16 * 1024
    #: Per client address; only failed logins spend it.
    login_rate: Rate = field(default_factory=lambda: Rate(capacity=10, per_second=10 / 60))
    #: Per account, whatever the address: exponential wait after repeated wrong passwords.
    login_backoff: Backoff = field(default_factory=Backoff)
    signup_rate: Rate = field(default_factory=lambda: Rate(capacity=5, per_second=5 / 3600))
    rate_limit_max_clients: int = 100_000
    max_channels_per_account: int = 5
    #: Take the client address from the last X-Forwarded-For entry (only behind our own proxy).
    trust_forwarded_for: bool = False
    #: Seconds between sweeps of expired sessions (run on the back of a login).
    session_sweep_interval_s: float = 3600.0


ViewerCounts = Callable[[str], int | None]
#: Every channel live anywhere in the platform, with where (``LeaseDirectory.channels``).
ClusterStreams = Callable[[], Mapping[str, Mapping[str, object]]]
#: A channel's recordings, newest first (the DVR's ``Dvr.videos``).
PastBroadcasts = Callable[[str], list[Video]]


class Api:
    """The API's state and handlers; one per application, reachable through ``API_KEY``."""

    def __init__(self, repo: Repository, streams: LiveStreamRegistry, *, public_base_rtmp: str,
                 public_base_http: str, settings: ApiSettings, passwords: Passwords,
                 viewer_counts: ViewerCounts | None, clock: Callable[[], float],
                 public_base_hls: str | None = None,
                 videos: PastBroadcasts | None = None, cluster: ClusterStreams | None = None) -> None:
        self.repo = repo
        self.cluster = cluster
        self.streams = streams
        self.public_base_rtmp = public_base_rtmp.rstrip("/")
        self.public_base_http = public_base_http.rstrip("/")
        self.public_base_hls = (public_base_hls or public_base_http).rstrip("/")
        self.settings = settings
        self.passwords = passwords
        self.viewer_counts = viewer_counts
        self.videos = videos
        self.clock = clock
        self.login_limits = TokenBuckets(settings.login_rate, settings.rate_limit_max_clients)
        self.signup_limits = TokenBuckets(settings.signup_rate, settings.rate_limit_max_clients)
        self.account_backoff = FailureBackoff(settings.login_backoff, settings.rate_limit_max_clients)
        self._next_sweep = 0.0
        self._document = openapi_document()

    # plumbing

    def client(self, request: web.Request) -> str:
        address = request.remote
        if self.settings.trust_forwarded_for:
            forwarded = request.headers.get("X-Forwarded-For", "")
            if forwarded.strip():
                address = forwarded.rsplit(",", 1)[-1].strip()
        return client_key(address)

    def limit(self, buckets: TokenBuckets, request: web.Request, what: str) -> None:
        wait = buckets.take(self.client(request), time.monotonic())
        if wait > 0:
            raise rate_limited(wait, what)

    async def body(self, request: web.Request) -> Any:
        """The request's JSON, read no further than the size limit allows."""
        limit = self.settings.max_body_bytes
        content_type = request.headers.get("Content-Type", "")
        media = content_type.partition(";")[0].strip().lower()
        if media and media != "application/json" and not media.endswith("+json"):
            raise ApiError(415, "unsupported_media_type", f"expected application/json, got {media[:64]!r}")
        if request.content_length is not None and request.content_length > limit:
            raise body_too_large(limit)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = await request.content.read(limit + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise body_too_large(limit)
        return parse_json(b"".join(chunks), limit)

    def token(self, request: web.Request) -> str | None:
        """The bearer token, else the session cookie; a cookie on a state-changing request must
        pass the CSRF checks (``live.api.websession``), a bearer token needs none."""
        token = bearer_token(request.headers.get("Authorization"))
        if token is not None:
            return token
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie or len(cookie) > TOKEN_MAX_CHARS:
            return None
        if request.method not in SAFE_METHODS:
            reason = csrf_refusal(request.headers, request.cookies, request.host,
                                  request.headers.get(CSRF_HEADER))
            if reason is not None:
                raise ApiError(403, "csrf_failed", reason)
        return cookie

    async def session(self, request: web.Request) -> tuple[Session, bytes]:
        token = self.token(request)
        if token is None:
            raise unauthorized()
        hashed = token_hash(token)
        session = await self.repo.session_by_token_hash(hashed, self.clock())
        if session is None:
            raise unauthorized("the bearer token is unknown, expired or revoked")
        return session, hashed

    async def viewer(self, request: web.Request) -> Account | None:
        """The caller's account when a valid token is sent; public endpoints never insist."""
        token = self.token(request)
        if token is None:
            return None
        session = await self.repo.session_by_token_hash(token_hash(token), self.clock())
        return None if session is None else session.account

    async def owned_channel(self, request: web.Request) -> tuple[Channel, Account]:
        session, _ = await self.session(request)
        channel = await self.channel_from_path(request)
        if channel.owner_id != session.account.id:
            raise forbidden(f"channel {channel.name!r} belongs to another account")
        return channel, session.account

    async def channel_from_path(self, request: web.Request) -> Channel:
        segment = request.match_info["name"]
        name = channel_name_from_path(segment)
        channel = None if name is None else await self.repo.channel(name)
        if channel is None:
            raise not_found(f"no channel {segment[:64]!r}")
        return channel

    def publish_url(self, stream_key: str) -> str:
        return f"{self.public_base_rtmp}/{stream_key}"

    def key_view(self, stream_key: str) -> dict[str, str]:
        """The one answer a key appears in (creation, rotation); the store keeps only its hash."""
        return {"stream_key": stream_key, "publish_url": self.publish_url(stream_key)}

    async def check_password(self, account_key: str, stored_hash: str | None, password: str,
                             request: web.Request) -> bool:
        """Verify a password under both throttles: the client address and the account.

        The attempt is charged before the (slow) verification, so concurrent guesses cannot
        all slip in, and refunded when it succeeds.
        """
        client = self.client(request)
        now = self.clock()
        wait = max(self.login_limits.take(client, time.monotonic()),
                   self.account_backoff.wait(account_key, now))
        if wait > 0:
            raise rate_limited(wait, "login attempts")
        self.account_backoff.failed(account_key, now)
        if await self.passwords.verify(stored_hash, password) and stored_hash is not None:
            self.account_backoff.succeeded(account_key)
            self.login_limits.refund(client)
            return True
        return False

    def channel_view(self, channel: Channel, *, owner: bool) -> dict[str, Any]:
        stream = self.streams.get(channel.name)
        view: dict[str, Any] = {
            "name": channel.name,
            "title": channel.title,
            "live": stream is not None or (self.cluster is not None and channel.name in self.cluster()),
            "viewer_count": self.viewer_counts(channel.name) if self.viewer_counts else None,
            "created_at": channel.created_at,
            "watch_url": f"{self.public_base_http}/watch/{channel.name}",
            "hls_url": f"{self.public_base_hls}/hls/{channel.name}/master.m3u8",
            "stream": asdict(stream.health()) if stream is not None else None,
        }
        if owner and stream is not None:
            view["publisher_address"] = stream.remote
        return view

    # handlers

    async def create_account(self, request: web.Request) -> web.Response:
        account = await self.sign_up(parse_credentials(await self.body(request)), request)
        return web.json_response(_account(account), status=201)

    async def sign_up(self, credentials: Credentials, request: web.Request) -> Account:
        """Create an account (the JSON route and the sign-up form share this)."""
        self.limit(self.signup_limits, request, "account creations")
        password_hash = await self.passwords.hash(credentials.password)
        account = await self.repo.create_account(credentials.username, password_hash)
        log.info("account %d created: %s", account.id, account.username)
        return account

    async def create_session(self, request: web.Request) -> web.Response:
        token, expires_at, account = await self.log_in(parse_credentials(await self.body(request)), request)
        return web.json_response(
            {"token": token, "expires_at": expires_at, "account": _account(account)}, status=201
        )

    async def log_in(self, credentials: Credentials, request: web.Request) -> tuple[str, float, Account]:
        """A new session (token, expiry, account) for right credentials; the form shares this."""
        found = await self.repo.account_by_username(credentials.username)
        stored_hash = found[1] if found is not None else None
        account_key = credentials.username.lower()
        if not await self.check_password(account_key, stored_hash, credentials.password, request) \
                or found is None:
            raise ApiError(401, "invalid_credentials", "unknown username or wrong password")
        account = found[0]
        if stored_hash is not None and self.passwords.needs_rehash(stored_hash):
            await self.repo.set_password_hash(account.id, await self.passwords.hash(credentials.password))
        token = new_token()
        now = self.clock()
        expires_at = now + self.settings.session_ttl_s
        await self.repo.create_session(account.id, token_hash(token), expires_at)
        await self._sweep_sessions(now)
        return token, expires_at, account

    async def _sweep_sessions(self, now: float) -> None:
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + self.settings.session_sweep_interval_s
        dropped = await self.repo.delete_expired_sessions(now)
        if dropped:
            log.info("dropped %d expired sessions", dropped)

    async def current_session(self, request: web.Request) -> web.Response:
        session, _ = await self.session(request)
        channels = await self.repo.channels_owned_by(session.account.id)
        return web.json_response({
            "account": _account(session.account),
            "expires_at": session.expires_at,
            "channels": [c.name for c in channels],
        })

    async def delete_session(self, request: web.Request) -> web.Response:
        _, hashed = await self.session(request)
        await self.repo.delete_session(hashed)
        response = web.Response(status=204)
        if request.cookies.get(SESSION_COOKIE):
            response.del_cookie(SESSION_COOKIE, path="/")
        return response

    async def change_password(self, request: web.Request) -> web.Response:
        """Needs the old password; every other session of the account is revoked."""
        session, hashed = await self.session(request)
        change = parse_password_change(await self.body(request))
        account = session.account
        found = await self.repo.account_by_username(account.username)
        stored_hash = found[1] if found is not None else None
        if not await self.check_password(account.username.lower(), stored_hash, change.old_password,
                                         request):
            raise ApiError(403, "invalid_credentials", "the old password is wrong", field="old_password")
        revoked = await self.repo.change_password(
            account.id, await self.passwords.hash(change.new_password), keep=hashed
        )
        log.info("account %d changed its password; %d other sessions revoked", account.id, revoked)
        return web.Response(status=204)

    async def revoke_all_sessions(self, request: web.Request) -> web.Response:
        """Log out everywhere: every session of the account, this one included."""
        session, _ = await self.session(request)
        revoked = await self.repo.delete_sessions_of(session.account.id)
        log.info("account %d revoked all %d sessions", session.account.id, revoked)
        return web.Response(status=204)

    async def list_channels(self, request: web.Request) -> web.Response:
        page = parse_page(request.query)
        viewer = await self.viewer(request)
        channels = await self.repo.channels_page(page.after, page.limit)
        return web.json_response({
            "channels": [self.channel_view(c, owner=viewer is not None and c.owner_id == viewer.id)
                         for c in channels],
            "next": channels[-1].name if len(channels) == page.limit else None,
        })

    async def create_channel(self, request: web.Request) -> web.Response:
        session, _ = await self.session(request)
        wanted = parse_channel_create(await self.body(request))
        owned = await self.repo.channels_owned_by(session.account.id)
        if len(owned) >= self.settings.max_channels_per_account:
            raise forbidden(f"an account may own at most {self.settings.max_channels_per_account} channels")
        key = [new_stream_key()]
        channel = await self._with_fresh_key(
            lambda fresh: self.repo.create_channel(wanted.name, session.account.id, fresh), key
        )
        if wanted.title:
            channel = await self.repo.set_title(channel.name, wanted.title)
        log.info("channel %s created by account %d", channel.name, session.account.id)
        return web.json_response({**self.channel_view(channel, owner=True), **self.key_view(key[0])},
                                 status=201)

    async def get_channel(self, request: web.Request) -> web.Response:
        channel = await self.channel_from_path(request)
        viewer = await self.viewer(request)
        owner = viewer is not None and channel.owner_id == viewer.id
        return web.json_response(self.channel_view(channel, owner=owner))

    async def update_channel(self, request: web.Request) -> web.Response:
        channel, _ = await self.owned_channel(request)
        update = parse_channel_update(await self.body(request))
        channel = await self.repo.set_title(channel.name, update.title)
        return web.json_response(self.channel_view(channel, owner=True))

    async def rotate_stream_key(self, request: web.Request) -> web.Response:
        """A new key; the old one is refused from now on and its live publisher is cut."""
        channel, account = await self.owned_channel(request)
        key = [new_stream_key()]
        await self._with_fresh_key(lambda fresh: self.repo.set_stream_key(channel.name, fresh), key)
        cut = self.streams.stop(channel.name, "stream key rotated")
        log.info("stream key of %s rotated by account %d%s", channel.name, account.id,
                 "; live publisher cut" if cut else "")
        return web.json_response(self.key_view(key[0]))

    async def stop_stream(self, request: web.Request) -> web.Response:
        """End the channel's live publication now (the publisher may reconnect with its key)."""
        channel, account = await self.owned_channel(request)
        stopped = self.streams.stop(channel.name, "stopped by the channel owner")
        if stopped:
            log.info("live stream of %s stopped by account %d", channel.name, account.id)
        return web.json_response({"stopped": stopped})

    async def _with_fresh_key(self, write: Callable[[str], Awaitable[Channel]], key: list[str]) -> Channel:
        """Run ``write`` with a fresh key, drawing another on a collision; ``key[0]`` is the one used."""
        for attempt in range(_KEY_ATTEMPTS):
            try:
                return await write(key[0])
            except Conflict as error:
                if error.field != "stream_key" or attempt == _KEY_ATTEMPTS - 1:
                    raise
                key[0] = new_stream_key()
        raise AssertionError("unreachable")

    async def list_streams(self, request: web.Request) -> web.Response:
        now = time.monotonic()
        body: dict[str, Any] = {"streams": [asdict(s.health(now)) for s in self.streams]}
        if self.cluster is not None:  # the control plane: streams on every ingest node
            body["cluster"] = [_placement(name, lease) for name, lease in self.cluster().items()]
        return web.json_response(body)

    async def list_videos(self, request: web.Request) -> web.Response:
        channel = await self.channel_from_path(request)
        videos = self.videos(channel.name) if self.videos is not None else []
        return web.json_response({"videos": [
            {**asdict(video), "playback_url": self.public_base_http + video.playback_path}
            for video in videos]})

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(self._document)

    def document_routes(self, paths: dict[str, Any], schemas: dict[str, Any]) -> None:
        """Describe routes mounted beside the API (commerce) in the served OpenAPI document."""
        self._document["paths"].update(paths)
        self._document["components"]["schemas"].update(schemas)


def _account(account: Account) -> dict[str, Any]:
    return {"id": account.id, "username": account.username, "created_at": account.created_at}


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "body_too_large", 415: "unsupported_media_type",
}


@web.middleware
async def json_errors(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Every answer under /api/v1 that is not a success is ``{"error", "message"}`` JSON."""
    try:
        return await handler(request)
    except ApiError as error:
        return web.json_response(error.body(), status=error.status, headers=error.headers)
    except Conflict as error:
        return web.json_response(conflict(error.field, str(error)).body(), status=409)
    except NotFound as error:
        return web.json_response(not_found(str(error)).body(), status=404)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        headers = {k: v for k, v in error.headers.items() if k.lower() in ("allow", "retry-after")}
        code = _HTTP_CODES.get(error.status, "http_error")
        return web.json_response({"error": code, "message": error.reason}, status=error.status,
                                 headers=headers)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("internal error answering %s %s", request.method, request.path)
        return web.json_response({"error": "internal_error", "message": "internal server error"},
                                 status=500)


API_KEY = web.AppKey("livetwin_api", Api)


def build_api_app(api: Api) -> web.Application:
    """The sub-application with every ``/api/v1`` route (paths relative to the prefix)."""
    sub = web.Application(middlewares=[json_errors])
    sub[API_KEY] = api
    sub.router.add_post("/accounts", api.create_account)
    sub.router.add_post("/sessions", api.create_session)
    sub.router.add_get("/sessions/current", api.current_session, allow_head=False)
    sub.router.add_delete("/sessions/current", api.delete_session)
    sub.router.add_post("/sessions/revoke-all", api.revoke_all_sessions)
    sub.router.add_post("/me/password", api.change_password)
    sub.router.add_get("/channels", api.list_channels, allow_head=False)
    sub.router.add_post("/channels", api.create_channel)
    sub.router.add_get("/channels/{name}", api.get_channel, allow_head=False)
    sub.router.add_patch("/channels/{name}", api.update_channel)
    sub.router.add_post("/channels/{name}/stream-key", api.rotate_stream_key)
    sub.router.add_post("/channels/{name}/stream/stop", api.stop_stream)
    sub.router.add_get("/channels/{name}/videos", api.list_videos, allow_head=False)
    sub.router.add_get("/streams", api.list_streams, allow_head=False)
    sub.router.add_get("/openapi.json", api.openapi, allow_head=False)
    return sub


def setup_api(app: web.Application, repo: Repository, streams: LiveStreamRegistry, *,
              public_base_rtmp: str, public_base_http: str, settings: ApiSettings | None = None,
              passwords: Passwords | None = None, viewer_counts: ViewerCounts | None = None,
              public_base_hls: str | None = None,
              clock: Callable[[], float] = time.time, videos: PastBroadcasts | None = None,
              cluster: ClusterStreams | None = None) -> Api:
    """Mount ``/api/v1`` on ``app``; answers the ``Api`` so callers can reach its state.

    ``viewer_counts(channel)`` is how the origin reports audience size; without it channels
    show ``viewer_count: null`` rather than a made-up zero; ``videos(channel)`` lists past
    broadcasts (without it, none); ``cluster()`` lists the channels live on any ingest node
    (the control plane), so a node without the stream, or without the ingest role, knows it.
    """
    api = Api(repo, streams, public_base_rtmp=public_base_rtmp, public_base_http=public_base_http,
              public_base_hls=public_base_hls,
              settings=settings or ApiSettings(), passwords=passwords or Passwords(),
              viewer_counts=viewer_counts, clock=clock, videos=videos, cluster=cluster)
    app.add_subapp(API_PREFIX, build_api_app(api))
    return api


def _placement(channel: str, lease: Mapping[str, object]) -> dict[str, Any]:
    """Where a live channel is, from its lease: the ingest node, its RTMP base and roles, the
    origins it pushes to."""
    origins = lease.get("origins")
    node, rtmp, roles = lease.get("node"), lease.get("rtmp"), lease.get("roles")
    return {"channel": channel, "node": node if isinstance(node, str) else None,
            "rtmp": rtmp if isinstance(rtmp, str) else None,
            "roles": roles.split(",") if isinstance(roles, str) and roles else [],
            "origins": origins.split() if isinstance(origins, str) else []}

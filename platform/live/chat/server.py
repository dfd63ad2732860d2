"""The chat node: a thin asyncio shell of websockets around the pure cores.

``ws://HOST:PORT/chat/{channel}[?after=ID]``, then an ``auth`` frame to sign in (``?token=``
still works but is deprecated: URLs reach proxy logs). Each node keeps one ``Room``
(``live.chat.rooms``: the retained log tail, members, moderation replica and batching) and one
broker subscription per channel it serves, and arms one timer per batch so a room's events are
flushed to every client once per ``batch_interval_s`` as a single frame (a room costs one frame
per viewer per interval, not one per message). This shell does the I/O the room asks for: each
frame is serialized once and written to every client's transport (no per-client task or queue;
see ``ChatServer._fan_out``), and slow clients the room puts out are closed with a reason.
Everything a client sends goes through ``parse_client_message``; bad input earns an ``error``
frame, never a crash.
"""

from __future__ import annotations

import asyncio
import hashlib
import http
import logging
import re
import socket
import time
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from live.api.websession import SESSION_COOKIE, origin_host_matches
from live.chat.auth import ChatAuth, ChatUser, NoRelationshipStore, Relationships, UnknownChannel
from live.chat.broker import Broker, Snapshot, Subscription
from live.chat.message_limits import LocalMessageLimiter, MessageLimiter
from live.chat.moderation import ModerationRefused, Relationship, Role
from live.chat.protocol import (
    AddModerator,
    Auth,
    Ban,
    ChatMessage,
    ClientError,
    ModAction,
    ModerationEvent,
    Ping,
    RemoveModerator,
    RoomEvent,
    Send,
    Timeout,
    Unban,
    emote_ranges,
    encode_frame,
    parse_client_message,
)
from live.chat.ratelimit import SignInGuard, TokenBucket
from live.chat.rooms import Delivery, Member, Room
from live.chat.settings import ChatSettings
from live.ingest.rtmp.admission import Admission, AdmissionLimits, address_key

log = logging.getLogger("live.chat")

PATH = re.compile(r"^/chat/([A-Za-z0-9_]{3,25})$")
CLOSE_TOO_SLOW = 1008  # policy violation: RFC 6455 7.4.1
CLOSE_TOO_MANY_FRAMES = 1008  # policy violation too
MAX_FAILED_AUTHS = 5  # per connection

_Room: TypeAlias = Room[ServerConnection]
_Member: TypeAlias = Member[ServerConnection]
_Delivery: TypeAlias = Delivery[ServerConnection]


@dataclass(frozen=True, slots=True)
class ChatStats:
    rooms: int
    clients: int
    frames_sent: int  # frame writes, one per client per frame
    messages_delivered: int  # chat messages written, one per client per message
    slow_disconnects: int
    slow_skips: int


def _waiting_bytes(ws: ServerConnection) -> int | None:
    transport = ws.transport
    if transport is None or transport.is_closing():
        return None
    return int(transport.get_write_buffer_size())


class ChatServer:
    """A chat node. ``start`` listens; ``close`` stops listening and closes every client (1001).

    The broker is the caller's: ``close`` ends this node's room subscriptions, not the broker.
    """

    def __init__(
        self,
        auth: ChatAuth,
        broker: Broker,
        settings: ChatSettings | None = None,
        relationships: Relationships | None = None,
        limiter: MessageLimiter | None = None,
    ) -> None:
        self.auth = auth
        self.broker = broker
        self.settings = settings = settings if settings is not None else ChatSettings()
        self.relationships: Relationships = relationships or NoRelationshipStore()
        self._rooms: dict[str, _Room] = {}
        self._subscriptions: dict[str, Subscription] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._opening: dict[str, asyncio.Future[_Room]] = {}
        # What the handshake learned, for the handler. Weak: a request that passes process_request
        # but then fails the upgrade (no Upgrade header, bad key) never reaches the handler.
        self._handshakes: weakref.WeakKeyDictionary[ServerConnection, tuple[_Room, ChatUser | None, int]] = (
            weakref.WeakKeyDictionary()
        )
        self._limiter: MessageLimiter = limiter or LocalMessageLimiter(
            settings.rate_window_s, settings.rate_limit_privileged
        )
        self._admission = Admission(AdmissionLimits(max_per_address=settings.max_connections_per_address))
        self._sign_ins = SignInGuard(
            settings.failed_sign_in_limit, settings.failed_sign_in_window_s, settings.failed_sign_in_ban_s
        )
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._counters = [0, 0, 0, 0]  # frames, messages delivered, slow disconnects, slow skips

    # ---------------------------------------------------------------- lifecycle

    async def start(self, host: str, port: int) -> None:
        self._server = await serve(
            self._handler,
            host,
            port,
            process_request=self._process_request,
            compression="deflate" if self.settings.compression else None,
            max_size=self.settings.max_frame_bytes,
            max_queue=4,
            write_limit=self.settings.send_queue_bytes,
            ping_interval=self.settings.ping_interval_s,
            ping_timeout=self.settings.ping_timeout_s,
            close_timeout=2,
            create_connection=_admitted_connections(self._admission),
        )

    @property
    def port(self) -> int:
        """The bound port (useful with ``start(host, 0)``)."""
        assert self._server is not None, "ChatServer.start has not run"
        return int(next(iter(self._server.sockets)).getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for subscription in self._subscriptions.values():
            await subscription.close()
        self._subscriptions.clear()
        self._rooms.clear()
        for task in tuple(self._tasks):
            task.cancel()

    def stats(self) -> ChatStats:
        frames, messages, slow, skips = self._counters
        return ChatStats(
            len(self._rooms), sum(len(r.members) for r in self._rooms.values()), frames, messages, slow, skips
        )

    def _fan_out(self, connections: list[ServerConnection], frame: str) -> None:
        """Write one text frame to many clients, serialized once (RFC 6455 5.2: servers never mask).

        ``websockets.broadcast`` serializes the frame again for every connection; without
        per-connection extensions the bytes are identical, so they are built once and handed to
        each transport. With compression on, each connection's deflate context differs, so that
        path goes through ``broadcast``.
        """
        if self.settings.compression:
            broadcast(connections, frame)
            return
        data = Frame(Opcode.TEXT, frame.encode()).serialize(mask=False)
        for ws in connections:
            if ws.protocol.state is State.OPEN and ws.send_in_progress is None:
                ws.transport.write(data)

    # ---------------------------------------------------------------- doing what rooms ask

    def _on_event(self, room: _Room, event: RoomEvent) -> None:
        snapshot = room.receive(event)
        if snapshot is not None:
            self._spawn(self._save_snapshot(room.name, snapshot))
        if room.arm_flush():
            self._timers[room.name] = asyncio.get_running_loop().call_later(
                self.settings.batch_interval_s, self._flush, room
            )

    def _flush(self, room: _Room) -> None:
        self._timers.pop(room.name, None)
        delivery = room.flush(_waiting_bytes)
        if delivery is not None:
            self._deliver(delivery)

    def _deliver(self, delivery: _Delivery) -> None:
        for ws, notice in delivery.notices:
            broadcast([ws], notice)
        limit = self.settings.send_queue_bytes
        for ws in delivery.too_slow:
            self._spawn(ws.close(CLOSE_TOO_SLOW, f"too slow: over {limit} bytes waiting to be sent"))
        ready = list(delivery.to)
        for frame in delivery.frames:
            self._fan_out(ready, frame)
        for ws, frames in delivery.replays:
            for frame in frames:
                broadcast([ws], frame)
        counters = self._counters
        counters[0] += len(delivery.frames) * len(delivery.to)
        counters[1] += delivery.messages * len(delivery.to)
        counters[2] += len(delivery.too_slow)
        counters[3] += delivery.newly_skipped

    async def _save_snapshot(self, room: str, snapshot: Snapshot) -> None:
        try:
            await self.broker.save_snapshot(room, snapshot)
        except Exception as error:  # the next moderation event saves a newer one
            log.warning("chat %s: saving the moderation snapshot failed: %s", room, error)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------- rooms

    async def _room(self, name: str) -> _Room:
        room = self._rooms.get(name)
        if room is not None:
            return room
        opening = self._opening.get(name)
        if opening is not None:
            return await asyncio.shield(opening)
        future: asyncio.Future[_Room] = asyncio.get_running_loop().create_future()
        self._opening[name] = future
        try:
            owner_id = await self.auth.channel_owner(name)
            opened: _Room = Room(name, owner_id, self.settings)
            subscription = await self.broker.subscribe(name, lambda event: self._on_event(opened, event))
            opened.load(subscription.backlog, subscription.snapshot)
            self._subscriptions[name] = subscription
            self._rooms[name] = opened
            future.set_result(opened)
            return opened
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._opening[name]

    # ---------------------------------------------------------------- handshake

    async def _process_request(self, ws: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        match = PATH.match(url.path)
        if match is None:
            return _refuse(http.HTTPStatus.NOT_FOUND, "chat rooms live at /chat/{channel}")
        query = parse_qs(url.query)
        user: ChatUser | None = None
        token = query.get("token", [""])[-1]
        if token:
            found = await self._look_up(token, _peer_host(ws))
            if isinstance(found, float):
                return _refuse(http.HTTPStatus.TOO_MANY_REQUESTS,
                               "too many unknown tokens from this address", retry_after_s=found)
            if found is None:
                return _refuse(http.HTTPStatus.UNAUTHORIZED, "token is not a live session")
            user = found
        if user is None:
            user = await self._cookie_user(ws, request.headers)
        after_text = query.get("after", ["0"])[-1]
        if not after_text.isdigit() or len(after_text) > 18:
            return _refuse(http.HTTPStatus.BAD_REQUEST, "after must be a message id (a non-negative integer)")
        try:
            room = await self._room(match.group(1).lower())
        except UnknownChannel:
            return _refuse(http.HTTPStatus.NOT_FOUND, f"no channel {match.group(1)!r}")
        after = int(after_text)
        if after > room.last_id + self.settings.history_window:
            # Far ahead of this room's log: not an id this room has issued (another room's, or made up).
            return _refuse(http.HTTPStatus.BAD_REQUEST, f"after={after} is ahead of this room's messages")
        self._handshakes[ws] = (room, user, after)
        return None

    async def _cookie_user(self, ws: ServerConnection, headers: Headers) -> ChatUser | None:
        """The browser's session cookie signs the connection in, when the page is of this host.

        A WebSocket handshake carries cookies but is not held to the same-origin policy, so the
        cookie counts only when ``Origin`` names this host (the web pages are on another port of
        it); from anywhere else the connection reads anonymously (cross-site WebSocket
        hijacking). A dead or unknown session reads anonymously too: reading needs no sign-in.
        """
        token = _cookie(headers, SESSION_COOKIE)
        if not token or not origin_host_matches(headers.get("Origin"), headers.get("Host")):
            return None
        found = await self._look_up(token, _peer_host(ws))
        return found if isinstance(found, ChatUser) else None

    def viewers(self, room: str) -> int:
        """Connections to the room on this node, the broadcaster's own left out: each viewer
        page holds one, signed in or not (the streamer's dashboard holds one too). One pass
        over the room's members per call: callers ask per channel view, not per message."""
        opened = self._rooms.get(room)
        if opened is None:
            return 0
        owner = opened.owner_id
        return sum(1 for member in opened.members
                   if member.user is None or owner is None or member.user.account_id != owner)

    # ---------------------------------------------------------------- connection

    async def _handler(self, ws: ServerConnection) -> None:
        room, user, after = self._handshakes.pop(ws)
        client: _Member = Member(ws, None, Relationship(), after)
        if self.settings.socket_send_buffer is not None:
            sock = ws.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.settings.socket_send_buffer)
        settings = self.settings
        frames = TokenBucket(settings.frame_rate_per_s, settings.frame_burst, time.monotonic())
        refused_in_a_row = 0
        try:
            if user is not None:
                await self._authenticate(room, client, user)
            await ws.send(room.welcome(client))
            for frame in room.attach(client):
                broadcast([ws], frame)
            async for raw in ws:
                wait = frames.take(time.monotonic())
                if wait:  # refused before parsing: a flood costs no parsing and no lookups
                    refused_in_a_row += 1
                    if refused_in_a_row >= settings.frame_burst:
                        await ws.close(CLOSE_TOO_MANY_FRAMES, "too many frames")
                        break
                    limit = f"over {settings.frame_rate_per_s:g} frames a second"
                    await ws.send(_error("rate_limited", limit, wait))
                    continue
                refused_in_a_row = 0
                try:
                    message = parse_client_message(
                        raw,
                        max_text_chars=self.settings.max_text_chars,
                        max_bytes=self.settings.max_frame_bytes,
                    )
                except ClientError as error:
                    await ws.send(encode_frame("error", code=error.code, message=error.message))
                    continue
                reply = await self._dispatch(room, client, message)
                if reply is not None:
                    await ws.send(reply)
        except ConnectionClosed:
            pass
        finally:
            room.detach(client)

    async def _look_up(self, token: str, host: str) -> ChatUser | float | None:
        """The token's user; None for an unknown token; or the seconds this address must wait.

        Unknown tokens are answered from memory for a while, and an address that keeps sending
        them is not looked up at all for a while (``SignInGuard``): each lookup costs the store.
        """
        now = time.monotonic()
        address = address_key(host)
        wait = self._sign_ins.throttled_for(address, now)
        if wait:
            return wait
        digest = hashlib.sha256(token.encode()).digest()
        if self._sign_ins.known_bad(digest, now):
            return None
        user = await self.auth.user_for_token(token)
        if user is None and self._sign_ins.failed(address, digest, time.monotonic()):
            log.info("chat: %s sent %d unknown tokens; its tokens are not looked up for %g s",
                     address, self._sign_ins.limit, self._sign_ins.ban_s)
        return user

    async def _authenticate(self, room: _Room, client: _Member, user: ChatUser) -> None:
        client.user = user
        client.relationship = await self.relationships.relationship(room.name, user)

    async def _dispatch(self, room: _Room, client: _Member, message: object) -> str | None:
        match message:
            case Ping(nonce):
                return encode_frame("pong", nonce=nonce)
            case Auth(token):
                if client.user is not None:
                    return _error("already_authenticated", "this connection is already signed in")
                found = await self._look_up(token, _peer_host(client.conn))
                if isinstance(found, float):
                    return _error("rate_limited", "too many unknown tokens from this address", found)
                user = found
                if user is None:
                    client.failed_auths += 1
                    if client.failed_auths >= MAX_FAILED_AUTHS:
                        # each attempt costs a store lookup: a connection guessing tokens is cut off
                        self._spawn(client.conn.close(CLOSE_TOO_SLOW, "too many failed sign-ins"))
                    return _error("bad_token", "token is not a live session")
                await self._authenticate(room, client, user)
                return encode_frame("authenticated", user=user.name, role=room.role(user).name.lower())
        if client.user is None:
            return _error("auth_required", "sign in (an auth frame) before sending")
        if isinstance(message, Send):
            return await self._send(room, client, client.user, message.text)
        return await self._moderate(room, client.user, message)  # type: ignore[arg-type]

    async def _send(self, room: _Room, client: _Member, user: ChatUser, text: str) -> str | None:
        now = time.time()
        now_ms = int(now * 1000)
        # benefits follow the subscription at every moment: it may have started or lapsed since sign-in
        client.relationship = await self.relationships.relationship(room.name, user)
        role = room.role(user)
        refusal = room.state.check_send(
            user.name, role, text, now_ms, client.relationship, self.settings.emotes
        )
        if refusal is not None:
            return _error(refusal.code, refusal.message, refusal.retry_after_s)
        limit = self.settings.rate_limit if role is Role.VIEWER else self.settings.rate_limit_privileged
        wait = await self._limiter.try_acquire(user.name.lower(), limit)
        if wait:
            return _error("rate_limited", f"over {limit} messages in {self.settings.rate_window_s:g} s", wait)
        message = ChatMessage(
            0,
            user.name,
            text,
            now_ms,
            room.state.badges(role, client.relationship),
            emote_ranges(text, self.settings.emotes),
        )
        room.state.observe(message)  # before the log echoes it, so a burst cannot slip past slow mode
        return await self._publish(room, message)

    async def _moderate(self, room: _Room, user: ChatUser, action: ModAction) -> str | None:
        target = (
            getattr(action, "user", None)
            if isinstance(action, (Timeout, Ban, Unban, AddModerator, RemoveModerator))
            else None
        )
        target_is_owner = False
        if target is not None and room.owner_id is not None:
            target_is_owner = await self.auth.account_id(target) == room.owner_id
        now_ms = int(time.time() * 1000)
        try:
            room.state.authorize(room.role(user), action, target_is_owner, now_ms)
        except ModerationRefused as refused:
            return _error(refused.refusal.code, refused.refusal.message)
        return await self._publish(room, ModerationEvent(0, now_ms, user.name, action))

    async def _publish(self, room: _Room, event: RoomEvent) -> str | None:
        try:
            await self.broker.publish(room.name, event)
        except Exception as error:  # the broker is down or refused: the client should retry later
            log.warning("chat %s: publish failed: %s", room.name, error)
            return _error("unavailable", "chat is unavailable; try again", 1.0)
        return None


def _error(code: str, message: str, retry_after_s: float = 0.0) -> str:
    if retry_after_s > 0:
        return encode_frame("error", code=code, message=message, retry_after_ms=int(retry_after_s * 1000) + 1)
    return encode_frame("error", code=code, message=message)


def _refuse(status: http.HTTPStatus, reason: str, retry_after_s: float = 0.0) -> Response:
    body = (reason + "\n").encode()
    headers = Headers([("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    if retry_after_s > 0:
        headers["Retry-After"] = str(int(retry_after_s) + 1)
    return Response(status.value, status.phrase, headers, body)


def _cookie(headers: Headers, name: str) -> str | None:
    """One cookie's value from the handshake's ``Cookie`` headers (RFC 6265 5.4), else None."""
    for line in headers.get_all("Cookie"):
        for pair in line[:8192].split(";"):
            key, sep, value = pair.strip().partition("=")
            if sep and key == name:
                return value.strip().strip('"') or None
    return None


def _peer_host(ws: ServerConnection) -> str:
    peer = ws.transport.get_extra_info("peername") if ws.transport is not None else None
    return str(peer[0]) if isinstance(peer, tuple) and peer else ""


_REFUSED_AT_ACCEPT = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 39\r\n\r\n"
    b"too many connections from this address\n"
)


def _admitted_connections(admission: Admission) -> type[ServerConnection]:
    """websockets' connection class, counted per address at accept: past the cap, 503 and close
    before a byte is read (a connection that never sends its request holds no slot meanwhile)."""

    class AdmittedConnection(ServerConnection):
        admitted_host: str | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            peer = transport.get_extra_info("peername")
            host = str(peer[0]) if isinstance(peer, tuple) and peer else ""
            refusal = admission.admit(host, time.monotonic())
            if refusal is not None:
                log.debug("chat: refused a connection from %s: %s", address_key(host), refusal)
                transport.write(_REFUSED_AT_ACCEPT)  # type: ignore[attr-defined]
                transport.close()
                return
            self.admitted_host = host
            super().connection_made(transport)

        def connection_lost(self, exc: Exception | None) -> None:
            host = self.admitted_host
            if host is None:
                return
            self.admitted_host = None
            admission.release(host)
            super().connection_lost(exc)

    return AdmittedConnection

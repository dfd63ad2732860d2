"""The chat node: a thin asyncio shell of websockets around the pure cores.

``ws://HOST:PORT/chat/{channel}[?token=...][&after=ID]``. Each node keeps one ``_Room`` per
channel it serves: one broker subscription, the retained log tail (for history and resume), the
moderation replica, and a batch of encoded events flushed to every client once per
``batch_interval_s`` as a single frame (so a room costs one frame per viewer per interval, not
one per message). Each frame is serialized once and written to every client's transport (no
per-client task or queue; see ``ChatServer._fan_out``); a client whose transport holds more than
``send_queue_bytes`` unsent is slow and is disconnected with a reason or skipped, per
``ChatSettings.slow_client``. Everything a client sends goes
through ``parse_client_message``; bad input earns an ``error`` frame, never a crash.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import re
import socket
import time
import weakref
from collections import deque
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from live.chat.auth import ChatAuth, ChatUser, NoRelationshipStore, Relationships, UnknownChannel
from live.chat.broker import Broker, Snapshot, Subscription
from live.chat.moderation import ModerationRefused, ModerationState, Relationship, Role
from live.chat.protocol import (
    AddModerator,
    Auth,
    Ban,
    ChatMessage,
    ClientError,
    ModAction,
    ModeChange,
    ModerationEvent,
    Ping,
    RemoveModerator,
    RoomEvent,
    Send,
    Timeout,
    Unban,
    batch_frame,
    emote_ranges,
    encode_event,
    encode_frame,
    parse_client_message,
)
from live.chat.ratelimit import SlidingWindowLimiter
from live.chat.settings import ChatSettings, SlowClientPolicy

log = logging.getLogger("live.chat")

PATH = re.compile(r"^/chat/([A-Za-z0-9_]{3,25})$")
CLOSE_TOO_SLOW = 1008  # policy violation: RFC 6455 7.4.1
MAX_FAILED_AUTHS = 5  # per connection


@dataclass(slots=True, eq=False)
class _Client:
    """Identity-hashed: a room holds each connection once."""

    ws: ServerConnection
    user: ChatUser | None
    relationship: Relationship
    after: int  # resume point: the client has every event with id <= after
    skipped_from: int = 0  # SKIP policy: first id this client missed, 0 when none
    failed_auths: int = 0


@dataclass(frozen=True, slots=True)
class ChatStats:
    rooms: int
    clients: int
    frames_sent: int  # frame writes, one per client per frame
    messages_delivered: int  # chat messages written, one per client per message
    slow_disconnects: int
    slow_skips: int


def _frames(events: Iterable[tuple[RoomEvent, str]]) -> list[str]:
    """Consecutive messages share one batch frame; a moderation event is its own frame, in order."""
    frames: list[str] = []
    run: list[str] = []
    for event, fragment in events:
        if isinstance(event, ChatMessage):
            run.append(fragment)
            continue
        if run:
            frames.append(batch_frame(run))
            run = []
        frames.append(fragment)
    if run:
        frames.append(batch_frame(run))
    return frames


class _Room:
    """One channel's state on this node. Single-threaded: every method runs on the event loop."""

    def __init__(self, server: ChatServer, name: str, owner_id: int | None) -> None:
        self.server = server
        self.name = name
        self.owner_id = owner_id
        settings = server.settings
        self.state = ModerationState(settings.moderation)
        self.ring: deque[tuple[RoomEvent, str]] = deque(maxlen=settings.history_window)
        self.clients: set[_Client] = set()
        self.waiting: list[_Client] = []  # resumed ahead of this node's log; attached once it catches up
        self.pending: list[tuple[RoomEvent, str]] = []
        self.last_id = 0  # newest event received
        self.flushed_id = 0  # newest event written to clients
        self.timer: asyncio.TimerHandle | None = None
        self.subscription: Subscription | None = None
        self._early: list[RoomEvent] | None = []  # events delivered before the backlog was loaded

    # ---------------------------------------------------------------- log in

    def load(self, backlog: Iterable[RoomEvent], snapshot: Snapshot | None) -> None:
        """Rebuild from the broker: the moderation snapshot, then the retained log after it."""
        restored_to = 0
        if snapshot is not None:
            try:
                self.state = ModerationState.restore(
                    json.loads(snapshot.payload), self.server.settings.moderation
                )
                restored_to = snapshot.as_of
            except ValueError as error:  # a peer wrote something unreadable: fall back to the log alone
                log.warning("chat %s: moderation snapshot ignored: %s", self.name, error)
        early, self._early = self._early or [], None
        for event in (*backlog, *early):
            if event.id > self.last_id:
                self._take(event, apply=not (isinstance(event, ModerationEvent) and event.id <= restored_to))
        self.flushed_id = self.last_id

    def on_event(self, event: RoomEvent) -> None:
        if self._early is not None:
            self._early.append(event)
            return
        if event.id <= self.last_id:
            return
        self.pending.append(self._take(event))
        if isinstance(event, ModerationEvent):
            payload = json.dumps(self.state.snapshot(), separators=(",", ":")).encode()
            self.server._spawn(self.server._save_snapshot(self.name, Snapshot(event.id, payload)))
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(
                self.server.settings.batch_interval_s, self.flush
            )

    def _take(self, event: RoomEvent, apply: bool = True) -> tuple[RoomEvent, str]:
        self.last_id = event.id
        entry: tuple[RoomEvent, str]
        if isinstance(event, ModerationEvent):
            if apply:
                self.state.apply(event)
            modes = self.state.modes if isinstance(event.action, ModeChange) else None
            entry = (event, encode_event(event, modes))
        else:
            self.state.observe(event)
            entry = (event, encode_event(event))
        self.ring.append(entry)
        if len(self.ring) == self.ring.maxlen:
            self.state.forget_deleted_before(self.ring[0][0].id)
        return entry

    # ---------------------------------------------------------------- fan-out

    def flush(self) -> None:
        self.timer = None
        batch, self.pending = self.pending, []
        if not batch:
            return
        frames = _frames(batch)
        messages = sum(isinstance(event, ChatMessage) for event, _ in batch)
        ready = self._writable(batch[0][0].id)
        for frame in frames:
            self.server._fan_out(ready, frame)
        stats = self.server._counters
        stats[0] += len(frames) * len(ready)
        stats[1] += messages * len(ready)
        self.flushed_id = batch[-1][0].id
        if self.waiting:
            self._attach_waiting()

    def _writable(self, first_id: int) -> list[ServerConnection]:
        limit = self.server.settings.send_queue_bytes
        skip = self.server.settings.slow_client is SlowClientPolicy.SKIP
        ready: list[ServerConnection] = []
        for client in tuple(self.clients):
            transport = client.ws.transport
            if transport is None or transport.is_closing():
                continue
            if transport.get_write_buffer_size() <= limit:
                if client.skipped_from:
                    broadcast(
                        [client.ws],
                        encode_frame("skipped", **{"from": client.skipped_from, "to": first_id - 1}),
                    )
                    client.skipped_from = 0
                ready.append(client.ws)
            elif skip:
                if not client.skipped_from:
                    client.skipped_from = first_id
                    self.server._counters[3] += 1
            else:
                self.clients.discard(client)
                self.server._counters[2] += 1
                self.server._spawn(
                    client.ws.close(CLOSE_TOO_SLOW, f"too slow: over {limit} bytes waiting to be sent")
                )
        return ready

    # ---------------------------------------------------------------- joining

    def attach(self, client: _Client) -> None:
        if client.after > self.flushed_id:
            self.waiting.append(client)
        else:
            self._replay(client)
            self.clients.add(client)

    def _attach_waiting(self) -> None:
        still: list[_Client] = []
        for client in self.waiting:
            if client.after <= self.flushed_id:
                self._replay(client)
                self.clients.add(client)
            else:
                still.append(client)
        self.waiting = still

    def _replay(self, client: _Client) -> None:
        if client.after:
            events = [entry for entry in self.ring if client.after < entry[0].id <= self.flushed_id]
        else:
            visible = [
                entry
                for entry in self.ring
                if isinstance(entry[0], ChatMessage)
                and entry[0].id <= self.flushed_id
                and self.state.visible(entry[0].id)
            ]
            events = visible[-self.server.settings.join_history :]
        for frame in _frames(events):
            broadcast([client.ws], frame)

    def detach(self, client: _Client) -> None:
        self.clients.discard(client)
        if client in self.waiting:
            self.waiting.remove(client)


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
    ) -> None:
        self.auth = auth
        self.broker = broker
        self.settings = settings = settings if settings is not None else ChatSettings()
        self.relationships: Relationships = relationships or NoRelationshipStore()
        self._rooms: dict[str, _Room] = {}
        self._opening: dict[str, asyncio.Future[_Room]] = {}
        # What the handshake learned, for the handler. Weak: a request that passes process_request
        # but then fails the upgrade (no Upgrade header, bad key) never reaches the handler.
        self._handshakes: weakref.WeakKeyDictionary[ServerConnection, tuple[_Room, ChatUser | None, int]] = (
            weakref.WeakKeyDictionary()
        )
        self._limiter = SlidingWindowLimiter(settings.rate_window_s, settings.rate_limit_privileged)
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
        for room in self._rooms.values():
            if room.timer is not None:
                room.timer.cancel()
            if room.subscription is not None:
                await room.subscription.close()
        self._rooms.clear()
        for task in tuple(self._tasks):
            task.cancel()

    def stats(self) -> ChatStats:
        frames, messages, slow, skips = self._counters
        return ChatStats(
            len(self._rooms), sum(len(r.clients) for r in self._rooms.values()), frames, messages, slow, skips
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
            room = _Room(self, name, owner_id)
            room.subscription = await self.broker.subscribe(name, room.on_event)
            room.load(room.subscription.backlog, room.subscription.snapshot)
            self._rooms[name] = room
            future.set_result(room)
            return room
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
            user = await self.auth.user_for_token(token)
            if user is None:
                return _refuse(http.HTTPStatus.UNAUTHORIZED, "token is not a live session")
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

    # ---------------------------------------------------------------- connection

    async def _handler(self, ws: ServerConnection) -> None:
        room, user, after = self._handshakes.pop(ws)
        client = _Client(ws, None, Relationship(), after)
        if self.settings.socket_send_buffer is not None:
            sock = ws.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.settings.socket_send_buffer)
        try:
            if user is not None:
                await self._authenticate(room, client, user)
            await ws.send(self._welcome(room, client))
            room.attach(client)
            async for raw in ws:
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

    async def _authenticate(self, room: _Room, client: _Client, user: ChatUser) -> None:
        client.user = user
        client.relationship = await self.relationships.relationship(room.name, user)

    def _role(self, room: _Room, user: ChatUser) -> Role:
        return room.state.role(user.name, room.owner_id is not None and user.account_id == room.owner_id)

    def _welcome(self, room: _Room, client: _Client) -> str:
        oldest = room.ring[0][0].id if room.ring else room.flushed_id + 1
        return encode_frame(
            "welcome",
            room=room.name,
            user=None if client.user is None else client.user.name,
            role=None if client.user is None else self._role(room, client.user).name.lower(),
            modes=room.state.modes.as_json(),
            last_id=room.flushed_id,
            # a resume point older than the window: the ids between it and ``oldest`` are gone
            truncated=bool(client.after) and client.after + 1 < oldest,
        )

    async def _dispatch(self, room: _Room, client: _Client, message: object) -> str | None:
        match message:
            case Ping(nonce):
                return encode_frame("pong", nonce=nonce)
            case Auth(token):
                if client.user is not None:
                    return _error("already_authenticated", "this connection is already signed in")
                user = await self.auth.user_for_token(token)
                if user is None:
                    client.failed_auths += 1
                    if client.failed_auths >= MAX_FAILED_AUTHS:
                        # each attempt costs a store lookup: a connection guessing tokens is cut off
                        self._spawn(client.ws.close(CLOSE_TOO_SLOW, "too many failed sign-ins"))
                    return _error("bad_token", "token is not a live session")
                await self._authenticate(room, client, user)
                return encode_frame("authenticated", user=user.name, role=self._role(room, user).name.lower())
        if client.user is None:
            return _error("auth_required", "sign in (?token= or an auth frame) before sending")
        if isinstance(message, Send):
            return await self._send(room, client, client.user, message.text)
        return await self._moderate(room, client.user, message)  # type: ignore[arg-type]

    async def _send(self, room: _Room, client: _Client, user: ChatUser, text: str) -> str | None:
        now = time.time()
        now_ms = int(now * 1000)
        role = self._role(room, user)
        refusal = room.state.check_send(
            user.name, role, text, now_ms, client.relationship, self.settings.emotes
        )
        if refusal is not None:
            return _error(refusal.code, refusal.message, refusal.retry_after_s)
        limit = self.settings.rate_limit if role is Role.VIEWER else self.settings.rate_limit_privileged
        wait = self._limiter.try_acquire(user.name.lower(), time.monotonic(), limit)
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
            room.state.authorize(self._role(room, user), action, target_is_owner, now_ms)
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


def _refuse(status: http.HTTPStatus, reason: str) -> Response:
    body = (reason + "\n").encode()
    headers = Headers([("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return Response(status.value, status.phrase, headers, body)

"""One chat room on one node, as a pure core: the log tail, who is in it, and what to send whom.

The asyncio shell (``live.chat.server``) feeds it what happens (an event from the broker, a
client joining or leaving, the batch timer firing, how many bytes each connection has waiting)
and carries out what it answers (frames to write, a flush to schedule, a snapshot to save, slow
clients to close). Nothing here touches a socket, a timer or the clock, so the room's
decisions (ordering, batching, history replay, resume, the slow-client policy) are tested by
feeding events and reading the answers. Connections are opaque to the room: ``C`` is whatever
the shell writes to (a websockets ``ServerConnection``; any hashable object in tests).
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from live.chat.auth import ChatUser
from live.chat.broker import Snapshot
from live.chat.moderation import ModerationState, Relationship, Role
from live.chat.protocol import (
    ChatMessage,
    Cheer,
    ModeChange,
    ModerationEvent,
    RoomEvent,
    batch_frame,
    encode_event,
    encode_frame,
)
from live.chat.settings import ChatSettings, SlowClientPolicy

log = logging.getLogger("live.chat")

C = TypeVar("C")


@dataclass(slots=True, eq=False)
class Member(Generic[C]):
    """One connection in a room. Identity-hashed: a room holds each connection once."""

    conn: C
    user: ChatUser | None
    relationship: Relationship
    after: int  # resume point: the client has every event with id <= after
    skipped_from: int = 0  # SKIP policy: first id this client missed, 0 when none
    failed_auths: int = 0


@dataclass(frozen=True, slots=True)
class Delivery(Generic[C]):
    """What one flush asks the shell to do, in this order."""

    notices: tuple[tuple[C, str], ...]  # "skipped" frames for clients caught up again
    frames: tuple[str, ...]  # the batch, to every connection in ``to``
    to: tuple[C, ...]
    too_slow: tuple[C, ...]  # close these (policy DISCONNECT); they are out of the room already
    replays: tuple[tuple[C, tuple[str, ...]], ...]  # resumed clients the log caught up with
    messages: int  # chat messages in ``frames``
    newly_skipped: int  # clients that started missing batches (policy SKIP)


def frames_of(events: Iterable[tuple[RoomEvent, str]]) -> list[str]:
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


class Room(Generic[C]):
    """One channel's state on this node. Every event is encoded once, when it arrives."""

    def __init__(self, name: str, owner_id: int | None, settings: ChatSettings) -> None:
        self.name = name
        self.owner_id = owner_id
        self.settings = settings
        self.state = ModerationState(settings.moderation)
        self.ring: deque[tuple[RoomEvent, str]] = deque(maxlen=settings.history_window)
        self.members: set[Member[C]] = set()
        self.waiting: list[Member[C]] = []  # resumed ahead of this node's log; attached once it catches up
        self.pending: list[tuple[RoomEvent, str]] = []
        self.last_id = 0  # newest event received
        self.flushed_id = 0  # newest event written to clients
        self.flush_armed = False
        self._early: list[RoomEvent] | None = []  # events delivered before the backlog was loaded

    # ---------------------------------------------------------------- log in

    def load(self, backlog: Iterable[RoomEvent], snapshot: Snapshot | None) -> None:
        """Rebuild from the broker: the moderation snapshot, then the retained log after it."""
        restored_to = 0
        if snapshot is not None:
            try:
                self.state = ModerationState.restore(json.loads(snapshot.payload), self.settings.moderation)
                restored_to = snapshot.as_of
            except ValueError as error:  # a peer wrote something unreadable: fall back to the log alone
                log.warning("chat %s: moderation snapshot ignored: %s", self.name, error)
        early, self._early = self._early or [], None
        for event in (*backlog, *early):
            if event.id > self.last_id:
                self._take(event, apply=not (isinstance(event, ModerationEvent) and event.id <= restored_to))
        self.flushed_id = self.last_id

    def receive(self, event: RoomEvent) -> Snapshot | None:
        """Take one event from the broker; answers the moderation snapshot to save after it, if any.

        Events before ``load`` wait for it; ids already taken are dropped.
        """
        if self._early is not None:
            self._early.append(event)
            return None
        if event.id <= self.last_id:
            return None
        self.pending.append(self._take(event))
        if isinstance(event, ModerationEvent):
            payload = json.dumps(self.state.snapshot(), separators=(",", ":")).encode()
            return Snapshot(event.id, payload)
        return None

    def arm_flush(self) -> bool:
        """True once per batch: events are pending and no flush is armed yet, so the caller
        calls ``flush`` after ``settings.batch_interval_s``."""
        if not self.pending or self.flush_armed:
            return False
        self.flush_armed = True
        return True

    def _take(self, event: RoomEvent, apply: bool = True) -> tuple[RoomEvent, str]:
        self.last_id = event.id
        entry: tuple[RoomEvent, str]
        if isinstance(event, ModerationEvent):
            if apply:
                self.state.apply(event)
            modes = self.state.modes if isinstance(event.action, ModeChange) else None
            entry = (event, encode_event(event, modes))
        else:
            if isinstance(event, ChatMessage):
                self.state.observe(event)
            entry = (event, encode_event(event))
        self.ring.append(entry)
        if len(self.ring) == self.ring.maxlen:
            self.state.forget_deleted_before(self.ring[0][0].id)
        return entry

    # ---------------------------------------------------------------- fan-out

    def flush(self, waiting_bytes: Callable[[C], int | None]) -> Delivery[C] | None:
        """The batch since the last flush, for the members whose connection can take it.

        ``waiting_bytes(conn)`` is how much that connection has not yet sent, or None when it
        is closing (it gets nothing and stays until it leaves). Above
        ``settings.send_queue_bytes`` a client is slow: per ``settings.slow_client`` it is put
        out of the room (DISCONNECT) or misses batches until it drains and is then told which
        ids it missed (SKIP).
        """
        self.flush_armed = False
        batch, self.pending = self.pending, []
        if not batch:
            return None
        first_id = batch[0][0].id
        limit = self.settings.send_queue_bytes
        skip = self.settings.slow_client is SlowClientPolicy.SKIP
        notices: list[tuple[C, str]] = []
        ready: list[C] = []
        too_slow: list[C] = []
        newly_skipped = 0
        for member in tuple(self.members):
            waiting = waiting_bytes(member.conn)
            if waiting is None:
                continue
            if waiting <= limit:
                if member.skipped_from:
                    notice = encode_frame("skipped", **{"from": member.skipped_from, "to": first_id - 1})
                    notices.append((member.conn, notice))
                    member.skipped_from = 0
                ready.append(member.conn)
            elif skip:
                if not member.skipped_from:
                    member.skipped_from = first_id
                    newly_skipped += 1
            else:
                self.members.discard(member)
                too_slow.append(member.conn)
        self.flushed_id = batch[-1][0].id
        replays = self._attach_waiting() if self.waiting else []
        return Delivery(
            notices=tuple(notices),
            frames=tuple(frames_of(batch)),
            to=tuple(ready),
            too_slow=tuple(too_slow),
            replays=tuple(replays),
            messages=sum(isinstance(event, ChatMessage) for event, _ in batch),
            newly_skipped=newly_skipped,
        )

    # ---------------------------------------------------------------- joining

    def attach(self, member: Member[C]) -> list[str]:
        """Join: answers the history frames to send it now (none while it waits for the log)."""
        if member.after > self.flushed_id:
            self.waiting.append(member)
            return []
        self.members.add(member)
        return self.replay(member)

    def _attach_waiting(self) -> list[tuple[C, tuple[str, ...]]]:
        replays: list[tuple[C, tuple[str, ...]]] = []
        still: list[Member[C]] = []
        for member in self.waiting:
            if member.after <= self.flushed_id:
                replays.append((member.conn, tuple(self.replay(member))))
                self.members.add(member)
            else:
                still.append(member)
        self.waiting = still
        return replays

    def replay(self, member: Member[C]) -> list[str]:
        """Resume: every event after ``member.after``. Join: the last visible messages."""
        if member.after:
            events = [entry for entry in self.ring if member.after < entry[0].id <= self.flushed_id]
        else:
            visible = [
                entry
                for entry in self.ring
                if isinstance(entry[0], (ChatMessage, Cheer))
                and entry[0].id <= self.flushed_id
                and self.state.visible(entry[0].id)
            ]
            events = visible[-self.settings.join_history :]
        return frames_of(events)

    def detach(self, member: Member[C]) -> None:
        self.members.discard(member)
        if member in self.waiting:
            self.waiting.remove(member)

    # ---------------------------------------------------------------- who is who

    def role(self, user: ChatUser) -> Role:
        return self.state.role(user.name, self.owner_id is not None and user.account_id == self.owner_id)

    def welcome(self, member: Member[C]) -> str:
        """The first frame a connection gets (docs/chat-protocol.md, "Connecting")."""
        oldest = self.ring[0][0].id if self.ring else self.flushed_id + 1
        return encode_frame(
            "welcome",
            room=self.name,
            user=None if member.user is None else member.user.name,
            role=None if member.user is None else self.role(member.user).name.lower(),
            modes=self.state.modes.as_json(),
            last_id=self.flushed_id,
            # a resume point older than the window: the ids between it and ``oldest`` are gone
            truncated=bool(member.after) and member.after + 1 < oldest,
        )

"""The room log every chat node shares: ids assigned in one place, events fanned out to nodes.

A broker owns each room's id sequence and a retained tail of its log (the history window). A
node subscribes once per room (``subscribe``): it receives the retained tail (to rebuild the
room's moderation state and history) and from then on every later event exactly once, in id
order. ``MemoryBroker`` is the embedded default for a single process; ``live.chat.nats_broker``
carries the same contract across nodes, and ``live.chat.brokers.open_broker`` picks one by URL.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable
from typing import Protocol

from live.chat.protocol import RoomEvent

Deliver = Callable[[RoomEvent], None]


@dataclasses.dataclass(frozen=True, slots=True)
class Snapshot:
    """A room's moderation state as of event ``as_of`` (``ModerationState.snapshot`` as JSON)."""

    as_of: int
    payload: bytes


class Subscription(Protocol):
    backlog: tuple[RoomEvent, ...]  # the retained log at subscription time, oldest first
    snapshot: Snapshot | None  # the newest saved moderation snapshot, if any

    async def close(self) -> None: ...


class Broker(Protocol):
    async def publish(self, room: str, event: RoomEvent) -> RoomEvent:
        """Append to the room's log; answers the event with its assigned id."""
        ...

    async def subscribe(self, room: str, deliver: Deliver) -> Subscription:
        """After this returns, ``deliver`` sees every event after ``backlog`` once, in id order."""
        ...

    async def save_snapshot(self, room: str, snapshot: Snapshot) -> None:
        """Keep the snapshot unless one as of a later (or the same) event is already kept."""
        ...

    async def close(self) -> None: ...


class _RoomLog:
    __slots__ = ("listeners", "next_id", "snapshot", "tail")

    def __init__(self, window: int) -> None:
        self.next_id = 1
        self.snapshot: Snapshot | None = None
        self.tail: deque[RoomEvent] = deque(maxlen=window)
        self.listeners: list[Deliver] = []


class _MemorySubscription:
    __slots__ = ("_deliver", "_log", "backlog", "snapshot")

    def __init__(self, log: _RoomLog, deliver: Deliver) -> None:
        self.backlog = tuple(log.tail)
        self.snapshot = log.snapshot
        self._log = log
        self._deliver = deliver
        log.listeners.append(deliver)

    async def close(self) -> None:
        if self._deliver in self._log.listeners:
            self._log.listeners.remove(self._deliver)


class MemoryBroker:
    """In-process broker: ids from a counter per room, delivery by direct call (already in order)."""

    def __init__(self, history_window: int = 1000) -> None:
        if history_window < 1:
            raise ValueError("history_window must be >= 1")
        self.history_window = history_window
        self._rooms: dict[str, _RoomLog] = {}

    def _log(self, room: str) -> _RoomLog:
        log = self._rooms.get(room)
        if log is None:
            log = self._rooms[room] = _RoomLog(self.history_window)
        return log

    async def publish(self, room: str, event: RoomEvent) -> RoomEvent:
        log = self._log(room)
        stored = dataclasses.replace(event, id=log.next_id)
        log.next_id += 1
        log.tail.append(stored)
        for deliver in tuple(log.listeners):
            deliver(stored)
        return stored

    async def subscribe(self, room: str, deliver: Deliver) -> Subscription:
        return _MemorySubscription(self._log(room), deliver)

    async def save_snapshot(self, room: str, snapshot: Snapshot) -> None:
        log = self._log(room)
        if log.snapshot is None or log.snapshot.as_of < snapshot.as_of:
            log.snapshot = snapshot

    async def close(self) -> None:
        for log in self._rooms.values():
            log.listeners.clear()


"""Restores a room log's order from live fan-out that may arrive late, twice, or not at all.

A room's ids are contiguous (JetStream's per-room stream sequence). Live copies travel on a core
NATS subject, which promises neither order across publishers nor delivery; the sequencer hands
events on strictly in id order, each exactly once, holds early arrivals (bounded), and reports the
gap it is waiting on so the shell can fetch the missing ids from the stream (``fill``) or give them
up when the stream no longer has them (``skip_to``). Pure: no clock, no I/O.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Sequencer(Generic[T]):
    __slots__ = ("_pending", "max_pending", "next_id")

    def __init__(self, next_id: int, max_pending: int = 10_000) -> None:
        if next_id < 1 or max_pending < 1:
            raise ValueError("next_id and max_pending must be >= 1")
        self.next_id = next_id
        self.max_pending = max_pending
        self._pending: dict[int, T] = {}

    def offer(self, event_id: int, event: T) -> list[T]:
        """Events now deliverable in order (possibly none; duplicates and stale ids are dropped)."""
        if event_id < self.next_id or event_id in self._pending:
            return []
        if event_id != self.next_id:
            if len(self._pending) >= self.max_pending:
                # Too far behind: the oldest missing ids are given up, as if the stream lost them.
                ready = self.skip_to(min(self._pending))
                return ready + self.offer(event_id, event)
            self._pending[event_id] = event
            return []
        self.next_id += 1
        return self._drain([event])

    def _drain(self, ready: list[T]) -> list[T]:
        while self.next_id in self._pending:
            ready.append(self._pending.pop(self.next_id))
            self.next_id += 1
        return ready

    def gap(self) -> tuple[int, int] | None:
        """The inclusive id range missing before the earliest held event, if any are held."""
        if not self._pending:
            return None
        return self.next_id, min(self._pending) - 1

    def skip_to(self, event_id: int) -> list[T]:
        """Give up every id below ``event_id`` (the stream no longer holds them); deliver what follows."""
        if event_id > self.next_id:
            for stale in [i for i in self._pending if i < event_id]:
                del self._pending[stale]
            self.next_id = event_id
        return self._drain([])

    def pending(self) -> int:
        return len(self._pending)

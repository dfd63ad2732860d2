"""Blocking playlist reload: directive parsing, readiness arithmetic and the held-request wake-up.

RFC 8216bis 6.2.5.2: a client adds ``_HLS_msn=M`` (and optionally ``_HLS_part=P``) to a media
playlist URL and the server holds the request until the playlist contains that segment (or part),
then answers with the whole playlist. The pure half of this module decides *what* a request waits
for and *whether* it is ready; ``Blocker`` is the thin asyncio half that parks requests on one
``asyncio.Event`` per awaited position, so a new part costs one ``Event.set()`` per position that
became ready, however many thousand requests hold on it. Nothing polls.

A holder may also leave an *early answer*: a callback a release runs, all of them in one loop,
before any holder wakes, so the answers of thousands of held requests go out back to back
instead of each waiting for its task's turn through the HTTP stack (see ``live.origin.app``).
The loop runs in its own event-loop callback, scheduled by the release: the publisher's call
(a part for every rendition, say) finishes first, so the answers show all of it.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar


@dataclass(frozen=True, slots=True, order=True)
class Progress:
    """Where a rendition stands: its last published part and whether that part closed its segment."""

    msn: int
    part: int
    segment_end: bool

    @property
    def next_part(self) -> tuple[int, int]:
        """The position of the part after this one (the EXT-X-PRELOAD-HINT target)."""
        return (self.msn + 1, 0) if self.segment_end else (self.msn, self.part + 1)


@dataclass(frozen=True, slots=True)
class PartTarget:
    """Wait until part ``part`` of segment ``msn`` exists.

    A part index past the segment's last part means part 0 of the next segment (RFC 8216bis
    6.2.5.2), which lexicographic order on (msn, part) gives for free: once the rendition's last
    part is in a later segment, every index of this one is ready.
    """

    msn: int
    part: int

    def ready(self, progress: Progress | None) -> bool:
        return progress is not None and (progress.msn, progress.part) >= (self.msn, self.part)


@dataclass(frozen=True, slots=True)
class SegmentTarget:
    """Wait until segment ``msn`` is complete (``_HLS_msn`` without ``_HLS_part``)."""

    msn: int

    def ready(self, progress: Progress | None) -> bool:
        if progress is None:
            return False
        return progress.msn > self.msn or (progress.msn == self.msn and progress.segment_end)


Target = PartTarget | SegmentTarget

#: Ready as soon as the rendition has any part at all (media sequence numbers are >= 0).
ANY_PART = PartTarget(-1, 0)


class DirectiveError(ValueError):
    """The client's ``_HLS_`` query is malformed or asks too far ahead: answer 400 with this reason."""


@dataclass(frozen=True, slots=True)
class Directives:
    """The delivery directives of one media playlist request."""

    msn: int | None = None
    part: int | None = None
    skip: bool = False

    @property
    def blocking(self) -> bool:
        return self.msn is not None

    @property
    def target(self) -> Target | None:
        if self.msn is None:
            return None
        return SegmentTarget(self.msn) if self.part is None else PartTarget(self.msn, self.part)


def _non_negative_int(name: str, text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise DirectiveError(f"{name}={text!r} is not a non-negative decimal integer")
    return int(text)


def parse_directives(query: Mapping[str, str]) -> Directives:
    """Read ``_HLS_msn``, ``_HLS_part`` and ``_HLS_skip`` (RFC 8216bis 6.2.5).

    ``_HLS_part`` without ``_HLS_msn`` is a client error the server MUST reject (6.2.5.2).
    ``_HLS_skip=v2`` also asks to skip old date ranges; we emit none, so it equals ``YES``.
    """
    msn = part = None
    if "_HLS_msn" in query:
        msn = _non_negative_int("_HLS_msn", query["_HLS_msn"])
    if "_HLS_part" in query:
        part = _non_negative_int("_HLS_part", query["_HLS_part"])
        if msn is None:
            raise DirectiveError("_HLS_part requires _HLS_msn (RFC 8216bis 6.2.5.2)")
    skip = False
    if "_HLS_skip" in query:
        value = query["_HLS_skip"]
        if value not in ("YES", "v2"):
            raise DirectiveError(f"_HLS_skip={value!r}: expected YES or v2")
        skip = True
    return Directives(msn, part, skip)


def advance_part_limit(part_target_s: float) -> float:
    """How many parts past the last one a client may ask for (RFC 8216bis 6.2.5.2)."""
    return 3.0 / part_target_s if part_target_s < 1.0 else 3.0


def parts_ahead(progress: Progress, target: PartTarget, parts_per_segment: int) -> int:
    """How many parts after ``progress`` the target lies (<= 0 when already published).

    Segments not yet started are assumed to hold ``parts_per_segment`` parts, the count of the
    last complete segment; the open segment is assumed to fill up to that count as well.
    """
    if (target.msn, target.part) <= (progress.msn, progress.part):
        return (target.part - progress.part) if target.msn == progress.msn else 0
    if target.msn == progress.msn:
        # past the last part of a closed segment: that is part 0 of the next one
        return 1 if progress.segment_end else target.part - progress.part
    remaining = 0 if progress.segment_end else max(0, parts_per_segment - 1 - progress.part)
    return remaining + 1 + (target.msn - progress.msn - 1) * parts_per_segment + target.part


def check_reachable(
    directives: Directives, progress: Progress, part_target_s: float, parts_per_segment: int
) -> None:
    """Reject requests too far ahead of the live edge (400, RFC 8216bis 6.2.5.2)."""
    if directives.msn is None:
        return
    if directives.msn > progress.msn + 2:
        raise DirectiveError(
            f"_HLS_msn={directives.msn} is more than two segments past the last one ({progress.msn})"
        )
    if directives.part is not None:
        ahead = parts_ahead(progress, PartTarget(directives.msn, directives.part), parts_per_segment)
        limit = advance_part_limit(part_target_s)
        if ahead > limit:
            raise DirectiveError(
                f"_HLS_msn={directives.msn}&_HLS_part={directives.part} is {ahead} parts past the last "
                f"one ({progress.msn}.{progress.part}); the advance part limit is {math.floor(limit)}"
            )


T = TypeVar("T")


class WaitSet(Generic[T]):
    """Awaited positions of one rendition, each with one token, released in readiness order.

    Pure bookkeeping: ``token_for`` files a target (sharing the token of an equal one) and
    ``release`` returns the tokens of every target a new ``Progress`` made ready. Two min-heaps
    keep release proportional to the number of positions released, not the number held.
    """

    __slots__ = ("_part_heap", "_parts", "_segment_heap", "_segments")

    def __init__(self) -> None:
        self._parts: dict[tuple[int, int], T] = {}
        self._part_heap: list[tuple[int, int]] = []
        self._segments: dict[int, T] = {}
        self._segment_heap: list[int] = []

    def __len__(self) -> int:
        return len(self._parts) + len(self._segments)

    def token_for(self, target: Target, make: Callable[[], T]) -> T:
        if isinstance(target, PartTarget):
            key = (target.msn, target.part)
            token = self._parts.get(key)
            if token is None:
                token = self._parts[key] = make()
                heapq.heappush(self._part_heap, key)
            return token
        token = self._segments.get(target.msn)
        if token is None:
            token = self._segments[target.msn] = make()
            heapq.heappush(self._segment_heap, target.msn)
        return token

    def release(self, progress: Progress) -> list[T]:
        released: list[T] = []
        while self._part_heap and PartTarget(*self._part_heap[0]).ready(progress):
            released.append(self._parts.pop(heapq.heappop(self._part_heap)))
        while self._segment_heap and SegmentTarget(self._segment_heap[0]).ready(progress):
            released.append(self._segments.pop(heapq.heappop(self._segment_heap)))
        return released

    def drain(self) -> list[T]:
        """Every token (the stream ended or went away: all holders must look again)."""
        tokens = [*self._parts.values(), *self._segments.values()]
        self._parts.clear()
        self._part_heap.clear()
        self._segments.clear()
        self._segment_heap.clear()
        return tokens


log = logging.getLogger("live.origin")

#: An early answer: run once when its position is released by new progress.
EarlyAnswer = Callable[[], None]


class Position:
    """One awaited position: the event its holders wait on and their early answers."""

    __slots__ = ("early", "event")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        #: An ordered set: a holder removes its own when it stops waiting (timeout, shutdown).
        self.early: dict[EarlyAnswer, None] = {}


class WaitOutcome(Enum):
    READY = "ready"  # the target exists (or the stream ended, so directives no longer apply)
    TIMEOUT = "timeout"  # held for the whole allowance: answer 503
    GONE = "gone"  # the channel or rendition disappeared: answer 404
    CLOSED = "closed"  # the server is shutting down: answer 503


class Overloaded(Exception):
    """Too many requests are already held; answer 503 rather than grow without bound."""


Probe = Callable[[], tuple[bool, Progress | None] | None]


class Blocker:
    """Parks requests until a rendition reaches a target; woken by the store's change listener.

    ``probe`` returns ``None`` when the channel/rendition is gone, else ``(ended, progress)``.
    One ``asyncio.Event`` per distinct awaited position; ``notify`` sets only the events whose
    position the new progress reaches. Must be used from the event loop thread that publishes.
    """

    def __init__(self, max_held: int) -> None:
        self.max_held = max_held
        self.held = 0
        self.closed = False
        self._sets: dict[tuple[str, str], WaitSet[Position]] = {}
        self._released: list[Position] = []  # with early answers, for the scheduled ``_answer_early``

    def notify(self, channel: str, rendition: str | None, progress: Progress | None, ended: bool) -> None:
        """A rendition advanced (``rendition`` set) or the whole channel ended/reset/went away."""
        if rendition is None or ended:
            keys = [key for key in self._sets if key[0] == channel]
            for key in keys:
                for position in self._sets.pop(key).drain():
                    position.early.clear()  # the holders answer for themselves (404, ENDLIST)
                    position.event.set()
            return
        waits = self._sets.get((channel, rendition))
        if waits is not None and progress is not None:
            for position in waits.release(progress):
                if not position.early:
                    position.event.set()
                    continue
                if not self._released:
                    asyncio.get_running_loop().call_soon(self._answer_early)
                self._released.append(position)

    def _answer_early(self) -> None:
        """Run the released positions' early answers, then wake their holders.

        Waking only afterwards keeps every answer ahead of every holder's task, also on loops
        that send queued writes at the end of an iteration (uvloop). A failing answer leaves
        its holder to the normal path.
        """
        released, self._released = self._released, []
        for position in released:
            early = list(position.early)
            position.early.clear()
            for answer in early:
                try:
                    answer()
                except Exception:  # one broken connection must not cost the others their answers
                    log.exception("origin: early answer failed; its request is answered normally")
        for position in released:
            position.event.set()

    def awaited(self, channel: str, rendition: str) -> int:
        """How many distinct positions of one rendition are awaited (one event each)."""
        waits = self._sets.get((channel, rendition))
        return 0 if waits is None else len(waits)

    def drain_all(self) -> None:
        """Wake every holder and refuse new ones (server shutdown)."""
        self.closed = True
        released, self._released = self._released, []  # their answers not written yet: 503 too
        for waits in self._sets.values():
            released.extend(waits.drain())
        for position in released:
            position.early.clear()
            position.event.set()
        self._sets.clear()

    async def wait(self, channel: str, rendition: str, target: Target, probe: Probe,
                   timeout_s: float, early: EarlyAnswer | None = None) -> WaitOutcome:
        """Hold until ``target`` is ready, the stream ends or goes away, or ``timeout_s`` passes.

        ``early``, if given, runs in a callback the ``notify`` that makes the target ready
        schedules, before this holder wakes; it never runs for a holder that stopped waiting
        for another reason (a timeout or cancellation is handled after that callback).
        """
        if self.held >= self.max_held:
            raise Overloaded(f"{self.held} requests already held")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self.held += 1
        try:
            while True:
                if self.closed:
                    return WaitOutcome.CLOSED
                state = probe()
                if state is None:
                    return WaitOutcome.GONE
                ended, progress = state
                if ended or target.ready(progress):
                    return WaitOutcome.READY
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return WaitOutcome.TIMEOUT
                waits = self._sets.get((channel, rendition))
                if waits is None:
                    waits = self._sets[(channel, rendition)] = WaitSet()
                position = waits.token_for(target, Position)
                if early is not None:
                    position.early[early] = None
                try:
                    async with asyncio.timeout(remaining):
                        await position.event.wait()
                except TimeoutError:
                    return WaitOutcome.TIMEOUT
                finally:
                    if early is not None:
                        position.early.pop(early, None)
        finally:
            self.held -= 1

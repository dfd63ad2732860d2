"""The table of WHIP and WHEP sessions and the limits on creating them.

Every session is a row here from the POST that creates it to its end, in one of three states:
CONNECTING (answered, ICE and DTLS not yet done), CONNECTED, CLOSED. The only legal moves are
in ``_MOVES``. The table answers the questions the limits ask: how many viewers this node
serves (``--whep-max-viewers``), which sessions are still CONNECTING past their ICE deadline
(dropped), and whether a client may create another session now (a token bucket per client
address, so a flood of POSTs gets 429 with Retry-After, not a peer connection each). Pure: the
caller supplies the clock.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from live.api.ratelimit import Rate, TokenBuckets, client_key


class SessionKind(Enum):
    WHIP = "whip"
    WHEP = "whep"


class SessionState(Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    CLOSED = "closed"


_MOVES: Final = {
    SessionState.CONNECTING: frozenset({SessionState.CONNECTED, SessionState.CLOSED}),
    SessionState.CONNECTED: frozenset({SessionState.CLOSED}),
    SessionState.CLOSED: frozenset(),
}


class Refused(Exception):
    """A session may not be created now; ``status`` and ``retry_after_s`` go to the client."""

    def __init__(self, reason: str, status: int, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class WebRtcLimits:
    """Limits on WHIP/WHEP sessions (one typed object, built from the CLI)."""

    max_viewers: int = 500  # WHEP sessions per node; past it 503 with Retry-After
    ice_timeout_s: float = 10.0  # a session not CONNECTED by then is dropped
    per_client: Rate = field(default_factory=lambda: Rate(capacity=20, per_second=2.0))
    max_sessions: int = 2000  # WHIP + WHEP rows, whatever their state
    full_retry_after_s: float = 10.0

    def __post_init__(self) -> None:
        if self.max_viewers < 0 or self.ice_timeout_s <= 0 or self.max_sessions < 1:
            raise ValueError(f"unusable WebRTC limits: {self}")


@dataclass(slots=True)
class SessionRecord:
    id: str
    kind: SessionKind
    channel: str
    client: str
    created_at: float
    state: SessionState = SessionState.CONNECTING
    rendition: str | None = None  # WHEP: what the viewer gets now


class SessionTable:
    """Rows by id; ``admit`` checks the limits, ``move`` enforces the state table."""

    def __init__(self, limits: WebRtcLimits) -> None:
        self.limits = limits
        self._rows: dict[str, SessionRecord] = {}
        self._buckets = TokenBuckets(limits.per_client)
        self.refused = {"rate": 0, "viewers": 0, "sessions": 0}

    def admit(self, kind: SessionKind, channel: str, address: str | None, now: float) -> SessionRecord:
        """A new CONNECTING row, or Refused (429 per-client rate, 503 node full)."""
        client = client_key(address)
        wait = self._buckets.take(client, now)
        if wait > 0:
            self.refused["rate"] += 1
            raise Refused(f"too many sessions created from {client}", 429, wait)
        if len(self._rows) >= self.limits.max_sessions:
            self.refused["sessions"] += 1
            raise Refused("this node holds its maximum of WebRTC sessions", 503,
                          self.limits.full_retry_after_s)
        if kind is SessionKind.WHEP and self.count(SessionKind.WHEP) >= self.limits.max_viewers:
            self.refused["viewers"] += 1
            raise Refused(f"this node serves its maximum of {self.limits.max_viewers} WHEP viewers",
                          503, self.limits.full_retry_after_s)
        record = SessionRecord(secrets.token_urlsafe(18), kind, channel, client, now)
        self._rows[record.id] = record
        return record

    def move(self, session_id: str, state: SessionState) -> SessionRecord | None:
        """Move a row; CLOSED removes it. None when the row is gone; a move the table forbids
        (e.g. CLOSED -> CONNECTED) is ignored and returns the row unchanged."""
        record = self._rows.get(session_id)
        if record is None:
            return None
        if state not in _MOVES[record.state]:
            return record
        record.state = state
        if state is SessionState.CLOSED:
            del self._rows[session_id]
        return record

    def get(self, session_id: str) -> SessionRecord | None:
        return self._rows.get(session_id)

    def overdue(self, now: float) -> list[SessionRecord]:
        """Rows still CONNECTING ``ice_timeout_s`` after they were created."""
        limit = self.limits.ice_timeout_s
        return [r for r in self._rows.values()
                if r.state is SessionState.CONNECTING and now - r.created_at >= limit]

    def count(self, kind: SessionKind, channel: str | None = None) -> int:
        return sum(1 for r in self._rows.values()
                   if r.kind is kind and (channel is None or r.channel == channel))

    def __iter__(self) -> Iterator[SessionRecord]:
        return iter(tuple(self._rows.values()))

    def __len__(self) -> int:
        return len(self._rows)

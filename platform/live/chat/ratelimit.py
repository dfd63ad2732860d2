"""Chat's rate limits. Per-user messages: an exact sliding window (Twitch: 20 messages / 30 s,
100 for mods); per-connection frames: a token bucket; failed sign-ins: a memory and a ban.

A sliding-window log rather than a token bucket because the promise users are given is exact:
"no more than N messages in any 30 seconds". A token bucket of capacity N refilling at N/W lets
nearly 2N through in one window. The log costs at most ``max_limit`` timestamps per active user,
and users idle for a whole window are forgotten, so memory follows who is chatting right now.
Pure: the caller passes the clock.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import Any


class SlidingWindowLimiter:
    """Allows ``limit`` events per key in any half-open window ``(t - window, t]``."""

    __slots__ = ("_log", "max_limit", "window")

    def __init__(self, window_s: float, max_limit: int) -> None:
        if window_s <= 0 or max_limit < 1:
            raise ValueError("window_s must be > 0 and max_limit >= 1")
        self.window = window_s
        self.max_limit = max_limit
        # key -> timestamps of accepted events, oldest first; ordered by last acceptance so the
        # idle keys are at the front and pruning stops at the first live one.
        self._log: OrderedDict[str, deque[float]] = OrderedDict()

    def try_acquire(self, key: str, now: float, limit: int) -> float:
        """0.0 and the event is counted, or the seconds until one more would be allowed."""
        if not 1 <= limit <= self.max_limit:
            raise ValueError(f"limit {limit} outside [1, {self.max_limit}]")
        self._prune(now)
        times = self._log.get(key)
        if times is None:
            times = self._log[key] = deque(maxlen=self.max_limit)
        horizon = now - self.window
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) >= limit:
            # the (len - limit + 1)-th oldest must leave the window before one more fits
            return times[len(times) - limit] + self.window - now
        times.append(now)
        self._log.move_to_end(key)
        return 0.0

    def _prune(self, now: float) -> None:
        horizon = now - self.window
        while self._log:
            key, times = next(iter(self._log.items()))
            if times and times[-1] > horizon:
                break
            del self._log[key]

    def tracked(self) -> int:
        """Keys currently held (for tests and metrics)."""
        return len(self._log)


class TokenBucket:
    """Frames one connection may send: ``burst`` at once, refilled at ``rate_per_s``.

    Every client frame costs parsing and often a store lookup (``auth``, moderation targets), so
    each connection gets a bucket, pings and sign-ins included. Pure: the caller passes the clock.
    """

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate = rate_per_s
        self.burst = burst
        self._tokens = float(burst)
        self._at = now

    def take(self, now: float) -> float:
        """0.0 and one frame is spent, or the seconds until the next one would be allowed."""
        tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return 0.0
        self._tokens = tokens
        return (1.0 - tokens) / self.rate


class SignInGuard:
    """Failed token lookups: tokens that just failed, and addresses that keep failing.

    Each unknown token costs the platform's store a lookup. A token that failed is remembered
    (by its SHA-256) for ``window_s``, so clients retrying an expired token, or a flood replaying
    one, cost nothing more; an address with ``limit`` failures within ``window_s`` gets no
    lookups at all for ``ban_s``. Both memories are bounded (``remember`` entries, oldest
    forgotten). Pure: the caller passes the clock and the address key.
    """

    def __init__(self, limit: int, window_s: float, ban_s: float, remember: int = 100_000) -> None:
        if limit < 1 or window_s <= 0 or ban_s < 0 or remember < 1:
            raise ValueError("limit and remember must be >= 1, window_s > 0, ban_s >= 0")
        self.limit = limit
        self.window_s = window_s
        self.ban_s = ban_s
        self.remember = remember
        self._bad_tokens: OrderedDict[bytes, float] = OrderedDict()  # digest -> forgotten at
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._banned_until: OrderedDict[str, float] = OrderedDict()

    def throttled_for(self, address: str, now: float) -> float:
        """Seconds this address must wait before its tokens are looked up again (0.0: now)."""
        until = self._banned_until.get(address)
        if until is None:
            return 0.0
        if now >= until:
            del self._banned_until[address]
            return 0.0
        return until - now

    def known_bad(self, digest: bytes, now: float) -> bool:
        """This token failed within the window: answer "bad token" without asking the store."""
        forgotten_at = self._bad_tokens.get(digest)
        if forgotten_at is None:
            return False
        if now >= forgotten_at:
            del self._bad_tokens[digest]
            return False
        return True

    def failed(self, address: str, digest: bytes, now: float) -> bool:
        """A lookup found no session; answers True when this failure starts a ban of ``address``."""
        self._bad_tokens[digest] = now + self.window_s
        self._bad_tokens.move_to_end(digest)
        _trim(self._bad_tokens, self.remember)
        times = self._failures.pop(address, None) or deque()
        times.append(now)
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) >= self.limit:
            self._banned_until[address] = now + self.ban_s
            self._banned_until.move_to_end(address)
            _trim(self._banned_until, self.remember)
            return True
        self._failures[address] = times
        _trim(self._failures, self.remember)
        return False


def _trim(entries: OrderedDict[Any, Any], size: int) -> None:
    while len(entries) > size:
        entries.popitem(last=False)

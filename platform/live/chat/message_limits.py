"""Where the per-user message limit is counted: in this node, or in Redis shared by every node.

A user connected to N chat nodes would get N times the allowance if each node counted alone.
``RedisMessageLimiter`` keeps the same exact sliding-window log as ``SlidingWindowLimiter``, one
sorted set per user, trimmed and tested by one Lua script so the check and the append are atomic
across nodes; the script reads Redis' own clock (``TIME``), so the nodes' clocks need not agree.
``LocalMessageLimiter`` (the embedded default) is the in-process log. If Redis cannot be reached
a node falls back to its own log and says so in the log: chat stays up, each node counting alone.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any, Protocol

from live.chat.ratelimit import SlidingWindowLimiter

log = logging.getLogger("live.chat")

# KEYS[1]: the user's log. ARGV: window (µs), limit, max_limit, a member id unique to this call.
# Answers 0 (counted) or the µs until one more fits (the arithmetic of
# SlidingWindowLimiter.try_acquire: the (n - limit)-th oldest must leave the window).
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
return 0
"""


class MessageLimiter(Protocol):
    async def try_acquire(self, user: str, limit: int) -> float:
        """0.0 and the message is counted, or the seconds until one more would be allowed."""
        ...

    async def close(self) -> None: ...


class LocalMessageLimiter:
    """This node's own count (the embedded default)."""

    def __init__(self, window_s: float, max_limit: int) -> None:
        self.log = SlidingWindowLimiter(window_s, max_limit)

    async def try_acquire(self, user: str, limit: int) -> float:
        return self.log.try_acquire(user, time.monotonic(), limit)

    async def close(self) -> None:
        return None


class RedisMessageLimiter:
    """The count shared by every node using the same Redis and ``prefix``."""

    def __init__(self, url: str, window_s: float, max_limit: int, prefix: str = "livetwin:chat:rate") -> None:
        import redis.asyncio as redis  # only nodes configured for Redis need the client

        self._redis: Any = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script: Any = self._redis.register_script(_SLIDING_WINDOW)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.window_us = int(window_s * 1_000_000)
        self.max_limit = max_limit
        self.prefix = prefix
        self.fallback = LocalMessageLimiter(window_s, max_limit)
        self._ids = itertools.count()
        self._node = f"{id(self):x}-{time.time_ns():x}"
        self._down = False

    async def try_acquire(self, user: str, limit: int) -> float:
        if not 1 <= limit <= self.max_limit:
            raise ValueError(f"limit {limit} outside [1, {self.max_limit}]")
        member = f"{self._node}-{next(self._ids)}"
        try:
            wait_us = await self._script(keys=[f"{self.prefix}:{user}"],
                                         args=[self.window_us, limit, self.max_limit, member])
        except self._errors as error:
            if not self._down:
                log.warning("chat: the shared rate limit store failed (%s); counting on this node "
                            "alone until it answers", error)
                self._down = True
            return await self.fallback.try_acquire(user, limit)
        if self._down:
            log.warning("chat: the shared rate limit store answers again")
            self._down = False
        return int(wait_us) / 1_000_000

    async def close(self) -> None:
        await self._redis.aclose()


def open_message_limiter(url: str | None, window_s: float, max_limit: int) -> MessageLimiter:
    """None: this node's own count; ``redis://HOST:PORT[/DB]``: shared across nodes."""
    if url is None:
        return LocalMessageLimiter(window_s, max_limit)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisMessageLimiter(url, window_s, max_limit)
    raise ValueError(f"chat rate limit store {url!r}: expected redis://HOST:PORT")

"""Per-user message rate limit: an exact sliding window (Twitch: 20 messages / 30 s, 100 for mods).

A sliding-window log rather than a token bucket because the promise users are given is exact:
"no more than N messages in any 30 seconds". A token bucket of capacity N refilling at N/W lets
nearly 2N through in one window. The log costs at most ``max_limit`` timestamps per active user,
and users idle for a whole window are forgotten, so memory follows who is chatting right now.
Pure: the caller passes the clock.
"""

from __future__ import annotations

from collections import OrderedDict, deque


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

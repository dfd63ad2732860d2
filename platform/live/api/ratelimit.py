"""Throttles, pure (the caller supplies the clock): per-client token buckets and per-account backoff.

One bucket per client key holds ``capacity`` tokens and regains ``rate`` per second; a request
takes one. When none is left the answer is how long until one is, which becomes Retry-After.
The table of buckets is bounded: past ``max_clients`` the least recently seen is forgotten
(it comes back full, the only leniency an attacker rotating addresses can buy).

Buckets per address cannot protect one account from guesses spread over many addresses, so
logins also go through ``FailureBackoff``: after ``free_failures`` wrong passwords in a row an
account waits ``base_s``, then twice that after each further failure, up to ``max_s``; a success
clears it.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Rate:
    capacity: int
    per_second: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or not self.per_second > 0:
            raise ValueError(f"a rate needs capacity >= 1 and a positive refill, got {self}")


class TokenBuckets:
    def __init__(self, rate: Rate, max_clients: int = 100_000) -> None:
        if max_clients < 1:
            raise ValueError("max_clients must be at least 1")
        self.rate = rate
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def take(self, key: str, now: float) -> float:
        """Spend a token for ``key``: 0.0 if granted, else seconds until one will be there."""
        rate = self.rate
        entry = self._buckets.get(key)
        if entry is None:
            tokens = float(rate.capacity)
        else:
            stored, at = entry
            tokens = min(float(rate.capacity), stored + max(now - at, 0.0) * rate.per_second)
            self._buckets.move_to_end(key)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            self._evict()
            return 0.0
        self._buckets[key] = (tokens, now)
        self._evict()
        return (1.0 - tokens) / rate.per_second

    def refund(self, key: str) -> None:
        """Give back the token a request took (a login that succeeded costs nothing)."""
        entry = self._buckets.get(key)
        if entry is not None:
            self._buckets[key] = (min(float(self.rate.capacity), entry[0] + 1.0), entry[1])

    def _evict(self) -> None:
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


@dataclass(frozen=True, slots=True)
class Backoff:
    free_failures: int = 5
    base_s: float = 1.0
    max_s: float = 900.0
    #: A run of failures this old is forgiven.
    forget_after_s: float = 24 * 3600.0

    def __post_init__(self) -> None:
        if self.free_failures < 0 or not 0 < self.base_s <= self.max_s:
            raise ValueError(f"a backoff needs free_failures >= 0 and 0 < base_s <= max_s, got {self}")

    def delay(self, failures: int) -> float:
        """How long an account waits after ``failures`` failures in a row."""
        over = failures - self.free_failures
        if over <= 0:
            return 0.0
        return min(self.base_s * 2.0 ** min(over - 1, 64), self.max_s)


class FailureBackoff:
    """Consecutive failures per key (an account), and when that key may try again."""

    def __init__(self, policy: Backoff, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.policy = policy
        self.max_keys = max_keys
        self._entries: OrderedDict[str, tuple[int, float, float]] = OrderedDict()  # n, last, until

    def wait(self, key: str, now: float) -> float:
        """Seconds before ``key`` may try again (0.0: now)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        _, last, until = entry
        if now - last > self.policy.forget_after_s:
            del self._entries[key]
            return 0.0
        return max(until - now, 0.0)

    def failed(self, key: str, now: float) -> float:
        """Count a failure; answers the wait it sets."""
        entry = self._entries.pop(key, None)
        failures = 1
        if entry is not None and now - entry[1] <= self.policy.forget_after_s:
            failures = entry[0] + 1
        delay = self.policy.delay(failures)
        self._entries[key] = (failures, now, now + delay)
        while len(self._entries) > self.max_keys:
            self._entries.popitem(last=False)
        return delay

    def succeeded(self, key: str) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


def client_key(address: str | None) -> str:
    """The rate-limit identity of a peer: its IPv4 address, or the /64 an IPv6 address sits in.

    One IPv6 subscriber typically holds a whole /64 (RFC 6177), so keying on the full address
    would hand an attacker 2**64 fresh buckets.
    """
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)

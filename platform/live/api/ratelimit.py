"""Per-client token buckets: a burst, then a steady rate; pure, the caller supplies the clock.

One bucket per client key holds ``capacity`` tokens and regains ``rate`` per second; a request
takes one. When none is left the answer is how long until one is, which becomes Retry-After.
The table of buckets is bounded: past ``max_clients`` the least recently seen is forgotten
(it comes back full, the only leniency an attacker rotating addresses can buy).
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

    def _evict(self) -> None:
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)

    def __len__(self) -> int:
        return len(self._buckets)


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

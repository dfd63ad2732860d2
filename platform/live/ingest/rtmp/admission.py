"""Who may open an RTMP connection: per-address caps and a ban after repeated wrong keys.

Without a key nobody should be able to tie the ingest up, so besides the global connection cap
each address may hold only a few connections, and an address that sends wrong stream keys
``failed_limit`` times within ``failed_window_s`` is refused outright for ``ban_s``. Pure and
clock-free (the server passes ``now``), so the rules are tested without sockets.

An address is its IPv4 address, or the /64 an IPv6 address sits in (one subscriber typically
holds a whole /64, RFC 6177, so keying on full addresses would hand out 2**64 fresh quotas).
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict, deque
from dataclasses import dataclass


def address_key(host: str) -> str:
    """The quota identity of a peer host (IPv4, or the IPv6 /64; IPv4-mapped IPv6 as IPv4)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    max_per_address: int = 32
    failed_limit: int = 10
    failed_window_s: float = 60.0
    ban_s: float = 300.0
    #: How many addresses' failure histories are remembered (least recently failed forgotten).
    max_tracked: int = 100_000

    def __post_init__(self) -> None:
        if self.max_per_address < 1 or self.failed_limit < 1 or self.max_tracked < 1:
            raise ValueError(f"admission limits must be at least 1: {self}")


class Admission:
    """Open connections per address and recent failed publishes per address."""

    def __init__(self, limits: AdmissionLimits | None = None) -> None:
        self.limits = limits or AdmissionLimits()
        self._open: dict[str, int] = {}
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._banned_until: OrderedDict[str, float] = OrderedDict()

    def admit(self, address: str, now: float) -> str | None:
        """Count a new connection from ``address``; or answer why it is refused (not counted)."""
        key = address_key(address)
        until = self._banned_until.get(key)
        if until is not None:
            if now < until:
                return f"too many wrong stream keys: refused for {until - now:.0f} s more"
            del self._banned_until[key]
        held = self._open.get(key, 0)
        if held >= self.limits.max_per_address:
            return f"{held} connections already open from this address"
        self._open[key] = held + 1
        return None

    def release(self, address: str) -> None:
        """The connection ``admit`` counted has closed."""
        key = address_key(address)
        held = self._open.get(key, 0) - 1
        if held > 0:
            self._open[key] = held
        else:
            self._open.pop(key, None)

    def publish_failed(self, address: str, now: float) -> bool:
        """Record a wrong stream key; answers True when this one starts a ban."""
        limits = self.limits
        key = address_key(address)
        times = self._failures.pop(key, None) or deque()
        times.append(now)
        while times and times[0] <= now - limits.failed_window_s:
            times.popleft()
        if len(times) >= limits.failed_limit:
            self._banned_until[key] = now + limits.ban_s
            self._banned_until.move_to_end(key)
            while len(self._banned_until) > limits.max_tracked:
                self._banned_until.popitem(last=False)
            return True
        self._failures[key] = times
        while len(self._failures) > limits.max_tracked:
            self._failures.popitem(last=False)
        return False

    def open_from(self, address: str) -> int:
        return self._open.get(address_key(address), 0)

"""Region delivery state: an explicit state machine per region, driven by fault processes.

    UP --outage--> DOWN --dns_failover_s--> FAILED_OVER --recover--> UP
                    \\--------------------recover----------------------/

DOWN: the region's edges answer nothing and its viewers are not yet redirected (DNS TTL and
health checks). FAILED_OVER: its viewers are served by the failover region's edges, with the
extra cross-region RTT, as long as that region is itself UP.
"""

from __future__ import annotations

from enum import Enum


class RegionState(Enum):
    UP = "up"
    DOWN = "down"
    FAILED_OVER = "failed_over"


class RegionStateError(RuntimeError):
    """An illegal transition: a bug in the model's fault handling (local error)."""


LEGAL: dict[tuple[RegionState, str], RegionState] = {
    (RegionState.UP, "outage"): RegionState.DOWN,
    (RegionState.DOWN, "failover"): RegionState.FAILED_OVER,
    (RegionState.DOWN, "recover"): RegionState.UP,
    (RegionState.FAILED_OVER, "recover"): RegionState.UP,
}


class Regions:
    """States of all regions and where each region's viewers are served from."""

    def __init__(self, failover: list[int], extra_rtt_s: float) -> None:
        self.failover = failover
        self.extra_rtt_s = extra_rtt_s
        self.states = [RegionState.UP] * len(failover)
        self.routes = [self._route(home) for home in range(len(failover))]

    def apply(self, region: int, event: str) -> RegionState:
        key = (self.states[region], event)
        if key not in LEGAL:
            raise RegionStateError(
                f"region {region}: no transition for {event!r} from {self.states[region].value}"
            )
        self.states[region] = LEGAL[key]
        # a transition can change where any region's viewers go (failover targets included)
        self.routes = [self._route(home) for home in range(len(self.states))]
        return self.states[region]

    def serving(self, home: int) -> tuple[int, float]:
        """(region whose edges serve `home`'s viewers, extra RTT); region -1 when nobody does."""
        return self.routes[home]

    def _route(self, home: int) -> tuple[int, float]:
        state = self.states[home]
        if state is RegionState.UP:
            return home, 0.0
        target = self.failover[home]
        if state is RegionState.FAILED_OVER and self.states[target] is RegionState.UP:
            return target, self.extra_rtt_s
        return -1, 0.0

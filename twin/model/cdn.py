"""Edge, shield and origin tiers: request coalescing, cache hits, egress, queueing delay.

An LL-HLS viewer makes two requests per part: the blocking playlist reload and the part
(RFC 8216bis 6.2.5.2 and 6.2.6). With request coalescing (nginx `proxy_cache_lock`), an edge
PoP forwards one request per object however many viewers ask, and the regional shield
forwards one per object however many PoPs ask. So the load a tier sends upstream depends
only on how many (stream, rendition) objects have at least one viewer below it, not on the
viewer count: that is why a viral spike on an already-watched stream leaves the origin flat.

With viewers spread over a PoP's channels at random, the count of viewers of one channel at
one PoP is Poisson with mean x, so the PoP holds 1 - exp(-x) of that object in expectation
(exact for a group of one channel, the bin-mean approximation for tail bins, see
popularity.py). Edge egress is bitrate x served viewers (capped by the PoPs' NIC capacity);
shield and origin egress are one copy of each active object.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from twin.model.queueing import erlang_c, erlang_c_negligible

FloatArray = npt.NDArray[np.float64]

#: An FCFS wait law (C, rate, extra): 0 with probability 1 - C, else Exp(rate); plus `extra`
#: (a saturated tier's backlog). Tracers copy it once per fluid step and draw from it inline.
WaitLaw = tuple[float, float, float]
NO_WAIT: WaitLaw = (0.0, 1.0, 0.0)


def wait_from(law: WaitLaw, u: float) -> float:
    """One wait drawn from `law` with one uniform (see `TierQueue.sample_wait`)."""
    c, rate, extra = law
    return extra - math.log(u / c) / rate if u < c else extra


@dataclass(frozen=True, slots=True)
class Delivery:
    """One step of the delivery tiers, per region (arrays of length R) plus origin totals."""

    by_rk: FloatArray
    viewers: FloatArray
    edge_demand_bps: FloatArray
    edge_delivered_bps: FloatArray
    edge_capacity_bps: FloatArray
    edge_rps: FloatArray
    edge_miss_rps: FloatArray
    shield_egress_bps: FloatArray
    shield_miss_rps: FloatArray
    origin_egress_bps: float
    origin_rps: float

    @property
    def edge_hit_ratio(self) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(
                self.edge_rps > 0, 1.0 - self.edge_miss_rps / np.maximum(self.edge_rps, 1e-300), 1.0
            )

    @property
    def overload(self) -> FloatArray:
        return self.edge_demand_bps / self.edge_capacity_bps


def deliver(
    served: FloatArray,
    channels: FloatArray,
    pops: FloatArray,
    bitrate_bps: FloatArray,
    part_s: float,
    edge_capacity_bps: FloatArray,
) -> Delivery:
    """served[g, r, k]: viewers of group g served by region r's edges on rung k."""
    req_per_viewer = 2.0 / part_s
    by_rk = served.sum(axis=0)  # (R, K)
    viewers = by_rk.sum(axis=1)
    demand = by_rk @ bitrate_bps
    ch = channels[:, None, None]
    per_pop = served / (ch * pops[None, :, None])
    edge_objects = (ch * pops[None, :, None] * -np.expm1(-per_pop)).sum(axis=0)  # (R, K)
    shield_objects = (ch * -np.expm1(-served / ch)).sum(axis=0)  # (R, K)
    return Delivery(
        by_rk=by_rk,
        viewers=viewers,
        edge_demand_bps=demand,
        edge_delivered_bps=np.minimum(demand, edge_capacity_bps),
        edge_capacity_bps=edge_capacity_bps,
        edge_rps=viewers * req_per_viewer,
        edge_miss_rps=edge_objects.sum(axis=1) * req_per_viewer,
        shield_egress_bps=edge_objects @ bitrate_bps,
        shield_miss_rps=shield_objects.sum(axis=1) * req_per_viewer,
        origin_egress_bps=float((shield_objects @ bitrate_bps).sum()),
        origin_rps=float(shield_objects.sum()) * req_per_viewer,
    )


def deliver_direct(served: FloatArray, bitrate_bps: FloatArray, origin_rps: float) -> Delivery:
    """The single-machine layout: no cache tier, the origin answers every request itself.

    Egress is bitrate x served viewers, uncapped (loopback); `origin_rps` comes from the
    caller, which knows the load generator's request pattern.
    """
    by_rk = served.sum(axis=0)
    viewers = by_rk.sum(axis=1)
    demand = by_rk @ bitrate_bps
    per_region = viewers / viewers.sum() * origin_rps if viewers.sum() else np.zeros_like(viewers)
    return Delivery(
        by_rk=by_rk,
        viewers=viewers,
        edge_demand_bps=demand,
        edge_delivered_bps=demand,
        edge_capacity_bps=np.full_like(demand, math.inf),
        edge_rps=per_region,
        edge_miss_rps=per_region,
        shield_egress_bps=demand,
        shield_miss_rps=per_region,
        origin_egress_bps=float(demand.sum()),
        origin_rps=origin_rps,
    )


@dataclass(frozen=True, slots=True)
class SmallTiers:
    """The small deployment's nginx tiers (`loadgen run` with `cdn:`): `edges` edges that the
    viewers are dealt to in turn, `shields` shields that the channels hash to (consistent
    hashing: one shield per channel), the origin behind them.

    `upstream_per_object_s`: requests/s one edge (or shield) sends upstream for one watched
    (channel, rendition) while its viewers follow live; `plain_per_viewer_s`: the plain
    playlist fetches per viewer and second (joins and ABR switches) that no cache answers
    (nginx keys plain reloads by the tenth of a second, docs/cdn.md).
    """

    edges: int
    shields: int
    upstream_per_object_s: float
    plain_per_viewer_s: float


def deliver_small_cdn(
    served: FloatArray,
    bitrate_bps: FloatArray,
    tiers: SmallTiers,
    edge_rps: float,
    viewers: float,
    probe_rung: int | None,
) -> Delivery:
    """The single machine behind real edges and shields: coalescing per (channel, rendition).

    served[g, 0, k]: viewers of channel g on rung k. The viewers of one (g, k) are dealt to
    the edges in turn, so an edge holds an object once it has one of them: with x viewers and
    E edges, min(x, E) edges hold it (the fluid's x is a mean, so 1 - exp(-x/E) of each edge
    in expectation). The shield holds an object once any edge does. `probe_rung`: the probe
    watches channel 0's rung `probe_rung` through the first edge (an object of its own there
    unless a viewer holds it). Each held object costs `upstream_per_object_s` one tier up;
    plain playlist fetches of joins and switches pass every cache.
    """
    by_rk = served.sum(axis=0)
    total = by_rk.sum(axis=1)
    demand = by_rk @ bitrate_bps
    x = served[:, 0, :]  # (G, K) viewers per channel and rung
    e = float(tiers.edges)
    edge_objects = e * -np.expm1(-x / e)
    shield_objects = -np.expm1(-x)
    if probe_rung is not None:
        edge_objects[0, probe_rung] += math.exp(-x[0, probe_rung] / e)
        shield_objects[0, probe_rung] = 1.0
    plain = viewers * tiers.plain_per_viewer_s
    edge_miss = float(edge_objects.sum()) * tiers.upstream_per_object_s + plain
    origin_rps = float(shield_objects.sum()) * tiers.upstream_per_object_s + plain
    return Delivery(
        by_rk=by_rk,
        viewers=total,
        edge_demand_bps=demand,
        edge_delivered_bps=demand,
        edge_capacity_bps=np.full_like(demand, math.inf),
        edge_rps=np.array([edge_rps]),
        edge_miss_rps=np.array([edge_miss]),
        shield_egress_bps=np.array([float((edge_objects @ bitrate_bps).sum())]),
        shield_miss_rps=np.array([origin_rps]),
        origin_egress_bps=float((shield_objects @ bitrate_bps).sum()),
        origin_rps=origin_rps,
    )


class TierQueue:
    """A pool of c servers, rate mu each: M/M/c wait while stable, a fluid backlog beyond.

    Past saturation the Erlang C formula has no steady state, so the excess arrivals pile up
    in a backlog (bounded: requests older than `max_delay_s` time out and are dropped) that
    drains at the spare rate once load falls: the wait is then backlog / (c mu).
    """

    def __init__(self, name: str, service_rate: float, max_delay_s: float = 30.0) -> None:
        self.name = name
        self.mu = service_rate
        self.max_delay_s = max_delay_s
        self.backlog = 0.0
        self.arrival_rate = 0.0
        self.dropped = 0.0
        self.utilization = 0.0
        self.wait_probability = 0.0
        self.decay_rate = math.inf
        self.extra_delay = 0.0

    def step(self, dt: float, arrival_rate: float, servers: float) -> None:
        c = max(0, int(servers))
        capacity = c * self.mu
        self.arrival_rate = arrival_rate
        self.utilization = arrival_rate / capacity if capacity else (math.inf if arrival_rate else 0.0)
        self.backlog = max(0.0, self.backlog + (arrival_rate - capacity) * dt)
        limit = capacity * self.max_delay_s if capacity else 0.0
        if self.backlog > limit:
            self.dropped += self.backlog - limit
            self.backlog = limit
        if capacity and arrival_rate < capacity:
            load = arrival_rate / self.mu
            self.wait_probability = 0.0 if erlang_c_negligible(c, load) else erlang_c(c, load)
            self.decay_rate = capacity - arrival_rate
        else:
            self.wait_probability = 1.0
            self.decay_rate = math.inf
        self.extra_delay = self.backlog / capacity if capacity else self.max_delay_s

    def servers_needed(self) -> float:
        """Servers this step's arrivals would keep fully busy (the autoscaler's demand)."""
        return self.arrival_rate / self.mu

    def mean_wait(self) -> float:
        base = self.wait_probability / self.decay_rate if self.decay_rate != math.inf else 0.0
        return base + self.extra_delay

    def law(self) -> WaitLaw:
        """This step's wait as (C, c mu - lambda, backlog delay): what `sample_wait` draws from."""
        if self.decay_rate == math.inf:
            return (0.0, 1.0, self.extra_delay)
        return (self.wait_probability, self.decay_rate, self.extra_delay)

    def sample_wait(self, u: float) -> float:
        """One FCFS wait from one uniform `u`: 0 with prob 1 - C, else Exp(c mu - lambda); plus any backlog.

        Given u < C, u / C is itself uniform on (0, 1), so one draw decides both whether the
        request waits and how long (inverse transform of the exponential).
        """
        return wait_from(self.law(), u)

"""M/M/c formulas for the request tiers, and the SimPy M/M/c sub-model that checks them.

Request flows at 100M viewers are hundreds of millions per second, far beyond one SimPy
event per request, so the origin, shield, edge and ad tiers are fluid flows whose queueing
delay comes from the M/M/c (Erlang C) formulas below, evaluated each step on that step's
arrival rate and live server count. `simulate_mmc` is the discrete SimPy model of the same
queue; the oracle tests hold it against `erlang_c` and Little's law, which is what licenses
using the formula in the fluid model.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import simpy


class _LogFactorials:
    """ln k! for k = 0..n and k itself, grown on demand: Erlang B needs both up to c every step."""

    def __init__(self) -> None:
        self.k = np.zeros(1)
        self.log_fact = np.zeros(1)

    def upto(self, n: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        if n >= self.k.size:
            size = max(n + 1, 2 * self.k.size)
            self.k = np.arange(size, dtype=np.float64)
            logs = np.log(self.k[1:])
            self.log_fact = np.concatenate(([0.0], np.cumsum(logs)))
        return self.k[: n + 1], self.log_fact[: n + 1]


_FACTORIALS = _LogFactorials()


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability B(c, a), a = lambda / mu; summed in log space so large c is stable."""
    if servers <= 0:
        return 1.0
    if load <= 0.0:
        return 0.0
    k, log_fact = _FACTORIALS.upto(servers)
    # 1/B = sum_k c!/k! a^(k-c). The terms go as a^k / k!, the Poisson(a) weights: only those
    # within ~12 standard deviations of the largest (at min(a, c)) reach the double sum; the
    # Chernoff bounds put the rest below e^-70 of it (Bernstein's on the right, hence + 50)
    peak, spread = min(load, float(servers)), 12.0 * math.sqrt(load)
    lo, hi = max(0, int(peak - spread) - 2), min(servers, int(peak + spread) + 50)
    log_terms = log_fact[-1] - log_fact[lo : hi + 1] + (k[lo : hi + 1] - servers) * math.log(load)
    top = float(log_terms.max())
    return float(math.exp(-top) / np.exp(log_terms - top).sum())


#: A wait probability below this cannot decide a draw: `random.random()` returns multiples of
#: 2**-53 (~1.1e-16), so u < C only for u == 0.
NEGLIGIBLE_WAIT = 1e-17


def erlang_c_negligible(servers: int, load: float) -> bool:
    """Whether C(c, a) < NEGLIGIBLE_WAIT, by an O(1) bound instead of the O(c) sum.

    C = B / (1 - rho (1 - B)) <= B / (1 - rho), and B = P(N = c) / P(N <= c) for N ~ Poisson(a);
    for c >= a + 1 the Poisson median (<= a + 1/3, Choi 1994) is below c, so P(N <= c) >= 1/2
    and C <= 2 P(N = c) / (1 - rho), with ln P(N = c) = c ln a - a - ln c!.
    """
    if load <= 0.0:
        return True
    if servers < load + 1.0:
        return False
    rho = load / servers
    log_pmf = servers * math.log(load) - load - math.lgamma(servers + 1.0)
    return math.log(2.0) + log_pmf - math.log1p(-rho) < math.log(NEGLIGIBLE_WAIT)


def erlang_c(servers: int, load: float) -> float:
    """Probability an arrival waits, C(c, a); 1.0 when the queue is unstable (a >= c)."""
    if load >= servers:
        return 1.0
    b = erlang_b(servers, load)
    return servers * b / (servers - load * (1.0 - b))


@dataclass(frozen=True, slots=True)
class MMcMetrics:
    """Steady-state M/M/c figures (Kleinrock, Queueing Systems vol. 1, 3.5)."""

    servers: int
    arrival_rate: float
    service_rate: float
    utilization: float
    wait_probability: float
    mean_wait: float
    mean_in_system: float

    def wait_quantile(self, p: float) -> float:
        """p-quantile of the FCFS waiting time: P(W > t) = C exp(-(c mu - lambda) t)."""
        if self.utilization >= 1.0:
            return math.inf
        tail = 1.0 - p
        if tail >= self.wait_probability:
            return 0.0
        return math.log(self.wait_probability / tail) / (self.servers * self.service_rate - self.arrival_rate)


def mmc(servers: int, arrival_rate: float, service_rate: float) -> MMcMetrics:
    if servers <= 0 or service_rate <= 0:
        raise ValueError("an M/M/c queue needs servers >= 1 and a positive service rate")
    load = arrival_rate / service_rate
    rho = load / servers
    if rho >= 1.0:
        return MMcMetrics(servers, arrival_rate, service_rate, rho, 1.0, math.inf, math.inf)
    c = erlang_c(servers, load)
    wq = c / (servers * service_rate - arrival_rate)
    return MMcMetrics(
        servers, arrival_rate, service_rate, rho, c, wq, arrival_rate * (wq + 1.0 / service_rate)
    )


@dataclass(frozen=True, slots=True)
class SimulatedQueue:
    customers: int
    mean_wait: float
    mean_sojourn: float
    wait_probability: float
    time_average_in_system: float
    throughput: float


def simulate_mmc(
    servers: int, arrival_rate: float, service_rate: float, customers: int, seed: int
) -> SimulatedQueue:
    """Run `customers` Poisson arrivals through a SimPy `Resource` of `servers` FCFS servers.

    The time-average number in system is integrated exactly from the event times over the
    arrival window, so the Little's-law check L = lambda W compares two independently
    measured quantities.
    """
    rng = random.Random(seed)
    env = simpy.Environment()
    pool = simpy.Resource(env, capacity=servers)
    waits: list[float] = []
    sojourns: list[float] = []
    state = {"area": 0.0, "last": 0.0, "n": 0.0, "end": math.inf}

    def change(delta: int) -> None:
        now = min(env.now, state["end"])
        state["area"] += state["n"] * (now - state["last"])
        state["last"] = now
        state["n"] += delta

    def customer() -> simpy.events.ProcessGenerator:
        arrived = env.now
        change(+1)
        with pool.request() as req:
            yield req
            started = env.now
            yield env.timeout(rng.expovariate(service_rate))
        change(-1)
        waits.append(started - arrived)
        sojourns.append(env.now - arrived)

    def source() -> simpy.events.ProcessGenerator:
        for _ in range(customers):
            env.process(customer())
            yield env.timeout(rng.expovariate(arrival_rate))
        change(0)
        state["end"] = env.now

    env.process(source())
    env.run()
    span = state["end"]
    return SimulatedQueue(
        customers=customers,
        mean_wait=sum(waits) / customers,
        mean_sojourn=sum(sojourns) / customers,
        wait_probability=sum(1 for w in waits if w > 0.0) / customers,
        time_average_in_system=state["area"] / span,
        throughput=customers / span,
    )

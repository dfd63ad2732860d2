"""Queueing-theory oracles: the SimPy M/M/c sub-model against Erlang C and Little's law.

Tolerances: with 20,000 customers (about 2,000 per batch-means batch) the sample mean wait
of an M/M/c queue at utilization <= 0.8 has a relative standard error of a few percent; we
allow 20 % of the exact mean wait plus 2 % of a mean service time (the absolute term covers
the cases where the exact wait is tiny), and 0.05 absolute on the probability of waiting.
Little's law L = lambda W holds sample path by sample path, so its tolerance is 2 %.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.model.queueing import NEGLIGIBLE_WAIT, erlang_b, erlang_c, erlang_c_negligible, mmc, simulate_mmc


def test_erlang_b_and_c_match_closed_forms() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(2, 1.0) == pytest.approx(0.2)  # (1/2) / (1 + 1 + 1/2)
    for rho in (0.1, 0.5, 0.9):
        assert erlang_c(1, rho) == pytest.approx(rho)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1.0 / 3.0)


def _erlang_b_by_recursion(servers: int, load: float) -> float:
    """B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1)): the textbook recursion, not the log-space sum."""
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=3000), st.floats(min_value=0.01, max_value=1.3))
def test_erlang_b_agrees_with_the_recursion_whatever_sizes_came_before(servers: int, rho: float) -> None:
    # the log-factorial table is shared and grown on demand: any call order gives the same B
    load = rho * servers
    assert erlang_b(servers, load) == pytest.approx(_erlang_b_by_recursion(servers, load), rel=1e-9)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=5000), st.floats(min_value=0.0, max_value=0.999))
def test_a_negligible_wait_is_below_what_a_uniform_draw_can_hit(servers: int, rho: float) -> None:
    load = rho * servers
    if erlang_c_negligible(servers, load):
        assert erlang_c(servers, load) < NEGLIGIBLE_WAIT


def test_the_negligible_bound_spares_big_quiet_tiers_only() -> None:
    assert erlang_c_negligible(4700, 0.7 * 4700)  # peak-100m's origin pool
    assert not erlang_c_negligible(125, 0.66 * 125)  # an edge PoP: C ~ 1e-5 matters
    assert not erlang_c_negligible(1800, 0.999 * 1800)


def test_erlang_c_is_stable_for_large_fleets() -> None:
    c = erlang_c(20_000, 19_500.0)
    assert 0.0 < c < 1.0 and math.isfinite(c)
    assert erlang_c(10, 10.0) == 1.0


def test_mmc_wait_quantile_inverts_the_tail() -> None:
    m = mmc(4, 3.0, 1.0)
    t = m.wait_quantile(0.95)
    assert m.wait_probability * math.exp(-(4 * 1.0 - 3.0) * t) == pytest.approx(0.05)


@settings(max_examples=12, deadline=None)
@given(
    servers=st.integers(1, 12),
    utilization=st.floats(0.2, 0.8),
    service_rate=st.floats(0.5, 5.0),
    seed=st.integers(0, 2**16),
)
def test_simpy_mmc_agrees_with_erlang_c(
    servers: int, utilization: float, service_rate: float, seed: int
) -> None:
    arrival = utilization * servers * service_rate
    exact = mmc(servers, arrival, service_rate)
    sim = simulate_mmc(servers, arrival, service_rate, customers=20_000, seed=seed)
    assert abs(sim.wait_probability - exact.wait_probability) <= 0.05
    assert abs(sim.mean_wait - exact.mean_wait) <= 0.2 * exact.mean_wait + 0.02 / service_rate
    # Little's law on the simulated sample path: L = lambda W
    assert sim.time_average_in_system == pytest.approx(sim.throughput * sim.mean_sojourn, rel=0.02)
    # and against the exact L of the M/M/c queue
    assert sim.time_average_in_system == pytest.approx(exact.mean_in_system, rel=0.15)

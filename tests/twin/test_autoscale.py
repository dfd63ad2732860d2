from __future__ import annotations

import numpy as np
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.model.autoscale import NodePool, autoscaler
from twin.model.transcoder import TranscoderFleet


def test_new_nodes_serve_only_after_the_provisioning_delay() -> None:
    env = simpy.Environment()
    pool = NodePool(env, "gpu", nodes=10, min_nodes=1, max_nodes=100, provisioning_s=120.0)
    env.process(autoscaler(env, pool, lambda: 14.0, target=0.7, period_s=30.0))
    env.run(until=149.0)
    assert (pool.up, pool.provisioning) == (10, 10)
    env.run(until=151.0)
    assert (pool.up, pool.provisioning) == (20, 0)


def test_autoscaler_does_not_order_twice_while_nodes_boot() -> None:
    env = simpy.Environment()
    pool = NodePool(env, "cpu", nodes=1, min_nodes=1, max_nodes=1000, provisioning_s=500.0)
    env.process(autoscaler(env, pool, lambda: 70.0, target=0.7, period_s=10.0))
    env.run(until=400.0)
    assert pool.up + pool.provisioning == 100


@settings(max_examples=60, deadline=None)
@given(
    nodes=st.integers(0, 200),
    lo=st.integers(0, 50),
    hi=st.integers(200, 400),
    share=st.floats(0.0, 1.0),
    needs=st.lists(st.floats(0.0, 500.0), min_size=1, max_size=20),
)
def test_pool_stays_within_its_bounds(nodes: int, lo: int, hi: int, share: float, needs: list[float]) -> None:
    env = simpy.Environment()
    pool = NodePool(env, "p", nodes=max(nodes, lo), min_nodes=lo, max_nodes=hi, provisioning_s=15.0)
    it = iter(needs * 10)
    env.process(autoscaler(env, pool, lambda: next(it, 0.0), target=0.7, period_s=10.0))
    env.run(until=50.0)
    pool.fail(share)
    env.run(until=300.0)
    assert 0 <= pool.up <= hi
    assert pool.up + pool.provisioning <= hi


def test_lost_transcoders_put_streams_down_until_capacity_returns(cal) -> None:
    env = simpy.Environment()
    gpu = NodePool(env, "gpu", nodes=100, min_nodes=0, max_nodes=400, provisioning_s=cal.gpu_provisioning_s)
    cpu = NodePool(env, "cpu", nodes=0, min_nodes=0, max_nodes=0, provisioning_s=cal.cpu_provisioning_s)
    fleet = TranscoderFleet(cal, gpu, cpu, full=2000, source=0, rng=np.random.default_rng(1))
    assert fleet.down_fraction("full") == 0.0
    gpu.fail(0.5)
    fleet.place(now=1.0)
    lost = fleet.down_fraction("full")
    assert lost == (2000 - 50 * int(cal.gpu_streams_full)) / 2000
    gpu.request(50)
    env.run(until=cal.gpu_provisioning_s + 1.0)
    fleet.place(now=cal.gpu_provisioning_s + 1.0)
    assert fleet.placed["full"] == 2000
    assert fleet.down_fraction("full") == lost  # placed again, but still warming up
    fleet.place(now=cal.gpu_provisioning_s + 1.0 + cal.transcode_start_s)
    assert fleet.down_fraction("full") == 0.0


@settings(max_examples=60, deadline=None)
@given(
    gpu_nodes=st.integers(0, 300),
    cpu_nodes=st.integers(0, 300),
    full=st.integers(0, 5000),
    source=st.integers(0, 50000),
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("churn"), st.floats(1000.0, 60000.0), st.floats(0.0, 1.0)),
            st.tuples(st.just("fail"), st.floats(0.0, 1.0), st.sampled_from(["gpu", "cpu"])),
            st.tuples(st.just("boot"), st.integers(0, 100), st.sampled_from(["gpu", "cpu"])),
        ),
        max_size=30,
    ),
)
def test_fleet_placement_invariants_hold_under_any_churn_and_failures(
    cal, gpu_nodes: int, cpu_nodes: int, full: int, source: int, ops: list
) -> None:
    env = simpy.Environment()
    gpu = NodePool(env, "gpu", gpu_nodes, 0, 1000, provisioning_s=5.0)
    cpu = NodePool(env, "cpu", cpu_nodes, 0, 1000, provisioning_s=5.0)
    fleet = TranscoderFleet(cal, gpu, cpu, full=full, source=source, rng=np.random.default_rng(0))
    now = 0.0
    for op in ops:
        now += 1.0
        if op[0] == "churn":
            fleet.churn(1.0, op[1], op[2])
        elif op[0] == "fail":
            (gpu if op[2] == "gpu" else cpu).fail(op[1])
        else:
            (gpu if op[2] == "gpu" else cpu).request(op[1])
        env.run(until=now)
        fleet.place(now)
        cap = fleet.capacity()
        gpu_util, cpu_util = fleet.utilization()
        assert gpu_util <= 1.0 + 1e-9 and cpu_util <= 1.0 + 1e-9
        for ladder in ("full", "source"):
            assert 0 <= fleet.placed[ladder] <= fleet.demand[ladder]
            assert fleet.placed[ladder] == min(fleet.demand[ladder], cap[ladder])
            assert fleet.restarting_count[ladder] >= 0
            assert 0.0 <= fleet.down_fraction(ladder) <= 1.0
    assert fleet.initial + fleet.started_total - fleet.stopped_total == fleet.live

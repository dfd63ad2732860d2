"""Any scenario the parser accepts runs to the end: the model never crashes on valid input."""

from __future__ import annotations

import dataclasses
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twin.run import simulate
from twin.scenario.schema import Fault, PoolSpec
from twin.summary import summarize

from .conftest import shortened

pools = st.builds(
    lambda n, extra: PoolSpec(nodes=n, min_nodes=0, max_nodes=n + extra),
    st.integers(0, 400),
    st.integers(0, 400),
)
faults = st.lists(
    st.one_of(
        st.builds(
            Fault,
            st.just("viral_spike"),
            st.floats(0, 50),
            st.floats(0, 50),
            stream_rank=st.integers(1, 3000),
            factor=st.floats(0.01, 100.0),
            ramp_s=st.floats(0, 30),
        ),
        st.builds(
            Fault,
            st.just("transcoder_loss"),
            st.floats(0, 50),
            st.just(0.0),
            node_type=st.sampled_from(["gpu", "cpu"]),
            share=st.floats(0, 1),
        ),
        st.builds(
            Fault,
            st.just("chat_storm"),
            st.floats(0, 50),
            st.floats(1, 50),
            stream_rank=st.integers(1, 3000),
            messages_per_s=st.floats(0, 1e6),
            share=st.floats(0, 1),
        ),
        st.builds(
            Fault, st.just("ad_break"), st.floats(0, 50), st.floats(1, 120), stream_rank=st.integers(1, 3000)
        ),
    ),
    max_size=4,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], report_multiple_bugs=False
)
@given(
    gpu=pools,
    cpu=pools,
    origin=pools,
    chat=pools,
    ad_servers=st.integers(1, 50),
    viewers=st.floats(1.0, 1e8),
    streamers=st.integers(3000, 50_000),
    full_share=st.floats(0.0, 1.0),
    outage=st.booleans(),
    fault_list=faults,
)
def test_any_valid_scenario_runs_to_the_end_with_finite_results(
    cal, gpu, cpu, origin, chat, ad_servers, viewers, streamers, full_share, outage, fault_list
) -> None:
    sc = shortened(
        "baseline", 60.0, tracers=3, viewers=viewers, streamers=streamers, full_ladder_share=full_share
    )
    extra = [Fault("region_outage", 10.0, 20.0, region="eu")] if outage else []
    sc = dataclasses.replace(
        sc,
        fleet=dataclasses.replace(
            sc.fleet, gpu=gpu, cpu=cpu, origin=origin, chat=chat, ad_servers=ad_servers
        ),
        faults=tuple(fault_list) + tuple(extra),
    )
    s = summarize(simulate(sc, seed=0, calibration=cal))
    assert 0.0 <= s["availability"] <= 1.0 + 1e-12
    assert math.isfinite(s["peak_egress_tbps"]) and math.isfinite(s["cost"]["total_usd"])
    assert s["viewers"]["initial"] + s["viewers"]["arrived"] >= s["viewers"]["present_end"] - 1e-6

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twin.model.regions import LEGAL, Regions, RegionState, RegionStateError


def test_outage_then_failover_then_recovery() -> None:
    regions = Regions([1, 0], extra_rtt_s=0.08)
    assert regions.serving(0) == (0, 0.0)
    regions.apply(0, "outage")
    assert regions.serving(0) == (-1, 0.0)  # until DNS failover nobody serves it
    regions.apply(0, "failover")
    assert regions.serving(0) == (1, 0.08)
    regions.apply(0, "recover")
    assert regions.serving(0) == (0, 0.0)


def test_failover_target_down_too_leaves_viewers_unserved() -> None:
    regions = Regions([1, 0], extra_rtt_s=0.08)
    regions.apply(0, "outage")
    regions.apply(0, "failover")
    regions.apply(1, "outage")
    assert regions.serving(0) == (-1, 0.0)


def test_illegal_transition_is_a_local_error() -> None:
    regions = Regions([1, 0], extra_rtt_s=0.0)
    with pytest.raises(RegionStateError, match="failover"):
        regions.apply(0, "failover")


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["outage", "failover", "recover"])), max_size=40)
)
def test_any_event_sequence_follows_the_table(events: list[tuple[int, str]]) -> None:
    regions = Regions([1, 2, 0], extra_rtt_s=0.05)
    for region, event in events:
        before = regions.states[region]
        if (before, event) in LEGAL:
            assert regions.apply(region, event) is LEGAL[(before, event)]
        else:
            with pytest.raises(RegionStateError):
                regions.apply(region, event)
            assert regions.states[region] is before
        for home in range(3):
            served, extra = regions.serving(home)
            if regions.states[home] is RegionState.UP:
                assert (served, extra) == (home, 0.0)
            elif served >= 0:
                assert regions.states[served] is RegionState.UP and extra == 0.05

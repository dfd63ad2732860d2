"""Rendition choice from REMB estimates: straight down, one rung up after a settled surplus."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from live.webrtc.abr import AbrPolicy, RenditionChooser, RenditionOption, start_rendition

LADDER = [RenditionOption("160p30", 275_000), RenditionOption("360p30", 770_000),
          RenditionOption("720p30", 2_750_000)]


def test_the_first_rendition_is_the_best_under_the_start_budget() -> None:
    assert start_rendition(LADDER, 2_500_000) == "360p30"
    assert start_rendition(LADDER, 10_000_000) == "720p30"
    assert start_rendition(LADDER, 1) == "160p30"


def test_a_falling_estimate_below_the_rung_drops_straight_to_the_best_that_fits() -> None:
    chooser = RenditionChooser(LADDER, "720p30", now=0.0)
    assert chooser.on_estimate(3_500_000, now=0.1) is None
    assert chooser.on_estimate(1_000_000, now=0.2) == "360p30"
    chooser = RenditionChooser(LADDER, "720p30", now=0.0)
    chooser.on_estimate(3_500_000, now=0.1)
    assert chooser.on_estimate(100_000, now=0.2) == "160p30"


def test_a_steady_short_estimate_drops_only_after_two_settle_periods() -> None:
    chooser = RenditionChooser(LADDER, "720p30", AbrPolicy(settle_s=3.0), now=0.0)
    assert chooser.on_estimate(1_000_000, now=1.0) is None
    assert chooser.on_estimate(1_000_000, now=5.9) is None
    assert chooser.on_estimate(1_000_000, now=6.0) == "360p30"


def test_going_up_takes_one_rung_after_the_surplus_has_lasted() -> None:
    chooser = RenditionChooser(LADDER, "160p30", AbrPolicy(settle_s=3.0), now=0.0)
    assert chooser.on_estimate(400_000, now=1.0) is None
    assert chooser.on_estimate(400_000, now=3.9) is None
    assert chooser.on_estimate(400_000, now=4.0) == "360p30"  # one rung, above the estimate
    assert chooser.on_estimate(1_100_000, now=4.5) is None  # settling after the switch
    assert chooser.on_estimate(1_100_000, now=7.4) is None
    assert chooser.on_estimate(1_100_000, now=7.6) == "720p30"


def test_a_surplus_that_stops_resets_the_wait() -> None:
    chooser = RenditionChooser(LADDER, "160p30", AbrPolicy(settle_s=2.0), now=-10.0)
    chooser.on_estimate(400_000, now=0.0)
    chooser.on_estimate(300_000, now=1.0)
    assert chooser.on_estimate(400_000, now=2.5) is None
    assert chooser.on_estimate(400_000, now=4.5) == "360p30"


def test_a_retired_target_falls_back_to_the_lowest() -> None:
    chooser = RenditionChooser(LADDER, "720p30")
    chooser.update_options(LADDER[:2])
    assert chooser.target == "160p30"


@given(st.lists(st.tuples(st.floats(1e3, 1e8), st.floats(0, 2)), max_size=50))
def test_the_target_is_always_a_ladder_rung_and_fits_after_a_drop(steps: list[tuple[float, float]]) -> None:
    chooser = RenditionChooser(LADDER, "360p30")
    now = 0.0
    names = {o.name for o in LADDER}
    for estimate, dt in steps:
        now += dt
        before = chooser.target
        switched = chooser.on_estimate(estimate, now)
        assert chooser.target in names
        rank = [o.name for o in LADDER]
        if switched is not None and switched != "160p30" and rank.index(switched) < rank.index(before):
            bandwidth = next(o.bandwidth_bps for o in LADDER if o.name == switched)
            assert bandwidth <= estimate

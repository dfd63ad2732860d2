"""The full design-scale run: 1M streamers, 100M viewers, 1M on the top stream going 10x.

Slow (one simulated hour); its wall time is measured by bench/twin_speed.py, not asserted here.
"""

from __future__ import annotations

import pytest

from twin.run import simulate
from twin.scenario.reader import load_scenario
from twin.summary import summarize

from .conftest import SCENARIOS


@pytest.mark.slow
def test_peak_100m_carries_the_design_scale_and_meets_every_slo(cal) -> None:
    s = summarize(simulate(load_scenario(SCENARIOS / "peak-100m.yaml"), seed=1, calibration=cal))
    assert s["viewers"]["peak"] >= 100e6
    assert s["streams"]["peak_live"] >= 0.99e6
    spike = s["fault_effects"][0]
    assert spike["stream_viewers_before"] == pytest.approx(1e6, rel=0.01)
    assert spike["stream_growth"] == pytest.approx(10.0, rel=0.01)
    assert spike["origin_rps_growth"] < 1.01
    assert s["all_slos_pass"], s["slos"]
    assert s["peak_egress_tbps"] > 400

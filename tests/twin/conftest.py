"""Shared helpers for the twin tests: shortened copies of the shipped scenarios."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from twin.calibration.parameters import Calibration, load_calibration
from twin.scenario.reader import load_scenario
from twin.scenario.schema import Scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"


@pytest.fixture(scope="session")
def cal() -> Calibration:
    return load_calibration()


def shortened(name: str, duration_s: float, tracers: int = 20, **workload: float) -> Scenario:
    """A shipped scenario cut to `duration_s` with fewer tracers, so tests stay cheap."""
    sc = load_scenario(SCENARIOS / f"{name}.yaml")
    return dataclasses.replace(
        sc, duration_s=duration_s, workload=dataclasses.replace(sc.workload, tracers=tracers, **workload)
    )

"""Run a scenario and write its run directory: CSV tables, summary.json, timing.json.

This is the I/O shell around the model: it loads the scenario and calibration, runs the
`Twin`, and writes plain files. `twin.cli` then has `reports` render report.html from those
files alone, so a run directory can be re-rendered or compared later without re-running.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from twin.calibration.parameters import Calibration, load_calibration
from twin.model.records import RunResult
from twin.model.twin import Twin
from twin.scenario.reader import load_scenario
from twin.scenario.schema import Scenario
from twin.summary import latency_table, summarize


def simulate(
    scenario: Scenario, seed: int, calibration: Calibration | None = None, progress: bool = False
) -> RunResult:
    """Run the model in memory (tests use this); `progress` shows a tqdm bar on stderr."""
    twin = Twin(scenario, calibration or load_calibration(), seed)
    if not progress:
        return twin.run()
    from tqdm import tqdm

    with tqdm(total=scenario.duration_s, unit="sim-s", desc=scenario.name, leave=False) as bar:

        def advance(t: float) -> None:
            bar.update(t - bar.n)

        twin.progress = advance
        return twin.run()


def write_run(result: RunResult, out: Path, timing: dict[str, Any] | None = None) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(result)
    pd.DataFrame(result.rows).to_csv(out / "timeseries.csv", index=False)
    pd.DataFrame(latency_table(result)).to_csv(out / "latency.csv", index=False)
    pd.DataFrame(result.tiers).to_csv(out / "tiers.csv", index=False)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if timing is not None:
        (out / "timing.json").write_text(
            json.dumps(timing, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    return summary


def run_scenario(
    path: str | Path,
    out: str | Path,
    seed: int | None = None,
    progress: bool = False,
    calibration: str | Path | None = None,
) -> dict[str, Any]:
    """Simulate the scenario file at `path`; write its run directory `out` (no report: CLIs render)."""
    scenario = load_scenario(path)
    parameters = load_calibration(calibration)
    seed = 1 if seed is None else seed
    started = time.perf_counter()
    result = simulate(scenario, seed, parameters, progress)
    wall = time.perf_counter() - started
    timing = {
        "wall_s": wall,
        "simpy_events": result.events,
        "events_per_s": result.events / wall if wall else 0.0,
    }
    return write_run(result, Path(out), timing)

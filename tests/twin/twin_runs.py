"""Real run directories whose numbers come from the correctly calibrated twin (test data).

`loadgen run` writes the same files from the real platform; these let the calibration and
validation loops be tested without one: the twin, run as the small deployment with a known
calibration and seed, stands in for the measurement, so what a fit should recover and what a
mis-calibrated twin should miss is known exactly.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

from twin.calibration.parameters import Calibration
from twin.scenario.reader import parse_scenario
from twin.scenario.schema import RealSpec
from twin.validation.deployment import predict
from twin.validation.rundir import TIMESERIES_COLUMNS

from .conftest import SCENARIOS

REAL = """real:
  duration_s: 60
  warmup_s: 10
  channels: 2
  viewers: 40
  viewer_shares: [0.75, 0.25]
  chatters: 10
  chat_messages_per_s: 4
  faults:
    - {kind: viral_spike, at_s: 25, stream_rank: 1, factor: 3, ramp_s: 10, duration_s: 15}
    - {kind: worker_kill, at_s: 55, stream_rank: 2}
"""


def scenario_text(real: str = REAL) -> str:
    text = (SCENARIOS / "baseline.yaml").read_text(encoding="utf-8")
    return text.split("\nreal:")[0].rstrip("\n") + "\n" + real  # the shipped real: replaced


def real_spec(real: str = REAL) -> RealSpec:
    spec = parse_scenario(scenario_text(real), "demo.yaml").real
    assert spec is not None
    return spec


def write_twin_run(
    path: Path,
    spec: RealSpec,
    cal: Calibration,
    seed: int = 7,
    clock: str = "playout",
    run_id: str = "twin-run",
) -> Path:
    """A run directory in the docs/validation.md layout, its numbers from `predict(spec, cal)`."""
    pred = predict(spec, cal, seed=seed, clock=clock)
    path.mkdir(parents=True, exist_ok=True)
    measured = dict(pred.measured)
    measured["cpu_cores"] = {**measured["cpu_cores"], "loadgen": 0.5}
    measured["transcode_delay_s"] = {"p50": cal.transcode_latency_s, "p95": cal.transcode_latency_s * 1.2}
    (path / "measured.json").write_text(
        json.dumps(
            {
                "schema": 1,
                "kind": "real",
                "scenario": "demo",
                "window_s": list(pred.window_s),
                "load": {"channels": spec.channels, "ladder": spec.ladder, "viewers_mean": spec.viewers},
                "measured": measured,
            }
        ),
        encoding="utf-8",
    )
    (path / "run.json").write_text(
        json.dumps(
            {
                "run_id": run_id,
                "scenario": "demo",
                "started_at": "2025-01-01T00:00:00Z",
                "command": "twin-generated test data",
                "machine": {"hostname": "testbox", "cpus": 2, "cpu_model": "twin"},
                "real": dataclasses.asdict(spec),
            }
        ),
        encoding="utf-8",
    )
    restarted = False  # the column counts restarts so far
    with (path / "timeseries.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=TIMESERIES_COLUMNS)
        w.writeheader()
        for r in pred.rows:
            restarted = restarted or r["transcode_restarts"] > 0
            w.writerow(
                {
                    **{c: r[c] for c in TIMESERIES_COLUMNS if c in r},
                    "chatters": spec.chatters,
                    "cpu_loadgen": 0.5,
                    "transcode_restarts": 1.0 if restarted else 0.0,
                }
            )
    return path

"""The I/O shell of `twin validate`: read a real run, run the twin as the small deployment, write.

Writes into the output directory: validation.json (checks, both summaries, provenance),
validation.txt (the table as printed) and predicted_timeseries.csv (the twin's per-second
rows in the real run's columns). Performing the real run is `loadgen run`'s business and
validation.html is `reports.validation`'s: the CLIs call them, so twin never imports loadgen
or reports.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from twin.calibration.parameters import SHIPPED, load_calibration
from twin.scenario.reader import load_scenario
from twin.scenario.schema import RealSpec, Scenario
from twin.validation.checks import Check, compare, format_table
from twin.validation.deployment import predict
from twin.validation.rundir import RealRun, RunDirError, read_run

PREDICTED_COLUMNS = (
    "t_s",
    "viewers",
    "origin_rps",
    "held_requests",
    "chat_deliveries_per_s",
    "cpu_platform",
    "cpu_transcode",
    "transcode_restarts",
    "edge_rps",
    "shield_rps",
    "edge_hit_ratio",
)


def _same_load(a: RealSpec, b: RealSpec) -> bool:
    return dataclasses.replace(a, bands=b.bands) == b


def _probe_rendition(run: RealRun) -> str:
    """Whether the probe watched a transcoded rung: run.json may say so; else the ladder decides."""
    probe = run.run.get("probe")
    name = probe.get("rendition") if isinstance(probe, dict) else run.run.get("probe_rendition")
    if isinstance(name, str) and name in ("source", "passthrough"):
        return "passthrough"
    return "transcoded"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def real_scenario(scenario_path: Path) -> Scenario:
    """The scenario at `scenario_path`, which must have a `real:` section to run or validate against."""
    scenario = load_scenario(scenario_path)
    if scenario.real is None:
        raise RunDirError(f"{scenario_path}: has no real: section to run or validate against")
    return scenario


def validate_run(
    scenario_path: Path,
    out: Path,
    run_dir: Path,
    calibration: Path | None = None,
    seed: int = 1,
) -> tuple[list[Check], dict[str, Any]]:
    """Compare the twin with the real run of the scenario in `run_dir`; write the files into `out`."""
    scenario = real_scenario(scenario_path)
    assert scenario.real is not None
    parameters = load_calibration(calibration)
    out.mkdir(parents=True, exist_ok=True)
    run = read_run(run_dir)
    spec = run.spec or scenario.real
    if not _same_load(spec, scenario.real):
        raise RunDirError(
            f"{run.path}/run.json: real: the run was made from a different real: section than {scenario_path}"
        )
    clock = str(run.measured["measured"].get("glass_to_glass_s", {}).get("clock", "playout"))
    prediction = predict(
        spec, parameters, seed=seed, clock=clock, name=scenario.name, probe_rendition=_probe_rendition(run)
    )
    checks = compare(
        prediction.measured, run.measured["measured"], scenario.real.bands, cdn=spec.cdn is not None
    )
    notes = []
    if (prediction.window_s[0], prediction.window_s[1]) != run.window:
        notes.append(
            f"the run measured {run.window[0]:g}-{run.window[1]:g} s; the twin's window is "
            f"{prediction.window_s[0]:g}-{prediction.window_s[1]:g} s (warmup_s, warmup_s + duration_s)"
        )
    payload: dict[str, Any] = {
        "schema": 1,
        "scenario": scenario.name,
        "scenario_file": str(scenario_path),
        "run_dir": str(run.path.resolve()),
        "run_id": run.run_id,
        "machine": run.machine,
        "calibration": str(calibration) if calibration else SHIPPED,
        "seed": seed,
        "clock": clock,
        "window_s": list(prediction.window_s),
        "bands": dataclasses.asdict(scenario.real.bands),
        "checks": [c.as_dict() for c in checks],
        "all_in_band": all(c.ok for c in checks),
        "predicted": _clean(prediction.measured),
        "measured": _clean(run.measured["measured"]),
        "notes": notes,
    }
    (out / "validation.json").write_text(
        json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    (out / "validation.txt").write_text(format_table(checks) + "\n", encoding="utf-8")
    rows = [{k: r.get(k, math.nan) for k in PREDICTED_COLUMNS} for r in prediction.rows]
    pd.DataFrame(rows, columns=list(PREDICTED_COLUMNS)).to_csv(out / "predicted_timeseries.csv", index=False)
    return checks, payload


def verdict_text(checks: list[Check], payload: dict[str, Any], out: Path) -> str:
    """What `twin validate` (and `loadgen run --validate`) print: the table, notes and verdict."""
    lines = [
        f"{payload['scenario']}: twin (small deployment) vs real run {payload['run_id']} "
        f"({payload['machine']})",
        format_table(checks),
        *(f"note: {note}" for note in payload["notes"]),
        f"{'every metric in band' if payload['all_in_band'] else 'OUT OF BAND'} -> {out}/validation.html",
    ]
    return "\n".join(lines)

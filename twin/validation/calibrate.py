"""`twin calibrate RUN_DIR...`: fit the twin's per-unit costs from measured real runs.

Two regressions over the per-second rows of every run (twin.calibration.fit: non-negative least squares
with an identifiability check):

    cpu_platform  ~ platform_idle_cores + origin_cpu_s_per_request x origin_rps
                    + chat_cpu_s_per_delivery x chat_deliveries_per_s
                    + held_request_cpu_s x held_requests
                    + ingest_cpu_s_per_mbit x (channels x Mbit/s ingested and packaged per channel)
    cpu_transcode ~ transcode_core_s_per_mpixel x (channels x Mpixel/s decoded + encoded per channel)

Rows within `RESTART_GUARD_S` of a transcode worker restart are left out of the transcode fit
(the dead worker's CPU and the new one's start-up are not steady state). The latency parts
come from measured.json: `transcode_latency_s` is the mean measured transcode delay p50, and
`publisher_encode_s` takes up what is left of the probe's glass-to-glass p50 once the twin
(run as the small deployment with the fitted costs) has accounted for the rest. What a fit
cannot identify keeps its base value and source. The big-fleet capacities are re-derived from
fitted costs (`derived_capacities`) for the stated node sizes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from twin.calibration.fit import Fit, fit_costs
from twin.calibration.parameters import Calibration, derived_capacities, parse_calibration
from twin.validation.deployment import predict, stream_load
from twin.validation.rundir import RealRun

SKIP_FIRST_S = 3.0  # process start-up transients at the start of a run
RESTART_GUARD_S = 5.0
PLATFORM_TERMS = (
    ("platform_idle_cores", "1"),
    ("origin_cpu_s_per_request", "origin_rps"),
    ("chat_cpu_s_per_delivery", "chat_deliveries_per_s"),
    ("held_request_cpu_s", "held_requests"),
    ("ingest_cpu_s_per_mbit", "ingest_mbit_per_s"),
)
DERIVED_FROM = {
    "cpu_streams_full": "transcode_core_s_per_mpixel",
    "origin_rps_per_server": "origin_cpu_s_per_request",
    "chat_deliveries_per_node": "chat_cpu_s_per_delivery",
}


class CalibrateError(ValueError):
    """The runs cannot calibrate anything (too few rows, no real: section)."""


@dataclass(slots=True)
class Calibrated:
    """What `calibrate` found: new values with their provenance, the fits, and notes."""

    values: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    fits: dict[str, Fit] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _rows(run: RealRun) -> list[dict[str, float]]:
    end = run.window[1]
    return [r for r in run.rows if SKIP_FIRST_S <= r["t_s"] <= end]


def platform_columns(runs: list[RealRun]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    cols: dict[str, list[float]] = {name: [] for name, _ in PLATFORM_TERMS}
    y: list[float] = []
    for run in runs:
        assert run.spec is not None
        _, mbit = stream_load(run.spec)
        for r in _rows(run):
            values = {
                "1": 1.0,
                "origin_rps": r["origin_rps"],
                "chat_deliveries_per_s": r["chat_deliveries_per_s"],
                "held_requests": r["held_requests"],
                "ingest_mbit_per_s": mbit * run.spec.channels,
            }
            if not all(math.isfinite(v) for v in values.values()) or not math.isfinite(r["cpu_platform"]):
                continue
            for name, key in PLATFORM_TERMS:
                cols[name].append(values[key])
            y.append(r["cpu_platform"])
    return {k: np.array(v) for k, v in cols.items()}, np.array(y)


def transcode_columns(runs: list[RealRun]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    x: list[float] = []
    y: list[float] = []
    for run in runs:
        assert run.spec is not None
        mpixels, _ = stream_load(run.spec)
        rows = _rows(run)
        restarts = [
            b["t_s"]
            for a, b in zip(run.rows, run.rows[1:], strict=False)
            if b["transcode_restarts"] != a["transcode_restarts"]
        ]
        for r in rows:
            if any(t - 1.0 <= r["t_s"] <= t + RESTART_GUARD_S for t in restarts):
                continue
            if math.isfinite(r["cpu_transcode"]):
                x.append(mpixels * run.spec.channels)
                y.append(r["cpu_transcode"])
    return {"transcode_core_s_per_mpixel": np.array(x)}, np.array(y)


def _mean_finite(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan


def calibrate(runs: list[RealRun], base: Calibration, provenance: str, seed: int = 1) -> Calibrated:
    """Fit the per-unit costs and latency parts from `runs`; `provenance` goes into each source."""
    if not runs:
        raise CalibrateError("no run directories given")
    for run in runs:
        if run.spec is None:
            raise CalibrateError(
                f"{run.path}/run.json: real: the section as run is missing; cannot model the load"
            )
    out = Calibrated()
    cols, y = platform_columns(runs)
    if y.size < 5:
        raise CalibrateError(f"only {y.size} usable per-second rows across the runs; need at least 5")
    fit = fit_costs(cols, y, {name: getattr(base, name) for name in cols})
    out.fits["cpu_platform"] = fit
    quality = f"R^2 {fit.r2:.3f}, rms {fit.rms:.4f} cores over {fit.n} rows"
    for name in fit.fitted:
        out.values[name] = fit.coef[name]
        out.sources[name] = f"{provenance}; fit of cpu_platform ({quality})"
    tcols, ty = transcode_columns(runs)
    if ty.size and np.any(tcols["transcode_core_s_per_mpixel"]):
        tfit = fit_costs(tcols, ty, {"transcode_core_s_per_mpixel": base.transcode_core_s_per_mpixel})
        out.fits["cpu_transcode"] = tfit
        tq = f"R^2 {tfit.r2:.3f}, rms {tfit.rms:.4f} cores over {tfit.n} rows"
        for name in tfit.fitted:
            out.values[name] = tfit.coef[name]
            out.sources[name] = f"{provenance}; fit of cpu_transcode ({tq})"
    else:
        out.notes.append("transcode_core_s_per_mpixel: no run transcoded (ladder: source); base kept")
    delays = [
        r.value("transcode_delay_s", "p50") for r in runs if r.spec is not None and r.spec.ladder == "full"
    ]
    delay = _mean_finite(delays)
    if math.isfinite(delay) and delay > 0:
        out.values["transcode_latency_s"] = delay
        out.sources["transcode_latency_s"] = f"{provenance}; mean measured transcode delay p50 over the runs"
    else:
        out.notes.append("transcode_latency_s: no run measured a transcode delay; base kept")
    _fit_publisher(runs, base, out, provenance, seed)
    out.notes.append("transcode_restart_s: run directories do not time a worker's restart; base kept")
    calibration = apply(base, out.values)
    derived = derived_capacities(calibration)
    for name, unit_cost in DERIVED_FROM.items():
        if unit_cost in out.values:
            out.values[name] = derived[name]
            out.sources[name] = (
                f"derived: {', '.join(_node_size(name))} / per-unit cost {unit_cost} (measured, above); "
                "assumes the cost scales linearly across the node's cores"
            )
    return out


def _node_size(name: str) -> list[str]:
    return {
        "cpu_streams_full": ["cpu_node_cores x the calibration ladder's Mpixel/s"],
        "origin_rps_per_server": ["origin_node_cores", "with held_request_cpu_s x part_s/2 per request"],
        "chat_deliveries_per_node": ["chat_node_cores"],
    }[name]


LATENCY_FLOOR_S = 0.005  # no latency part is ever fitted below 5 ms (a frame is 17-33 ms)


def _fit_publisher(
    runs: list[RealRun], base: Calibration, out: Calibrated, provenance: str, seed: int
) -> None:
    """publisher_encode_s: the probe's measured g2g p50 minus what the twin accounts for."""
    calibration = apply(base, out.values)
    gaps = []
    for run in runs:
        assert run.spec is not None
        measured = run.value("glass_to_glass_s", "p50")
        clock = str(run.measured["measured"].get("glass_to_glass_s", {}).get("clock", "playout"))
        if not math.isfinite(measured):
            continue
        predicted = predict(run.spec, calibration, seed=seed, clock=clock).measured["glass_to_glass_s"]["p50"]
        if math.isfinite(predicted):
            gaps.append(measured - predicted)
    if not gaps:
        out.notes.append("publisher_encode_s: no run measured glass-to-glass; base kept")
        return
    value = base.publisher_encode_s + float(np.mean(gaps))
    if value < LATENCY_FLOOR_S:
        # The unmeasured parts the twin adds besides the publisher (the probe's decode,
        # `display_s`, an assumption) already exceed the measurement: take the rest from there.
        display = calibration.display_s + value - LATENCY_FLOOR_S
        if display < LATENCY_FLOOR_S:
            out.notes.append(
                f"publisher_encode_s: the twin over-predicts g2g p50 by {LATENCY_FLOOR_S - value:.3f} s "
                "more than the publisher's and the decoder's shares together; base kept"
            )
            return
        out.values["display_s"] = display
        out.sources["display_s"] = (
            f"{provenance}; residual of the probe's glass-to-glass p50 once publisher_encode_s is at its "
            f"floor ({LATENCY_FLOOR_S:g} s): the base {calibration.display_s:g} s over-counted the "
            "probe's decode"
        )
        out.notes.append(
            f"publisher_encode_s: residual {value:.3f} s below the floor; set to {LATENCY_FLOOR_S:g} s and "
            f"display_s lowered from {calibration.display_s:g} s to {display:.3f} s"
        )
        value = LATENCY_FLOOR_S
    out.values["publisher_encode_s"] = value
    out.sources["publisher_encode_s"] = (
        f"{provenance}; residual of the probe's glass-to-glass p50 after the twin's other parts "
        "(publisher encode + probe decode)"
    )


def apply(base: Calibration, values: dict[str, float]) -> Calibration:
    changes: dict[str, Any] = dict(values)
    return dataclasses.replace(base, **changes)


def write_calibration(base_raw: dict[str, Any], result: Calibrated, out: Path, header: str) -> None:
    """Write the base YAML with the calibrated entries replaced; the file must load again."""
    data = {"fleet_source": base_raw["fleet_source"], "params": dict(base_raw["params"])}
    for name, value in result.values.items():
        entry = dict(data["params"][name])
        entry["value"] = float(f"{value:.6g}")
        entry["source"] = result.sources[name]
        data["params"][name] = entry
    parse_calibration(data, str(out))  # never write a file the loader would refuse
    text = yaml.safe_dump(data, sort_keys=False, width=1000, default_flow_style=None)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"# {line}\n" for line in header.splitlines()) + text, encoding="utf-8")


def report(result: Calibrated, base: Calibration) -> str:
    """Plain-text fit report: per fit, quality and each parameter's value (fitted or kept, why)."""
    lines = []
    for target, fit in result.fits.items():
        r2 = f"{fit.r2:.3f}" if math.isfinite(fit.r2) else "n/a (the measured CPU did not vary)"
        lines.append(
            f"{target}: R^2 {r2}, residual rms {fit.rms:.4f} cores, max {fit.max_abs:.4f}, {fit.n} rows"
        )
        for name, value in fit.coef.items():
            if name in fit.fitted:
                lines.append(f"  {name:32s} {value:.6g}  (fitted; base {getattr(base, name):.6g})")
            else:
                lines.append(f"  {name:32s} {value:.6g}  (base kept: {fit.kept[name]})")
    for name in ("transcode_latency_s", "publisher_encode_s", *DERIVED_FROM):
        if name in result.values:
            lines.append(f"{name:34s} {result.values[name]:.6g}  (base {getattr(base, name):.6g})")
    lines.extend(f"note: {n}" for n in result.notes)
    return "\n".join(lines)

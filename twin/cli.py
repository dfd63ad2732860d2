"""`twin`: run scenarios through the digital twin, compare runs, calibrate and validate the twin."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from twin.calibration.parameters import CalibrationError
from twin.scenario.nodes import ScenarioError
from twin.validation.rundir import RunDirError


def _run(args: argparse.Namespace) -> int:
    from twin.run import run_scenario

    out = Path(args.out) if args.out else Path("reports/out") / Path(args.scenario).stem
    try:
        summary = run_scenario(
            args.scenario,
            out,
            seed=args.seed,
            progress=not args.quiet,
            calibration=args.calibration,
        )
    except (ScenarioError, CalibrationError) as exc:
        print(f"twin: {exc}", file=sys.stderr)
        return 2
    if not args.no_report:
        from reports.html import render_report

        render_report(out)
    timing = json.loads((out / "timing.json").read_text(encoding="utf-8"))
    for slo in summary["slos"]:
        verdict = "PASS" if slo["pass"] else "FAIL"
        print(f"{verdict}  {slo['slo']}: measured {slo['measured']} {slo['op']} target {slo['target']}")
    print(
        f"peak egress {summary['peak_egress_tbps']:.1f} Tbit/s, cost/viewer-hour "
        f"{summary['cost']['per_viewer_hour_usd']:.5f} USD, {timing['simpy_events']} SimPy events in "
        f"{timing['wall_s']:.1f} s ({timing['events_per_s']:.0f}/s) -> {out}"
    )
    if args.replications > 1:
        return _replicate(args, out)
    return 0 if summary["all_slos_pass"] or not args.strict else 1


def _progress_bar(total: int, desc: str, unit: str) -> Any:
    """A tqdm bar on stderr with an ETA (tqdm estimates it from the pace so far)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, smoothing=0.1)


def _replicate(args: argparse.Namespace, out: Path) -> int:
    from twin.calibration.parameters import load_calibration
    from twin.replications import run_replications
    from twin.scenario.reader import load_scenario

    scenario = load_scenario(args.scenario)
    calibration = load_calibration(args.calibration)
    bar = None if args.quiet else _progress_bar(args.replications, "replications", "run")

    def advance(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    try:
        rep = run_replications(
            scenario,
            calibration,
            args.replications,
            first_seed=1 if args.seed is None else args.seed,
            scheduler=args.scheduler,
            workers=args.workers,
            progress=advance,
        )
    finally:
        if bar is not None:
            bar.close()
    (out / "replications.json").write_text(json.dumps(rep, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if not args.no_report:
        from reports.html import render_report

        render_report(out)
    print(f"{rep['replications']} replications, 95 % confidence (Student t):")
    for slo in rep["slos"]:
        print(
            f"{slo['verdict']:9s} {slo['slo']}: mean {_fmt(slo['mean'])} "
            f"[{_fmt(slo['ci_low'])}, {_fmt(slo['ci_high'])}] {slo['op']} target {slo['target']}"
        )
    print(
        f"{rep['twin_hours']:.1f} twin-hours in {rep['timing']['wall_s']:.1f} s on "
        f"{rep['timing']['workers']} worker(s) -> {out / 'replications.json'}"
    )
    return 0 if rep["all_slos_pass"] or not args.strict else 1


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _plan(args: argparse.Namespace) -> int:
    import math

    from reports.plan import render_plan
    from twin.calibration.parameters import load_calibration
    from twin.plan import Planner, knobs, plan, with_load
    from twin.replications import dask_client, dask_replicator, seeds
    from twin.scenario.reader import load_scenario

    try:
        scenario = load_scenario(args.scenario)
        calibration = load_calibration(args.calibration)
    except (ScenarioError, CalibrationError) as exc:
        print(f"twin: {exc}", file=sys.stderr)
        return 2
    if args.load != 1.0:
        scenario = with_load(scenario, args.load)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    all_knobs = knobs(scenario, calibration)
    tiers = args.tiers.split(",") if args.tiers else None
    searched = [k for k in all_knobs if tiers is None or k.tier in tiers]
    # an estimate for the ETA: ~log2(1/tolerance) + 2 fleets per tier, ~7 for the headroom, 2 more
    fleets = len(searched) * (math.ceil(math.log2(1 / args.tolerance)) + 2) + 9
    bar = None if args.quiet else _progress_bar(fleets * args.replications, "plan", "run")
    with dask_client(args.scheduler, min(args.workers, args.replications)) as client:
        replicator = dask_replicator(calibration, client, bar.update if bar is not None else None)
        planner = Planner(
            scenario,
            calibration,
            replicator,
            seeds(args.seed, args.replications),
            all_knobs,
            tolerance=args.tolerance,
        )
        try:
            result = plan(planner, tiers)
        finally:
            if bar is not None:
                bar.close()
    result["planned_for_load"] = args.load
    (out / "plan.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    render_plan(out)
    if not result["feasible"]:
        print(f"twin: no fleet meets every SLO: {', '.join(result['failing'])}", file=sys.stderr)
        return 1
    for t in result["tiers"]:
        print(
            f"{t['tier']:18s} {t['planned_nodes']:>9,} nodes "
            f"(scenario peak {t['scenario_nodes_peak']:,}): {t['binding']}"
        )
    print(
        f"cost {result['cost_usd']:.6g} USD, {result['cost_per_viewer_hour_usd']:.5f} USD/viewer-hour; "
        f"headroom {result['headroom_multiplier']:.2f}x {result['headroom_applies_to']}; "
        f"{result['twin_hours']:.1f} twin-hours ({result['replications_run']} replications of "
        f"{result['fleets_evaluated']} fleets) -> {out}"
    )
    return 0


def _compare(args: argparse.Namespace) -> int:
    from reports.compare import compare_runs

    try:
        text = compare_runs(Path(args.a), Path(args.b), html_out=Path(args.html) if args.html else None)
    except (OSError, ValueError) as exc:
        print(f"twin: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    import datetime
    import platform
    import shlex

    import yaml

    from twin.calibration.parameters import load_calibration, shipped_text
    from twin.validation.calibrate import CalibrateError, calibrate, report, write_calibration
    from twin.validation.rundir import read_run, run_dir_hash

    base_path = Path(args.base) if args.base else None
    try:
        base = load_calibration(base_path)
        raw_text = base_path.read_text(encoding="utf-8") if base_path else None
        runs = [read_run(d) for d in args.run_dirs]
    except (CalibrationError, RunDirError, OSError) as exc:
        print(f"twin: {exc}", file=sys.stderr)
        return 2
    if raw_text is None:
        raw_text = shipped_text()
    machines = sorted({r.machine for r in runs})
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    command = "twin calibrate " + " ".join(shlex.quote(a) for a in (args.argv or []))
    ids = ", ".join(r.run_id for r in runs)
    hashes = ", ".join(f"{r.run_id}={run_dir_hash(r.path)[:16]}" for r in runs)
    provenance = (
        f"measured: twin calibrate {ids} on {'; '.join(machines)} {today}; "
        f"run directories sha256 {hashes}; command: {command}"
    )
    try:
        result = calibrate(runs, base, provenance, seed=args.seed)
        out = Path(args.out)
        header = (
            f"Calibrated by `{command}` on {platform.node()} {today}\n"
            f"from real runs {ids} ({'; '.join(machines)}).\n"
            "Entries whose source starts with 'measured:' or 'derived:' come from those runs; the rest\n"
            f"are the base calibration's ({base_path or 'twin/calibration/calibration.yaml'})."
        )
        write_calibration(yaml.safe_load(raw_text), result, out, header)
    except (CalibrateError, CalibrationError, RunDirError, ScenarioError, ValueError) as exc:
        print(f"twin: {exc}", file=sys.stderr)
        return 2
    print(report(result, base))
    print(f"-> {out} ({len(result.values)} entries measured or derived)")
    return 0


def _perform_real_run(scenario: Path, out: Path, seed: int) -> int:
    """`loadgen run SCENARIO --out OUT` in a child process, its output streamed; its exit status."""
    if importlib.util.find_spec("loadgen") is None:
        raise RunDirError(
            "cannot perform the real run here (no loadgen); pass --run RUN_DIR from `loadgen run`"
        )
    argv = [sys.executable, "-m", "loadgen.cli", "run", str(scenario), "--out", str(out), "--seed", str(seed)]
    return subprocess.run(argv, check=False).returncode


def _validate(args: argparse.Namespace) -> int:
    from reports.validation import render_validation
    from twin.calibration.parameters import load_calibration
    from twin.validation.shell import real_scenario, validate_run, verdict_text

    scenario = Path(args.scenario)
    out = Path(args.out) if args.out else Path("reports/out") / f"validate-{scenario.stem}"
    calibration = Path(args.calibration) if args.calibration else None
    try:
        if args.run:
            run_dir = Path(args.run)
        else:
            real_scenario(scenario)  # refuse a scenario without a real: section before the run
            load_calibration(calibration)  # and a bad calibration
            run_dir = out / "real"
            status = _perform_real_run(scenario, run_dir, args.seed)
            if status != 0:
                raise RunDirError(f"the real run failed: `loadgen run` exited with status {status}")
        checks, payload = validate_run(
            scenario, out, run_dir=run_dir, calibration=calibration, seed=args.seed
        )
    except (ScenarioError, CalibrationError, RunDirError, OSError) as exc:
        print(f"twin: {exc}", file=sys.stderr)
        return 2
    render_validation(out)
    print(verdict_text(checks, payload, out))
    return 0 if payload["all_in_band"] else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="twin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser(
        "run",
        help="simulate a scenario file and write a run directory",
        description="Simulate SCENARIO; write timeseries.csv, latency.csv, tiers.csv, "
        "summary.json, timing.json and report.html into --out.",
    )
    run.add_argument("scenario", help="scenario YAML file (see scenarios/)")
    run.add_argument("--out", help="run directory (default reports/out/<scenario name>)")
    run.add_argument(
        "--seed", type=int, default=None, help="random seed (default 1); same seed, same summary"
    )
    run.add_argument("--calibration", help="calibration YAML (default: twin/calibration/calibration.yaml)")
    run.add_argument("--no-report", action="store_true", help="skip report.html")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--strict", action="store_true", help="exit 1 when an SLO fails (or is uncertain)")
    run.add_argument(
        "--replications",
        type=int,
        default=1,
        help="run N seeds (--seed, --seed+1, ...) in parallel on Dask and report every SLO with its "
        "mean and 95 %% confidence interval into replications.json (default 1: one seed, no interval)",
    )
    run.add_argument(
        "--scheduler", help="Dask scheduler address (tcp://HOST:8786); default a LocalCluster here"
    )
    run.add_argument(
        "--workers", type=int, default=2, help="LocalCluster worker processes (default 2, the cores here)"
    )
    run.set_defaults(func=_run)
    plan_cmd = sub.add_parser(
        "plan",
        help="the cheapest fleet that meets every SLO with 95 %% confidence",
        description="Search node counts per tier and region (GPU, CPU, origin, chat pools; edge servers "
        "per PoP and shield servers per region) for the cheapest fleet whose every SLO passes with "
        "95 %% confidence over --replications seeds; write plan.json (the plan, each tier's binding "
        "constraint, cost per viewer-hour, headroom: the largest extra spike multiplier it absorbs) "
        "and report.html into --out.",
    )
    plan_cmd.add_argument("scenario", help="scenario YAML file (see scenarios/)")
    plan_cmd.add_argument("--out", required=True, help="output directory")
    plan_cmd.add_argument("--replications", type=int, default=5, help="seeds per fleet (default 5)")
    plan_cmd.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    plan_cmd.add_argument(
        "--tolerance", type=float, default=0.02, help="stop a tier's bisection within this share (0.02)"
    )
    plan_cmd.add_argument("--tiers", help="comma-separated tiers to search (default all), e.g. gpu,edge.eu")
    plan_cmd.add_argument(
        "--load",
        type=float,
        default=1.0,
        help="plan for the scenario's viral spikes this many times as large (all viewers when it has "
        "none): a fleet sized at 1.0 runs near 100 %% at the peak and has no headroom (default 1.0)",
    )
    plan_cmd.add_argument("--calibration", help="calibration YAML (default: the shipped one)")
    plan_cmd.add_argument("--scheduler", help="Dask scheduler address; default a LocalCluster here")
    plan_cmd.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes (default 2)")
    plan_cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    plan_cmd.set_defaults(func=_plan)
    cmp_ = sub.add_parser(
        "compare",
        help="put two run directories side by side",
        description="Compare the summaries of two run directories A and B.",
    )
    cmp_.add_argument("a", help="first run directory")
    cmp_.add_argument("b", help="second run directory")
    cmp_.add_argument("--html", help="also write a side-by-side HTML page here")
    cmp_.set_defaults(func=_compare)
    calibrate_cmd = sub.add_parser(
        "calibrate",
        help="fit the twin's per-unit costs from real run directories",
        description="Fit CPU per request, per held request, per chat delivery, per ingested Mbit, idle "
        "cores and transcode cost per megapixel (non-negative least squares over the runs' per-second "
        "rows), the transcode delay and the publisher's latency share from real run directories "
        "(`loadgen run`); print R^2, residuals and which parameters could not be identified (those "
        "keep the base value and source); write a calibration YAML whose changed entries name the "
        "runs, machine, date and command.",
    )
    calibrate_cmd.add_argument(
        "run_dirs", nargs="+", metavar="RUN_DIR", help="real run directories (loadgen run --out)"
    )
    calibrate_cmd.add_argument(
        "--out",
        default="reports/out/calibration.yaml",
        help="calibration YAML to write "
        "(default reports/out/calibration.yaml; the shipped file is only replaced if named)",
    )
    calibrate_cmd.add_argument(
        "--base", help="calibration to start from (default: twin/calibration/calibration.yaml)"
    )
    calibrate_cmd.add_argument(
        "--seed", type=int, default=1, help="seed of the twin runs used for the latency fit"
    )
    calibrate_cmd.set_defaults(func=_calibrate)
    val = sub.add_parser(
        "validate",
        help="twin as the small deployment vs a real run of the scenario's real: section",
        description="Run the twin configured as the single-machine deployment of SCENARIO's real: section "
        "and compare it with the real run (performed now by `loadgen run` into DIR/real, or "
        "given by --run): origin requests/s, CPU cores of the platform process and the transcode "
        "workers, glass-to-glass p50/p95 on the probe's clock, rebuffer ratio, each against the "
        "scenario's bands. Writes validation.json, validation.txt, predicted_timeseries.csv and "
        "validation.html into --out. Exit 0: every metric in band; 1: one or more out of band; "
        "2: bad scenario, calibration or run directory.",
    )
    val.add_argument("scenario", help="scenario YAML with a real: section")
    val.add_argument("--run", help="an existing real run directory (default: perform the run now)")
    val.add_argument("--calibration", help="calibration YAML (default: twin/calibration/calibration.yaml)")
    val.add_argument("--out", help="output directory (default reports/out/validate-<scenario>)")
    val.add_argument("--seed", type=int, default=1, help="seed of the twin (and of the real run's load)")
    val.set_defaults(func=_validate)
    args = parser.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])[1:]
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())

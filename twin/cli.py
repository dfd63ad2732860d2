"""`twin`: run scenarios through the digital twin and compare runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from twin.calibration import CalibrationError
from twin.scenario import ScenarioError


def _run(args: argparse.Namespace) -> int:
    from twin.run import run_scenario

    out = Path(args.out) if args.out else Path("reports/out") / Path(args.scenario).stem
    try:
        summary = run_scenario(
            args.scenario,
            out,
            seed=args.seed,
            progress=not args.quiet,
            report=not args.no_report,
            calibration=args.calibration,
        )
    except (ScenarioError, CalibrationError) as exc:
        print(f"twin: {exc}", file=sys.stderr)
        return 2
    timing = json.loads((out / "timing.json").read_text(encoding="utf-8"))
    for slo in summary["slos"]:
        verdict = "PASS" if slo["pass"] else "FAIL"
        print(f"{verdict}  {slo['slo']}: measured {slo['measured']} {slo['op']} target {slo['target']}")
    print(
        f"peak egress {summary['peak_egress_tbps']:.1f} Tbit/s, cost/viewer-hour "
        f"{summary['cost']['per_viewer_hour_usd']:.5f} USD, {timing['simpy_events']} SimPy events in "
        f"{timing['wall_s']:.1f} s ({timing['events_per_s']:.0f}/s) -> {out}"
    )
    return 0 if summary["all_slos_pass"] or not args.strict else 1


def _compare(args: argparse.Namespace) -> int:
    from reports.compare import compare_runs

    try:
        text = compare_runs(Path(args.a), Path(args.b), html_out=Path(args.html) if args.html else None)
    except (OSError, ValueError) as exc:
        print(f"twin: {exc}", file=sys.stderr)
        return 2
    print(text)
    return 0


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
    run.add_argument("--calibration", help="calibration YAML (default: twin/calibration.yaml)")
    run.add_argument("--no-report", action="store_true", help="skip report.html")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--strict", action="store_true", help="exit 1 when an SLO fails")
    run.set_defaults(func=_run)
    cmp_ = sub.add_parser(
        "compare",
        help="put two run directories side by side",
        description="Compare the summaries of two run directories A and B.",
    )
    cmp_.add_argument("a", help="first run directory")
    cmp_.add_argument("b", help="second run directory")
    cmp_.add_argument("--html", help="also write a side-by-side HTML page here")
    cmp_.set_defaults(func=_compare)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())

"""Twin speed: `twin run scenarios/peak-100m.yaml` against a raw SimPy loop of the same event count.

The issue's budget is <= 60 s wall for one simulated hour of the 100M-viewer scenario. We
report the twin's wall time, its SimPy event count and events/s, and, as the baseline in the
same run, a bare SimPy event loop (processes that only `yield env.timeout(...)`) that
processes the same number of events: the ratio says how much of the twin's time is the
model's own work rather than SimPy's scheduling.

Issue 22 adds the planner's goals, each behind a flag (they take minutes):
`--replications N` times N replications on a Dask LocalCluster of `--workers` processes (goal:
30 of peak-100m in <= 5 min on 2 cores); `--scaling K` times K replications on 1 and then 2
workers; `--plan OUT` times `twin plan` of the scenario.

    python bench/twin_speed.py [--scenario scenarios/peak-100m.yaml] [--seed 1] [--json OUT]
        [--replications 30] [--scaling 4] [--plan OUT_DIR] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import simpy

from twin.calibration.parameters import load_calibration
from twin.run import run_scenario
from twin.scenario.reader import load_scenario


def replications_wall(scenario_path: str, n: int, workers: int) -> dict[str, float]:
    """Wall time of n replications on a LocalCluster of `workers` processes (cluster start included)."""
    from twin.replications import run_replications

    scenario, calibration = load_scenario(scenario_path), load_calibration()
    started = time.perf_counter()
    rep = run_replications(scenario, calibration, n, workers=workers)
    wall = time.perf_counter() - started
    return {"replications": n, "workers": workers, "wall_s": wall, "twin_hours": rep["twin_hours"]}


def plan_wall(scenario_path: str, out: str, workers: int) -> dict[str, float]:
    """Wall time of `twin plan SCENARIO --out OUT` (its twin-hours from plan.json)."""
    from twin.cli import main as twin_main

    started = time.perf_counter()
    twin_main(["plan", scenario_path, "--out", out, "--workers", str(workers), "--quiet"])
    wall = time.perf_counter() - started
    plan = json.loads((Path(out) / "plan.json").read_text(encoding="utf-8"))
    return {"wall_s": wall, "twin_hours": plan["twin_hours"], "fleets": plan["fleets_evaluated"]}


def raw_simpy(events: int, processes: int = 100) -> tuple[float, int]:
    """Wall time of a bare SimPy loop processing `events` timeout events."""
    env = simpy.Environment()
    per = events // processes

    def ticker(env: simpy.Environment, n: int, period: float) -> simpy.events.ProcessGenerator:
        for _ in range(n):
            yield env.timeout(period)

    for i in range(processes):
        env.process(ticker(env, per, 0.333 + i * 1e-6))
    processed = 0
    started = time.perf_counter()
    while env.peek() != float("inf"):
        env.step()
        processed += 1
    return time.perf_counter() - started, processed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scenarios/peak-100m.yaml")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument("--replications", type=int, default=0, help="time N replications on Dask")
    parser.add_argument("--scaling", type=int, default=0, help="time K replications on 1 and 2 workers")
    parser.add_argument("--plan", help="time `twin plan` of the scenario into this directory")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = run_scenario(args.scenario, Path(tmp), seed=args.seed, progress=False)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        timing = json.loads((Path(tmp) / "timing.json").read_text(encoding="utf-8"))
    events = int(timing["simpy_events"])
    cpu_started = time.process_time()
    raw_wall, raw_events = raw_simpy(events)
    raw_cpu = time.process_time() - cpu_started
    results = {
        "scenario": args.scenario,
        "python": platform.python_version(),
        "simpy": simpy.__version__,
        "simulated_s": summary["duration_s"],
        "twin_wall_s": wall,
        "twin_model_wall_s": timing["wall_s"],
        "twin_events": events,
        "twin_events_per_s": events / timing["wall_s"],
        "raw_simpy_wall_s": raw_wall,
        "raw_simpy_events": raw_events,
        "raw_simpy_events_per_s": raw_events / raw_wall,
        "budget_s": 60.0,
        "within_budget": wall <= 60.0,
        "all_slos_pass": summary["all_slos_pass"],
        "peak_egress_tbps": summary["peak_egress_tbps"],
    }
    print(f"{'':24}{'wall s':>10}{'events':>12}{'events/s':>12}")
    print(f"{'twin (whole run)':24}{wall:10.1f}{events:12d}{events / wall:12.0f}")
    print(f"{'twin (model only)':24}{timing['wall_s']:10.1f}{events:12d}{events / timing['wall_s']:12.0f}")
    print(f"{'raw SimPy loop':24}{raw_wall:10.1f}{raw_events:12d}{raw_events / raw_wall:12.0f}")
    print(f"budget 60 s: {'met' if wall <= 60.0 else 'MISSED'}; simulated {summary['duration_s']:g} s")
    results["twin_vs_raw_simpy"] = (events / timing["wall_s"]) / (raw_events / raw_wall)
    # on a shared machine wall time counts other people's jobs; this process's CPU time does not
    # (the whole run's, report files included, so it understates the model's own ratio a little)
    results["twin_cpu_s"], results["raw_simpy_cpu_s"] = cpu, raw_cpu
    results["twin_vs_raw_simpy_cpu"] = (events / cpu) / (raw_events / raw_cpu)
    print(f"twin events/s / raw SimPy events/s: {results['twin_vs_raw_simpy']:.2f} (goal >= 0.35)")
    print(
        f"the same in process CPU time: twin {cpu:.1f} s, raw {raw_cpu:.1f} s, "
        f"ratio {results['twin_vs_raw_simpy_cpu']:.2f}"
    )
    if args.replications:
        r = replications_wall(args.scenario, args.replications, args.workers)
        results["replications"] = r
        print(
            f"{r['replications']} replications on {r['workers']} workers: {r['wall_s']:.1f} s (goal <= 300 s)"
        )
    if args.scaling:
        one = replications_wall(args.scenario, args.scaling, 1)
        two = replications_wall(args.scenario, args.scaling, 2)
        results["scaling"] = {"one_worker": one, "two_workers": two, "speedup": one["wall_s"] / two["wall_s"]}
        print(
            f"{args.scaling} replications: 1 worker {one['wall_s']:.1f} s, 2 workers {two['wall_s']:.1f} s "
            f"(speedup {one['wall_s'] / two['wall_s']:.2f}x)"
        )
    if args.plan:
        p = plan_wall(args.scenario, args.plan, args.workers)
        results["plan"] = p
        print(
            f"twin plan: {p['wall_s']:.0f} s, {p['twin_hours']:.1f} twin-hours, "
            f"{p['fleets']} fleets (goal <= 900 s)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if wall <= 60.0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Twin speed: `twin run scenarios/peak-100m.yaml` against a raw SimPy loop of the same event count.

The issue's budget is <= 60 s wall for one simulated hour of the 100M-viewer scenario. We
report the twin's wall time, its SimPy event count and events/s, and, as the baseline in the
same run, a bare SimPy event loop (processes that only `yield env.timeout(...)`) that
processes the same number of events: the ratio says how much of the twin's time is the
model's own work rather than SimPy's scheduling.

    python bench/twin_speed.py [--scenario scenarios/peak-100m.yaml] [--seed 1] [--json OUT]
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

from twin.run import run_scenario


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        summary = run_scenario(args.scenario, Path(tmp), seed=args.seed, progress=False)
        wall = time.perf_counter() - started
        timing = json.loads((Path(tmp) / "timing.json").read_text(encoding="utf-8"))
    events = int(timing["simpy_events"])
    raw_wall, raw_events = raw_simpy(events)
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
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if wall <= 60.0 else 1


if __name__ == "__main__":
    sys.exit(main())

"""Replications of one scenario on Dask: N seeds in parallel, every SLO with a 95 % interval.

Each replication is a pure function of (scenario, calibration, seed), run in a worker process,
so its metrics do not depend on which worker ran it, in what order, or how many workers there
are; results are put back in seed order. The default cluster is a `LocalCluster` of worker
processes on this machine (one thread each: the model is pure Python and holds the GIL); a
scheduler address (`tcp://HOST:8786`) runs the same tasks on an existing Dask cluster.

`replicate` is generic (a picklable function of the seed returning named floats), so the
Erlang C oracle test drives the same machinery as the twin.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from twin.calibration.parameters import Calibration
from twin.model.records import RunResult
from twin.model.twin import Twin
from twin.scenario.schema import Scenario
from twin.stats import Interval, Verdict, mean_interval, verdict
from twin.summary import summarize

Metrics = dict[str, float]
R = TypeVar("R")  # what one replication returns
MAX_LOCAL_WORKERS = 2  # this machine: 2 cores shared with other engineers


def seeds(first: int, n: int) -> list[int]:
    """The seeds of n replications: first, first + 1, ... (replication i always gets the same one)."""
    return [first + i for i in range(n)]


def twin_metrics(scenario: Scenario, calibration: Calibration, seed: int) -> Metrics:
    """One replication of the twin: every SLO's measured value and the figures a planner reads."""
    result = Twin(scenario, calibration, seed).run()
    return result_metrics(result)


def result_metrics(result: RunResult) -> Metrics:
    summary = summarize(result)
    metrics: Metrics = {f"slo.{s['slo']}": _float(s["measured"]) for s in summary["slos"]}
    lat = result.tracer_stats.all_latency()
    metrics["latency.p50_s"] = _float(summary["latency_s"]["p50"])
    metrics["latency.p99_s"] = _float(summary["latency_s"]["p99"])
    metrics["latency.samples"] = float(lat.size)
    metrics["peak_viewers"] = float(summary["viewers"]["peak"])
    metrics["viewer_hours"] = float(summary["viewers"]["viewer_hours"])
    metrics["peak_egress_tbps"] = float(summary["peak_egress_tbps"])
    metrics["cost_usd"] = float(summary["cost"]["total_usd"])
    metrics["cost_per_viewer_hour_usd"] = _float(summary["cost"]["per_viewer_hour_usd"])
    metrics["fluid_overload_stall_ratio"] = float(summary["fluid_overload_stall_ratio"])
    metrics["chat_delay_p99_s"] = float(summary["chat"]["delay_p99_s"])
    for tier, row in summary["fleet"].items():
        metrics[f"util_peak.{tier}"] = _float(row.get("util_peak"))
        metrics[f"nodes_peak.{tier}"] = _float(row.get("nodes_peak"))
    metrics["simpy_events"] = float(result.events)
    return metrics


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


@contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A client of `scheduler`, or of a LocalCluster of `workers` single-threaded processes."""
    from distributed import Client, LocalCluster

    if scheduler:
        with Client(scheduler) as client:  # type: ignore[no-untyped-call]
            yield client
        return
    with (
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: several clusters may run side by side
            silence_logs=40,
            env={"PYTHONPATH": os.environ.get("PYTHONPATH", "")},
        ) as cluster,
        Client(cluster) as client,  # type: ignore[no-untyped-call]
    ):
        yield client


def replicate(
    task: Callable[[int], R],
    seed_list: Sequence[int],
    scheduler: str | None = None,
    workers: int = MAX_LOCAL_WORKERS,
    progress: Callable[[int, int], None] | None = None,
    client: Any = None,
) -> list[R]:
    """`task(seed)` for every seed on Dask; results in seed order; `progress(done, total)` as they land.

    `client` reuses a running Dask client (the planner's many fleets share one cluster).
    """
    if client is None:
        workers = max(1, min(workers, len(seed_list)))
        with dask_client(scheduler, workers) as own:
            return replicate(task, seed_list, progress=progress, client=own)
    from distributed import as_completed

    futures = client.map(task, list(seed_list), pure=False)
    index = {f.key: i for i, f in enumerate(futures)}
    out: list[R | None] = [None] * len(futures)
    for done, future in enumerate(as_completed(futures), start=1):  # type: ignore[no-untyped-call]
        out[index[future.key]] = future.result()
        if progress is not None:
            progress(done, len(futures))
    return [m for m in out if m is not None]


def dask_replicator(
    calibration: Calibration, client: Any, progress: Callable[[int], None] | None = None
) -> Callable[[Scenario, Sequence[int]], list[Metrics]]:
    """`replicate(scenario, seeds)` on a running client (the planner's many fleets share one cluster);
    `progress(1)` per finished replication."""

    def run(scenario: Scenario, seed_list: Sequence[int]) -> list[Metrics]:
        def tick(done: int, total: int) -> None:
            if progress is not None:
                progress(1)

        return replicate(
            partial(twin_metrics, scenario, calibration), seed_list, progress=tick, client=client
        )

    return run


@dataclass(frozen=True, slots=True)
class SloResult:
    slo: str
    op: str
    target: float
    interval: Interval
    verdict: Verdict

    def as_dict(self) -> dict[str, Any]:
        i = self.interval
        return {
            "slo": self.slo,
            "op": self.op,
            "target": self.target,
            "mean": _json(i.mean),
            "ci_low": _json(i.low),
            "ci_high": _json(i.high),
            "confidence": i.confidence,
            "replications": i.n,
            "verdict": self.verdict.value,
        }


def _json(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


SLO_OPS = {
    "glass_to_glass_p95_s": "<",
    "rebuffer_ratio": "<",
    "availability": ">=",
    "chat_delay_p99_s": "<",
}


def slo_results(scenario: Scenario, runs: Sequence[Metrics], confidence: float = 0.95) -> list[SloResult]:
    """Every SLO of the scenario as mean, interval and the verdict the interval allows."""
    targets = {
        "glass_to_glass_p95_s": scenario.slos.glass_to_glass_p95_s,
        "rebuffer_ratio": scenario.slos.rebuffer_ratio,
        "availability": scenario.slos.availability,
        "chat_delay_p99_s": scenario.slos.chat_delay_p99_s,
    }
    out = []
    for slo, op in SLO_OPS.items():
        interval = mean_interval([r[f"slo.{slo}"] for r in runs], confidence)
        out.append(SloResult(slo, op, targets[slo], interval, verdict(interval, op, targets[slo])))
    return out


def summarize_replications(
    scenario: Scenario, seed_list: Sequence[int], runs: Sequence[Metrics], wall_s: float, workers: int
) -> dict[str, Any]:
    """The replications' summary: SLO intervals and verdicts, every metric's mean and interval."""
    slos = slo_results(scenario, runs)
    names = sorted({k for r in runs for k in r})
    metrics = {}
    for name in names:
        i = mean_interval([r.get(name, math.nan) for r in runs])
        metrics[name] = {"mean": _json(i.mean), "ci_low": _json(i.low), "ci_high": _json(i.high)}
    samples = int(sum(r["latency.samples"] for r in runs))
    return {
        "scenario": scenario.name,
        "replications": len(runs),
        "seeds": list(seed_list),
        "confidence": 0.95,
        "slos": [s.as_dict() for s in slos],
        "all_slos_pass": all(s.verdict is Verdict.PASS for s in slos),
        "any_slo_uncertain": any(s.verdict is Verdict.UNCERTAIN for s in slos),
        "metrics": metrics,
        "tracer_latency": {
            "samples_pooled": samples,
            "note": "glass-to-glass percentiles are per replication (one tracer population each); "
            "their interval is a Student t interval over independent replications, so a p95 or p99 "
            "carries the stated 95 % confidence whatever the correlation between one tracer's parts",
        },
        "twin_hours": len(runs) * scenario.duration_s / 3600.0,
        "per_replication": [dict(r, seed=float(s)) for s, r in zip(seed_list, runs, strict=True)],
        "timing": {"wall_s": wall_s, "workers": workers},
    }


def run_replications(
    scenario: Scenario,
    calibration: Calibration,
    n: int,
    first_seed: int = 1,
    scheduler: str | None = None,
    workers: int = MAX_LOCAL_WORKERS,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """N replications of `scenario`; the summary of `summarize_replications`."""
    seed_list = seeds(first_seed, n)
    started = time.perf_counter()
    task = partial(twin_metrics, scenario, calibration)
    runs = replicate(task, seed_list, scheduler, workers, progress)
    wall = time.perf_counter() - started
    return summarize_replications(scenario, seed_list, runs, wall, min(workers, n))

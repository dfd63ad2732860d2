"""`twin plan`: the cheapest fleet that meets every SLO with 95 % confidence, and its headroom.

The fleet is what a planner buys: node counts per pool (GPU, CPU, origin, chat; held fixed,
no autoscaling, so the plan is a fleet and not a policy) and servers per region (edge servers
per PoP, shield servers). A fleet is *feasible* when every SLO's verdict over `replications`
independent replications is PASS (`twin.stats`: the interval's bad end meets the target); every
fleet is run with the same seeds (common random numbers), so two fleets differ by their nodes,
not by their luck.

Search: start from the scenario's own fleet at its peak sizes (doubled until feasible), then
for each tier in turn bisect the smallest count that keeps the fleet feasible with the other
tiers at their current counts. Feasibility is monotone in each tier's count (more nodes never
raise a queue), so the bisection is exact up to `tolerance`. A tier's lower bound is its peak
demand at the starting fleet (utilization above 100 % queues without bound): the bisection never
simulates below it, and its first probe is one tolerance above that demand, which settles a tier
bound by its capacity in one evaluation. Every evaluated fleet is cached, so no fleet is
simulated twice. The final fleet is the last feasible one evaluated.

The binding constraint of a tier is what fails one step below its planned count: the SLOs
that were not PASS there, or its capacity when that step is under its peak demand. Headroom is
the largest extra multiplier on the scenario's viral spikes (on all viewers when it has none)
that the planned fleet still absorbs within every SLO, bisected to 0.05.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from twin.calibration.parameters import Calibration
from twin.replications import Metrics, SloResult, slo_results
from twin.scenario.schema import FaultKind, PoolSpec, Scenario
from twin.stats import Verdict, margin

POOLS = ("gpu", "cpu", "origin", "chat")
Fleet = tuple[tuple[str, int], ...]
Replicator = Callable[[Scenario, Sequence[int]], list[Metrics]]


@dataclass(frozen=True, slots=True)
class Knob:
    """One tier a planner sizes: its count in the scenario, nodes per unit of count, cost per node-hour."""

    tier: str
    nodes_per_unit: int
    cost_node_h: float


def knobs(scenario: Scenario, calibration: Calibration) -> list[Knob]:
    costs = {
        "gpu": calibration.cost_gpu_node_h,
        "cpu": calibration.cost_cpu_node_h,
        "origin": calibration.cost_origin_node_h,
        "chat": calibration.cost_chat_node_h,
    }
    out = [Knob(p, 1, costs[p]) for p in POOLS]
    out += [Knob(f"edge.{r.name}", r.edge_pops, calibration.cost_edge_server_h) for r in scenario.regions]
    out += [Knob(f"shield.{r.name}", 1, calibration.cost_edge_server_h) for r in scenario.regions]
    return out


def fleet_of(scenario: Scenario, peak: bool = True) -> dict[str, int]:
    """The scenario's own counts (pools at max when `peak`: what its autoscaler may reach)."""
    f = scenario.fleet
    counts = {p: (getattr(f, p).max_nodes if peak else getattr(f, p).nodes) for p in POOLS}
    for r in scenario.regions:
        counts[f"edge.{r.name}"] = r.edge_servers_per_pop
        counts[f"shield.{r.name}"] = r.shield_servers
    return counts


def with_fleet(scenario: Scenario, counts: dict[str, int]) -> Scenario:
    """The scenario with a fixed fleet: every pool at its count (no autoscaling), servers per region."""
    f = scenario.fleet
    gpu, cpu, origin, chat = (
        PoolSpec(counts[p], counts[p], counts[p]) if p in counts else getattr(f, p) for p in POOLS
    )
    regions = tuple(
        dataclasses.replace(
            r,
            edge_servers_per_pop=counts.get(f"edge.{r.name}", r.edge_servers_per_pop),
            shield_servers=counts.get(f"shield.{r.name}", r.shield_servers),
        )
        for r in scenario.regions
    )
    fleet = dataclasses.replace(f, gpu=gpu, cpu=cpu, origin=origin, chat=chat)
    return dataclasses.replace(scenario, fleet=fleet, regions=regions)


def with_load(scenario: Scenario, multiplier: float) -> Scenario:
    """Spikes `multiplier` x as large (their factor's excess over 1), or all viewers when none."""
    spikes = [f for f in scenario.faults if f.kind == FaultKind.VIRAL_SPIKE]
    if not spikes:
        workload = dataclasses.replace(scenario.workload, viewers=scenario.workload.viewers * multiplier)
        return dataclasses.replace(scenario, workload=workload)
    faults = tuple(
        dataclasses.replace(f, factor=f.factor * multiplier) if f.kind == FaultKind.VIRAL_SPIKE else f
        for f in scenario.faults
    )
    return dataclasses.replace(scenario, faults=faults)


@dataclass(slots=True)
class Evaluation:
    """A fleet (and load multiplier) run `replications` times: its SLO intervals and mean metrics."""

    counts: dict[str, int]
    load: float
    slos: list[SloResult]
    mean: dict[str, float]

    @property
    def feasible(self) -> bool:
        return all(s.verdict is Verdict.PASS for s in self.slos)

    def failing(self) -> list[str]:
        return [f"{s.slo} ({s.verdict.value})" for s in self.slos if s.verdict is not Verdict.PASS]

    def margins(self) -> dict[str, float]:
        return {s.slo: margin(s.interval, s.op, s.target) for s in self.slos}


@dataclass(slots=True)
class Planner:
    """The search state: the evaluations so far (the cache) and the replications they cost."""

    scenario: Scenario
    calibration: Calibration
    replicate: Replicator
    seeds: Sequence[int]
    knobs: list[Knob]
    tolerance: float = 0.02
    evaluations: dict[tuple[Fleet, float], Evaluation] = field(default_factory=dict)
    replications_run: int = 0
    on_evaluation: Callable[[Evaluation], None] | None = None

    def evaluate(self, counts: dict[str, int], load: float = 1.0) -> Evaluation:
        key = (tuple(sorted(counts.items())), round(load, 6))
        if key in self.evaluations:
            return self.evaluations[key]
        scenario = with_load(with_fleet(self.scenario, counts), load)
        runs = self.replicate(scenario, self.seeds)
        self.replications_run += len(runs)
        names = sorted({k for r in runs for k in r})
        mean = {n: _mean([r.get(n, math.nan) for r in runs]) for n in names}
        ev = Evaluation(dict(counts), load, slo_results(scenario, runs), mean)
        self.evaluations[key] = ev
        if self.on_evaluation is not None:
            self.on_evaluation(ev)
        return ev

    def demand_floor(self, ev: Evaluation, knob: Knob) -> int:
        """The count below which the tier's peak utilization would pass 100 %.

        GPU and CPU nodes stand in for each other (full ladders spill to CPU, source-only
        streams to GPU), so their floor is one node: the bisection finds where the spill ends.
        """
        if knob.tier in ("gpu", "cpu"):
            return 1
        return self.demand(ev, knob)

    def start(self) -> Evaluation:
        counts = fleet_of(self.scenario)
        ev = self.evaluate(counts)
        for _ in range(4):
            if ev.feasible:
                break
            counts = {k: 2 * v for k, v in counts.items()}
            ev = self.evaluate(counts)
        return ev

    def demand(self, ev: Evaluation, knob: Knob) -> int:
        """The nodes the tier keeps busy at its peak: where its optimum usually is."""
        util = ev.mean.get(f"util_peak.{knob.tier}", math.nan)
        if not math.isfinite(util) or util <= 0:
            return 1
        return max(1, math.ceil(util * ev.counts[knob.tier] * (1.0 - 1e-9)))

    def shrink(
        self, counts: dict[str, int], knob: Knob, floor: int, guess: int | None = None
    ) -> tuple[dict[str, int], str]:
        """Bisect the tier's smallest feasible count; its binding constraint.

        With a `guess` (the tier's peak demand) the first probe is one tolerance above it: a
        tier bound by its capacity is then settled by that one evaluation instead of a
        bisection from its full size (issue 22: most tiers of peak-100m are).
        """
        hi = counts[knob.tier]
        lo = min(floor, hi) - 1  # known infeasible (or below peak demand)
        binding = "capacity: peak utilization would pass 100 %"
        if guess is not None:
            probe = min(hi - 1, max(lo + 1, math.ceil(guess * (1.0 + self.tolerance))))
            if lo < probe < hi and hi - lo > max(1, math.floor(self.tolerance * hi)):
                ev = self.evaluate({**counts, knob.tier: probe})
                if ev.feasible:
                    hi = probe
                else:
                    lo = probe
                    binding = ", ".join(ev.failing())
        while hi - lo > max(1, math.floor(self.tolerance * hi)):
            mid = (lo + hi) // 2
            ev = self.evaluate({**counts, knob.tier: mid})
            if ev.feasible:
                hi = mid
            else:
                lo = mid
                binding = ", ".join(ev.failing())
        if hi == 1:
            binding = "none: one node, the smallest tier"
        return {**counts, knob.tier: hi}, binding

    def headroom(self, counts: dict[str, int], limit: float = 4.0, step: float = 0.05) -> float:
        """Largest load multiplier in [1, limit] the fleet absorbs within every SLO (to `step`).

        A fleet planned at its load runs near 100 % at the peak, so `1 + step` is tried first:
        when it fails, that settles it (with `limit` run too, for the load curve's range).
        """
        if not self.evaluate(counts, 1.0).feasible:
            return 0.0
        first = self.evaluate(counts, 1.0 + step).feasible
        if self.evaluate(counts, limit).feasible:
            return limit
        if not first:
            return 1.0
        lo, hi = 1.0 + step, limit
        while hi - lo > step:
            mid = round((lo + hi) / 2, 4)
            if self.evaluate(counts, mid).feasible:
                lo = mid
            else:
                hi = mid
        return lo


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return math.fsum(finite) / len(finite) if finite else math.nan


def plan(planner: Planner, tiers: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the search; the plan as plain data (written by the CLI as plan.json)."""
    sc = planner.scenario
    start = planner.start()
    if not start.feasible:
        return {"scenario": sc.name, "feasible": False, "failing": start.failing(), **_accounting(planner)}
    counts = dict(start.counts)
    binding: dict[str, str] = {}
    chosen = [k for k in planner.knobs if tiers is None or k.tier in tiers]
    for knob in chosen:
        current = planner.evaluate(counts)
        floor = planner.demand_floor(current, knob)
        counts, binding[knob.tier] = planner.shrink(counts, knob, floor, planner.demand(current, knob))
    final = planner.evaluate(counts)
    headroom = planner.headroom(counts)
    own_runs = planner.replicate(sc, planner.seeds)  # the scenario as written, autoscaling included
    planner.replications_run += len(own_runs)
    own_slos = slo_results(sc, own_runs)
    own = {n: _mean([r.get(n, math.nan) for r in own_runs]) for n in sorted({k for r in own_runs for k in r})}
    by_knob = {k.tier: k for k in planner.knobs}
    hours = sc.duration_s / 3600.0
    rows = []
    for tier, n in counts.items():
        k = by_knob[tier]
        nodes = n * k.nodes_per_unit
        own_peak = own.get(f"nodes_peak.{tier}", math.nan)
        own_n = (
            int(own_peak) if math.isfinite(own_peak) else fleet_of(sc, peak=False)[tier] * k.nodes_per_unit
        )
        rows.append(
            {
                "tier": tier,
                "planned_nodes": nodes,
                "count": n,
                "nodes_per_count": k.nodes_per_unit,
                "scenario_nodes_peak": own_n,
                "cost_usd": nodes * k.cost_node_h * hours,
                "util_peak": final.mean.get(f"util_peak.{tier}"),
                "binding": binding.get(tier, "not searched"),
            }
        )
    return {
        "scenario": sc.name,
        "feasible": True,
        "confidence": 0.95,
        "replications_per_fleet": len(planner.seeds),
        "seeds": list(planner.seeds),
        "tiers": rows,
        "slos": [s.as_dict() for s in final.slos],
        "cost_usd": final.mean.get("cost_usd"),
        "cost_per_viewer_hour_usd": final.mean.get("cost_per_viewer_hour_usd"),
        "scenario_fleet": {
            "cost_usd": own.get("cost_usd"),
            "cost_per_viewer_hour_usd": own.get("cost_per_viewer_hour_usd"),
            "slos": [s.as_dict() for s in own_slos],
        },
        "headroom_multiplier": headroom,
        "headroom_applies_to": "viral spikes" if _has_spike(sc) else "all viewers",
        "load_curve": _load_curve(planner, counts),
        **_accounting(planner),
    }


def _accounting(planner: Planner) -> dict[str, Any]:
    return {
        "fleets_evaluated": len(planner.evaluations),
        "replications_run": planner.replications_run,
        "twin_hours": planner.replications_run * planner.scenario.duration_s / 3600.0,
    }


def _has_spike(sc: Scenario) -> bool:
    return any(f.kind == FaultKind.VIRAL_SPIKE for f in sc.faults)


def _load_curve(planner: Planner, counts: dict[str, int]) -> list[dict[str, Any]]:
    """Utilization and SLO margin of the planned fleet at every load multiplier evaluated."""
    key = tuple(sorted(counts.items()))
    points = sorted(
        (ev for (fleet, _), ev in planner.evaluations.items() if fleet == key), key=lambda e: e.load
    )
    return [
        {
            "load": ev.load,
            "feasible": ev.feasible,
            "util_peak": {
                k.removeprefix("util_peak."): v for k, v in ev.mean.items() if k.startswith("util_peak.")
            },
            "slo_margin": ev.margins(),
        }
        for ev in points
    ]

"""Performing a scenario's `faults:` list (twin.scenario `RealFault`) against named tiers.

A chaos case written as YAML (docs/chaos.md) names tiers (`origin`, `nats`, `chat-1`, ...);
`Targets` maps those names to the services that run them and to the links between them, and
`FaultPlan` performs each fault at its `at_s` on a thread of its own, so overlapping faults
overlap. Every fault ends by restoring its tier (restart, SIGCONT, heal) even when the caller
gives up early: `close` waits for every thread. New tiers (edges, shields, ingest nodes) slot
in as more names in `Targets`; nothing here knows what a tier is.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from loadgen.faults import process
from loadgen.faults.netns import PARTITION, Impairment, NetnsLink
from loadgen.faults.services import Service
from loadgen.faults.timeline import Timeline
from twin.scenario.schema import LINK_FAULTS, PROCESS_FAULTS, RealFault, RealFaultKind


class PlanError(ValueError):
    """A fault names a tier or a link this run does not have."""


@dataclass
class Targets:
    """What a run's tier names stand for: processes to kill or hang, links to impair."""

    processes: dict[str, Service] = field(default_factory=dict)
    links: dict[frozenset[str], NetnsLink] = field(default_factory=dict)

    def link(self, between: tuple[str, ...]) -> NetnsLink:
        try:
            return self.links[frozenset(between)]
        except KeyError:
            known = ", ".join("-".join(sorted(k)) for k in self.links) or "none"
            raise PlanError(f"no link between {' and '.join(between)} in this run (links: {known})") from None

    def process(self, name: str) -> Service:
        try:
            return self.processes[name]
        except KeyError:
            raise PlanError(f"no tier {name!r} in this run (tiers: {', '.join(self.processes)})") from None


def impairment(fault: RealFault) -> Impairment:
    match fault.kind:
        case RealFaultKind.PARTITION:
            return PARTITION
        case RealFaultKind.LOSS:
            return Impairment(loss_pct=fault.loss_pct)
        case RealFaultKind.LATENCY:
            return Impairment(delay_ms=fault.delay_ms, jitter_ms=fault.jitter_ms)
        case RealFaultKind.BANDWIDTH:
            return Impairment(rate_kbit=fault.rate_kbit)
    raise PlanError(f"{fault.kind} is not a link fault")


def perform(fault: RealFault, targets: Targets, timeline: Timeline | None = None) -> None:
    """Perform one tier fault now, for its duration; returns once the tier is restored."""
    if fault.kind in PROCESS_FAULTS:
        process.perform(process.ProcessFaultKind(fault.kind.value), targets.process(fault.target),
                        fault.duration_s, timeline)
        return
    if fault.kind not in LINK_FAULTS:
        raise PlanError(f"{fault.kind} is not a tier fault (loadgen run performs it)")
    link = targets.link(fault.between)
    what = impairment(fault)
    between = ",".join(fault.between)
    if timeline:
        timeline.note("fault start", kind=fault.kind.value, between=between)
    try:
        link.impair(what)
        time.sleep(fault.duration_s)
    finally:
        link.heal()
        if timeline:
            timeline.note("fault end", kind=fault.kind.value, between=between)


class FaultPlan:
    """Tier faults performed at their `at_s` (seconds from `start`), each on its own thread."""

    def __init__(self, faults: tuple[RealFault, ...], targets: Targets,
                 timeline: Timeline | None = None) -> None:
        self.faults = [f for f in faults if f.kind in PROCESS_FAULTS or f.kind in LINK_FAULTS]
        for fault in self.faults:  # a typo'd tier fails before anything runs
            if fault.kind in PROCESS_FAULTS:
                targets.process(fault.target)
            else:
                targets.link(fault.between)
        self.targets = targets
        self.timeline = timeline
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._cancel = threading.Event()

    def start(self) -> None:
        t0 = time.monotonic()
        for fault in self.faults:
            thread = threading.Thread(target=self._run, args=(fault, t0), name=f"fault-{fault.kind}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def _run(self, fault: RealFault, t0: float) -> None:
        if self._cancel.wait(max(0.0, t0 + fault.at_s - time.monotonic())):
            return
        try:
            perform(fault, self.targets, self.timeline)
        except BaseException as error:  # reported by close(); the tier was restored by perform
            self.errors.append(error)

    @property
    def end_s(self) -> float:
        """When the last fault is over (seconds from start)."""
        return max((f.at_s + f.duration_s for f in self.faults), default=0.0)

    def close(self) -> None:
        """Cancel faults not yet begun, wait for running ones to restore their tier, raise the first error."""
        self._cancel.set()
        deadline = time.monotonic() + process.MAX_FAULT_S + 30
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        if self.errors:
            raise self.errors[0]

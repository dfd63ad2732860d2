"""The tiers a `loadgen run` scenario's tier faults may name, and which of them it can perform.

A real run is one `live serve` on loopback, so its only tier is `origin` (ingest, origin, API
and chat in one process), and it performs `hang` on it (SIGSTOP the platform's process group
for duration_s, then SIGCONT): viewers, chat users and the probe measure the stall and the
recovery. Killing the platform and link faults need the restartable services and namespaced
links of `loadgen.faults`, which the chaos suite (tests/chaos, docs/chaos.md) builds; a
scenario that asks `loadgen run` for them is refused before anything starts.
"""

from __future__ import annotations

import subprocess
from typing import Any

from loadgen.faults.plan import Targets
from loadgen.faults.services import ServiceError
from loadgen.realrun.launch import Children, RealRunError
from twin.scenario.schema import LINK_FAULTS, PROCESS_FAULTS, RealFault, RealFaultKind, RealSpec

#: The fields each kind of fault is written with (what its YAML holds), beyond kind and at_s.
_FIELDS: dict[RealFaultKind, tuple[str, ...]] = {
    RealFaultKind.VIRAL_SPIKE: ("stream_rank", "factor", "ramp_s", "duration_s"),
    RealFaultKind.WORKER_KILL: ("stream_rank",),
    RealFaultKind.KILL: ("duration_s", "target"),
    RealFaultKind.HANG: ("duration_s", "target"),
    RealFaultKind.PARTITION: ("duration_s", "between"),
    RealFaultKind.LOSS: ("duration_s", "between", "loss_pct"),
    RealFaultKind.LATENCY: ("duration_s", "between", "delay_ms", "jitter_ms"),
    RealFaultKind.BANDWIDTH: ("duration_s", "between", "rate_kbit"),
}


def fault_record(fault: RealFault) -> dict[str, Any]:
    """A fault as its scenario wrote it (run.json's `real.faults`, which the twin reads back)."""
    record: dict[str, Any] = {"kind": fault.kind.value, "at_s": fault.at_s}
    for name in _FIELDS[fault.kind]:
        value = getattr(fault, name)
        record[name] = list(value) if isinstance(value, tuple) else value
    return record


class PlatformProcess:
    """`live serve` of a real run as a fault target: it can be hung, not restarted."""

    name = "origin"

    def __init__(self, children: Children) -> None:
        self.children = children

    def _proc(self) -> subprocess.Popen[bytes] | None:
        return self.children.procs.get("platform")

    @property
    def pid(self) -> int | None:
        proc = self._proc()
        return proc.pid if proc is not None and proc.poll() is None else None

    def alive(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        if not self.alive():
            raise ServiceError("loadgen run cannot restart the platform")

    def close(self) -> None:
        """The run's `Children` stops the platform."""


def check_tier_faults(spec: RealSpec) -> None:
    """Refuse tier faults a real run cannot perform, naming where they do run."""
    for i, fault in enumerate(spec.faults):
        if fault.kind in LINK_FAULTS or (fault.kind in PROCESS_FAULTS and (
                fault.kind != RealFaultKind.HANG or fault.target != "origin")):
            what = fault.target or "-".join(fault.between)
            raise RealRunError(
                f"real.faults[{i}]: loadgen run performs only `hang` of `origin` among tier faults, "
                f"not {fault.kind.value} of {what}: the chaos suite runs the others (docs/chaos.md)"
            )


def targets(children: Children) -> Targets:
    return Targets(processes={"origin": PlatformProcess(children)})

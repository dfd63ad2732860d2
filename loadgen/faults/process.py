"""Process faults: a crash (SIGKILL, then a restart after a set time) and a hang (SIGSTOP, SIGCONT).

A hang is the nastier fault: the process keeps its sockets open, so peers see no reset, only
silence. Both always end with the service running again (the restart or SIGCONT sits in a
`finally`), so a failing caller never leaves a stopped server behind. `resources` reads a
process's open descriptors and RSS from /proc for the leak checks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from enum import StrEnum

from loadgen.faults.services import ChildService, Service, ServiceError
from loadgen.faults.timeline import Timeline

MAX_FAULT_S = 120.0  # no process fault lasts longer: a typo must not stall CI


class ProcessFaultKind(StrEnum):
    KILL = "kill"
    HANG = "hang"


@dataclass(frozen=True, slots=True)
class Resources:
    """Open file descriptors and resident memory of one process."""

    fds: int
    rss_kib: int


def resources(pid: int) -> Resources:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    rss = 0
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return Resources(fds, rss)


def _signal(service: Service, pid: int, sig: int) -> None:
    """Signal a service's whole process group where it has one (a session leader: its workers
    share the fate)."""
    with contextlib.suppress(ProcessLookupError):
        if getattr(service, "process_group", False):
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _bounded(for_s: float) -> float:
    if not 0 <= for_s <= MAX_FAULT_S:
        raise ValueError(f"a process fault lasts 0..{MAX_FAULT_S:g} s, not {for_s:g}")
    return for_s


def kill(service: Service, for_s: float, timeline: Timeline | None = None) -> float:
    """SIGKILL ``service``, wait ``for_s``, start it again; answers the seconds the restart took."""
    _bounded(for_s)
    pid = service.pid
    if pid is None:
        raise ServiceError(f"{service.name} is not running: nothing to kill")
    if timeline:
        timeline.note("fault start", kind="kill", target=service.name, pid=pid)
    try:
        _signal(service, pid, signal.SIGKILL)
        if isinstance(service, ChildService):
            service.reap()
        time.sleep(for_s)
    finally:
        began = time.monotonic()
        service.start()
        took = time.monotonic() - began
        if timeline:
            timeline.note("fault end", kind="kill", target=service.name, pid=service.pid,
                          restart_s=round(took, 3))
    return took


def hang(service: Service, for_s: float, timeline: Timeline | None = None) -> None:
    """SIGSTOP ``service`` for ``for_s`` seconds, then SIGCONT (always)."""
    _bounded(for_s)
    pid = service.pid
    if pid is None:
        raise ServiceError(f"{service.name} is not running: nothing to hang")
    if timeline:
        timeline.note("fault start", kind="hang", target=service.name, pid=pid)
    try:
        _signal(service, pid, signal.SIGSTOP)
        time.sleep(for_s)
    finally:
        _signal(service, pid, signal.SIGCONT)
        if timeline:
            timeline.note("fault end", kind="hang", target=service.name, pid=pid)


def perform(kind: ProcessFaultKind, service: Service, for_s: float, timeline: Timeline | None = None) -> None:
    match kind:
        case ProcessFaultKind.KILL:
            kill(service, for_s, timeline)
        case ProcessFaultKind.HANG:
            hang(service, for_s, timeline)

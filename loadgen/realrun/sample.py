"""Once a second during a real run: CPU per role and the platform's /metrics, into one row.

CPU time comes from the process trees (the platform process, its transcode workers, the load
generators); rates are /metrics counter differences over the sample's own interval. Faults of
the real run that need a hand (`worker_kill`) are applied here too, since the worker's pid is
read from the same /metrics.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import psutil
from prometheus_client.parser import text_string_to_metric_families

from loadgen.measure import KINDS, CpuDelta
from loadgen.realrun.launch import Children, RealRunError
from loadgen.schedule import ViewerSchedule
from twin.scenario.schema import RealFault, RealFaultKind, RealSpec

Metrics = dict[str, list[tuple[dict[str, str], float]]]
LOADGEN_ROLES = ("publishers", "locust", "probe")
#: what a CDN node's cache answered from itself (a lock waiter is logged HIT: it cost no upstream)
CDN_HITS = ("HIT", "UPDATING")
#: the CDN columns of a row (only runs with a `cdn:` section have them)
CDN_COLUMNS = ("shield_rps", "edge_rps", "edge_hits_per_s", "edge_lookups_per_s")


def scrape(url: str) -> Metrics:
    with urllib.request.urlopen(url, timeout=2) as response:
        text = response.read().decode()
    out: Metrics = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def total(metrics: Metrics, name: str, **labels: str) -> float:
    return sum(v for lab, v in metrics.get(name, []) if all(lab.get(k) == x for k, x in labels.items()))


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cpu(procs: Sequence[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
    return out


class Sampler:
    """Turns successive samples into per-second rows (the first sample only sets the baseline)."""

    def __init__(
        self, base: str, schedule: ViewerSchedule, spec: RealSpec, cdn_metrics: str | None = None
    ) -> None:
        self.base = base
        self.cdn_metrics = cdn_metrics  # `live cdn --metrics-port`'s URL, when the run has tiers
        self.last_cdn: Metrics = {}
        self.schedule = schedule
        self.spec = spec
        self.cpu = CpuDelta()
        self.last_metrics: Metrics = {}
        self.last_t: float | None = None
        self.rows: list[dict[str, Any]] = []

    def sample(self, t: float, now: float, serve: subprocess.Popen[bytes], children: Children) -> None:
        try:
            metrics = scrape(f"{self.base}/metrics")
        except (urllib.error.URLError, OSError, ValueError):
            metrics = self.last_metrics
        cdn = self.last_cdn
        if self.cdn_metrics is not None:
            with contextlib.suppress(urllib.error.URLError, OSError, ValueError):
                cdn = scrape(self.cdn_metrics)
        platform_tree = _tree(serve.pid)  # the platform process, then its transcode workers
        loadgen = [
            p for name in LOADGEN_ROLES if name in children.procs for p in _tree(children.procs[name].pid)
        ]
        roles = {
            "platform": _cpu(platform_tree[:1]),
            "transcode": _cpu(platform_tree[1:]),
            "loadgen": _cpu(loadgen),
        }
        step = self.cpu.step(roles)
        if self.last_t is not None:
            row = self._row(t, now - self.last_t, step, metrics)
            if self.cdn_metrics is not None:
                row.update(cdn_rates(cdn, self.last_cdn, now - self.last_t))
            self.rows.append(row)
        self.last_metrics, self.last_t, self.last_cdn = metrics, now, cdn

    def _row(self, t: float, dt: float, cpu: dict[str, float], metrics: Metrics) -> dict[str, Any]:
        last = self.last_metrics

        def rate(name: str, **labels: str) -> float:
            return max(0.0, total(metrics, name, **labels) - total(last, name, **labels)) / dt

        delays = {
            q: [
                v
                for lab, v in metrics.get("livetwin_transcode_delay_seconds", [])
                if lab.get("quantile") == q
            ]
            for q in ("0.5", "0.95")
        }
        row: dict[str, Any] = {
            "t_s": round(t, 3),
            "dt_s": round(dt, 4),
            "viewers": self.schedule.viewers(t),
            "chatters": self.spec.chatters,
            "origin_rps": rate("livetwin_origin_requests_total"),
            "held_requests": total(metrics, "livetwin_origin_held_requests"),
            "chat_deliveries_per_s": rate("livetwin_chat_messages_delivered_total"),
            "cpu_platform": cpu["platform"] / dt,
            "cpu_transcode": cpu["transcode"] / dt,
            "cpu_loadgen": cpu["loadgen"] / dt,
            "transcode_restarts": total(metrics, "livetwin_transcode_restarts_total"),
            "transcode_delay_p50_s": sum(delays["0.5"]) / len(delays["0.5"]) if delays["0.5"] else None,
            "transcode_delay_p95_s": sum(delays["0.95"]) / len(delays["0.95"]) if delays["0.95"] else None,
        }
        for kind in KINDS:
            row[f"rps_{kind}"] = rate("livetwin_origin_requests_total", kind=kind)
        return row


def cdn_rates(now: Metrics, before: Metrics, dt: float) -> dict[str, float]:
    """Requests/s the shields and the edges answered, and the edges' cache hits and lookups per s,
    from two scrapes of `live cdn`'s `livetwin_cdn_responses_total{node,role,cache,status}`."""

    def rate(role: str, caches: Sequence[str] | None = None, lookups: bool = False) -> float:
        def count(metrics: Metrics) -> float:
            return sum(
                v
                for lab, v in metrics.get("livetwin_cdn_responses_total", [])
                if lab.get("role") == role
                and (caches is None or lab.get("cache") in caches)
                and (not lookups or lab.get("cache") != "-")
            )

        return max(0.0, count(now) - count(before)) / dt

    return {
        "shield_rps": rate("shield"),
        "edge_rps": rate("edge"),
        "edge_hits_per_s": rate("edge", CDN_HITS),
        "edge_lookups_per_s": rate("edge", lookups=True),
    }


def apply_fault(fault: RealFault, base: str, channels: Sequence[str], t: float) -> dict[str, Any]:
    """Apply a worker_kill now (spikes are the Locust shape's business); say what was done."""
    record: dict[str, Any] = {"kind": fault.kind, "at_s": round(t, 3), "stream_rank": fault.stream_rank}
    if fault.kind != RealFaultKind.WORKER_KILL:
        return record
    channel = channels[fault.stream_rank - 1]
    metrics = scrape(f"{base}/metrics")
    pids = [
        int(v) for lab, v in metrics.get("livetwin_transcode_worker_pid", []) if lab.get("channel") == channel
    ]
    if not pids:
        raise RealRunError(f"worker_kill at {t:.1f} s: channel {channel} has no transcode worker to kill")
    os.kill(pids[0], signal.SIGKILL)
    record.update(channel=channel, pid=pids[0])
    return record

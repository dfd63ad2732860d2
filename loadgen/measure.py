"""Reduce a real run's raw samples to measured.json (docs/validation.md): pure functions.

`loadgen.realrun` samples once a second (CPU per role, the platform's /metrics) and collects
the Locust users' player events and the probe's report; everything here turns those into the
numbers the twin predicts, over the measurement window only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ROLES = ("platform", "transcode", "loadgen")
KINDS = ("multivariant", "playlist", "part", "segment", "init")


@dataclass(slots=True)
class CpuDelta:
    """CPU seconds per role between two samples, from per-process totals (pid -> seconds).

    A process present in both samples contributes its increase; a process that appeared
    contributes all its CPU time (it started within the interval); one that vanished (a killed
    worker) loses at most one interval of its time, which is why sampling is once a second.
    """

    previous: dict[str, dict[int, float]] = field(default_factory=dict)

    def step(self, totals: Mapping[str, Mapping[int, float]]) -> dict[str, float]:
        out = {}
        for role in ROLES:
            now = totals.get(role, {})
            before = self.previous.get(role, {})
            out[role] = sum(max(0.0, cpu - before.get(pid, 0.0)) for pid, cpu in now.items())
        self.previous = {role: dict(totals.get(role, {})) for role in ROLES}
        return out


def quantile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated quantile (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _mean(values: Iterable[float]) -> float:
    items = list(values)
    return sum(items) / len(items) if items else 0.0


def in_window(rows: Sequence[Mapping[str, Any]], window: tuple[float, float]) -> list[Mapping[str, Any]]:
    return [r for r in rows if window[0] <= r["t_s"] < window[1]]


def summarize(
    rows: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    probe: Mapping[str, Any] | None,
    *,
    t0: float,
    window: tuple[float, float],
) -> dict[str, Any]:
    """The `measured` object of measured.json from per-second rows, player events and the probe."""
    sel = in_window(rows, window)
    if not sel:
        raise ValueError(f"no samples inside the measurement window {window}")
    rps = [r["origin_rps"] for r in sel]
    peak = max(_mean(rps[i : i + 5]) for i in range(max(1, len(rps) - 4)))
    evs = [e for e in events if window[0] <= e["t"] - t0 < window[1]]

    def values(kind: str, name: str | None = None) -> list[float]:
        return [
            e["value_ms"] / 1000 for e in evs if e["type"] == kind and (name is None or e["name"] == name)
        ]

    stalls = sum(values("REBUFFER"))
    watched = sum(r["viewers"] * r.get("dt_s", 1.0) for r in sel)  # viewer-seconds scheduled in the window
    startup = values("STARTUP")
    delays50 = [r["transcode_delay_p50_s"] for r in sel if r.get("transcode_delay_p50_s") is not None]
    delays95 = [r["transcode_delay_p95_s"] for r in sel if r.get("transcode_delay_p95_s") is not None]
    measured: dict[str, Any] = {
        "origin_rps": _mean(rps),
        "origin_rps_peak": peak,
        "origin_rps_by_kind": {k: _mean(r.get(f"rps_{k}", 0.0) for r in sel) for k in KINDS},
        "held_requests_mean": _mean(r["held_requests"] for r in sel),
        "chat_deliveries_per_s": _mean(r["chat_deliveries_per_s"] for r in sel),
        "cpu_cores": {role: _mean(r[f"cpu_{role}"] for r in sel) for role in ROLES},
        "cpu_cores_peak": {role: max(r[f"cpu_{role}"] for r in sel) for role in ROLES},
        "transcode_delay_s": {"p50": _mean(delays50), "p95": _mean(delays95)},
        "rebuffer_ratio": stalls / watched if watched > 0 else 0.0,
        "startup_s": {"p50": quantile(startup, 0.5), "p95": quantile(startup, 0.95)},
        "viewer_seconds": watched,
        "stall_seconds": stalls,
    }
    measured["glass_to_glass_s"] = glass_to_glass(probe)
    return measured


def glass_to_glass(probe: Mapping[str, Any] | None) -> dict[str, Any]:
    """The probe's glass-to-glass percentiles in seconds: painted capture -> frame out of its decoder.

    The decode clock is the one validated: the playout clock adds the probe's own join offset
    (its first frame's lateness, kept for the whole run), which one probe samples only once;
    its percentiles are kept beside as ``playout_*``.
    """
    if not probe:
        return {"p50": None, "p95": None, "p99": None, "clock": "decode"}
    decode = probe.get("latency_ms")
    playout = probe.get("playout_latency_ms")
    out: dict[str, Any] = {"clock": "decode"}
    for q in ("p50", "p95", "p99"):
        out[q] = decode[q] / 1000 if decode and decode.get(q) is not None else None
        out[f"playout_{q}"] = playout[q] / 1000 if playout and playout.get(q) is not None else None
    return out

"""From a real run's samples to its run directory: timeseries.csv, measured.json, run.json.

The files and their columns are the contract `twin calibrate` and `twin validate` read
(twin.validation.rundir, docs/validation.md); the report (report.html) is rendered from them
by `loadgen.cli`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import platform as platform_info
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loadgen.measure import KINDS, in_window, summarize
from loadgen.realrun.sample import CDN_COLUMNS
from loadgen.schedule import ViewerSchedule
from twin.scenario.schema import RealSpec
from twin.validation.deployment import real_ladder
from twin.validation.rundir import TIMESERIES_COLUMNS as REQUIRED_COLUMNS

TIMESERIES_COLUMNS = (  # what twin.validation.rundir requires, then what the report adds
    *REQUIRED_COLUMNS,
    "dt_s",
    "transcode_delay_p50_s",
    "transcode_delay_p95_s",
    *(f"rps_{k}" for k in KINDS),
    *CDN_COLUMNS,  # blank unless the run had CDN tiers
)


def machine() -> dict[str, Any]:
    model = platform_info.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "hostname": socket.gethostname(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform_info.python_version(),
        "platform": platform_info.platform(),
    }


def _events(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            with contextlib.suppress(ValueError):
                yield json.loads(line)


def _locust_percentiles(path: Path, name: str) -> dict[str, float | None]:
    """p50/p95 (seconds) of one request name from Locust's stats CSV (whole run: Locust keeps no times)."""
    with contextlib.suppress(OSError), path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if (
                row.get("Type") == "GET"
                and row.get("Name") == name
                and row.get("50%") not in (None, "", "N/A")
            ):
                return {"p50": float(row["50%"]) / 1000, "p95": float(row["95%"]) / 1000}
    return {"p50": None, "p95": None}


def measure(
    out: Path,
    rows: list[dict[str, Any]],
    event_log: Path,
    probe_report: dict[str, Any] | None,
    *,
    t0: float,
    window: tuple[float, float],
) -> dict[str, Any]:
    """measured.json's `measured`: the samples, player events, probe report and Locust stats reduced."""
    measured = summarize(rows, list(_events(event_log)), probe_report, t0=t0, window=window)
    measured["part_fetch_s"] = _locust_percentiles(out / "locust_stats.csv", "part")
    measured["hinted_part_s"] = _locust_percentiles(out / "locust_stats.csv", "preload-hint")
    measured.update(cdn_measured(rows, window))
    return measured


def cdn_measured(rows: list[dict[str, Any]], window: tuple[float, float]) -> dict[str, Any]:
    """Window means of the shields' and edges' requests/s and the edges' hit ratio (hits over
    cache lookups, summed over the window); nothing for a run without CDN tiers."""
    sel = [r for r in in_window(rows, window) if r.get("edge_lookups_per_s") is not None]
    if not sel:
        return {}
    lookups = sum(r["edge_lookups_per_s"] * r["dt_s"] for r in sel)
    hits = sum(r["edge_hits_per_s"] * r["dt_s"] for r in sel)
    return {
        "shield_rps": sum(r["shield_rps"] for r in sel) / len(sel),
        "edge_rps": sum(r["edge_rps"] for r in sel) / len(sel),
        "edge_hit_ratio": hits / lookups if lookups else None,
    }


def write_run_dir(
    out: Path,
    rows: list[dict[str, Any]],
    measured: dict[str, Any],
    spec: RealSpec,
    schedule: ViewerSchedule,
    window: tuple[float, float],
    run: dict[str, Any],
) -> None:
    with (out / "timeseries.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=TIMESERIES_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row.get(k) is None else row[k]) for k in TIMESERIES_COLUMNS})
    src = spec.source
    sel = [r for r in rows if window[0] <= r["t_s"] < window[1]]
    payload = {
        "schema": 1,
        "kind": "real",
        "scenario": run["scenario"],
        "window_s": list(window),
        "load": {
            "channels": spec.channels,
            "ladder": spec.ladder,
            "rungs": [r.name for r in real_ladder(spec)],  # the platform's ladder policy on the source
            "viewers_mean": sum(r["viewers"] for r in sel) / len(sel) if sel else 0.0,
            "viewers_peak": schedule.peak_viewers(),
            "chatters": spec.chatters,
            "chat_messages_per_s": spec.chat_messages_per_s,
            "publish_kbps": src.bitrate_kbps,
        },
        "measured": measured,
    }
    (out / "measured.json").write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    (out / "run.json").write_text(json.dumps(run, indent=2) + "\n", encoding="utf-8")

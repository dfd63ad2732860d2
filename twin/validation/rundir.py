"""Reading a real run directory (`loadgen run`, docs/validation.md) into plain data.

Only what `twin calibrate` and `twin validate` need: provenance (run.json), the measured
summary (measured.json), the per-second rows (timeseries.csv) and the `real:` section as run.
Every missing file, field or wrong type is a `RunDirError` naming the file and the field.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from twin.scenario.nodes import ScenarioError
from twin.scenario.reader import parse_scenario
from twin.scenario.schema import RealSpec
from twin.validation.checks import number_at

TIMESERIES_COLUMNS = (
    "t_s",
    "viewers",
    "chatters",
    "origin_rps",
    "held_requests",
    "chat_deliveries_per_s",
    "cpu_platform",
    "cpu_transcode",
    "cpu_loadgen",
    "transcode_restarts",
)

#: Keys of RealFault that only viral_spike has (a worker_kill written by asdict carries them too).
_SPIKE_ONLY = ("factor", "ramp_s", "duration_s")
#: Fields only tier faults (kill, hang, link faults) take, with the values a dump of any other
#: fault holds; and the fields of other faults a dump of a tier fault holds.
_TIER_ONLY = {"target": "", "between": [], "loss_pct": 0.0, "delay_ms": 0.0, "jitter_ms": 0.0, "rate_kbit": 0}
_NOT_TIER = ("stream_rank", "factor", "ramp_s")
_TIER_KINDS = {"kill", "hang", "partition", "loss", "latency", "bandwidth"}

# The smallest scenario the parser accepts; only its `real:` section is read.
_SHELL = {
    "name": "run",
    "duration_s": 60,
    "regions": [
        {
            "name": "local",
            "viewer_share": 1.0,
            "streamer_share": 1.0,
            "rtt_ms": 1,
            "edge_pops": 1,
            "edge_servers_per_pop": 1,
            "shield_servers": 1,
            "ingest_capacity_streams": 16,
        }
    ],
    "fleet": {
        "gpu": {"nodes": 0},
        "cpu": {"nodes": 1},
        "origin": {"nodes": 1},
        "chat": {"nodes": 1},
        "ad_servers": 1,
    },
    "workload": {"viewers": 10, "streamers": 20, "top_k": 2},
    "slos": {"glass_to_glass_p95_s": 1.5, "rebuffer_ratio": 0.01, "availability": 0.999},
}


class RunDirError(ValueError):
    """The run directory is incomplete or malformed (whoever wrote it is at fault)."""


@dataclass(frozen=True, slots=True)
class RealRun:
    path: Path
    run_id: str
    run: dict[str, Any]
    measured: dict[str, Any]
    rows: list[dict[str, float]]
    spec: RealSpec | None

    @property
    def window(self) -> tuple[float, float]:
        lo, hi = self.measured["window_s"]
        return float(lo), float(hi)

    @property
    def machine(self) -> str:
        m = self.run.get("machine") or {}
        if not isinstance(m, dict):
            return str(m)
        parts = [str(m.get(k)) for k in ("hostname", "cpu_model") if m.get(k)]
        if m.get("cpus"):
            parts.append(f"{m['cpus']} CPUs")
        return ", ".join(parts) or "unknown machine"

    def value(self, *path: str) -> float:
        """A number under measured.json's `measured`; NaN when the run did not measure it."""
        return number_at(self.measured["measured"], path)


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RunDirError(f"{path}: missing (is {path.parent} a real run directory?)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunDirError(f"{path}: cannot read: {exc}") from exc
    if not isinstance(data, dict):
        raise RunDirError(f"{path}: expected a JSON object")
    return data


def _rows(path: Path) -> list[dict[str, float]]:
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in TIMESERIES_COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise RunDirError(f"{path}: missing columns {', '.join(missing)}")
            rows = []
            for i, raw in enumerate(reader, start=2):
                row = {}
                for c in TIMESERIES_COLUMNS:
                    try:
                        row[c] = float(raw[c]) if raw[c] not in ("", None) else math.nan
                    except ValueError as exc:
                        raise RunDirError(f"{path}:{i}: {c}: not a number: {raw[c]!r}") from exc
                rows.append(row)
    except FileNotFoundError as exc:
        raise RunDirError(f"{path}: missing (is {path.parent} a real run directory?)") from exc
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RunDirError(f"{path}: cannot read: {exc}") from exc
    if not rows:
        raise RunDirError(f"{path}: no rows")
    return rows


def spec_from_mapping(data: Any, origin: str) -> RealSpec:
    """Parse a `real:` section stored as a mapping (the YAML as written, or a dataclass dump)."""
    if not isinstance(data, dict):
        raise RunDirError(f"{origin}: real: expected a mapping")
    real = dict(data)
    faults = []
    for f in real.get("faults") or []:
        f = dict(f) if isinstance(f, dict) else f
        if isinstance(f, dict) and f.get("kind") == "worker_kill":
            for key in _SPIKE_ONLY:
                f.pop(key, None)
        if isinstance(f, dict):  # a dataclass dump holds every field; the YAML only its kind's
            for key, unset in _TIER_ONLY.items():
                if key in f and f[key] in (unset, ()):
                    del f[key]
            if f.get("kind") in _TIER_KINDS:
                for key in _NOT_TIER:
                    f.pop(key, None)
        faults.append(f)
    if "faults" in real:
        real["faults"] = faults
    if "cdn" in real and real["cdn"] is None:  # a dataclass dump of a run without CDN tiers
        del real["cdn"]
    try:
        scenario = parse_scenario(yaml.safe_dump({**_SHELL, "real": real}, sort_keys=False), origin)
    except ScenarioError as exc:
        raise RunDirError(f"{origin}: the real: section as run is not valid: {exc.field}: {exc}") from exc
    assert scenario.real is not None
    return scenario.real


def run_dir_hash(path: str | Path) -> str:
    """SHA-256 over a run directory's files (relative names and bytes, in name order): provenance
    that names exactly which measurements a calibration came from."""
    root = Path(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(file.relative_to(root).as_posix().encode() + b"\0")
        digest.update(file.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def read_run(path: str | Path) -> RealRun:
    """Load a real run directory; its `real:` section comes from run.json (None if absent)."""
    p = Path(path)
    if not p.is_dir():
        raise RunDirError(f"{p}: not a directory")
    run = _json(p / "run.json")
    measured = _json(p / "measured.json")
    if measured.get("kind") != "real":
        raise RunDirError(f"{p / 'measured.json'}: kind: expected 'real', got {measured.get('kind')!r}")
    if not isinstance(measured.get("measured"), dict):
        raise RunDirError(f"{p / 'measured.json'}: measured: expected an object")
    window = measured.get("window_s")
    if (
        not isinstance(window, list)
        or len(window) != 2
        or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in window)
        or not window[0] < window[1]
    ):
        raise RunDirError(f"{p / 'measured.json'}: window_s: expected [start, end] seconds, got {window!r}")
    if not isinstance(measured.get("load"), dict):
        raise RunDirError(f"{p / 'measured.json'}: load: expected an object")
    spec = spec_from_mapping(run["real"], str(p / "run.json")) if "real" in run else None
    run_id = str(run.get("run_id") or p.name)
    return RealRun(p, run_id, run, measured, _rows(p / "timeseries.csv"), spec)

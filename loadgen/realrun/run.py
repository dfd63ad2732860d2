"""`loadgen run`'s sequence: launch, sample once a second until the run ends, stop, reduce.

Starts `live serve` (embedded SQLite, loopback ports), one clock-painting publisher per
channel, Locust (viewer users following the scenario's schedule and spikes, chat users,
`locust_processes` workers when asked), and the probe viewer on channel 1 from the end of the
warm-up; kills transcode workers when the scenario says so; samples every second; then
writes the run directory (docs/validation.md). Every child process is bounded in time and
killed if it outlives the run. Returns plain data (the directory); `loadgen.cli` renders the
report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadgen.faults.plan import FaultPlan
from loadgen.faults.timeline import Timeline
from loadgen.locustfiles.settings import LocustSettings
from loadgen.realrun.launch import (
    LIVE_TIMEOUT_S,
    PROBE_RENDITION,
    CdnTier,
    Children,
    Ports,
    RealRunError,
    channel_names,
    chat_accounts,
    chat_tokens,
    check_chat_rate,
    start_cdn,
    start_locust,
    start_platform,
    start_probe,
    start_publishers,
    wait_live,
)
from loadgen.realrun.reduce import machine, measure, write_run_dir
from loadgen.realrun.sample import Sampler, apply_fault
from loadgen.realrun.tiers import check_tier_faults, fault_record, targets
from loadgen.schedule import ViewerSchedule
from twin.scenario.reader import load_scenario
from twin.scenario.schema import LINK_FAULTS, PROCESS_FAULTS


def run_real(scenario_path: Path, out: Path, *, seed: int = 1, command: str | None = None) -> Path:
    """Perform `scenario_path`'s real: section; write the run directory `out` and return it."""
    scenario = load_scenario(scenario_path)
    spec = scenario.real
    if spec is None:
        raise RealRunError(f"{scenario_path}: has no real: section")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("locust_*.csv"):
        stale.unlink()
    check_chat_rate(spec)
    check_tier_faults(spec)
    schedule = ViewerSchedule.from_spec(spec)
    channels = channel_names(spec)
    ports = Ports.free()
    base = ports.base
    data = Path(tempfile.mkdtemp(prefix="livetwin-run-"))
    children = Children()
    started_at = datetime.now(UTC)
    run_id = f"{scenario.name}-{started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    end_s = spec.warmup_s + spec.duration_s
    events: list[dict[str, Any]] = []
    cdn: CdnTier | None = None
    probe_report: dict[str, Any] | None = None
    event_log = out / "player_events.jsonl"
    event_log.unlink(missing_ok=True)
    tier_faults = tuple(f for f in spec.faults if f.kind in PROCESS_FAULTS or f.kind in LINK_FAULTS)
    fault_timeline = Timeline(run_id)
    plan = FaultPlan(tier_faults, targets(children), fault_timeline)
    sampler = Sampler(base, schedule, spec)
    try:
        serve = start_platform(children, ports, data, channels, out)
        if spec.cdn is not None:  # viewers and the probe fetch through nginx edges
            cdn = start_cdn(children, base, spec.cdn, data, out)
            sampler = Sampler(base, schedule, spec, cdn.metrics_url)
        start_publishers(children, ports, spec, out)
        wait_live(base, channels, children, time.monotonic() + LIVE_TIMEOUT_S)
        t0 = time.time()
        fault_timeline.t0 = time.monotonic()
        plan.start()  # tier faults (a hung origin) on their own threads, timed from t0 too
        settings = dataclasses.replace(
            LocustSettings.from_environ(os.environ),
            chat_channel=channels[0],
            chat_port=ports.chat,
            event_log=str(event_log),
            schedule=schedule,
            t0=t0,
            channels=tuple(channels),
            edges=cdn.edges if cdn is not None else (),
        )
        if spec.chatters:
            settings = dataclasses.replace(
                settings,
                chat_tokens=tuple(chat_tokens(base, chat_accounts(spec))),
                chat_rate=spec.chat_messages_per_s / spec.chatters,
            )
        locust = start_locust(children, base, out, settings, seed=seed, processes=spec.locust_processes)
        faults = sorted((f for f in spec.faults if f not in tier_faults), key=lambda f: f.at_s)
        next_tick = t0 + 1.0
        probe_started = False
        while (t := (now := time.time()) - t0) < end_s:
            if not probe_started and t >= spec.warmup_s:
                probe_base = cdn.edges[0] if cdn is not None else base
                start_probe(children, probe_base, channels[0], spec.duration_s, out)
                probe_started = True
            while faults and faults[0].at_s <= t:
                events.append(apply_fault(faults.pop(0), base, channels, t))
            if serve.poll() is not None:  # a hang stops it, never ends it
                raise RealRunError(f"the platform exited with status {serve.returncode} (see platform.log)")
            sampler.sample(t, now, serve, children)
            time.sleep(max(0.0, next_tick - time.time()))  # pace the samples: one a second
            next_tick += 1.0
        children.stop("locust", timeout_s=30)
        if "probe" in children.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                children.procs["probe"].wait(timeout=30)
        for role in ("probe", "publishers", "cdn", "platform"):
            children.stop(role)
        if locust.returncode not in (0, 1):  # 1: some requests failed, which the stats show
            raise RealRunError(f"locust exited with status {locust.returncode} (see locust.log)")
        with contextlib.suppress(OSError, ValueError):
            probe_report = json.loads((out / "probe.json").read_text(encoding="utf-8"))
    finally:
        plan.close()  # every hung tier gets SIGCONT before anything is stopped
        children.stop_all()
        shutil.rmtree(data, ignore_errors=True)
    window = (spec.warmup_s, end_s)
    measured = measure(out, sampler.rows, event_log, probe_report, t0=t0, window=window)
    run = {
        "schema": 1,
        "run_id": run_id,
        "scenario": scenario.name,
        "scenario_file": str(scenario_path),
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": command or " ".join(["loadgen", "run", str(scenario_path), "--out", str(out)]),
        "machine": machine(),
        "seed": seed,
        "real": {**dataclasses.asdict(spec), "faults": [fault_record(f) for f in spec.faults]},
        "channels": channels,
        "probe": {
            "rendition": PROBE_RENDITION,
            "channel": channels[0],
            "via": cdn.edges[0] if cdn is not None else "origin",
        },
        "cdn": None if cdn is None else {"edges": list(cdn.edges), "metrics": cdn.metrics_url},
        "events": events + [{**e, "at_s": e["t_s"]} for e in fault_timeline.events],
        "t0_unix": t0,
    }
    write_run_dir(out, sampler.rows, measured, spec, schedule, window, run)
    return out

"""`loadgen run`: perform a scenario's `real:` section on this machine and write a real run directory.

Starts `live serve` (embedded SQLite, loopback ports), one clock-painting publisher per
channel, Locust (viewer users following the scenario's schedule and spikes, chat users,
`--processes` workers when asked), and the probe viewer on channel 1; kills transcode workers
when the scenario says so (their pids come from the platform's /metrics); samples CPU per role
and the platform's /metrics once a second; then reduces everything to the files
docs/validation.md describes. Every child process is bounded in time and killed if it
outlives the run.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
import platform as platform_info
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import psutil
from live.chat.settings import ChatSettings
from prometheus_client.parser import text_string_to_metric_families

from loadgen.measure import KINDS, CpuDelta, summarize
from loadgen.schedule import ViewerSchedule
from twin.scenario.reader import load_scenario
from twin.scenario.schema import RealFaultKind, RealSpec
from twin.validation.rundir import TIMESERIES_COLUMNS as REQUIRED_COLUMNS

LIVE_TIMEOUT_S = 90.0  # publishers must all be live this soon after they start
STOP_GRACE_S = 15.0
CHAT_ACCOUNTS = 5  # the API's sign-up limit per client (5 an hour): senders share these accounts
PROBE_RENDITION = "lowest"  # a transcoded rung: the probe measures the whole path
TIMESERIES_COLUMNS = (  # what twin.validation.rundir requires, then what the report adds
    *REQUIRED_COLUMNS,
    "dt_s",
    "transcode_delay_p50_s",
    "transcode_delay_p95_s",
    *(f"rps_{k}" for k in KINDS),
)


class RealRunError(RuntimeError):
    """The real run could not be performed (the platform or a load generator failed)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def channel_names(spec: RealSpec) -> list[str]:
    return [f"ch{i + 1}" for i in range(spec.channels)]


@dataclasses.dataclass
class _Children:
    """The run's child processes by role, each with where its output goes."""

    procs: dict[str, subprocess.Popen[bytes]] = dataclasses.field(default_factory=dict)
    logs: list[IO[bytes]] = dataclasses.field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        log: Path,
        env: dict[str, str] | None = None,
        stdout: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        err = open(log, "ab")  # noqa: SIM115 - closed in stop_all
        out = open(stdout, "wb") if stdout is not None else err  # noqa: SIM115
        self.logs += [err] if out is err else [err, out]
        proc = subprocess.Popen(
            list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
        self.procs[name] = proc
        return proc

    def stop(self, name: str, sig: int = signal.SIGINT, timeout_s: float = STOP_GRACE_S) -> None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)
        for log in self.logs:
            log.close()


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


def _scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=2) as response:
        text = response.read().decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def _total(metrics: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for lab, v in metrics.get(name, []) if all(lab.get(k) == x for k, x in labels.items()))


def _wait_live(base: str, channels: Sequence[str], children: _Children, deadline: float) -> None:
    pending = set(channels)
    while pending:
        if time.monotonic() > deadline:
            raise RealRunError(f"channels {sorted(pending)} not live within {LIVE_TIMEOUT_S:g} s")
        for name, proc in children.procs.items():
            if proc.poll() is not None:
                raise RealRunError(f"{name} exited with status {proc.returncode} before the run started")
        for ch in sorted(pending):
            url = f"{base}/hls/{ch}/master.m3u8"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    pending.discard(ch)
        time.sleep(0.25)


def _chat_tokens(base: str, accounts: int) -> list[str]:
    """One account and API session per chat user that sends (the chat rate limit is per user)."""
    headers = {"Content-Type": "application/json"}
    tokens = []
    for i in range(accounts):
        creds = json.dumps({"username": f"loadgen_chat_{i}", "password": "loadgen chat password 1"}).encode()
        req = urllib.request.Request(f"{base}/api/v1/accounts", data=creds, headers=headers, method="POST")
        with contextlib.suppress(urllib.error.HTTPError):  # 409: exists already
            urllib.request.urlopen(req, timeout=10).close()
        req = urllib.request.Request(f"{base}/api/v1/sessions", data=creds, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            tokens.append(str(json.loads(r.read())["token"]))
    return tokens


def chat_accounts(spec: RealSpec) -> int:
    return min(spec.chatters, CHAT_ACCOUNTS)


def check_chat_rate(spec: RealSpec) -> None:
    """Refuse a chat load the platform's per-user rate limit would reject (it would measure refusals)."""
    if not spec.chatters or not spec.chat_messages_per_s:
        return
    limits = ChatSettings()
    accounts = chat_accounts(spec)
    per_user = spec.chat_messages_per_s / accounts
    allowed = limits.rate_limit / limits.rate_window_s
    if per_user > allowed * 0.9:
        raise RealRunError(
            f"real.chat_messages_per_s: {spec.chat_messages_per_s:g} msg/s from {accounts} chat accounts "
            f"(the API signs up at most {CHAT_ACCOUNTS} per client an hour) is {per_user:.2f} msg/s per "
            f"user; the platform allows {limits.rate_limit} per {limits.rate_window_s:g} s "
            f"({allowed:.2f}/s): lower the rate to {allowed * 0.9 * accounts:.1f} msg/s or less"
        )


def _machine() -> dict[str, Any]:
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
    schedule = ViewerSchedule.from_spec(spec)
    channels = channel_names(spec)
    rtmp, http, chat = _free_port(), _free_port(), _free_port()
    base = f"http://127.0.0.1:{http}"
    data = Path(tempfile.mkdtemp(prefix="livetwin-run-"))
    children = _Children()
    started_at = datetime.now(UTC)
    run_id = f"{scenario.name}-{started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    end_s = spec.warmup_s + spec.duration_s
    events: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    probe_report: dict[str, Any] | None = None
    event_log = out / "player_events.jsonl"
    event_log.unlink(missing_ok=True)
    try:
        seeds = [arg for i, ch in enumerate(channels) for arg in ("--channel", f"{ch}=runkey_{i}")]
        serve = children.start(
            "platform",
            [
                sys.executable,
                "-m",
                "live.cli",
                "serve",
                "--rtmp-port",
                str(rtmp),
                "--http-port",
                str(http),
                "--chat-port",
                str(chat),
                "--data",
                str(data),
                *seeds,
            ],
            out / "platform.log",
        )
        time.sleep(1.0)
        src = spec.source
        children.start(
            "publishers",
            [
                sys.executable,
                "-m",
                "loadgen.cli",
                "publish",
                f"rtmp://127.0.0.1:{rtmp}/live/runkey"
                if spec.channels > 1
                else f"rtmp://127.0.0.1:{rtmp}/live/runkey_0",
                "-n",
                str(spec.channels),
                "--size",
                f"{src.width}x{src.height}",
                "--fps",
                str(src.fps),
                "--bitrate",
                str(src.bitrate_kbps),
                "--duration",
                str(int(end_s + LIVE_TIMEOUT_S + 30)),
            ],
            out / "publishers.log",
        )
        _wait_live(base, channels, children, time.monotonic() + LIVE_TIMEOUT_S)
        t0 = time.time()
        env = dict(os.environ)
        env.update(
            {
                "LIVETWIN_SCHEDULE": schedule.to_json(),
                "LIVETWIN_T0": repr(t0),
                "LIVETWIN_CHANNELS": ",".join(channels),
                "LIVETWIN_EVENT_LOG": str(event_log),
                "LIVETWIN_CHAT_CHANNEL": channels[0],
                "LIVETWIN_CHAT_PORT": str(chat),
                "PYTHONHASHSEED": str(seed),
            }
        )
        if spec.chatters:
            env["LIVETWIN_CHAT_TOKEN"] = ",".join(_chat_tokens(base, chat_accounts(spec)))
            env["LIVETWIN_CHAT_RATE"] = repr(spec.chat_messages_per_s / spec.chatters)
        files = Path(__file__).with_name("locustfiles")
        locust_argv = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            f"{files / 'realrun_users.py'},{files / 'event_log.py'}",
            "--headless",
            "--host",
            base,
            "--csv",
            str(out / "locust"),
            "--csv-full-history",
            "--stop-timeout",
            "5",
            "--only-summary",
        ]
        if spec.locust_processes > 1:
            locust_argv += ["--processes", str(spec.locust_processes)]
        locust = children.start("locust", locust_argv, out / "locust.log", env=env)
        probe_argv = [
            sys.executable,
            "-m",
            "loadgen.cli",
            "probe",
            f"{base}/hls/{channels[0]}/master.m3u8",
            "--duration",
            str(spec.duration_s),
            "--rendition",
            PROBE_RENDITION,
            "--json",
        ]
        cpu = CpuDelta()
        last_metrics: dict[str, list[tuple[dict[str, str], float]]] = {}
        last_t: float | None = None
        faults = sorted(spec.faults, key=lambda f: f.at_s)
        next_tick = t0 + 1.0
        probe_started = False
        while True:
            now = time.time()
            t = now - t0
            if t >= end_s:
                break
            if not probe_started and t >= spec.warmup_s:
                children.start("probe", probe_argv, out / "probe.log", stdout=out / "probe.json")
                probe_started = True
            while faults and faults[0].at_s <= t:
                fault = faults.pop(0)
                events.append(_apply(fault, base, channels, t))
            if serve.poll() is not None:
                raise RealRunError(f"the platform exited with status {serve.returncode} (see platform.log)")
            try:
                metrics = _scrape(f"{base}/metrics")
            except (urllib.error.URLError, OSError, ValueError):
                metrics = last_metrics
            platform_tree = _tree(serve.pid)  # the platform process, then its transcode workers
            roles = {
                "platform": _cpu(platform_tree[:1]),
                "transcode": _cpu(platform_tree[1:]),
                "loadgen": _cpu(
                    [
                        p
                        for name in ("publishers", "locust", "probe")
                        if name in children.procs
                        for p in _tree(children.procs[name].pid)
                    ]
                ),
            }
            step = cpu.step(roles)
            if last_t is not None:
                rows.append(_row(t, now - last_t, step, metrics, last_metrics, schedule, spec))
            last_metrics, last_t = metrics, now
            time.sleep(max(0.0, next_tick - time.time()))
            next_tick += 1.0
        children.stop("locust", timeout_s=30)
        if "probe" in children.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                children.procs["probe"].wait(timeout=30)
        children.stop("probe")
        children.stop("publishers")
        children.stop("platform")
        if locust.returncode not in (0, 1):  # 1: some requests failed, which the stats show
            raise RealRunError(f"locust exited with status {locust.returncode} (see locust.log)")
        with contextlib.suppress(OSError, ValueError):
            probe_report = json.loads((out / "probe.json").read_text(encoding="utf-8"))
    finally:
        children.stop_all()
        shutil.rmtree(data, ignore_errors=True)
    window = (spec.warmup_s, end_s)
    player_events = list(_events(event_log))
    measured = summarize(rows, player_events, probe_report, t0=t0, window=window)
    measured["part_fetch_s"] = _locust_percentiles(out / "locust_stats.csv", "part")
    measured["hinted_part_s"] = _locust_percentiles(out / "locust_stats.csv", "preload-hint")
    _write(
        out,
        rows,
        measured,
        spec,
        schedule,
        window,
        {
            "schema": 1,
            "run_id": run_id,
            "scenario": scenario.name,
            "scenario_file": str(scenario_path),
            "started_at": started_at.isoformat(timespec="seconds"),
            "command": command or " ".join(["loadgen", "run", str(scenario_path), "--out", str(out)]),
            "machine": _machine(),
            "seed": seed,
            "real": dataclasses.asdict(spec),
            "channels": channels,
            "probe": {"rendition": PROBE_RENDITION, "channel": channels[0]},
            "events": events,
            "t0_unix": t0,
        },
    )
    from reports.realrun import render_real_run

    render_real_run(out)
    return out


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


def _apply(fault: Any, base: str, channels: Sequence[str], t: float) -> dict[str, Any]:
    """Apply a worker_kill now (spikes are the Locust shape's business); say what was done."""
    record: dict[str, Any] = {"kind": fault.kind, "at_s": round(t, 3), "stream_rank": fault.stream_rank}
    if fault.kind != RealFaultKind.WORKER_KILL:
        return record
    channel = channels[fault.stream_rank - 1]
    metrics = _scrape(f"{base}/metrics")
    pids = [
        int(v) for lab, v in metrics.get("livetwin_transcode_worker_pid", []) if lab.get("channel") == channel
    ]
    if not pids:
        raise RealRunError(f"worker_kill at {t:.1f} s: channel {channel} has no transcode worker to kill")
    os.kill(pids[0], signal.SIGKILL)
    record.update(channel=channel, pid=pids[0])
    return record


def _row(
    t: float,
    dt: float,
    cpu: dict[str, float],
    metrics: dict[str, Any],
    last: dict[str, Any],
    schedule: ViewerSchedule,
    spec: RealSpec,
) -> dict[str, Any]:
    def rate(name: str, **labels: str) -> float:
        return max(0.0, _total(metrics, name, **labels) - _total(last, name, **labels)) / dt

    delays = {
        q: [v for lab, v in metrics.get("livetwin_transcode_delay_seconds", []) if lab.get("quantile") == q]
        for q in ("0.5", "0.95")
    }
    row: dict[str, Any] = {
        "t_s": round(t, 3),
        "dt_s": round(dt, 4),
        "viewers": schedule.viewers(t),
        "chatters": spec.chatters,
        "origin_rps": rate("livetwin_origin_requests_total"),
        "held_requests": _total(metrics, "livetwin_origin_held_requests"),
        "chat_deliveries_per_s": rate("livetwin_chat_messages_delivered_total"),
        "cpu_platform": cpu["platform"] / dt,
        "cpu_transcode": cpu["transcode"] / dt,
        "cpu_loadgen": cpu["loadgen"] / dt,
        "transcode_restarts": _total(metrics, "livetwin_transcode_restarts_total"),
        "transcode_delay_p50_s": sum(delays["0.5"]) / len(delays["0.5"]) if delays["0.5"] else None,
        "transcode_delay_p95_s": sum(delays["0.95"]) / len(delays["0.95"]) if delays["0.95"] else None,
    }
    for kind in KINDS:
        row[f"rps_{kind}"] = rate("livetwin_origin_requests_total", kind=kind)
    return row


def _write(
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
    from twin.validation.deployment import real_ladder  # the platform's ladder policy on the run's source

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
            "rungs": [r.name for r in real_ladder(spec)],
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

"""Starting what a real run needs: `live serve`, the publishers, Locust and the probe viewer.

Every child is its own session (so a stop reaches its whole process tree), writes to a log in
the run directory, and is waited for by what it serves, not by a fixed sleep: the platform by
its TCP ports, the publishers by their channels' playlists. Every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from live.chat.settings import ChatSettings

from loadgen.locustfiles.settings import LocustSettings
from twin.scenario.schema import RealCdn, RealSpec

LIVE_TIMEOUT_S = 90.0  # publishers must all be live this soon after they start
PORT_TIMEOUT_S = 30.0  # the platform must listen this soon after it starts
STOP_GRACE_S = 15.0
CDN_START_ATTEMPTS = 3  # free port blocks tried for `live cdn` (another process may take one first)
CHAT_ACCOUNTS = 5  # the API's sign-up limit per client (5 an hour): senders share these accounts
PROBE_RENDITION = "lowest"  # a transcoded rung: the probe measures the whole path
LOCUSTFILES = Path(__file__).resolve().parents[1] / "locustfiles"


class RealRunError(RuntimeError):
    """The real run could not be performed (the platform or a load generator failed)."""


@dataclasses.dataclass(frozen=True, slots=True)
class Ports:
    """The platform's loopback ports for this run."""

    rtmp: int
    http: int
    chat: int

    @classmethod
    def free(cls) -> Ports:
        return cls(_free_port(), _free_port(), _free_port())

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_block(count: int, host: str = "127.0.0.1") -> int:
    """A first port of `count` consecutive free loopback ports (`live cdn --base-port`)."""
    rng = random.Random()
    for _ in range(100):
        base = rng.randrange(20_000, 60_000 - count)
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind((host, port))
        except OSError:
            continue
        return base
    raise RealRunError(f"no {count} consecutive free ports on {host} for the CDN tiers")


def channel_names(spec: RealSpec) -> list[str]:
    return [f"ch{i + 1}" for i in range(spec.channels)]


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


@dataclasses.dataclass
class Children:
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

    def check_alive(self, when: str) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RealRunError(f"{name} exited with status {proc.returncode} {when}")

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


def wait_for_ports(
    ports: Sequence[int], children: Children, deadline: float, host: str = "127.0.0.1"
) -> None:
    """Return once every port accepts a TCP connection; fail at `deadline` or when a child exits."""
    pending = list(ports)
    while pending:
        children.check_alive("before it listened")
        with contextlib.suppress(OSError), socket.create_connection((host, pending[0]), timeout=1.0):
            pending.pop(0)
            continue
        if time.monotonic() > deadline:
            raise RealRunError(f"nothing listens on {host}:{pending[0]} after {PORT_TIMEOUT_S:g} s")
        time.sleep(0.05)


def wait_live(base: str, channels: Sequence[str], children: Children, deadline: float) -> None:
    """Return once every channel's multivariant playlist is served (its publisher is live)."""
    pending = set(channels)
    while pending:
        if time.monotonic() > deadline:
            raise RealRunError(f"channels {sorted(pending)} not live within {LIVE_TIMEOUT_S:g} s")
        children.check_alive("before the run started")
        for ch in sorted(pending):
            url = f"{base}/hls/{ch}/master.m3u8"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    pending.discard(ch)
        time.sleep(0.25)


def chat_tokens(base: str, accounts: int) -> list[str]:
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


def start_platform(
    children: Children, ports: Ports, data: Path, channels: Sequence[str], out: Path
) -> subprocess.Popen[bytes]:
    """`live serve` on loopback with one stream key per channel; returns once it listens."""
    keys = [arg for i, ch in enumerate(channels) for arg in ("--channel", f"{ch}=runkey_{i}")]
    argv = [
        sys.executable,
        "-m",
        "live.cli",
        "serve",
        "--rtmp-port",
        str(ports.rtmp),
        "--http-port",
        str(ports.http),
        "--chat-port",
        str(ports.chat),
        "--data",
        str(data),
        "--dev",
        *keys,
    ]
    serve = children.start("platform", argv, out / "platform.log")
    wait_for_ports((ports.rtmp, ports.http, ports.chat), children, time.monotonic() + PORT_TIMEOUT_S)
    return serve


def start_publishers(children: Children, ports: Ports, spec: RealSpec, out: Path) -> None:
    """One clock-painting publisher per channel (`loadgen publish`), outliving the run by a margin."""
    src = spec.source
    key = "runkey" if spec.channels > 1 else "runkey_0"
    end_s = spec.warmup_s + spec.duration_s
    argv = [
        sys.executable,
        "-m",
        "loadgen.cli",
        "publish",
        f"rtmp://127.0.0.1:{ports.rtmp}/live/{key}",
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
    ]
    children.start("publishers", argv, out / "publishers.log")


def start_locust(
    children: Children, base: str, out: Path, settings: LocustSettings, *, seed: int, processes: int
) -> subprocess.Popen[bytes]:
    """Locust headless with the run's users and shape; `settings` travel as LIVETWIN_* variables."""
    env = dict(os.environ) | settings.to_environ() | {"PYTHONHASHSEED": str(seed)}
    argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{LOCUSTFILES / 'realrun_users.py'},{LOCUSTFILES / 'event_log.py'}",
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
    if processes > 1:
        argv += ["--processes", str(processes)]
    return children.start("locust", argv, out / "locust.log", env=env)


def start_probe(children: Children, base: str, channel: str, duration_s: float, out: Path) -> None:
    """The probe viewer (`loadgen probe`) on `channel`, its JSON report into probe.json."""
    argv = [
        sys.executable,
        "-m",
        "loadgen.cli",
        "probe",
        f"{base}/hls/{channel}/master.m3u8",
        "--duration",
        str(duration_s),
        "--rendition",
        PROBE_RENDITION,
        "--json",
    ]
    children.start("probe", argv, out / "probe.log", stdout=out / "probe.json")


@dataclasses.dataclass(frozen=True, slots=True)
class CdnTier:
    """The run's `live cdn`: its edges' base URLs and the Prometheus text of its nodes."""

    edges: tuple[str, ...]
    metrics_url: str


def start_cdn(children: Children, origin: str, cdn: RealCdn, data: Path, out: Path) -> CdnTier:
    """`live cdn` (nginx shields and edges) in front of `origin`; returns once every node listens.

    Its nginx processes are its children in its own session, so stopping `cdn` stops them all;
    each node's access log stays under `data` (the run's scratch directory).
    """
    nodes = cdn.shields + cdn.edges
    for attempt in range(CDN_START_ATTEMPTS):
        base = free_block(nodes + 1)  # the nodes, then the metrics port
        metrics_port = base + nodes
        argv = [
            sys.executable,
            "-m",
            "live.cli",
            "cdn",
            "--origin",
            origin,
            "--shields",
            str(cdn.shields),
            "--edges",
            str(cdn.edges),
            "--base-port",
            str(base),
            "--data",
            str(data / f"cdn{attempt}"),
            "--metrics-port",
            str(metrics_port),
        ]
        proc = children.start("cdn", argv, out / "cdn.log")
        try:
            wait_for_ports(range(base, base + nodes + 1), children, time.monotonic() + PORT_TIMEOUT_S)
        except RealRunError:
            # another process took one of the free ports first: `live cdn` refuses, try another block
            if proc.poll() is None or "taken" not in (out / "cdn.log").read_text(errors="replace"):
                raise
            continue
        edges = tuple(f"http://127.0.0.1:{base + cdn.shields + i}" for i in range(cdn.edges))
        return CdnTier(edges, f"http://127.0.0.1:{metrics_port}/metrics")
    raise RealRunError(f"live cdn found a port taken {CDN_START_ATTEMPTS} times (see cdn.log)")

"""Chat fan-out: one room, N connections, M messages/s in; live.chat vs a minimal websockets.broadcast.

Three processes per run, so clients never share the server's core: this driver; the server under
test (``--serve chat`` = ``live.chat.server.ChatServer`` with the in-process broker and the
SQLite session store, or ``--serve baseline`` = a bare websockets server that JSON-encodes each
message once and ``websockets.broadcast``s it to every connection the moment it arrives); and
the load process (``--load``), which opens N raw WebSocket connections (a hand-written handshake,
then it only counts the messages in the bytes it reads, so the load side stays cheap), a few
probe clients that parse every frame to time delivery, and one injector sending M messages/s
stamped with their send time. Both servers see the same messages in the same JSON shape.

Reported per server and N: deliveries/s (messages x receiving connections, counted by the load
side), p50/p99 delivery latency (injector send -> probe receive), server CPU (cores busy and
microseconds per delivery), and server RSS per idle connection. "in p50" is the median of
injector send -> server accept (the message's ``sent_at``), the part of the latency spent before
fan-out (the baseline's server stamps ``sent_at`` the same way).

    python bench/chat_fanout.py [--connections 1000,5000] [--rate 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _net import free_port

ROOM = "benchroom"
TOKEN = "bench-session-token"
MARKER = b'"type":"message"'


def raise_fd_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, wanted)) if hard != resource.RLIM_INFINITY else max(soft, wanted)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


# ---------------------------------------------------------------- servers


async def serve_chat(port: int, data_dir: Path) -> None:
    from live.api.storage import open_repository
    from live.chat.auth import RepositoryChatAuth
    from live.chat.broker import MemoryBroker
    from live.chat.server import ChatServer
    from live.chat.settings import ChatSettings

    repo = await open_repository(None, data_dir)
    account = await repo.create_account("bench_streamer", "unused-hash")
    await repo.create_session(account.id, hashlib.sha256(TOKEN.encode()).digest(), time.time() + 3600)
    await repo.create_channel(ROOM, account.id, "bench_key")
    settings = ChatSettings(
        rate_limit=1_000_000, rate_limit_privileged=1_000_000, ping_interval_s=None, max_text_chars=500,
        # every client and the injector connect from 127.0.0.1, the injector at M frames a second
        max_connections_per_address=1_000_000, frame_rate_per_s=1e9, frame_burst=1_000_000,
    )
    server = ChatServer(RepositoryChatAuth(repo), MemoryBroker(), settings)
    await server.start("127.0.0.1", port)
    print("ready", flush=True)
    await asyncio.Event().wait()


async def serve_baseline(port: int) -> None:
    from live.chat.protocol import ChatMessage, encode_event
    from websockets.asyncio.server import ServerConnection, broadcast, serve
    from websockets.exceptions import ConnectionClosed

    clients: set[ServerConnection] = set()
    next_id = 1

    async def handler(ws: ServerConnection) -> None:
        nonlocal next_id
        clients.add(ws)
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("type") == "send":
                    message = ChatMessage(next_id, "bench_streamer", frame["text"], int(time.time() * 1000))
                    next_id += 1
                    broadcast(clients, encode_event(message))
        clients.discard(ws)

    async with serve(handler, "127.0.0.1", port, compression=None, ping_interval=None, max_size=4096):
        print("ready", flush=True)
        await asyncio.Event().wait()


# ---------------------------------------------------------------- load


class RawCounter(asyncio.Protocol):
    """A WebSocket client that does the handshake and then only counts messages in what it reads."""

    def __init__(self, path: str, opened: asyncio.Future[None]) -> None:
        self.path = path
        self.opened = opened
        self.messages = 0
        self.tail = b""
        self.header = b""
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        transport.write(request.encode())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.upgraded:
            self.header += data
            end = self.header.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.header.startswith(b"HTTP/1.1 101"):
                if not self.opened.done():
                    self.opened.set_exception(RuntimeError(self.header[:80].decode(errors="replace")))
                return
            self.upgraded = True
            data = self.header[end + 4 :]
            if not self.opened.done():
                self.opened.set_result(None)
        chunk = self.tail + data
        self.messages += chunk.count(MARKER)
        self.tail = chunk[-(len(MARKER) - 1) :]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed before upgrade"))


async def open_counters(port: int, connections: int) -> list[RawCounter]:
    loop = asyncio.get_running_loop()
    counters: list[RawCounter] = []
    for start in range(0, connections, 200):
        batch = []
        for _ in range(min(200, connections - start)):
            opened: asyncio.Future[None] = loop.create_future()
            counter = RawCounter(f"/chat/{ROOM}", opened)
            await loop.create_connection(lambda c=counter: c, "127.0.0.1", port)  # type: ignore[misc]
            counters.append(counter)
            batch.append(opened)
        await asyncio.gather(*batch)
    return counters


async def stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def run_counter(port: int, connections: int) -> None:
    """Counter process: N cheap connections; answers "count" on stdin with the messages they read."""
    counters = await open_counters(port, connections)
    print("connected", flush=True)
    commands = await stdin_lines()
    while (await commands.readline()).strip() not in (b"exit", b""):
        print(sum(c.messages for c in counters), flush=True)


async def run_probe(port: int, rate: float, seconds: float, probes: int) -> dict[str, Any]:
    """Probe process: the injector and a few parsing clients that time every delivery."""
    from websockets.asyncio.client import connect

    path = f"/chat/{ROOM}"
    probe_ws = [
        await connect(f"ws://127.0.0.1:{port}{path}", compression=None, max_queue=None) for _ in range(probes)
    ]
    injector = await connect(f"ws://127.0.0.1:{port}{path}?token={TOKEN}", compression=None)
    print("connected", flush=True)
    commands = await stdin_lines()
    await commands.readline()  # "go"

    latencies: list[float] = []
    inbound: list[float] = []  # injector send -> server accept (sent_at), to split the latency
    probe_counts = [0] * probes
    sent = 0
    done_sending = asyncio.Event()

    async def probe(i: int) -> None:
        ws = probe_ws[i]
        while not (done_sending.is_set() and probe_counts[i] >= sent):
            try:
                raw = await asyncio.wait_for(ws.recv(), 0.2)
            except TimeoutError:
                continue
            now = time.time_ns()
            frame = json.loads(raw)
            items = frame["messages"] if frame.get("type") == "messages" else [frame]
            for item in items:
                if item.get("type") == "message" and item["text"].startswith("bench "):
                    probe_counts[i] += 1
                    latencies.append((now - int(item["text"].split()[2])) / 1e6)
                    inbound.append(item["sent_at"] - int(item["text"].split()[2]) / 1e6)

    probe_tasks = [asyncio.create_task(probe(i)) for i in range(probes)]
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < seconds:
        due = int(elapsed * rate) + 1
        while sent < due:
            text = f"bench {sent} {time.time_ns()} " + "x" * 60
            await injector.send(json.dumps({"type": "send", "text": text}))
            sent += 1
        await asyncio.sleep(min(0.005, 1 / rate))
    done_sending.set()
    await asyncio.wait(probe_tasks, timeout=10.0)
    for task in probe_tasks:
        task.cancel()
    lat = sorted(latencies)
    return {
        "sent": sent,
        "probe_delivered": sum(probe_counts),
        "p50_ms": statistics.median(lat) if lat else float("nan"),
        "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
        "inbound_p50_ms": statistics.median(inbound) if inbound else float("nan"),
    }


# ---------------------------------------------------------------- driver


@dataclass(frozen=True)
class Result:
    server: str
    connections: int
    rate: float
    sent: int
    delivered: int
    expected: int
    wall_s: float
    p50_ms: float
    p99_ms: float
    cpu_s: float
    rss_idle_per_conn_kib: float
    inbound_p50_ms: float  # injector send -> server accept: the part of the latency before fan-out

    @property
    def deliveries_per_s(self) -> float:
        return self.delivered / self.wall_s

    @property
    def cpu_cores(self) -> float:
        return self.cpu_s / self.wall_s

    @property
    def cpu_us_per_delivery(self) -> float:
        return 1e6 * self.cpu_s / self.delivered if self.delivered else float("inf")


def rss_kib(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_info().rss) / 1024


def cpu_seconds(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _child(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _ask(process: subprocess.Popen[str], command: str) -> str:
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(command + "\n")
    process.stdin.flush()
    return process.stdout.readline().strip()


def run_one(kind: str, connections: int, rate: float, seconds: float, probes: int, load_procs: int) -> Result:
    port = free_port()
    me = [sys.executable, str(Path(__file__).resolve())]
    counted = connections - probes
    shares = [counted // load_procs + (i < counted % load_procs) for i in range(load_procs)]
    with tempfile.TemporaryDirectory() as data_dir:
        server = _child([*me, "--serve", kind, "--port", str(port), "--data", data_dir])
        children: list[subprocess.Popen[str]] = []
        try:
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
            rss_empty = rss_kib(server.pid)
            for share in shares:
                children.append(_child([*me, "--count", str(share), "--port", str(port)]))
            for child in children:
                assert child.stdout is not None and child.stdout.readline().strip() == "connected"
            prober = _child(
                [
                    *me,
                    "--probe",
                    "--port",
                    str(port),
                    "--rate",
                    str(rate),
                    "--seconds",
                    str(seconds),
                    "--probes",
                    str(probes),
                ]
            )
            children.append(prober)
            assert prober.stdout is not None and prober.stdout.readline().strip() == "connected"
            time.sleep(1.0)
            rss_idle = rss_kib(server.pid)
            counters = children[:-1]
            base = sum(int(_ask(c, "count")) for c in counters)
            cpu_start = cpu_seconds(server.pid)
            t0 = time.monotonic()
            assert prober.stdin is not None
            prober.stdin.write("go\n")
            prober.stdin.flush()
            # the injector sends about rate x seconds messages; poll until the counters have them all
            expected = int(rate * seconds) * counted
            total, last_change, deadline = -1, t0, t0 + seconds + 10.0
            while time.monotonic() < deadline:
                now_total = sum(int(_ask(c, "count")) for c in counters) - base
                if now_total != total:
                    total, last_change = now_total, time.monotonic()
                if total >= expected:
                    break
                time.sleep(0.05)
            cpu_s = cpu_seconds(server.pid) - cpu_start
            wall_s = max(last_change - t0, seconds)
            out = json.loads(prober.stdout.readline())
        finally:
            for child in children:
                with contextlib.suppress(Exception):
                    _ask(child, "exit")
                child.kill()
                child.wait(10)
            server.terminate()
            server.wait(10)
    delivered = total + out["probe_delivered"]
    return Result(
        kind,
        connections,
        rate,
        out["sent"],
        delivered,
        out["sent"] * connections,
        wall_s,
        out["p50_ms"],
        out["p99_ms"],
        cpu_s,
        (rss_idle - rss_empty) / connections,
        out["inbound_p50_ms"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", default="1000,5000")
    parser.add_argument("--rate", type=float, default=100.0, help="messages per second into the room")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--probes", type=int, default=20)
    parser.add_argument("--servers", default="chat,baseline")
    parser.add_argument("--serve", choices=["chat", "baseline"])
    parser.add_argument(
        "--load-procs",
        type=int,
        default=max(1, min(8, (os.cpu_count() or 2) // 2)),
        help="processes the counting connections are spread over",
    )
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int)
    parser.add_argument("--data")
    args = parser.parse_args()
    raise_fd_limit(65536)

    if args.serve == "chat":
        asyncio.run(serve_chat(args.port, Path(args.data)))
        return
    if args.serve == "baseline":
        asyncio.run(serve_baseline(args.port))
        return
    if args.count is not None:
        asyncio.run(run_counter(args.port, args.count))
        return
    if args.probe:
        print(json.dumps(asyncio.run(run_probe(args.port, args.rate, args.seconds, args.probes))), flush=True)
        return

    results = []
    for n in (int(x) for x in args.connections.split(",")):
        for kind in args.servers.split(","):
            result = run_one(kind, n, args.rate, args.seconds, min(args.probes, n - 1), args.load_procs)
            results.append(result)
            print(f"# {kind} n={n}: {result}", file=sys.stderr, flush=True)
    print(
        f"\nchat fan-out: one room, {args.rate:g} msg/s for {args.seconds:g} s, "
        f"{os.cpu_count()} CPUs, {args.load_procs} load processes, python {sys.version.split()[0]}"
    )
    header = (
        f"{'server':<9} {'conns':>6} {'sent':>6} {'delivered':>10} {'lost':>7} {'deliv/s':>10} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'in p50':>7} {'cpu cores':>9} {'us/deliv':>9} {'KiB/conn':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.server:<9} {r.connections:>6} {r.sent:>6} {r.delivered:>10} {r.expected - r.delivered:>7} "
            f"{r.deliveries_per_s:>10.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.inbound_p50_ms:>7.1f} "
            f"{r.cpu_cores:>9.2f} "
            f"{r.cpu_us_per_delivery:>9.2f} {r.rss_idle_per_conn_kib:>9.1f}"
        )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()

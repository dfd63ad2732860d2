"""LL-HLS origin: held blocking requests and part requests/s per core, against nginx in the same run.

Measurements, each side by side with Debian's nginx (one worker, sendfile, no access log)
serving the same bytes from files on disk:

1. Held blocking reloads. N connections each ask for the next part with
   ``_HLS_msn``/``_HLS_part`` and are held; then one part is published and we time when the
   origin wrote each of the N answers (p50/p99 from the publish instant, by the kernel's receive
   stamps: ``_stamped.py``), the origin CPU that release costs, and the RSS one held request
   costs. Two origin rows: HTTP/1.1 requests (released by the origin's early answers) and
   HTTP/1.0 keep-alive ones (answered by each request's handler: the same run's baseline for
   that path). nginx cannot hold a request; its row is the floor for the same work: N idle
   keep-alive connections asking for the same playlist (a file) at one instant.
2. One held request, publish-to-answer delay over many parts.
3. Part requests/s: C keep-alive connections fetching part files in a loop for S seconds;
   requests per server CPU-second is the per-core figure (the client shares the machine, so
   wall-clock rates say more about the client than the server).
4. The cost of rendering a media playlist with a full 4 h DVR window, full and as a delta update.

    python bench/origin_blocking.py [--held 1000,5000,10000] [--seconds 5] [--connections 32]
                                    [--loop asyncio|uvloop]

The origin runs in its own process (this script with ``--serve-origin``), with the real
``OriginStore`` + ``setup_origin`` and a bench-only control route that publishes a part.
Figures and commands: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _net import free_port, wait_port
from _stamped import Answer, StampedConns

CLK_TCK = os.sysconf("SC_CLK_TCK")
CHANNEL = "bench"
RENDITIONS = (("720p", 60_000), ("360p", 20_000), ("audio", 5_000))
PART_S = 1 / 3
PARTS_PER_SEGMENT = 6


# -- the origin under test (runs in its own process) ---------------------------------------------


def serve_origin(port: int, loop_name: str) -> None:
    from aiohttp import web
    from live.origin.app import BLOCKER_KEY, setup_origin
    from live.origin.store import ChannelTiming, OriginSettings, OriginStore
    from live.package.parts import InitSegment, Part

    # TARGETDURATION 4 (segments stay 2 s) so the blocking allowance (12 s) outlasts opening
    # 10k connections from one Python client.
    store = OriginStore(OriginSettings(timing=ChannelTiming(4, 0.334), max_held_requests=50_000))
    for name, _ in RENDITIONS:
        store.publish_init(
            CHANNEL,
            InitSegment(
                name,
                os.urandom(700),
                "mp4a.40.2" if name == "audio" else "avc1.64001f,mp4a.40.2",
                3_000_000,
                None if name == "audio" else 1280,
                None if name == "audio" else 720,
                30.0,
            ),
        )
    position = [0, 0]

    def publish() -> tuple[int, int]:
        msn, index = position
        end = index == PARTS_PER_SEGMENT - 1
        for name, size in RENDITIONS:
            store.publish_part(
                CHANNEL, Part(name, msn, index, os.urandom(size), PART_S, index == 0, time.time(), end)
            )
        position[:] = [msn + 1, 0] if end else [msn, index + 1]
        return msn, index

    for _ in range(4 * PARTS_PER_SEGMENT + 2):
        publish()

    async def do_publish(request: web.Request) -> web.Response:
        published = time.time()  # before: releasing held requests is part of publishing
        msn, index = publish()
        return web.json_response({"t": published, "msn": msn, "part": index})

    async def state(request: web.Request) -> web.Response:
        channel = store.channel(CHANNEL)
        assert channel is not None
        rend = channel.renditions["720p"]
        assert rend.last is not None
        return web.json_response(
            {
                "epoch": channel.epoch,
                "next": list(rend.last.next_part),
                "held": request.app[BLOCKER_KEY].held,
                "parts": [
                    [p.msn, p.index]
                    for s in rend.segments
                    for p in s.parts
                    if rend.part_listed(p, channel.timing)
                ],
            }
        )

    app = web.Application()
    setup_origin(app, store)
    app.router.add_post("/bench/publish", do_publish)
    app.router.add_get("/bench/state", state)
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        backlog=4096,
        print=lambda *_: print("ready", flush=True),
        access_log=None,
        loop=new_loop(loop_name),
    )


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


# -- process helpers -----------------------------------------------------------------------------


def tree_pids(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = Path(f"/proc/{pid}/task/{task.name}/children")
        if children.exists():
            for child in children.read_text().split():
                pids.extend(tree_pids(int(child)))
    return pids


def cpu_s(pid: int) -> float:
    total = 0
    for one in tree_pids(pid):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def rss_bytes(pid: int) -> int:
    total = 0
    for one in tree_pids(pid):
        for line in Path(f"/proc/{one}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


NGINX_CONF = """
worker_processes 1;
worker_rlimit_nofile 19000;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 18000; multi_accept on; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    open_file_cache max=10000 inactive=60s;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    types {{ application/vnd.apple.mpegurl m3u8; video/mp4 m4s mp4; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {root}/www;
        add_header Cache-Control "public, max-age=31536000, immutable";
    }}
}}
"""


# -- a lean HTTP/1.1 client (asyncio protocol; just enough to time whole responses) -------------


class Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, int, float]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def request(self, path: str) -> asyncio.Future[tuple[int, int, float]]:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 : head.find(b"\r\n", at) if head.find(b"\r\n", at) > 0 else None])
        if len(self.buffer) >= end + 4 + length:
            status = int(head[9:12])
            del self.buffer[: end + 4 + length]
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_result((status, length, time.time()))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"closed: {exc}"))


async def open_conns(port: int, count: int, batch: int = 500) -> list[Conn]:
    loop = asyncio.get_running_loop()
    conns: list[Conn] = []
    for start in range(0, count, batch):
        made = await asyncio.gather(
            *(loop.create_connection(Conn, "127.0.0.1", port) for _ in range(min(batch, count - start)))
        )
        conns.extend(protocol for _, protocol in made)
    return conns


def close_conns(conns: list[Conn]) -> None:
    for conn in conns:
        if conn.transport is not None:
            conn.transport.close()


async def http_json(port: int, method: str, path: str) -> dict:  # type: ignore[type-arg]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".encode()
    )
    raw = await reader.read()
    writer.close()
    return json.loads(raw.split(b"\r\n\r\n", 1)[1])  # type: ignore[no-any-return]


async def fetch_body(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    raw = await reader.read()
    writer.close()
    return raw.split(b"\r\n\r\n", 1)[1]


# -- measurements ------------------------------------------------------------------------------------


@dataclass
class HeldResult:
    server: str
    n: int
    answered: int
    written_p50_ms: float  # kernel stamps: when the server wrote each answer (see _stamped)
    written_p99_ms: float
    written_all_ms: float
    read_all_ms: float  # when this Python client had read the last one (client-bound)
    cpu_ms: float
    rss_per_held: float | None
    idle_cpu_ms_per_s: float | None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def held_result(server: str, n: int, answers: list[Answer], t0: float, cpu_ms: float,
                rss_per_held: float | None = None, idle_ms: float | None = None) -> HeldResult:
    ok = [a for a in answers if a.status == 200]
    written = [(a.written - t0) * 1000 for a in ok]
    read = [(a.read - t0) * 1000 for a in ok]
    return HeldResult(server, n, len(ok), pct(written, 0.5), pct(written, 0.99),
                      max(written, default=0), max(read, default=0), cpu_ms, rss_per_held, idle_ms)


async def held_origin(port: int, pid: int, n: int, http10: bool = False) -> HeldResult:
    """``http10``: HTTP/1.0 keep-alive requests, which the origin answers from each handler (its
    early answers are for HTTP/1.1): the same run's baseline for the release path."""
    state = await http_json(port, "GET", "/bench/state")
    msn, part = state["next"]
    rss_before = rss_bytes(pid)
    conns = StampedConns(port, n)
    conns.send(f"/hls/{CHANNEL}/720p.m3u8?_HLS_msn={msn}&_HLS_part={part}",
               "1.0\r\nConnection: keep-alive" if http10 else "1.1")
    deadline = time.monotonic() + 30
    while (await http_json(port, "GET", "/bench/state"))["held"] < n:
        if time.monotonic() > deadline:
            raise RuntimeError("requests were not all held")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    rss_held = rss_bytes(pid)
    idle_from = cpu_s(pid)
    await asyncio.sleep(1.0)  # holding costs nothing while no part arrives (no polling)
    cpu_before = cpu_s(pid)
    idle_ms = (cpu_before - idle_from) * 1000
    published = await http_json(port, "POST", "/bench/publish")
    answers = conns.collect(30)
    cpu_after = cpu_s(pid)
    conns.close()
    await asyncio.sleep(0.3)
    return held_result("origin/1.0" if http10 else "origin", n, answers, published["t"],
                       (cpu_after - cpu_before) * 1000, (rss_held - rss_before) / n, idle_ms)


async def held_nginx(port: int, pid: int, n: int, path: str) -> HeldResult:
    conns = StampedConns(port, n)
    await asyncio.sleep(0.2)
    cpu_before = cpu_s(pid)
    t0 = time.time()
    conns.send(path)
    answers = conns.collect(30)
    cpu_after = cpu_s(pid)
    conns.close()
    await asyncio.sleep(0.3)
    return held_result("nginx", n, answers, t0, (cpu_after - cpu_before) * 1000)


async def single_release(port: int, rounds: int) -> list[float]:
    """Publish-to-answer delay of one held request, ``rounds`` times (the issue's 50 ms bar)."""
    (conn,) = await open_conns(port, 1)
    delays = []
    for _ in range(rounds):
        msn, part = (await http_json(port, "GET", "/bench/state"))["next"]
        waiter = conn.request(f"/hls/{CHANNEL}/720p.m3u8?_HLS_msn={msn}&_HLS_part={part}")
        while (await http_json(port, "GET", "/bench/state"))["held"] < 1:
            await asyncio.sleep(0.005)
        published = await http_json(port, "POST", "/bench/publish")
        status, _, answered = await waiter
        if status != 200:
            raise RuntimeError(f"held request answered {status}")
        delays.append((answered - published["t"]) * 1000)
    close_conns([conn])
    return delays


def dvr_render_cost(hours: float, rounds: int = 10) -> dict[str, float]:
    """Milliseconds to render one rendition's playlist per new part with a full DVR window."""
    from live.origin.playlists import render_media
    from live.origin.responses import gzip_text as _gzip
    from live.origin.store import OriginSettings, OriginStore
    from live.package.parts import InitSegment, Part

    store = OriginStore(OriginSettings(dvr_window_s=hours * 3600))
    store.publish_init("dvr", InitSegment("720p", b"init", "avc1.64001f", 3_000_000, 1280, 720, 30.0))
    count = int(hours * 3600 / 2) * PARTS_PER_SEGMENT
    position = [0, 0]

    def publish() -> None:
        msn, index = position
        end = index == PARTS_PER_SEGMENT - 1
        store.publish_part("dvr", Part("720p", msn, index, b"m" * 64, PART_S, index == 0, 1.7e9, end))
        position[:] = [msn + 1, 0] if end else [msn, index + 1]

    for _ in range(count):
        publish()
    state = store.channel("dvr")
    assert state is not None
    render_media(state, "720p")  # settles the per-segment memo once
    timings: dict[str, list[float]] = {"full": [], "full+gzip": [], "delta": []}
    for _ in range(rounds):
        publish()
        started = time.perf_counter()
        text = render_media(state, "720p")
        timings["full"].append(time.perf_counter() - started)
        _gzip(text)
        timings["full+gzip"].append(time.perf_counter() - started)
        started = time.perf_counter()
        render_media(state, "720p", skip=True)
        timings["delta"].append(time.perf_counter() - started)
    result = {name: statistics.median(values) * 1000 for name, values in timings.items()}
    result["segments"] = len(state.renditions["720p"].segments)
    result["kib"] = len(text) / 1024
    result["gzip_kib"] = len(_gzip(text)) / 1024
    return result


@dataclass
class RateResult:
    server: str
    requests: int
    wall_s: float
    cpu_s: float
    nbytes: int

    @property
    def per_s(self) -> float:
        return self.requests / self.wall_s

    @property
    def per_cpu_s(self) -> float:
        return self.requests / self.cpu_s if self.cpu_s else float("inf")


async def part_rate(
    server: str, port: int, pid: int, paths: list[str], connections: int, seconds: float
) -> RateResult:
    conns = await open_conns(port, connections)
    count = 0
    nbytes = 0
    stop = time.monotonic() + seconds

    async def worker(conn: Conn, offset: int) -> None:
        nonlocal count, nbytes
        i = offset
        while time.monotonic() < stop:
            status, length, _ = await conn.request(paths[i % len(paths)])
            if status != 200:
                raise RuntimeError(f"{server}: {paths[i % len(paths)]} -> {status}")
            count += 1
            nbytes += length
            i += 1

    cpu_before = cpu_s(pid)
    started = time.monotonic()
    await asyncio.gather(*(worker(conn, k) for k, conn in enumerate(conns)))
    wall = time.monotonic() - started
    cpu = cpu_s(pid) - cpu_before
    close_conns(conns)
    return RateResult(server, count, wall, cpu, nbytes)


# -- main ------------------------------------------------------------------------------------------


async def run(
    args: argparse.Namespace, origin_port: int, origin_pid: int, nginx_port: int, nginx_pid: int, www: Path
) -> None:
    playlist_path = f"/hls/{CHANNEL}/720p.m3u8"
    (www / playlist_path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
    (www / playlist_path.lstrip("/")).write_bytes(await fetch_body(origin_port, playlist_path))

    held: list[tuple[HeldResult, HeldResult, HeldResult]] = []
    for n in args.held:
        held.append(
            (
                await held_origin(origin_port, origin_pid, n),
                await held_origin(origin_port, origin_pid, n, http10=True),
                await held_nginx(nginx_port, nginx_pid, n, playlist_path),
            )
        )

    single = await single_release(origin_port, args.rounds)

    # the parts listed now; nginx gets the very same bytes as files
    state = await http_json(origin_port, "GET", "/bench/state")
    part_paths = [f"/hls/{CHANNEL}/720p/{state['epoch']}/{m}.{i}.m4s" for m, i in state["parts"]]
    for path in part_paths:
        target = www / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(await fetch_body(origin_port, path))

    rates = [
        await part_rate("origin", origin_port, origin_pid, part_paths, args.connections, args.seconds),
        await part_rate("nginx", nginx_port, nginx_pid, part_paths, args.connections, args.seconds),
    ]

    print(f"\nHeld blocking reloads released by one new part (playlist ~{state_size(www, playlist_path)} B)."
          "\nwritten: kernel stamp of each answer, from the publish (nginx: from sending the requests);"
          " origin/1.0: HTTP/1.0\nkeep-alive requests, answered by each handler (no early answers);"
          " ratios against nginx")
    print(
        f"{'N':>6} {'server':>10} {'answered':>8} {'written p50':>11} {'p99 ms':>8} {'last ms':>8} "
        f"{'read last':>9} {'CPU ms':>7} {'CPU us/req':>10} {'RSS/held':>9} {'idle CPU':>9} "
        f"{'p99 ratio':>9} {'CPU ratio':>9}"
    )
    for origin, plain, nginx in held:
        for row in (origin, plain, nginx):
            rss = f"{row.rss_per_held / 1024:.1f} KiB" if row.rss_per_held is not None else "-"
            idle = f"{row.idle_cpu_ms_per_s:.0f} ms/s" if row.idle_cpu_ms_per_s is not None else "-"
            mine = row is not nginx
            ratio_p99 = (f"{row.written_p99_ms / nginx.written_p99_ms:.2f}x"
                         if mine and nginx.written_p99_ms else "")
            ratio_cpu = f"{row.cpu_ms / nginx.cpu_ms:.2f}x" if mine and nginx.cpu_ms else ""
            print(
                f"{row.n:>6} {row.server:>10} {row.answered:>8} {row.written_p50_ms:>11.1f} "
                f"{row.written_p99_ms:>8.1f} {row.written_all_ms:>8.1f} {row.read_all_ms:>9.1f} "
                f"{row.cpu_ms:>7.0f} {row.cpu_ms * 1000 / max(row.answered, 1):>10.1f} "
                f"{rss:>9} {idle:>9} {ratio_p99:>9} {ratio_cpu:>9}"
            )
    print(
        f"\nOne held request, publish-to-answer over {len(single)} parts: p50 {pct(single, 0.5):.1f} ms, "
        f"p99 {pct(single, 0.99):.1f} ms, max {max(single):.1f} ms"
    )
    size = rates[0].nbytes // max(rates[0].requests, 1)
    print(f"\nPart requests ({size} B parts, {args.connections} keep-alive connections, {args.seconds:g} s)")
    print(
        f"{'server':>7} {'requests':>9} {'req/s wall':>10} {'server CPU s':>12} {'req/CPU-s':>10} "
        f"{'MB/CPU-s':>9}"
    )
    for rate in rates:
        print(
            f"{rate.server:>7} {rate.requests:>9} {rate.per_s:>10.0f} {rate.cpu_s:>12.2f} "
            f"{rate.per_cpu_s:>10.0f} {rate.nbytes / 1e6 / rate.cpu_s if rate.cpu_s else 0:>9.1f}"
        )
    print(f"origin / nginx requests per CPU-second: {rates[0].per_cpu_s / rates[1].per_cpu_s:.2f}x")
    if args.dvr_hours > 0:
        cost = dvr_render_cost(args.dvr_hours)
        print(
            f"\nPlaylist render per new part, {args.dvr_hours:g} h DVR window ({cost['segments']:.0f} "
            f"segments, {cost['kib']:.0f} KiB, {cost['gzip_kib']:.0f} KiB gzipped): full "
            f"{cost['full']:.1f} ms, full+gzip {cost['full+gzip']:.1f} ms, delta update "
            f"{cost['delta']:.2f} ms (once per version, shared by every held request)"
        )


def state_size(www: Path, path: str) -> int:
    return (www / path.lstrip("/")).stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--held", default="1000,5000,10000", type=lambda text: [int(n) for n in text.split(",")]
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=50, help="single held-request releases")
    parser.add_argument("--dvr-hours", type=float, default=4.0, help="0 skips the render cost")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio",
                        help="the origin's event loop")
    parser.add_argument("--serve-origin", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_origin:
        serve_origin(args.serve_origin, args.loop)
        return
    with tempfile.TemporaryDirectory(prefix="origin-bench-") as tmp:
        root = Path(tmp)
        nginx_port, origin_port = free_port(), free_port()
        procs = [
            subprocess.Popen([sys.executable, __file__, "--serve-origin", str(origin_port),
                              "--loop", args.loop], stdout=subprocess.DEVNULL),
            start_nginx(root, nginx_port),
        ]
        try:
            wait_port(origin_port, poll_s=0.05)
            wait_port(nginx_port, poll_s=0.05)
            asyncio.run(run(args, origin_port, procs[0].pid, nginx_port, procs[1].pid, root / "www"))
        finally:
            stop_all(procs)


def start_nginx(root: Path, port: int) -> subprocess.Popen[bytes]:
    """Debian's nginx (``NGINX_CONF``) serving ``root/www`` on ``port``."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    root.chmod(0o755)  # nginx workers run unprivileged and must read the files
    (root / "www").mkdir(exist_ok=True)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (root / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, port=port))
    return subprocess.Popen([nginx, "-p", str(root), "-c", str(root / "nginx.conf"), "-e",
                             str(root / "error.log")])


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    main()

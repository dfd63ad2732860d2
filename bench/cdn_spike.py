"""CDN tiers: origin load through a 10x viewer spike, and edge part serving per core, in one run.

1. The spike. V viewers (``live.selftest.viewer_fleet``: plain join, then blocking reload + new
   parts on one rendition) for S seconds, then V x F; once straight at the origin, once through
   the tiers ``live cdn`` runs (origin -> 1 shield -> 2 edges, real nginx). For each: origin
   requests/s (the origin counts them) and origin CPU (its process, from /proc). Goal: through
   the tiers the origin's load at F x V stays flat (<= 1.1x its load at V); direct, it grows
   with the viewers.
2. Part serving per core: C keep-alive connections fetch the same listed parts in a loop for S
   seconds from (a) an edge with the parts cached, (b) nginx serving the same bytes as files
   (the same binary, no proxy: the edge should be close to 1.0x of it) and (c) our origin
   direct (what the tier saves). Requests per server CPU-second is the per-core figure; the
   client shares the machine, so wall-clock rates say more about it than about the servers.

    python bench/cdn_spike.py [--viewers 40] [--factor 10] [--seconds 10] [--connections 32]

The origin runs in its own process (this script with ``--serve-origin``): the real
``OriginStore`` + ``setup_origin`` fed in real time, plus a bench-only route that reports its
request count and the parts it lists. On a shared 2-core machine every figure is pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _net import free_port, wait_port
from origin_blocking import NGINX_CONF, RateResult, cpu_s, fetch_body, http_json, part_rate

CHANNEL = "bench"
PLAYLIST = f"/hls/{CHANNEL}/720p.m3u8"
RENDITIONS = (("720p", 60_000), ("audio", 5_000))


# -- the origin under test (its own process) ------------------------------------------------------

def serve_origin(port: int, part_s: float) -> None:
    from aiohttp import web
    from live.origin.app import setup_origin
    from live.origin.store import ChannelTiming, OriginSettings, OriginStore
    from live.package.parts import InitSegment, Part

    store = OriginStore(OriginSettings(timing=ChannelTiming(2, part_s), max_held_requests=50_000))
    per_segment = round(2 / part_s)
    for name, _ in RENDITIONS:
        store.publish_init(CHANNEL, InitSegment(
            name, os.urandom(700), "mp4a.40.2" if name == "audio" else "avc1.64001f,mp4a.40.2",
            3_000_000, None if name == "audio" else 1280, None if name == "audio" else 720, 30.0))
    position = [0, 0]
    counted = [0]

    def publish() -> None:
        msn, index = position
        end = index == per_segment - 1
        for name, size in RENDITIONS:
            store.publish_part(CHANNEL, Part(name, msn, index, os.urandom(size), part_s, index == 0,
                                             time.time(), end))
        position[:] = [msn + 1, 0] if end else [msn, index + 1]

    async def feed(app: web.Application) -> object:
        async def run() -> None:
            loop = asyncio.get_running_loop()
            next_at = loop.time()
            while True:
                publish()
                next_at += part_s
                await asyncio.sleep(max(0.0, next_at - loop.time()))
        for _ in range(2 * per_segment):
            publish()
        task = asyncio.create_task(run())
        yield
        task.cancel()

    @web.middleware
    async def count(request: web.Request, handler):  # type: ignore[no-untyped-def]
        if request.path.startswith("/hls/"):
            counted[0] += 1
        return await handler(request)

    async def state(request: web.Request) -> web.Response:
        channel = store.channel(CHANNEL)
        assert channel is not None
        rend = channel.renditions["720p"]
        return web.json_response({"requests": counted[0], "epoch": channel.epoch,
                                  "parts": [[p.msn, p.index] for s in rend.segments for p in s.parts
                                            if rend.part_listed(p, channel.timing)]})

    app = web.Application(middlewares=[count])
    setup_origin(app, store)
    app.router.add_get("/bench/state", state)
    app.cleanup_ctx.append(feed)
    web.run_app(app, host="127.0.0.1", port=port, backlog=4096, print=None, access_log=None)


# -- the spike -------------------------------------------------------------------------------------

@dataclass
class Load:
    path: str
    viewers: int
    origin_rps: float
    origin_cpu: float  # CPU-seconds per second
    viewer_parts_s: float
    errors: int


async def measure_load(origin_port: int, origin_pid: int, edges: list[str], label: str,
                       base: int, factor: int, seconds: float) -> tuple[Load, Load]:
    from live.selftest.viewer_fleet import ViewerFleet

    fleet = ViewerFleet(edges, PLAYLIST)

    async def window(viewers: int) -> Load:
        await asyncio.sleep(2)  # joins settle
        parts_before = fleet.totals.parts
        before = (await http_json(origin_port, "GET", "/bench/state"))["requests"], cpu_s(origin_pid)
        started = time.monotonic()
        await asyncio.sleep(seconds)
        wall = time.monotonic() - started
        after = (await http_json(origin_port, "GET", "/bench/state"))["requests"], cpu_s(origin_pid)
        totals = fleet.totals
        return Load(label, viewers, (after[0] - before[0]) / wall, (after[1] - before[1]) / wall,
                    (totals.parts - parts_before) / wall, totals.errors)

    try:
        await fleet.add(base)
        low = await window(base)
        await fleet.ramp(base * (factor - 1), min(30.0, seconds))
        high = await window(base * factor)
    finally:
        await fleet.close()
    return low, high


async def newest_parts(origin_port: int) -> list[str]:
    """The four newest listed parts: each is served for 10 s more at least."""
    state = await http_json(origin_port, "GET", "/bench/state")
    return [f"/hls/{CHANNEL}/720p/{state['epoch']}/{m}.{i}.m4s" for m, i in state["parts"][-4:]]


# -- main --------------------------------------------------------------------------------------------

async def run(args: argparse.Namespace, origin_port: int, origin_pid: int, nginx_port: int,
              nginx_pid: int, root: Path) -> None:
    from live.cdn.config import Role, Upstream
    from live.cdn.launcher import CdnCluster, CdnError, ClusterSettings

    origin = f"http://127.0.0.1:{origin_port}"
    direct = await measure_load(origin_port, origin_pid, [origin], "direct", args.viewers,
                                args.factor, args.seconds)
    for attempt in range(20):  # a free block of three ports
        cluster = CdnCluster(ClusterSettings(
            origins=(Upstream.parse(origin),), data_dir=root / f"cdn{attempt}", shields=1, edges=2,
            base_port=random.randrange(20_000, 60_000), cache_size="512m"))
        try:
            await cluster.start()
            break
        except CdnError as exc:
            if "taken" not in str(exc):
                raise
    else:
        raise RuntimeError("no free ports for the tier")
    try:
        edges = cluster.urls(Role.EDGE)
        tiers = await measure_load(origin_port, origin_pid, edges, "tiers", args.viewers,
                                   args.factor, args.seconds)
        parts = await newest_parts(origin_port)
        www = root / "www"
        for path in parts:
            body = await fetch_body(origin_port, path)
            (www / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (www / path.lstrip("/")).write_bytes(body)
        edge = cluster.nodes[[n.name for n in cluster.nodes].index("edge0")]
        edge_port = edge.plan.settings.listen.port
        for path in parts:  # the edge's cache holds them before it is timed
            await fetch_body(edge_port, path)
        rates: list[RateResult] = [
            await part_rate("edge", edge_port, edge.process.pid, parts, args.connections, args.seconds),
            await part_rate("nginx", nginx_port, nginx_pid, parts, args.connections, args.seconds),
            # live parts leave the origin 12 s after they are cut: ask for fresh ones
            await part_rate("origin", origin_port, origin_pid, await newest_parts(origin_port),
                            args.connections, args.seconds),
        ]
    finally:
        await cluster.stop()

    print(f"\nOrigin load, {args.viewers} -> {args.viewers * args.factor} viewers on one rendition "
          f"({args.part_s:g} s parts), {args.seconds:g} s windows")
    print(f"{'path':>7} {'viewers':>8} {'origin req/s':>12} {'origin CPU':>10} {'parts/s':>8} "
          f"{'errors':>6} {'req/s vs 1x':>11} {'CPU vs 1x':>9}")
    for low, high in (direct, tiers):
        for row in (low, high):
            ratio = (f"{row.origin_rps / low.origin_rps:.2f}x" if low.origin_rps else "-")
            cpu_ratio = (f"{row.origin_cpu / low.origin_cpu:.2f}x" if low.origin_cpu else "-")
            print(f"{row.path:>7} {row.viewers:>8} {row.origin_rps:>12.1f} "
                  f"{row.origin_cpu * 100:>9.1f}% {row.viewer_parts_s:>8.0f} {row.errors:>6} "
                  f"{ratio:>11} {cpu_ratio:>9}")
    flat = tiers[1].origin_rps / tiers[0].origin_rps if tiers[0].origin_rps else float("inf")
    print(f"through the tiers at {args.factor}x: origin requests/s {flat:.2f}x of 1x "
          f"(goal <= 1.10x); direct: {direct[1].origin_rps / max(direct[0].origin_rps, 1e-9):.2f}x")
    size = rates[0].nbytes // max(rates[0].requests, 1)
    print(f"\nPart serving ({size} B parts, {args.connections} keep-alive connections, "
          f"{args.seconds:g} s)")
    print(f"{'server':>7} {'requests':>9} {'req/s wall':>10} {'server CPU s':>12} {'req/CPU-s':>10} "
          f"{'vs nginx':>8}")
    for rate in rates:
        print(f"{rate.server:>7} {rate.requests:>9} {rate.per_s:>10.0f} {rate.cpu_s:>12.2f} "
              f"{rate.per_cpu_s:>10.0f} {rate.per_cpu_s / rates[1].per_cpu_s:>7.2f}x")
    print(f"edge / origin requests per CPU-second: {rates[0].per_cpu_s / rates[2].per_cpu_s:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=40, help="viewers before the spike")
    parser.add_argument("--factor", type=int, default=10, help="spike size (x viewers)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="each measuring window (at most 10: live parts expire)")
    parser.add_argument("--part-s", type=float, default=0.5, help="part duration")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--serve-origin", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_origin:
        serve_origin(args.serve_origin, args.part_s)
        return
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    with tempfile.TemporaryDirectory(prefix="cdn-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)
        (root / "www").mkdir()
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (root / "tmp" / sub).mkdir(parents=True)
        nginx_port, origin_port = free_port(), free_port()
        conf = NGINX_CONF.format(root=root, port=nginx_port)
        if os.geteuid() == 0:  # workers as root, like the tier's (they read files we own)
            conf = "user root;\n" + conf
        (root / "nginx.conf").write_text(conf)
        procs = [
            subprocess.Popen([sys.executable, __file__, "--serve-origin", str(origin_port),
                              "--part-s", str(args.part_s)], stdout=subprocess.DEVNULL),
            subprocess.Popen([nginx, "-p", str(root), "-c", str(root / "nginx.conf"), "-e",
                              str(root / "error.log")]),
        ]
        try:
            wait_port(origin_port, poll_s=0.05)
            wait_port(nginx_port, poll_s=0.05)
            asyncio.run(run(args, origin_port, procs[0].pid, nginx_port, procs[1].pid, root))
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()

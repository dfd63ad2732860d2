"""DVR: playlist bytes and origin CPU per reload of a 4 h DVR playlist with and without delta
updates, and DVR segment serving per core against nginx serving the very same files.

1. Playlist reloads. The origin process holds a channel whose DVR holds ``--hours`` of 2 s
   segments (one rendition; the index is what matters) and publishes a new segment every 2 s
   like a live stream, so each reload pays its share of re-rendering. C keep-alive connections
   reload the media playlist in a loop, once in full and once with ``_HLS_skip=YES``: bytes per
   reload (plain and gzipped) and origin CPU microseconds per reload.
2. Segment serving. C connections fetch DVR segments (``--segment-kib``) from the origin
   (``live.dvr.files``: ``os.sendfile`` on the socket), from the same process through aiohttp's
   ``FileResponse`` (what the DVR used before; the same files and headers), and from Debian's
   nginx (one worker, sendfile) over a symlink to the same files: requests per server
   CPU-second. The three take turns for ``--rounds`` rounds, so load from elsewhere on the
   machine hits them alike; the table gives each one's median and its ratio to nginx (the
   issue's goal is >= 0.5x).

    python bench/dvr.py [--hours 4] [--seconds 5] [--connections 16] [--segment-kib 256] [--rounds 5]

The origin runs in its own process (this script with ``--serve-dvr``), with the real ``Dvr``,
``LocalDiskStore`` and ``setup_dvr``. Client and servers share the machine, so per-CPU-second
figures are the ones to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _net import free_port, wait_port
from origin_blocking import RateResult, fetch_body, part_rate, start_nginx, stop_all

CHANNEL, SERVED = "bench", "serve"
SEGMENT_S = 2.0
SEGMENT_BYTES = 2_000  # the playlist channel's segments: small, the index is what is measured
SERVED_SEGMENTS = 60
FILE_HEADERS = {"Access-Control-Allow-Origin": "*", "Content-Type": "video/mp4",
                "Access-Control-Expose-Headers": "Age, Date, Content-Length",
                "Cache-Control": "public, max-age=31536000, immutable"}


def fill(data: Path, hours: float, segment_kib: int) -> None:
    """Write ``hours`` of segments for the playlist channel and a minute of large ones to serve,
    ending now, so the served process resumes them as live recordings."""
    from live.dvr.catalog import DvrCatalog, DvrSettings
    from live.dvr.disk import LocalDiskStore
    from live.dvr.service import Dvr
    from live.dvr.writer import InlineWriter
    from live.package.parts import InitSegment, Part
    from live.package.timing import ChannelTiming

    count = int(hours * 3600 / SEGMENT_S)
    clock = [time.time() - count * SEGMENT_S]
    settings = DvrSettings(window_s=max(hours, 0.1) * 3600 + 60, durable=False)
    dvr = Dvr(LocalDiskStore(data, durable=False), DvrCatalog(settings, clock=lambda: clock[0]),
              InlineWriter())
    init = InitSegment("720p", b"\x00\x00\x00\x08ftyp", "avc1.64001f,mp4a.40.2", 3_000_000,
                       1280, 720, 30.0)
    for channel, segments, size in ((CHANNEL, count, SEGMENT_BYTES),
                                    (SERVED, SERVED_SEGMENTS, segment_kib * 1024)):
        clock[0] = time.time() - segments * SEGMENT_S
        dvr.recorder.publish_init(channel, init, ChannelTiming())
        payload = b"\x00" * size
        for msn in range(segments):
            dvr.recorder.publish_part(channel, Part("720p", msn, 0, payload, SEGMENT_S, True,
                                                    clock[0], True))
            clock[0] += SEGMENT_S


def serve_dvr(port: int, data: Path, hours: float) -> None:
    """The origin under test: the DVR restored from ``data``, publishing a segment every 2 s."""
    from aiohttp import web
    from live.dvr.app import setup_dvr
    from live.dvr.catalog import DvrSettings
    from live.dvr.service import open_dvr
    from live.package.parts import InitSegment, Part
    from live.package.timing import ChannelTiming

    async def main() -> None:
        dvr = await open_dvr(data, DvrSettings(window_s=max(hours, 0.1) * 3600 + 60, durable=False))
        app = web.Application()
        setup_dvr(app, dvr.catalog, dvr.store)

        async def file_response(request: web.Request) -> web.StreamResponse:
            """The DVR's segment answer before ``live.dvr.files``: aiohttp's ``FileResponse``."""
            recording = dvr.catalog.recording(SERVED)
            assert recording is not None
            path = dvr.store.segment_path(SERVED, recording.id, "720p", int(request.match_info["msn"]))
            if not path.is_file():
                raise web.HTTPNotFound()
            return web.FileResponse(path, headers=FILE_HEADERS)

        app.router.add_get(f"/fileresponse/{SERVED}/720p/{{msn:\\d+}}.m4s", file_response)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        init = InitSegment("720p", b"\x00\x00\x00\x08ftyp", "avc1.64001f,mp4a.40.2", 3_000_000,
                           1280, 720, 30.0)
        dvr.recorder.publish_init(CHANNEL, init, ChannelTiming())
        for msn in range(10**9):
            await asyncio.sleep(SEGMENT_S)
            dvr.recorder.publish_part(CHANNEL, Part("720p", msn, 0, b"\x00" * SEGMENT_BYTES,
                                                    SEGMENT_S, True, time.time() - SEGMENT_S, True))

    asyncio.run(main())


async def playlist_bytes(port: int, path: str) -> tuple[int, int]:
    body = await fetch_body(port, path)
    return len(body), len(gzip.compress(body, 6))


async def run(args: argparse.Namespace, origin_port: int, origin_pid: int, nginx_port: int,
              nginx_pid: int, data: Path, www: Path) -> None:
    playlist = f"/hls/{CHANNEL}/dvr/720p.m3u8"
    sizes = {"full": await playlist_bytes(origin_port, playlist),
             "delta": await playlist_bytes(origin_port, playlist + "?_HLS_skip=YES")}
    reloads: dict[str, RateResult] = {}
    for name, path in (("full", playlist), ("delta", playlist + "?_HLS_skip=YES")):
        reloads[name] = await part_rate("origin", origin_port, origin_pid, [path],
                                        args.connections, args.seconds)

    (recording,) = (data / SERVED).iterdir()
    target = www / "hls" / SERVED / "dvr"
    target.mkdir(parents=True)
    (target / "720p").symlink_to(recording / "720p")
    names = sorted(p.name for p in (recording / "720p").glob("*.m4s"))
    paths = [f"/hls/{SERVED}/dvr/720p/{name}" for name in names]
    servers = {"origin": (origin_port, origin_pid, paths),
               "FileResponse": (origin_port, origin_pid,
                                [f"/fileresponse/{SERVED}/720p/{name}" for name in names]),
               "nginx": (nginx_port, nginx_pid, paths)}
    rounds: dict[str, list[RateResult]] = {name: [] for name in servers}
    for _ in range(args.rounds):
        for name, (port, pid, urls) in servers.items():
            rounds[name].append(await part_rate(name, port, pid, urls, args.connections,
                                                args.seconds))

    print(f"\n{args.hours:g} h DVR playlist reloads ({args.connections} connections, "
          f"{args.seconds:g} s each, a new segment every {SEGMENT_S:g} s)")
    print(f"{'reload':>7} {'bytes':>9} {'gzipped':>9} {'reloads':>8} {'origin CPU us/reload':>21}")
    for name, rate in reloads.items():
        plain, packed = sizes[name]
        print(f"{name:>7} {plain:>9} {packed:>9} {rate.requests:>8} "
              f"{rate.cpu_s * 1e6 / max(rate.requests, 1):>21.0f}")
    full, delta = reloads["full"], reloads["delta"]
    print(f"delta / full: bytes {sizes['delta'][0] / sizes['full'][0]:.4f}x "
          f"(gzipped {sizes['delta'][1] / sizes['full'][1]:.4f}x), CPU per reload "
          f"{(delta.cpu_s / max(delta.requests, 1)) / max(full.cpu_s / max(full.requests, 1), 1e-9):.3f}x")

    first = rounds["origin"][0]
    size = first.nbytes // max(first.requests, 1)
    print(f"\nDVR segment serving ({size // 1024} KiB segments from disk, {args.connections} "
          f"keep-alive connections, {args.rounds} rounds of {args.seconds:g} s taking turns)")
    print(f"{'server':>12} {'requests':>9} {'req/s wall':>10} {'req/CPU-s':>10} {'min':>7} "
          f"{'max':>7} {'MB/CPU-s':>9} {'vs nginx':>9}")
    medians = {name: statistics.median(rate.per_cpu_s for rate in rates)
               for name, rates in rounds.items()}
    for name, rates in rounds.items():
        per_cpu = [rate.per_cpu_s for rate in rates]
        wall = sum(rate.requests for rate in rates) / sum(rate.wall_s for rate in rates)
        print(f"{name:>12} {sum(rate.requests for rate in rates):>9} {wall:>10.0f} "
              f"{medians[name]:>10.0f} {min(per_cpu):>7.0f} {max(per_cpu):>7.0f} "
              f"{medians[name] * size / 1e6:>9.0f} {medians[name] / medians['nginx']:>8.2f}x")
    print(f"origin / nginx requests per CPU-second (medians): "
          f"{medians['origin'] / medians['nginx']:.2f}x (goal >= 0.5x); "
          f"origin / FileResponse: {medians['origin'] / medians['FileResponse']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=4.0, help="DVR window of the playlist channel")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--segment-kib", type=int, default=256, help="size of the served segments")
    parser.add_argument("--rounds", type=int, default=5, help="segment serving turns per server")
    parser.add_argument("--serve-dvr", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_dvr:
        serve_dvr(int(args.serve_dvr[0]), Path(args.serve_dvr[1]), args.hours)
        return
    with tempfile.TemporaryDirectory(prefix="dvr-bench-") as tmp:
        root = Path(tmp)
        data = root / "dvr"
        nginx_port, origin_port = free_port(), free_port()
        procs = [start_nginx(root, nginx_port)]  # first: it makes root readable for its workers
        fill(data, args.hours, args.segment_kib)
        procs.insert(0, subprocess.Popen([sys.executable, __file__, "--hours", str(args.hours),
                                          "--serve-dvr", str(origin_port), str(data)],
                                         stdout=subprocess.DEVNULL))
        try:
            wait_port(origin_port, timeout=120, poll_s=0.05)
            wait_port(nginx_port, poll_s=0.05)
            asyncio.run(run(args, origin_port, procs[0].pid, nginx_port, procs[1].pid, data,
                            root / "www"))
        finally:
            stop_all(procs)

if __name__ == "__main__":
    main()

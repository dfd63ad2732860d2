"""Scale-out: CPU per part when the packager pushes CMAF to an origin process, against the same
parts published into an in-process origin store (today's single `live serve`), in the same run.

The same synthetic parts (S streams x 3 renditions, muxed-size CMAF chunks) go three ways:

1. in process: into the origin store and its DVR recorder (what one `live serve` does today);
2. pushed to one origin: a ``CmafPush`` here, a real `live serve --roles origin` process there;
3. pushed to two origins (the redundant set-up): the pusher's cost per extra origin.

Both sides record the DVR (an origin node keeps it), durable, on the same disk. Origin CPU is
the origin process's utime + stime from /proc (all its threads, the DVR writer's too); the
pusher's and the in-process store's are this process's ``time.process_time``, which also counts
every thread. Ratios are against row 1.

    python bench/ingest_scaleout.py [--streams 20] [--parts 100]

Not measured here (docs/scaleout.md): streams per ingest node at the real-time limit (that is
the transcoder's ceiling, bench/transcode_vs_ffmpeg.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from _net import free_port, wait_port

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "platform"))

from live.dvr.catalog import DvrSettings  # noqa: E402
from live.dvr.service import open_dvr  # noqa: E402
from live.origin.store import OriginSettings, OriginStore  # noqa: E402
from live.package.fmp4 import box, full_box  # noqa: E402
from live.package.parts import InitSegment, Part  # noqa: E402
from live.package.push import CmafPush, PushSettings  # noqa: E402
from live.package.sink import TeeSink  # noqa: E402
from live.package.timing import ChannelTiming  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
TOKEN = "bench-ingest-token-000001"
TIMING = ChannelTiming(target_duration_s=2, part_target_s=0.201)
PARTS_PER_SEGMENT = 10
RENDITIONS = (("720p", 75_000, 3_000_000), ("360p", 25_000, 1_000_000), ("160p", 8_000, 300_000))


@dataclass(frozen=True, slots=True)
class Row:
    mode: str
    parts: int
    origin_cpu_s: float
    pusher_cpu_s: float
    wall_s: float

    def origin_us(self) -> float:
        return self.origin_cpu_s / self.parts * 1e6

    def pusher_us(self) -> float:
        return self.pusher_cpu_s / self.parts * 1e6


def inits() -> list[InitSegment]:
    return [InitSegment(name, box(b"ftyp", b"iso6\0\0\0\0") + box(b"moov", name.encode() * 50),
                        "avc1.64001f,mp4a.40.2", bandwidth, None, None, 30.0)
            for name, _, bandwidth in RENDITIONS]


def make_part(rendition: str, size: int, n: int) -> Part:
    msn, index = divmod(n, PARTS_PER_SEGMENT)
    t = n * 18_090
    traf = box(b"traf", full_box(b"tfdt", 1, 0, struct.pack(">Q", t)))
    data = box(b"moof", full_box(b"mfhd", 0, 0, struct.pack(">I", n + 1)), traf) \
        + box(b"mdat", bytes(size))
    return Part(rendition, msn, index, data, 0.201, index == 0, 1.7e9 + n * 0.201,
                index == PARTS_PER_SEGMENT - 1, t)


def all_parts(count: int) -> list[list[Part]]:
    """Per part number, the parts of every rendition (built once, outside every measurement)."""
    return [[make_part(name, size, n) for name, size, _ in RENDITIONS] for n in range(count)]


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def settle(pids: list[int], quiet_s: float = 1.0, limit_s: float = 30.0) -> None:
    """Until the processes' CPU stops growing for ``quiet_s`` (at most ``limit_s``)."""
    deadline = time.monotonic() + limit_s
    last = sum(proc_cpu_s(pid) for pid in pids)
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet_s)
        now = sum(proc_cpu_s(pid) for pid in pids)
        if now - last < 2 / CLK_TCK:
            return
        last = now


async def in_process(workdir: Path, streams: int, parts: list[list[Part]]) -> Row:
    """Today's single process: the packager's parts into the origin store and its DVR."""
    store = OriginStore(OriginSettings(timing=TIMING, dvr_window_s=60.0))
    dvr = await open_dvr(workdir / "in-process-dvr", DvrSettings())
    sink = TeeSink(store, dvr.recorder)
    started, cpu = time.monotonic(), time.process_time()
    for s in range(streams):
        for init in inits():
            sink.publish_init(f"ch{s}", init, TIMING)
    for per_rendition in parts:
        for s in range(streams):
            for part in per_rendition:
                sink.publish_part(f"ch{s}", part)
        await asyncio.sleep(0)
    await dvr.close()  # its writer thread has written every segment
    return Row("in process (today)", streams * len(parts) * len(RENDITIONS), 0.0,
               time.process_time() - cpu, time.monotonic() - started)


def start_origin(workdir: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'platform'}:{ROOT}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "live.cli", "serve", "--roles", "origin", "--host", "127.0.0.1",
         "--http-port", str(port), "--data", str(workdir / name), "--ingest-token", TOKEN],
        env=env, stdout=subprocess.DEVNULL, stderr=(workdir / f"{name}.log").open("wb"))
    wait_port(port, 30.0)
    return proc, f"http://127.0.0.1:{port}"


def last_part_listed(base: str, streams: int, n: int) -> bool:
    msn, index = divmod(n, PARTS_PER_SEGMENT)
    try:
        with urllib.request.urlopen(f"{base}/hls/ch{streams - 1}/160p.m3u8", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return False
    return f"/{msn}.{index}.m4s" in text or (index == PARTS_PER_SEGMENT - 1 and f"/{msn}.m4s" in text)


async def pushed(workdir: Path, streams: int, parts: list[list[Part]], origins: int) -> Row:
    procs = [start_origin(workdir, f"origin{k}-{streams}") for k in range(origins)]
    try:
        push = CmafPush(PushSettings(tuple(url for _, url in procs), TOKEN))
        await push.start()
        sinks = [push.stream(f"ch{s}") for s in range(streams)]
        for s, sink in enumerate(sinks):
            for init in inits():
                sink.publish_init(f"ch{s}", init, TIMING)
        await asyncio.sleep(1.0)  # the POSTs are open before the clock starts
        origin_cpu = [proc_cpu_s(p.pid) for p, _ in procs]
        started, cpu = time.monotonic(), time.process_time()
        for n, per_rendition in enumerate(parts):
            for s, sink in enumerate(sinks):
                for part in per_rendition:
                    sink.publish_part(f"ch{s}", part)
            if n % PARTS_PER_SEGMENT == PARTS_PER_SEGMENT - 1:
                await asyncio.sleep(0)  # let the pushes drain between segments
                while sum(o.queued_bytes for o in push.origins) > 32 * 1024 * 1024:
                    await asyncio.sleep(0.01)
        async with asyncio.timeout(120):
            for _, url in procs:
                while not await asyncio.to_thread(last_part_listed, url, streams, len(parts) - 1):
                    await asyncio.sleep(0.05)
        wall = time.monotonic() - started
        pusher = time.process_time() - cpu
        await settle([p.pid for p, _ in procs])  # their DVR writers finish the last segments
        origin = sum(proc_cpu_s(p.pid) for p, _ in procs) - sum(origin_cpu)
        for s, sink in enumerate(sinks):
            sink.end(f"ch{s}")
        await push.close()
        total = streams * len(parts) * len(RENDITIONS)
        return Row(f"pushed to {origins} origin{'s' if origins > 1 else ''}", total * origins,
                   origin, pusher, wall)
    finally:
        for proc, _ in procs:
            proc.terminate()
            proc.wait(timeout=15)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--parts", type=int, default=100, help="parts per rendition and stream")
    args = parser.parse_args()
    parts = all_parts(args.parts)
    with tempfile.TemporaryDirectory(prefix="ingest-scaleout-") as tmp:
        workdir = Path(tmp)
        rows = [await in_process(workdir, args.streams, parts),
                await pushed(workdir, args.streams, parts, 1),
                await pushed(workdir, args.streams, parts, 2)]
    base = rows[0].pusher_us()
    print(f"\n{args.streams} streams x {len(RENDITIONS)} renditions x {args.parts} parts "
          f"({', '.join(f'{n} {s // 1000} kB' for n, s, _ in RENDITIONS)} a part)")
    print(f"{'mode':<22} {'parts':>7} {'origin us/part':>15} {'pusher us/part':>15} "
          f"{'origin / in-process':>20} {'wall s':>7}")
    for row in rows:
        origin = row.origin_us() if row.origin_cpu_s else row.pusher_us()
        print(f"{row.mode:<22} {row.parts:>7} {origin:>15.1f} "
              f"{row.pusher_us() if row.origin_cpu_s else 0.0:>15.1f} {origin / base:>19.2f}x "
              f"{row.wall_s:>7.2f}")
    print("in process: the store's CPU is this process's; pushed: 'parts' counts each origin's "
          "copy, the pusher's CPU is spread over all of them")


if __name__ == "__main__":
    asyncio.run(main())

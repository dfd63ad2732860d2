"""SRT ingest CPU: what one live SRT publisher costs our server, against our RTMP path and
against Debian's ffmpeg receiving the same SRT stream (``-c copy`` to null), in one run.

Each publisher is ffmpeg pushing the same pre-encoded 720p30 3 Mbit/s clip in real time
(``-re -c copy``): MPEG-TS over SRT, or FLV over RTMP. The servers run ingest only (libsrt +
our TS demuxer, or our RTMP stack, into the live-stream registry; no transcoding), each in a
child process whose user+system CPU we read from /proc. The baseline is one
``ffmpeg -i srt://...?mode=listener -c copy -f null -`` per publisher (libsrt + libavformat's
TS demuxer in C). We report server CPU seconds per second of media per publisher (the share of
a core one live publisher occupies) and the ratios.

    python bench/srt_ingest.py [--publishers 1,4] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _net import free_port

CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


@dataclass(frozen=True)
class Result:
    case: str
    publishers: int
    cpu_s: float
    media_s: float
    units: int

    @property
    def cpu_per_publisher(self) -> float:
        return self.cpu_s / (self.media_s * self.publishers)


# -- the server side (a child process) -------------------------------------------------------------


async def _serve(protocol: str, port: int) -> None:
    from live.ingest.registry import LiveStream, LiveStreamRegistry

    registry = LiveStreamRegistry()
    counted = [0]

    def on_start(stream: LiveStream) -> None:
        stream.subscribe(lambda _s, item: counted.__setitem__(0, counted[0] + (item is not None)))

    registry.on_stream_start(on_start)

    async def resolve(key: str) -> str | None:
        return key

    server: object
    if protocol == "srt":
        from live.ingest.srt.server import SrtServer, SrtServerSettings
        server = SrtServer(resolve, registry, SrtServerSettings(port=port, max_connections=64))
    else:
        from live.ingest.rtmp.server import RtmpServer, RtmpServerSettings
        server = RtmpServer(resolve, registry, RtmpServerSettings(port=port))
    await server.start()  # type: ignore[attr-defined]
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    print(f"units {counted[0]}", flush=True)
    await server.close()  # type: ignore[attr-defined]


# -- the driver ----------------------------------------------------------------------------------------


def make_sources(workdir: Path, seconds: int) -> tuple[Path, Path]:
    ts = workdir / "source.ts"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-b:v", "3000k",
         "-maxrate", "3000k", "-bufsize", "3000k", "-g", "60", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "128k", "-f", "mpegts", str(ts)], check=True)
    flv = workdir / "source.flv"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(ts),
                    "-c", "copy", "-f", "flv", str(flv)], check=True)
    return ts, flv


def _publisher(source: Path, url: str, fmt: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
                             "-i", str(source), "-c", "copy", "-f", fmt, url],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def run_ours(protocol: str, source: Path, publishers: int, media_s: float) -> Result:
    port = free_port()
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "platform"), str(root),
                                                        os.environ.get("PYTHONPATH", "")])}
    server = subprocess.Popen([sys.executable, __file__, "--serve", protocol, "--port", str(port)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
    assert server.stdout is not None and server.stdin is not None
    assert server.stdout.readline().strip() == "ready"
    before = process_cpu_s([server.pid])
    if protocol == "srt":
        urls = [f"srt://127.0.0.1:{port}?streamid=%23!::r=live/bench{i},m=publish"
                for i in range(publishers)]
        procs = [_publisher(source, url, "mpegts") for url in urls]
    else:
        procs = [_publisher(source, f"rtmp://127.0.0.1:{port}/live/bench{i}", "flv")
                 for i in range(publishers)]
    for proc in procs:
        proc.wait()
    time.sleep(0.5)
    cpu = process_cpu_s([server.pid]) - before
    server.stdin.write("\n")
    server.stdin.flush()
    units = int(server.stdout.readline().split()[1])
    server.wait(10)
    return Result(f"livetwin {protocol}", publishers, cpu, media_s, units)


def run_ffmpeg_baseline(source: Path, publishers: int, media_s: float) -> Result:
    listeners, publishers_procs = [], []
    for _ in range(publishers):
        port = free_port()
        listeners.append(subprocess.Popen(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
             "-i", f"srt://127.0.0.1:{port}?mode=listener", "-c", "copy", "-f", "null", "-"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(0.3)
        publishers_procs.append(_publisher(source, f"srt://127.0.0.1:{port}", "mpegts"))
    cpu_before = 0.0  # the listeners did nothing before their publisher connected
    for proc in publishers_procs:
        proc.wait()
    time.sleep(0.5)
    cpu = process_cpu_s([p.pid for p in listeners]) - cpu_before
    for proc in listeners:
        proc.terminate()
        proc.wait(10)
    return Result("ffmpeg srt -c copy", publishers, cpu, media_s, 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishers", default="1,4")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--serve", choices=["srt", "rtmp"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.serve, args.port))
        return 0
    if shutil.which("ffmpeg") is None:
        print("needs Debian's ffmpeg", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        ts, flv = make_sources(Path(tmp), args.seconds)
        print(f"{'case':<22}{'pub':>4}{'cpu s':>8}{'core/pub':>10}{'units':>8}")
        for count in (int(n) for n in args.publishers.split(",")):
            results = [run_ours("srt", ts, count, args.seconds),
                       run_ours("rtmp", flv, count, args.seconds),
                       run_ffmpeg_baseline(ts, count, args.seconds)]
            for r in results:
                print(f"{r.case:<22}{r.publishers:>4}{r.cpu_s:>8.2f}{r.cpu_per_publisher:>10.4f}"
                      f"{r.units:>8}")
            srt, rtmp, ffmpeg = (r.cpu_per_publisher for r in results)
            print(f"  {count} publisher(s): SRT/RTMP = {srt / rtmp:.2f}x, "
                  f"SRT/ffmpeg = {srt / ffmpeg:.2f}x" if rtmp and ffmpeg else "  (no CPU measured)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

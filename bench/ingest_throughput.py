"""Ingest throughput: N concurrent ffmpeg RTMP publishers against `live serve` and nginx-rtmp.

Each publisher pushes the same pre-encoded 720p30 FLV with `-c copy` and no `-re`, so the
servers ingest as fast as they can read. We report, per server and N: wall-clock Mbit/s,
messages/s, server CPU seconds, Mbit/s per server CPU-second, and the server CPU a publisher
costs at real-time rate (CPU seconds per second of media, i.e. the share of a core one live
publisher occupies). The baseline is Debian's nginx with libnginx-mod-rtmp, in the same run.

    python bench/ingest_throughput.py [--publishers 1,4,8] [--seconds 10] [--loops 12]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _net import free_port, wait_port

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Result:
    server: str
    publishers: int
    wall_s: float
    cpu_s: float
    megabits: float
    messages: int
    media_s: float

    @property
    def mbps(self) -> float:
        return self.megabits / self.wall_s

    @property
    def mbps_per_cpu(self) -> float:
        return self.megabits / self.cpu_s if self.cpu_s else float("inf")

    @property
    def cpu_per_publisher(self) -> float:
        """Server core share one real-time publisher costs (CPU s per media s)."""
        return self.cpu_s / self.media_s


def process_cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return []
    return [int(p) for p in text.split()]


def make_source(workdir: Path, seconds: int) -> tuple[Path, int]:
    source = workdir / "source.flv"
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            str(seconds),
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-b:v",
            "3000k",
            "-maxrate",
            "3000k",
            "-bufsize",
            "3000k",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-f",
            "flv",
            str(source),
        ],
        check=True,
    )
    probe = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
            str(source),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    messages = sum(int(x) for x in probe.stdout.split())
    return source, messages


def start_livetwin(workdir: Path, port: int, publishers: int) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "live.cli", "--log-level", "WARNING", "serve",
            "--rtmp-port", str(port), "--http-port", str(free_port()),
            "--data", str(workdir / "data"), "--dev"]
    for i in range(publishers):
        args += ["--channel", f"bench_{i:03d}=bench_key_{i:03d}"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL)


def start_nginx(workdir: Path, port: int, publishers: int) -> subprocess.Popen[bytes]:
    prefix = workdir / "nginx"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log warn;
events {{ worker_connections 1024; }}
rtmp {{ server {{ listen 127.0.0.1:{port}; chunk_size 4096;
    application live {{ live on; record off; }} }} }}
""")
    return subprocess.Popen(
        ["nginx", "-p", str(prefix), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def run_case(
    name: str, workdir: Path, source: Path, messages: int, media_s: float, publishers: int, loops: int
) -> Result:
    port = free_port()
    start = start_livetwin if name == "livetwin" else start_nginx
    server = start(workdir, port, publishers)
    try:
        wait_port(port)
        time.sleep(0.3)
        pids = [server.pid, *children(server.pid)]
        cpu_before = process_cpu_s(pids)
        t0 = time.perf_counter()
        clients = [
            subprocess.Popen(
                [
                    "ffmpeg",
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-nostdin",
                    "-stream_loop",
                    str(loops - 1),
                    "-i",
                    str(source),
                    "-c",
                    "copy",
                    "-f",
                    "flv",
                    f"rtmp://127.0.0.1:{port}/live/bench_key_{i:03d}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for i in range(publishers)
        ]
        for client in clients:
            _, err = client.communicate(timeout=300)
            if client.returncode != 0:
                raise RuntimeError(f"{name}: ffmpeg failed: {err.decode(errors='replace')}")
        wall = time.perf_counter() - t0
        cpu = process_cpu_s(pids) - cpu_before
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    megabits = source.stat().st_size * 8 / 1e6 * publishers * loops
    return Result(
        name, publishers, wall, cpu, megabits, messages * publishers * loops, media_s * publishers * loops
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--publishers", default="1,4,8", help="comma-separated N values")
    parser.add_argument("--seconds", type=int, default=10, help="source duration")
    parser.add_argument(
        "--loops", type=int, default=12, help="times each publisher sends the source (ffmpeg -stream_loop)"
    )
    args = parser.parse_args(argv)
    for tool in ("ffmpeg", "ffprobe", "nginx"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            print(f"{tool} is required", file=sys.stderr)
            return 2
    counts = [int(n) for n in args.publishers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        source, messages = make_source(workdir, args.seconds)
        source_mbps = source.stat().st_size * 8 / 1e6 / args.seconds
        rows: list[tuple[Result, Result]] = []
        for n in counts:
            ours = run_case("livetwin", workdir, source, messages, args.seconds, n, args.loops)
            base = run_case("nginx-rtmp", workdir, source, messages, args.seconds, n, args.loops)
            rows.append((ours, base))
    print(
        f"\nIngest throughput, {source_mbps:.2f} Mbit/s "
        f"720p30 source x N publishers x {args.loops} loops, "
        "ffmpeg -c copy without -re\n"
    )
    header = (
        f"{'N':>3} {'server':<11} {'wall s':>7} {'Mbit/s':>8} {'msg/s':>8} "
        f"{'cpu s':>6} {'Mbit/cpu-s':>10} {'core/pub':>9} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for ours, base in rows:
        for r in (ours, base):
            ratio = r.mbps_per_cpu / base.mbps_per_cpu
            print(
                f"{r.publishers:>3} {r.server:<11} {r.wall_s:>7.2f} {r.mbps:>8.1f} "
                f"{r.messages / r.wall_s:>8.0f} {r.cpu_s:>6.2f} {r.mbps_per_cpu:>10.1f} "
                f"{r.cpu_per_publisher:>9.4f} {ratio:>6.2f}"
            )
    print(
        "\nratio = Mbit per server CPU-second relative to nginx-rtmp (higher is better);"
        "\ncore/pub = server CPU seconds per second of media one publisher sends."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

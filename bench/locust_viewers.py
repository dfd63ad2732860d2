"""Locust LL-HLS viewer users sustained per core, against plain FastHttpUser users.

One run: starts `live serve` and a Debian ffmpeg publisher (320x180), runs Locust headless
(one process = one core at most) with N LlHlsViewer users, measures the Locust process's
CPU seconds (wait4 rusage), then runs N PlainFetcher users at the same per-user request
rate and compares users per core-second. Prints a table.

    .venv/bin/python bench/locust_viewers.py --users 20 --seconds 20
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FILES = ROOT / "loadgen" / "locustfiles"


def _locust(
    locustfile: str, users: int, seconds: int, host: str, prefix: Path, env: dict[str, str]
) -> tuple[float, float, dict[str, int]]:
    """(wall s, CPU s, requests per type) of one headless Locust run."""
    args = [
        str(BIN / "locust"),
        "-f",
        str(FILES / locustfile),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--csv",
        str(prefix),
        "--host",
        host,
        "--stop-timeout",
        "3",
        "--only-summary",
    ]
    start = time.monotonic()
    proc = subprocess.Popen(args, env=os.environ | env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"locust {locustfile} exited {status}")
    counts: dict[str, int] = {}
    with Path(f"{prefix}_stats.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["Name"] != "Aggregated":
                counts[f"{row['Type']} {row['Name']}"] = int(row["Request Count"])
    return wall, usage.ru_utime + usage.ru_stime, counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--http-port", type=int, default=18611)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="locust-bench-"))
    http, rtmp, chat = a.http_port, a.http_port + 1, a.http_port + 2
    host = f"http://127.0.0.1:{http}"
    server = subprocess.Popen(
        [str(BIN / "live"), "serve", "--rtmp-port", str(rtmp), "--http-port", str(http),
         "--chat-port", str(chat), "--data", str(tmp / "data"), "--dev", "--channel", "demo=demo_key_123"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    publisher: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(2)
        publisher = subprocess.Popen(
            [
                "ffmpeg",
                "-nostdin",
                "-loglevel",
                "error",
                "-re",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x180:rate=30",
                "-f",
                "lavfi",
                "-i",
                "sine",
                "-t",
                str(2 * a.seconds + 30),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
                "-g",
                "30",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-f",
                "flv",
                f"rtmp://127.0.0.1:{rtmp}/live/demo_key_123",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        master = ""
        for _ in range(80):
            try:
                master = urllib.request.urlopen(f"{host}/hls/demo/master.m3u8", timeout=2).read().decode()
                break
            except OSError:
                time.sleep(0.25)
        media = next(line for line in master.splitlines() if line and not line.startswith("#"))
        time.sleep(3)
        v_wall, v_cpu, v_counts = _locust("llhls_viewer.py", a.users, a.seconds, host, tmp / "viewer", {})
        http_requests = sum(n for k, n in v_counts.items() if k.startswith("GET "))
        rps_per_user = http_requests / a.seconds / a.users
        p_wall, p_cpu, p_counts = _locust(
            "plain_fetcher.py",
            a.users,
            a.seconds,
            host,
            tmp / "plain",
            {"LIVETWIN_PLAIN_RPS": f"{rps_per_user:.3f}", "LIVETWIN_PLAIN_MEDIA": f"/hls/demo/{media}"},
        )
    finally:
        for proc in (publisher, server):
            if proc is not None:
                proc.terminate()
                proc.wait(10)
    p_requests = sum(n for k, n in p_counts.items() if k.startswith("GET "))
    v_per_core = a.users * v_wall / v_cpu if v_cpu else float("inf")
    p_per_core = a.users * p_wall / p_cpu if p_cpu else float("inf")
    print(
        f"{a.users} users x {a.seconds}s, one Locust process each, same per-user request rate "
        f"({rps_per_user:.2f} req/s)"
    )
    print(f"{'user':<14}{'HTTP reqs':>10}{'wall s':>8}{'CPU s':>8}{'users/core':>12}")
    print(f"{'LlHlsViewer':<14}{http_requests:>10}{v_wall:>8.1f}{v_cpu:>8.2f}{v_per_core:>12.0f}")
    print(f"{'PlainFetcher':<14}{p_requests:>10}{p_wall:>8.1f}{p_cpu:>8.2f}{p_per_core:>12.0f}")
    print(f"viewer/plain users-per-core ratio: {v_per_core / p_per_core:.2f}")
    print("viewer events:", {k: n for k, n in sorted(v_counts.items()) if not k.startswith("GET ")})


if __name__ == "__main__":
    main()

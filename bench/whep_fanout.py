"""WHEP fan-out: server CPU per WebRTC viewer against the same viewers on LL-HLS (origin direct),
and WHEP viewers per core before the first frame drop, in one run.

The platform runs in this process (``Platform``, the real ``live serve``); a WHIP publisher
(aiortc, painting the clock card) and the viewers run in separate processes
(``live.selftest.viewer_swarm``, split over ``--swarms`` processes so the clients are not the
bottleneck), all pinned to one rendition. For each protocol the server's own CPU is measured over
a window with no viewer and one with N viewers: (busy - idle) / N is the CPU one viewer costs.
The ramp then adds WHEP viewers step by step; a step "drops" when any viewer received under
``--drop-fraction`` of the frames the relay forwarded, or the relay cut a slow viewer back to an
IDR. Viewers per core = the last clean step's viewers / the server cores it used.

    python bench/whep_fanout.py [--viewers 50] [--ramp 50,100,200,400] [--window 10] [--swarms 2]

The transcode worker (a separate process, the same for any number of viewers) is left out of
the server CPU. On a shared machine every number is pessimistic.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "platform"), str(REPO)]

from live.api.ratelimit import Rate  # noqa: E402
from live.config import ChannelSeed, ServeSettings  # noqa: E402
from live.serve import Platform  # noqa: E402
from live.webrtc.relay import ChannelRelay  # noqa: E402
from live.webrtc.sessions import WebRtcLimits  # noqa: E402
from live.webrtc.settings import WebRtcSettings  # noqa: E402

CHANNEL, KEY = "bench", "bench_key_1234"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "platform"), str(REPO)])}


def cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def relay_of(platform: Platform) -> ChannelRelay | None:
    handle = platform.webrtc.relays.get(CHANNEL) if platform.webrtc is not None else None
    return handle.relay if handle is not None else None


async def swarm_process(base: str, *extra: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "live.selftest.viewer_swarm", "--base", base, "--channel", CHANNEL,
        *extra, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL, env=ENV,
    )


async def next_event(process: asyncio.subprocess.Process, name: str) -> dict[str, Any]:
    assert process.stdout is not None
    while line := await process.stdout.readline():
        event: dict[str, Any] = json.loads(line)
        if event["event"] == name:
            return event
    raise RuntimeError(f"a swarm ended before {name!r}")


async def measure(platform: Platform, base: str, protocol: str, steps: list[int], args: argparse.Namespace
                  ) -> list[dict[str, Any]]:
    """One row per step: viewers, server cores, fractions received, relay drops."""
    me = psutil.Process()
    shares = [[step // args.swarms + (i < step % args.swarms) for step in steps] for i in range(args.swarms)]
    swarms = [await swarm_process(base, "--protocol", protocol, "--rendition", args.rendition,
                                  "--steps", ",".join(map(str, share)), "--settle", str(args.settle),
                                  "--window", str(args.window), "--sync")
              for share in shares]
    rows = []
    try:
        for _ in steps:
            ready = await asyncio.gather(*(next_event(s, "ready") for s in swarms))
            relay = relay_of(platform)
            before = (cpu_s(me), time.monotonic(), relay.units_in.get(args.rendition, 0) if relay else 0,
                      sum(f.dropped for f in relay.viewers) if relay else 0)
            for s in swarms:
                assert s.stdin is not None
                s.stdin.write(b"go\n")
            starts = await asyncio.gather(*(next_event(s, "window-start") for s in swarms))
            ends = await asyncio.gather(*(next_event(s, "window-end") for s in swarms))
            relay = relay_of(platform)
            after = (cpu_s(me), time.monotonic(), relay.units_in.get(args.rendition, 0) if relay else 0,
                     sum(f.dropped for f in relay.viewers) if relay else 0)
            received = [e - s for a, b in zip(starts, ends, strict=True)
                        for s, e in zip(a["counts"], b["counts"], strict=True)]
            sent = after[2] - before[2]
            # LL-HLS viewers count parts: about window / PART-TARGET of them were published
            expected = sent if protocol == "whep" else max(1, round(args.window / 0.334))
            fractions = sorted(r / expected for r in received) if expected and received else []
            rows.append({
                "protocol": protocol, "viewers": sum(r["viewers"] for r in ready),
                "server_cores": round((after[0] - before[0]) / (after[1] - before[1]), 3),
                "frames_relayed": sent if protocol == "whep" else None,
                "fraction_min": round(fractions[0], 3) if fractions else None,
                "fraction_median": round(fractions[len(fractions) // 2], 3) if fractions else None,
                "relay_dropped": after[3] - before[3] if protocol == "whep" else None,
                "refused": [s.get("refused") for s in starts],
            })
            print(json.dumps(rows[-1]), flush=True)
    finally:
        for s in swarms:
            if s.returncode is None:
                s.kill()
            await s.wait()
    return rows


async def run(args: argparse.Namespace) -> dict[str, Any]:
    limits = WebRtcLimits(max_viewers=100_000, max_sessions=100_000,
                          per_client=Rate(capacity=100_000, per_second=10_000.0))
    with tempfile.TemporaryDirectory() as data:
        settings = ServeSettings(rtmp_port=0, http_port=0, chat_port=0, data_dir=Path(data),
                                 channels=(ChannelSeed(CHANNEL, KEY),),
                                 webrtc=WebRtcSettings(limits=limits))
        async with Platform(settings) as platform:
            base = f"http://127.0.0.1:{platform.ports.http}"
            publisher = await swarm_process(base, "--publish", KEY, "--steps", "0", "--settle", "0",
                                            "--window", "100000", "--width", str(args.width),
                                            "--height", str(args.height))
            try:
                await next_event(publisher, "publishing")
                await asyncio.sleep(args.settle + 4)  # the ladder starts
                whep = await measure(platform, base, "whep", [0, args.viewers], args)
                hls = await measure(platform, base, "hls", [0, args.viewers], args)
                ramp = await measure(platform, base, "whep", [int(v) for v in args.ramp.split(",")], args)
            finally:
                publisher.kill()
                await publisher.wait()

    def per_viewer(rows: list[dict[str, Any]]) -> float:
        idle, busy = rows
        return round(100 * (busy["server_cores"] - idle["server_cores"]) / max(busy["viewers"], 1), 3)

    clean = [r for r in ramp if (r["fraction_min"] or 0) >= args.drop_fraction and not r["relay_dropped"]]
    first_drop = next((r for r in ramp if r not in clean), None)
    before_drop = [r for r in clean if first_drop is None or r["viewers"] < first_drop["viewers"]]
    last_clean = before_drop[-1] if before_drop else None
    result = {
        "cpu_per_viewer_pct_of_a_core": {"whep": per_viewer(whep), "ll_hls": per_viewer(hls)},
        "viewers": args.viewers, "rendition": args.rendition,
        "ramp": ramp,
        "first_drop_at_viewers": first_drop["viewers"] if first_drop else None,
        "viewers_per_core_before_first_drop": (
            round(last_clean["viewers"] / last_clean["server_cores"], 1)
            if last_clean and last_clean["server_cores"] > 0 else None),
        "cpus": os.cpu_count(),
    }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--ramp", default="50,100,200,400")
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=4.0)
    parser.add_argument("--swarms", type=int, default=2, help="viewer processes (default 2)")
    parser.add_argument("--rendition", default="360p30")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--drop-fraction", type=float, default=0.98)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

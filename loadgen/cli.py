"""`loadgen`: synthetic publishers and probe viewers for livetwin (or any RTMP/LL-HLS server)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from pathlib import Path

from loadgen.locustfiles.failover import edge_base


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT") from exc
    return width, height


def _edges(text: str) -> tuple[str, ...]:
    """argparse type: comma-separated edge base URLs."""
    try:
        return tuple(edge_base(e) for e in text.split(",") if e.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loadgen", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    pub = commands.add_parser(
        "publish",
        help="publish N synthetic clock-painted streams over RTMP",
        description="Publish N concurrent synthetic streams (moving test pattern with the capture "
        "wall-clock painted as a block code, plus a sine tone), encoded with PyAV "
        "(x264 zerolatency, AAC) and paced in real time. Stream i uses KEY, or "
        "KEY_i when N > 1.",
    )
    pub.add_argument("url", help="rtmp://HOST:PORT/live/KEY")
    pub.add_argument("-n", "--publishers", type=int, default=1, help="concurrent publishers (default 1)")
    pub.add_argument(
        "--ramp", type=float, default=0.0, metavar="S", help="seconds between publisher starts (default 0)"
    )
    pub.add_argument("--size", type=_size, default=(1280, 720), help="resolution (default 1280x720)")
    pub.add_argument("--fps", type=int, default=30, help="frame rate (default 30)")
    pub.add_argument("--bitrate", type=int, default=2500, metavar="KBPS", help="video kbit/s (default 2500)")
    pub.add_argument("--duration", type=float, required=True, metavar="S", help="seconds to publish")

    probe = commands.add_parser(
        "probe",
        help="play an LL-HLS stream like a player and report glass-to-glass latency",
        description="Play a multivariant or media playlist with blocking reloads, parts and "
        "preload hints, decode every frame, read the painted capture clock and report "
        "glass-to-glass latency percentiles (and PROGRAM-DATE-TIME latency, labelled "
        "as packager->probe).",
    )
    probe.add_argument("url", help="http://HOST:PORT/hls/CHANNEL/master.m3u8")
    probe.add_argument("--duration", type=float, default=30.0, metavar="S", help="seconds (default 30)")
    probe.add_argument(
        "--rendition",
        default=None,
        help="lowest, highest, a name (360p30) or a height (360p); default: first",
    )
    probe.add_argument("--json", action="store_true", help="print the report as JSON")

    swarm = commands.add_parser(
        "locust",
        help="run Locust headless with LL-HLS viewer or chat users",
        description="Run Locust headless: 'viewers' behave like hls.js in low-latency mode "
        "(blocking reloads, hinted parts, ABR, a playout buffer) and report STARTUP, "
        "PDT_LATENCY, REBUFFER and PART_WAIT events; 'chat' users read a room and, "
        "with --token, send messages, reporting CHAT_DELIVERY latency.",
    )
    swarm.add_argument("kind", choices=["viewers", "chat"], help="which users to run")
    swarm.add_argument("--host", default=None,
                       help="platform HTTP base, e.g. http://127.0.0.1:8080 (default: the first of --edges)")
    swarm.add_argument("--edges", type=_edges, default=(), metavar="URL,URL",
                       help="CDN edge bases the viewers spread over and fail over between")
    swarm.add_argument("-u", "--users", type=int, default=10, help="concurrent users (default 10)")
    swarm.add_argument("-r", "--spawn-rate", type=float, default=10, help="users started per second")
    swarm.add_argument("-t", "--run-time", default="60s", help="how long, e.g. 60s or 5m (default 60s)")
    swarm.add_argument("--csv", default=None, metavar="PREFIX", help="write Locust's CSV stats here")
    swarm.add_argument("--channel", default="demo", help="channel to watch or chat in (default demo)")
    swarm.add_argument("--chat-port", type=int, default=8081, help="chat port (default 8081)")
    swarm.add_argument("--token", default=None, help="session token for chat users that send")
    swarm.add_argument("--chat-rate", type=float, default=None, help="messages/s per chat user")

    real = commands.add_parser(
        "run",
        help="perform a scenario's real: section on this machine and write a run directory",
        description="Start `live serve`, with `cdn:` `live cdn` (nginx shields and edges) in front "
        "of it, one clock-painting publisher per channel, Locust viewer and "
        "chat users following the scenario's schedule and spikes (distributed over "
        "locust_processes; on the edges with `cdn:`), and the probe viewer; kill transcode "
        "workers where the scenario says so; sample CPU per role, the platform's /metrics and "
        "the tier's metrics every second; "
        "write run.json, measured.json, timeseries.csv, Locust CSVs, probe.json, "
        "platform.log and report.html (docs/validation.md).",
    )
    real.add_argument("scenario", help="scenario YAML with a real: section (see scenarios/)")
    real.add_argument("--out", default=None, help="run directory (default runs/<scenario>-<UTC time>)")
    real.add_argument("--seed", type=int, default=1, help="seed for the load generators (default 1)")
    real.add_argument(
        "--validate",
        action="store_true",
        help="then validate the twin against the run (twin validate SCENARIO --run OUT) into "
        "OUT/validation; exit 1 when a metric is out of band",
    )
    return parser


def _run(args: argparse.Namespace) -> int:
    import time

    from loadgen.realrun.launch import RealRunError
    from loadgen.realrun.run import run_real
    from reports.realrun import render_real_run
    from twin.scenario.nodes import ScenarioError
    from twin.scenario.reader import load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"loadgen run: {exc}", file=sys.stderr)
        return 2
    if scenario.real is None:
        print(f"loadgen run: {args.scenario}: has no real: section (docs/validation.md)", file=sys.stderr)
        return 2
    out = (
        Path(args.out)
        if args.out
        else Path("runs") / f"{scenario.name}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    )
    command = " ".join(["loadgen", *sys.argv[1:]]) if sys.argv[1:2] == ["run"] else None
    try:
        run_dir = run_real(Path(args.scenario), out, seed=args.seed, command=command)
    except RealRunError as exc:
        print(f"loadgen run: {exc}", file=sys.stderr)
        return 1
    render_real_run(run_dir)
    measured = json.loads((run_dir / "measured.json").read_text(encoding="utf-8"))["measured"]
    g2g = measured["glass_to_glass_s"]
    cpu = measured["cpu_cores"]
    print(
        f"origin {measured['origin_rps']:.1f} req/s (peak {measured['origin_rps_peak']:.1f}), "
        f"CPU platform {cpu['platform']:.2f} / transcode {cpu['transcode']:.2f} / loadgen "
        f"{cpu['loadgen']:.2f} cores, glass-to-glass p50 {g2g['p50']} s p95 {g2g['p95']} s, "
        f"rebuffer {measured['rebuffer_ratio']:.4f} -> {run_dir}"
    )
    return _validate(Path(args.scenario), run_dir, args.seed) if args.validate else 0


def _validate(scenario: Path, run_dir: Path, seed: int) -> int:
    """`twin validate SCENARIO --run RUN_DIR --out RUN_DIR/validation`, in this process."""
    from reports.validation import render_validation
    from twin.calibration.parameters import CalibrationError
    from twin.scenario.nodes import ScenarioError
    from twin.validation.rundir import RunDirError
    from twin.validation.shell import validate_run, verdict_text

    out = run_dir / "validation"
    try:
        checks, payload = validate_run(scenario, out, run_dir=run_dir, seed=seed)
    except (ScenarioError, CalibrationError, RunDirError, OSError) as exc:
        print(f"loadgen run: {exc}", file=sys.stderr)
        return 2
    render_validation(out)
    print(verdict_text(checks, payload, out))
    return 0 if payload["all_in_band"] else 1


def _locust(args: argparse.Namespace) -> int:
    import dataclasses
    import os
    import subprocess

    from loadgen.locustfiles.settings import LocustSettings

    files = Path(__file__).with_name("locustfiles")
    script = files / ("llhls_viewer.py" if args.kind == "viewers" else "chatter.py")
    settings = LocustSettings.from_environ(os.environ)  # what the caller's LIVETWIN_* say, then the flags
    settings = dataclasses.replace(
        settings,
        master_path=f"/hls/{args.channel}/master.m3u8",
        chat_channel=args.channel,
        chat_port=args.chat_port,
        chat_tokens=tuple(t for t in args.token.split(",") if t) if args.token else settings.chat_tokens,
        chat_rate=settings.chat_rate if args.chat_rate is None else args.chat_rate,
        edges=args.edges or settings.edges,
    )
    host = args.host or (settings.edges[0] if settings.edges else None)
    if host is None:
        print("loadgen locust: give --host or --edges", file=sys.stderr)
        return 2
    env = dict(os.environ) | settings.to_environ()
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(script),
        "--headless",
        "--host",
        host,
        "-u",
        str(args.users),
        "-r",
        str(args.spawn_rate),
        "-t",
        args.run_time,
    ]
    if args.csv:
        command += ["--csv", args.csv]
    return subprocess.run(command, env=env, check=False).returncode


async def _publish_many(args: argparse.Namespace) -> int:
    from live.selftest.publisher import PublishError, publish

    width, height = args.size

    async def one(index: int) -> bool:
        await asyncio.sleep(index * args.ramp)
        url = args.url if args.publishers == 1 else f"{args.url}_{index}"
        try:
            stats = await publish(
                url,
                width=width,
                height=height,
                fps=args.fps,
                bitrate_kbps=args.bitrate,
                duration_s=args.duration,
            )
        except PublishError as exc:
            print(f"{url}: refused: {exc}", file=sys.stderr)
            return False
        print(
            f"{url}: {stats.video_frames} video / {stats.audio_frames} audio frames, "
            f"{(stats.video_bytes + stats.audio_bytes) * 8 / 1e6 / stats.elapsed_s:.2f} Mbit/s, "
            f"{stats.late_frames} late (max {stats.max_lateness_s * 1000:.0f} ms)",
            flush=True,
        )
        return True

    results = await asyncio.gather(*(one(i) for i in range(args.publishers)))
    return 0 if all(results) else 1


async def _probe(args: argparse.Namespace) -> int:
    from live.selftest.probe import ProbeError, probe

    try:
        report = await probe(args.url, args.duration, rendition=args.rendition)
    except ProbeError as exc:
        print(f"loadgen probe: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report), indent=2) if args.json else report.summary())
    return 0 if report.frames else 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "publish":
        if args.publishers < 1:
            print("loadgen publish: --publishers must be at least 1", file=sys.stderr)
            return 2
        return asyncio.run(_publish_many(args))
    if args.command == "probe":
        return asyncio.run(_probe(args))
    if args.command == "locust":
        return _locust(args)
    if args.command == "run":
        return _run(args)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())

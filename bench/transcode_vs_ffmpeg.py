"""Live transcode throughput vs Debian's ffmpeg CLI, and per-frame delay, on this machine.

Baseline: the ``ffmpeg`` CLI decoding the same file once, splitting to the same rungs with the
same swscale algorithm, and encoding each with libx264 and the identical x264 settings our
encoder module produces (``x264_params``), plus a stream copy standing in for the passthrough
rung; outputs go to the null muxer, as ours stay in memory. Both run once, back to back, on
the same input; the table gives frames/s, frames/s per core, real-time factor and the ratio.

Then the delay: the 720p30 source fed at its real frame rate (as a live publisher would) through
the real-time pipeline; the table gives p50/p95/p99 of frame-in -> last rung's packet out.

Run: ``.venv/bin/python bench/transcode_vs_ffmpeg.py [--seconds 6] [--delay-seconds 10]``
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from live.media.units import TrackKind
from live.transcode.encoders import EncoderSettings, select_encoder, x264_params
from live.transcode.filesource import open_file, read_units
from live.transcode.guard import GuardSettings
from live.transcode.ladder import Ladder, SourceInfo, build_ladder
from live.transcode.pipeline import TranscodeMetrics, TranscodePipeline, TranscodeSettings
from live.transcode.supervisor import TranscodeSupervisor


def make_source(
    directory: Path, width: int, height: int, fps: int, seconds: float, *, bframes: int = 3
) -> Path:
    path = directory / f"src-{height}p{fps}-bf{bframes}.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}",
         "-t", str(seconds), "-pix_fmt", "yuv420p",
         "-c:v", "libx264", "-preset", "veryfast", "-g", str(2 * fps), "-b:v", "6M",
         "-bf", str(bframes), str(path)],
        check=True,
    )  # fmt: skip
    return path


def ladder_for(path: Path) -> Ladder:
    source = open_file(path)
    info = SourceInfo(source.video.width, source.video.height, source.fps, source.video.codec)
    return build_ladder(info)


def ffmpeg_command(path: Path, ladder: Ladder, settings: EncoderSettings, interp: str) -> list[str]:
    rungs = ladder.encoded
    labels = [f"[v{i}]" for i in range(len(rungs))]
    graph = f"[0:v]split={len(rungs)}{''.join(labels)};" + ";".join(
        f"{labels[i]}"
        + (f"fps={r.fps:g}," if r.fps_divisor > 1 else "")
        + f"scale={r.width}:{r.height}:flags={interp.lower()}[o{i}]"
        for i, r in enumerate(rungs)
    )
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(path)]
    cmd += ["-filter_complex", graph]
    for i, rung in enumerate(rungs):
        cmd += ["-map", f"[o{i}]", "-c:v", "libx264", "-preset", settings.preset]
        cmd += ["-tune", settings.tune, "-forced-idr", "1"]
        cmd += ["-x264-params", x264_params(rung, settings), "-f", "null", "-"]
    if ladder.passthrough is not None:
        cmd += ["-map", "0:v", "-c:v", "copy", "-f", "null", "-"]
    return cmd


def cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_ffmpeg(cmd: list[str]) -> tuple[float, float]:
    before = cpu_children()
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - start, cpu_children() - before


def run_ours(path: Path, ladder: Ladder, settings: TranscodeSettings) -> tuple[float, float, int]:
    source = open_file(path)
    units = [u for u in read_units(path, with_audio=False)]
    before = cpu_self()
    start = time.perf_counter()
    pipeline = TranscodePipeline(source.video, ladder, select_encoder(), settings)
    pipeline.start()
    produced = 0
    for unit in units:
        produced += len(pipeline.push_video(unit))
    produced += len(pipeline.flush())
    return time.perf_counter() - start, cpu_self() - before, produced


def run_delay(path: Path, seconds: float) -> tuple[int, float | None, float | None, float | None, int]:
    source = open_file(path)
    ladder = ladder_for(path)
    settings = TranscodeSettings(realtime=True, guard=GuardSettings())
    pipeline = TranscodePipeline(source.video, ladder, select_encoder(), settings)
    pipeline.start()
    units = [u for u in read_units(path, with_audio=False) if u.kind is TrackKind.VIDEO]
    interval = 1.0 / source.fps
    span = max(u.pts_ms for u in units) + round(interval * 1000)
    loops = max(1, round(seconds * 1000 / span))
    start = time.monotonic()
    n = 0
    for loop in range(loops):
        for unit in units:
            due = start + n * interval
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            shifted = type(unit)(
                unit.kind, unit.dts_ms + loop * span, unit.pts_ms + loop * span, unit.data,
                unit.keyframe, time.time(), unit.capture_wallclock,
            )  # fmt: skip
            pipeline.push_video(shifted)
            n += 1
    pipeline.flush()
    m = pipeline.metrics()
    return m.delay_samples, m.delay_p50_ms, m.delay_p95_ms, m.delay_p99_ms, m.frames_dropped_late


async def _run_delay_worker(path: Path, seconds: float) -> TranscodeMetrics | None:
    source = open_file(path)
    supervisor = TranscodeSupervisor("bench", source.video, source.fps)

    async def drain() -> None:
        async for _ in supervisor.events():
            pass

    consumer = asyncio.create_task(drain())
    await supervisor.start()
    await supervisor.wait_ready()
    units = [u for u in read_units(path, with_audio=False) if u.kind is TrackKind.VIDEO]
    interval = 1.0 / source.fps
    span = max(u.pts_ms for u in units) + round(interval * 1000)
    loop = asyncio.get_running_loop()
    start = loop.time()
    n = 0
    for rep in range(max(1, round(seconds * 1000 / span))):
        for unit in units:
            await asyncio.sleep(max(0.0, start + n * interval - loop.time()))
            supervisor.submit(
                dataclasses.replace(unit, dts_ms=unit.dts_ms + rep * span, pts_ms=unit.pts_ms + rep * span)
            )
            n += 1
    await supervisor.close()
    await consumer
    return supervisor.metrics().worker


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="source length for throughput")
    parser.add_argument("--delay-seconds", type=float, default=10.0, help="paced delay run")
    parser.add_argument("--decoder-threads", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("ffmpeg") is None:
        print("Debian's ffmpeg CLI is required", file=sys.stderr)
        return 2
    cores = os.cpu_count() or 1
    enc = EncoderSettings()
    settings = TranscodeSettings(realtime=False, decoder_threads=args.decoder_threads)
    choice = select_encoder()
    print(f"encoder: {choice.name} (hardware={choice.hardware}; {choice.reason})")
    print(
        f"cores: {cores}; x264 preset {enc.preset}, tune {enc.tune}; scale {settings.interpolation};"
        f" livetwin rung threads {settings.parallel_rungs}, decoder threads {settings.decoder_threads}"
    )
    ffmpeg_version = subprocess.run(
        ["ffmpeg", "-version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    print(f"baseline: {ffmpeg_version}")
    print("load average at start (shared machine): {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in ((1280, 720), (1920, 1080)):
            path = make_source(Path(tmp), width, height, 30, args.seconds)
            ladder = ladder_for(path)
            frames = sum(1 for u in read_units(path, with_audio=False))
            duration = frames / 30.0
            ff_wall, ff_cpu = run_ffmpeg(ffmpeg_command(path, ladder, enc, settings.interpolation))
            our_wall, our_cpu, produced = run_ours(path, ladder, settings)
            rungs = ",".join(r.name for r in ladder.video)
            for name, wall, cpu in (("ffmpeg CLI", ff_wall, ff_cpu), ("livetwin", our_wall, our_cpu)):
                rows.append((f"{height}p30", name, frames, wall, cpu, frames / wall, frames / wall / cores,
                             duration / wall, rungs))  # fmt: skip
            rows.append((f"{height}p30", "ratio livetwin/ffmpeg", frames, 0, 0, ff_wall / our_wall,
                         0, 0, f"throughput (wall); {produced} units out"))  # fmt: skip
            rows.append((f"{height}p30", "ratio cpu efficiency", frames, 0, 0, ff_cpu / our_cpu,
                         0, 0, "ffmpeg cpu s / livetwin cpu s"))  # fmt: skip
        print()
        print(f"{'source':8} {'run':22} {'frames':>6} {'wall s':>7} {'cpu s':>7} {'fps':>7} "
              f"{'fps/core':>8} {'x realtime':>10}  rungs")  # fmt: skip
        for src, name, frames, wall, cpu, fps, per_core, rt, rungs in rows:
            if name.startswith("ratio"):
                print(f"{src:8} {name:22} {'':>6} {'':>7} {'':>7} {fps:7.3f}x {'':>8} {'':>10}  {rungs}")
            else:
                print(f"{src:8} {name:22} {frames:6d} {wall:7.2f} {cpu:7.2f} {fps:7.1f} "
                      f"{per_core:8.1f} {rt:10.2f}  {rungs}")  # fmt: skip

        print()
        print("load average now: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
        print("per-frame transcode delay, 720p30 source paced at 30 fps (frame in -> last rung out);")
        print("a source with B-frames adds its own reorder delay (frames arrive before display order)")
        print(f"{'source':22} {'frames':>6} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'late':>5}"
              "  target p95 < 200 ms")  # fmt: skip
        for bframes, label in ((0, "720p30, no B-frames"), (3, "720p30, 3 B-frames")):
            path = make_source(Path(tmp), 1280, 720, 30, 3, bframes=bframes)
            samples, p50, p95, p99, late = run_delay(path, args.delay_seconds)
            print(f"{label:22} {samples:6d} {p50 or 0:7.1f} {p95 or 0:7.1f} {p99 or 0:7.1f} "
                  f"{late:5d}")  # fmt: skip
            m = asyncio.run(_run_delay_worker(path, args.delay_seconds))
            if m is not None:
                label = "  via worker process"
                print(f"{label:22} {m.delay_samples:6d} {m.delay_p50_ms or 0:7.1f} "
                      f"{m.delay_p95_ms or 0:7.1f} {m.delay_p99_ms or 0:7.1f} "
                      f"{m.frames_dropped_late:5d}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`live demo`: the platform, a synthetic publisher and a probe viewer, measuring itself.

It starts everything `live serve` starts (embedded default, no external service), publishes
a synthetic 720p30 stream whose frames carry their capture wall-clock as a painted block
code, and plays the stream back like a player (blocking playlist reloads, parts, preload
hints), reading the painted clock from every decoded frame. Every few seconds it prints the
glass-to-glass latency of that window: probe's clock at decode minus the painted capture time.
PROGRAM-DATE-TIME latency is printed beside it, labelled for what it is (packager to probe).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field, replace

from live.config import ChannelSeed, ServeSettings
from live.selftest.probe import DecodedFrame, Percentiles, ProbeReport, probe
from live.selftest.publisher import publish
from live.serve import Platform

DEMO_CHANNEL = "demo"


@dataclass(frozen=True, slots=True)
class DemoSettings:
    duration_s: float | None = None
    interval_s: float = 5.0
    width: int = 1280
    height: int = 720
    fps: int = 30
    bitrate_kbps: int = 2500
    rendition: str | None = "highest"


@dataclass(slots=True)
class _Window:
    latencies: list[float] = field(default_factory=list)
    unreadable: int = 0
    frames: int = 0

    def add(self, frame: DecodedFrame) -> None:
        self.frames += 1
        if frame.painted_ms is None:
            self.unreadable += 1
        else:
            self.latencies.append(frame.wallclock * 1000 - frame.painted_ms)


def _line(label: str, p: Percentiles | None) -> str:
    if p is None:
        return f"{label}: no samples yet"
    return f"{label}: p50 {p.p50:.0f} ms  p95 {p.p95:.0f} ms  p99 {p.p99:.0f} ms  (n={p.count})"


async def run_demo(serve: ServeSettings, demo: DemoSettings) -> ProbeReport | None:
    """Run until ``demo.duration_s`` elapses or SIGINT/SIGTERM; returns the probe's report."""
    key = f"demo_{secrets.token_urlsafe(12)}"
    serve = replace(serve, channels=(*serve.channels, ChannelSeed(DEMO_CHANNEL, key)))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with Platform(serve) as platform:
        ports = platform.ports
        http = f"http://{serve.url_host}:{ports.http}"
        print(f"livetwin demo: publishing a synthetic {demo.width}x{demo.height}@{demo.fps} stream",
              flush=True)
        print(f"  watch:   {http}/watch/{DEMO_CHANNEL}", flush=True)
        print(f"  LL-HLS:  {http}/hls/{DEMO_CHANNEL}/master.m3u8", flush=True)
        print(f"  streams: {http}/api/v1/streams", flush=True)
        publisher = asyncio.ensure_future(publish(
            f"{platform.rtmp_base()}/{key}", width=demo.width, height=demo.height, fps=demo.fps,
            bitrate_kbps=demo.bitrate_kbps, duration_s=None, stop=stop,
        ))
        window = _Window()
        started = time.monotonic()
        probe_for = demo.duration_s if demo.duration_s is not None else 10 * 365 * 86400.0

        async def report_windows() -> None:
            nonlocal window
            while True:
                await asyncio.sleep(demo.interval_s)
                done, window = window, _Window()
                print(f"[{time.monotonic() - started:6.1f} s] "
                      + _line("glass-to-glass", Percentiles.of(done.latencies))
                      + f"  frames {done.frames}, unreadable {done.unreadable}", flush=True)

        await _wait_for_playlist(platform, stop)
        reporter = asyncio.ensure_future(report_windows())
        viewer = asyncio.ensure_future(probe(
            f"http://127.0.0.1:{ports.http}/hls/{DEMO_CHANNEL}/master.m3u8",
            probe_for, rendition=demo.rendition, on_frame=lambda frame: window.add(frame),
        ))
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({viewer, stopper, publisher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.set()
            reporter.cancel()
            stopper.cancel()
            report: ProbeReport | None = None
            if viewer.done() and not viewer.cancelled() and viewer.exception() is None:
                report = viewer.result()
            else:
                viewer.cancel()
            with contextlib.suppress(Exception):
                await publisher
        if publisher.done() and not publisher.cancelled() and publisher.exception() is not None:
            print(f"publisher failed: {publisher.exception()}", file=sys.stderr)
        if report is not None:
            print(report.summary(), flush=True)
        return report


async def _wait_for_playlist(platform: Platform, stop: asyncio.Event, timeout_s: float = 30) -> None:
    """Until the origin has the demo's renditions (the worker takes a moment to start)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stop.is_set():
        state = platform.origin.channel(DEMO_CHANNEL)
        if state is not None and any(r.last is not None for r in state.renditions.values()):
            return
        await asyncio.sleep(0.2)

"""A probe viewer that keeps every frame's arrival and glass-to-glass latency, for chaos timelines."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from live.selftest.probe import DecodedFrame, ProbeReport, probe

STALL_GAP_S = 0.5  # no frame for this long is a stall a viewer notices


@dataclass
class WatchedFrames:
    """(monotonic arrival, glass-to-glass ms or None) of every decoded frame."""

    frames: list[tuple[float, float | None]] = field(default_factory=list)

    def on_frame(self, frame: DecodedFrame) -> None:
        latency = None if frame.painted_ms is None else frame.wallclock * 1000 - frame.painted_ms
        self.frames.append((time.monotonic(), latency))

    def first_after(self, t: float) -> float | None:
        """Seconds from ``t`` to the first frame after it."""
        return next((round(at - t, 3) for at, _ in self.frames if at > t), None)

    def stalls(self, t0: float) -> list[tuple[float, float]]:
        """(start, length) of every gap between frames longer than STALL_GAP_S, from ``t0``."""
        out = []
        for (a, _), (b, _) in zip(self.frames, self.frames[1:], strict=False):
            if b - a > STALL_GAP_S:
                out.append((round(a - t0, 3), round(b - a, 3)))
        return out

    def worst_latency_after(self, t: float) -> float | None:
        values = [lat for at, lat in self.frames if at >= t and lat is not None]
        return round(max(values), 1) if values else None


async def watch(url: str, duration_s: float) -> tuple[WatchedFrames, asyncio.Task[ProbeReport]]:
    watched = WatchedFrames()
    task = asyncio.create_task(probe(url, duration_s, rendition="lowest", on_frame=watched.on_frame))
    return watched, task

"""Transcoder fleet: streamer churn, placement on GPU and CPU pools, loss and re-placement.

Streams are counted per ladder ("full": decode once + the whole ABR ladder; "source":
remux-only). Starts and stops are drawn each step (Poisson starts, binomial stops: exact for
exponential broadcast lengths), so the count is discrete and stochastic, while placement is a
greedy fill each step: full ladders prefer GPU nodes, source-only streams prefer CPU nodes,
each spills to the other type. A node failure drops the streams it carried; they wait until
spare or newly provisioned capacity takes them, then need `transcode_start_s` to produce parts
again. Which streams were hit is random: the model exposes the fraction of each ladder's
streams that is down, and the head streams compare it against their own uniform draw.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from twin.calibration.parameters import Calibration
from twin.model.autoscale import NodePool

LADDERS = ("full", "source")


class TranscoderFleet:
    def __init__(
        self,
        calibration: Calibration,
        gpu: NodePool,
        cpu: NodePool,
        full: int,
        source: int,
        rng: np.random.Generator,
    ) -> None:
        self.calibration = calibration
        self.gpu = gpu
        self.cpu = cpu
        self.rng = rng
        self.demand = {"full": full, "source": source}
        self.placed = {"full": 0, "source": 0}
        self.restarting: deque[tuple[float, str, int]] = deque()
        self.restarting_count = {"full": 0, "source": 0}
        self.new = {"full": 0, "source": 0}
        self.started_total = 0  # broadcasts begun during the run (initial ones excluded)
        self.stopped_total = 0
        self.initial = full + source
        self.place(now=0.0, initial=True)

    @property
    def live(self) -> int:
        return self.demand["full"] + self.demand["source"]

    def capacity(self) -> dict[str, int]:
        """Greedy fill of the current nodes with the current demand (full -> GPU first)."""
        calibration = self.calibration
        want_full, want_src = self.demand["full"], self.demand["source"]
        full_gpu = min(want_full, int(self.gpu.up * calibration.gpu_streams_full))
        gpu_left = self.gpu.up - full_gpu / calibration.gpu_streams_full
        src_cpu = min(want_src, int(self.cpu.up * calibration.cpu_streams_source))
        cpu_left = self.cpu.up - src_cpu / calibration.cpu_streams_source
        full_cpu = min(want_full - full_gpu, int(cpu_left * calibration.cpu_streams_full))
        src_gpu = min(want_src - src_cpu, int(gpu_left * calibration.gpu_streams_source))
        return {"full": full_gpu + full_cpu, "source": src_cpu + src_gpu}

    def utilization(self) -> tuple[float, float]:
        calibration = self.calibration
        cap = self.capacity()
        full_gpu = min(cap["full"], int(self.gpu.up * calibration.gpu_streams_full))
        full_cpu = cap["full"] - full_gpu
        src_cpu = min(cap["source"], int(self.cpu.up * calibration.cpu_streams_source))
        src_gpu = cap["source"] - src_cpu
        gpu_used = full_gpu / calibration.gpu_streams_full + src_gpu / calibration.gpu_streams_source
        cpu_used = src_cpu / calibration.cpu_streams_source + full_cpu / calibration.cpu_streams_full
        return (
            gpu_used / self.gpu.up if self.gpu.up else 0.0,
            cpu_used / self.cpu.up if self.cpu.up else 0.0,
        )

    def gpu_needed(self) -> float:
        return self.demand["full"] / self.calibration.gpu_streams_full

    def cpu_needed(self) -> float:
        return self.demand["source"] / self.calibration.cpu_streams_source

    def churn(self, dt: float, target: float, full_share: float) -> None:
        """Advance broadcasts by dt toward `target` live streams (diurnal demand)."""
        keep = math.exp(-dt / self.calibration.streamer_session_mean_s)
        for ladder in LADDERS:
            n = self.demand[ladder]
            stops = int(self.rng.binomial(n, 1.0 - keep)) if n else 0
            share = full_share if ladder == "full" else 1.0 - full_share
            expected = max(0.0, target * share - n * keep)
            starts = int(self.rng.poisson(expected))
            placed_stops = round(stops * self.placed[ladder] / n) if n else 0
            self.placed[ladder] -= min(placed_stops, self.placed[ladder])
            self.demand[ladder] = n - stops + starts
            self.new[ladder] += starts
            self.started_total += starts
            self.stopped_total += stops

    def place(self, now: float, initial: bool = False) -> None:
        """Re-fit placements to capacity: drop what no longer fits, place what now fits.

        Streams that started this step are placed first and are not "down" while they warm
        up (nobody watched them yet); every other newly placed stream was live and waiting,
        so it counts as down for `transcode_start_s` more.
        """
        while self.restarting and self.restarting[0][0] <= now:
            _, ladder, count = self.restarting.popleft()
            self.restarting_count[ladder] -= count
        cap = self.capacity()
        for ladder in LADDERS:
            fit = min(self.demand[ladder], cap[ladder])
            gained = fit - self.placed[ladder]
            self.placed[ladder] = fit
            restart = 0 if initial else gained - min(gained, self.new[ladder])
            if restart > 0:
                self.restarting.append((now + self.calibration.transcode_start_s, ladder, restart))
                self.restarting_count[ladder] += restart
            self.new[ladder] = 0

    def down_fraction(self, ladder: str) -> float:
        """Share of this ladder's live streams producing no parts (unplaced or restarting)."""
        n = self.demand[ladder]
        if not n:
            return 0.0
        return min(1.0, (n - self.placed[ladder] + self.restarting_count[ladder]) / n)

"""Tracer viewers: a sample of fully simulated LL-HLS players, for latency and rebuffering.

The fluid audience gives loads; it cannot give distributions of what one viewer sees. Each
tracer is a SimPy process that plays one session at a time: it picks a stream by current
popularity, a home region by share, a bandwidth from the lognormal law, joins
`hold_back_parts` behind the live edge (RFC 8216bis 4.4.3.8 PART-HOLD-BACK), and then per
part: issues a blocking playlist reload for the next part (answered when the part reaches its
edge, RFC 8216bis 6.2.5.2), fetches it (RTT + edge queue wait + size / bandwidth), and plays
it from a playout buffer. A part that arrives after the previous one finished playing is a
stall (rebuffer); glass-to-glass is display time minus the part's capture time. Players catch
up at `player_catchup_rate` when behind their target and seek back to the live edge past
`player_max_lag_s`, as hls.js does. Faults reach tracers
through the model: a region that is down answers nothing until DNS failover, a stream without
a transcoder or ingest produces no parts, an overloaded edge divides its bandwidth.

One SimPy event per part per tracer: the wait until the part arrives. Everything between two
arrivals is arithmetic, which is what keeps hundreds of tracers cheap.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import simpy

from twin.calibration.parameters import Calibration


class DeliveryView(Protocol):
    """What a tracer may ask of the model at the current simulated time."""

    def pick_stream(self, u: float) -> int: ...
    def pick_region(self, u: float) -> int: ...
    def group_full_ladder(self, group: int) -> bool: ...
    def stream_down(self, group: int, u: float) -> bool: ...
    def serving(self, home: int) -> tuple[int, float]: ...
    def edge_bandwidth_factor(self, region: int) -> float: ...
    def edge_wait(self, region: int, u1: float, u2: float) -> float: ...
    def upstream_delay(self, region: int, u1: float, u2: float, u3: float, u4: float) -> float: ...
    def rtt_s(self, region: int) -> float: ...
    def link_loss(self, region: int) -> float: ...


MSS_BITS = 1460 * 8


def mathis_bps(rtt_s: float, loss: float) -> float:
    """TCP throughput under random loss: MSS / RTT x sqrt(3 / 2p) (Mathis et al., CCR 1997)."""
    return MSS_BITS / max(rtt_s, 1e-4) * math.sqrt(1.5 / loss)


@dataclass(slots=True)
class TracerStats:
    """Per record-window tallies: latency samples, stall and watch time.

    Samples are bounded by tracers x duration / part_s, known before the run starts.
    """

    window_s: float
    latency: list[list[float]]
    stall_s: list[float]
    watch_s: list[float]
    startup_s: list[float] = field(default_factory=list)
    sessions: int = 0
    failed_starts: int = 0

    @classmethod
    def empty(cls, duration_s: float, window_s: float) -> TracerStats:
        n = math.ceil(duration_s / window_s) + 1
        return cls(window_s, [[] for _ in range(n)], [0.0] * n, [0.0] * n)

    def percentiles(self, q: tuple[float, ...]) -> list[list[float]]:
        out = []
        for samples in self.latency:
            out.append(list(np.percentile(samples, q)) if samples else [math.nan] * len(q))
        return out

    def all_latency(self) -> np.ndarray:
        return np.fromiter((x for w in self.latency for x in w), dtype=np.float64)


def tracer(
    env: simpy.Environment,
    view: DeliveryView,
    calibration: Calibration,
    rng: random.Random,
    stats: TracerStats,
    end_s: float,
) -> simpy.events.ProcessGenerator:
    """One tracer slot: back-to-back viewing sessions until the run ends."""
    part = calibration.part_s
    rates = [r.bitrate_bps for r in calibration.ladder]
    mu = math.log(calibration.viewer_bandwidth_median_mbps * 1e6)
    pipeline = calibration.publisher_encode_s + calibration.transcode_latency_s + calibration.package_s
    target = calibration.hold_back_parts * part
    hold_back = int(calibration.hold_back_parts)
    rand = rng.random
    window = stats.window_s
    last = len(stats.stall_s) - 1
    # stagger the slots so that joins are not synchronized at t=0
    yield env.timeout(rng.random() * part)
    while env.now < end_s:
        stats.sessions += 1
        session_end = env.now + rng.expovariate(1.0 / calibration.viewer_session_mean_s)
        group = view.pick_stream(rng.random())
        u_stream = rng.random()
        home = view.pick_region(rng.random())
        bandwidth = math.exp(rng.gauss(mu, calibration.viewer_bandwidth_sigma))
        access = math.exp(rng.gauss(0.0, calibration.viewer_rtt_sigma))  # last-mile RTT factor of this viewer
        ladder = rates if view.group_full_ladder(group) else rates[:1]
        joined = False
        played = False  # once playback has started, every second not playing is a stall
        started = env.now
        n = 0
        display = 0.0  # when part n-1 finishes playing
        while env.now < session_end and env.now < end_s:
            region, extra = view.serving(home)
            if region < 0 or view.stream_down(group, u_stream):
                # nothing to fetch: the player stalls, then rejoins at the live edge
                wait = min(1.0, end_s - env.now)
                if played:
                    stats.stall_s[min(int(env.now / window), last)] += wait
                joined = False
                yield env.timeout(max(wait, 1e-9))
                continue
            bw = bandwidth * view.edge_bandwidth_factor(region)
            loss = view.link_loss(region)
            if loss > 0.0:
                bw = min(bw, mathis_bps(view.rtt_s(region) * access + extra, loss))
            rate = ladder[-1]
            for r in ladder:
                if r <= calibration.abr_safety * bw:
                    rate = r
                    break
            now = env.now
            if not joined:
                n = int((now - pipeline) / part) - hold_back
            capture = n * part
            at_edge = capture + part + pipeline + view.upstream_delay(region, rand(), rand(), rand(), rand())
            respond = (
                view.rtt_s(region) * access
                + extra
                + view.edge_wait(region, rand(), rand())
                + rate * part / bw
            )
            arrival = (now if now > at_edge else at_edge) + respond
            yield env.timeout(arrival - now)
            idx = min(int(arrival / window), last)
            if not joined:
                # (re)joining at the live edge: after playback began, the wait is a rebuffer
                if played:
                    stats.stall_s[idx] += arrival - now
                joined = True
                display = arrival
            lag = display - capture
            if lag > calibration.player_max_lag_s:
                # too far behind: seek to the live edge, as hls.js does past liveMaxLatencyDuration
                joined = False
                continue
            if not played:
                played = True
                stats.startup_s.append(arrival - started)
            step = part / calibration.player_catchup_rate if lag > target + part else part
            start = max(arrival, display)
            stats.stall_s[idx] += arrival - display if arrival > display else 0.0
            stats.watch_s[idx] += part
            stats.latency[idx].append(start - capture + calibration.display_s)
            display = start + step
            n += 1
        if not played:
            stats.failed_starts += 1


@dataclass(slots=True)
class ProbeStats:
    """Glass-to-glass samples of the probe replicas: (time, decode latency, playout latency)."""

    t: list[float] = field(default_factory=list)
    decode_s: list[float] = field(default_factory=list)
    playout_s: list[float] = field(default_factory=list)
    stall_s: float = 0.0
    joins: int = 0


@dataclass(frozen=True, slots=True)
class ProbePath:
    """One probe replica: which stream group it plays from when to when, and its fixed delays.

    `pipeline_s` is capture to part complete at the origin; a segment holds `segment_parts`
    parts of `frames_per_part` frames; `transfer_s` moves a part to the probe, and `decode_s`
    turns it into frames.
    """

    group: int
    start_s: float
    end_s: float
    pipeline_s: float
    segment_parts: int
    frames_per_part: int
    transfer_s: float
    decode_s: float


def probe(
    env: simpy.Environment,
    view: DeliveryView,
    calibration: Calibration,
    rng: random.Random,
    stats: ProbeStats,
    path: ProbePath,
) -> simpy.events.ProcessGenerator:
    """One probe viewer as live/selftest/probe.py plays: live-edge join, decode and playout clocks.

    It joins at the newest independent part (the start of the newest segment: IDR every
    segment), fetches what is listed back to back, then each next part the moment it exists
    (preload hint). Every frame of a part comes out of the decoder `decode_s` after the part
    arrives; decode latency = that instant - the frame's capture (painted) time. The playout
    clock starts at the first frame and only ever waits, so a frame's playout latency is the
    running maximum of the decode latencies so far (frames lost while the stream is down
    carry no timestamps, so a gap does not move the clock). Frames are spread evenly over the
    part; a part holds `frames_per_part` frames.
    """
    group, start_s, end_s, pipeline_s = path.group, path.start_s, path.end_s, path.pipeline_s
    segment_parts, frames_per_part = path.segment_parts, path.frames_per_part
    transfer_s, decode_s = path.transfer_s, path.decode_s
    part = calibration.part_s
    frame = part / frames_per_part
    yield env.timeout(start_s)
    clock = -math.inf  # playout clock offset: wall - capture of the frame shown at its slot
    n = -1
    while env.now < end_s:
        u = rng.random()
        if view.stream_down(group, u):
            yield env.timeout(min(0.1, max(end_s - env.now, 1e-9)))
            if n >= 0:
                n = -2  # the cursor resumes with whatever the restarted worker produces first
            continue
        now = env.now
        newest = math.floor((now - pipeline_s) / part) - 1  # the newest part complete at the origin
        if n == -1:
            if newest < 0:
                yield env.timeout(part)
                continue
            n = newest - newest % segment_parts
            stats.joins += 1
        elif n == -2:
            n = newest + 1
        ready = n * part + part + pipeline_s
        respond = view.rtt_s(0) + view.edge_wait(0, rng.random(), rng.random()) + transfer_s
        arrival = max(now, ready) + respond
        yield env.timeout(arrival - now)
        out = arrival + decode_s
        for f in range(frames_per_part):
            latency = out - (n * part + f * frame)
            if latency > clock:
                if clock > -math.inf and latency - clock > 0.1:
                    stats.stall_s += latency - clock
                clock = latency
            stats.t.append(out)
            stats.decode_s.append(latency)
            stats.playout_s.append(clock)
        n += 1

"""Tracer viewers: a sample of fully simulated LL-HLS players, for latency and rebuffering.

The fluid audience gives loads; it cannot give distributions of what one viewer sees. Each
tracer is a SimPy process that plays one session at a time: it picks a stream by current
popularity, a home region by share, a bandwidth and a last-mile RTT factor from lognormal
laws, and plays the stream as a real LL-HLS client does:

- It joins with a plain playlist request, which lists every part its edge holds, and starts
  playing PART-HOLD-BACK behind that playlist's end (RFC 8216bis 4.4.3.8).
- It keeps one blocking playlist reload outstanding, asking for the part after the newest it
  knows; the edge answers once that part is there (RFC 8216bis 6.2.5.2) and the next reload
  goes out the moment the answer arrives. With an RTT above the part duration the answers
  list several new parts at once.
- It requests every part the moment a playlist lists it or hints it (EXT-X-PRELOAD-HINT,
  RFC 8216bis 4.4.5.3 and 6.2.5.3), without waiting for the part before to finish: the
  origin and the edges hold a hinted request and answer it whole when the part is complete
  (live.origin.app). So the part arrives an edge queue wait, a one-way trip and its transfer
  after it reaches the edge, and a slow round trip does not add up from part to part, as it
  would for a player that fetched parts one after another.
- Parts share the viewer's access link in order: a part's bytes start after the bytes of the
  part before.
- It plays from a buffer: a part that arrives after the previous one finished playing is a
  stall (rebuffer); glass-to-glass is display time minus the capture time of the part's first
  frame. Like hls.js (latency-controller.ts), it estimates its own latency from the live edge
  of its latest playlist plus that playlist's age, plays at `player_catchup_rate` while that
  is more than 50 ms above PART-HOLD-BACK, and seeks back to the live edge past
  `player_max_lag_s`. It picks the highest rendition below `abr_safety` x its throughput.

Faults reach tracers through the model: a region that is down answers nothing until DNS
failover, a stream without a transcoder or ingest produces no parts, an overloaded edge
divides its bandwidth, packet loss caps TCP throughput.

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
from twin.model.cdn import WaitLaw, wait_from

#: How a home region's viewers reach an edge now: (serving region, its RTT, the extra RTT of a
#: failover detour, the share of their bandwidth the region's edges deliver, packet loss on
#: their links); the region is -1 when nobody serves them. One tuple per part fetch, read
#: together because the tracer needs all of it for every part.
Route = tuple[int, float, float, float, float]

#: The waits of a part on its way to a viewer, this fluid step, per serving region: the
#: edge-shield-origin RTTs, the shield's and the origin's wait laws (a part reaches the edge
#: after both), and the edge's (for every request the viewer makes).
Delays = tuple[float, WaitLaw, WaitLaw, WaitLaw]


class DeliveryView(Protocol):
    """What a tracer may ask of the model at the current simulated time."""

    def pick_stream(self, u: float) -> int: ...
    def pick_region(self, u: float) -> int: ...
    def group_full_ladder(self, group: int) -> bool: ...
    def stream_down(self, group: int, u: float) -> bool: ...
    def route(self, home: int) -> Route: ...
    def delays(self, region: int) -> Delays: ...

    #: changes whenever an answer of `stream_down`, `route` or `delays` may have (each fluid
    #: step, each fault that moves viewers or changes their links); a tracer asks again only then
    version: int


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
    """One tracer slot: back-to-back viewing sessions until the run ends.

    Times are computed, not waited for: at the arrival of part n-1 the tracer works out when
    part n arrives from the player's request schedule (see the module docstring) and sleeps
    until then. The session keeps four clocks: the newest part its latest playlist lists and
    when that playlist arrived (the blocking-reload chain), when its access link has delivered
    every byte asked for so far (parts share one link, in order), and when the part before
    this one finishes playing.
    """
    part = calibration.part_s
    rates = [r.bitrate_bps for r in calibration.ladder]
    mu = math.log(calibration.viewer_bandwidth_median_mbps * 1e6)
    pipeline = calibration.publisher_encode_s + calibration.transcode_latency_s + calibration.package_s
    hold_back = calibration.hold_back_parts
    tolerance = calibration.player_catchup_tolerance_s
    backoff, backoff_max = calibration.player_stall_backoff_s, calibration.segment_s
    catch_up_step = part / calibration.player_catchup_rate
    max_lag = calibration.player_max_lag_s
    display_s = calibration.display_s
    abr_safety = calibration.abr_safety
    rand = rng.random
    floor = math.floor
    timeout = env.timeout
    window = stats.window_s
    per_window = 1.0 / window
    last = len(stats.stall_s) - 1
    latency, stall_s, watch_s = stats.latency, stats.stall_s, stats.watch_s
    window_end = -math.inf  # where the record window `idx` ends (arrivals only move forward)
    idx = 0
    add_latency = latency[0].append
    route, stream_down, delays = view.route, view.stream_down, view.delays
    log = math.log
    # stagger the slots so that joins are not synchronized at t=0
    yield timeout(rng.random() * part)
    while env.now < end_s:
        stats.sessions += 1
        session_end = min(env.now + rng.expovariate(1.0 / calibration.viewer_session_mean_s), end_s)
        group = view.pick_stream(rng.random())
        u_stream = rng.random()
        home = view.pick_region(rng.random())
        bandwidth = math.exp(rng.gauss(mu, calibration.viewer_bandwidth_sigma))
        access = math.exp(rng.gauss(0.0, calibration.viewer_rtt_sigma))  # last-mile RTT factor of this viewer
        ladder = rates if view.group_full_ladder(group) else rates[:1]
        seen = -1  # the view's version this session's path was read at
        region = 0
        down = False
        one_way = transfer = upstream = 0.0
        abr_bw = -1.0  # the throughput the current rendition was chosen for
        # the wait laws (C, rate, extra) of the shield, origin and edge, unpacked
        shield_c = shield_rate = origin_c = origin_rate = edge_c = edge_rate = edge_extra = 1.0
        edge_law = (edge_c, edge_rate, edge_extra)
        joined = False
        played = False  # once playback has started, every second not playing is a stall
        started = env.now
        n = 0  # the part to fetch next
        newest = 0  # the newest part the player's latest playlist lists (it hints newest + 1)
        listed_at = 0.0  # when that playlist reached the player
        edge_lag = 0.0  # wall clock minus media time of the live edge, as the player last saw it
        link_free = 0.0  # when the access link has delivered every part asked for so far
        display = 0.0  # when part n-1 finishes playing
        catch_up_above = hold_back * part + tolerance  # PART-HOLD-BACK, longer after each stall
        stalls = 0
        now = env.now
        while now < session_end:
            if view.version != seen:
                # the path only changes with the model's state: read it again only then
                seen = view.version
                region, rtt, extra, bandwidth_factor, loss = route(home)
                down = region < 0 or stream_down(group, u_stream)
                if not down:
                    round_trip = rtt * access + extra
                    one_way = round_trip * 0.5
                    bw = bandwidth * bandwidth_factor
                    if loss > 0.0:
                        bw = min(bw, mathis_bps(round_trip, loss))
                    if bw != abr_bw:  # the rendition only changes with the throughput
                        abr_bw, rate = bw, ladder[-1]
                        for r in ladder:
                            if r <= abr_safety * bw:
                                rate = r
                                break
                        transfer = rate * part / bw
                    upstream, shield_law, origin_law, edge_law = delays(region)
                    shield_c, shield_rate, shield_extra = shield_law
                    origin_c, origin_rate, origin_extra = origin_law
                    edge_c, edge_rate, edge_extra = edge_law
                    upstream += pipeline + shield_extra + origin_extra
            if down:
                # nothing to fetch: the player stalls, then rejoins at the live edge
                wait = min(1.0, end_s - now)
                if played:
                    stall_s[min(int(now * per_window), last)] += wait
                joined = False
                yield timeout(max(wait, 1e-9))
                now = env.now
                continue
            # a part is at the edge this long after its last frame was captured: the pipeline,
            # the RTTs and waits of the shield and the origin (`wait_from` inline: once per part;
            # a tier that cannot make anyone wait draws nothing)
            edge_after = upstream
            if shield_c > 0.0:
                u = rand()
                if u < shield_c:
                    edge_after -= log(u / shield_c) / shield_rate
            if origin_c > 0.0:
                u = rand()
                if u < origin_c:
                    edge_after -= log(u / origin_c) / origin_rate
            if not joined:
                # a plain playlist request lists what the edge holds when it gets there; playback
                # starts the target latency (PART-HOLD-BACK, RFC 8216bis 4.4.3.8, plus any stall
                # backoff) behind that playlist's end
                newest = floor((now + one_way - edge_after) / part) - 1
                listed_at = now + 2.0 * one_way + wait_from(edge_law, rand())
                edge_lag = listed_at - (newest + 1) * part
                n = floor(newest + 1 - (catch_up_above - tolerance) / part + 1e-6)
                link_free = listed_at
            while newest < n - 1:
                # the blocking reload for the part after `newest`, sent the moment the last
                # playlist arrived, answered once that part is at the edge (RFC 8216bis 6.2.5.2)
                asked = listed_at + one_way
                ready = (newest + 2) * part + edge_after
                answer = asked if asked > ready else ready
                answered = floor((answer - edge_after) / part) - 1
                newest = answered if answered > newest else newest + 1
                listed_at = answer + one_way
                edge_lag = listed_at - (newest + 1) * part
            # part n was listed or preload-hinted in that playlist: its request went out then and
            # the edge holds it until the part is there
            asked = listed_at + one_way
            ready = (n + 1) * part + edge_after
            served = (asked if asked > ready else ready) + edge_extra
            if edge_c > 0.0:
                u = rand()
                if u < edge_c:
                    served -= log(u / edge_c) / edge_rate
            arrival = served + one_way + transfer
            if arrival < link_free + transfer:
                arrival = link_free + transfer
            link_free = arrival
            waited_from = now
            yield timeout(arrival - now)
            now = env.now
            if arrival >= window_end:  # a new record window: look its tallies up once
                idx = min(int(arrival * per_window), last)
                window_end = (idx + 1) * window if idx < last else math.inf
                add_latency = latency[idx].append
            if not joined:
                # (re)joining at the live edge: after playback began, the wait is a rebuffer
                if played:
                    stall_s[idx] += arrival - waited_from
                joined = True
                display = arrival
            capture = n * part
            start = arrival if arrival > display else display
            behind = start - edge_lag - capture  # the player's own latency estimate (hls.js `latency`)
            if behind > max_lag:
                # too far behind: seek to the live edge, as hls.js does past liveMaxLatencyDuration
                joined = False
                continue
            if not played:
                played = True
                stats.startup_s.append(arrival - started)
            if arrival > display:
                stall_s[idx] += arrival - display
                # a stall moves the player's target latency back (hls.js liveSyncOnStallIncrease)
                stalls += 1
                catch_up_above = hold_back * part + min(stalls * backoff, backoff_max) + tolerance
            watch_s[idx] += part
            add_latency(start - capture + display_s)
            display = start + (catch_up_step if behind > catch_up_above else part)
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
        respond = view.route(0)[1] + wait_from(view.delays(0)[3], rng.random()) + transfer_s
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

"""The scenario schema: frozen dataclasses that say what to simulate, and nothing about YAML.

A `Scenario` states the regions, the fleet, the workload, the scheduled faults and the SLOs
(issue 5); its optional `real:` section (`RealSpec`) is the same story scaled down to one
machine for `loadgen run` and `twin validate`. `twin.scenario.reader` builds these from YAML
with file:line:field errors; the model and the load generators read only these types.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MAX_STREAMERS = 10_000_000  # the popularity law holds one float per channel: bounded memory
MAX_REGIONS = 64
MAX_REAL_CHANNELS = 16
MAX_REAL_VIEWERS = 5000
MAX_REAL_SHIELDS = 4  # nginx nodes one machine runs beside the platform: bounded processes
MAX_REAL_EDGES = 8


class FaultKind(StrEnum):
    """What a scheduled twin fault does (the model dispatches on these, twin.model.faults)."""

    VIRAL_SPIKE = "viral_spike"
    REGION_OUTAGE = "region_outage"
    TRANSCODER_LOSS = "transcoder_loss"
    CHAT_STORM = "chat_storm"
    AD_BREAK = "ad_break"
    WORKER_RESTART = "worker_restart"
    NODE_LOSS = "node_loss"
    VIEWER_PACKET_LOSS = "viewer_packet_loss"
    CHAT_BROKER_FAILOVER = "chat_broker_failover"


class RealFaultKind(StrEnum):
    """What a fault of the real run does (`loadgen run` performs these)."""

    VIRAL_SPIKE = "viral_spike"
    WORKER_KILL = "worker_kill"
    # real faults of a tier (issue 23; loadgen.faults performs them)
    KILL = "kill"  # SIGKILL `target`, start it again after duration_s
    HANG = "hang"  # SIGSTOP `target` for duration_s, then SIGCONT
    PARTITION = "partition"  # nothing passes `between` the two for duration_s
    LOSS = "loss"  # loss_pct of the packets `between` the two are lost, for duration_s
    LATENCY = "latency"  # delay_ms (+- jitter_ms) each way `between` the two, for duration_s
    BANDWIDTH = "bandwidth"  # `between` the two carries at most rate_kbit, for duration_s


#: Real faults that hit a process (`target`) and those that hit a link (`between`).
PROCESS_FAULTS = (RealFaultKind.KILL, RealFaultKind.HANG)
LINK_FAULTS = (RealFaultKind.PARTITION, RealFaultKind.LOSS, RealFaultKind.LATENCY, RealFaultKind.BANDWIDTH)
#: The tiers a real fault can name: `chat-2`, `edge-1` and `shield-1` number a tier's nodes.
REAL_TIER_PATTERN = r"(publisher|ingest|origin|api|viewer|nats|postgres|redis|(chat|edge|shield)(-\d+)?)"
MAX_REAL_FAULT_S = 120.0


class NodeType(StrEnum):
    """The transcoder pools a `transcoder_loss` can hit."""

    GPU = "gpu"
    CPU = "cpu"


class LossTier(StrEnum):
    """The delivery and chat tiers a `node_loss` can hit.

    origin and chat are autoscaled pools: the lost nodes are replaced after the pool's
    provisioning delay. edge and shield are a region's servers: they are gone for `duration_s`.
    """

    ORIGIN = "origin"
    CHAT = "chat"
    EDGE = "edge"
    SHIELD = "shield"


#: Fault kinds aimed at one stream (by popularity rank).
STREAM_FAULTS = (FaultKind.VIRAL_SPIKE, FaultKind.CHAT_STORM, FaultKind.AD_BREAK, FaultKind.WORKER_RESTART)
REAL_LADDERS = ("full",)  # the platform transcodes every live stream into its ladder


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    viewer_share: float
    streamer_share: float
    rtt_ms: float
    edge_pops: int
    edge_servers_per_pop: int
    shield_servers: int
    ingest_capacity_streams: int
    failover_to: str


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """A node pool: `nodes` at start, autoscaled within [min_nodes, max_nodes]."""

    nodes: int
    min_nodes: int
    max_nodes: int


@dataclass(frozen=True, slots=True)
class Fleet:
    gpu: PoolSpec
    cpu: PoolSpec
    origin: PoolSpec
    chat: PoolSpec
    ad_servers: int
    target_utilization: float
    autoscale_period_s: float


@dataclass(frozen=True, slots=True)
class Workload:
    viewers: float
    streamers: int
    start_hour: float
    peak_hour: float
    trough_ratio: float
    top_k: int
    top_k_share: float
    top1_share: float | None
    full_ladder_share: float
    chatter_share: float
    tracers: int


@dataclass(frozen=True, slots=True)
class Fault:
    """One scheduled event. Fields not used by a kind keep their defaults."""

    kind: FaultKind
    at_s: float
    duration_s: float
    region: str = ""
    stream_rank: int = 1
    factor: float = 1.0
    ramp_s: float = 0.0
    node_type: NodeType = NodeType.GPU
    share: float = 0.0
    tier: LossTier = LossTier.ORIGIN
    messages_per_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Slos:
    glass_to_glass_p95_s: float
    rebuffer_ratio: float
    availability: float
    chat_delay_p99_s: float


@dataclass(frozen=True, slots=True)
class RealSource:
    """The synthetic publishers' capture: what each of `RealSpec.channels` publishes."""

    width: int
    height: int
    fps: int
    bitrate_kbps: int


@dataclass(frozen=True, slots=True)
class RealFault:
    """A fault of the real run.

    `viral_spike`: the viewers of channel `stream_rank` grow to `factor` x over `ramp_s`, stay
    there for `duration_s`, then return. `worker_kill`: the transcode worker of channel
    `stream_rank` is killed (SIGKILL) at `at_s`; the platform's supervisor restarts it.
    `kill`/`hang` hit the process of `target` for `duration_s`; `partition`, `loss`,
    `latency` and `bandwidth` impair the link `between` two tiers for `duration_s`
    (docs/chaos.md).
    """

    kind: RealFaultKind
    at_s: float
    stream_rank: int = 1
    factor: float = 1.0
    ramp_s: float = 0.0
    duration_s: float = 0.0
    target: str = ""
    between: tuple[str, ...] = ()
    loss_pct: float = 0.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_kbit: int = 0


@dataclass(frozen=True, slots=True)
class Bands:
    """Acceptable predicted-vs-measured error, stated before the run (issue 6 goals as defaults).

    Relative bands for throughput (requests/s), utilization (CPU cores) and latency
    percentiles; rebuffer ratios near zero make relative errors meaningless, so that band is
    absolute (a difference of ratios), and so is the edges' hit ratio (near one: its relative
    error hides a miss rate off by half).
    """

    throughput: float = 0.15
    utilization: float = 0.15
    latency: float = 0.25
    rebuffer_abs: float = 0.01
    hit_ratio_abs: float = 0.03


@dataclass(frozen=True, slots=True)
class RealCdn:
    """The real CDN tiers of a run: `shields` nginx shields and `edges` nginx edges (`live cdn`)
    in front of the platform's origin; viewers and the probe fetch through the edges."""

    shields: int
    edges: int


@dataclass(frozen=True, slots=True)
class RealSpec:
    """The scenario scaled down to one machine: what `loadgen run` starts and measures.

    Times are seconds from the moment every publisher is live; measurements cover
    [warmup_s, warmup_s + duration_s). `viewer_shares[i]` is the share of the `viewers`
    Locust users watching channel i + 1 (rank order); chat users join channel 1.
    """

    duration_s: float
    warmup_s: float
    channels: int
    ladder: str
    source: RealSource
    viewers: int
    viewer_shares: tuple[float, ...]
    spawn_rate: float
    chatters: int
    chat_messages_per_s: float
    locust_processes: int
    faults: tuple[RealFault, ...]
    bands: Bands
    cdn: RealCdn | None = None  # None: viewers fetch from the origin itself


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    duration_s: float
    step_s: float
    record_every_s: float
    head_streams: int
    regions: tuple[Region, ...]
    fleet: Fleet
    workload: Workload
    faults: tuple[Fault, ...]
    slos: Slos
    source: str = "<string>"
    real: RealSpec | None = None

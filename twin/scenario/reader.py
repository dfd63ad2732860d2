"""Scenario files: YAML in, a frozen, validated `Scenario` (twin.scenario.schema) out.

A scenario states the fleet, the workload, the faults and the SLOs (issue 5). Parsing keeps
yaml's node marks so that every error names the file, the line and the dotted field that is
wrong (`ScenarioError`), and unknown keys are errors, not silently ignored: a typo in a fault
must never turn a failure drill into a quiet baseline run.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from twin.popularity import fit_popularity
from twin.scenario.nodes import NodeReader, ScenarioError
from twin.scenario.schema import (
    LINK_FAULTS,
    MAX_REAL_CHANNELS,
    MAX_REAL_EDGES,
    MAX_REAL_FAULT_S,
    MAX_REAL_SHIELDS,
    MAX_REAL_VIEWERS,
    MAX_REGIONS,
    MAX_STREAMERS,
    PROCESS_FAULTS,
    REAL_LADDERS,
    REAL_TIER_PATTERN,
    STREAM_FAULTS,
    Bands,
    Fault,
    FaultKind,
    Fleet,
    LossTier,
    NodeType,
    PoolSpec,
    RealCdn,
    RealFault,
    RealFaultKind,
    RealSource,
    RealSpec,
    Region,
    Scenario,
    Slos,
    Workload,
)

FAULT_KINDS = tuple(k.value for k in FaultKind)
NODE_TYPES = tuple(t.value for t in NodeType)
LOSS_TIERS = tuple(t.value for t in LossTier)
REAL_FAULT_KINDS = tuple(k.value for k in RealFaultKind)


def _region(r: NodeReader) -> Region:
    return Region(
        name=r.text("name"),
        viewer_share=r.number("viewer_share", lo=0.0, hi=1.0),
        streamer_share=r.number("streamer_share", lo=0.0, hi=1.0),
        rtt_ms=r.number("rtt_ms", lo=0.0, hi=2000.0),
        edge_pops=r.integer("edge_pops", lo=1),
        edge_servers_per_pop=r.integer("edge_servers_per_pop", lo=1),
        shield_servers=r.integer("shield_servers", lo=1),
        ingest_capacity_streams=r.integer("ingest_capacity_streams", lo=1),
        failover_to=r.text("failover_to", default="-"),
    )


def _pool(r: NodeReader) -> PoolSpec:
    nodes = r.integer("nodes", lo=0)
    spec = PoolSpec(
        nodes=nodes,
        min_nodes=r.integer("min_nodes", default=0),
        max_nodes=r.integer("max_nodes", default=nodes),
    )
    if not spec.min_nodes <= spec.nodes <= spec.max_nodes:
        r.fail(
            r.node,
            r.field,
            f"needs min_nodes <= nodes <= max_nodes, got {spec.min_nodes}, {spec.nodes}, {spec.max_nodes}",
        )
    r.done()
    return spec


def _fleet(r: NodeReader) -> Fleet:
    fleet = Fleet(
        gpu=_pool(r.mapping("gpu")),
        cpu=_pool(r.mapping("cpu")),
        origin=_pool(r.mapping("origin")),
        chat=_pool(r.mapping("chat")),
        ad_servers=r.integer("ad_servers", lo=1),
        target_utilization=r.number("target_utilization", default=0.7, lo=0.05, hi=0.99),
        autoscale_period_s=r.number("autoscale_period_s", default=30.0, lo=1.0),
    )
    r.done()
    return fleet


def _workload(r: NodeReader) -> Workload:
    w = Workload(
        viewers=r.number("viewers", lo=1.0, hi=1e10),
        streamers=r.integer("streamers", lo=2, hi=MAX_STREAMERS),
        start_hour=r.number("start_hour", default=20.0, lo=0.0, hi=24.0),
        peak_hour=r.number("peak_hour", default=21.0, lo=0.0, hi=24.0),
        trough_ratio=r.number("trough_ratio", default=0.4, lo=0.0, hi=1.0),
        top_k=r.integer("top_k", default=1000, lo=1),
        top_k_share=r.number("top_k_share", default=0.5, lo=0.0, hi=1.0, lo_open=True),
        top1_share=r.number("top1_share", lo=0.0, hi=1.0, lo_open=True) if r.has("top1_share") else None,
        full_ladder_share=r.number("full_ladder_share", default=0.1, lo=0.0, hi=1.0),
        chatter_share=r.number("chatter_share", default=0.1, lo=0.0, hi=1.0),
        tracers=r.integer("tracers", default=100, lo=1, hi=5000),
    )
    if w.top_k >= w.streamers:
        r.fail(
            r.items["top_k"][1] if r.has("top_k") else r.node,
            r.sub("top_k"),
            f"must be below streamers ({w.streamers})",
        )
    if w.top1_share is not None and w.top1_share >= w.top_k_share:
        r.fail(r.items["top1_share"][1], r.sub("top1_share"), "must be below top_k_share")
    try:
        fit_popularity(w.streamers, w.top_k, w.top_k_share, w.top1_share)
    except ValueError as exc:
        field = "top1_share" if "top1_share" in str(exc) else "top_k_share"
        r.fail(
            r.items[field][1] if r.has(field) else r.node, r.sub(field), f"unreachable popularity law: {exc}"
        )
    r.done()
    return w


def _fault(r: NodeReader) -> Fault:
    kind = FaultKind(r.text("kind", choices=FAULT_KINDS))
    at_s = r.number("at_s", lo=0.0)
    match kind:
        case FaultKind.VIRAL_SPIKE:
            return Fault(
                kind,
                at_s,
                r.number("duration_s", lo=0.0),
                stream_rank=r.integer("stream_rank", lo=1),
                factor=r.number("factor", lo=0.0, lo_open=True),
                ramp_s=r.number("ramp_s", lo=0.0),
            )
        case FaultKind.REGION_OUTAGE:
            return Fault(kind, at_s, r.number("duration_s", lo=0.0, lo_open=True), region=r.text("region"))
        case FaultKind.TRANSCODER_LOSS:
            return Fault(
                kind,
                at_s,
                0.0,
                node_type=NodeType(r.text("node_type", choices=NODE_TYPES)),
                share=r.number("share", lo=0.0, hi=1.0),
            )
        case FaultKind.NODE_LOSS:
            tier = LossTier(r.text("tier", choices=LOSS_TIERS))
            regional = tier in (LossTier.EDGE, LossTier.SHIELD)
            return Fault(
                kind,
                at_s,
                r.number("duration_s", lo=0.0, lo_open=True) if regional else 0.0,
                region=r.text("region") if regional else "",
                share=r.number("share", lo=0.0, hi=1.0),
                tier=tier,
            )
        case FaultKind.VIEWER_PACKET_LOSS:
            # `loss`: the packet loss probability on the region's viewer links (kept in `share`)
            return Fault(
                kind,
                at_s,
                r.number("duration_s", lo=0.0, lo_open=True),
                region=r.text("region"),
                share=r.number("loss", lo=0.0, hi=0.5, lo_open=True),
            )
        case FaultKind.CHAT_BROKER_FAILOVER:
            return Fault(kind, at_s, r.number("duration_s", lo=0.0, lo_open=True))
        case FaultKind.CHAT_STORM:
            return Fault(
                kind,
                at_s,
                r.number("duration_s", lo=0.0, lo_open=True),
                stream_rank=r.integer("stream_rank", lo=1),
                messages_per_s=r.number("messages_per_s", lo=0.0),
                share=r.number("chatter_share", default=0.0, lo=0.0, hi=1.0),
            )
        case FaultKind.WORKER_RESTART:
            # the stream's transcode worker dies and is restarted after `transcode_restart_s`
            return Fault(kind, at_s, 0.0, stream_rank=r.integer("stream_rank", lo=1))
        case FaultKind.AD_BREAK:
            return Fault(
                kind,
                at_s,
                r.number("duration_s", lo=0.0, lo_open=True),
                stream_rank=r.integer("stream_rank", lo=1),
            )


def _slos(r: NodeReader) -> Slos:
    s = Slos(
        glass_to_glass_p95_s=r.number("glass_to_glass_p95_s", lo=0.0, lo_open=True),
        rebuffer_ratio=r.number("rebuffer_ratio", lo=0.0, hi=1.0),
        availability=r.number("availability", lo=0.0, hi=1.0),
        chat_delay_p99_s=r.number("chat_delay_p99_s", default=2.0, lo=0.0, lo_open=True),
    )
    r.done()
    return s


def _real_source(r: NodeReader) -> RealSource:
    src = RealSource(
        width=r.integer("width", default=640, lo=64, hi=3840),
        height=r.integer("height", default=360, lo=64, hi=2160),
        fps=r.integer("fps", default=30, lo=1, hi=60),
        bitrate_kbps=r.integer("bitrate_kbps", default=1500, lo=50, hi=50000),
    )
    if src.width % 2 or src.height % 2:
        r.fail(r.node, r.field, f"width and height must be even, got {src.width}x{src.height}")
    r.done()
    return src


def _real_fault(r: NodeReader) -> RealFault:
    kind = RealFaultKind(r.text("kind", choices=REAL_FAULT_KINDS))
    at_s = r.number("at_s", lo=0.0)
    rank = r.integer("stream_rank", default=1, lo=1)
    if kind == RealFaultKind.VIRAL_SPIKE:
        return RealFault(
            kind,
            at_s,
            rank,
            factor=r.number("factor", lo=1.0, hi=50.0, lo_open=True),
            ramp_s=r.number("ramp_s", default=0.0, lo=0.0),
            duration_s=r.number("duration_s", lo=0.0),
        )
    if kind in PROCESS_FAULTS or kind in LINK_FAULTS:
        return _tier_fault(r, kind, at_s)
    return RealFault(kind, at_s, rank)


def _tier(r: NodeReader, node: yaml.Node, field: str, value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(REAL_TIER_PATTERN, value):
        r.fail(node, field, f"expected a tier such as origin, nats, postgres, chat-1, edge-1, got {value!r}")
    return value


def _tier_fault(r: NodeReader, kind: RealFaultKind, at_s: float) -> RealFault:
    """A fault of a tier's process (`target`) or of the link `between` two tiers (issue 23)."""
    duration = r.number("duration_s", lo=0.0, hi=MAX_REAL_FAULT_S)
    if kind in PROCESS_FAULTS:
        value, node = r.scalar("target")
        return RealFault(kind, at_s, duration_s=duration, target=_tier(r, node, r.sub("target"), value))
    node = r.value_node("between")
    if not isinstance(node, yaml.SequenceNode) or len(node.value) != 2:
        r.fail(node, r.sub("between"), "expected the two tiers the link joins, e.g. [publisher, ingest]")
    pair = tuple(
        _tier(r, child, f"{r.sub('between')}[{i}]", r.loader.construct_object(child, deep=True))
        for i, child in enumerate(node.value)
    )
    if pair[0] == pair[1]:
        r.fail(node, r.sub("between"), f"a link joins two different tiers, not {pair[0]} and itself")
    fields: dict[str, Any] = {}
    match kind:
        case RealFaultKind.LOSS:
            fields["loss_pct"] = r.number("loss_pct", lo=0.0, hi=100.0, lo_open=True)
        case RealFaultKind.LATENCY:
            fields["delay_ms"] = r.number("delay_ms", lo=0.0, hi=10_000.0, lo_open=True)
            fields["jitter_ms"] = r.number("jitter_ms", default=0.0, lo=0.0, hi=10_000.0)
        case RealFaultKind.BANDWIDTH:
            fields["rate_kbit"] = r.integer("rate_kbit", lo=1, hi=10_000_000)
    return RealFault(kind, at_s, duration_s=duration, between=pair, **fields)


def _real_cdn(r: NodeReader) -> RealCdn:
    """`cdn: {shields: N, edges: M}`: the nginx tiers `loadgen run` puts in front of the origin."""
    cdn = RealCdn(
        shields=r.integer("shields", lo=1, hi=MAX_REAL_SHIELDS),
        edges=r.integer("edges", lo=1, hi=MAX_REAL_EDGES),
    )
    r.done()
    return cdn


_DEFAULT_BANDS = Bands()


def _bands(r: NodeReader) -> Bands:
    b = Bands(
        throughput=r.number("throughput", default=_DEFAULT_BANDS.throughput, lo=0.0, hi=10.0, lo_open=True),
        utilization=r.number(
            "utilization", default=_DEFAULT_BANDS.utilization, lo=0.0, hi=10.0, lo_open=True
        ),
        latency=r.number("latency", default=_DEFAULT_BANDS.latency, lo=0.0, hi=10.0, lo_open=True),
        rebuffer_abs=r.number(
            "rebuffer_abs", default=_DEFAULT_BANDS.rebuffer_abs, lo=0.0, hi=1.0, lo_open=True
        ),
        hit_ratio_abs=r.number(
            "hit_ratio_abs", default=_DEFAULT_BANDS.hit_ratio_abs, lo=0.0, hi=1.0, lo_open=True
        ),
    )
    r.done()
    return b


def _real(r: NodeReader) -> RealSpec:
    duration = r.number("duration_s", lo=10.0, hi=3600.0)
    warmup = r.number("warmup_s", default=20.0, lo=0.0, hi=600.0)
    channels = r.integer("channels", default=1, lo=1, hi=MAX_REAL_CHANNELS)
    viewers = r.integer("viewers", lo=0, hi=MAX_REAL_VIEWERS)
    if r.has("viewer_shares"):
        node = r.value_node("viewer_shares")
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            r.fail(node, r.sub("viewer_shares"), "expected a non-empty list of shares")
        shares = []
        for i, child in enumerate(node.value):
            value = r.loader.construct_object(child, deep=True)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                r.fail(child, f"{r.sub('viewer_shares')}[{i}]", f"expected a share in [0, 1], got {value!r}")
            shares.append(float(value))
        if len(shares) != channels:
            r.fail(
                node, r.sub("viewer_shares"), f"needs one share per channel ({channels}), got {len(shares)}"
            )
        if abs(sum(shares) - 1.0) > 1e-6:
            r.fail(node, r.sub("viewer_shares"), f"shares must sum to 1, got {sum(shares):g}")
        viewer_shares = tuple(shares)
    else:
        viewer_shares = (1.0,) + (0.0,) * (channels - 1)
    source = _real_source(r.mapping("source")) if r.has("source") else RealSource(640, 360, 30, 1500)
    fault_nodes = r.items["faults"][1].value if r.has("faults") else []
    faults = r.sequence("faults", _real_fault, allow_empty=True)
    for i, f in enumerate(faults):
        if f.stream_rank > channels:
            r.fail(fault_nodes[i], f"{r.sub('faults')}[{i}].stream_rank", f"only {channels} channels publish")
        if f.at_s >= warmup + duration:
            r.fail(
                fault_nodes[i],
                f"{r.sub('faults')}[{i}].at_s",
                f"starts after the run ends ({warmup + duration:g} s)",
            )
    spec = RealSpec(
        duration_s=duration,
        warmup_s=warmup,
        channels=channels,
        ladder=r.text("ladder", default="full", choices=REAL_LADDERS),
        source=source,
        viewers=viewers,
        viewer_shares=viewer_shares,
        spawn_rate=r.number("spawn_rate", default=10.0, lo=0.1, hi=1000.0),
        chatters=r.integer("chatters", default=0, lo=0, hi=MAX_REAL_VIEWERS),
        chat_messages_per_s=r.number("chat_messages_per_s", default=0.0, lo=0.0, hi=10000.0),
        locust_processes=r.integer("locust_processes", default=1, lo=1, hi=64),
        faults=faults,
        bands=_bands(r.mapping("bands")) if r.has("bands") else Bands(),
        cdn=_real_cdn(r.mapping("cdn")) if r.has("cdn") else None,
    )
    r.done()
    return spec


def parse_scenario(text: str, source: str = "<string>") -> Scenario:
    """Parse and validate; raise `ScenarioError` (never another error type) on bad input."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.YAMLError as exc:  # the reader rejects control characters up front
        raise ScenarioError(source, 1, "<root>", f"not valid YAML: {exc}") from exc
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise ScenarioError(
                source, (mark.line + 1) if mark else 1, "<root>", f"not valid YAML: {exc.problem}"
            ) from exc
        except yaml.YAMLError as exc:
            raise ScenarioError(source, 1, "<root>", f"not valid YAML: {exc}") from exc
        if root is None:
            raise ScenarioError(source, 1, "<root>", "the file is empty")
        try:
            return _scenario(NodeReader(loader, root, "", source), source)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            raise ScenarioError(source, (mark.line + 1) if mark else 1, "<value>", str(exc.problem)) from exc
        except yaml.YAMLError as exc:
            raise ScenarioError(source, 1, "<value>", str(exc)) from exc
    finally:
        loader.dispose()


def _scenario(r: NodeReader, source: str) -> Scenario:
    duration = r.number("duration_s", lo=1.0, hi=7 * 86400.0)
    step = r.number("step_s", default=1.0, lo=0.1, hi=60.0)
    record = r.number("record_every_s", default=10.0, lo=step)
    regions = r.sequence("regions", _region)
    if len(regions) > MAX_REGIONS:
        r.fail(r.items["regions"][1], "regions", f"at most {MAX_REGIONS} regions")
    names = [g.name for g in regions]
    if len(set(names)) != len(names):
        r.fail(r.items["regions"][1], "regions", "region names must be unique")
    for i, g in enumerate(regions):
        if g.failover_to != "-" and (g.failover_to not in names or g.failover_to == g.name):
            r.fail(
                r.items["regions"][1].value[i],
                f"regions[{i}].failover_to",
                f"must name another region, got {g.failover_to!r}",
            )
    for field in ("viewer_share", "streamer_share"):
        total = sum(getattr(g, field) for g in regions)
        if abs(total - 1.0) > 1e-6:
            r.fail(r.items["regions"][1], f"regions[*].{field}", f"shares must sum to 1, got {total:g}")
    fleet = _fleet(r.mapping("fleet"))
    workload = _workload(r.mapping("workload"))
    fault_nodes = r.items["faults"][1].value if r.has("faults") else []
    faults = r.sequence("faults", _fault, allow_empty=True)
    for i, f in enumerate(faults):
        where = fault_nodes[i]
        regional = (FaultKind.REGION_OUTAGE, FaultKind.NODE_LOSS, FaultKind.VIEWER_PACKET_LOSS)
        if f.kind in regional and f.region and f.region not in names:
            r.fail(
                where, f"faults[{i}].region", f"unknown region {f.region!r}; regions are {', '.join(names)}"
            )
        if f.kind in STREAM_FAULTS and f.stream_rank > workload.streamers:
            r.fail(where, f"faults[{i}].stream_rank", f"only {workload.streamers} streams exist")
        if f.kind == FaultKind.REGION_OUTAGE:
            for j, other in enumerate(faults[:i]):
                if (
                    other.kind == FaultKind.REGION_OUTAGE
                    and other.region == f.region
                    and f.at_s < other.at_s + other.duration_s
                    and other.at_s < f.at_s + f.duration_s
                ):
                    r.fail(where, f"faults[{i}].at_s", f"overlaps the outage of {f.region} in faults[{j}]")
        if f.at_s >= duration:
            r.fail(where, f"faults[{i}].at_s", f"starts after the run ends ({duration:g} s)")
    scenario = Scenario(
        name=r.text("name"),
        description=r.text("description", default="-"),
        duration_s=duration,
        step_s=step,
        record_every_s=record,
        head_streams=r.integer("head_streams", default=200, lo=1, hi=20000),
        regions=regions,
        fleet=fleet,
        workload=workload,
        faults=faults,
        slos=_slos(r.mapping("slos")),
        source=source,
        real=_real(r.mapping("real")) if r.has("real") else None,
    )
    r.done()
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; errors name `path`, the line and the field."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(str(p), 1, "<file>", f"cannot read: {exc}") from exc
    return parse_scenario(text, str(p))

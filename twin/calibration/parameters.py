"""The twin's parameters, each with its provenance (twin/calibration/calibration.yaml).

The model never holds a magic number: every service time, capacity and price is a field of
`Calibration`, and the loader refuses an entry that does not say where it came from, so a
capacity report can always be traced back to a measurement or a cited public figure.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from twin.calibration import platform_rules


class CalibrationError(ValueError):
    """The calibration file is incomplete or malformed (its editor is at fault)."""


@dataclass(frozen=True, slots=True)
class Rendition:
    """One delivered rendition: the platform's ladder policy decides them (`platform_rules`)."""

    name: str
    bitrate_bps: float
    source: str
    width: int
    height: int
    fps: float
    passthrough: bool = False

    @property
    def mpixels_per_s(self) -> float:
        return self.width * self.height * self.fps / 1e6


@dataclass(frozen=True, slots=True)
class Calibration:
    ladder: tuple[Rendition, ...]
    sources: tuple[tuple[str, str], ...]
    part_s: float
    segment_s: float
    hold_back_parts: float
    publisher_encode_s: float
    transcode_latency_s: float
    package_s: float
    display_s: float
    origin_rtt_s: float
    shield_rtt_s: float
    player_catchup_rate: float
    player_max_lag_s: float
    player_catchup_tolerance_s: float
    player_stall_backoff_s: float
    viewer_bandwidth_median_mbps: float
    viewer_bandwidth_sigma: float
    viewer_rtt_sigma: float
    abr_safety: float
    viewer_session_mean_s: float
    streamer_session_mean_s: float
    ingest_reconnect_s: float
    dns_failover_s: float
    failover_extra_rtt_s: float
    transcode_start_s: float
    gpu_streams_full: float
    gpu_streams_source: float
    cpu_streams_full: float
    cpu_streams_source: float
    gpu_provisioning_s: float
    cpu_provisioning_s: float
    origin_provisioning_s: float
    chat_provisioning_s: float
    origin_rps_per_server: float
    shield_rps_per_server: float
    edge_rps_per_server: float
    edge_server_gbps: float
    shield_server_gbps: float
    chat_connections_per_node: float
    chat_deliveries_per_node: float
    chat_messages_per_chatter_s: float
    chat_room_cap_per_s: float
    chat_client_cap_per_s: float
    chat_backlog_limit_s: float
    chat_batch_s: float
    chat_broker_hop_s: float
    ad_rps_per_server: float
    ad_decision_window_s: float
    ad_slot_s: float
    commerce_events_per_viewer_h: float
    dvr_window_s: float
    cost_gpu_node_h: float
    cost_cpu_node_h: float
    cost_origin_node_h: float
    cost_chat_node_h: float
    cost_edge_server_h: float
    cost_ad_server_h: float
    cost_egress_gb: float
    cost_storage_gb_month: float
    # per-unit costs of the real components (issue 6: fitted by `twin calibrate` from run dirs)
    transcode_core_s_per_mpixel: float
    origin_cpu_s_per_request: float
    held_request_cpu_s: float
    chat_cpu_s_per_delivery: float
    ingest_cpu_s_per_mbit: float
    platform_idle_cores: float
    transcode_restart_s: float
    cpu_node_cores: float
    origin_node_cores: float
    chat_node_cores: float

    def source_of(self, name: str) -> str:
        return dict(self.sources)[name]


#: Per-unit costs from which the big-fleet capacities can be derived (`derived_capacities`).
UNIT_COSTS = (
    "transcode_core_s_per_mpixel",
    "origin_cpu_s_per_request",
    "held_request_cpu_s",
    "chat_cpu_s_per_delivery",
    "ingest_cpu_s_per_mbit",
    "platform_idle_cores",
)

#: Decided by the platform's own modules (`platform_rules`), never by calibration.yaml.
FROM_PLATFORM = {
    "part_s": (platform_rules.part_s, platform_rules.PART_SOURCE),
    "segment_s": (platform_rules.segment_s, platform_rules.SEGMENT_SOURCE),
    "hold_back_parts": (platform_rules.hold_back_parts, platform_rules.HOLD_BACK_SOURCE),
    "chat_batch_s": (platform_rules.chat_batch_s, platform_rules.CHAT_BATCH_SOURCE),
}

_PARAMS = tuple(
    f.name for f in fields(Calibration) if f.name not in ("ladder", "sources") and f.name not in FROM_PLATFORM
)
_SOURCE_KEYS = {"width", "height", "fps", "codec", "video_kbps", "source"}


def _fleet_ladder(raw: Any, origin: str) -> tuple[Rendition, ...]:
    """The platform's ladder for the calibration's `fleet_source` (the typical publisher)."""
    if not isinstance(raw, dict) or set(raw) != _SOURCE_KEYS:
        raise CalibrationError(f"{origin}: fleet_source: expected exactly {sorted(_SOURCE_KEYS)}")
    if not isinstance(raw["source"], str) or not raw["source"].strip():
        raise CalibrationError(f"{origin}: fleet_source.source: the fleet source must name its provenance")
    for key in ("width", "height", "fps", "video_kbps"):
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise CalibrationError(f"{origin}: fleet_source.{key}: expected a positive number")
    source = platform_rules.FleetSource(
        int(raw["width"]), int(raw["height"]), float(raw["fps"]), str(raw["codec"]), int(raw["video_kbps"])
    )
    try:
        rungs = platform_rules.fleet_rungs(source)
    except ValueError as exc:
        raise CalibrationError(f"{origin}: fleet_source: {exc}") from exc
    why = f"{platform_rules.LADDER_SOURCE} ({raw['source']})"
    return tuple(
        Rendition(r.name, r.bitrate_kbps * 1000.0, why, r.width, r.height, r.fps, r.passthrough)
        for r in rungs
    )


def parse_calibration(data: Any, origin: str = "<calibration>") -> Calibration:
    """Build a `Calibration`; every entry must carry a positive finite value and a source."""
    if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
        raise CalibrationError(f"{origin}: expected a mapping with 'fleet_source' and 'params'")
    if "ladder" in data:
        raise CalibrationError(
            f"{origin}: ladder: the renditions come from the platform's ladder policy; state fleet_source"
        )
    ladder = _fleet_ladder(data.get("fleet_source"), origin)
    if any(a.bitrate_bps < b.bitrate_bps for a, b in itertools.pairwise(ladder)):
        raise CalibrationError(f"{origin}: fleet_source: the platform's ladder is not highest bitrate first")
    params = data["params"]
    platform_owned = set(params) & set(FROM_PLATFORM)
    if platform_owned:
        raise CalibrationError(
            f"{origin}: params: {sorted(platform_owned)} come from the platform's own modules, not this file"
        )
    unknown = set(params) - set(_PARAMS)
    if unknown:
        raise CalibrationError(f"{origin}: params: unknown entries {sorted(unknown)}")
    values: dict[str, float] = {}
    sources: list[tuple[str, str]] = [(f"ladder.{r.name}", r.source) for r in ladder]
    for name in _PARAMS:
        entry = params.get(name)
        if not isinstance(entry, dict):
            raise CalibrationError(f"{origin}: params.{name}: missing (needs value, unit, source)")
        value, source = entry.get("value"), entry.get("source")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not value > 0
            or value == float("inf")
        ):
            raise CalibrationError(f"{origin}: params.{name}.value: expected a positive finite number")
        if not isinstance(source, str) or not source.strip():
            raise CalibrationError(
                f"{origin}: params.{name}.source: every parameter must name its provenance"
            )
        values[name] = float(value)
        sources.append((name, source))
    for name, (read, source) in FROM_PLATFORM.items():
        values[name] = float(read())
        sources.append((name, source))
    return Calibration(ladder=tuple(ladder), sources=tuple(sources), **values)


SHIPPED = "twin/calibration/calibration.yaml"  # how messages and provenance name the shipped file


def shipped_text() -> str:
    """The calibration shipped with the package (package data next to this module)."""
    return resources.files("twin.calibration").joinpath("calibration.yaml").read_text(encoding="utf-8")


def load_calibration(path: str | Path | None = None) -> Calibration:
    """Load `path`, or the calibration shipped with the package."""
    if path is None:
        text = shipped_text()
        origin = SHIPPED
    else:
        text = Path(path).read_text(encoding="utf-8")
        origin = str(path)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CalibrationError(f"{origin}: not valid YAML: {exc}") from exc
    return parse_calibration(data, origin)


def derived_capacities(calibration: Calibration) -> dict[str, float]:
    """The big-fleet capacities the per-unit costs imply for the stated node sizes.

    A CPU node carrying full ladders decodes the source and encodes every encoded rung (the
    passthrough rung's pixels stand for the decode, counted like one more encoded picture, as
    the real worker's CPU regression lumps them); an origin node spends
    `origin_cpu_s_per_request` per request and holds one request per viewer
    (`held_request_cpu_s` per second held, one held request per 2 requests at LL-HLS's
    reload + part pattern); a chat node spends `chat_cpu_s_per_delivery` per delivered
    message. Nodes are used up to all their cores.
    """
    per_stream = sum(r.mpixels_per_s for r in calibration.ladder) * calibration.transcode_core_s_per_mpixel
    per_request = (
        calibration.origin_cpu_s_per_request + calibration.held_request_cpu_s * calibration.part_s / 2.0
    )
    return {
        "cpu_streams_full": calibration.cpu_node_cores / per_stream,
        "origin_rps_per_server": calibration.origin_node_cores / per_request,
        "chat_deliveries_per_node": calibration.chat_node_cores / calibration.chat_cpu_s_per_delivery,
    }

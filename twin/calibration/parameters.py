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


class CalibrationError(ValueError):
    """The calibration file is incomplete or malformed (its editor is at fault)."""


@dataclass(frozen=True, slots=True)
class Rendition:
    name: str
    bitrate_bps: float
    source: str


@dataclass(frozen=True, slots=True)
class Calibration:
    ladder: tuple[Rendition, ...]
    sources: tuple[tuple[str, str], ...]
    part_s: float
    hold_back_parts: float
    publisher_encode_s: float
    transcode_latency_s: float
    package_s: float
    display_s: float
    origin_rtt_s: float
    shield_rtt_s: float
    player_catchup_rate: float
    player_max_lag_s: float
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

_PARAMS = tuple(f.name for f in fields(Calibration) if f.name not in ("ladder", "sources"))


def parse_calibration(data: Any, origin: str = "<calibration>") -> Calibration:
    """Build a `Calibration`; every entry must carry a positive finite value and a source."""
    if not isinstance(data, dict) or not isinstance(data.get("params"), dict):
        raise CalibrationError(f"{origin}: expected a mapping with 'ladder' and 'params'")
    ladder_raw = data.get("ladder")
    if not isinstance(ladder_raw, list) or not ladder_raw:
        raise CalibrationError(f"{origin}: ladder: expected a non-empty list of renditions")
    ladder = []
    for i, item in enumerate(ladder_raw):
        if not isinstance(item, dict) or not {"name", "bitrate_kbps", "source"} <= set(item):
            raise CalibrationError(f"{origin}: ladder[{i}]: needs name, bitrate_kbps and source")
        rate = item["bitrate_kbps"]
        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate <= 0:
            raise CalibrationError(f"{origin}: ladder[{i}].bitrate_kbps: expected a positive number")
        ladder.append(Rendition(str(item["name"]), float(rate) * 1000.0, str(item["source"])))
    if any(a.bitrate_bps <= b.bitrate_bps for a, b in itertools.pairwise(ladder)):
        raise CalibrationError(f"{origin}: ladder: renditions must be listed highest bitrate first")
    params = data["params"]
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


def rung_mpixels_per_s(name: str) -> float:
    """Pixels per second of a 16:9 rung named like "720p60" or "source-1080p60", in millions."""
    label = name.rsplit("-", 1)[-1]
    height_text, _, fps_text = label.partition("p")
    try:
        height, fps = int(height_text), float(fps_text or 30)
    except ValueError as exc:
        raise CalibrationError(f"ladder rung {name!r}: cannot read <height>p<fps> from its name") from exc
    width = 2 * round(height * 16 / 9 / 2)
    return width * height * fps / 1e6


def derived_capacities(calibration: Calibration) -> dict[str, float]:
    """The big-fleet capacities the per-unit costs imply for the stated node sizes.

    A CPU node carrying full ladders decodes the source rung and encodes every other rung
    (decode counted like one more encoded picture, as the real worker's CPU regression
    lumps them); an origin node spends `origin_cpu_s_per_request` per request and holds one
    request per viewer (`held_request_cpu_s` per second held, one held request per
    2 requests at LL-HLS's reload + part pattern); a chat node spends
    `chat_cpu_s_per_delivery` per delivered message. Nodes are used up to all their cores.
    """
    per_stream = (
        sum(rung_mpixels_per_s(r.name) for r in calibration.ladder) * calibration.transcode_core_s_per_mpixel
    )
    per_request = (
        calibration.origin_cpu_s_per_request + calibration.held_request_cpu_s * calibration.part_s / 2.0
    )
    return {
        "cpu_streams_full": calibration.cpu_node_cores / per_stream,
        "origin_rps_per_server": calibration.origin_node_cores / per_request,
        "chat_deliveries_per_node": calibration.chat_node_cores / calibration.chat_cpu_s_per_delivery,
    }

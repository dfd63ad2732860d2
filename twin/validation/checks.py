"""Predicted vs measured: the pure comparison core of `twin validate`.

Plain dicts in (the twin's prediction and measured.json's `measured`, same keys), a list of
`Check`s out. Bands are the scenario's, stated before the run: relative error for throughput,
CPU and latency percentiles, absolute difference for the rebuffer ratio (ratios near 0 make
relative errors meaningless) and the edges' hit ratio. A metric the run did not measure, or the twin could not
predict, is out of band: nothing unmeasured passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from twin.scenario.schema import Bands

#: (metric, path under `measured`, band kind, unit)
METRICS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("origin requests/s", ("origin_rps",), "throughput", "req/s"),
    ("CPU platform (cores)", ("cpu_cores", "platform"), "utilization", "cores"),
    ("CPU transcode (cores)", ("cpu_cores", "transcode"), "utilization", "cores"),
    ("glass-to-glass p50 (s)", ("glass_to_glass_s", "p50"), "latency", "s"),
    ("glass-to-glass p95 (s)", ("glass_to_glass_s", "p95"), "latency", "s"),
    ("rebuffer ratio", ("rebuffer_ratio",), "rebuffer_abs", "ratio"),
)
#: what a run through real CDN tiers (`real.cdn`) adds: the shields' load and the edges' hits
CDN_METRICS: tuple[tuple[str, tuple[str, ...], str, str], ...] = (
    ("shield requests/s", ("shield_rps",), "throughput", "req/s"),
    ("edge hit ratio", ("edge_hit_ratio",), "hit_ratio_abs", "ratio"),
)
ABSOLUTE_BANDS = ("rebuffer_abs", "hit_ratio_abs")


@dataclass(frozen=True, slots=True)
class Check:
    metric: str
    predicted: float
    measured: float
    error: float  # relative (pred - meas) / meas, or absolute for the rebuffer ratio
    absolute: bool
    band: float
    ok: bool
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {
            "metric": self.metric,
            "predicted": num(self.predicted),
            "measured": num(self.measured),
            "error": num(self.error),
            "error_kind": "absolute" if self.absolute else "relative",
            "band": self.band,
            "in_band": self.ok,
            "note": self.note,
        }


def number_at(data: dict[str, Any], path: tuple[str, ...]) -> float:
    """The number at `path` in nested mappings; NaN where it is absent or not a number."""
    node: Any = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return math.nan
        node = node[key]
    if isinstance(node, bool) or not isinstance(node, int | float):
        return math.nan
    return float(node)


def check(metric: str, predicted: float, measured: float, band: float, absolute: bool) -> Check:
    """One metric against its band (inclusive)."""
    if not math.isfinite(measured):
        return Check(metric, predicted, measured, math.nan, absolute, band, False, "not measured")
    if not math.isfinite(predicted):
        return Check(metric, predicted, measured, math.nan, absolute, band, False, "not predicted")
    if absolute:
        error = predicted - measured
    elif measured == 0.0:
        error = 0.0 if predicted == 0.0 else math.copysign(math.inf, predicted)
    else:
        error = (predicted - measured) / abs(measured)
    return Check(metric, predicted, measured, error, absolute, band, abs(error) <= band + 1e-12)


def compare(
    predicted: dict[str, Any], measured: dict[str, Any], bands: Bands, cdn: bool = False
) -> list[Check]:
    """Every validated metric, predicted vs measured, against the scenario's bands; `cdn`: the
    run had CDN tiers, so their metrics are validated too."""
    checks = []
    for metric, path, kind, _ in METRICS + (CDN_METRICS if cdn else ()):
        band = getattr(bands, kind)
        checks.append(
            check(metric, number_at(predicted, path), number_at(measured, path), band, kind in ABSOLUTE_BANDS)
        )
    return checks


def all_in_band(checks: list[Check]) -> bool:
    return all(c.ok for c in checks)


def table(checks: list[Check]) -> list[tuple[str, str, str, str, str, str]]:
    """Rows of text: metric, predicted, measured, error, band, IN/OUT."""

    def num(x: float) -> str:
        return "-" if not math.isfinite(x) else f"{x:.4g}"

    rows = []
    for c in checks:
        if not math.isfinite(c.error):
            err = c.note or "-"
        elif c.absolute:
            err = f"{c.error:+.4f} abs"
        else:
            err = f"{c.error * 100:+.1f} %"
        band = f"+/-{c.band:.4g} abs" if c.absolute else f"+/-{c.band * 100:.0f} %"
        rows.append((c.metric, num(c.predicted), num(c.measured), err, band, "IN" if c.ok else "OUT"))
    return rows


def format_table(checks: list[Check]) -> str:
    header = ("metric", "predicted", "measured", "error", "band", "verdict")
    body = [header, *table(checks)]
    widths = [max(len(r[i]) for r in body) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in body
    )

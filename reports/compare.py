"""`twin compare A B`: two run directories side by side, metric by metric."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from reports.html import load_run

METRICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("simulated seconds", ("duration_s",)),
    ("peak viewers", ("viewers", "peak")),
    ("top stream peak", ("viewers", "top_stream_peak")),
    ("viewer-hours", ("viewers", "viewer_hours")),
    ("availability", ("availability",)),
    ("rebuffer ratio", ("rebuffer_ratio",)),
    ("g2g p50 (s)", ("latency_s", "p50")),
    ("g2g p95 (s)", ("latency_s", "p95")),
    ("g2g p99 (s)", ("latency_s", "p99")),
    ("peak egress (Tbit/s)", ("peak_egress_tbps",)),
    ("peak origin rps", ("peak_origin_rps",)),
    ("chat delay p99 (s)", ("chat", "delay_p99_s")),
    ("total cost (USD)", ("cost", "total_usd")),
    ("cost per viewer-hour (USD)", ("cost", "per_viewer_hour_usd")),
)


def _get(summary: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = summary
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def comparison_rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any, str]]:
    rows: list[tuple[str, Any, Any, str]] = []
    for s_a, s_b in zip(a["slos"], b["slos"], strict=False):
        rows.append(
            (f"SLO {s_a['slo']}", "PASS" if s_a["pass"] else "FAIL", "PASS" if s_b["pass"] else "FAIL", "")
        )
    for label, path in METRICS:
        va, vb = _get(a, path), _get(b, path)
        delta = ""
        if isinstance(va, int | float) and isinstance(vb, int | float) and va:
            delta = f"{(vb - va) / abs(va) * 100.0:+.1f} %"
        rows.append((label, va, vb, delta))
    return rows


def compare_runs(a_dir: Path, b_dir: Path, html_out: Path | None = None) -> str:
    a, b = load_run(a_dir)[0], load_run(b_dir)[0]
    rows = comparison_rows(a, b)

    def fmt(v: Any) -> str:
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    header = (
        "metric",
        f"A: {a['scenario']} (seed {a['seed']})",
        f"B: {b['scenario']} (seed {b['seed']})",
        "B vs A",
    )
    table = [header, *((label, fmt(va), fmt(vb), d) for label, va, vb, d in rows)]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    text = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in table)
    if html_out is not None:
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in table[1:])
        head = "".join(f"<th>{html.escape(c)}</th>" for c in header)
        html_out.write_text(
            f"<!doctype html><html><head><meta charset='utf-8'><title>twin compare</title></head>"
            f"<body><table border='1'><tr>{head}</tr>{body}</table></body></html>\n",
            encoding="utf-8",
        )
    return text

"""report.html for one run directory: SLO verdicts, key numbers, tier table and figures.

Reads only the files `twin run` wrote (summary.json, timeseries.csv, latency.csv,
tiers.csv), so any run directory can be re-rendered without re-running the model. Figures are
embedded as data URIs: the report is one self-contained file.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from reports import figures
from reports.faults import fault_sentences
from reports.numbers import count, money, rate, ratio_pct, scaled, seconds


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape(str(value))


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def _replications(run_dir: Path) -> str:
    """The SLO table over replications (replications.json from `twin run --replications N`), if any."""
    path = run_dir / "replications.json"
    if not path.is_file():
        return ""
    rep = json.loads(path.read_text(encoding="utf-8"))

    def v(x: float | None) -> str:
        return "-" if x is None else f"{x:.4g}"

    rows = "".join(
        f'<tr class="{s["verdict"].lower()}"><td>{html.escape(s["slo"])}</td><td>{v(s["mean"])}</td>'
        f"<td>{v(s['ci_low'])} to {v(s['ci_high'])}</td><td>{s['op']} {s['target']:g}</td>"
        f"<td>{html.escape(s['verdict'])}</td></tr>"
        for s in rep["slos"]
    )
    return (
        f"<h2>SLOs over {rep['replications']} replications (95 % confidence)</h2>"
        "<p>PASS only when the interval's bad end meets the target; uncertain when it straddles it.</p>"
        "<table><tr><th>SLO</th><th>mean</th><th>95 % interval</th><th>target</th><th>verdict</th></tr>"
        f"{rows}</table>"
    )


def load_run(run_dir: Path) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    missing = [
        n
        for n in ("summary.json", "timeseries.csv", "latency.csv", "tiers.csv")
        if not (run_dir / n).is_file()
    ]
    if missing:
        raise ValueError(f"{run_dir} is not a twin run directory: missing {', '.join(missing)}")
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    return (
        summary,
        pd.read_csv(run_dir / "timeseries.csv"),
        pd.read_csv(run_dir / "latency.csv"),
        pd.read_csv(run_dir / "tiers.csv"),
    )


def render_report(run_dir: Path, target_utilization: float = 0.7) -> Path:
    summary, ts, lat, tiers = load_run(run_dir)
    slo = {s["slo"]: s for s in summary["slos"]}
    rows = "".join(
        f'<tr class="{"pass" if s["pass"] else "fail"}"><td>{_fmt(s["slo"])}</td>'
        f"<td>{_fmt(s['measured'])}</td>"
        f"<td>{_fmt(s['op'])} {_fmt(s['target'])}</td><td>{'PASS' if s['pass'] else 'FAIL'}</td></tr>"
        for s in summary["slos"]
    )
    lat_s = summary["latency_s"]
    key = {
        "peak viewers": count(summary["viewers"]["peak"]),
        "top stream peak viewers": count(summary["viewers"]["top_stream_peak"]),
        "peak live streams": count(summary["streams"]["peak_live"]),
        "peak edge egress": rate(summary["peak_egress_tbps"] * 1e12),
        "peak origin requests/s": scaled(summary["peak_origin_rps"]),
        "viewer-hours": count(summary["viewers"]["viewer_hours"]),
        "total cost": money(summary["cost"]["total_usd"]),
        "cost per viewer-hour": money(summary["cost"]["per_viewer_hour_usd"]),
        "glass-to-glass p50 / p95 / p99": " / ".join(seconds(lat_s[p]) for p in ("p50", "p95", "p99")),
        "availability": ratio_pct(summary["availability"]),
        "rebuffer ratio": ratio_pct(summary["rebuffer_ratio"]),
        "DVR storage peak": f"{scaled(summary['dvr']['peak_storage_pb'] * 1e15)}B",
        "chat deliveries/s peak": scaled(summary["chat"]["peak_deliveries_per_s"]),
        "chat delay p99": seconds(summary["chat"]["delay_p99_s"]),
    }
    key_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in key.items())
    effects = "".join(f"<li>{html.escape(text)}</li>" for text in fault_sentences(summary))
    replications = _replications(run_dir)
    figs = [
        _img(figures.concurrency(ts), "concurrency"),
        _img(figures.availability(ts, slo["availability"]["target"]), "availability"),
        _img(figures.egress(ts), "egress per tier"),
        _img(figures.utilization(ts, target_utilization), "utilization vs headroom"),
        _img(figures.latency(lat, slo["glass_to_glass_p95_s"]["target"]), "latency percentiles"),
        _img(figures.rebuffer(lat, slo["rebuffer_ratio"]["target"]), "rebuffer ratio"),
        _img(figures.cache_hits(ts), "cache hit ratio"),
        _img(figures.cost(ts), "cost"),
        _img(figures.chat(ts), "chat"),
    ]
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>twin: {html.escape(summary["scenario"])}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:left}}
tr.pass td:last-child{{color:#080;font-weight:bold}}tr.fail td:last-child{{color:#b00;font-weight:bold}}
tr.uncertain td:last-child{{color:#a60;font-weight:bold}}
img{{max-width:100%}}</style></head><body>
<h1>Digital twin run: {html.escape(summary["scenario"])}</h1>
<p>{html.escape(str(summary.get("description", "")))}</p>
<p>seed {summary["seed"]}, {summary["duration_s"]:g} simulated seconds,
{count(summary["simpy_events"])} SimPy events,
{summary["model"]["stream_groups"]} stream groups, {summary["model"]["tracers"]} tracer viewers.</p>
<h2>SLOs</h2><table><tr><th>SLO</th><th>measured</th><th>target</th><th>verdict</th></tr>{rows}</table>
{replications}
<h2>Key numbers</h2><table>{key_rows}</table>
<h2>Faults and what they did</h2><ul>{effects or "<li>none</li>"}</ul>
<h2>Figures</h2>{"".join(figs)}
<h2>Per-tier table</h2>{tiers.to_html(index=False, float_format=lambda x: f"{x:.4g}")}
</body></html>
"""
    out = run_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out

"""validation.html: the twin's prediction next to the real run, metric by metric, with the bands.

Reads only what `twin validate` wrote into its directory (validation.json,
predicted_timeseries.csv) and the real run's timeseries.csv, so a validation can be
re-rendered later without re-running the twin or the platform.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _error(row: dict[str, Any]) -> str:
    e = row["error"]
    if e is None:
        return html.escape(row.get("note") or "-")
    if not math.isfinite(e):
        return "inf"
    return f"{e:+.4f} abs" if row["error_kind"] == "absolute" else f"{e * 100:+.1f} %"


def _band(row: dict[str, Any]) -> str:
    return (
        f"&plusmn;{row['band']:.4g} abs"
        if row["error_kind"] == "absolute"
        else f"&plusmn;{row['band'] * 100:.0f} %"
    )


def table_html(checks: list[dict[str, Any]]) -> str:
    rows = "".join(
        f'<tr class="{"in" if c["in_band"] else "out"}"><td>{html.escape(c["metric"])}</td>'
        f"<td>{_cell(c['predicted'])}</td><td>{_cell(c['measured'])}</td><td>{_error(c)}</td>"
        f"<td>{_band(c)}</td><td>{'IN' if c['in_band'] else 'OUT'}</td></tr>"
        for c in checks
    )
    return (
        "<table><tr><th>metric</th><th>predicted (twin)</th><th>measured (real)</th><th>error</th>"
        f"<th>band</th><th>verdict</th></tr>{rows}</table>"
    )


def _figure(predicted: pd.DataFrame, measured: pd.DataFrame | None, window: tuple[float, float]) -> str:
    fig = Figure(figsize=(9.0, 6.0), layout="constrained")
    panels = (
        ("origin_rps", "origin requests/s"),
        ("cpu_platform", "CPU platform (cores)"),
        ("cpu_transcode", "CPU transcode (cores)"),
    )
    for i, (col, label) in enumerate(panels, start=1):
        ax = fig.add_subplot(3, 1, i)
        ax.plot(predicted["t_s"], predicted[col], label="twin")
        if measured is not None and col in measured:
            ax.plot(measured["t_s"], measured[col], label="real", alpha=0.8)
        ax.axvspan(*window, color="grey", alpha=0.1, label="measured window")
        ax.set_ylabel(label, fontsize="small")
        ax.grid(True, alpha=0.3)
        if i == 1:
            ax.legend(fontsize="small", loc="best")
    fig.axes[-1].set_xlabel("seconds since every publisher went live")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<figure><img alt="predicted vs measured per second" src="data:image/png;base64,{data}"></figure>'


def render_validation(out_dir: Path) -> Path:
    """Write out_dir/validation.html from validation.json (+ the per-second tables)."""
    v = json.loads((out_dir / "validation.json").read_text(encoding="utf-8"))
    predicted = pd.read_csv(out_dir / "predicted_timeseries.csv")
    real_ts = Path(v["run_dir"]) / "timeseries.csv"
    measured = pd.read_csv(real_ts) if real_ts.is_file() else None
    verdict = "every metric in band" if v["all_in_band"] else "OUT OF BAND"
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in v.get("notes", []))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>twin validate: {html.escape(v["scenario"])}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:left}}
tr.in td:last-child{{color:#080;font-weight:bold}}tr.out td:last-child{{color:#b00;font-weight:bold}}
img{{max-width:100%}}</style></head><body>
<h1>Twin validation: {html.escape(v["scenario"])}: {verdict}</h1>
<p>Real run <code>{html.escape(v["run_id"])}</code> ({html.escape(v["machine"])}), measured window
{v["window_s"][0]:g}-{v["window_s"][1]:g} s; glass-to-glass on the probe's
<code>{html.escape(str(v["clock"]))}</code> clock. Twin: the small deployment (one machine, viewers
on the origin), calibration <code>{html.escape(v["calibration"])}</code>, seed {v["seed"]}.
Bands were stated in the scenario before the run.</p>
{table_html(v["checks"])}
<ul>{notes}</ul>
{_figure(predicted, measured, (v["window_s"][0], v["window_s"][1]))}
</body></html>
"""
    out = out_dir / "validation.html"
    out.write_text(page, encoding="utf-8")
    return out

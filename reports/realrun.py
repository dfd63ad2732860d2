"""report.html of a real run directory (`loadgen run`): measured table, events and time series.

Rendered from the run directory's files alone (run.json, measured.json, timeseries.csv), like
a twin run's report, so it can be re-rendered or put beside `twin validate`'s page later.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes

from reports import figures
from reports.html import _fmt, _img


def _png(
    draw: Callable[[Axes], object], title: str, ylabel: str, events: list[dict[str, Any]]
) -> tuple[bytes, str]:
    """A time-series figure of the run with its faults marked, and its title (the image's alt)."""

    def with_faults(ax: Axes) -> None:
        draw(ax)
        for event in events:
            ax.axvline(event["at_s"], color="red", alpha=0.5, linestyle="--")

    return figures.png(with_faults, title, ylabel, xlabel="time since every publisher was live (s)"), title


def _rows(prefix: str, node: Any) -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [
            row for key, value in node.items() for row in _rows(f"{prefix}.{key}" if prefix else key, value)
        ]
    return [(prefix, node)]


def render_real_run(run_dir: Path) -> Path:
    run_dir = Path(run_dir)
    run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    measured = json.loads((run_dir / "measured.json").read_text(encoding="utf-8"))
    ts = pd.read_csv(run_dir / "timeseries.csv")
    events = run.get("events", [])
    t = ts["t_s"]
    figures = [
        _png(lambda ax: ax.plot(t, ts["viewers"], label="viewers (schedule)"), "Viewers", "users", events),
        _png(
            lambda ax: (
                [ax.plot(t, ts["origin_rps"], label="all")]
                + [
                    ax.plot(t, ts[f"rps_{k}"], label=k)
                    for k in ("part", "playlist", "segment")
                    if f"rps_{k}" in ts
                ]
            ),
            "Origin requests",
            "req/s",
            events,
        ),
        _png(
            lambda ax: [ax.plot(t, ts[f"cpu_{r}"], label=r) for r in ("platform", "transcode", "loadgen")],
            "CPU per role",
            "cores",
            events,
        ),
        _png(
            lambda ax: ax.plot(t, ts["held_requests"], label="held"),
            "Held blocking requests",
            "requests",
            events,
        ),
        _png(
            lambda ax: ax.plot(t, ts["chat_deliveries_per_s"], label="deliveries"),
            "Chat deliveries",
            "messages/s",
            events,
        ),
    ]
    if "edge_rps" in ts and ts["edge_rps"].notna().any():  # the run had CDN tiers (real.cdn)
        figures.append(
            _png(
                lambda ax: [ax.plot(t, ts[c], label=c.removesuffix("_rps")) for c in (
                    "edge_rps", "shield_rps", "origin_rps")],
                "Requests per tier (edges, shields, origin)",
                "req/s",
                events,
            )
        )
    table = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in _rows("", measured["measured"])
    )
    load = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in _rows("", measured["load"])
    )
    machine = html.escape(json.dumps(run.get("machine", {})))
    fault_list = "".join(f"<li>{html.escape(json.dumps(e))}</li>" for e in events) or "<li>none</li>"
    window = measured["window_s"]
    title = html.escape(run["run_id"])
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>real run {title}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}td{{padding:2px 10px}}
tr:nth-child(even){{background:#f3f3f3}}img{{max-width:100%}}</style></head><body>
<h1>Real run: {html.escape(run["scenario"])}</h1>
<p>run {html.escape(run["run_id"])}, started {html.escape(run["started_at"])}, command
<code>{html.escape(run["command"])}</code></p><p>machine: <code>{machine}</code></p>
<h2>Load</h2><table>{load}</table>
<h2>Measured over {window[0]:g}-{window[1]:g} s</h2><table>{table}</table>
<h2>Faults applied</h2><ul>{fault_list}</ul>
<h2>Time series</h2>{"".join(_img(png, alt) for png, alt in figures)}
</body></html>"""
    path = run_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path

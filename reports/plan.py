"""report.html for a capacity plan (`twin plan`): the fleet to buy, why, what it costs, what it absorbs.

Reads only plan.json, so the page can be re-rendered without re-planning. Written for a planner
who does not read the code: counts per tier and region beside the scenario's own fleet, the
constraint that stops each tier from shrinking, every SLO with its 95 % interval, and figures
of utilization and SLO margin against load.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes

from reports import figures
from reports.numbers import count, money, ratio_pct


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<figure><img alt="{html.escape(alt)}" src="data:image/png;base64,{data}"></figure>'


def _slo_rows(slos: list[dict[str, Any]]) -> str:
    def v(x: float | None) -> str:
        return "-" if x is None else f"{x:.4g}"

    return "".join(
        f'<tr class="{s["verdict"].lower()}"><td>{html.escape(s["slo"])}</td><td>{v(s["mean"])}</td>'
        f"<td>{v(s['ci_low'])} to {v(s['ci_high'])}</td><td>{s['op']} {s['target']:g}</td>"
        f"<td>{html.escape(s['verdict'])}</td></tr>"
        for s in slos
    )


def _utilization_vs_load(curve: list[dict[str, Any]]) -> bytes:
    loads = [p["load"] for p in curve]
    tiers = sorted({t for p in curve for t in p["util_peak"]})

    def draw(ax: Axes) -> None:
        for tier in tiers:
            ax.plot(loads, [p["util_peak"].get(tier) for p in curve], marker="o", label=tier)
        ax.axhline(1.0, color="red", linestyle="--", label="saturation")
        ax.set_ylim(0, max(1.1, max((v or 0) for p in curve for v in p["util_peak"].values()) * 1.05))

    return figures.png(draw, "Peak utilization of the planned fleet", "utilization", xlabel="load multiplier")


def _margin_vs_load(curve: list[dict[str, Any]]) -> bytes:
    loads = [p["load"] for p in curve]
    slos = sorted({s for p in curve for s in p["slo_margin"]})

    def draw(ax: Axes) -> None:
        for slo in slos:
            ax.plot(loads, [100.0 * p["slo_margin"][slo] for p in curve], marker="o", label=slo)
        ax.axhline(0.0, color="red", linestyle="--", label="SLO boundary")

    return figures.png(
        draw, "SLO margin of the interval's bad end (above 0: met)", "% of target", xlabel="load multiplier"
    )


def render_plan(out_dir: Path) -> Path:
    plan = json.loads((out_dir / "plan.json").read_text(encoding="utf-8"))
    name = html.escape(plan["scenario"])
    if not plan["feasible"]:
        failing = html.escape(", ".join(plan["failing"]))
        body = f"<p>No fleet up to 16x the scenario's peak meets every SLO: {failing}.</p>"
    else:
        rows = "".join(
            f"<tr><td>{html.escape(t['tier'])}</td><td>{count(t['planned_nodes'])}</td>"
            f"<td>{count(t['scenario_nodes_peak'])}</td><td>{money(t['cost_usd'])}</td>"
            f"<td>{ratio_pct(t['util_peak'])}</td><td>{html.escape(t['binding'])}</td></tr>"
            for t in plan["tiers"]
        )
        own = plan["scenario_fleet"]
        body = f"""
<p>The cheapest fleet that meets every SLO with {plan["confidence"] * 100:g} % confidence over
{plan["replications_per_fleet"]} replications (seeds {plan["seeds"][0]} to {plan["seeds"][-1]}) costs
<b>{money(plan["cost_usd"])}</b> for the simulated period, <b>{money(plan["cost_per_viewer_hour_usd"], 5)}</b>
per viewer-hour, against {money(own["cost_usd"])}
({money(own["cost_per_viewer_hour_usd"], 5)} per viewer-hour) for the scenario's own fleet.
It absorbs up to <b>{plan["headroom_multiplier"]:.2f}x</b> the scenario's
{html.escape(plan["headroom_applies_to"])} within every SLO.</p>
<h2>Fleet to buy</h2>
<table><tr><th>tier</th><th>planned nodes</th><th>scenario's fleet (peak)</th><th>cost</th>
<th>peak utilization</th><th>what stops it from shrinking</th></tr>{rows}</table>
<h2>SLOs of the planned fleet</h2>
<table><tr><th>SLO</th><th>mean</th><th>95 % interval</th><th>target</th><th>verdict</th></tr>
{_slo_rows(plan["slos"])}</table>
<h2>SLOs of the scenario's own fleet</h2>
<table><tr><th>SLO</th><th>mean</th><th>95 % interval</th><th>target</th><th>verdict</th></tr>
{_slo_rows(own["slos"])}</table>
<h2>Against load</h2>
{_img(_utilization_vs_load(plan["load_curve"]), "utilization against load")}
{_img(_margin_vs_load(plan["load_curve"]), "SLO margin against load")}
"""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>capacity plan: {name}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}}
table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:left}}
tr.pass td:last-child{{color:#080;font-weight:bold}}tr.fail td:last-child{{color:#b00;font-weight:bold}}
tr.uncertain td:last-child{{color:#a60;font-weight:bold}}img{{max-width:100%}}</style></head><body>
<h1>Capacity plan: {name}</h1>{body}
<p>The search simulated {plan["twin_hours"]:.1f} twin-hours ({plan["replications_run"]} replications of
{plan["fleets_evaluated"]} fleets).</p>
</body></html>
"""
    out = out_dir / "report.html"
    out.write_text(page, encoding="utf-8")
    return out

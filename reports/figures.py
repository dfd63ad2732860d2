"""Matplotlib figures of one run, built from its CSV tables; each returns PNG bytes.

Figures are made with `matplotlib.figure.Figure` directly (no pyplot, no global backend
switch), so rendering has no import-time side effects and is safe in any process.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def png(
    draw: Callable[[Axes], object],
    title: str,
    ylabel: str,
    width: float = 9.0,
    xlabel: str = "simulated time (min)",
) -> bytes:
    fig = Figure(figsize=(width, 3.4), layout="constrained")
    ax = fig.add_subplot()
    draw(ax)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_xlabel(xlabel)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize="small", loc="best")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def _minutes(df: pd.DataFrame) -> pd.Series:
    return df["t_s"] / 60.0


def concurrency(ts: pd.DataFrame) -> bytes:
    def draw(ax: Axes) -> None:
        m = _minutes(ts)
        ax.plot(m, ts["viewers"] / 1e6, label="viewers")
        ax.plot(m, ts["viewers_served"] / 1e6, label="served", linestyle="--")
        ax.plot(m, ts["top_stream_viewers"] / 1e6, label="top stream")

    return png(draw, "Concurrency", "million viewers")


def egress(ts: pd.DataFrame) -> bytes:
    def draw(ax: Axes) -> None:
        m = _minutes(ts)
        for col, label in (
            ("egress_edge_tbps", "edge -> viewers"),
            ("egress_edge_demand_tbps", "edge demand"),
            ("egress_shield_tbps", "shield -> edges"),
            ("egress_origin_tbps", "origin -> shields"),
        ):
            ax.plot(m, ts[col], label=label)
        ax.set_yscale("log")

    return png(draw, "Egress per tier", "Tbit/s (log)")


def utilization(ts: pd.DataFrame, target: float) -> bytes:
    def draw(ax: Axes) -> None:
        m = _minutes(ts)
        for col in ("util_edge", "util_shield", "util_origin", "util_gpu", "util_cpu", "util_chat"):
            ax.plot(m, ts[col], label=col.removeprefix("util_"))
        ax.axhline(target, color="grey", linestyle=":", label=f"autoscale target {target:g}")
        ax.axhline(1.0, color="red", linestyle="--", label="saturation")

    return png(draw, "Utilization vs headroom (busiest node group per tier)", "utilization")


def latency(lat: pd.DataFrame, slo: float) -> bytes:
    def draw(ax: Axes) -> None:
        m = _minutes(lat)
        for col in ("g2g_p50_s", "g2g_p95_s", "g2g_p99_s"):
            ax.plot(m, lat[col], label=col.removeprefix("g2g_").removesuffix("_s"))
        ax.axhline(slo, color="red", linestyle="--", label=f"SLO p95 < {slo:g} s")

    return png(draw, "Glass-to-glass latency (tracer viewers)", "seconds")


def rebuffer(lat: pd.DataFrame, slo: float) -> bytes:
    def draw(ax: Axes) -> None:
        ax.plot(_minutes(lat), lat["rebuffer_ratio"] * 100.0, label="rebuffer ratio")
        ax.axhline(slo * 100.0, color="red", linestyle="--", label=f"SLO < {slo * 100:g} %")

    return png(draw, "Rebuffer ratio (tracer viewers, per window)", "%")


def availability(ts: pd.DataFrame, slo: float) -> bytes:
    """The axis spans the data and the SLO line, not 95-105 %: a 0.05 % dip must be visible."""

    def draw(ax: Axes) -> None:
        pct = ts["availability"] * 100.0
        ax.plot(_minutes(ts), pct, label="viewers served / present")
        ax.axhline(slo * 100.0, color="red", linestyle="--", label=f"SLO {slo * 100:g} %")
        low = min(float(pct.min()), slo * 100.0)
        high = max(float(pct.max()), slo * 100.0)
        pad = max((high - low) * 0.1, 0.005)
        ax.set_ylim(low - pad, min(high + pad, 100.0 + pad))
        ax.ticklabel_format(axis="y", useOffset=False)

    return png(draw, "Availability", "%")


def cache_hits(ts: pd.DataFrame) -> bytes:
    def draw(ax: Axes) -> None:
        m = _minutes(ts)
        ax.plot(m, ts["edge_hit_ratio"] * 100.0, label="edge")
        ax.plot(m, ts["shield_hit_ratio"] * 100.0, label="shield")

    return png(draw, "Cache hit ratio (requests answered without going upstream)", "%")


def cost(ts: pd.DataFrame) -> bytes:
    def draw(ax: Axes) -> None:
        ax.plot(_minutes(ts), ts["cost_usd"] / 1e3, label="cumulative cost")

    return png(draw, "Cost", "thousand USD")


def chat(ts: pd.DataFrame) -> bytes:
    def draw(ax: Axes) -> None:
        m = _minutes(ts)
        if "chat_delay_p99_s" in ts:
            ax.plot(m, ts["chat_delay_p99_s"], label="delivery delay p99 (s)")
        ax.plot(m, ts["chat_delay_s"], label="backlog wait (s)")
        ax2 = ax.twinx()
        ax2.plot(m, ts["nodes_chat"], color="grey", linestyle=":", label="chat nodes")
        ax2.set_ylabel("nodes")

    return png(draw, "Chat delivery delay and nodes", "seconds")

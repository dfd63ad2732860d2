"""Numbers as a planner reads them: 109 M viewers, $1.31 M, 574 Tbit/s, 99.95 %.

Three significant figures and a unit prefix, never 109318712.38 or 1.30913e+06: a report is
read by people who compare magnitudes, and the raw values stay in the JSON beside it.
"""

from __future__ import annotations

import math

_PREFIXES = ((1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k"))


def _sig(x: float, digits: int = 3) -> str:
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def scaled(x: float | None, digits: int = 3) -> str:
    """1.09e8 -> '109 M', 5.74e14 -> '574 T', 950 -> '950'."""
    if x is None or not math.isfinite(x):
        return "-"
    for size, prefix in _PREFIXES:
        if abs(x) >= size:
            return f"{_sig(x / size, digits)}{prefix}"
    return _sig(x, digits)


def count(x: float | None) -> str:
    """Whole things (viewers, nodes): exact below 10,000, then 3 significant figures with a prefix."""
    if x is None or not math.isfinite(x):
        return "-"
    return f"{round(x):,}" if abs(x) < 10_000 else scaled(x)


def money(x: float | None, digits: int = 3) -> str:
    """US dollars: $1.31 M, $0.0125."""
    if x is None or not math.isfinite(x):
        return "-"
    if abs(x) < 1:
        return f"${x:.{digits}g}"
    return "$" + scaled(x, digits)


def rate(bps: float | None) -> str:
    """Bits per second: 5.74e14 -> '574 Tbit/s'."""
    if bps is None or not math.isfinite(bps):
        return "-"
    text = scaled(bps)
    return f"{text}bit/s" if text[-1].isalpha() else f"{text} bit/s"


def ratio_pct(x: float | None, digits: int = 3) -> str:
    """A ratio as a percentage: 0.99952 -> '99.95 %', 0.0061 -> '0.61 %'."""
    if x is None or not math.isfinite(x):
        return "-"
    pct = 100.0 * x
    if 99.0 <= pct < 100.0:
        return f"{pct:.{max(2, digits - 1)}f} %"
    return f"{_sig(pct, digits)} %"


def seconds(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    return f"{_sig(x, 3)} s" if x < 120 else f"{_sig(x / 60.0, 3)} min"

"""Confidence intervals over independent replications, and the verdicts they allow.

One seed of the twin is one sample of a random outcome; a verdict from one sample says nothing
about how likely the SLO is to hold. N replications with independent seeds give N independent
samples of each metric; their mean carries a Student t interval (exact for normal samples, and
close for the sums and percentiles the twin reports once N is ten or more). A verdict is PASS
only when the interval's bad end meets the SLO, FAIL when its good end misses it, and
"uncertain" when the interval straddles the target: more replications decide it.

The t quantile is computed here (regularized incomplete beta by continued fraction, Numerical
Recipes 6.4, inverted by bisection) so the twin needs no SciPy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    UNCERTAIN = "uncertain"


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with `df` degrees of freedom."""
    tail = 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t (bisection on `t_cdf`, to 1e-12)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


@dataclass(frozen=True, slots=True)
class Interval:
    """Mean of n replications and its two-sided confidence interval."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2.0


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Student t interval for the mean of independent samples (a point when n == 1)."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    n = len(finite)
    if n == 0:
        return Interval(math.nan, math.nan, math.nan, 0, confidence)
    mean = math.fsum(finite) / n
    if n == 1:
        return Interval(mean, -math.inf, math.inf, 1, confidence)
    var = math.fsum((v - mean) ** 2 for v in finite) / (n - 1)
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * math.sqrt(var / n)
    return Interval(mean, mean - half, mean + half, n, confidence)


def verdict(interval: Interval, op: str, target: float) -> Verdict:
    """PASS when the interval's bad end meets the SLO, FAIL when its good end misses, else uncertain."""
    if interval.n == 0 or math.isnan(interval.mean):
        return Verdict.FAIL
    if op == "<":
        if interval.high < target:
            return Verdict.PASS
        return Verdict.FAIL if interval.low >= target else Verdict.UNCERTAIN
    if op == ">=":
        if interval.low >= target:
            return Verdict.PASS
        return Verdict.FAIL if interval.high < target else Verdict.UNCERTAIN
    raise ValueError(f"unknown SLO comparison {op!r}")


def margin(interval: Interval, op: str, target: float) -> float:
    """How far the interval's bad end is inside the SLO, relative to the target (< 0: outside)."""
    if op == "<":
        return (target - interval.high) / target
    return (interval.low - target) / target

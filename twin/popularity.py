"""Channel popularity and the stream groups the fluid model holds viewers in.

Watch time follows a Zipf-Mandelbrot law, share(rank) ~ (rank + q)^-s, fitted so that the
top `top_k` channels hold `top_k_share` of the watch time (about half for the top 1,000 on
Twitch, the figure issue 5 cites) and, if given, rank 1 holds `top1_share` (a scenario's
"1M viewers on the top stream"). Two constraints, two parameters: s by bisection for a given
q, then q by bisection on the top-1 share.

Aggregation: the `head` most popular channels are groups of one (exact: their cache
occupancy, ingest region and transcoder fate are their own). The tail is cut into bins of
geometrically growing rank ranges; a bin holds its channels' total share and count, and the
model treats its channels as equally popular. That is exact for viewer counts and egress
(linear in viewers) and approximate for cache occupancy (1 - exp(-x) is concave, so the bin
mean slightly overstates distinct objects; bins of ratio 1.2 keep the error to a few percent).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Popularity:
    s: float
    q: float
    n: int

    def weights(self) -> FloatArray:
        """Normalized share of watch time of ranks 1..n."""
        w = (np.arange(1, self.n + 1, dtype=np.float64) + self.q) ** -self.s
        total: float = float(w.sum())
        return w / total

    def top_share(self, k: int) -> float:
        return float(self.weights()[:k].sum())


def _tail_integral(s: float, q: float, a: float, b: float) -> float:
    """Integral of (x + q)^-s over [a, b]: the midpoint-rule stand-in for a long tail sum."""
    if abs(s - 1.0) < 1e-9:
        return float(np.log((b + q) / (a + q)))
    return float(((b + q) ** (1.0 - s) - (a + q) ** (1.0 - s)) / (1.0 - s))


class _Sums:
    """Top-1, top-k and total weight; exact up to `exact` ranks, integral (error < 1e-6) beyond."""

    def __init__(self, n: int, k: int) -> None:
        self.n = n
        self.k = k
        self.exact = min(n, max(4 * k, 5000))
        self.ranks = np.arange(1, self.exact + 1, dtype=np.float64)

    def share(self, s: float, q: float, top: int) -> float:
        w = (self.ranks + q) ** -s
        total = float(w.sum())
        if self.n > self.exact:
            total += _tail_integral(s, q, self.exact + 0.5, self.n + 0.5)
        return float(w[:top].sum()) / total


def _fit_s(sums: _Sums, q: float, share: float) -> float:
    lo, hi = 0.0, 8.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if sums.share(mid, q, sums.k) < share:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def fit_popularity(n: int, top_k: int, top_k_share: float, top1_share: float | None = None) -> Popularity:
    """Fit (s, q) over n channels; raise ValueError if the targets are unreachable."""
    if not 0 < top_k < n:
        raise ValueError(f"top_k must be in (0, {n}), got {top_k}")
    uniform = top_k / n
    if top_k_share <= uniform:
        raise ValueError(f"top_k_share {top_k_share} is not above the uniform share {uniform:.4g}")
    sums = _Sums(n, top_k)
    if top1_share is None:
        return Popularity(_fit_s(sums, 0.0, top_k_share), 0.0, n)
    s = _fit_s(sums, 0.0, top_k_share)
    if sums.share(s, 0.0, 1) < top1_share:
        raise ValueError(f"top1_share {top1_share} needs a steeper head than top_k_share allows")
    lo, hi = 0.0, float(np.log1p(n))
    for _ in range(40):
        mid = (lo + hi) / 2
        q = float(np.expm1(mid))
        s = _fit_s(sums, q, top_k_share)
        if sums.share(s, q, 1) > top1_share:
            lo = mid
        else:
            hi = mid
    q = float(np.expm1((lo + hi) / 2))
    return Popularity(_fit_s(sums, q, top_k_share), q, n)


@dataclass(frozen=True, slots=True)
class StreamGroups:
    """Channels grouped for the fluid model; arrays are indexed by group."""

    first_rank: npt.NDArray[np.int64]
    channels: FloatArray
    share: FloatArray
    full_ladder: npt.NDArray[np.bool_]

    @property
    def size(self) -> int:
        return int(self.channels.shape[0])

    def group_of_rank(self, rank: int) -> int:
        return int(np.searchsorted(self.first_rank, rank, side="right") - 1)


def build_groups(pop: Popularity, head: int, full_ladder_channels: int, ratio: float = 1.2) -> StreamGroups:
    """Head channels one per group, then geometric bins; the full-ladder boundary is a bin edge."""
    w = pop.weights()
    cum = np.concatenate(([0.0], np.cumsum(w)))
    head = min(head, pop.n)
    edges = list(range(1, head + 2))
    nxt = float(head + 1)
    while edges[-1] <= pop.n:
        nxt = max(nxt * ratio, edges[-1] + 1.0)
        edges.append(min(int(nxt), pop.n + 1))
    edges = sorted(set(edges) | ({full_ladder_channels + 1} if 0 < full_ladder_channels < pop.n else set()))
    edges = [e for e in edges if e <= pop.n + 1]
    if edges[-1] != pop.n + 1:
        edges.append(pop.n + 1)
    lo = np.array(edges[:-1], dtype=np.int64)
    hi = np.array(edges[1:], dtype=np.int64)
    share = cum[hi - 1] - cum[lo - 1]
    return StreamGroups(
        first_rank=lo,
        channels=(hi - lo).astype(np.float64),
        share=share,
        full_ladder=lo <= full_ladder_channels,
    )

"""Non-negative least squares with an identifiability check: the numeric core of `twin calibrate`.

Pure numpy. A cost model y = sum_j c_j x_j is fitted with every c_j >= 0 (a cost cannot be
negative). A regressor that does not vary independently of the ones before it (constant
within and across runs, or proportional to another) cannot be told apart from them: its
coefficient is *not identifiable*, so it keeps its base value and its contribution is taken
out of y before the others are fitted. Columns are tried in the caller's order of priority.
NNLS is solved exactly by trying every subset of free columns (a handful of parameters).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: A column explained to this share of its norm by the columns before it is not identifiable.
IDENTIFIABLE_RESIDUAL = 0.05
MAX_COLUMNS = 12


@dataclass(frozen=True, slots=True)
class Fit:
    """Coefficients by name, which were fitted, which kept their base and why, and fit quality."""

    coef: dict[str, float]
    fitted: tuple[str, ...]
    kept: dict[str, str]
    r2: float
    rms: float
    max_abs: float
    n: int


def nnls(a: FloatArray, y: FloatArray) -> FloatArray:
    """argmin ||a c - y|| subject to c >= 0, exactly (every active set; columns <= MAX_COLUMNS)."""
    m = a.shape[1]
    if m > MAX_COLUMNS:
        raise ValueError(f"nnls: at most {MAX_COLUMNS} columns, got {m}")
    best = np.zeros(m)
    best_cost = float(y @ y)
    for k in range(1, m + 1):
        for cols in itertools.combinations(range(m), k):
            sub = a[:, cols]
            c, *_ = np.linalg.lstsq(sub, y, rcond=None)
            if np.any(c < 0):
                continue
            r = sub @ c - y
            cost = float(r @ r)
            if cost < best_cost - 1e-12 * max(best_cost, 1e-300):
                best_cost = cost
                best = np.zeros(m)
                best[list(cols)] = c
    return best


def _explained(col: FloatArray, basis: list[FloatArray]) -> float:
    """Share of the column's norm left after projecting it on the basis (1 = fully new)."""
    norm = float(np.linalg.norm(col))
    if norm == 0.0:
        return 0.0
    if not basis:
        return 1.0
    b = np.column_stack(basis)
    c, *_ = np.linalg.lstsq(b, col, rcond=None)
    return float(np.linalg.norm(col - b @ c)) / norm


def fit_costs(
    columns: dict[str, FloatArray], y: FloatArray, base: dict[str, float], tol: float = IDENTIFIABLE_RESIDUAL
) -> Fit:
    """Fit y ~ sum c_name * columns[name] (c >= 0), in the dict's order of priority.

    `base` holds the value kept for a parameter that is not identifiable. A parameter whose
    fit reaches the bound 0 stays 0 in the fit (and its quality figures) but is not `fitted`:
    the calibration loader only takes positive values, so the file keeps its base.
    """
    names = list(columns)
    n = int(y.shape[0])
    if n == 0:
        raise ValueError("no rows to fit")
    if any(c.shape != y.shape for c in columns.values()):
        raise ValueError("every regressor needs one value per row")
    if not np.all(np.isfinite(y)) or not all(np.all(np.isfinite(c)) for c in columns.values()):
        raise ValueError("rows hold NaN or infinite values")
    kept: dict[str, str] = {}
    free: list[str] = []
    basis: list[FloatArray] = []
    for name in names:
        col = columns[name]
        left = _explained(col, basis)
        if left < tol:
            if not np.any(col):
                kept[name] = "regressor is zero in every row"
            elif float(np.ptp(col)) <= 1e-12 * float(np.max(np.abs(col))):
                kept[name] = "regressor did not vary (constant in every row)"
            else:
                kept[name] = f"regressor follows the others (only {left:.1%} of it is independent)"
        else:
            free.append(name)
            basis.append(col)
    target = y - sum((base[k] * columns[k] for k in kept), np.zeros_like(y))
    coef_free = nnls(np.column_stack([columns[k] for k in free]), target) if free else np.zeros(0)
    coef = {k: base[k] for k in kept}
    for k, c in zip(free, coef_free, strict=True):
        coef[k] = float(c)
        if c <= 0.0:
            kept[k] = "fit reached the bound 0 (no measurable cost); the file keeps the base value"
    free = [k for k in free if k not in kept]
    pred = sum((coef[k] * columns[k] for k in names), np.zeros_like(y))
    resid = y - pred
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else math.nan
    return Fit(
        coef={k: coef[k] for k in names},
        fitted=tuple(k for k in names if k in free),
        kept={k: kept[k] for k in names if k in kept},
        r2=r2,
        rms=float(np.sqrt((resid**2).mean())),
        max_abs=float(np.abs(resid).max()),
        n=n,
    )

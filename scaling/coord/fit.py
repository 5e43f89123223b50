"""Fitting a coordinate check: the width exponent of each statistic, its interval, and the verdict.

Per module output, step and statistic, :func:`fit_slopes` fits ``log2(stat) = s log2(n) + c`` by least
squares over widths and seeds, with a 95% Student-t interval on ``s`` (scipy), and sets ``s`` beside
the exponent :mod:`scaling.predict` derives from the exponent table.

The verdict rests on the interval: a slope beyond the tolerance reads ``grows`` (``shrinks``) only
when its whole interval lies beyond it; a slope beyond the tolerance whose interval reaches back
inside reads ``inconclusive`` (more seeds or widths decide). An interval needs three distinct widths:
with two, the residuals measure only the seeds' scatter, not how well a power law fits, so no
interval is given and the verdict rests on the slope alone. Non-finite values (a diverged width, a NaN
in the batch) are dropped from a fit and named in its ``dropped`` widths; a fit with nothing finite
left reads ``non-finite``, never ``zero``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as scipy_stats

from scaling.coord.result import STATS, CoordConfig, Fit, ModuleInfo, Record

CONFIDENCE = 0.95  # of the slopes' t-intervals


def fit_slope(widths: Sequence[float], values: Sequence[float]) -> tuple[float, float, float]:
    """Least-squares slope of ``log2(value)`` on ``log2(width)`` and its 95% t-interval.

    The ordinary least-squares slope ``s = cov(x, y) / var(x)`` with standard error
    ``sqrt(SSR / (N - 2) / sum (x - mean x)^2)`` and Student's t quantile (scipy) for ``N - 2``
    degrees of freedom. Non-positive and non-finite values are dropped; fewer than two distinct
    widths give NaN, fewer than three (or no residual degrees of freedom) a NaN interval.
    """
    w, v = np.asarray(widths, dtype=float), np.asarray(values, dtype=float)
    keep = np.isfinite(v) & (v > 0)
    x, y = np.log2(w[keep]), np.log2(v[keep])
    if len(np.unique(x)) < 2:
        return math.nan, math.nan, math.nan
    dx = x - x.mean()
    sxx = float(dx @ dx)
    slope = float(dx @ (y - y.mean())) / sxx
    dof = len(x) - 2
    if dof < 1 or len(np.unique(x)) < 3:
        return slope, math.nan, math.nan
    residual = y - y.mean() - slope * dx
    half = _t975(dof) * math.sqrt(float(residual @ residual) / dof / sxx)
    return slope, slope - half, slope + half


@functools.lru_cache(maxsize=64)
def _t975(dof: int) -> float:
    return float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, dof))


def verdict(slope: float, tol: float, ci_low: float = math.nan, ci_high: float = math.nan) -> str:
    """``stable`` if ``|slope| <= tol``; beyond it ``grows`` or ``shrinks`` when the interval is too
    (or when there is no interval), else ``inconclusive``. ``zero``: nothing to fit."""
    if math.isnan(slope):
        return "zero"
    if abs(slope) <= tol:
        return "stable"
    if slope > 0:
        return "inconclusive" if ci_low <= tol else "grows"  # a NaN bound compares False
    return "inconclusive" if ci_high >= -tol else "shrinks"


def fit_slopes(records: Sequence[Record], infos: Sequence[ModuleInfo], config: CoordConfig) -> list[Fit]:
    """One :class:`Fit` per output, state and statistic, over all widths and seeds."""
    groups: dict[tuple[str, int], list[Record]] = {}
    for r in records:
        groups.setdefault((r.module, r.step), []).append(r)
    fits = []
    for m in infos:
        for step in range(config.steps + 1):
            rows = groups.get((m.module, step), [])
            for stat in STATS:
                values = [getattr(r, stat) for r in rows]
                slope, lo, hi = fit_slope([r.width for r in rows], values)
                dropped = tuple(sorted({r.width for r, v in zip(rows, values) if not math.isfinite(v)}))
                pred = m.predicted(stat, step)
                match = None if pred is None or math.isnan(slope) else abs(slope - pred) <= config.match_tol
                said = "non-finite" if dropped and math.isnan(slope) else verdict(slope, config.tol, lo, hi)
                fits.append(Fit(m.module, step, stat, slope, lo, hi, pred, said, match, dropped))
    return fits



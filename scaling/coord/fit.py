"""Fitting a coordinate check: the width exponent of each statistic, its interval, and the verdict.

Per module output, step and statistic, :func:`fit_slopes` fits ``log2(stat) = s log2(n) + c`` by least
squares over widths and seeds, with a 95% Student-t interval on ``s`` (scipy), and sets ``s`` beside
the exponent :mod:`scaling.predict` derives from the exponent table.
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
    widths give NaN, no residual degrees of freedom a NaN interval.
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
    if dof < 1:
        return slope, math.nan, math.nan
    residual = y - y.mean() - slope * dx
    half = _t975(dof) * math.sqrt(float(residual @ residual) / dof / sxx)
    return slope, slope - half, slope + half


@functools.lru_cache(maxsize=64)
def _t975(dof: int) -> float:
    return float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, dof))


def verdict(slope: float, tol: float) -> str:
    """``stable`` if ``|slope| <= tol``, else ``grows`` or ``shrinks`` (``zero``: nothing to fit)."""
    if math.isnan(slope):
        return "zero"
    return "stable" if abs(slope) <= tol else ("grows" if slope > 0 else "shrinks")


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
                slope, lo, hi = fit_slope([r.width for r in rows], [getattr(r, stat) for r in rows])
                pred = m.predicted(stat, step)
                match = None if pred is None or math.isnan(slope) else abs(slope - pred) <= config.match_tol
                fits.append(Fit(m.module, step, stat, slope, lo, hi, pred, verdict(slope, config.tol), match))
    return fits



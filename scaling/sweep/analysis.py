"""What a sweep says about LR transfer: the optimum per width, its drift with width, and the regret.

For each (parameterization, optimizer, width) the loss curve is the seed mean of the final loss at
each grid LR (a diverged run counts as ``+inf``, so an LR where any seed diverged is never the
optimum and never enters a fit). Then:

- the optimum ``log2 lr*`` is the vertex of a quadratic through the grid minimum and its neighbours
  (3 points by default), kept only if the parabola is convex and its vertex lies between those
  neighbours; otherwise, or when the minimum sits at the first or last grid LR (``edge``: the true
  optimum may lie beyond the grid), the grid minimum itself;
- the drift exponent is the least-squares slope ``d log2(lr*) / d log2(width)``
  (``scipy.stats.linregress``) with a percentile bootstrap interval: seeds resampled with
  replacement at each width, the optimum found again, the slope refitted;
- the regret at width ``w`` of tuning at the reference (smallest) width:
  ``L_w(lr*_ref) / L_w(lr*_w) - 1``, with ``L_w`` the fitted parabola inside its window and the
  piecewise-linear interpolation of the grid curve elsewhere.

Expectation (TP-V, Yang et al. 2022, §1): with Adam, SP's optimum falls about like ``1/width`` (drift near
-1) and muP's stays (drift near 0).
"""

from __future__ import annotations

import math
import zlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from scaling.errors import ScalingError
from scaling.sweep.store import RunRecord
from scaling.text import format_table as _align

Metric = Literal["train_loss", "val_loss"]
Edge = Literal["", "low", "high"]


@dataclass(frozen=True)
class Curve:
    """Final loss vs log2 LR at one width: ``losses[s, j]`` for seed ``seeds[s]`` at ``log2_lrs[j]``.

    ``+inf`` marks a diverged run, ``nan`` a missing one (a sweep still running).
    """

    parameterization: str
    optimizer: str
    width: int
    log2_lrs: np.ndarray  # (L,)
    seeds: tuple[int, ...]
    losses: np.ndarray  # (S, L)

    @property
    def mean(self) -> np.ndarray:
        """The seed mean at each LR over the seeds present (``inf`` if any diverged, ``nan`` if none ran)."""
        return seed_mean(self.losses)


def seed_mean(losses: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring ``nan`` (missing); ``inf`` stays ``inf``; all-missing gives ``nan``."""
    present = ~np.isnan(losses)
    count = present.sum(axis=0)
    total = np.where(present, losses, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


@dataclass(frozen=True)
class Optimum:
    """The best log2 LR of one curve, and how it was found."""

    log2_lr: float  # the fitted vertex, or the grid minimum; nan if every run diverged
    loss: float  # the curve's value there
    grid_log2_lr: float  # the grid minimum
    edge: Edge  # "low"/"high": the grid minimum is the first/last LR of the grid; "" if inside
    fitted: bool  # the quadratic fit was used
    coef: tuple[float, float, float] | None = None  # a, b, c of a*x^2 + b*x + c
    window: tuple[float, float] = (math.nan, math.nan)  # the x-range of the fitted points


def find_optimum(log2_lrs: np.ndarray, losses: np.ndarray, half_window: int = 1) -> Optimum:
    """The optimum of ``losses`` (non-finite: excluded) at sorted ``log2_lrs``.

    A quadratic is fitted to the grid minimum and up to ``half_window`` finite points on each side
    (at least 3 in all); see the module docstring for when the grid minimum is kept instead.
    """
    x, y = np.asarray(log2_lrs, float), np.asarray(losses, float)
    ok = np.isfinite(y)
    if not ok.any():
        return Optimum(math.nan, math.inf, math.nan, edge="", fitted=False)
    i = int(np.argmin(np.where(ok, y, np.inf)))
    edge: Edge = "low" if i == 0 else "high" if i == len(x) - 1 else ""
    grid = Optimum(float(x[i]), float(y[i]), float(x[i]), edge=edge, fitted=False)
    if grid.edge:
        return grid
    idx = [j for j in range(max(0, i - half_window), min(len(x), i + half_window + 1)) if ok[j]]
    if len(idx) < 3:
        return grid
    a, b, c = np.polyfit(x[idx], y[idx], 2)
    if a <= 0:
        return grid
    vertex = -b / (2 * a)
    if not x[i - 1] <= vertex <= x[i + 1]:
        return grid
    coef = (float(a), float(b), float(c))
    return Optimum(float(vertex), float(np.polyval(coef, vertex)), float(x[i]), edge="", fitted=True,
                   coef=coef, window=(float(x[idx[0]]), float(x[idx[-1]])))


def loss_at(log2_lrs: np.ndarray, losses: np.ndarray, optimum: Optimum, x: float) -> float:
    """The curve's loss at ``x``: the fitted parabola inside its window, else linear interpolation
    between the grid points around ``x`` (``inf`` next to a diverged point; clamped beyond the grid)."""
    if optimum.coef is not None and optimum.window[0] <= x <= optimum.window[1]:
        return float(np.polyval(optimum.coef, x))
    keep = ~np.isnan(losses)
    xs, ys = np.asarray(log2_lrs, float)[keep], np.asarray(losses, float)[keep]
    if len(xs) == 0 or math.isnan(x):
        return math.nan
    if x <= xs[0]:
        return float(ys[0])
    if x >= xs[-1]:
        return float(ys[-1])
    j = int(np.searchsorted(xs, x))
    if xs[j] == x:
        return float(ys[j])
    if not (math.isfinite(ys[j - 1]) and math.isfinite(ys[j])):
        return math.inf
    return float(np.interp(x, xs[j - 1 : j + 1], ys[j - 1 : j + 1]))


@dataclass(frozen=True)
class WidthResult:
    """The optimum at one width and the regret of using the reference width's optimum there."""

    parameterization: str
    optimizer: str
    width: int
    seeds: int
    optimum: Optimum
    loss_at_reference: float  # the loss at the reference width's optimal LR
    regret: float  # loss_at_reference / optimum.loss - 1


@dataclass(frozen=True)
class Drift:
    """``d log2(lr*) / d log2(width)``: the slope, its bootstrap interval and the fit's intercept.

    The interval resamples seeds, so with one seed per width it shrinks to the point estimate.
    """

    parameterization: str
    optimizer: str
    slope: float
    low: float
    high: float
    intercept: float
    confidence: float
    edges: int  # widths whose optimum sits at a grid edge (the slope may be biased toward 0)


@dataclass(frozen=True)
class Analysis:
    """Everything :func:`analyze` found, tidy: curves, per-width results and drifts."""

    metric: str
    reference_width: int
    curves: list[Curve]
    widths: list[WidthResult]
    drifts: list[Drift]

    @classmethod
    def combine(cls, parts: Sequence[Analysis]) -> Analysis:
        """Several analyses of one metric and reference width as one (a figure of several sweeps), each
        part's numbers (bootstrap intervals included) kept as they are rather than recomputed."""
        if len({(a.metric, a.reference_width) for a in parts}) != 1:
            raise ScalingError("combine() needs analyses of one metric and reference width")
        return cls(parts[0].metric, parts[0].reference_width, [c for a in parts for c in a.curves],
                   [r for a in parts for r in a.widths], [d for a in parts for d in a.drifts])

    def drift(self, parameterization: str, optimizer: str | None = None) -> Drift:
        """The drift of one parameterization (and optimizer, if the sweep has several)."""
        for d in self.drifts:
            if d.parameterization == parameterization and optimizer in (None, d.optimizer):
                return d
        raise KeyError(f"no drift for {parameterization!r} {optimizer or ''}")

    def at(self, parameterization: str, width: int, optimizer: str | None = None) -> WidthResult:
        """The result at one width."""
        for r in self.widths:
            if (r.parameterization, r.width) == (parameterization, width) and optimizer in (None, r.optimizer):
                return r
        raise KeyError(f"no result for {parameterization!r} at width {width}")


def curves(runs: Sequence[RunRecord], metric: Metric = "train_loss") -> list[Curve]:
    """Group runs into one :class:`Curve` per (parameterization, optimizer, width).

    Runs of one parameterization with several sets of per-role constants are told apart: each set
    but the first (in sorted order) is its own series, labelled ``<parameterization>+<hash>``.
    """
    variants: dict[tuple[str, str], list[str]] = defaultdict(list)
    for r in runs:
        key = (r.cell.parameterization, r.cell.optimizer)
        if r.cell.scales not in variants[key]:
            variants[key].append(r.cell.scales)
    groups: dict[tuple[str, str, int], list[RunRecord]] = defaultdict(list)
    for r in runs:
        groups[(_label(r, variants), r.cell.optimizer, r.cell.width)].append(r)
    out = []
    for (p, o, w), rs in sorted(groups.items()):
        xs = sorted({r.cell.log2_lr for r in rs})
        seeds = tuple(sorted({r.cell.seed for r in rs}))
        losses = np.full((len(seeds), len(xs)), np.nan)
        for r in rs:
            value = math.inf if r.diverged or not math.isfinite(getattr(r, metric)) else getattr(r, metric)
            losses[seeds.index(r.cell.seed), xs.index(r.cell.log2_lr)] = value
        out.append(Curve(p, o, w, np.array(xs), seeds, losses))
    return out


def _label(r: RunRecord, variants: dict[tuple[str, str], list[str]]) -> str:
    known = sorted(variants[(r.cell.parameterization, r.cell.optimizer)])
    if len(known) == 1 or r.cell.scales == known[0]:
        return r.cell.parameterization
    return f"{r.cell.parameterization}+{zlib.crc32(r.cell.scales.encode()):08x}"


def analyze(
    runs: Sequence[RunRecord],
    metric: Metric = "train_loss",
    *,
    reference_width: int | None = None,
    half_window: int = 1,
    n_boot: int = 1000,
    confidence: float = 0.9,
    seed: int = 0,
) -> Analysis:
    """Optima, regret and drift of every (parameterization, optimizer) in ``runs``.

    ``reference_width`` (default: the smallest width swept) is where the LR is "tuned" for the regret.
    The bootstrap uses ``n_boot`` resamples from ``numpy.random.default_rng(seed)``.
    """
    all_curves = curves(runs, metric)
    if reference_width is None:
        reference_width = min((c.width for c in all_curves), default=0)
    rng = np.random.default_rng(seed)
    by_key: dict[tuple[str, str], list[Curve]] = defaultdict(list)
    for c in all_curves:
        by_key[(c.parameterization, c.optimizer)].append(c)
    results, drifts = [], []
    for (p, o), cs in by_key.items():
        optima = [find_optimum(c.log2_lrs, c.mean, half_window) for c in cs]
        ref = next((opt for c, opt in zip(cs, optima) if c.width == reference_width), None)
        ref_x = ref.log2_lr if ref is not None else math.nan
        for c, opt in zip(cs, optima):
            at_ref = loss_at(c.log2_lrs, c.mean, opt, ref_x)
            regret = at_ref / opt.loss - 1 if opt.loss > 0 and math.isfinite(opt.loss) else math.nan
            results.append(WidthResult(p, o, c.width, len(c.seeds), opt, at_ref, regret))
        drifts.append(_drift(p, o, cs, optima, rng, n_boot, confidence, half_window))
    return Analysis(metric, reference_width, all_curves, results, drifts)


def _slope(log2_widths: np.ndarray, log2_lrs: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(log2_lrs)
    if ok.sum() < 2:
        return math.nan, math.nan
    fit = stats.linregress(log2_widths[ok], log2_lrs[ok])
    return float(fit.slope), float(fit.intercept)


def _drift(p: str, o: str, cs: list[Curve], optima: list[Optimum], rng: np.random.Generator, n_boot: int,
           confidence: float, half_window: int) -> Drift:
    log2_w = np.log2([c.width for c in cs])
    slope, intercept = _slope(log2_w, np.array([opt.log2_lr for opt in optima]))
    boot = np.empty(n_boot)
    for b in range(n_boot):
        lrs = []
        for c in cs:
            pick = rng.integers(0, len(c.seeds), len(c.seeds))  # seeds with replacement
            lrs.append(find_optimum(c.log2_lrs, seed_mean(c.losses[pick]), half_window).log2_lr)
        x = np.array(lrs)
        ok = np.isfinite(x)
        boot[b] = np.polyfit(log2_w[ok], x[ok], 1)[0] if ok.sum() >= 2 else np.nan
    boot = boot[np.isfinite(boot)]
    tail = 100 * (1 - confidence) / 2
    low, high = (np.percentile(boot, [tail, 100 - tail]) if len(boot) else (math.nan, math.nan))
    return Drift(p, o, slope, float(low), float(high), intercept, confidence, sum(bool(opt.edge) for opt in optima))


def format_table(analysis: Analysis) -> str:
    """The optima, regrets and drifts as plain text.

    In ``log2 lr*``, ``<``/``>`` marks an optimum at the low/high edge of the grid (the true one may
    lie beyond) and ``~`` a grid minimum kept because the quadratic fit was rejected.
    """
    rows = []
    for r in analysis.widths:
        opt = r.optimum
        mark = {"low": "<", "high": ">"}.get(opt.edge, "" if opt.fitted else "~")
        rows.append({
            "param": r.parameterization, "optimizer": r.optimizer, "width": r.width, "seeds": r.seeds,
            "log2 lr*": f"{opt.log2_lr:.2f}{mark}", f"{analysis.metric}*": opt.loss,
            f"at ref lr (w={analysis.reference_width})": r.loss_at_reference,
            "regret": f"{100 * r.regret:.1f}%" if math.isfinite(r.regret) else str(r.regret),
        })
    lines = [_align(rows), ""]
    for d in analysis.drifts:
        edges = f"  ({d.edges} optima at a grid edge)" if d.edges else ""
        lines.append(f"drift d log2 lr*/d log2 width  {d.parameterization:>10} {d.optimizer:<6} "
                     f"{d.slope:+.3f}  [{d.low:+.3f}, {d.high:+.3f}] {100 * d.confidence:.0f}% bootstrap{edges}")
    return "\n".join(lines)

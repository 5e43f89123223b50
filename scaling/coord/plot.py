"""Plots of a coordinate check: width vs statistic on log-log axes, one panel per step.

Each panel shows one state ``t``; each line one module output (the mean over seeds, the seed spread
min..max shaded), labelled with its fitted slope ``s`` and the predicted one. Under muP the lines
are flat (TP-V, Yang et al. 2022, App. D.1); under SP with Adam the logits and hidden
features climb. :func:`plot_side_by_side` puts two or more parameterizations in rows of the same
figure, on shared axes.

Uses matplotlib's object API (``matplotlib.figure.Figure``), so nothing touches pyplot's global state
and no display is needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from scaling.coord.result import CoordResult, Stat
from scaling.errors import ScalingError

LABELS: dict[str, str] = {"mean_abs": "mean |h_t|", "mean_abs_delta": "mean |h_t - h_0|"}


def _default_steps(result: CoordResult, stat: Stat) -> list[int]:
    first = 1 if stat == "mean_abs_delta" else 0  # h_0 - h_0 = 0 has no logarithm
    return list(range(first, result.config.steps + 1))


def series(result: CoordResult, module: str, step: int, stat: Stat) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                              np.ndarray]:
    """Widths and the mean, min and max over seeds of ``stat`` for one module output at one step."""
    widths = sorted(result.config.widths)
    by_width: dict[int, list[float]] = {w: [] for w in widths}
    for r in result.records:
        if r.module == module and r.step == step:
            by_width[r.width].append(getattr(r, stat))
    values = [np.asarray(by_width[w], dtype=float) for w in widths]
    mean = np.array([v.mean() if len(v) else np.nan for v in values])
    low = np.array([v.min() if len(v) else np.nan for v in values])
    high = np.array([v.max() if len(v) else np.nan for v in values])
    return np.asarray(widths, dtype=float), mean, low, high


def draw(
    ax: Axes, result: CoordResult, step: int, stat: Stat = "mean_abs", modules: Sequence[str] | None = None
) -> None:
    """Draw one panel: every module output's ``stat`` vs width at ``step``, log-log.

    By default every output except those that are the very tensor of an earlier one (the model's
    own output is its readout's), which would draw the same line twice.
    """
    names = modules if modules is not None else [m.module for m in result.modules if m.alias_of is None]
    for index, name in enumerate(names):
        widths, mean, low, high = series(result, name, step, stat)
        ok = np.isfinite(mean) & (mean > 0)
        if not ok.any():
            continue
        f = result.fit(name, step, stat)
        label = name if np.isnan(f.slope) else f"{name}: s={f.slope:+.2f}"
        if f.predicted is not None:
            label += f" (pred {f.predicted:+.2g})"
        # one colour per module in every panel, even where an earlier module has nothing to draw
        (line,) = ax.plot(widths[ok], mean[ok], marker="o", markersize=3, label=label, color=f"C{index % 10}")
        ax.fill_between(widths[ok], low[ok], high[ok], color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_title(f"t = {step}", fontsize=9)
    ax.set_xlabel("width")
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="best")


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig


def plot(
    result: CoordResult,
    stat: Stat = "mean_abs",
    steps: Sequence[int] | None = None,
    path: str | Path | None = None,
    modules: Sequence[str] | None = None,
) -> Figure:
    """One row of panels, one per step; returns the figure and writes it to ``path`` if given."""
    return plot_side_by_side({_title(result): result}, stat, steps, path, modules)


def plot_side_by_side(
    results: Mapping[str, CoordResult],
    stat: Stat = "mean_abs",
    steps: Sequence[int] | None = None,
    path: str | Path | None = None,
    modules: Sequence[str] | None = None,
) -> Figure:
    """One row per result (e.g. ``{"sp": ..., "mup": ...}``), one column per step, shared axes."""
    if not results:
        raise ScalingError("give at least one result to plot")
    first = next(iter(results.values()))
    steps = list(steps) if steps is not None else _default_steps(first, stat)
    rows, cols = len(results), len(steps)
    fig = Figure(figsize=(2.9 * cols + 0.6, 2.7 * rows + 0.4), layout="constrained")
    axes: Any = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for i, (name, result) in enumerate(results.items()):
        for j, step in enumerate(steps):
            draw(axes[i, j], result, step, stat, modules)
        axes[i, 0].set_ylabel(f"{name}\n{LABELS[stat]}")
    fig.suptitle(f"coordinate check: {LABELS[stat]} vs width", fontsize=10)
    return _save(fig, path)


def _title(result: CoordResult) -> str:
    c = result.config
    return f"{c.parameterization}, {c.optimizer} lr {c.base_lr:g}"

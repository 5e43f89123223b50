"""The classic LR-transfer figure: loss vs log2 LR, one curve per width, one panel per parameterization.

Panels share the y axis (SP and muP side by side; one row per optimizer). Each curve is the seed mean,
coloured by width (viridis, narrow = dark), with the seed spread (min to max) shaded and the optimum
of :mod:`scaling.analysis` marked by a dot on its fitted parabola (dotted). LRs where a run diverged
get no point; an ``x`` at the top of the panel marks them. Panel titles give the drift exponent
and its bootstrap interval.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize

from scaling.sweep.analysis import Analysis, Metric, analyze
from scaling.sweep.config import SweepConfig
from scaling.sweep.engine import read_config
from scaling.sweep.store import open_existing


def figure_name(config: SweepConfig, metric: str = "train_loss") -> str:
    """An ASCII file stem that encodes the sweep: ``transfer_mlp_mnist1d_adam_sp-mup_w64-512_lr-12to-4_s2_n300``."""
    lrs = config.log2_lrs
    parts = [
        "transfer", config.model, config.dataset_name, "-".join(config.optimizers), "-".join(config.parameterizations),
        f"w{min(config.widths)}-{max(config.widths)}", f"b{config.base_width}",
        f"lr{lrs[0]:g}to{lrs[-1]:g}".replace(".", "p"),
        f"s{len(config.seeds)}", f"n{config.steps}", f"bs{config.batch_size}",
    ]
    if config.schedule != "none":
        parts.append(config.schedule)
    if metric != "train_loss":
        parts.append(metric.removesuffix("_loss"))
    # One set of constants hashes as the dict itself (so names made before scales became an axis hold).
    scales = dict(config.scales[0]) if len(config.scales) == 1 else [dict(s) for s in config.scales]
    options = {"scales": scales, "zero_readout": config.zero_readout, "eps": config.eps,
               "weight_decay": config.weight_decay, "model_kwargs": config.model_kwargs,
               "dataset_kwargs": config.dataset_kwargs, **({"init": config.init} if config.init != "pytorch" else {})}
    if any(options.values()):  # settings the name does not spell out: a short hash keeps names distinct
        digest = hashlib.sha1(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()[:8]
        parts.append(f"opt{digest}")
    return re.sub(r"[^A-Za-z0-9._-]", "", "_".join(parts))


def plot_transfer(
    analysis: Analysis,
    path: str | Path,
    *,
    title: str | None = None,
    logy: bool = False,
    ylim: tuple[float, float] | None = None,
    formats: Sequence[str] = ("png",),
    axis: str = "width",
    xlabel: str = "log2 base learning rate",
) -> list[Path]:
    """Draw ``analysis`` and save it as ``path`` plus each suffix in ``formats``; return the files.

    ``axis`` names what the sweep's widths are in the legend (``"depth"`` for a sweep over depth);
    ``xlabel`` what its swept axis is (a role's LR constant, say)."""
    params = sorted(dict.fromkeys(c.parameterization for c in analysis.curves), key=_panel_order)
    optimizers = list(dict.fromkeys(c.optimizer for c in analysis.curves))
    widths = sorted({c.width for c in analysis.curves})
    norm = Normalize(math.log2(widths[0]) - 0.3, math.log2(widths[-1]) + 0.3) if widths else Normalize()
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(len(optimizers), len(params), figsize=(4.2 * len(params), 3.4 * len(optimizers)),
                             sharey=True, squeeze=False, layout="constrained")
    bottom, top = ylim or _ylim(analysis, logy)
    for row, opt_name in enumerate(optimizers):
        for col, p in enumerate(params):
            ax = axes[row][col]
            for c in (c for c in analysis.curves if (c.parameterization, c.optimizer) == (p, opt_name)):
                colour = cmap(norm(math.log2(c.width)))
                mean = c.mean
                shown = np.where(np.isfinite(mean), mean, np.nan)
                ax.plot(c.log2_lrs, shown, "-", color=colour, lw=1.5, label=f"{axis} {c.width}")
                if len(c.seeds) > 1:
                    spread = np.where(np.isinf(c.losses), np.nan, c.losses)
                    ax.fill_between(c.log2_lrs, np.fmin.reduce(spread, axis=0), np.fmax.reduce(spread, axis=0),
                                    where=np.isfinite(mean), color=colour, alpha=0.2, lw=0)
                diverged = c.log2_lrs[np.isinf(mean)]
                if len(diverged):  # (an empty unclipped line would still stretch the layout to (0, 0))
                    ax.plot(diverged, np.full(len(diverged), top), "x", color=colour, ms=5, clip_on=False)
                best = analysis.at(p, c.width, opt_name).optimum
                if best.coef is not None:  # the parabola the optimum comes from, over its window
                    xs = np.linspace(*best.window, 25)
                    ax.plot(xs, np.polyval(best.coef, xs), ":", color=colour, lw=1.2)
                if math.isfinite(best.log2_lr):
                    ax.plot([best.log2_lr], [best.loss], "o", color=colour, mec="black", mew=0.8, ms=6, zorder=3)
            d = analysis.drift(p, opt_name)
            seeds = max((len(c.seeds) for c in analysis.curves if (c.parameterization, c.optimizer) == (p, opt_name)),
                        default=0)
            ci = f"[{d.low:+.2f}, {d.high:+.2f}]" if seeds > 1 else "(1 seed)"
            ax.set_title(f"{p} ({opt_name}): drift {d.slope:+.2f} {ci}", fontsize=10)
            ax.set_xlabel(xlabel)
            if logy:
                ax.set_yscale("log")
            ax.set_ylim(bottom, top)
            ax.grid(alpha=0.3)
        axes[row][0].set_ylabel(f"{analysis.metric.replace('_', ' ')} ({opt_name})")
    axes[0][0].legend(fontsize=8, loc="lower left")
    if title:
        fig.suptitle(title, fontsize=11)
    out = []
    for fmt in formats:
        target = Path(f"{path}.{fmt}")
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target, dpi=150)
        out.append(target)
    plt.close(fig)
    return out


def _panel_order(parameterization: str) -> int:
    """SP first, muP after it: the comparison reads left to right."""
    order = ["sp", "ntk", "mfp", "mup", "mup-table8"]
    if parameterization not in order:  # a labelled variant ("sp-tuned") sits after its row
        parameterization = parameterization.split("-")[0]
        return order.index(parameterization) + 1 if parameterization in order else len(order)
    return order.index(parameterization)


def _ylim(analysis: Analysis, logy: bool) -> tuple[float, float]:
    """From just below the best loss to the 95th percentile of the curves: blow-ups are clipped."""
    values = np.concatenate([c.mean[np.isfinite(c.mean)] for c in analysis.curves] + [np.empty(0)])
    if len(values) == 0:
        values = np.array([1.0])
    lo, hi = float(values.min()), float(np.percentile(values, 95))
    if logy:
        return lo / 1.1, hi * 1.1
    pad = 0.05 * (hi - lo or 1.0)
    return lo - pad, hi + pad


def save_transfer_figure(
    db: str | Path,
    out_dir: str | Path,
    *,
    metric: Metric = "train_loss",
    logy: bool = False,
    pdf: bool = False,
    analysis: Analysis | None = None,
) -> list[Path]:
    """Analyze the sweep in ``db`` and save its figure in ``out_dir``, named by :func:`figure_name`."""
    with open_existing(db) as store:
        config, runs = read_config(store), store.runs()
    analysis = analysis or analyze(runs, metric)
    seeds = f"{len(config.seeds)} seed{'s' if len(config.seeds) > 1 else ''}"
    title = (f"{config.model} on {config.dataset_name}, {config.steps} steps, batch {config.batch_size}, "
             f"base width {config.base_width}, {seeds}")
    path = Path(out_dir) / figure_name(config, metric)
    return plot_transfer(analysis, path, title=title, logy=logy, formats=("png", "pdf") if pdf else ("png",))

"""The plot of a depth coordinate check: depth vs statistic on log-log axes, one line per row.

Three panels at one state ``t``: the final residual stream ``mean|h_t|`` and ``mean|h_t - h_0|``, and
the blocks' ``mean|d_t - d_0|``. Each line is a row of the table (the mean over seeds, the seed spread
min..max shaded), labelled with its fitted slope and the predicted one: flat under the depth rows
(Depth-muP, CompleteP), climbing under SP and width-only muP. matplotlib's object API, no pyplot.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from scaling.coord.depth import DepthCoordResult

PANELS = (("stream", "mean_abs", "final stream mean |h_t|"),
          ("stream", "mean_abs_delta", "final stream mean |h_t - h_0|"),
          ("block", "mean_abs_delta", "block update mean |d_t - d_0|"))


def plot_depth(result: DepthCoordResult, path: str | Path | None, step: int) -> Figure:
    """Draw the three panels at ``step``; write the figure to ``path`` if given; return it."""
    depths = np.asarray(sorted(set(result.config.depths)), dtype=float)
    fig = Figure(figsize=(11, 3.4), layout="constrained")
    axes: Any = fig.subplots(1, len(PANELS), squeeze=False)[0]
    for ax, (quantity, stat, title) in zip(axes, PANELS):
        for index, row in enumerate(result.config.parameterizations):
            values = [[getattr(r, stat) for r in result.records
                       if (r.parameterization, r.quantity, r.step, r.depth) == (row, quantity, step, d)]
                      for d in depths]
            mean = np.array([np.mean(v) if v else np.nan for v in values])
            low = np.array([np.min(v) if v else np.nan for v in values])
            high = np.array([np.max(v) if v else np.nan for v in values])
            ok = np.isfinite(mean) & (mean > 0)
            if not ok.any():
                continue
            f = result.fit(row, quantity, step, stat)  # type: ignore[arg-type]
            label = f"{row}: s={f.slope:+.2f}" + ("" if f.predicted is None else f" (pred {f.predicted:+.2g})")
            (line,) = ax.plot(depths[ok], mean[ok], marker="o", markersize=3, label=label, color=f"C{index % 10}")
            ax.fill_between(depths[ok], low[ok], high[ok], color=line.get_color(), alpha=0.2, linewidth=0)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("depth (residual units)")
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="best")
    c = result.config
    fig.suptitle(f"depth coordinate check at t = {step}: {c.optimizer} lr {c.lr:g}, base depth {c.base}, "
                 f"{len(c.seeds)} seeds", fontsize=10)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    return fig

"""Drift against the training horizon: SP, our muP, microsoft/mup and u-muP on the MLP, 250 to 4,000 steps.

The headline task (``transfer_mlp``: MLP 40-w-w-10, MNIST-1D 10k, Adam, batch 128, constant LR, loss the
mean of the last 10% of steps' training losses) trained for 250, 1,000, 2,000 and 4,000 steps; its 500-step
sweeps are read from ``transfer_mlp`` (SP, muP) and ``peers`` (microsoft/mup, u-muP) where they exist.
Widths 64, 256 and 1024 (base 64), an integer log2 LR grid around each row's optimum (extended past an
optimum at its edge), one seed from 2,000 steps and two below (the budget: a 4,000-step run at width 1024
is about a minute on one core). The figure: each row's drift ``d log2 lr* / d log2 width`` against the
horizon. Does ours converge to 0, and from which side? Where the widest model fits its training set
(best training loss below ``FLOOR``) the drift is marked as at the floor: training loss cannot place the
optimum there.

    python experiments/horizon.py --quick        # 100 and 400 steps, widths 64 and 256 (~3 min)
    python experiments/horizon.py                # ~80 min on one core
"""

from __future__ import annotations

import math
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

import common
import peers
import transfer_mlp
from scaling.sweep import SweepConfig, log2_grid
from scaling.sweep.analysis import Analysis, Metric, analyze
from scaling.sweep.store import RunRecord, write_csv

NAME = "horizon"
ROWS = ("sp", "mup", "microsoft-mup", "u-mup")
# Each row's 500-step optimum at base width is near the centre of these bounds (transfer_mlp, peers);
# the optimum falls with the horizon (about -1 per 4x steps), so the grid moves with log2(steps / 500).
CENTRE = {"sp": -7.0, "mup": -6.0, "microsoft-mup": -6.0, "u-mup": 0.0}
HALF = 3.0
# A training loss this low at the widest width's best LR means the model has fit its 10k training
# examples: the curve's bottom is a floor several grid points wide, and training loss no longer
# locates the optimum (its quadratic fit is set by the walls). Such a horizon's drift is reported
# with the mark "floor", not read as a measurement.
FLOOR = 0.01


def horizons(mode: common.Mode) -> tuple[int, ...]:
    return {"full": (250, 500, 1000, 2000, 4000), "quick": (100, 400), "smoke": (10, 20)}[mode]


def config(row: str, steps: int, mode: common.Mode) -> SweepConfig:
    """The headline task's settings at ``steps`` steps, one row, its grid moved with the horizon."""
    base = transfer_mlp.config_of(next(s for s in transfer_mlp.SWEEPS if s.name == "adam_sp"), mode, None)
    centre = CENTRE[row] - round(math.log2(steps / 500) / 2)
    step = 2.0 if mode == "smoke" else 1.0
    widths = {"full": (64, 256, 1024), "quick": (64, 256), "smoke": base.widths}[mode]
    seeds = (0,) if steps >= 2000 else base.seeds
    return replace(base, parameterizations=(row,), widths=widths, seeds=seeds, steps=steps,
                   last_k=max(1, steps // 10), log2_lrs=log2_grid(centre - HALF, centre + HALF, step),
                   zero_readout=False)


def existing(out: Path, row: str, steps: int, mode: common.Mode) -> list[RunRecord]:
    """The 500-step runs other experiments made already (the same protocol), at this script's widths."""
    if steps != 500:
        return []
    task = next(t for t in peers.TASKS if t.name == "mlp_adam")
    runs = peers.load_task(task, out.parent / peers.NAME).get(row, [])
    widths = set(config(row, steps, mode).widths)
    return [r for r in runs if r.cell.width in widths and float(r.cell.log2_lr).is_integer()]


def db_of(out: Path, row: str, steps: int) -> Path:
    return out / f"{row}_n{steps}.db"


def run(out: Path, mode: common.Mode, workers: int) -> None:
    for steps in horizons(mode):
        for row in ROWS:
            if existing(out, row, steps, mode):
                continue
            common.sweep(config(row, steps, mode), db_of(out, row, steps), workers, extend=4)


def runs_of(out: Path, row: str, steps: int, mode: common.Mode) -> list[RunRecord]:
    db = db_of(out, row, steps)
    return existing(out, row, steps, mode) or (common.load_runs(db) if db.is_file() else [])


def at_floor(a: Analysis, row: str, width: int) -> bool:
    """Whether ``row``'s seed-mean training loss at ``width`` reaches ``FLOOR`` at some LR of the grid."""
    return any(c.width == width and c.parameterization == row and float(np.nanmin(c.mean)) < FLOOR
               for c in a.curves)


METRICS: dict[Metric, str] = {"train_loss": "training loss", "val_loss": "validation loss"}


def figure(out: Path, drifts: dict[str, dict[str, dict[int, Any]]], floors: dict[str, set[int]],
           mode: common.Mode) -> list[str]:
    """One panel per metric: each row's drift against the horizon; hollow where the optimum is a floor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(9.5, 3.6), layout="constrained", sharey=True)
    for ax, (metric, label) in zip(axes, METRICS.items(), strict=True):
        for i, (row, by_steps) in enumerate(drifts[metric].items()):
            steps = sorted(by_steps)
            d = [by_steps[t] for t in steps]
            ax.errorbar(steps, [x.slope for x in d], fmt="o-", color=f"C{i}", label=row, capsize=3,
                        yerr=[[max(0.0, x.slope - x.low) if math.isfinite(x.low) else 0.0 for x in d],
                              [max(0.0, x.high - x.slope) if math.isfinite(x.high) else 0.0 for x in d]])
            if metric == "train_loss":
                low = [t for t in steps if t in floors.get(row, set())]
                ax.plot(low, [by_steps[t].slope for t in low], "o", ms=9, mfc="white", color=f"C{i}", zorder=3)
        ax.axhspan(-0.1, 0.1, color="green", alpha=0.1, lw=0)
        ax.axhline(0, color="gray", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("training steps")
        ax.set_title(f"optimum of the {label}" + (f"\n(hollow: widest model's loss < {FLOOR}, a floor)"
                                                   if metric == "train_loss" else "\n"), fontsize=9)
    axes[0].set_ylabel("drift d log2 lr* / d log2 width")
    axes[0].legend(fontsize=8)
    fig.suptitle("MLP, MNIST-1D, Adam: drift of the optimal LR against the horizon", fontsize=10)
    ws = config("sp", horizons(mode)[0], mode).widths
    return common.save_figure(fig, out, f"horizon_mlp_mnist1d_adam_{'-'.join(ROWS)}_w{ws[0]}-{ws[-1]}"
                                        f"_n{horizons(mode)[0]}-{horizons(mode)[-1]}")


def plot(out: Path, mode: common.Mode) -> dict[str, Any]:
    summary: dict[str, Any] = common.header(NAME, mode)
    summary.update({"rows": ",".join(ROWS), "horizons": ",".join(map(str, horizons(mode))), "floor": FLOOR})
    drifts: dict[str, dict[str, dict[int, Any]]] = {m: {} for m in METRICS}
    floors: dict[str, set[int]] = {}
    for row in ROWS:
        for steps in horizons(mode):
            runs = runs_of(out, row, steps, mode)
            if not runs:
                continue
            c = config(row, steps, mode)
            k = common.key(row, f"n{steps}")
            summary[f"{k}_seeds"] = len(c.seeds)
            for metric in METRICS:
                a = analyze(runs, metric, reference_width=c.base_width)
                d = a.drift(row)
                drifts[metric].setdefault(row, {})[steps] = d
                m = k if metric == "train_loss" else f"{k}_val"
                widest = a.at(row, max(c.widths))
                summary.update({f"{m}_drift": d.slope, f"{m}_drift_lo": d.low, f"{m}_drift_hi": d.high,
                                f"{m}_drift_edges": d.edges, f"{m}_regret_max_width": widest.regret,
                                f"{m}_best_loss_max_width": widest.optimum.loss})
                if metric == "train_loss":
                    summary[f"{k}_floor"] = at_floor(a, row, max(c.widths))
                    if summary[f"{k}_floor"]:
                        floors.setdefault(row, set()).add(steps)
            write_csv(runs, out / f"{row}_n{steps}_runs.csv")
    figures = figure(out, drifts, floors, mode) if drifts["train_loss"] else []
    summary["figures"] = ",".join(figures)
    common.prune_figures(out, figures)
    common.write_config(out, {f"{r}_n{t}": config(r, t, mode).to_dict() for r in ROWS for t in horizons(mode)})
    common.write_summary(out, summary)
    print(f"\nwrote {', '.join(figures)}, summary.json to {out}")
    return summary


def main(argv: list[str] | None = None) -> int:
    args = common.parser(__doc__ or "").parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    if not args.plot_only:
        run(out, mode, args.workers)
    plot(out, mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())

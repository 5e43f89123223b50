"""The original question: "How does layer width affect the optimal learning rate in PyTorch?"

It was asked about small Adam MLPs with hidden width 32 vs 256 (10-w-2, model ``question``) and a
10-64-16-2 network trained with ``ReduceLROnPlateau`` (model ``funnel``: hidden widths w and w/4,
schedule ``plateau``), on random 10-d inputs with 2 classes (dataset ``toy``: Gaussian inputs labelled
by a fixed random teacher network). We answer it on that toy data and on MNIST-1D (the same networks
with ``in_dim=40, out_dim=10``), across widths scaled up from the asked ones (``question`` 32..1024 with
base 32; ``funnel`` 64..1024 with base 64: the asked networks are the base models, and the package
scales only up from a base), under SP (PyTorch's defaults) and muP, with Adam.

Per task and parameterization the summary gives the optimal LR at the two widths of the question
(32 and 256; for the funnel 64 and 512, the same 8x) and their ratio, the drift exponent, and the
largest LR that still trains, to test the folklore "wider layers tolerate larger learning rates":

- ``max_lr``: the largest grid LR at or above the optimum such that every grid LR from the optimum up to
  it has a seed-mean loss at most halfway between the best loss and the loss of the best constant
  predictor (the entropy of the training labels), i.e. still learns at least half of what the best LR
  learns. ``max_nondiverged_lr``: the largest grid LR at which no seed diverged.

    python experiments/transfer_question.py --quick    # ~1-2 min
    python experiments/transfer_question.py            # ~10 min on 2 cores
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import common
import keys
from scaling.data import load_dataset
from scaling.sweep import SweepConfig, log2_grid
from scaling.sweep.analysis import Analysis, Curve, analyze
from scaling.sweep.store import write_csv

NAME = "transfer_question"


@dataclass(frozen=True)
class Task:
    name: str
    model: str
    dataset: str
    widths: tuple[int, ...]
    base_width: int
    small: int  # the widths the question compares
    large: int
    batch_size: int
    schedule: str = "none"
    dataset_kwargs: dict[str, Any] = field(default_factory=dict)
    model_kwargs: dict[str, Any] = field(default_factory=dict)


MNIST = {"num_samples": 10_000}
MNIST_SHAPE = {"in_dim": 40, "out_dim": 10}
TASKS = (
    Task("question_toy", "question", "toy", (32, 64, 128, 256, 512, 1024), 32, 32, 256, 64),
    Task("question_mnist1d", "question", "mnist1d", (32, 64, 128, 256, 512, 1024), 32, 32, 256, 128,
         dataset_kwargs=MNIST, model_kwargs=MNIST_SHAPE),
    Task("funnel_toy", "funnel", "toy", (64, 128, 256, 512, 1024), 64, 64, 512, 64, schedule="plateau"),
    Task("funnel_mnist1d", "funnel", "mnist1d", (64, 128, 256, 512, 1024), 64, 64, 512, 128, schedule="plateau",
         dataset_kwargs=MNIST, model_kwargs=MNIST_SHAPE),
)


def config_of(task: Task, mode: common.Mode) -> SweepConfig:
    full = SweepConfig(
        model=task.model, dataset=task.dataset, parameterizations=("sp", "mup"), optimizers=("adam",),
        widths=task.widths, base_width=task.base_width, log2_lrs=log2_grid(-14, 0, 0.5), seeds=(0, 1, 2),
        steps=500, batch_size=task.batch_size, schedule=task.schedule,  # type: ignore[arg-type]
        last_k=50, dataset_kwargs=task.dataset_kwargs, model_kwargs=task.model_kwargs)
    if mode == "quick":
        widths = tuple(w for w in task.widths if task.base_width <= w <= task.large)
        return replace(full, widths=widths, log2_lrs=log2_grid(-14, 0, 1.0), seeds=(0,), steps=200, last_k=20)
    if mode == "smoke":
        return replace(full, widths=(task.base_width, 2 * task.base_width), log2_lrs=(-10.0, -7.0, -4.0), seeds=(0,),
                       steps=20, last_k=5, dataset_kwargs={**task.dataset_kwargs, "num_samples": 1000}
                       if task.dataset == "mnist1d" else task.dataset_kwargs)
    return full


def chance_loss(config: SweepConfig) -> float:
    """The loss of the best constant predictor: the entropy of the training labels (nats)."""
    y = load_dataset(config.dataset_name, **config.dataset_kwargs).y_train
    p = torch.bincount(y).double() / len(y)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def max_lr(curve: Curve, chance: float) -> tuple[float, float, bool]:
    """(max usable log2 LR, max non-diverged log2 LR, usable one at the grid's top); see the module doc."""
    x, mean = curve.log2_lrs, curve.mean
    finite = np.isfinite(mean)
    if not finite.any():
        return math.nan, math.nan, False
    i = int(np.argmin(np.where(finite, mean, np.inf)))
    threshold = mean[i] + 0.5 * (chance - mean[i])
    j = i
    while j + 1 < len(x) and np.isfinite(mean[j + 1]) and mean[j + 1] <= threshold:
        j += 1
    ok = ~np.isinf(curve.losses).any(axis=0) & ~np.isnan(mean)
    nondiverged = float(x[ok].max()) if ok.any() else math.nan
    return float(x[j]), nondiverged, j == len(x) - 1


def slope(widths: list[int], ys: list[float]) -> float:
    w, y = np.log2(np.array(widths, float)), np.array(ys, float)
    ok = np.isfinite(y)
    return float(np.polyfit(w[ok], y[ok], 1)[0]) if ok.sum() >= 2 else math.nan


def summarize(task: Task, config: SweepConfig, analysis: Analysis, chance: float) -> tuple[dict[str, Any],
                                                                                          dict[str, Any]]:
    s: dict[str, Any] = {
        f"{task.name}_model": task.model, f"{task.name}_dataset": task.dataset,
        f"{task.name}_schedule": task.schedule, f"{task.name}_widths": ",".join(map(str, config.widths)),
        f"{task.name}_base_width": config.base_width, f"{task.name}_small_width": task.small,
        f"{task.name}_large_width": task.large, f"{task.name}_steps": config.steps,
        f"{task.name}_batch_size": config.batch_size, f"{task.name}_seeds": len(config.seeds),
        f"{task.name}_chance_loss": chance,
    }
    curves: dict[str, Any] = {}
    for p in ("sp", "mup"):
        prefix = f"{task.name}_{p}"
        s.update(common.flat_transfer(prefix, analysis, p, "adam"))
        maxes, widths = [], []
        for c in (c for c in analysis.curves if c.parameterization == p):
            usable, nondiverged, top = max_lr(c, chance)
            s[f"{prefix}_w{c.width}_max_log2_lr"] = usable
            s[f"{prefix}_w{c.width}_max_lr"] = 2.0**usable
            s[f"{prefix}_w{c.width}_max_lr_at_grid_top"] = top
            s[f"{prefix}_w{c.width}_max_nondiverged_log2_lr"] = nondiverged
            maxes.append(usable)
            widths.append(c.width)
        curves[p] = {"widths": widths, "max_log2_lr": maxes}
        s[f"{prefix}_max_lr_drift"] = slope(widths, maxes)
        small, large = (f"{prefix}_w{w}_" for w in (task.small, task.large))
        if small + "log2_lr" in s and large + "log2_lr" in s:
            s[f"{prefix}_lr_small"], s[f"{prefix}_lr_large"] = s[small + "lr"], s[large + "lr"]
            s[f"{prefix}_lr_ratio"] = s[large + "lr"] / s[small + "lr"]
            s[f"{prefix}_max_lr_ratio"] = s[large + "max_lr"] / s[small + "max_lr"]
            s[f"{prefix}_optimum_rises_with_width"] = s[f"{prefix}_lr_ratio"] > 1
            s[f"{prefix}_wider_tolerates_larger_lr"] = s[f"{prefix}_max_lr_ratio"] > 1
    if f"{task.name}_sp_lr_ratio" in s and f"{task.name}_mup_lr_ratio" in s:
        s[f"{task.name}_answer"] = answer(task, s)
    return s, curves


def answer(task: Task, s: dict[str, Any]) -> str:
    t = task.name
    what = {"question": "10-w-2 MLP", "funnel": "w-w/4 funnel MLP with ReduceLROnPlateau"}[task.model]
    parts = []
    for p, label in (("sp", "SP (PyTorch default)"), ("mup", "muP")):
        parts.append(
            f"{label}: optimal Adam LR {s[f'{t}_{p}_lr_small']:.2g} at width {task.small}, "
            f"{s[f'{t}_{p}_lr_large']:.2g} at {task.large} (x{s[f'{t}_{p}_lr_ratio']:.2f}; "
            f"drift {s[f'{t}_{p}_drift']:+.2f}); largest usable LR x{s[f'{t}_{p}_max_lr_ratio']:.2f}")
    tolerate = "holds" if s[f"{t}_sp_wider_tolerates_larger_lr"] else "does not hold"
    return (f"{what} on {task.dataset}. " + "; ".join(parts)
            + f". 'Wider layers tolerate larger learning rates' {tolerate} under SP with Adam.")


def plot_lrs(out: Path, results: dict[str, tuple[Analysis, dict[str, Any], SweepConfig]]
             ) -> list[str]:
    """Optimal (solid) and largest usable (dashed) log2 LR against width, SP and muP, one panel per task."""
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6), squeeze=False, layout="constrained")
    for ax, (name, (analysis, curves, config)) in zip(axes[0], results.items()):
        for p, colour in (("sp", "tab:blue"), ("mup", "tab:orange")):
            rows = sorted((r for r in analysis.widths if r.parameterization == p), key=lambda r: r.width)
            d = analysis.drift(p)
            ax.plot([r.width for r in rows], [r.optimum.log2_lr for r in rows], "o-", color=colour,
                    label=f"{p} optimum ({d.slope:+.2f})")
            ax.plot(curves[p]["widths"], curves[p]["max_log2_lr"], "s--", color=colour, mfc="none",
                    label=f"{p} largest usable")
        ax.set_xscale("log", base=2)
        ax.set_title(f"{name} ({config.schedule} schedule)" if config.schedule != "none" else name, fontsize=9)
        ax.set_xlabel("width")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("log2 Adam learning rate")
    c = next(iter(results.values()))[2]
    stem = f"question_lr_vs_width_adam_sp-mup_s{len(c.seeds)}_n{c.steps}"
    return common.save_figure(fig, out, stem)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__ or "")
    p.add_argument("--tasks", nargs="+", choices=[t.name for t in TASKS], default=[t.name for t in TASKS])
    args = p.parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    tasks = [t for t in TASKS if t.name in args.tasks]
    if not args.plot_only:
        for task in tasks:
            common.sweep(config_of(task, mode), out / f"{task.name}.db", args.workers)
    summary: dict[str, Any] = common.header(NAME, mode)
    configs, details, figures = {}, {}, []
    results: dict[str, tuple[Analysis, dict[str, Any], SweepConfig]] = {}
    asked: dict[str, bool] = {}  # task -> whether its grid holds both of the question's widths
    for task in TASKS:
        db = out / f"{task.name}.db"
        if not db.is_file():
            continue
        config = config_of(task, mode)
        runs = common.load_runs(db)
        analysis = analyze(runs, reference_width=config.base_width)
        s, curves = summarize(task, config, analysis, chance_loss(config))
        summary.update(s)
        asked[task.name] = task.small in config.widths and task.large in config.widths
        results[task.name] = (analysis, curves, config)
        configs[task.name] = config.to_dict()
        details[task.name] = {**common.nested_transfer(analysis), "max_lr": curves}
        write_csv(runs, out / f"{task.name}_runs.csv")
        common.print_table(analysis, out, f"{task.name}_table")
        figures += common.save_transfer(analysis, out, common.figure_stem(config), common.title_of(config, task.name),
                                        logy=task.dataset == "toy")  # toy losses reach ~0.01: a log axis
        if f"{task.name}_answer" in summary:
            print(f"\n{summary[f'{task.name}_answer']}")
    if results:
        figures += plot_lrs(out, results)
    summary["figures"] = ",".join(figures)
    common.prune_figures(out, figures)
    common.write_config(out, configs)
    common.write_json(out / "details.json", details)
    keys.require(summary, keys.transfer_question_schema(asked), NAME)
    common.write_summary(out, summary)
    print(f"\nwrote {', '.join(figures)}, summary.json, details.json, config.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

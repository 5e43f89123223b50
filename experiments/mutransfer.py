"""muTransfer as a workflow, measured: ``scaling tune`` at the base width, ``scaling train`` at the widest,
against a direct SP sweep at the widest width, on three tasks.

The protocol, fixed before any of these runs (the same on every task):

- the direct route: the committed SP sweep at the widest width (every LR of its grid, 2 seeds): its best
  seed-mean loss, its FLOPs and its training seconds (read from its database: ``transfer_mlp``'s
  ``adam_sp.db``, ``transfer_gpt``'s ``gpt_sp.db``, ``confirm``'s ``cnn_sp.db``);
- the muTransfer route: :func:`scaling.sweep.tune.tune` under the ``mup`` row with Adam at the sweep's
  base width and settings, the default search (the base LR and seven per-role constants, step 0.5,
  three passes, the best point run kept), tuning seeds 100 and 101 (not the evaluation seeds), and a FLOP
  budget of a tenth of the direct sweep minus what the target costs; then the target trained once per
  evaluation seed (0 and 1) at the widest width with the constants found
  (:func:`scaling.sweep.wide.train_wide`, what ``scaling train --constants`` runs), recorded in the
  tuning's database beside its runs;
- reported: the route's seed-mean loss at the widest width over the direct sweep's best (target: at
  most 2% above it), and the route's FLOPs (tuning + the target's runs) over the direct sweep's
  (target: at most 1/10); wall time beside it (the direct sweep's training seconds as its database
  recorded them, the route's likewise: its runs' training seconds, a batched run's share of its batch).

The tasks: the MLP on MNIST-1D (64 -> 1024) and the byte-level GPT (32 -> 256), on which the tuning
method was developed (``tune_base.py``), and the 1-D CNN on MNIST-1D (16 -> 128), which the method never
saw. Figure: loss at the widest width against training FLOPs spent, both routes.

    python experiments/mutransfer.py           # -> experiments/results/mutransfer/ (--quick: out/quick/, the
                                               #    same tasks against the committed direct sweeps)
    python experiments/mutransfer.py --smoke   # the 10-w-2 network on toy data, in seconds (tests)
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

import common
from scaling.sweep import SweepConfig, read_config
from scaling.sweep.engine import cell
from scaling.sweep.store import RunRecord, open_existing
from scaling.sweep.tune import Search, TuneResult, tune
from scaling.sweep.wide import train_wide

NAME = "mutransfer"
BUDGET_SHARE = 0.1  # of the direct sweep's FLOPs, for the whole route
GAP_TARGET = 0.02
TUNING_SEEDS = (100, 101)
EVAL_SEEDS = (0, 1)


@dataclass(frozen=True)
class Route:
    """One task: the direct sweep's database and the row of it at the widest width."""

    name: str
    title: str
    direct_db: Path  # relative to the results root
    seen: bool  # whether the tuning method was developed on it


TASKS = (
    Route("mlp", "MLP, MNIST-1D, 64 -> 1024", Path("transfer_mlp/adam_sp.db"), True),
    Route("gpt", "GPT, bytes, 32 -> 256", Path("transfer_gpt/gpt_sp.db"), True),
    Route("cnn", "1-D CNN, MNIST-1D, 16 -> 128 (not seen)", Path("confirm/cnn_sp.db"), False),
)


def smoke_direct(out: Path) -> Path:
    """For ``--smoke``: a tiny direct SP sweep of the 10-w-2 network to stand in for the committed ones."""
    db = out / "smoke_sp.db"
    config = SweepConfig(model="question", widths=(32, 128), base_width=32, steps=30, batch_size=32, last_k=5,
                         parameterizations=("sp",), log2_lrs=(-8, -6, -4, -2), seeds=EVAL_SEEDS)
    common.sweep(config, db, workers=1)
    return db


def direct(db: Path) -> tuple[SweepConfig, list[RunRecord], int]:
    """The direct sweep's settings, its runs at the widest width, and that width."""
    with open_existing(db) as store:
        config, runs = read_config(store), store.runs()
    widest = max(r.cell.width for r in runs)
    return config, [r for r in runs if r.cell.width == widest and r.cell.seed in EVAL_SEEDS], widest


def best_mean(runs: list[RunRecord]) -> tuple[float, float]:
    """The lowest seed-mean train loss over the LRs of ``runs`` (a diverged run: +inf), and its log2 LR."""
    by_lr: dict[float, list[float]] = {}
    for r in runs:
        by_lr.setdefault(r.cell.log2_lr, []).append(math.inf if r.diverged else r.train_loss)
    means = {x: float(np.mean(v)) for x, v in by_lr.items()}
    x = min(means, key=lambda k: means[k])
    return means[x], x


def run_route(route: Route, direct_db: Path, out: Path, smoke: bool, share: float) -> dict[str, Any]:
    config, wide_runs, widest = direct(direct_db)
    direct_flops = sum(r.flops for r in wide_runs)
    target_flops = len(EVAL_SEEDS) * max(r.flops for r in wide_runs)  # what the target's runs will cost
    budget = share * direct_flops - target_flops
    tuning = replace(config, parameterizations=("mup",), optimizers=("adam",), widths=(config.base_width,),
                     seeds=(TUNING_SEEDS[0],) if smoke else TUNING_SEEDS)
    db = out / f"{route.name}_tune.db"
    search = Search(budget_flops=budget, passes=1) if smoke else Search(budget_flops=budget)
    found: TuneResult = tune(tuning, db, search=search, workers=1 if smoke else 2, progress=False)
    tune_wall = found.train_seconds  # as the database recorded them: a rerun that trains nothing costs the same
    found.save(out / f"{route.name}_constants.json")
    targets = []
    for seed in EVAL_SEEDS:
        c = cell(tuning, "mup", "adam", widest, found.log2_lr, seed, found.scales)
        targets.append(train_wide(tuning, c, db=db))
    target_wall = sum(r.seconds for r in targets)
    direct_best, direct_x = best_mean(wide_runs)
    route_loss = math.inf if any(r.diverged for r in targets) else float(np.mean([r.train_loss for r in targets]))
    route_flops = found.flops + sum(r.flops for r in targets)
    k = route.name
    return {
        f"{k}_widest": widest, f"{k}_base_width": config.base_width, f"{k}_seen": route.seen,
        f"{k}_direct_best_loss": direct_best, f"{k}_direct_best_log2_lr": direct_x,
        f"{k}_direct_runs": len(wide_runs), f"{k}_direct_flops": direct_flops,
        f"{k}_direct_seconds": sum(r.seconds for r in wide_runs),
        f"{k}_route_loss": route_loss, f"{k}_gap": route_loss / direct_best - 1,
        f"{k}_route_flops": route_flops, f"{k}_cost_ratio": route_flops / direct_flops,
        f"{k}_tuning_flops": found.flops, f"{k}_tuning_runs": found.runs, f"{k}_tuning_stopped": found.stopped,
        f"{k}_tuning_budget_flops": budget, f"{k}_tuned_log2_lr": found.log2_lr,
        f"{k}_tuning_loss": found.loss, f"{k}_tuning_wall_seconds": tune_wall,
        f"{k}_target_wall_seconds": target_wall, f"{k}_route_wall_seconds": tune_wall + target_wall,
        f"{k}_wall_ratio": (tune_wall + target_wall) / sum(r.seconds for r in wide_runs),
        f"{k}_gap_met": route_loss <= (1 + GAP_TARGET) * direct_best,
        f"{k}_cost_met": route_flops <= share * direct_flops * (1 + 1e-9),
        f"{k}_scales": str(found.scales),
    }


def plot(summary: dict[str, Any], curves: dict[str, list[tuple[float, float]]], out: Path,
         routes: list[Route], share: float) -> list[str]:
    """Loss at the widest width against FLOPs: the direct sweep's best so far, LR by LR, and the route."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(1, len(routes), figsize=(4.2 * len(routes), 3.4), squeeze=False)
    for ax, route in zip(axes[0], routes):
        k = route.name
        xs, ys = zip(*curves[k])
        ax.step(xs, ys, where="post", color="tab:blue", label="direct SP sweep (best so far)")
        best = summary[f"{k}_direct_best_loss"]
        ax.axhspan(best, best * (1 + GAP_TARGET), color="tab:blue", alpha=0.12, label="within 2% of its best")
        ax.axvline(share * summary[f"{k}_direct_flops"], color="grey", ls=":", lw=1,
                   label=f"{share:g} of its FLOPs")
        ax.plot([summary[f"{k}_route_flops"]], [summary[f"{k}_route_loss"]], "o", color="tab:red",
                label="muTransfer: tune at base, train once")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # a span under a decade labels its minor ticks, overlapping
        ax.set_title(f"{route.title}", fontsize=9)
        ax.set_xlabel("training FLOPs spent")
        ax.set_ylabel(f"train loss at width {summary[f'{k}_widest']}")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return common.save_figure(fig, out, f"mutransfer_{'-'.join(r.name for r in routes)}")


def direct_curve(db: Path) -> list[tuple[float, float]]:
    """Cumulative FLOPs and best-so-far seed-mean loss, the direct sweep's LRs taken in ascending order."""
    _, runs, _ = direct(db)
    out, spent, best = [], 0.0, math.inf
    for x in sorted({r.cell.log2_lr for r in runs}):
        at = [r for r in runs if r.cell.log2_lr == x]
        spent += sum(r.flops for r in at)
        best = min(best, math.inf if any(r.diverged for r in at) else float(np.mean([r.train_loss for r in at])))
        out.append((spent, best))
    return out


def main(argv: list[str] | None = None) -> int:
    args = common.parser(__doc__ or "").parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    smoke = mode == "smoke"
    routes = [Route("smoke", "10-w-2, toy data (smoke)", Path("smoke_sp.db"), False)] if smoke else list(TASKS)
    share = 0.5 if smoke else BUDGET_SHARE  # the smoke sweep's grid is too small for a tenth
    summary: dict[str, Any] = {**common.header(NAME, mode), "budget_share": share, "gap_target": GAP_TARGET}
    curves = {}
    for route in routes:
        db = smoke_direct(out) if smoke else common.RESULTS / route.direct_db
        if not db.is_file():
            print(f"{db} is missing: run the experiment that makes it first", file=sys.stderr)
            return 2
        if args.plot_only:
            old = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
            summary.update({k: v for k, v in old.items() if k.startswith(f"{route.name}_")})
        else:
            print(f"\n-- {route.title}", flush=True)
            summary.update(run_route(route, db, out, smoke, share))
        curves[route.name] = direct_curve(db)
        k = route.name
        if f"{k}_gap" in summary:
            print(f"{route.title}: route {summary[f'{k}_route_loss']:.4f} vs direct best "
                  f"{summary[f'{k}_direct_best_loss']:.4f} ({100 * summary[f'{k}_gap']:+.1f}%), FLOPs "
                  f"{100 * summary[f'{k}_cost_ratio']:.1f}% of the direct sweep, wall "
                  f"{100 * summary[f'{k}_wall_ratio']:.1f}%", flush=True)
    summary["figures"] = ",".join(plot(summary, curves, out, routes, share))
    common.write_summary(out, summary)
    print(f"wrote {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Depth: tune a shallow model, use a deep one. SP, width-only muP, Depth-muP and CompleteP.

At a fixed width the residual MLP (``resmlp-depth``: width 128, MNIST-1D, Adam, 500 steps, batch 128)
and the pre-LN GPT (``gpt-depth``: width 64, the byte corpus) are swept over the base LR at depths
(residual blocks) from the base depth 2 up, rows ``sp`` (at a fixed width also width-only muP: both are
PyTorch's model), ``depth-mup`` (branches x m_L^-1/2, TP-VI) and ``completep`` (m_L^-1, Dey et al. 2025).
Per row: the drift ``d log2 lr* / d log2 depth`` with its seed-bootstrap interval, the regret at the
deepest (the loss at the base depth's optimal LR over the best there) and the best loss at the deepest,
on the train loss and again on the held-out loss (keys ``{task}_val_{row}_*``). Beside them the depth
coordinate check of both models (:func:`scaling.coord.depth.depth_coord_check`): the final residual
stream's slope in log2 depth.
The task ``wd`` grows width and depth together (``resmlp-width-depth``: width 32 k, 2 k blocks, k = 1, 2,
4), with width-only muP as a row of its own: the regret at k = 4 is against a direct sweep there.
The task ``long`` repeats SP and CompleteP at depths 2 and 16 over twice the horizon (1000 steps).

    python experiments/transfer_depth.py --smoke     # seconds (tests)
    python experiments/transfer_depth.py --quick     # a few minutes
    python experiments/transfer_depth.py --tasks resmlp gpt wd long   # all four (the default: resmlp)
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import replace
from typing import Any

import common
from scaling.coord import reference_batch
from scaling.coord.depth import DepthCoordConfig, depth_coord_check
from scaling.models import REGISTRY, gpt_at_depth, resmlp_at_depth
from scaling.sweep import SweepConfig, log2_grid
from scaling.sweep.analysis import analyze
from scaling.sweep.store import write_csv

NAME = "transfer_depth"
# At a fixed width muP is PyTorch's model bit for bit (tests/test_depth.py), so SP stands for both width-only rows.
ROWS = ("sp", "depth-mup", "completep")
# Width and depth together: width-only muP is a row of its own there.
ROWS_WD = ("sp", "mup", "depth-mup", "completep")
TASKS = ("resmlp", "gpt", "wd", "long")
TITLES = {"resmlp": "residual MLP (width 128, MNIST-1D)", "gpt": "pre-LN GPT (width 64, byte corpus)",
          "wd": "residual MLP, width 32k and 2k blocks (MNIST-1D)",
          "long": "residual MLP (width 128), 1000 steps"}
COORD_WIDTH = {"resmlp": 128, "gpt": 64}


def config(mode: common.Mode, task: str) -> SweepConfig:
    """The LR x depth x seed sweep of one task; ``widths`` are depths (the builder's first argument)."""
    if task == "wd":  # ``widths`` are the factor k of both width (32 k) and depth (2 k blocks)
        base = SweepConfig(model="resmlp-width-depth", widths=(1, 2, 4), base_width=1, steps=500, batch_size=128,
                           log2_lrs=log2_grid(-14, -5), parameterizations=ROWS_WD, seeds=(0, 1))
    elif task == "long":  # the loss gap to SP at depth 16 over twice the horizon (an ablation: 1 seed)
        base = SweepConfig(model="resmlp-depth", widths=(2, 16), base_width=2, steps=1000, batch_size=128,
                           log2_lrs=log2_grid(-13, -7), parameterizations=("sp", "completep"), seeds=(0,))
    elif task == "resmlp":
        base = SweepConfig(model="resmlp-depth", widths=(2, 4, 8, 16), base_width=2, steps=500, batch_size=128,
                           log2_lrs=log2_grid(-13, -4), parameterizations=ROWS, seeds=(0, 1))
    else:
        base = SweepConfig(model="gpt-depth", widths=(2, 4, 8, 16), base_width=2, steps=300, batch_size=16,
                           log2_lrs=log2_grid(-12, -4), parameterizations=ROWS, seeds=(0,),
                           dataset_kwargs={"block_size": 64}, model_kwargs={"block_size": 64})
    if mode == "quick":
        return replace(base, widths=base.widths[:3], steps=base.steps // 2, last_k=25, seeds=(0,))
    if mode == "smoke":
        small = {"base_width": 8} if task == "wd" else {"fixed_width": 16}
        return replace(base, widths=base.widths[:2], steps=10, last_k=5, seeds=(0,), log2_lrs=log2_grid(-10, -6, 2),
                       model_kwargs={**base.model_kwargs, **small})
    return base


def model_width(cfg: SweepConfig) -> int:
    """The width of the task's model: its fixed width, or for ``wd`` its width at ``k = 1`` (the builder's
    default unless the config's model options set it), for the tables' titles."""
    params = inspect.signature(REGISTRY[cfg.model].build).parameters
    name = "base_width" if "base_width" in params else "fixed_width"
    return int(cfg.model_kwargs.get(name, params[name].default))


def coord(mode: common.Mode, task: str) -> Any:
    """The depth coordinate check of one task at its sweep's width."""
    depths = {"full": (2, 4, 8, 16, 32), "quick": (2, 4, 8, 16), "smoke": (2, 4)}[mode]
    width = 16 if mode == "smoke" else COORD_WIDTH[task]
    cfg = DepthCoordConfig(depths=depths, steps=10 if mode != "smoke" else 2,
                           seeds=(0, 1, 2) if mode == "full" else (0,))
    builder = (lambda d: resmlp_at_depth(d, fixed_width=width)) if task == "resmlp" else (
        lambda d: gpt_at_depth(d, fixed_width=width, block_size=16, n_heads=4 if width >= 64 else 2))
    return depth_coord_check(builder, reference_batch(task), cfg, progress=True)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__ or "")
    p.add_argument("--tasks", nargs="+", default=["resmlp"], choices=TASKS, help="the tasks to run (default resmlp)")
    args = p.parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    if not args.plot_only:
        for task in args.tasks:
            common.sweep(config(mode, task), out / f"{task}.db", args.workers, extend=4)
            if task in COORD_WIDTH:
                coord(mode, task).to_json(out / f"coord_{task}.json")
    summary: dict[str, Any] = common.header(NAME, mode)
    figures: list[str] = []
    configs: dict[str, Any] = {}
    for task in TASKS:
        db = out / f"{task}.db"
        if not db.is_file():
            continue
        cfg = config(mode, task)
        configs[task] = common.read_db_config(db).to_dict()
        runs = common.load_runs(db)
        analysis = analyze(runs, reference_width=cfg.base_width)
        rows = cfg.parameterizations
        summary[common.key(task, "model_width")] = model_width(cfg)
        for row in rows:
            summary.update(common.flat_transfer(common.key(task, row), analysis, row, None, runs))
        # The same analysis on the held-out loss: at depth SP's lower train loss is partly memorization.
        held_out = analyze(runs, metric="val_loss", reference_width=cfg.base_width)
        for row in rows:
            summary.update(common.flat_transfer(common.key(task, "val", row), held_out, row))
        for prefix in (task, common.key(task, "val")):
            summary.update(common.gaps_to_sp(summary, prefix, rows))
        write_csv(runs, out / f"{task}_runs.csv")
        common.print_table(analysis, out, f"{task}_optima")
        figures += common.save_transfer(analysis, out, f"transfer_depth_{task}",
                                        f"{TITLES[task]}: loss vs base LR per depth",
                                        axis="k" if task == "wd" else "depth")
        coord_file = out / f"coord_{task}.json"
        if coord_file.is_file():
            from scaling.coord.depth import DepthCoordResult

            result = DepthCoordResult.from_json(coord_file)
            (out / f"coord_{task}.txt").write_text(result.table() + "\n")
            fig = result.plot(step=result.config.steps)
            figures += common.save_figure(fig, out, f"coord_depth_{task}")
            for f in result.fits:
                if f.step == result.config.steps:
                    summary[common.key(task, "coord", f.parameterization, f.quantity, f.stat, "slope")] = f.slope
    summary["figures"] = ",".join(figures)
    common.write_summary(out, summary)
    common.write_config(out, configs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

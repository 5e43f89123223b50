"""Depth: tune a shallow model, use a deep one. SP, width-only muP, Depth-muP and CompleteP.

At a fixed width the residual MLP (``resmlp-depth``: width 128, MNIST-1D, Adam, 500 steps, batch 128)
and the pre-LN GPT (``gpt-depth``: width 64, the byte corpus) are swept over the base LR at depths
(residual blocks) from the base depth 2 up, rows ``sp``, ``mup`` (width-only: at a fixed width both
are PyTorch's model, a control), ``depth-mup`` (branches x m_L^-1/2, TP-VI) and ``completep``
(m_L^-1, Dey et al. 2025). Per row: the drift ``d log2 lr* / d log2 depth`` with its seed-bootstrap
interval, the regret at the deepest (the loss at the base depth's optimal LR over the best there) and
the best loss at the deepest. Beside them the depth coordinate check of both models
(:func:`scaling.coord.depth.depth_coord_check`): the final residual stream's slope in log2 depth.

    python experiments/transfer_depth.py --smoke     # seconds (tests)
    python experiments/transfer_depth.py --quick     # a few minutes
    python experiments/transfer_depth.py             # resmlp depths 2..16 (2 seeds); --tasks gpt adds the GPT
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import common
from scaling.coord import reference_batch
from scaling.coord.depth import DepthCoordConfig, depth_coord_check
from scaling.models import gpt_at_depth, resmlp_at_depth
from scaling.sweep import SweepConfig, log2_grid
from scaling.sweep.analysis import analyze
from scaling.sweep.store import write_csv

NAME = "transfer_depth"
# At a fixed width muP is PyTorch's model bit for bit (tests/test_depth.py), so SP stands for both width-only rows.
ROWS = ("sp", "depth-mup", "completep")
TASKS = ("resmlp", "gpt")
TITLES = {"resmlp": "residual MLP (width 128, MNIST-1D)", "gpt": "pre-LN GPT (width 64, byte corpus)"}
COORD_WIDTH = {"resmlp": 128, "gpt": 64}


def config(mode: common.Mode, task: str) -> SweepConfig:
    """The LR x depth x seed sweep of one task; ``widths`` are depths (the builder's first argument)."""
    if task == "resmlp":
        base = SweepConfig(model="resmlp-depth", widths=(2, 4, 8, 16), base_width=2, steps=500, batch_size=128,
                           log2_lrs=log2_grid(-13, -4), parameterizations=ROWS, seeds=(0, 1))
    else:
        base = SweepConfig(model="gpt-depth", widths=(2, 4, 8), base_width=2, steps=300, batch_size=16,
                           log2_lrs=log2_grid(-12, -4), parameterizations=ROWS, seeds=(0, 1),
                           dataset_kwargs={"block_size": 64}, model_kwargs={"block_size": 64})
    if mode == "quick":
        return replace(base, widths=base.widths[:3], steps=base.steps // 2, last_k=25, seeds=(0,))
    if mode == "smoke":
        return replace(base, widths=(2, 4), steps=10, last_k=5, seeds=(0,), log2_lrs=log2_grid(-10, -6, 2),
                       model_kwargs={**base.model_kwargs, "fixed_width": 16})
    return base


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
            result = coord(mode, task)
            result.to_json(out / f"coord_{task}.json")
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
        for row in ROWS:
            summary.update(common.flat_transfer(common.key(task, row), analysis, row, None, runs))
        sp = summary.get(common.key(task, "sp", "best_loss_max_width"))  # width-only muP = SP here
        for row in ROWS:
            best = summary.get(common.key(task, row, "best_loss_max_width"))
            if sp and best is not None:
                summary[common.key(task, row, "gap_to_sp")] = best / sp - 1
        write_csv(runs, out / f"{task}_runs.csv")
        common.print_table(analysis, out, f"{task}_optima")
        figures += common.save_transfer(analysis, out, f"transfer_depth_{task}",
                                        f"{TITLES[task]}: LR vs depth (x axis: depth)")
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

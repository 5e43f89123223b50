"""Transfer with Muon: SP (torch's Muon, its default ``adjust_lr_fn``) against muP's Muon column.

Muon (``torch.optim.Muon``) over the hidden 2-D weights and AdamW over the rest
(``scaling.optim.MuonAdam``). One learning rate is swept: Muon's; the Adam part's base LR is fixed at 1/16
of it (``adam_lr_ratio``; our protocol choice, stated, not tuned). Drift and regret as for Adam
(:mod:`scaling.sweep.analysis`). Two tasks:

- ``mlp``: the MLP 40-w-w-10 on MNIST-1D (``transfer_mlp``'s data, batch and 500 steps), widths 64..512:
  Muon's Newton-Schulz iterations cost ``O(width^3)`` per step, and width 1024 is out of this budget on
  2 cores (~25 min).
- ``gpt``: ``transfer_gpt``'s byte-level GPT (widths 32..256, 300 steps, 2 seeds; muP's readout starts at
  zero as there), Muon over the attention and MLP matrices, AdamW over the embedding, the readout and
  the gains (~35 min).

    python experiments/transfer_muon.py                 # both tasks
    python experiments/transfer_muon.py --tasks gpt
    python experiments/transfer_muon.py --quick
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import common
import transfer_gpt
import transfer_mlp
from scaling.optim import MuonAdam, register_optimizer
from scaling.sweep import SweepConfig, log2_grid
from scaling.sweep.analysis import analyze
from scaling.sweep.store import write_csv

NAME = "transfer_muon"
OPTIMIZER = "muon-adam16"
ADAM_LR_RATIO = 1 / 16
ROWS = ("sp", "mup")
TASKS = ("mlp", "gpt")
TITLES = {"mlp": "MLP, MNIST-1D", "gpt": "GPT, stdlib bytes"}


def register() -> None:
    """The pair with the fixed Adam ratio, under its own name (every sweep worker calls this)."""
    register_optimizer(OPTIMIZER, MuonAdam, "muon", replace=True, adam_lr_ratio=ADAM_LR_RATIO)


register()


def config(mode: common.Mode, row: str, task: str = "mlp") -> SweepConfig:
    """The sweep of ``row`` on ``task``: the task's own protocol with the Muon pair and a grid around 2^-6."""
    step = {"full": 0.5, "quick": 1.0, "smoke": 2.0}[mode]
    half = 2.0 if mode == "smoke" else 3.0
    if task == "gpt":
        sweep = next(s for s in transfer_gpt.SWEEPS if s.name == row)
        base = transfer_gpt.config_of(sweep, mode)
        widths = base.widths
    else:
        base = transfer_mlp.protocol(mode)
        widths = {"full": (64, 128, 256, 512), "quick": (64, 128, 256), "smoke": (32, 64)}[mode]
    return replace(base, parameterizations=(row,), optimizers=(OPTIMIZER,), widths=widths, base_width=widths[0],
                   log2_lrs=log2_grid(-6.0 - half, -6.0 + half, step))


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__ or "")
    p.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS, help="the tasks to run (default both)")
    args = p.parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    if not args.plot_only:
        for task in args.tasks:
            for row in ROWS:
                common.sweep(config(mode, row, task), out / f"{task}_{row}.db", args.workers, setup=register,
                             extend=6)
    summary: dict[str, Any] = common.header(NAME, mode)
    summary.update({"optimizer": OPTIMIZER, "adam_lr_ratio": ADAM_LR_RATIO})
    figures: list[str] = []
    for task in TASKS:  # every task with results, run now or before
        analyses = []
        for row in ROWS:
            db = out / f"{task}_{row}.db"
            if not db.is_file():
                continue
            runs = common.load_runs(db)
            a = analyze(runs, reference_width=config(mode, row, task).base_width)
            analyses.append(a)
            summary.update(common.flat_transfer(common.key(task, row), a, row, OPTIMIZER, runs))
            write_csv(runs, out / f"{task}_{row}_runs.csv")
        if analyses:
            summary[common.key(task, "title")] = TITLES[task]
            both = analyses[0].combine(analyses)
            figures += common.save_transfer(both, out, f"transfer_muon_{task}",
                                            f"{TITLES[task]}, Muon + AdamW (1/16 LR): SP vs muP")
    summary["figures"] = ",".join(figures)
    common.write_summary(out, summary)
    for task in TASKS:
        for row in ROWS:
            k = common.key(task, row)
            if k + "_drift" in summary:
                print(f"{task} {row}: drift {summary[k + '_drift']:+.2f} [{summary[k + '_drift_lo']:+.2f}, "
                      f"{summary[k + '_drift_hi']:+.2f}], regret at widest {summary[k + '_regret_max_width']:.1%}, "
                      f"best loss at widest {summary[k + '_best_loss_max_width']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

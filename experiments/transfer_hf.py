"""A Hugging Face transformers model: muP through scaling.hf on a Llama config, against the model as
transformers builds it.

``hf-llama`` (:func:`scaling.hf.causal_lm`): transformers' ``LlamaForCausalLM`` from a tiny config
(RMSNorm, rotary, grouped-query attention with 2 key-value heads per 4 query heads, SwiGLU, untied
``lm_head``, 2 layers) at ``hidden_size`` 64..512 with the head dimension fixed at 16 (more heads, not
wider ones), on the byte corpus (windows of 64 bytes, batch 16), Adam, 300 steps, 1 seed. Rows:

- ``sp``: the model exactly as transformers builds it (``_init_weights``: N(0, 0.02) at every width), one
  learning rate for every parameter (``init="pytorch"``, under which SP changes nothing);
- ``mup``: TP-V Table 3 relative to that own init (``init="own"``: hidden weights' std x m^-1/2, the
  readout's x m^-1 from the base's 0.02), per-layer Adam learning rates, attention ``1/d_head`` (here
  the head dimension is fixed, so the model's own scale).

Per row: the drift ``d log2 lr* / d log2 width`` with its seed-bootstrap interval, the regret at the
widest (the loss at the base width's optimal LR over the best there) and the best loss at the widest,
on the train loss and on the held-out loss (keys ``llama_val_{row}_*``).

    python experiments/transfer_hf.py --smoke     # seconds (tests)
    python experiments/transfer_hf.py --quick     # a few minutes
    python experiments/transfer_hf.py             # ~1 hour on 2 cores (2 workers)
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import replace
from typing import Any

import common
from scaling.baseline import InitMode
from scaling.errors import InitScalingWarning
from scaling.sweep import SweepConfig, log2_grid
from scaling.sweep.analysis import Metric, analyze
from scaling.sweep.store import write_csv

NAME = "transfer_hf"
# row -> init mode; SP under "pytorch" is the model as built
ROWS: dict[str, InitMode] = {"sp": "pytorch", "mup": "own"}
BLOCK = 64
SEEDS = (0,)  # one seed: ~3 min a run at width 512 on 2 cores; a second would resume the same databases


def config(mode: common.Mode, row: str) -> SweepConfig:
    """The LR x width x seed sweep of one row (each row its own database: the rows differ in init mode)."""
    base = SweepConfig(model="hf-llama", dataset="stdlib-bytes", parameterizations=(row,), optimizers=("adam",),
                       widths=(64, 128, 256, 512), base_width=64, log2_lrs=log2_grid(-12, -4), seeds=SEEDS,
                       steps=300, batch_size=16, last_k=50, dataset_kwargs={"block_size": BLOCK}, init=ROWS[row])
    if mode == "quick":
        return replace(base, widths=(64, 128, 256), steps=150, last_k=25, seeds=(0,))
    if mode == "smoke":
        return replace(base, widths=(32, 64), base_width=32, steps=10, last_k=5, seeds=(0,),
                       log2_lrs=log2_grid(-10, -6, 2))
    return base


def quiet() -> None:
    """SP under init="pytorch" keeps transformers' N(0, 0.02), which the core rightly warns does not scale
    like PyTorch's default: that is the point of this row (run in every worker)."""
    warnings.filterwarnings("ignore", category=InitScalingWarning)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__ or "")
    args = p.parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    quiet()
    if not args.plot_only:
        for row in ROWS:
            common.sweep(config(mode, row), out / f"{row}.db", args.workers, setup=quiet, extend=4)
    summary: dict[str, Any] = common.header(NAME, mode)
    configs: dict[str, Any] = {}
    runs = []
    for row in ROWS:
        db = out / f"{row}.db"
        if db.is_file():
            configs[row] = common.read_db_config(db).to_dict()
            # the sweep's seeds only (a first, aborted try at 2 seeds left some seed-1 runs in sp.db)
            runs += [r for r in common.load_runs(db) if r.cell.seed in config(mode, row).seeds]
    if not runs:
        return 0
    base_width = config(mode, "sp").base_width
    figures: list[str] = []
    metrics: tuple[tuple[str, Metric], ...] = (("llama", "train_loss"), ("llama_val", "val_loss"))
    for prefix, metric in metrics:
        analysis = analyze(runs, metric=metric, reference_width=base_width)
        rows = [r for r in ROWS if any(x.cell.parameterization == r for x in runs)]
        for row in rows:
            summary.update(common.flat_transfer(common.key(prefix, row), analysis, row, None,
                                                runs if metric == "train_loss" else ()))
        summary.update(common.gaps_to_sp(summary, prefix, rows))
        if metric == "train_loss":
            common.print_table(analysis, out, "llama_optima")
            figures += common.save_transfer(analysis, out, "transfer_hf_llama",
                                            "transformers Llama (byte corpus, Adam): SP as built vs muP")
    write_csv(runs, out / "llama_runs.csv")
    summary["figures"] = ",".join(figures)
    common.write_summary(out, summary)
    common.write_config(out, configs)
    return 0


if __name__ == "__main__":
    sys.exit(main())

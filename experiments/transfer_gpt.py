"""LR transfer on a byte-level GPT: SP vs muP with Adam on the Python standard library's own source.

The model (``scaling.models.gpt``): pre-LN, 2 blocks, 4 heads, so the head dimension grows with the width
(8 at width 32, 64 at 256) and muP's attention-logit scale ``1/d_head`` (TP-V §4; the ``mup`` row's
``attention = -1/2``) differs from SP's ``1/sqrt(d_head)``. muP zero-initializes the readout (TP-V
App. D.2); SP keeps PyTorch's defaults everywhere. Data: ``stdlib-bytes``, 4 MB of the standard
library's ``.py`` files in sorted order (the corpus SHA-256 is in the summary), windows of 64 bytes.

Budget (measured first, on this 2-core machine, one thread per worker): a training step of batch 16 x 64
bytes costs about 10, 18, 43 and 130 ms at widths 32, 64, 128, 256, so one LR at all four widths and
300 steps is about 60 s of one core. The full run, SP on 17 LRs (2^-12..2^-4) and muP on 13 (2^-9..2^-3)
at step 0.5, 2 seeds, is about 3600 core-seconds: ~30 min on 2 workers (the summary records the
measured total). Probe (150 steps, 1 seed): SP's optimum falls from 2^-5.7 at width 32 to 2^-9.1 at 256,
muP's stays near 2^-5.3.

Target: muP drift within +-0.2 (SP's far below, with disjoint intervals).

A third sweep, ``mup-noalign-readout`` (``common.NOALIGN``: muP with the readout's Adam LR scaled
``m^-1/2``, Everett et al. 2024; the MLP's research row), asks whether the readout's ``1/m`` under-trains
the wide GPT as it does the MLP: probed first at width 256 and the base width's muP optimum (1 seed),
muP reached a loss of 2.20, SP at its own optimum 1.97, muP with the readout's LR times sqrt(8) 2.04,
with the hidden LRs times sqrt(8) 2.80. Same grid and zero readout as muP; ~10 min more.

A fourth, ``mup_initreadout``, is muP with the readout initialized as Table 3 says (PyTorch's init times
``m^-1/2``) instead of zero: the same probe gave 2.07 without the zero readout, so the zero readout is the
other suspect for muP's gap to SP at width 256. ~10 min more.

    python experiments/transfer_gpt.py --quick     # widths 32..128, 100 steps, 1 seed (~1-2 min)
    python experiments/transfer_gpt.py             # ~30 min on 2 cores
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Any

import common
import keys
from scaling.data import load_dataset
from scaling.sweep import SweepConfig, log2_grid
from scaling.sweep.analysis import analyze
from scaling.sweep.store import write_csv

NAME = "transfer_gpt"
BLOCK = 64


@dataclass(frozen=True)
class Sweep:
    """One database: a row of the table, its grid and whether the readout starts at zero."""

    name: str  # database stem (gpt_<name>.db) and summary prefix
    parameterization: str
    grid: tuple[float, float]  # log2 LR range; step 0.5 full, 1 quick
    zero_readout: bool

    @property
    def label(self) -> str:
        """The name its runs carry in the analysis and the figure's panel."""
        return self.name.replace("_", "-")


SWEEPS = (
    Sweep("sp", "sp", (-12.0, -4.0), zero_readout=False),
    Sweep("mup", "mup", (-9.0, -3.0), zero_readout=True),
    Sweep("mup_noalign", common.NOALIGN, (-9.0, -3.0), zero_readout=True),
    Sweep("mup_initreadout", "mup", (-9.0, -3.0), zero_readout=False),
)
BUDGET = ("measured ms/step (batch 16 x 64 bytes, 1 thread): ~10/18/43/130 at widths 32/64/128/256; one LR at all "
          "widths x 300 steps ~60 core-s; (17 + 13) LRs x 2 seeds ~3600 core-s ~30 min on 2 workers")


def config_of(sweep: Sweep, mode: common.Mode) -> SweepConfig:
    lo, hi = sweep.grid
    full = SweepConfig(
        model="gpt", dataset="stdlib-bytes", parameterizations=(sweep.parameterization,), optimizers=("adam",),
        widths=(32, 64, 128, 256), base_width=32, log2_lrs=log2_grid(lo, hi, 0.5), seeds=(0, 1), steps=300,
        batch_size=16, last_k=50, dataset_kwargs={"block_size": BLOCK},
        model_kwargs={"block_size": BLOCK, "n_heads": 4, "n_layers": 2}, zero_readout=sweep.zero_readout)
    if mode == "quick":
        return replace(full, widths=(32, 64, 128), log2_lrs=log2_grid(lo, hi, 1.0), seeds=(0,), steps=100,
                       last_k=20)
    if mode == "smoke":
        mid = (lo + hi) / 2
        return replace(full, widths=(32, 64), log2_lrs=(mid - 2, mid, mid + 2), seeds=(0,), steps=10, last_k=5,
                       dataset_kwargs={"block_size": BLOCK, "max_bytes": 200_000})
    return full


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__ or "")
    args = p.parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    common.register_rows()
    configs = {s.name: config_of(s, mode) for s in SWEEPS}
    dbs = {s.name: out / f"gpt_{s.name}.db" for s in SWEEPS}
    if not args.plot_only:
        for s in SWEEPS:
            common.sweep(configs[s.name], dbs[s.name], args.workers, setup=common.register_rows)
    runs = [r for s in SWEEPS if dbs[s.name].is_file() for r in common.load_runs(dbs[s.name], s.label)]
    if not runs:
        print(f"no runs in {out}", file=sys.stderr)
        return 2
    sp = configs["sp"]
    info = load_dataset("stdlib-bytes", **sp.dataset_kwargs).info
    summary: dict[str, Any] = common.header(NAME, mode)
    summary.update({
        "model": "gpt", "n_layers": 2, "n_heads": 4, "block_size": BLOCK, "steps": sp.steps,
        "batch_size": sp.batch_size, "tokens_per_step": sp.batch_size * BLOCK, "last_k": sp.last_k,
        "seeds": len(sp.seeds), "widths": ",".join(map(str, sp.widths)), "base_width": sp.base_width,
        "min_width": min(sp.widths), "max_width": max(sp.widths), "grid_step": sp.log2_lrs[1] - sp.log2_lrs[0],
        "noalign_row": common.NOALIGN, "noalign_citation": common.NOALIGN_CITATION,
        "corpus_sha256": info["sha256"], "corpus_bytes": info["bytes"], "corpus_files": info["files"],
        "corpus_python": info["python"], "budget_note": BUDGET,
        "train_seconds_total": sum(r.seconds for r in runs), "flops_total": sum(r.flops for r in runs),
    })
    analysis = analyze(runs, reference_width=sp.base_width)
    for s in SWEEPS:
        if any(r.cell.parameterization == s.label for r in runs):
            summary.update(common.flat_transfer(s.name, analysis, s.label, "adam", runs))
            lrs = configs[s.name].log2_lrs
            summary[f"{s.name}_grid_lo"], summary[f"{s.name}_grid_hi"] = lrs[0], lrs[-1]
            summary[f"{s.name}_zero_readout"] = s.zero_readout
    # each muP variant against SP's best at the widest width: its own best (gap_<q>_best) and at the base
    # width's optimal LR (gap_<q>_transferred, the muTransfer route); relative, negative is better than SP
    if "sp_best_loss_max_width" in summary:
        sp_best, widest = summary["sp_best_loss_max_width"], summary["sp_max_width"]
        for q in (s.name for s in SWEEPS if s.name != "sp"):
            if f"{q}_best_loss_max_width" in summary:
                summary[keys.gpt_gap_best(q)] = summary[f"{q}_best_loss_max_width"] / sp_best - 1
                summary[keys.gpt_gap_transferred(q)] = summary[f"{q}_w{widest}_loss_at_base_lr"] / sp_best - 1
    if "mup_drift" in summary and "sp_drift" in summary:
        summary.update({
            keys.TARGET_MUP_DRIFT_ABS_MAX: 0.2,
            keys.CHECK_GPT_MUP_DRIFT_WITHIN_0P2: abs(summary["mup_drift"]) <= 0.2,
            keys.CHECK_GPT_DRIFT_INTERVALS_DISJOINT: summary["sp_drift_hi"] < summary["mup_drift_lo"],
        })
    write_csv(runs, out / "runs.csv")
    common.print_table(analysis, out, "table")
    merged = common.merged_config(list(configs.values()), [s.label for s in SWEEPS])
    figures = common.save_transfer(analysis, out, common.figure_stem(merged),
                                   common.title_of(merged, "4 heads; zero readout in mup and mup-noalign"))
    summary["figures"] = ",".join(figures)
    common.prune_figures(out, figures)
    common.write_config(out, {q: c.to_dict() for q, c in configs.items()}, corpus=info, budget=BUDGET)
    common.write_json(out / "details.json", common.nested_transfer(analysis))
    keys.require(summary, keys.transfer_gpt_schema([s.name for s in SWEEPS if any(
        r.cell.parameterization == s.label for r in runs)]), NAME)
    common.write_summary(out, summary)
    print(f"\nwrote {', '.join(figures)}, summary.json, details.json, config.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

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
- ``parts``: which part moves the MLP's muP optimum. The MLP's muP row again, one part's base LR held
  at the base width's optimum while the sweep moves the other's: ``mup_fixadam`` sweeps Muon's LR (the
  Adam part held at ``2^BASE_LOG2_LR / 16`` times its per-role factors), ``mup_fixmuon`` sweeps the
  Adam part's (as ``lr / 16``; Muon held at ``2^BASE_LOG2_LR``). ``BASE_LOG2_LR`` is the 0.5-grid
  point nearest the full ``mlp`` muP optimum at width 64 (2^-3.62, in the summary); fixed before
  these sweeps ran (~5 min).
- ``roles``: which of the AdamW part's roles. The base LR held at ``2^BASE_LOG2_LR``, one role's LR
  constant swept (2^-6..2^3; first run on 2^-3..2^3, widened when the input and output optima
  sat at its lower edge) at every width, as ``ablation.py``'s exponents: the slope
  ``d log2 c* / d log2 width`` is how far muP's LR exponent for that role is from what this task wants
  with Muon on the hidden weight (~6 min).
- ``batch``: a hypothesis for ``parts``, written down before this task ran. Muon's update ``lr U V^T``
  has every singular value 1 on the gradient's rank ``r = min(width, batch)``, so it spreads the hidden
  change evenly over ``r`` directions, of which only a few carry what the readout reads; the useful
  share then falls with ``r``. At batch 128 ``r`` grows from 64 to 128 between widths 64 and 128 and
  stays; at batch 32 it is 32 at every width; at batch 512 it equals the width throughout. If this is
  why AdamW's optimum falls beside Muon, ``mup_fixmuon``'s drift is near 0 at batch 32 and steeper at
  batch 512 than at 128. The held Muon LR is batch 128's, stated, not retuned (~10 min).
  Added after that ran, with the next prediction written before it: at batch 128, Muon's own optimum
  (``mup_fixadam``) fell 1.0 between widths 64 and 128 and 0.2 from 128 to 512, where the rank stops
  growing. So Muon's LR swept with AdamW held should not drift at batch 32 (rank 32 throughout) and
  should fall at every width at batch 512: rows ``mup_fixadam_b32``, ``mup_fixadam_b512`` (~10 min).
- ``samples``: the batch task changes the samples seen with the batch. Here the batch changes at
  batch 128's samples (64,000): batch 32 for 2,000 steps and 512 for 125 (the loss averaged over the
  last tenth, as at 500 steps), Muon's LR swept with AdamW held. Written before it ran: if the rank
  min(width, batch) is the cause, the per-width optima follow the batch (flat from 128 on at batch
  32, falling at every width at 512, as in ``batch``); if the samples seen are, both look like
  batch 128 (a fall from 64 to 128, then flat) (~15 min).

    python experiments/transfer_muon.py                 # every task
    python experiments/transfer_muon.py --tasks gpt
    python experiments/transfer_muon.py --quick
"""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import ablation
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
TASKS = ("mlp", "gpt", "parts", "roles", "batch", "samples")
SAMPLES = ((32, 2000), (512, 125))  # the samples task's (batch, steps): batch 128 x 500 steps' samples
BATCHES = (32, 512)  # the batch task's batch sizes (the protocol's is 128)
ROLES = ("input", "output", "vector")  # the AdamW part's roles (the hidden weight is Muon's)
TITLES = {"mlp": "MLP, MNIST-1D", "gpt": "GPT, stdlib bytes"}
BASE_LOG2_LR = -3.5
# the ``parts`` task: (row, optimizer name, the part held fixed), all muP on the MLP
PARTS = (("mup_fixadam", OPTIMIZER + "-fixadam", "adam"), ("mup_fixmuon", OPTIMIZER + "-fixmuon", "muon"))


def register() -> None:
    """The pair with the fixed Adam ratio, under its own name, and the ``parts`` task's pairs with one
    part's base LR held (every sweep worker calls this)."""
    register_optimizer(OPTIMIZER, MuonAdam, "muon", replace=True, adam_lr_ratio=ADAM_LR_RATIO)
    for _, name, part in PARTS:
        register_optimizer(name, MuonAdam, "muon", replace=True, adam_lr_ratio=ADAM_LR_RATIO,
                           fixed={part: 2.0**BASE_LOG2_LR})


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


def role_config(mode: common.Mode, role: str) -> SweepConfig:
    """muP on the MLP at the base LR ``2^BASE_LOG2_LR``, ``role``'s LR constant swept at every width."""
    step = {"full": 0.5, "quick": 1.0, "smoke": 2.0}[mode]
    xs = log2_grid(-6.0, 3.0, step) if mode != "smoke" else (-2.0, 0.0, 2.0)
    return replace(config(mode, "mup"), log2_lrs=(BASE_LOG2_LR,), scales=tuple({"lr": {role: 2.0**x}} for x in xs))


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__ or "")
    p.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS, help="the tasks to run (default both)")
    args = p.parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    if not args.plot_only:
        for task in args.tasks:
            if task == "samples":
                row, name, _ = PARTS[0]
                for batch, steps in SAMPLES:
                    n = max(2, steps * config(mode, "mup").steps // 500)  # the same share of the mode's steps
                    c = replace(config(mode, "mup"), optimizers=(name,), batch_size=batch, steps=n,
                                last_k=max(1, n // 10))
                    common.sweep(c, out / f"mlp_{row}_b{batch}_n{steps}.db", args.workers, setup=register, extend=6)
                continue
            if task == "batch":
                for (row, name, _), batch in ((p, b) for p in PARTS[::-1] for b in BATCHES):
                    common.sweep(replace(config(mode, "mup"), optimizers=(name,), batch_size=batch),
                                 out / f"mlp_{row}_b{batch}.db", args.workers, setup=register, extend=6)
                continue
            if task == "roles":
                for role in ROLES:
                    common.sweep(role_config(mode, role), out / f"mlp_role_{role}.db", args.workers, setup=register)
                continue
            if task == "parts":
                for row, name, _ in PARTS:
                    common.sweep(replace(config(mode, "mup"), optimizers=(name,)), out / f"mlp_{row}.db",
                                 args.workers, setup=register, extend=6)
                continue
            for row in ROWS:
                common.sweep(config(mode, row, task), out / f"{task}_{row}.db", args.workers, setup=register,
                             extend=6)
    summary: dict[str, Any] = common.header(NAME, mode)
    summary.update({"optimizer": OPTIMIZER, "adam_lr_ratio": ADAM_LR_RATIO})
    figures: list[str] = []
    for task in ("mlp", "gpt"):  # every task with results, run now or before
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
    parts = []
    batch_rows = [(f"{row}_b{b}", name, part) for row, name, part in PARTS[::-1] for b in BATCHES]
    batch_rows += [(f"{PARTS[0][0]}_b{b}_n{n}", PARTS[0][1], PARTS[0][2]) for b, n in SAMPLES]
    for row, name, part in (*PARTS, *batch_rows):
        db = out / f"mlp_{row}.db"
        if db.is_file():
            # one optimizer name for all rows, so that the figure sets them side by side as rows
            runs = [replace(r, cell=r.cell._replace(optimizer=OPTIMIZER))
                    for r in common.load_runs(db, label=row.replace("_", "-"))]
            a = analyze(runs, reference_width=config(mode, "mup").base_width)
            parts.append(a)
            summary.update(common.flat_transfer(common.key("mlp", row), a, row.replace("_", "-"), OPTIMIZER, runs))
            summary[common.key("mlp", row, "optimizer")] = name
            summary[common.key("mlp", row, "fixed_part")] = part
            write_csv(common.load_runs(db), out / f"mlp_{row}_runs.csv")  # as stored
    if parts:
        summary["parts_base_log2_lr"] = BASE_LOG2_LR
        figures += common.save_transfer(parts[0].combine(parts), out, "transfer_muon_mlp_parts",
                                        "MLP, MNIST-1D, muP, Muon + AdamW: one part's LR held at the base optimum")
    roles = []
    for role in ROLES:
        db = out / f"mlp_role_{role}.db"
        if db.is_file():
            a = analyze(ablation.role_runs(db, role), reference_width=config(mode, "mup").base_width)
            roles.append(a)
            d = a.drift(role)
            summary.update({common.key("mlp", "role", role, "exponent"): d.slope,
                            common.key("mlp", "role", role, "exponent_lo"): d.low,
                            common.key("mlp", "role", role, "exponent_hi"): d.high,
                            common.key("mlp", "role", role, "edges"): d.edges})
    if roles:
        figures += common.save_transfer(roles[0].combine(roles), out, "transfer_muon_mlp_roles",
                                        "MLP, MNIST-1D, muP, Muon + AdamW: loss vs each AdamW role's LR constant")
    summary["figures"] = ",".join(figures)
    common.write_summary(out, summary)
    for task, rows in (("mlp", ROWS + tuple(r for r, _, _ in (*PARTS, *batch_rows))), ("gpt", ROWS)):
        for row in rows:
            k = common.key(task, row)
            if k + "_drift" in summary:
                print(f"{task} {row}: drift {summary[k + '_drift']:+.2f} [{summary[k + '_drift_lo']:+.2f}, "
                      f"{summary[k + '_drift_hi']:+.2f}], regret at widest {summary[k + '_regret_max_width']:.1%}, "
                      f"best loss at widest {summary[k + '_best_loss_max_width']:.3f}")
    for role in ROLES:
        k = common.key("mlp", "role", role, "exponent")
        if k in summary:
            print(f"mlp role {role}: LR exponent wanted {summary[k]:+.2f} [{summary[k + '_lo']:+.2f}, "
                  f"{summary[k + '_hi']:+.2f}] beyond muP's")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Transfer with Muon: SP (torch's Muon, its default ``adjust_lr_fn``) against muP's Muon column.

Muon (``torch.optim.Muon``) over the hidden 2-D weights and AdamW over the rest
(``scaling.optim.MuonAdam``). One learning rate is swept: Muon's; the Adam part's base LR is fixed at 1/16
of it (``adam_lr_ratio``; our protocol choice, stated, not tuned). Drift and regret as for Adam
(:mod:`scaling.sweep.analysis`), each row read on the training loss and, under ``{row}_val_*``, on the
validation loss. Two tasks:

- ``mlp``: the MLP 40-w-w-10 on MNIST-1D (``transfer_mlp``'s data, batch and 500 steps), widths 64..512:
  Muon's Newton-Schulz iterations cost ``O(width^3)`` per step, and width 1024 is out of this budget on
  2 cores (~25 min).
- ``gpt``: ``transfer_gpt``'s byte-level GPT (widths 32..256, 300 steps, 2 seeds; muP's readout starts at
  zero as there), Muon over the attention and MLP matrices, AdamW over the embedding, the readout and
  the gains (~35 min). A third row, ``mup_initreadout``, added after the first two showed muP's loss
  at width 256 14% above SP's: muP with Table 3's readout init instead of zero (~15 min).
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
from typing import Any, NamedTuple

import ablation
import common
import transfer_gpt
import transfer_mlp
from scaling.optim import MuonAdam, register_optimizer
from scaling.sweep import SweepConfig, log2_grid
from scaling.sweep.analysis import Analysis, analyze
from scaling.sweep.store import RunRecord, write_csv

NAME = "transfer_muon"
OPTIMIZER = "muon-adam16"
ADAM_LR_RATIO = 1 / 16
ROWS = ("sp", "mup")
# rows per task; the GPT's muP also with its readout initialized as Table 3 says (transfer_gpt's
# mup_initreadout) instead of at zero, a suspect for muP's loss at width
TASK_ROWS = {"mlp": ROWS, "gpt": (*ROWS, "mup_initreadout")}
LABELS = {"sp": "SP", "mup": "ours (muP)", "mup_initreadout": "ours, readout init as Table 3 (not zero)"}
TASKS = ("mlp", "gpt", "parts", "roles", "batch", "samples")
ROLES = ("input", "output", "vector")  # the AdamW part's roles (the hidden weight is Muon's)
TITLES = {"mlp": "MLP, MNIST-1D", "gpt": "GPT, stdlib bytes"}
BASE_LOG2_LR = -3.5


class Held(NamedTuple):
    """A muP sweep on the MLP with one part's base LR held at ``2^BASE_LOG2_LR`` (the other swept)."""

    row: str  # database stem (mlp_<row>.db) and summary prefix
    part: str  # the part held: "adam" or "muon"
    task: str  # parts, batch or samples
    batch: int = 128  # the protocol's
    steps: int = 500  # at the full size; other sizes scale it as they scale 500

    @property
    def label(self) -> str:
        """What the row is, for tables (written into the summary, so readers need not know the rows)."""
        swept = "ours, only Muon's LR swept (AdamW's held)" if self.part == "adam" else \
            "ours, only AdamW's LR swept (Muon's held)"
        return swept + (f", batch {self.batch}" if self.batch != 128 else "") + \
            (f", {self.steps:,} steps" if self.steps != 500 else "")


HELD = (  # in the order the tables show them
    Held("mup_fixadam", "adam", "parts"),
    Held("mup_fixadam_b32", "adam", "batch", 32), Held("mup_fixadam_b512", "adam", "batch", 512),
    # batch 128 x 500 steps' samples at other batches
    Held("mup_fixadam_b32_n2000", "adam", "samples", 32, 2000),
    Held("mup_fixadam_b512_n125", "adam", "samples", 512, 125),
    Held("mup_fixmuon", "muon", "parts"),
    Held("mup_fixmuon_b32", "muon", "batch", 32), Held("mup_fixmuon_b512", "muon", "batch", 512),
)


def held_optimizer(part: str) -> str:
    return f"{OPTIMIZER}-fix{part}"


def register() -> None:
    """The pair with the fixed Adam ratio, under its own name, and the pairs with one part's base LR
    held (every sweep worker calls this)."""
    register_optimizer(OPTIMIZER, MuonAdam, "muon", replace=True, adam_lr_ratio=ADAM_LR_RATIO)
    for part in ("adam", "muon"):
        register_optimizer(held_optimizer(part), MuonAdam, "muon", replace=True, adam_lr_ratio=ADAM_LR_RATIO,
                           fixed={part: 2.0**BASE_LOG2_LR})


register()


def config(mode: common.Mode, row: str, task: str = "mlp") -> SweepConfig:
    """The sweep of ``row`` on ``task``: the task's own protocol with the Muon pair and a grid around 2^-6."""
    step = {"full": 0.5, "quick": 1.0, "smoke": 2.0}[mode]
    half = 2.0 if mode == "smoke" else 3.0
    parameterization = row
    if task == "gpt":
        sweep = next(s for s in transfer_gpt.SWEEPS if s.name == row)
        base = transfer_gpt.config_of(sweep, mode)
        widths, parameterization = base.widths, sweep.parameterization
    else:
        base = transfer_mlp.protocol(mode)
        widths = {"full": (64, 128, 256, 512), "quick": (64, 128, 256), "smoke": (32, 64)}[mode]
    return replace(base, parameterizations=(parameterization,), optimizers=(OPTIMIZER,), widths=widths,
                   base_width=widths[0], log2_lrs=log2_grid(-6.0 - half, -6.0 + half, step))


def role_config(mode: common.Mode, role: str) -> SweepConfig:
    """muP on the MLP at the base LR ``2^BASE_LOG2_LR``, ``role``'s LR constant swept at every width (from
    2^-6: the input and output optima sat at 2^-3, ablation's lower edge)."""
    return ablation.exponent_config(config(mode, "mup"), role, mode, BASE_LOG2_LR, low=-6.0)


def held_config(mode: common.Mode, h: Held) -> SweepConfig:
    """The sweep of ``h``: muP's config with the held pair, ``h``'s batch and steps (the loss averaged over
    the protocol's last 50 steps at 500, over the last tenth otherwise)."""
    base = config(mode, "mup")
    if h.steps == 500:
        return replace(base, optimizers=(held_optimizer(h.part),), batch_size=h.batch)
    n = max(2, h.steps * base.steps // 500)
    return replace(base, optimizers=(held_optimizer(h.part),), batch_size=h.batch, steps=n, last_k=max(1, n // 10))


def read_row(prefix: str, runs: list[RunRecord], label: str, reference_width: int) -> tuple[Analysis, dict[str, Any]]:
    """One row's analysis on the training loss, and its numbers on both losses: the training loss's under
    ``prefix``, the validation loss's under ``{prefix}_val`` (with Muon the MLP fits its training set
    far better than it generalizes, so the two objectives could want different LRs)."""
    a = analyze(runs, reference_width=reference_width)
    numbers = common.flat_transfer(prefix, a, label, OPTIMIZER, runs)
    held_out = analyze(runs, "val_loss", reference_width=reference_width)
    numbers.update(common.flat_transfer(common.key(prefix, "val"), held_out, label, OPTIMIZER))
    return a, numbers


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__ or "")
    p.add_argument("--tasks", nargs="+", default=TASKS, choices=TASKS, help="the tasks to run (default all)")
    args = p.parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    if not args.plot_only:
        for task in args.tasks:
            for h in (h for h in HELD if h.task == task):
                common.sweep(held_config(mode, h), out / f"mlp_{h.row}.db", args.workers, setup=register, extend=6)
            if task == "roles":
                for role in ROLES:
                    common.sweep(role_config(mode, role), out / f"mlp_role_{role}.db", args.workers, setup=register)
            for row in TASK_ROWS.get(task, ()):
                common.sweep(config(mode, row, task), out / f"{task}_{row}.db", args.workers, setup=register,
                             extend=6)
    summary: dict[str, Any] = common.header(NAME, mode)
    summary.update({"optimizer": OPTIMIZER, "adam_lr_ratio": ADAM_LR_RATIO})
    figures: list[str] = []
    for task in ("mlp", "gpt"):  # every task with results, run now or before
        analyses = []
        for row in TASK_ROWS[task]:
            db = out / f"{task}_{row}.db"
            if not db.is_file():
                continue
            label = row.replace("_", "-")
            a, numbers = read_row(common.key(task, row), common.load_runs(db, label=label), label,
                              config(mode, row, task).base_width)
            analyses.append(a)
            summary.update(numbers)
            write_csv(common.load_runs(db), out / f"{task}_{row}_runs.csv")
        if analyses:
            for metric in ("", "val"):
                summary.update(common.gaps_to_sp(summary, task, TASK_ROWS[task], metric))
            summary[common.key(task, "title")] = TITLES[task]
            for row in TASK_ROWS[task]:
                summary[common.key(task, row, "label")] = LABELS[row]
            both = analyses[0].combine(analyses)
            figures += common.save_transfer(both, out, f"transfer_muon_{task}",
                                            f"{TITLES[task]}, Muon + AdamW (1/16 LR): SP vs muP")
    parts = []
    for h in HELD:
        db = out / f"mlp_{h.row}.db"
        if db.is_file():
            label = h.row.replace("_", "-")
            # one optimizer name for all rows, so that the figure sets them side by side as rows
            runs = [replace(r, cell=r.cell._replace(optimizer=OPTIMIZER)) for r in common.load_runs(db, label=label)]
            a, numbers = read_row(common.key("mlp", h.row), runs, label, config(mode, "mup").base_width)
            parts.append(a)
            summary.update(numbers)
            summary[common.key("mlp", h.row, "optimizer")] = held_optimizer(h.part)
            summary[common.key("mlp", h.row, "fixed_part")] = h.part
            summary[common.key("mlp", h.row, "label")] = h.label
            write_csv(common.load_runs(db), out / f"mlp_{h.row}_runs.csv")  # as stored
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
                                        "MLP, MNIST-1D, muP, Muon + AdamW: loss vs each AdamW role's LR constant",
                                        xlabel=ablation.ROLE_AXIS)
    for task, rows in (("mlp", ROWS + tuple(h.row for h in HELD)), ("gpt", TASK_ROWS["gpt"])):
        # the rows with results, in table order; each has a _label
        summary[common.key(task, "rows")] = ",".join(r for r in rows if common.key(task, r, "drift") in summary)
    summary["figures"] = ",".join(figures)
    common.write_summary(out, summary)
    for task in ("mlp", "gpt"):
        for row in filter(None, summary[common.key(task, "rows")].split(",")):
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

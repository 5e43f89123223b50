"""Do the measured role wants explain the drifts? Each applied as a row of the table and swept.

``ablation.py``'s and ``transfer_muon.py``'s ``roles`` parts measured, with the base LR held at the
base width's optimum and the other roles at muP, how far each role's tuned LR constant moves with
width. Two of those measurements point at a role that wants about ``1/width`` less LR than muP gives it,
on tasks whose optimum falls with width:

- the byte-level GPT with Adam (``ablation``'s protocol: widths 32..128, 300 steps, 2 seeds, readout
  initialized as Table 3): the embedding's constant falls like ``width^-0.91``; muP's drift -0.16;
- the MLP with Muon + AdamW (``transfer_muon``'s protocol: widths 64..512, 500 steps, 2 seeds): the
  AdamW input layer's ``width^-0.93`` and the readout's ``width^-0.87``; muP's drift -0.16.

Each want, rounded to ``-1``, becomes a row: muP (TP-V Table 3) with that role's Adam LR exponent one
power of the width lower (``embed_lr``: the embedding's LR ``m_out^-1`` instead of 1; ``io_lr``: the
AdamW input's ``m_out^-1`` and the readout's ``m_in^-2`` instead of 1 and ``m_in^-1``), equal to muP at
the base width, so only the wider models change. Each is swept on the task it was measured on, with
the same grid and seeds as its muP row, and read on the training loss (where the wants were measured)
and the validation loss.

Written down before either ran: if a role's want is what makes muP's optimum fall, its row's drift is
near 0 (within +-0.1) where muP's is -0.16, and its regret at the widest width falls. If the drift stays
at or below muP's, the want is not the cause: one role tuned with the others held does not tell what
the joint optimum does (on the GPT u-muP's embedding exponent -1/2, ``ablation``'s ``input_lr`` row,
already made the drift worse, -0.32).

Added after ``io_lr`` overshot (drift +0.41), with its prediction written before they ran: ``input_lr``
and ``readout_lr``, each of its two roles alone; if the two act independently, each moves the drift
part of the way and their two moves add up to the joint one (+0.57).

``input_lr`` alone brought the MLP's drift to +0.10 on the training loss and to 0 on the validation loss,
with a better loss at width 512 than tuned SP's on both. Found on that task, it needs one it was not
found on; named before it ran: the GPT with Muon (``transfer_muon``'s ``mup_initreadout`` row, widths
32..256, where muP already meets the drift and regret targets), the AdamW embedding's LR x 1/m
(``muon_gpt_embed_lr``). It confirms if the drift stays within +-0.1, the regret under 2% and the best
loss at width 256 no more than 1% above muP's; otherwise the change is this MLP's alone.

    python experiments/role_tests.py             # ~35 min on 2 cores
    python experiments/role_tests.py --quick
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Any

import ablation
import common
import transfer_muon
from scaling.sweep import SweepConfig
from scaling.sweep.analysis import Analysis, analyze
from scaling.sweep.store import RunRecord, write_csv
from scaling.table import M_IN, M_OUT, MUP, Parameterization, Role, Rule, register_parameterization

NAME = "role_tests"


@dataclass(frozen=True)
class Test:
    """One measured want as a row: the task, the row's name, what it changes and where its muP baseline is."""

    name: str  # summary prefix and database stem
    task: str  # "gpt" (Adam), "muon_mlp" or "muon_gpt" (Muon + AdamW)
    row: str  # the registered parameterization
    what: str
    baseline: tuple[str, str]  # (experiment, database stem) of the muP row it is set beside


TESTS = (
    Test("embed_lr", "gpt", "mup-embed-lr-inv", "muP, embedding LR x 1/m (its measured want)",
         ("ablation", "gpt_mup")),
    Test("io_lr", "muon_mlp", "mup-adamw-io-lr-inv", "muP, AdamW input and readout LR x 1/m (their measured wants)",
         ("transfer_muon", "mlp_mup")),
    # added after io_lr ran (its drift overshot to +0.41): each of its two roles alone
    Test("input_lr", "muon_mlp", "mup-adamw-input-lr-inv", "muP, AdamW input LR x 1/m alone",
         ("transfer_muon", "mlp_mup")),
    Test("readout_lr", "muon_mlp", "mup-adamw-readout-lr-inv", "muP, AdamW readout LR x 1/m alone",
         ("transfer_muon", "mlp_mup")),
    # a task input_lr was not found on, named before it ran (the docstring)
    Test("muon_gpt_embed_lr", "muon_gpt", "mup-embed-lr-inv",
         "muP (readout init. as Table 3), AdamW embedding LR x 1/m", ("transfer_muon", "gpt_mup_initreadout")),
)


def lowered(roles: tuple[Role, ...]) -> dict[Role, Rule]:
    """muP's rules with each of ``roles``' Adam-like learning rate one power of its width dimension lower
    (the input's ``m_out``, the readout's ``m_in``): the Adam column, which these sweeps use, and
    Adafactor's with it (the table keeps it Adam's over the init std). SGD's column is left as muP's,
    so the epsilon, which the table scales like the gradient it reads from ``lr_adam / lr_sgd``
    (:meth:`scaling.table.Rule.eps`), falls with the lowered LR too: one more ``1/m`` on an epsilon of
    ``1e-8``, far below the second-moment estimates it is added to (``ablation``'s epsilon row moved
    neither model's drift)."""
    rules = dict(MUP.rules)
    for role in roles:
        power = M_OUT if role == "input" else M_IN
        for name in ("adam", "adafactor"):
            rules[role] = rules[role].with_lr(name, rules[role].lr(name) - power)
    return rules


# the roles each row lowers; the embedding row and the AdamW-input row are one rule, named for the task
# each is read on (the databases store the name)
ROWS: dict[str, tuple[Role, ...]] = {
    "mup-embed-lr-inv": ("input",),
    "mup-adamw-io-lr-inv": ("input", "output"),
    "mup-adamw-input-lr-inv": ("input",),
    "mup-adamw-readout-lr-inv": ("output",),
}


def rows() -> dict[str, Parameterization]:
    """The rows: muP with the named roles' Adam LR exponents lowered by one power of the width."""
    cite = ("TP-V Table 3 with the Adam LR of {} x 1/m (experiments/role_tests.py: a measured role want as a "
            "row, a diagnostic, not a default)")
    return {name: Parameterization(name, lowered(roles), MUP.attention, cite.format(" and ".join(roles)))
            for name, roles in ROWS.items()}


def register() -> None:
    """The rows and transfer_muon's optimizer pair (every sweep worker calls this)."""
    transfer_muon.register()
    for row in rows().values():
        register_parameterization(row, replace_existing=True)


register()


def config(mode: common.Mode, t: Test) -> SweepConfig:
    """The muP baseline's own sweep with the test's row."""
    if t.task == "gpt":
        m = ablation.models(mode)["gpt"]
        base = ablation.ingredient_config(m, None, mode)
    elif t.task == "muon_gpt":
        base = transfer_muon.config(mode, "mup_initreadout", "gpt")
    else:
        base = transfer_muon.config(mode, "mup")
    return replace(base, parameterizations=(t.row,))


def read(prefix: str, runs: list[RunRecord], row: str, base_width: int) -> tuple[Analysis, dict[str, Any]]:
    """A row's analysis on the training loss, and its numbers on both losses (``{prefix}_val_*`` held out)."""
    train = analyze(runs, reference_width=base_width)
    numbers = common.flat_transfer(prefix, train, row, None, runs)
    numbers.update(common.flat_transfer(common.key(prefix, "val"), analyze(runs, "val_loss",
                                                                        reference_width=base_width), row))
    return train, numbers


def main(argv: list[str] | None = None) -> int:
    args = common.parser(__doc__ or "").parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    if not args.plot_only:
        for t in TESTS:
            common.sweep(config(mode, t), out / f"{t.name}.db", args.workers, setup=register, extend=6)
    summary: dict[str, Any] = common.header(NAME, mode)
    figures: list[str] = []
    for t in TESTS:
        db = out / f"{t.name}.db"
        if not db.is_file():
            continue
        cfg = config(mode, t)
        label = t.name.replace("_", "-")  # short: the figure's panel titles
        runs = common.load_runs(db, label=label)
        analysis, numbers = read(t.name, runs, label, cfg.base_width)
        summary.update(numbers)
        summary.update({common.key(t.name, "what"): t.what, common.key(t.name, "task"): t.task})
        # the muP row it was measured on, read the same way (the baseline experiment's own database)
        experiment, stem = t.baseline
        baseline_db = out.parent / experiment / f"{stem}.db"
        if baseline_db.is_file():
            base_runs = common.load_runs(baseline_db)
            base, base_numbers = read(common.key(t.name, "baseline"), base_runs, "mup", cfg.base_width)
            summary.update(base_numbers)
            summary[common.key(t.name, "baseline")] = f"{experiment}/{stem}.db"
            analysis = base.combine([base, analysis])
        write_csv(runs, out / f"{t.name}_runs.csv")
        figures += common.save_transfer(analysis, out, f"role_tests_{t.name}", f"{t.what}: loss vs base LR")
        print(f"{t.name}: drift {numbers[common.key(t.name, 'drift')]:+.2f} "
              f"[{numbers[common.key(t.name, 'drift_lo')]:+.2f}, {numbers[common.key(t.name, 'drift_hi')]:+.2f}], "
              f"regret at widest {numbers[common.key(t.name, 'regret_max_width')]:.1%}")
    summary["tests"] = ",".join(t.name for t in TESTS if common.key(t.name, "task") in summary)
    summary["figures"] = ",".join(figures)
    common.prune_figures(out, figures)
    common.write_config(out, {t.name: config(mode, t).to_dict() for t in TESTS})
    common.write_summary(out, summary)
    print(f"\nwrote {', '.join(figures)}, summary.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Confirming a candidate default on tasks it was not chosen on: SP, our muP and the candidate side by side.

The decision rule, written down (and committed) before the GPT ablation's ``unit_init``,
``readout_init``, ``input_lr`` and ``eps`` sweeps were read:

- *Deciding tasks*: the two ablations of ``experiments/ablation.py`` (the MLP 40-w-w-10 and the
  byte-level GPT, both Adam).
- *The rule*: the default changes to the one ingredient whose best loss at the widest width is lower
  than our Table 3 muP's on both deciding tasks by more than 1%, with a regret at the widest width no
  more than 2 points worse on either; among several, the lowest best loss on the MLP. If none
  qualifies, the default stays.
- *Confirming tasks*, never used to choose or tune anything: the residual pre-LN MLP (``resmlp``,
  two blocks, widths 64/256/1024) and the 1-D CNN (``cnn``, widths 16/32/64/128: a convolution of
  width 1024 is out of this budget), both on MNIST-1D with Adam, 500 steps, batch 128, 2 seeds, a 0.5
  log2-LR grid extended where an optimum sits at its edge.

A control added after the rule was written (it cannot change the decision): ``sp_candidate``, SP
with the candidate's constants, on the confirming tasks and on the MLP (its ``mlp`` task runs only SP
and this control, widths 64/256/1024: whether a gain is muP's or the constants' alone).

Each task is read as the peers' table is (:mod:`scaling.sweep.analysis`): drift with a 90%
seed-bootstrap interval, regret at the widest width, best loss at the widest width and its gap to
tuned SP's.

    python experiments/confirm.py --candidate unit_init           # full (~40 min on 2 cores)
    python experiments/confirm.py --candidate unit_init --quick
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ablation
import common
from scaling.sweep import SweepConfig, log2_grid
from scaling.sweep.analysis import Analysis, analyze
from scaling.sweep.store import write_csv

NAME = "confirm"
ROWS = ("sp", "sp_candidate", "mup", "candidate")


@dataclass(frozen=True)
class Task:
    name: str
    title: str
    config: SweepConfig  # full size
    center: float  # log2 LR the grids are centred on (extended at an edge)
    rows: tuple[str, ...] = ROWS


def tasks(mode: common.Mode) -> dict[str, Task]:
    base = SweepConfig(dataset="mnist1d", dataset_kwargs={"num_samples": 10_000}, seeds=(0, 1), steps=500,
                       batch_size=128, last_k=50)
    full = {
        "mlp": Task("mlp", "MLP 40-w-w-10, MNIST-1D, Adam (deciding task: the SP control only)",
                    replace(base, model="mlp", widths=(64, 256, 1024), base_width=64), -6.2, ("sp", "sp_candidate")),
        "resmlp": Task("resmlp", "residual pre-LN MLP, MNIST-1D, Adam",
                       replace(base, model="resmlp", widths=(64, 256, 1024), base_width=64), -8.0),
        "cnn": Task("cnn", "1-D CNN, MNIST-1D, Adam",
                    replace(base, model="cnn", widths=(16, 32, 64, 128), base_width=16), -6.0),
    }
    if mode == "full":
        return full
    steps, last_k = {"quick": (200, 20), "smoke": (20, 5)}[mode]
    widths: dict[str, dict[str, tuple[int, ...]]] = {
        "quick": {"mlp": (64, 128, 256), "resmlp": (64, 128, 256), "cnn": (16, 32, 64)},
        "smoke": {"mlp": (32, 64), "resmlp": (32, 64), "cnn": (8, 16)}}
    return {k: replace(t, config=replace(t.config, seeds=(0,), widths=widths[mode][k], base_width=widths[mode][k][0],
                                         dataset_kwargs={"num_samples": 1000 if mode == "smoke" else 10_000},
                                         steps=steps, last_k=last_k))
            for k, t in full.items()}


GAIN, REGRET_SLACK = 0.01, 0.02  # the rule's thresholds: best loss > 1% lower, regret <= 2 points worse
DECIDING = ("mlp", "gpt")


@dataclass(frozen=True)
class Verdict:
    """The rule applied to one ingredient: per deciding model its best-loss gain and regret change."""

    name: str
    gains: dict[str, float]  # 1 - best loss / our muP's, at the widest width
    regret_changes: dict[str, float]  # regret minus our muP's, at the widest width
    reason: str  # "" when it qualifies

    @property
    def qualifies(self) -> bool:
        return not self.reason


def decide(ablation: Mapping[str, Any]) -> tuple[str | None, list[Verdict]]:
    """The rule (module docstring) applied to the ablation's summary: the chosen ingredient (``None``:
    the default stays) and every candidate's verdict. Base widths are the user's choice, not a default,
    and are not candidates."""
    names = [i.name for i in ablation_ingredients() if i.base_width is None]
    verdicts = []
    for name in names:
        gains, changes, reasons = {}, {}, []
        for m in DECIDING:
            ours, it = common.key(m, "mup"), common.key(m, name)
            if it + "_best_loss_max_width" not in ablation or ours + "_best_loss_max_width" not in ablation:
                reasons.append(f"not run on the {m}")
                continue
            gains[m] = 1 - ablation[it + "_best_loss_max_width"] / ablation[ours + "_best_loss_max_width"]
            changes[m] = ablation[it + "_regret_max_width"] - ablation[ours + "_regret_max_width"]
            if gains[m] <= GAIN:
                reasons.append(f"best loss on the {m} not more than {GAIN:.0%} lower ({gains[m]:+.1%})")
            if changes[m] > REGRET_SLACK:
                reasons.append(f"regret on the {m} {changes[m] * 100:+.1f} points")
        verdicts.append(Verdict(name, gains, changes, "; ".join(reasons)))
    qualified = [v for v in verdicts if v.qualifies]
    chosen = max(qualified, key=lambda v: v.gains["mlp"]).name if qualified else None
    return chosen, verdicts


def ablation_ingredients() -> tuple[ablation.Ingredient, ...]:
    return ablation.ingredients("mlp", 64)


def grid(mode: common.Mode, center: float) -> tuple[float, ...]:
    step = {"full": 0.5, "quick": 1.0, "smoke": 2.0}[mode]
    half = 2.0 if mode == "smoke" else 3.0
    return log2_grid(center - half, center + half, step)


def row_config(task: Task, row: str, candidate: ablation.Ingredient, mode: common.Mode) -> SweepConfig:
    with_candidate = row in ("candidate", "sp_candidate")
    config = replace(task.config, parameterizations=("sp" if row.startswith("sp") else "mup",), optimizers=("adam",),
                     log2_lrs=grid(mode, task.center + (candidate.shift if with_candidate else 0.0)))
    if not with_candidate:
        return config
    return replace(config, scales=(candidate.scales,), eps=candidate.eps if candidate.eps is not None else config.eps)


def db_of(out: Path, task: str, row: str) -> Path:
    return out / f"{task}_{row}.db"


def candidate_of(name: str) -> ablation.Ingredient:
    """An ingredient of the MLP ablation (its constants are the MLP's: Linear and Conv layers alike)."""
    known = {i.name: i for i in ablation.ingredients("mlp", 64) if i.base_width is None}
    if name not in known:
        raise SystemExit(f"unknown candidate {name!r}; known: {sorted(known)}")
    return known[name]


def run(out: Path, mode: common.Mode, candidate: ablation.Ingredient, workers: int, only: tuple[str, ...]) -> None:
    for task in tasks(mode).values():
        if only and task.name not in only:
            continue
        for row in task.rows:
            common.sweep(row_config(task, row, candidate, mode), db_of(out, task.name, row), workers, extend=6)


def plot(out: Path, mode: common.Mode, candidate: ablation.Ingredient) -> dict[str, Any]:
    summary: dict[str, Any] = common.header(NAME, mode)
    summary.update({"candidate": candidate.name, "candidate_what": candidate.what})
    ablation_summary = out.parent / "ablation" / "summary.json"
    ablated: dict[str, Any] = {}
    if ablation_summary.is_file():
        ablated = json.loads(ablation_summary.read_text())
        chosen, verdicts = decide(ablated)
        summary["decision"] = chosen or "none"
        summary["decision_candidates"] = ",".join(v.name for v in verdicts)
        for v in verdicts:
            k = common.key("decision", v.name)
            summary.update({k + "_reason": v.reason or "qualifies"})
            for m in DECIDING:
                summary[common.key(k, m, "gain")] = v.gains.get(m)
                summary[common.key(k, m, "regret_change")] = v.regret_changes.get(m)
    figures: list[str] = []
    for task in tasks(mode).values():
        analyses: dict[str, Analysis] = {}
        for row in task.rows:
            db = db_of(out, task.name, row)
            if not db.is_file():
                continue
            runs = common.load_runs(db, label=row)
            analyses[row] = analyze(runs, reference_width=task.config.base_width)
            summary.update(common.flat_transfer(common.key(task.name, row), analyses[row], row, "adam", runs))
            write_csv(runs, out / f"{task.name}_{row}_runs.csv")
        if not analyses:
            continue
        summary[common.key(task.name, "title")] = task.title
        summary[common.key(task.name, "rows")] = ",".join(analyses)
        if "sp" in analyses:
            sp_best = _best_at_widest(analyses["sp"])
            for row, a in analyses.items():
                summary[common.key(task.name, row, "gap_to_sp")] = _best_at_widest(a) / sp_best - 1
        # at equal constants: the candidate (our muP with them) against SP with them
        if "sp_candidate" in analyses:
            k = f"{task.name}_{candidate.name}_best_loss_max_width"
            best = (_best_at_widest(analyses["candidate"]) if "candidate" in analyses
                    else ablated.get(k) if task.name == "mlp" else None)
            if best is not None:
                summary[common.key(task.name, "candidate_gap_to_sp_candidate")] = (
                    best / _best_at_widest(analyses["sp_candidate"]) - 1)
        both = Analysis.combine(list(analyses.values()))
        stem = f"confirm_{task.name}_w{min(task.config.widths)}-{max(task.config.widths)}"
        figures += common.save_transfer(both, out, stem, f"{task.title}: {', '.join(analyses)}; candidate: "
                                        f"{candidate.what}")
    summary["figures"] = ",".join(figures)
    common.write_summary(out, summary)
    print(table(summary))
    return summary


def _best_at_widest(a: Analysis) -> float:
    widest = max(a.widths, key=lambda r: r.width)
    return widest.optimum.loss


def table(summary: dict[str, Any]) -> str:
    lines = ["| task | row | drift [90% CI] | regret at widest | best loss at widest | vs tuned SP |",
             "|---|---|---|---|---|---|"]
    for t in ("mlp", "resmlp", "cnn"):
        for row in str(summary.get(common.key(t, "rows"), "")).split(","):
            if not row:
                continue
            k = common.key(t, row)
            lines.append(f"| {t} | {row} | {summary[k + '_drift']:+.2f} [{summary[k + '_drift_lo']:+.2f}, "
                         f"{summary[k + '_drift_hi']:+.2f}] | {summary[k + '_regret_max_width']:.1%} | "
                         f"{summary[k + '_best_loss_max_width']:.3f} | {summary[k + '_gap_to_sp']:+.1%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__ or "")
    p.add_argument("--candidate", required=True, help="an ingredient of experiments/ablation.py (the rule picks it)")
    p.add_argument("--tasks", nargs="*", default=(), choices=("mlp", "resmlp", "cnn"))
    args = p.parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    candidate = candidate_of(args.candidate)
    if not args.plot_only:
        run(out, mode, candidate, args.workers, tuple(args.tasks))
    plot(out, mode, candidate)
    return 0


if __name__ == "__main__":
    sys.exit(main())

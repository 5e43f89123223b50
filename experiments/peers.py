"""The peers on every transfer task: SP, this package's muP, microsoft/mup and u-muP, side by side.

The four rows of each task are trained by the same engine on the same data, batches, seeds and widths
(:mod:`scaling.peers`): SP and our muP are the sweeps of ``transfer_mlp``, ``transfer_gpt`` and
``transfer_question`` (read from their databases), the peers are swept here with the same settings and
a log2 LR grid around their own optimum (u-muP's learning rate is absolute, its optimum near 2^0;
probed first). Each task is read two ways:

- ours: the 0.5-step grid and the quadratic optimum of :mod:`scaling.sweep.analysis` (drift with a 90%
  seed-bootstrap interval, regret of the base width's optimum at the widest width);
- the peers' own: the integer log2 grid only and the grid minimum (what the peers publish).

Tasks: the MLP 40-w-w-10 on MNIST-1D with Adam and with SGD, the byte-level GPT (our muP: readout
initialized as Table 3, like the peers), the question's 10-w-2 and w-w/4 (``ReduceLROnPlateau``)
networks on toy data and MNIST-1D. A peer that cannot express a task is reported as such.

    python experiments/peers.py --quick          # small grids (needs the other scripts' --quick runs)
    python experiments/peers.py                  # the full runs (~1.5 h on 2 cores; GPT most of it)
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import common
import transfer_gpt
import transfer_mlp
import transfer_question
from scaling.errors import ScalingError
from scaling.sweep import SweepConfig, log2_grid
from scaling.sweep.analysis import Analysis, analyze
from scaling.sweep.store import RunRecord, write_csv

NAME = "peers"
PEER_ROWS = ("microsoft-mup", "u-mup")
ROWS = ("sp", "mup", *PEER_ROWS)


@dataclass(frozen=True)
class PeerTask:
    """One transfer task: where its SP and muP sweeps live, and the peers' grids (full-size bounds)."""

    name: str
    title: str
    config: Callable[[common.Mode], SweepConfig]  # the SP sweep's config: the settings the peers share
    sources: dict[str, tuple[str, str, str]]  # row -> (experiment folder, database, label in it)
    grids: dict[str, tuple[float, float]]  # peer -> log2 LR bounds
    optimizer: str = "adam"
    metric: str = "train_loss"


def _mlp(optimizer: str) -> Callable[[common.Mode], SweepConfig]:
    sweep = next(s for s in transfer_mlp.SWEEPS if s.name == f"{optimizer}_sp")
    return lambda mode: transfer_mlp.config_of(sweep, mode, None)


def _gpt(mode: common.Mode) -> SweepConfig:
    return transfer_gpt.config_of(next(s for s in transfer_gpt.SWEEPS if s.name == "sp"), mode)


def _question(name: str) -> Callable[[common.Mode], SweepConfig]:
    task = next(t for t in transfer_question.TASKS if t.name == name)
    return lambda mode: replace(transfer_question.config_of(task, mode), parameterizations=("sp",))


TASKS = (
    PeerTask("mlp_adam", "MLP, MNIST-1D, Adam", _mlp("adam"),
             {"sp": ("transfer_mlp", "adam_sp.db", "sp"), "mup": ("transfer_mlp", "adam_mup.db", "mup")},
             {"microsoft-mup": (-9, -3), "u-mup": (-4, 3)}),
    PeerTask("mlp_sgd", "MLP, MNIST-1D, SGD", _mlp("sgd"),
             {"sp": ("transfer_mlp", "sgd_sp.db", "sp"), "mup": ("transfer_mlp", "sgd_mup.db", "mup")},
             {"microsoft-mup": (-5, 3), "u-mup": (-4, 4)}, optimizer="sgd"),
    PeerTask("gpt", "GPT, stdlib bytes, Adam", _gpt,
             {"sp": ("transfer_gpt", "gpt_sp.db", "sp"), "mup": ("transfer_gpt", "gpt_mup_initreadout.db", "mup")},
             {"microsoft-mup": (-9, -3), "u-mup": (-4, 2)}),
    *(PeerTask(t.name, t.name.replace("_", ", ").replace("question", "10-w-2").replace("funnel", "w-w/4 funnel"),
               _question(t.name),
               {"sp": ("transfer_question", f"{t.name}.db", "sp"), "mup": ("transfer_question", f"{t.name}.db", "mup")},
               {"microsoft-mup": (-14, 0), "u-mup": (-8, 4)})
      for t in transfer_question.TASKS),
)


def peer_config(task: PeerTask, peer: str, mode: common.Mode) -> SweepConfig:
    """The peer's sweep: the task's settings, the peer as the only row, a grid around its optimum."""
    base = task.config(mode)
    lo, hi = task.grids[peer]
    grid = {"full": log2_grid(lo, hi, 0.5), "quick": log2_grid(lo, hi, 1.0),
            "smoke": log2_grid((lo + hi) / 2 - 2, (lo + hi) / 2 + 2, 2.0)}[mode]
    return replace(base, parameterizations=(peer,), log2_lrs=grid, zero_readout=False)


def run(out: Path, mode: common.Mode, workers: int, only: tuple[str, ...]) -> dict[str, str]:
    """Sweep every peer on every task; returns ``{task_peer: reason}`` for the pairs a peer cannot express."""
    refused = {}
    for task in TASKS:
        if only and task.name not in only:
            continue
        for peer in PEER_ROWS:
            try:
                common.sweep(peer_config(task, peer, mode), out / f"{task.name}_{peer}.db", workers, extend=4,
                             metric=task.metric)
            except ScalingError as e:
                refused[common.key(task.name, peer)] = str(e)
                print(f"{task.name}: {peer} refused: {e}", flush=True)
    return refused


def integer_grid(runs: list[RunRecord]) -> list[RunRecord]:
    """The runs at integer log2 LRs: the grid the peers publish."""
    return [r for r in runs if float(r.cell.log2_lr).is_integer()]


def load_task(task: PeerTask, out: Path) -> dict[str, list[RunRecord]]:
    """Every row's runs that exist at this size (the SP and muP sweeps come from their own experiments)."""
    rows = {}
    for row in ROWS:
        if row in task.sources:
            folder, db_name, label = task.sources[row]
            db = out.parent / folder / db_name
        else:
            db, label = out / f"{task.name}_{row}.db", row
        if db.is_file():
            runs = [r for r in common.load_runs(db) if r.cell.parameterization == label]
            if runs:
                rows[row] = [replace(r, cell=r.cell._replace(parameterization=row)) for r in runs]
    return rows


def plot(out: Path, mode: common.Mode, refused: dict[str, str]) -> dict[str, Any]:
    summary: dict[str, Any] = common.header(NAME, mode)
    summary["rows"] = ",".join(ROWS)
    summary["tasks"] = ",".join(t.name for t in TASKS)
    figures: list[str] = []
    configs, details = {}, {}
    for task in TASKS:
        rows = load_task(task, out)
        if not rows:
            continue
        config = task.config(mode)
        summary[common.key(task.name, "title")] = task.title
        analyses = {}
        for row, runs in rows.items():
            analyses[row] = analyze(runs, task.metric, reference_width=config.base_width)  # type: ignore[arg-type]
            summary.update(common.flat_transfer(common.key(task.name, row), analyses[row], row, task.optimizer, runs))
            coarse = integer_grid(runs)
            if coarse:
                grid_min = analyze(coarse, task.metric, reference_width=config.base_width,  # type: ignore[arg-type]
                                   half_window=0)
                flat = common.flat_transfer(common.key(task.name, row, "int"), grid_min, row, task.optimizer)
                summary.update({k: v for k, v in flat.items() if not k.split("_int_")[-1].startswith("w")})
            write_csv(runs, out / f"{task.name}_{row}_runs.csv")
        for peer in PEER_ROWS:
            key = common.key(task.name, peer)
            summary[common.key(key, "expressible")] = key not in refused and peer in rows
            if key in refused:
                summary[common.key(key, "refused")] = refused[key]
        sp = analyses.get("sp")
        if sp is not None:
            sp_best = _best_at_widest(sp)
            for row, a in analyses.items():
                summary[common.key(task.name, row, "gap_to_sp")] = _best_at_widest(a) / sp_best - 1
        analysis = Analysis.combine(list(analyses.values()))
        labels = [r for r in ROWS if r in analyses]
        stem = f"peers_{task.name}_{'-'.join(labels)}_w{min(config.widths)}-{max(config.widths)}_s{len(config.seeds)}"
        figures += common.save_transfer(analysis, out, stem, common.title_of(config, task.title))
        configs[task.name] = {row: peer_config(task, row, mode).to_dict() for row in PEER_ROWS}
        details[task.name] = common.nested_transfer(analysis)
        common.print_table(analysis, out, f"{task.name}_table")
    summary["figures"] = ",".join(figures)
    common.prune_figures(out, figures)
    common.write_config(out, configs)
    common.write_json(out / "details.json", details)
    common.write_summary(out, summary)
    print(f"\nwrote {', '.join(figures)}, summary.json to {out}")
    return summary


def _best_at_widest(a: Analysis) -> float:
    widest = max(r.width for r in a.widths)
    return min(r.optimum.loss for r in a.widths if r.width == widest)


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__ or "")
    p.add_argument("--tasks", nargs="*", default=(), choices=[t.name for t in TASKS], help="only these tasks")
    args = p.parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    reasons = out / "refused.json"
    refused = json.loads(reasons.read_text()) if reasons.is_file() else {}
    if not args.plot_only:
        refused.update(run(out, mode, args.workers, tuple(args.tasks)))
        common.write_json(reasons, refused)
    plot(out, mode, refused)
    return 0


if __name__ == "__main__":
    sys.exit(main())

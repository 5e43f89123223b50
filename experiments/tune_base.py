"""Tune muP's width-independent per-role constants at the base width, by coordinate descent.

TP-V (Yang et al. 2022, §3 and App. F) tunes a handful of constants on a small model and transfers them:
the exponent table scales with width, the constants do not (:class:`scaling.table.RoleScales`). This
script tunes, on the MNIST-1D reference task at width 64 under the ``mup`` row with Adam, the base
learning rate and seven constants, as log2 factors: the learning rate of the readout, the input layer,
the vectors (biases) and the finite readout bias, and the init scale of the readout, the input layer
and the hidden layer.

The search is the package's (:func:`scaling.sweep.tune.tune`, what ``scaling tune`` runs on any model):
coordinate descent: for each coordinate in turn, a 1-D search on a step-0.5 grid of its log2 value
(five points around the current value, extended until the minimum has two points on each side), then
the vertex of a quadratic through those five points (the grid minimum if the fit is not convex or
its vertex leaves the window). At most three passes over the coordinates; it stops early when no
coordinate moved by 0.25 or more in a pass. The loss is the seed mean of the reference metric (the
mean of the last 50 training losses); a diverged run counts as +inf.

The tuning seeds (100, 101 by default) are not the evaluation seeds of the sweeps (0, 1), so the
constants are not fitted to the noise the transfer sweeps are later measured on.

Every run is a cell of one sweep database, ``tune_runs.db`` (:func:`scaling.sweep.engine.run_cells`: the
per-role constants are part of a run's key), so a killed tuning resumes where it stopped and a rerun
costs nothing. Artifacts: ``constants.json`` (the
constants as factors and log2, the tuned base LR, the tuning cost in FLOPs and runs), ``history.csv``
(every coordinate step) and ``runs.csv``.

    python experiments/tune_base.py --quick      # one pass, one seed, 200 steps (~1 min)
    python experiments/tune_base.py              # the full tuning (~3 min on 2 cores)
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import common
import keys
from scaling.sweep import SweepConfig
from scaling.sweep.engine import Batching
from scaling.sweep.store import write_csv
from scaling.sweep.tune import Search, parse_coordinate
from scaling.sweep.tune import tune as search_constants

NAME = "tune_base"

# (kind, role): kind "lr" with role None is the base learning rate itself.
COORDINATES: tuple[tuple[str, str | None], ...] = (
    ("lr", None), ("lr", "output"), ("lr", "input"), ("init", "output"),
    ("lr", "vector"), ("lr", "finite"), ("init", "input"), ("init", "hidden"),
)


@dataclass(frozen=True)
class Tuning:
    """What is tuned, where, and how hard."""

    parameterization: str = "mup"
    optimizer: str = "adam"
    model: str = "mlp"
    dataset: str = "mnist1d"
    dataset_kwargs: dict[str, Any] = field(default_factory=lambda: {"num_samples": 10_000})
    width: int = 64  # the base width: tuning happens here
    steps: int = 500
    batch_size: int = 128
    last_k: int = 50
    seeds: tuple[int, ...] = (100, 101)
    start_log2_lr: float = -6.5
    step: float = 0.5  # grid step of each 1-D search, in log2 units
    half: int = 2  # grid points kept on each side of the minimum
    passes: int = 3
    tolerance: float = 0.25  # stop when no coordinate moved this much (log2) in a pass
    bounds: tuple[float, float] = (-12.0, 8.0)  # log2 range of a constant
    lr_bounds: tuple[float, float] = (-20.0, 2.0)  # log2 range of the base LR


def tuning_for(mode: common.Mode) -> Tuning:
    """The full tuning, or a cheaper one for ``--quick`` / ``--smoke``."""
    if mode == "quick":
        return Tuning(steps=200, last_k=20, seeds=(100,), passes=1, step=1.0, half=1)
    if mode == "smoke":
        return Tuning(width=32, steps=20, last_k=5, seeds=(100,), passes=1, step=1.0, half=1,
                      dataset_kwargs={"num_samples": 1000})
    return Tuning()


# --- the search: scaling.sweep.tune (coordinate descent), on this task -----------------------------


def coordinate_name(kind: str, role: str | None) -> str:
    """``scaling tune``'s name of a coordinate: ``lr`` (the base LR) or ``kind.role``."""
    return "lr" if role is None else f"{kind}.{role}"


def tune(tuning: Tuning, db: Path, workers: int, batched: Batching = "auto") -> dict[str, Any]:
    """Coordinate descent over :data:`COORDINATES` (:func:`scaling.sweep.tune.tune`); returns the final
    state, its loss and the history.

    ``batched``: the points of one line search (one width, LR and init constants varied) train as one
    batched model where the engine's probe finds it faster (:mod:`scaling.sweep.batched`)."""
    t = tuning
    config = SweepConfig(model=t.model, dataset=t.dataset, dataset_kwargs=t.dataset_kwargs, base_width=t.width,
                         widths=(t.width,), parameterizations=(t.parameterization,), optimizers=(t.optimizer,),
                         seeds=t.seeds, steps=t.steps, batch_size=t.batch_size, last_k=t.last_k)
    search = Search(coordinates=tuple(coordinate_name(k, r) for k, r in COORDINATES), start_log2_lr=t.start_log2_lr,
                    step=t.step, half=t.half, passes=t.passes, tolerance=t.tolerance, bounds=t.bounds,
                    lr_bounds=t.lr_bounds, keep="last")
    got = search_constants(config, db, search=search, batched=batched, workers=workers, progress=False)
    history = [{"pass": h["pass"], "kind": parse_coordinate(h["coordinate"])[0],
                "role": parse_coordinate(h["coordinate"])[1] or "base",
                **{k: h[k] for k in ("from", "to", "loss", "grid_x", "grid_loss", "fitted", "points")}}
               for h in got.history]
    return {"log2_lr": got.log2_lr, "log2_scales": got.log2_scales, "final_loss": got.loss, "history": history,
            "flops": got.flops, "runs": got.runs, "seconds": got.train_seconds, "passes": got.passes,
            "last_move": got.last_move, "records": got.records}


def factors(log2_scales: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """RoleScales as a dict of factors, from log2 values."""
    return {kind: {role: 2.0 ** v for role, v in roles.items()} for kind, roles in log2_scales.items()}


def load_constants(out_root: Path | None, mode: common.Mode) -> dict[str, Any] | None:
    """The ``constants.json`` a tuning of this size wrote, or None."""
    args = argparse.Namespace(out=out_root, quick=mode == "quick", smoke=mode == "smoke")
    path = common.artifact_dir(NAME, args) / "constants.json"
    return json.loads(path.read_text()) if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__ or "")
    args = p.parse_args(argv)
    mode = common.mode_of(args)
    tuning = tuning_for(mode)
    out = common.artifact_dir(NAME, args)
    start = time.perf_counter()
    if args.plot_only and not (out / "constants.json").is_file():
        print(f"{out / 'constants.json'} is missing: run without --plot-only first", file=sys.stderr)
        return 2
    if args.plot_only:
        result = json.loads((out / "constants.json").read_text())
    else:
        got = tune(tuning, out / "tune_runs.db", args.workers)
        result = {
            "tuning": {**asdict(tuning), "coordinates": [list(c) for c in COORDINATES]},
            "provenance": common.provenance(),
            "base_log2_lr": got["log2_lr"], "base_lr": 2.0 ** got["log2_lr"],
            "log2_scales": got["log2_scales"], "scales": factors(got["log2_scales"]),
            "final_loss": got["final_loss"], "passes": got["passes"], "last_move": got["last_move"],
            "converged": got["last_move"] < tuning.tolerance,
            "tuning_flops": got["flops"], "tuning_runs": got["runs"], "tuning_train_seconds": got["seconds"],
            "history": got["history"],
        }
        common.write_json(out / "constants.json", result)
        with (out / "history.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(got["history"][0]))
            w.writeheader()
            w.writerows(got["history"])
        write_csv(got["records"], out / "runs.csv")
    summary: dict[str, Any] = {**common.header(NAME, mode)}
    t = result["tuning"]
    summary.update({
        "width": t["width"], "steps": t["steps"], "batch_size": t["batch_size"], "seeds": len(t["seeds"]),
        "parameterization": t["parameterization"], "optimizer": t["optimizer"],
        "base_log2_lr": result["base_log2_lr"], "base_lr": result["base_lr"], "final_loss": result["final_loss"],
        "passes": result["passes"], "last_move": result["last_move"], "converged": result["converged"],
        "tuning_flops": result["tuning_flops"], "tuning_runs": result["tuning_runs"],
        "tuning_train_seconds": result["tuning_train_seconds"],
    })
    for kind, roles in result["scales"].items():
        for role, v in roles.items():
            summary[common.key(kind, role)] = v
            summary[common.key(kind, role, "log2")] = result["log2_scales"][kind][role]
    keys.require(summary, keys.TUNE_BASE, NAME)
    common.write_summary(out, summary)
    print(f"\nconstants (factors): {json.dumps(result['scales'])}; base LR 2^{result['base_log2_lr']:.2f}; "
          f"tuning loss {result['final_loss']:.4f}; {result['tuning_runs']} runs, {result['tuning_flops']:.3g} FLOPs "
          f"({time.perf_counter() - start:.0f} s)\nwrote {out / 'constants.json'}, {out / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``scaling main``: the README's main job, a quick look at both halves of the package's claim.

1. A coordinate check of the MLP (40-w-w-10 on MNIST-1D) under SP and under muP with Adam: under SP
   the hidden activations and the logits move more with every doubling of the width, as the theory
   predicts; under muP every layer moves the same amount at every width.
2. A small LR-transfer sweep of the same MLP (SP and muP, Adam, a few widths): under SP the best
   learning rate falls as the width grows; under muP it stays put.

Everything lands in one folder (``out/`` by default): figures, data (JSON, CSV, SQLite) and tables.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from scaling.table import PARAMETERIZATIONS

QUICK_WIDTHS = (64, 128, 256, 512, 1024)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scaling main``."""
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (default out/)")
    parser.add_argument("--parameterization", default="mup", choices=sorted(PARAMETERIZATIONS),
                        help="the parameterization set against SP (default mup)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the sweep (default 2)")
    parser.add_argument("--steps", type=int, default=300, help="training steps per sweep run (default 300)")
    parser.add_argument("--widths", type=int, nargs="+", default=list(QUICK_WIDTHS),
                        help=f"sweep widths, the first is the base (default {' '.join(map(str, QUICK_WIDTHS))})")


def run(args: argparse.Namespace) -> int:
    """Run the coordinate check, then the transfer sweep; print where everything landed."""
    start = time.perf_counter()
    out: Path = args.out
    coord_files = _coordinate_check(out / "coord", args.parameterization)
    transfer_files = _transfer(out / "transfer", args.parameterization, args.workers, args.steps, args.widths)
    minutes = (time.perf_counter() - start) / 60
    print(f"\nDone in {minutes:.1f} min. Coordinate check: {', '.join(map(str, coord_files))}")
    print(f"LR transfer: {', '.join(map(str, transfer_files))}")
    return 0


def _coordinate_check(out: Path, parameterization: str) -> list[Path]:
    from scaling.coord import CoordConfig, coord_check, reference_batch
    from scaling.coord import plot as coord_plot
    from scaling.models import build
    from scaling.text import format_table

    out.mkdir(parents=True, exist_ok=True)
    config = CoordConfig(widths=(128, 256, 512, 1024), parameterization=parameterization, optimizer="adam",
                         lr=1e-2, steps=3, seeds=(0, 1))
    batch = reference_batch("mlp")
    print("== 1. Coordinate check: MLP 40-w-w-10 on MNIST-1D, Adam lr 1e-2, widths 128..1024, 3 steps, 2 seeds")
    results = {}
    for p in ("sp", parameterization):
        results[p] = coord_check(lambda w: build("mlp", w), batch, replace(config, parameterization=p), progress=True)
        results[p].to_json(out / f"coord-mlp-{p}-adam.json")
    rows = []
    for fit in results["sp"].fits:
        if fit.stat != "mean_abs_delta" or fit.step not in (1, config.steps):
            continue
        other = results[parameterization].fit(fit.module, fit.step)
        rows.append({
            "module": fit.module, "step": fit.step,
            "sp measured": f"{fit.slope:+.2f}", "sp predicted": _pred(fit.predicted), "sp verdict": fit.verdict,
            f"{parameterization} measured": f"{other.slope:+.2f}",
            f"{parameterization} predicted": _pred(other.predicted), f"{parameterization} verdict": other.verdict,
        })
    print("\nslope s of log2 mean|h_t - h_0| against log2 width (0: the same at every width)")
    print(format_table(rows))
    figure = out / f"coord-mlp-sp-vs-{parameterization}-adam-delta.png"
    coord_plot.plot_side_by_side(results, "mean_abs_delta", path=figure)
    return [figure, out / f"coord-mlp-{parameterization}-adam.json"]


def _pred(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _transfer(out: Path, parameterization: str, workers: int, steps: int, widths: list[int]) -> list[Path]:
    from scaling.sweep import SweepConfig, analyze, format_table, log2_grid, open_existing, run_parallel
    from scaling.sweep.figures import save_transfer_figure

    out.mkdir(parents=True, exist_ok=True)
    config = SweepConfig(model="mlp", parameterizations=("sp", parameterization), optimizers=("adam",),
                         widths=tuple(widths), base_width=min(widths), log2_lrs=log2_grid(-12, -4), seeds=(0,),
                         steps=steps, batch_size=128, last_k=min(50, steps))
    db = out / "transfer-mlp.db"
    print(f"\n== 2. LR transfer: MLP on MNIST-1D, Adam, widths {sorted(widths)}, log2 lr -12..-4, "
          f"{steps} steps ({len(config.cells())} runs; resumable: {db})")
    run_parallel(config, db, workers)
    with open_existing(db) as store:
        analysis = analyze(store.runs())
    table = format_table(analysis)
    (out / "transfer-mlp.txt").write_text(table + "\n")
    print(table)
    figures = save_transfer_figure(db, out, analysis=analysis)
    return [*figures, out / "transfer-mlp.txt", db]

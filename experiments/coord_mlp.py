"""Coordinate checks of the MLP for the paper: measured vs predicted width exponents, and SP vs muP side by side.

1. The exponent table. For SP, NTK and muP, each with SGD and with Adam, the slope ``s`` of
   ``log2 mean|h_1 - h_0|`` against ``log2 width`` for the input layer, the hidden layer and the logits of
   the ReLU MLP 40-w-w-10, next to the exponent :mod:`scaling.predict` derives from the exponent table.
   Settings where one step stays first order (the regime of the derivation; as ``tests/test_coord.py``):
   float64, one step at a small LR (1e-4 SGD, 1e-5 Adam), widths 256..2048, 3 seeds, a fixed batch of 64
   standardized MNIST-1D inputs. A slope "matches" within 0.25 of the prediction (``CoordConfig.match_tol``).
2. The figure: SP vs muP with Adam at a practical LR (1e-2), widths 128..2048, 3 seeds, steps 0..3, on a
   batch of 128 MNIST-1D examples (float32): ``mean|h_t - h_0|`` per layer against width. Under SP the
   hidden features and logits grow with width; under muP every line is flat.

Every coordinate check is saved as JSON (records and fits) and reused on a rerun (resumable).

    python experiments/coord_mlp.py --quick     # widths up to 1024, 2 seeds (~20 s)
    python experiments/coord_mlp.py             # ~1 min
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

import common
from scaling.coord import CoordConfig, CoordResult, coord_check
from scaling.coord import plot as coord_plot
from scaling.data import load_dataset
from scaling.models import MLP

NAME = "coord_mlp"
ROWS = ("sp", "ntk", "mup")
OPTIMIZERS = ("sgd", "adam")
MODULES = {"input": "input", "hidden.0": "hidden", "readout": "logits"}
TABLE_LR = {"sgd": 1e-4, "adam": 1e-5}


def sizes(mode: common.Mode) -> dict[str, Any]:
    if mode == "full":
        return {"table_widths": (256, 512, 1024, 2048), "seeds": 3, "fig_widths": (128, 256, 512, 1024, 2048)}
    if mode == "quick":
        return {"table_widths": (256, 512, 1024), "seeds": 2, "fig_widths": (128, 256, 512, 1024)}
    return {"table_widths": (64, 128), "seeds": 1, "fig_widths": (64, 128)}


def batch(size: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``size`` training examples of MNIST-1D (10k samples, standardized)."""
    data = load_dataset("mnist1d", num_samples=10_000)
    return data.x_train[:size].to(dtype), data.y_train[:size]


def cached(path: Path, make: Callable[[], CoordResult]) -> CoordResult:
    """A coordinate check read from ``path`` if there, else run and saved (resumable)."""
    if path.is_file():
        return CoordResult.from_json(path)
    result = make()
    result.to_json(path)
    result.to_csv(path.with_suffix(".csv"))
    result.to_csv(path.with_name(path.stem + "-fits.csv"), table="fits")
    return result


def _mlp64(width: int) -> MLP:
    return MLP(width).double()


def run_table(out: Path, mode: common.Mode, plot_only: bool) -> dict[tuple[str, str], CoordResult]:
    sz = sizes(mode)
    x = batch(64, torch.float64)
    results = {}
    for row in ROWS:
        for opt in OPTIMIZERS:
            ws = sz["table_widths"]
            path = out / f"table_mlp_{row}_{opt}_f64_lr{TABLE_LR[opt]:g}_w{ws[0]}-{ws[-1]}_s{sz['seeds']}.json"
            if plot_only and not path.is_file():
                continue
            results[row, opt] = cached(path, partial(
                coord_check, _mlp64, x, widths=sz["table_widths"], parameterization=row, optimizer=opt,
                lr=TABLE_LR[opt], steps=1, seeds=sz["seeds"], modules=r"^(input|hidden\.0|readout)$"))
    return results


def run_figure(out: Path, mode: common.Mode, plot_only: bool) -> dict[str, CoordResult]:
    sz = sizes(mode)
    x = batch(128, torch.float32)
    results = {}
    for p in ("sp", "mup"):
        path = out / f"fig_mlp_{p}_adam_lr0.01_w{sz['fig_widths'][0]}-{sz['fig_widths'][-1]}_s{sz['seeds']}_t3.json"
        if plot_only and not path.is_file():
            continue
        results[p] = cached(path, partial(
            coord_check, MLP, x, widths=sz["fig_widths"], parameterization=p, optimizer="adam", lr=1e-2, steps=3,
            seeds=sz["seeds"], modules=r"^(input|hidden\.0|readout)$"))
    return results


def main(argv: list[str] | None = None) -> int:
    args = common.parser(__doc__ or "").parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    torch.set_num_threads(1)
    table = run_table(out, mode, args.plot_only)
    figure = run_figure(out, mode, args.plot_only)
    sz = sizes(mode)
    summary: dict[str, Any] = common.header(NAME, mode)
    summary.update({
        "table_widths": ",".join(map(str, sz["table_widths"])), "table_seeds": sz["seeds"], "table_steps": 1,
        "table_dtype": "float64", "table_lr_sgd": TABLE_LR["sgd"], "table_lr_adam": TABLE_LR["adam"],
        "table_batch": 64, "match_tol": CoordConfig().match_tol, "stable_tol": CoordConfig().tol,
        "fig_widths": ",".join(map(str, sz["fig_widths"])), "fig_seeds": sz["seeds"], "fig_lr": 1e-2, "fig_steps": 3,
        "fig_batch": 128,
    })
    rows = []
    matches = cells = 0
    for (row, opt), result in table.items():
        for module, layer in MODULES.items():
            f = result.fit(module, 1)
            k = f"table_{row}_{opt}_{layer}"
            summary.update({f"{k}_measured": f.slope, f"{k}_lo": f.ci_low, f"{k}_hi": f.ci_high,
                            f"{k}_predicted": f.predicted, f"{k}_match": f.match})
            rows.append({"row": row, "optimizer": opt, "layer": layer, "measured": f.slope, "ci_low": f.ci_low,
                         "ci_high": f.ci_high, "predicted": f.predicted, "match": f.match})
            cells += 1
            matches += bool(f.match)
    summary.update({"table_cells": cells, "table_matches": matches, "check_table_all_match": matches == cells})
    if rows:
        with (out / "coord_table.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        lines = ["| row | optimizer | input (meas / pred) | hidden (meas / pred) | logits (meas / pred) |",
                 "|---|---|---|---|---|"]
        for row, opt in table:
            cellstr = [f"{summary[f'table_{row}_{opt}_{layer}_measured']:+.2f} / "
                       f"{summary[f'table_{row}_{opt}_{layer}_predicted']:+.2f}" for layer in MODULES.values()]
            lines.append(f"| {row} | {opt} | " + " | ".join(cellstr) + " |")
        (out / "coord_table.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
    figures = []
    for p, result in figure.items():
        worst = 0.0
        for module, layer in MODULES.items():
            for t in range(1, 4):
                for stat, short in (("mean_abs_delta", "delta"), ("mean_abs", "abs")):
                    f = result.fit(module, t, stat)  # type: ignore[arg-type]
                    summary[f"fig_{p}_adam_{layer}_t{t}_{short}_slope"] = f.slope
                    summary[f"fig_{p}_adam_{layer}_t{t}_{short}_predicted"] = f.predicted  # NaN: null
                    if stat == "mean_abs_delta" and math.isfinite(f.slope):
                        worst = max(worst, abs(f.slope))
        summary[f"fig_{p}_adam_max_abs_delta_slope"] = worst
        summary[f"fig_{p}_adam_unstable"] = len(result.unstable())
    if len(figure) == 2:
        ws = sz["fig_widths"]
        for stat, suffix in (("mean_abs_delta", "delta"), ("mean_abs", "abs")):
            stem = f"coord_mlp_mnist1d_sp-vs-mup_adam_lr0p01_w{ws[0]}-{ws[-1]}_s{sz['seeds']}_t1-3_{suffix}"
            fig = coord_plot.plot_side_by_side(figure, stat, steps=[1, 2, 3])  # type: ignore[arg-type]
            figures += common.save_figure(fig, out, stem)
    summary["figures"] = ",".join(figures)
    common.prune_figures(out, figures)
    common.write_config(out, {"sizes": {k: list(v) if isinstance(v, tuple) else v for k, v in sz.items()},
                              "table_lr": TABLE_LR, "modules": MODULES})
    common.write_summary(out, summary)
    print(f"\n{matches}/{cells} table slopes match the prediction; wrote {', '.join(figures)}, summary.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())


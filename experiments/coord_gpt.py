"""Coordinate check of the byte-level GPT for the paper: muP (and SP beside it) with Adam.

The pre-LN GPT of ``scaling.models.gpt`` (2 blocks, 4 heads: the head dimension grows with the width),
widths 128..1024, Adam at LR 1e-2, steps 0..3, 3 seeds, on a fixed batch of 4 windows of 16 bytes of the
standard library's source (``scaling.coord.reference_batch("gpt")``: the theory's limit is the width
growing at a fixed batch). muP zero-initializes the readout and the attention queries (TP-V App. D.2);
SP keeps PyTorch's defaults. Every recorded module's ``mean|h_t - h_0|`` slope against width is fitted;
muP predicts 0 for all of them. With a zero readout nothing below it moves in the first step, so those
changes are exactly 0 at t = 1 (verdict "zero", not unstable).

    python experiments/coord_gpt.py --quick     # widths 64..256, 1 seed (~15 s)
    python experiments/coord_gpt.py             # ~1-2 min
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import torch

import common
from scaling.coord import CoordResult, coord_check, reference_batch
from scaling.coord import plot as coord_plot
from scaling.models import build

NAME = "coord_gpt"
LR = 1e-2
STEPS = 3


def sizes(mode: common.Mode) -> dict[str, Any]:
    return {"full": {"widths": (128, 256, 512, 1024), "seeds": 3},
            "quick": {"widths": (64, 128, 256), "seeds": 1},
            "smoke": {"widths": (32, 64), "seeds": 1}}[mode]


def _gpt(width: int) -> torch.nn.Module:
    return build("gpt", width)


def check(out: Path, p: str, mode: common.Mode, plot_only: bool) -> CoordResult | None:
    sz = sizes(mode)
    ws = sz["widths"]
    path = out / f"coord_gpt_{p}_adam_lr{LR:g}_w{ws[0]}-{ws[-1]}_s{sz['seeds']}_t{STEPS}.json"
    if path.is_file():
        return CoordResult.from_json(path)
    if plot_only:
        return None
    zero = p == "mup"
    result = coord_check(_gpt, reference_batch("gpt"), widths=ws, parameterization=p, optimizer="adam", lr=LR,
                         steps=STEPS, seeds=sz["seeds"], zero_readout=zero, zero_query=zero)
    result.to_json(path)
    result.to_csv(path.with_suffix(".csv"))
    result.to_csv(path.with_name(path.stem + "-fits.csv"), table="fits")
    return result


def main(argv: list[str] | None = None) -> int:
    args = common.parser(__doc__ or "").parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    torch.set_num_threads(1)
    results = {p: r for p in ("sp", "mup") if (r := check(out, p, mode, args.plot_only)) is not None}
    sz = sizes(mode)
    summary: dict[str, Any] = common.header(NAME, mode)
    summary.update({"widths": ",".join(map(str, sz["widths"])), "seeds": sz["seeds"], "lr": LR, "steps": STEPS,
                    "n_layers": 2, "n_heads": 4, "batch_windows": 4, "block_size": 16,
                    "mup_zero_readout": True, "mup_zero_query": True})
    for p, result in results.items():
        named = [m.module for m in result.modules if m.alias_of is None]
        worst, zero = 0.0, 0
        for module in named:
            for t in range(1, STEPS + 1):
                f = result.fit(module, t)
                summary[common.key(p, module.replace(".", "_"), f"t{t}", "slope")] = f.slope
                if math.isfinite(f.slope):
                    worst = max(worst, abs(f.slope))
                else:
                    zero += 1
        unstable = result.unstable()
        summary.update({
            f"{p}_modules": len(named), f"{p}_max_abs_delta_slope": worst, f"{p}_zero_fits": zero,
            f"{p}_unstable": len(unstable),
            f"{p}_unstable_modules": ",".join(sorted({f.module for f in unstable})),
            f"{p}_readout_t1_slope": result.fit("readout", 1).slope,
        })
        print(f"\n{p}: mean|h_t - h_0| slopes, steps 1..{STEPS}\n{result.table(steps=range(1, STEPS + 1))}")
    if "mup" in results:
        summary["check_mup_all_stable"] = summary["mup_unstable"] == 0
    figures = []
    if len(results) == 2:
        ws = sz["widths"]
        for stat, suffix in (("mean_abs_delta", "delta"), ("mean_abs", "abs")):
            stem = f"coord_gpt_stdlib-bytes_sp-vs-mup_adam_lr0p01_w{ws[0]}-{ws[-1]}_s{sz['seeds']}_t1-{STEPS}_{suffix}"
            modules = ["wte", "blocks.0.attn", "blocks.1.fc", "blocks.1.proj", "ln_f", "readout"]
            modules = [m for m in modules if any(x.module == m for x in results["mup"].modules)]
            fig = coord_plot.plot_side_by_side(results, stat, steps=list(range(1, STEPS + 1)),  # type: ignore[arg-type]
                                               modules=modules)
            figures += common.save_figure(fig, out, stem)
    summary["figures"] = ",".join(figures)
    common.prune_figures(out, figures)
    common.write_config(out, {p: vars(r.config) for p, r in results.items()})
    common.write_summary(out, summary)
    print(f"\nwrote {', '.join(figures)}, summary.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Alignment measured over training: does each layer's update still add up coherently when muP's optimum drifts?

muP's Adam learning rates (1/m for the hidden and readout weights, TP-V Table 3) assume full alignment
of a layer's update with its input (``rms(dW x) ~ n rms(dW) rms(x)``); without it (``~ sqrt(n)``) the
exponent that keeps the update's effect O(1) is ``m^-1/2`` (Everett et al. 2024), and a muP that assumes
too much alignment trains the wide models too slowly: its optimum drifts up. This script measures the
alignment exponent (``scaling.coord.alignment_check``: the slope of ``log2 rms(dW x)/(rms(dW) rms(x))``
on ``log2 fan_in`` across widths, 95% interval) at steps 1, 10, 100 and the last, on the transfer tasks'
own protocols and their base width's tuned LR:

- ``mlp``: MLP 40-w-w-10, MNIST-1D (10k), Adam, 500 steps, batch 128, widths 64..1024, 2 seeds, LR the
  base width's optimum from ``transfer_mlp`` (2^-6.2, the same for SP and muP);
- ``gpt``: byte-level GPT (2 blocks, 4 heads, 64-byte windows), Adam, 300 steps, batch 16, widths
  32..256, 2 seeds, muP with the readout initialized as Table 3 (``transfer_gpt``'s ``mup_initreadout``)
  at its base optimum 2^-5.6, SP at its own (2^-5.6).

Each layer is measured on a fixed batch of the training data (256 MLP examples, 8 GPT windows). Results
per model and row are saved as JSON as soon as they exist (a rerun skips them).

    python experiments/alignment.py --quick     # MLP widths 64..256, 100 steps, 1 seed (~1 min)
    python experiments/alignment.py             # ~10 min on 2 cores
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

import common
from scaling.coord.alignment import FULL, NONE, AlignmentRecord, AlignmentResult, alignment_check, fit_alignment
from scaling.data import load_dataset
from scaling.models import build

NAME = "alignment"
ROWS = ("sp", "mup")


@dataclass(frozen=True)
class Protocol:
    """One model's measurement: the transfer task's data, widths, steps and base-width LRs."""

    model: str
    title: str
    dataset: str
    dataset_kwargs: dict[str, Any]
    model_kwargs: dict[str, Any]
    widths: tuple[int, ...]
    steps: int
    batch_size: int
    measured: int  # examples (windows) in the fixed measured batch
    seeds: tuple[int, ...]
    log2_lr: dict[str, float]


def protocols(mode: common.Mode) -> list[Protocol]:
    mlp = Protocol("mlp", "MLP 40-w-w-10, MNIST-1D, Adam", "mnist1d", {"num_samples": 10_000}, {},
                   (64, 128, 256, 512, 1024), 500, 128, 256, (0, 1), {"sp": -6.18, "mup": -6.18})
    gpt = Protocol("gpt", "byte-level GPT, Adam", "stdlib-bytes", {"block_size": 64},
                   {"block_size": 64, "n_heads": 4, "n_layers": 2}, (32, 64, 128, 256), 300, 16, 8, (0, 1),
                   {"sp": -5.6, "mup": -5.6})
    if mode == "quick":
        return [Protocol(**{**asdict(mlp), "widths": (64, 128, 256), "steps": 100, "seeds": (0,)})]
    if mode == "smoke":
        return [Protocol(**{**asdict(mlp), "widths": (32, 64), "steps": 10, "seeds": (0,), "measured": 32})]
    return [mlp, gpt]


def at_steps(steps: int) -> tuple[int, ...]:
    return tuple(sorted({t for t in (1, 10, 100, steps) if t <= steps}))


def measure(p: Protocol, row: str) -> AlignmentResult:
    data = load_dataset(p.dataset, **p.dataset_kwargs)
    batch = data.sample(p.measured, torch.Generator().manual_seed(12345))
    stream = data.batches(p.batch_size, torch.Generator().manual_seed(0))
    train = [next(stream) for _ in range(p.steps)]  # the same batches for every width and seed
    return alignment_check(lambda w: build(p.model, w, **p.model_kwargs), batch, widths=p.widths,
                           base_width=p.widths[0], parameterization=row, optimizer="adam", lr=2.0 ** p.log2_lr[row],
                           steps=p.steps, seeds=p.seeds, at=at_steps(p.steps), train_batches=train, progress=True)


def load_or_measure(out: Path, p: Protocol, row: str, plot_only: bool) -> list[AlignmentRecord] | None:
    path = out / f"alignment_{p.model}_{row}_adam_w{p.widths[0]}-{p.widths[-1]}_s{len(p.seeds)}_n{p.steps}.json"
    if path.is_file():
        return [AlignmentRecord(**r) for r in json.loads(path.read_text())["records"]]
    if plot_only:
        return None
    result = measure(p, row)
    common.write_json(path, {"protocol": asdict(p), "row": row, "records": [asdict(r) for r in result.records]})
    print(f"\n{p.model} {row}\n{result.table()}")
    return result.records


def figure(out: Path, p: Protocol, fits: dict[str, list[Any]]) -> list[str]:
    """The alignment exponent per layer against the step, SP and muP side by side, full and none marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(fits), figsize=(5 * len(fits), 3.6), layout="constrained", sharey=True,
                             squeeze=False)
    for ax, (row, row_fits) in zip(axes[0], fits.items()):
        modules = list(dict.fromkeys(f.module for f in row_fits if not math.isnan(f.slope)))
        for i, m in enumerate(modules):
            pts = [f for f in row_fits if f.module == m]
            steps = [f.step for f in pts]
            ax.errorbar(steps, [f.slope for f in pts], fmt="o-", ms=3, capsize=2, color=f"C{i % 10}", label=m,
                        yerr=[[max(0.0, f.slope - f.low) if math.isfinite(f.low) else 0.0 for f in pts],
                              [max(0.0, f.high - f.slope) if math.isfinite(f.high) else 0.0 for f in pts]])
        ax.axhline(FULL, color="gray", ls="--", lw=0.8)
        ax.axhline(NONE, color="gray", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_title(f"{row}", fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=6, ncol=2)
    axes[0][0].set_ylabel("alignment exponent (1 full, 1/2 none)")
    fig.suptitle(f"{p.title}: alignment of each layer's update with its input, widths "
                 f"{p.widths[0]}..{p.widths[-1]}", fontsize=10)
    return common.save_figure(fig, out, f"alignment_{p.model}_sp-vs-mup_adam_w{p.widths[0]}-{p.widths[-1]}"
                                        f"_s{len(p.seeds)}_n{p.steps}")


def main(argv: list[str] | None = None) -> int:
    args = common.parser(__doc__ or "").parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    torch.set_num_threads(1)
    summary: dict[str, Any] = common.header(NAME, mode)
    figures: list[str] = []
    for p in protocols(mode):
        fits: dict[str, list[Any]] = {}
        for row in ROWS:
            records = load_or_measure(out, p, row, args.plot_only)
            if records is None:
                continue
            fits[row] = fit_alignment(records, at_steps(p.steps))
            for f in fits[row]:
                if math.isnan(f.slope):
                    continue
                k = common.key(p.model, row, f.module.replace(".", "_"), f"t{f.step}")
                summary.update({f"{k}_exponent": f.slope, f"{k}_exponent_lo": f.low, f"{k}_exponent_hi": f.high,
                                f"{k}_alpha_w{p.widths[-1]}": f.alpha.get(p.widths[-1], math.nan),
                                f"{k}_reading": f.reading})
        summary.update({f"{p.model}_widths": ",".join(map(str, p.widths)), f"{p.model}_steps": p.steps,
                        f"{p.model}_seeds": len(p.seeds)})
        if fits:
            figures += figure(out, p, fits)
    summary["figures"] = ",".join(figures)
    common.prune_figures(out, figures)
    common.write_config(out, {p.model: asdict(p) for p in protocols(mode)})
    common.write_summary(out, summary)
    print(f"\nwrote {', '.join(figures)}, summary.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

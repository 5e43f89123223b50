"""Muon's accumulated hidden update across widths: does it explain why muP's optimum moves with Muon?

``transfer_muon``'s ``parts`` and ``batch`` tasks found that on the MLP 40-w-w-10 (MNIST-1D, 500 steps)
with AdamW's base LR held, Muon's optimum falls with width at batch 128 (drift -0.36) and 512 (-0.69)
and rises at batch 32 (+0.24). This script looks inside those runs: the sweep engine's own model,
optimizer, batches and seeds (``transfer_muon.held_config``), at the held point itself (both parts at
base LR ``2^BASE_LOG2_LR``), widths 64..512, 2 seeds. At steps 10, 100, 300 and 500 it measures the
hidden weight's accumulated update ``dW = W_t - W_0``, on a fixed batch of 256 training examples
whose hidden input is ``h`` (the first layer's ReLU output):

- ``op``: ``|dW|_op``, its operator norm. The spectral condition (Yang, Simon & Bernstein 2023, Cond. 1)
  asks for ``Theta(sqrt(fan_out / fan_in)) = Theta(1)`` here, at every step and so for the sum;
- ``srank``: its stable rank ``|dW|_F^2 / |dW|_op^2``;
- ``effect``: ``rms(dW h)``, the update's part of the hidden pre-activation's change;
- ``spectral_alignment``: ``rms(dW h) / (|dW|_op rms(h))`` (the condition's argument assumes it is
  ``Theta(1)``);
- ``input_change``: ``rms(W_0 (h_t - h_0))``, the part that comes from the first layer's change.

Each quantity's exponent is the slope of ``log2`` of its seed mean on ``log2 width`` (the interval:
the two seeds' own slopes). muP with Adam (``transfer_mlp``'s protocol at its base optimum
``2^-6.18``, whose drift at this horizon is positive) is the reference row.

Written before the batch 32 and 512 rows ran (the batch 128 and Adam rows had shown ``op`` growing
like ``width^+0.10`` by step 500 under Muon and not under Adam, ``spectral_alignment`` flat): if the
accumulated update's growth with width is what makes Muon's optimum fall, its exponent orders as the
drifts do, batch 32 below batch 128 below batch 512, and is at most 0 at batch 32, whose optimum
rises. What the rows show is in the README's Muon paragraph and the paper.

    python experiments/muon_updates.py            # ~1 min on 2 cores
    python experiments/muon_updates.py --quick    # widths 64..256, 100 steps, 1 seed
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import common
import transfer_mlp
import transfer_muon
from scaling.sweep import SweepConfig
from scaling.sweep.store import Cell
from scaling.sweep.train import build_model, reference_task, training_batches

NAME = "muon_updates"
QUANTITIES = ("op", "srank", "effect", "spectral_alignment", "input_change")
LABELS = {"op": "|dW|_op", "srank": "stable rank of dW", "effect": "rms(dW h)",
          "spectral_alignment": "rms(dW h) / (|dW|_op rms h)", "input_change": "rms(W_0 dh)"}
MEASURED = 256  # examples in the fixed measured batch
ADAM_LOG2_LR = -6.18  # transfer_mlp's muP base optimum (alignment.py's)


@dataclass(frozen=True)
class Row:
    """One measured protocol: a summary prefix, its label, the held row it looks inside (or Adam's)."""

    name: str
    label: str
    held: str | None  # transfer_muon's Held row, None for the Adam reference


ROWS = (
    Row("muon_b32", "Muon, batch 32", "mup_fixadam_b32"),
    Row("muon_b128", "Muon, batch 128", "mup_fixadam"),
    Row("muon_b512", "Muon, batch 512", "mup_fixadam_b512"),
    Row("adam_b128", "Adam, batch 128 (reference)", None),
)


def at_steps(steps: int) -> tuple[int, ...]:
    return tuple(sorted({t for t in (10, 100, 300, steps) if t <= steps}))


def row_config(mode: common.Mode, row: Row) -> tuple[SweepConfig, float]:
    """The sweep config whose runs ``row`` looks inside, and the base log2 LR it measures at."""
    if row.held is None:
        base = transfer_mlp.protocol(mode)
        config = replace(base, parameterizations=("mup",), optimizers=("adam",), log2_lrs=(ADAM_LOG2_LR,))
        log2_lr = ADAM_LOG2_LR
    else:
        held = next(h for h in transfer_muon.HELD if h.row == row.held)
        config = transfer_muon.held_config(mode, held)
        log2_lr = transfer_muon.BASE_LOG2_LR
    widths = {"full": (64, 128, 256, 512), "quick": (64, 128, 256), "smoke": (32, 64)}[mode]
    return replace(config, widths=widths, base_width=widths[0]), log2_lr


def layers(model: torch.nn.Module) -> tuple[torch.nn.Linear, torch.nn.Linear]:
    """The MLP's first layer and its (only) hidden layer."""
    first, hidden = model.get_submodule("input"), model.get_submodule("hidden.0")
    if not (isinstance(first, torch.nn.Linear) and isinstance(hidden, torch.nn.Linear)):
        raise TypeError(f"expected the reference MLP (input and hidden.0 Linear layers), got {type(model).__name__}")
    return first, hidden


def rms(t: torch.Tensor) -> float:
    return float(t.pow(2).mean().sqrt())


@torch.no_grad()
def snapshot(model: torch.nn.Module, w0: torch.Tensor, h0: torch.Tensor, x: torch.Tensor) -> dict[str, float]:
    """The quantities of the docstring for the MLP's (only) hidden layer."""
    first, hidden = layers(model)
    h = torch.relu(first(x))
    dw = hidden.weight - w0
    s = torch.linalg.svdvals(dw)
    effect = rms(h @ dw.T)
    return {"op": float(s[0]), "srank": float(s.pow(2).sum() / s[0] ** 2), "effect": effect,
            "spectral_alignment": effect / (float(s[0]) * rms(h)), "input_change": rms((h - h0) @ w0.T)}


def measure(mode: common.Mode, row: Row) -> list[dict[str, Any]]:
    """One record per (width, seed, step): the quantities of the docstring."""
    config, log2_lr = row_config(mode, row)
    settings = config.settings
    task = reference_task(settings)
    x, _ = task.data.sample(MEASURED if mode != "smoke" else 32, torch.Generator().manual_seed(12345))
    at = set(at_steps(settings.steps))
    records = []
    for seed in config.seeds:
        for width in config.widths:
            cell = Cell("mup", config.optimizers[0], width, log2_lr, seed)
            model, optimizer, _ = build_model(settings, cell, task)
            first, hidden = layers(model)
            w0 = hidden.weight.detach().clone()
            with torch.no_grad():
                h0 = torch.relu(first(x))
            batches = training_batches(settings, cell, task.data)
            for step in range(1, settings.steps + 1):
                xb, yb = next(batches)
                loss = task.loss(model(xb), yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if step in at:
                    records.append({"width": width, "seed": seed, "step": step, "loss": loss.item(),
                                    **snapshot(model, w0, h0, x)})
    return records


def slope(widths: list[int], values: list[float]) -> float:
    return float(np.polyfit(np.log2(widths), np.log2(values), 1)[0])


def exponents(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per quantity and step: the exponent of the seed mean, the seeds' own slopes' range, and the seed
    mean at the narrowest and widest widths."""
    out: dict[str, Any] = {}
    widths = sorted({r["width"] for r in records})
    seeds = sorted({r["seed"] for r in records})
    for step in sorted({r["step"] for r in records}):
        at = [r for r in records if r["step"] == step]
        for q in (*QUANTITIES, "loss"):
            value = {(r["width"], r["seed"]): r[q] for r in at}
            mean = [float(np.mean([value[w, s] for s in seeds])) for w in widths]
            per_seed = [slope(widths, [value[w, s] for w in widths]) for s in seeds]
            k = common.key(q, f"t{step}")
            out.update({f"{k}_exponent": slope(widths, mean), f"{k}_exponent_lo": min(per_seed),
                        f"{k}_exponent_hi": max(per_seed), f"{k}_w{widths[0]}": mean[0],
                        f"{k}_w{widths[-1]}": mean[-1]})
    return out


def load_or_measure(out: Path, mode: common.Mode, row: Row, plot_only: bool) -> list[dict[str, Any]] | None:
    config, log2_lr = row_config(mode, row)
    path = out / f"{row.name}_w{config.widths[0]}-{config.widths[-1]}_s{len(config.seeds)}_n{config.steps}.json"
    if path.is_file():
        records: list[dict[str, Any]] = json.loads(path.read_text())["records"]
        return records
    if plot_only:
        return None
    records = measure(mode, row)
    common.write_json(path, {"row": asdict(row), "log2_lr": log2_lr, "config": config.to_dict(), "records": records})
    return records


def figure(out: Path, fits: dict[str, dict[str, Any]], steps: tuple[int, ...], widths: tuple[int, ...]) -> list[str]:
    """Each quantity's exponent against the step, one line per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ("op", "effect", "spectral_alignment", "srank")
    fig, axes = plt.subplots(1, len(shown), figsize=(3.4 * len(shown), 3.2), layout="constrained", sharex=True)
    for ax, q in zip(axes, shown):
        for i, row in enumerate(r for r in ROWS if r.name in fits):
            e = fits[row.name]
            ys = [e[f"{q}_t{t}_exponent"] for t in steps]
            err = [[y - e[f"{q}_t{t}_exponent_lo"] for t, y in zip(steps, ys)],
                   [e[f"{q}_t{t}_exponent_hi"] - y for t, y in zip(steps, ys)]]
            ax.errorbar(steps, ys, yerr=np.clip(err, 0, None), fmt="o-" if row.held else "s--", ms=3, capsize=2,
                        color=f"C{i}", label=row.label)
        ax.axhline(0, color="gray", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("step")
        ax.set_title(LABELS[q], fontsize=9)
    axes[0].set_ylabel(f"exponent in width ({widths[0]}..{widths[-1]})")
    axes[0].legend(fontsize=7)
    fig.suptitle("MLP, MNIST-1D, muP: the hidden weight's accumulated update dW across widths", fontsize=10)
    return common.save_figure(fig, out, f"muon_updates_mlp_w{widths[0]}-{widths[-1]}")


def row_numbers(row: Row, fit: dict[str, Any]) -> dict[str, Any]:
    """One row's summary keys: its exponents, its label and the held row it looks inside."""
    numbers = {common.key(row.name, k): v for k, v in fit.items()}
    numbers[common.key(row.name, "label")] = row.label
    if row.held is not None:
        numbers[common.key(row.name, "held")] = row.held
    return numbers


def main(argv: list[str] | None = None) -> int:
    args = common.parser(__doc__ or "").parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    measured = {row.name: records for row in ROWS
                if (records := load_or_measure(out, mode, row, args.plot_only)) is not None}
    fits = {name: exponents(records) for name, records in measured.items()}
    config, _ = row_config(mode, ROWS[0])
    steps = at_steps(config.steps)
    figures = figure(out, fits, steps, config.widths) if fits else []
    summary: dict[str, Any] = {
        **common.header(NAME, mode), "widths": ",".join(map(str, config.widths)), "steps": ",".join(map(str, steps)),
        "seeds": len(config.seeds), "muon_log2_lr": transfer_muon.BASE_LOG2_LR, "adam_log2_lr": ADAM_LOG2_LR,
        "figures": ",".join(figures), "rows": ",".join(r.name for r in ROWS if r.name in fits)}
    for row in ROWS:
        if row.name in fits:
            summary.update(row_numbers(row, fits[row.name]))
            last = {q: fits[row.name][f"{q}_t{steps[-1]}_exponent"] for q in QUANTITIES}
            print(f"{row.label:28s} " + "  ".join(f"{q} {v:+.2f}" for q, v in last.items() if math.isfinite(v)))
    common.prune_figures(out, figures)
    common.write_config(out, {row.name: row_config(mode, row)[0].to_dict() for row in ROWS})
    common.write_summary(out, summary)
    print(f"\nwrote {', '.join(figures)}, summary.json to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

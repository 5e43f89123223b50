"""``scaling coord-check``: measured vs predicted width exponents of a model, with plots and data.

    scaling coord-check --model mlp --parameterization mup --compare sp --optimizer adam
    scaling coord-check --model mypkg.nets:build --data mypkg.nets:batch --compare sp
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from torch import nn

from scaling.cli.sweep import key_value
from scaling.coord import CoordConfig, Fit, Stat, coord_check, reference_batch
from scaling.errors import ScalingError
from scaling.models import REGISTRY, build
from scaling.sweep.task import import_object, is_import_spec
from scaling.table import PARAMETERIZATIONS


def own_model_and_batch(args: argparse.Namespace) -> tuple[Callable[[int], nn.Module], Any]:
    """The user's builder and fixed batch, ``--model module:function`` and ``--data module:function``."""
    builder = import_object(args.model, "model")
    if args.data is None:
        raise ScalingError(f"--model {args.model} is your own: give its fixed batch with --data module:function")
    batch = import_object(args.data, "data")()
    if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
        raise ScalingError(f"--data {args.data} must return (inputs, targets), got {type(batch).__name__}")
    return builder, tuple(batch)


def _model_and_batch(args: argparse.Namespace) -> tuple[Callable[[int], nn.Module], Any]:
    """The builder and fixed batch the command line names (a reference model, or module:function)."""
    if args.hf is not None:
        args.model = f"hf-{args.hf}"
        options = dict(key_value(o) for o in args.hf_option)
        name = args.model
        return (lambda w: build(name, w, **options)), reference_batch(name, args.batch_size)
    if args.hf_option:
        raise ScalingError("--hf-option needs --hf FAMILY")
    if is_import_spec(args.model):
        return own_model_and_batch(args)
    if args.model not in REGISTRY:
        raise ScalingError(f"unknown model {args.model!r}; choose one of: {', '.join(REGISTRY)}, or module:function")
    model = args.model
    return (lambda w: build(model, w)), reference_batch(model, args.batch_size)


def _stem(model: str) -> str:
    """A file-name-safe name of the model (``mypkg.nets:build`` -> ``mypkg.nets-build``)."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", model)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scaling coord-check``."""
    d = CoordConfig()
    parser.add_argument("--model", default="mlp", help=f"a reference model ({', '.join(REGISTRY)}) or your "
                        "builder as module:function (width -> nn.Module)")
    parser.add_argument("--data", default=None, metavar="MODULE:FUNCTION",
                        help="for your own model: a function returning the fixed batch (inputs, targets)")
    parser.add_argument("--parameterization", default=d.parameterization, choices=sorted(PARAMETERIZATIONS))
    parser.add_argument("--optimizer", default=d.optimizer, help="sgd, adam, adamw (or another torch.optim name)")
    parser.add_argument("--lr", type=float, default=None, help="base learning rate (default 0.1 SGD, 0.01 Adam)")
    parser.add_argument("--widths", type=int, nargs="+", default=list(d.widths))
    parser.add_argument("--base-width", type=int, default=None, help="default: the narrowest width")
    parser.add_argument("--steps", type=int, default=d.steps, help="training steps T; states 0..T are measured")
    parser.add_argument("--seeds", type=int, default=len(d.seeds), help="number of seeds")
    parser.add_argument("--batch-size", type=int, default=None, help="default 128 (4 windows of 16 bytes for gpt)")
    parser.add_argument("--modules", default=None, help="regex on module names to record")
    parser.add_argument("--zero-readout", action="store_true",
                        help="zero-initialize the readout (TP-V App. D.2; recommended for gpt)")
    parser.add_argument("--zero-query", action="store_true", help="zero the attention queries (gpt; TP-V App. D.2)")
    parser.add_argument("--init", default=None, choices=("pytorch", "base", "own"),
                        help="base: the model draws its own init (nanoGPT's N(0, 0.02)); scale each tensor from the "
                        "base model's measured std instead of PyTorch's default; own: the model's own init, the "
                        f"same at every width (default {d.init}, own with --hf)")
    parser.add_argument("--hf", default=None, choices=("gpt2", "llama"),
                        help="a transformers family built from a tiny config at each width (the hf extra)")
    parser.add_argument("--hf-option", action="append", default=[], metavar="KEY=VALUE",
                        help="a config option of the --hf model, e.g. num_hidden_layers=2 (repeat)")
    parser.add_argument("--tol", type=float, default=d.tol)
    parser.add_argument("--match-tol", type=float, default=d.match_tol)
    parser.add_argument("--compare", default=None, choices=sorted(PARAMETERIZATIONS),
                        help="also run this parameterization and plot the two side by side (e.g. sp)")
    parser.add_argument("--out", default="out/coord", help="folder for the plot and the data")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--alignment", action="store_true",
                        help="also measure each Linear layer's alignment rms(dW x) / (rms(dW) rms(x)) across widths "
                        "(Everett et al. 2024), beside full and no alignment, and write it as CSV")
    parser.add_argument("--fail-on-unstable", action="store_true",
                        help="exit 1 when an output the theory predicts stable grows or shrinks beyond --tol, its "
                        "interval included, or a fit rests on non-finite measurements (at steps >= 1)")


def run(args: argparse.Namespace) -> int:
    """``scaling coord-check``: print measured vs predicted exponents, write plot and data."""
    try:
        builder, batch = _model_and_batch(args)
    except ScalingError as e:
        print(f"scaling coord-check: error: {e}", file=sys.stderr)
        return 2
    config = CoordConfig(
        widths=tuple(args.widths), base_width=args.base_width, parameterization=args.parameterization,
        optimizer=args.optimizer, lr=args.lr, steps=args.steps, seeds=tuple(range(args.seeds)),
        zero_readout=args.zero_readout, zero_query=args.zero_query, tol=args.tol, match_tol=args.match_tol,
        init=args.init or ("own" if args.hf else CoordConfig().init),
    )
    try:
        result = coord_check(builder, batch, config, modules=args.modules, progress=True)
    except ScalingError as e:
        print(f"scaling coord-check: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = _stem(args.model)
    tag = f"{stem}-{config.parameterization}-{config.optimizer}"
    print(f"coordinate check: {args.model}, {config.parameterization}, {config.optimizer} lr {config.base_lr:g}, "
          f"widths {list(config.widths)} (base {config.base}), seeds {len(config.seeds)}, steps 0..{config.steps}")
    described: tuple[tuple[Stat, str], ...] = (
        ("mean_abs_delta", "mean|h_t - h_0| (the change the theory predicts)"),
        ("mean_abs", "mean|h_t| (predicted max(size at init, change): a limit, reached at large widths)"))
    for stat, what in described:
        print(f"\n{what}: slope s of its log2 against log2 width\n(stable: |s| <= {config.tol}; "
              f"match: |s - predicted| <= {config.match_tol})")
        print(result.table(stat, steps=range(1, config.steps + 1), notes=False))
    for note in result.notes:
        print(f"\nnote: {note}")
    result.to_json(out / f"coord-{tag}.json")
    result.to_csv(out / f"coord-{tag}.csv")
    result.to_csv(out / f"coord-{tag}-fits.csv", table="fits")
    written = [f"coord-{tag}.json", f"coord-{tag}.csv", f"coord-{tag}-fits.csv"]
    other = None
    if args.compare:
        other = coord_check(builder, batch, replace(config, parameterization=args.compare),
                            modules=args.modules, progress=True)
        other_tag = f"{stem}-{args.compare}-{config.optimizer}"
        other.to_json(out / f"coord-{other_tag}.json")
        written.append(f"coord-{other_tag}.json")
    if args.alignment:
        from scaling.coord import alignment_check

        aligned = alignment_check(builder, batch, config, progress=True)
        print(f"\nalignment per layer and step (1: full, the exponent muP's LRs assume; 1/2: none)\n{aligned.table()}")
        name = f"alignment-{tag}.csv"
        _write_rows(out / name, [{"module": f.module, "role": f.role, "step": f.step, "exponent": f.slope,
                                  "ci_low": f.low, "ci_high": f.high, "reading": f.reading,
                                  **{f"alpha_w{w}": a for w, a in sorted(f.alpha.items())}} for f in aligned.fits])
        written.append(name)
    if not args.no_plot:
        from scaling.coord import plot as coord_plot

        suffixes: tuple[tuple[Stat, str], ...] = (("mean_abs", ""), ("mean_abs_delta", "-delta"))
        for stat, suffix in suffixes:
            name = f"coord-{tag}{suffix}.png"
            coord_plot.plot(result, stat, path=out / name)
            written.append(name)
            if other is not None:
                name = f"coord-{stem}-{args.compare}-vs-{config.parameterization}-{config.optimizer}{suffix}.png"
                coord_plot.plot_side_by_side({args.compare: other, config.parameterization: result}, stat,
                                             path=out / name)
                written.append(name)
    print(f"\nwrote {', '.join(written)} to {out}")
    unclear = result.inconclusive()
    if unclear:
        print(f"\n{len(unclear)} fit(s) inconclusive (slope beyond {config.tol}, interval reaching back inside; "
              f"more seeds or widths decide): {_listed(unclear)}")
    bad = result.unstable()
    if bad:
        print(f"\n{len(bad)} fit(s) fail: predicted stable and the interval says otherwise, or resting on "
              f"non-finite measurements: {_listed(bad)}")
        if args.fail_on_unstable:
            return 1
    return 0


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["module"])
        writer.writeheader()
        writer.writerows(rows)


def _listed(fits: list[Fit]) -> str:
    return ", ".join(sorted({f"{f.module} ({f.stat}, step {f.step}: {f.slope:+.2f})" for f in fits}))

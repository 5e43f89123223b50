"""Coordinate checks: how each module's output scales with width, measured and predicted.

For widths ``n`` (powers of two) and seeds, :func:`coord_check` parameterizes ``builder(n)`` with a row
of the exponent table, trains it for ``T`` steps on a fixed batch and records, for every module output
``h`` (or a chosen subset), ``mean|h_t|`` and ``mean|h_t - h_0|`` at states ``t = 0..T``. Per module,
step and statistic it fits ``log2(stat) = s log2(n) + c`` (least squares over widths and seeds, with a
95% t-interval on ``s``) and sets it beside the exponent :mod:`scaling.predict` derives from the table.
Under muP every slope should be near 0 (TP-V, Yang et al. 2022, App. D.1, "coordinate checking").

Measurement rides on training. The fixed batch is the training batch (as microsoft/mup does), so
state ``t`` is recorded by forward hooks during training step ``t``'s own forward pass: the hooks keep
``h_0`` per output and write both statistics, computed on the output's device, into one
preallocated tensor (no ``.item()`` per step; one copy to the host per run). ``T`` steps give
``T + 1`` states; the last, after the last update, costs one extra forward pass without autograd.
Given separate ``train_batches``, each state is instead measured by a forward pass without autograd
on the fixed batch.

Predictions per output come from :mod:`scaling.coord_hooks` (by the weight's role in the plan, never
by names); fits and verdicts from :mod:`scaling.coord_result`; plots from :mod:`scaling.coord_plot`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from scaling.coord_hooks import ModuleFilter, Recorder, assign_predictions, module_filter, module_layers
from scaling.coord_result import (
    STATS,
    CoordConfig,
    CoordResult,
    Fit,
    ModuleInfo,
    Record,
    Stat,
    fit_slope,
    fit_slopes,
    verdict,
)
from scaling.data import loss_fn as default_loss_fn
from scaling.errors import ScalingError
from scaling.plan import parameterize
from scaling.shapes import build_on_meta
from scaling.table import OPTIMIZER_ALIASES, optimizer_family

Batch = tuple[Any, Any]


def _call(model: nn.Module, x: Any) -> Any:
    if isinstance(x, Mapping):
        return model(**x)
    if isinstance(x, (tuple, list)):
        return model(*x)
    return model(x)


def _to(x: Any, device: torch.device) -> Any:
    if isinstance(x, Tensor):
        return x.to(device)
    if isinstance(x, Mapping):
        return {k: _to(v, device) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_to(v, device) for v in x)
    return x


def _first_device(x: Any) -> torch.device:
    if isinstance(x, Tensor):
        return x.device
    values = x.values() if isinstance(x, Mapping) else x if isinstance(x, (tuple, list)) else ()
    for v in values:
        d = _first_device(v)
        if d.type != "cpu":
            return d
    return torch.device("cpu")


def optimizer_class(name: str | type) -> type[torch.optim.Optimizer]:
    """A ``torch.optim`` class by name, case-insensitive (``"adamw"`` -> ``torch.optim.AdamW``)."""
    if isinstance(name, type):
        return name
    classes = {k.lower(): v for k, v in vars(torch.optim).items()
               if isinstance(v, type) and issubclass(v, torch.optim.Optimizer)}
    if name.lower() not in classes:
        raise ScalingError(f"unknown optimizer {name!r}; choose a torch.optim class: sgd, adam, adamw, ...")
    return classes[name.lower()]


def _shape_model(builder: Callable[[int], nn.Module], width: int) -> nn.Module:
    try:
        return build_on_meta(lambda: builder(width))
    except Exception:  # a builder that cannot run on the meta device: build it for real (base width is small)
        return builder(width)


def coord_check(
    builder: Callable[[int], nn.Module],
    batch: Batch,
    config: CoordConfig | None = None,
    *,
    modules: ModuleFilter = None,
    loss_fn: Callable[[Any, Any], Tensor] = default_loss_fn,
    train_batches: Iterable[Batch] | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    **options: Any,
) -> CoordResult:
    """Run a coordinate check of ``builder``'s model; return records, per-output predictions and fits.

    >>> result = coord_check(lambda w: MyNet(w), (x, y), widths=(128, 256, 512), parameterization="mup")
    >>> print(result.table())

    Args:
        builder: ``width -> nn.Module``, the model at any width, with PyTorch's default init.
        batch: ``(inputs, targets)``; inputs a tensor, a tuple (``model(*x)``) or a dict (``model(**x)``).
            The fixed batch: measured at every state, and trained on unless ``train_batches`` is given.
        config: a :class:`CoordConfig`; ``options`` (its field names) override its fields.
        modules: record only these modules: a regex on names (the model itself is ``"<model>"``),
            module types, or a predicate ``(name, module) -> bool``. Default: every module.
        loss_fn: ``loss_fn(output, targets)``; default cross-entropy on the last dimension.
        train_batches: train on these batches instead (one per step, the same for every width and
            seed); the fixed batch is then measured by a separate forward pass per state.
        device: where to run; default the batch's device.
        progress: show a progress bar (tqdm).
    """
    if isinstance(options.get("seeds"), int):
        options["seeds"] = tuple(range(options["seeds"]))
    for key in ("widths", "seeds"):
        if key in options:
            options[key] = tuple(options[key])
    opt_class = optimizer_class(options.get("optimizer", (config or CoordConfig()).optimizer))
    if isinstance(options.get("optimizer"), type):  # a class: the config keeps the name of its family's class
        optimizer_family(opt_class)
        options["optimizer"] = next(c.__name__ for c in opt_class.__mro__ if c.__name__.lower() in OPTIMIZER_ALIASES)
    config = replace(config or CoordConfig(), **options)
    train = list(train_batches) if train_batches is not None else None
    if train is not None and len(train) < config.steps:
        raise ScalingError(f"train_batches has {len(train)} batches for {config.steps} steps; give one per step")
    run_device = torch.device(device) if device is not None else _first_device(batch[0])
    x, y = _to(batch[0], run_device), _to(batch[1], run_device)
    if train is not None:  # moved once, not at every step of every (width, seed)
        train = [(_to(a, run_device), _to(b, run_device)) for a, b in train[: config.steps]]
    base, delta = _shape_model(builder, config.base), _shape_model(builder, 2 * config.base)
    include = module_filter(modules)
    runs = [(w, s) for s in config.seeds for w in config.widths]
    records: list[Record] = []
    infos: list[ModuleInfo] | None = None
    if progress:
        from tqdm import tqdm

        runs_iter: Iterable[tuple[int, int]] = tqdm(runs, desc=f"coord-check {config.parameterization}", leave=False)
    else:
        runs_iter = runs
    for width, seed in runs_iter:
        torch.manual_seed(seed)
        model = builder(width).to(run_device)
        plan = parameterize(model, base=base, delta=delta, parameterization=config.parameterization,
                            optimizer=config.family, zero_readout=config.zero_readout,
                            zero_query=config.zero_query)
        opt = plan.optimizer_for(opt_class, lr=config.base_lr,
                                 weight_decay=config.weight_decay)
        rec = Recorder(model, include, config.steps + 1)
        try:
            _train(model, opt, rec, x, y, loss_fn, config.steps, train)
        finally:
            rec.close()
        if infos is None:
            infos = assign_predictions(rec, module_layers(model, plan), config)
        values = rec.result()
        records += [Record(name, width, seed, t, float(values[t, i, 0]), float(values[t, i, 1]))
                    for t in range(config.steps + 1) for i, name in enumerate(rec.names)]
        del model, opt, rec
    assert infos is not None
    return CoordResult(config, records, infos, fit_slopes(records, infos, config))


def _train(model: nn.Module, opt: torch.optim.Optimizer, rec: Recorder, x: Any, y: Any,
           loss_fn: Callable[[Any, Any], Tensor], steps: int, train_batches: Sequence[Batch] | None) -> None:
    """Train ``steps`` steps and record states ``0..steps``.

    On the fixed batch, state ``t`` is recorded inside training step ``t``'s forward pass, and the
    last state by one forward pass without autograd. With ``train_batches``, every state is recorded
    by a forward pass without autograd on the fixed batch, and training forwards are not recorded.
    """
    for t in range(steps):
        rec.begin(t)
        tx, ty = x, y
        if train_batches is not None:
            with torch.no_grad():
                _call(model, x)
            rec.begin(None)
            tx, ty = train_batches[t]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(_call(model, tx), ty)
        rec.begin(None)
        loss.backward()
        opt.step()
    rec.begin(steps)
    with torch.no_grad():
        _call(model, x)
    rec.begin(None)


# ---------------------------------------------------------------------------------------------------
# Command line: `scaling coord-check`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scaling coord-check``."""
    from scaling.models import REGISTRY
    from scaling.table import PARAMETERIZATIONS

    d = CoordConfig()
    parser.add_argument("--model", default="mlp", choices=sorted(REGISTRY))
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
    parser.add_argument("--tol", type=float, default=d.tol)
    parser.add_argument("--match-tol", type=float, default=d.match_tol)
    parser.add_argument("--compare", default=None, choices=sorted(PARAMETERIZATIONS),
                        help="also run this parameterization and plot the two side by side (e.g. sp)")
    parser.add_argument("--out", default="out/coord", help="folder for the plot and the data")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--fail-on-unstable", action="store_true",
                        help="exit 1 when an output the theory predicts stable is not (at steps >= 1)")


def reference_batch(model: str, batch_size: int | None = None, seed: int = 0) -> Batch:
    """A fixed batch of a reference model's own data (see :data:`scaling.models.DATASETS`).

    128 examples, or for the byte-level GPT 4 windows of 16 bytes: the theory's limit is the width
    growing at a fixed batch, and with as many tokens as the narrowest width the tokens' kernel
    fluctuations (of relative size ``sqrt(tokens / width)``) bias the narrow widths.
    """
    from scaling.data import load_dataset
    from scaling.models import DATASETS

    name = DATASETS[model]
    data = load_dataset(name, block_size=16) if name == "stdlib-bytes" else load_dataset(name)
    size = batch_size or (4 if data.block_size else 128)
    return data.sample(size, torch.Generator().manual_seed(seed))


def run(args: argparse.Namespace) -> int:
    """``scaling coord-check``: print measured vs predicted exponents, write plot and data."""
    from scaling.models import build

    config = CoordConfig(
        widths=tuple(args.widths), base_width=args.base_width, parameterization=args.parameterization,
        optimizer=args.optimizer, lr=args.lr, steps=args.steps, seeds=tuple(range(args.seeds)),
        zero_readout=args.zero_readout, zero_query=args.zero_query, tol=args.tol, match_tol=args.match_tol,
    )
    batch = reference_batch(args.model, args.batch_size)
    builder: Callable[[int], nn.Module] = lambda w: build(args.model, w)  # noqa: E731
    result = coord_check(builder, batch, config, modules=args.modules, progress=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"{args.model}-{config.parameterization}-{config.optimizer}"
    print(f"coordinate check: {args.model}, {config.parameterization}, {config.optimizer} lr {config.base_lr:g}, "
          f"widths {list(config.widths)} (base {config.base}), seeds {len(config.seeds)}, steps 0..{config.steps}")
    described: tuple[tuple[Stat, str], ...] = (
        ("mean_abs_delta", "mean|h_t - h_0| (the change the theory predicts)"),
        ("mean_abs", "mean|h_t| (predicted max(size at init, change): a limit, reached at large widths)"))
    for stat, what in described:
        print(f"\n{what}: slope s of its log2 against log2 width\n(stable: |s| <= {config.tol}; "
              f"match: |s - predicted| <= {config.match_tol})")
        print(result.table(stat, steps=range(1, config.steps + 1)))
    result.to_json(out / f"coord-{tag}.json")
    result.to_csv(out / f"coord-{tag}.csv")
    result.to_csv(out / f"coord-{tag}-fits.csv", table="fits")
    written = [f"coord-{tag}.json", f"coord-{tag}.csv", f"coord-{tag}-fits.csv"]
    other = None
    if args.compare:
        other = coord_check(builder, batch, replace(config, parameterization=args.compare),
                            modules=args.modules, progress=True)
        other_tag = f"{args.model}-{args.compare}-{config.optimizer}"
        other.to_json(out / f"coord-{other_tag}.json")
        written.append(f"coord-{other_tag}.json")
    if not args.no_plot:
        from scaling import coord_plot

        suffixes: tuple[tuple[Stat, str], ...] = (("mean_abs", ""), ("mean_abs_delta", "-delta"))
        for stat, suffix in suffixes:
            name = f"coord-{tag}{suffix}.png"
            coord_plot.plot(result, stat, path=out / name)
            written.append(name)
            if other is not None:
                name = f"coord-{args.model}-{args.compare}-vs-{config.parameterization}-{config.optimizer}{suffix}.png"
                coord_plot.plot_side_by_side({args.compare: other, config.parameterization: result}, stat,
                                             path=out / name)
                written.append(name)
    print(f"\nwrote {', '.join(written)} to {out}")
    bad = result.unstable()
    if bad:
        listed = ", ".join(sorted({f"{f.module} ({f.stat}, step {f.step}: {f.slope:+.2f})" for f in bad}))
        print(f"\n{len(bad)} fit(s) the theory predicts stable are not: {listed}")
        if args.fail_on_unstable:
            return 1
    return 0


__all__ = [
    "STATS", "CoordConfig", "CoordResult", "Fit", "ModuleInfo", "Record", "assign_predictions", "coord_check",
    "fit_slope", "fit_slopes", "module_layers", "optimizer_class", "reference_batch", "verdict",
]

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

Predictions per output come from :mod:`scaling.coord.hooks` (by the weight's role in the plan, never
by names); fits and verdicts from :mod:`scaling.coord.fit`; plots from :mod:`scaling.coord.plot`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from torch import Tensor, nn

from scaling.coord.fit import fit_slopes
from scaling.coord.hooks import ModuleFilter, Recorder, assign_predictions, module_filter, module_layers
from scaling.coord.result import CoordConfig, CoordResult, ModuleInfo, Record
from scaling.data import loss_fn as default_loss_fn
from scaling.errors import ScalingError, ScalingWarning
from scaling.optim import optimizer_spec
from scaling.plan import parameterize
from scaling.shapes import build_on_meta

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


def _shape_model(builder: Callable[[int], nn.Module], width: int) -> nn.Module:
    try:
        return build_on_meta(lambda: builder(width))
    except Exception:  # a builder that cannot run on the meta device: build it for real (base width is small)
        return builder(width)


def _bases(builder: Callable[[int], nn.Module], config: CoordConfig) -> tuple[Any, nn.Module]:
    """The base, as a builder (parameterize builds it outside the global RNG and measures its stds:
    ``init="base"`` scales from them, ``init="pytorch"`` warns when they do not scale like PyTorch's
    default), and the delta's shapes."""
    return (lambda: builder(config.base)), _shape_model(builder, 2 * config.base)


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
        builder: ``width -> nn.Module``, the model at any width, with PyTorch's default init (or its
            own, with ``init="base"``: see :func:`scaling.parameterize`).
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
    spec = optimizer_spec(options.get("optimizer", (config or CoordConfig()).optimizer))
    opt_class = spec.cls
    if isinstance(options.get("optimizer"), type):  # a class: the config keeps its registry name
        options["optimizer"] = spec.name
    config = replace(config or CoordConfig(), **options)
    distinct = sorted(set(config.widths))
    if len(distinct) < 2:
        raise ScalingError(f"a coordinate check fits a slope across widths: it needs at least two distinct widths "
                           f"(three for an interval), got {list(config.widths)}")
    train = list(train_batches) if train_batches is not None else None
    if train is not None and len(train) < config.steps:
        raise ScalingError(f"train_batches has {len(train)} batches for {config.steps} steps; give one per step")
    run_device = torch.device(device) if device is not None else _first_device(batch[0])
    x, y = _to(batch[0], run_device), _to(batch[1], run_device)
    if train is not None:  # moved once, not at every step of every (width, seed)
        train = [(_to(a, run_device), _to(b, run_device)) for a, b in train[: config.steps]]
    base, delta = _bases(builder, config)
    include = module_filter(modules)
    runs = [(w, s) for s in config.seeds for w in config.widths]
    records: list[Record] = []
    infos: list[ModuleInfo] | None = None
    tokens: int | None = None
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
                            zero_query=config.zero_query, init=config.init)
        opt = plan.optimizer_for(opt_class, lr=config.base_lr, weight_decay=config.weight_decay, **spec.options)
        rec = Recorder(model, include, config.steps + 1)
        try:
            _train(model, opt, rec, x, y, loss_fn, config.steps, train)
        finally:
            rec.close()
        if infos is None:
            infos = assign_predictions(rec, module_layers(model, plan), config)
            tokens = next((rows for m, rows in zip(infos, rec.rows) if m.layer == "logits"), None)
        values = rec.result()
        records += [Record(name, width, seed, t, float(values[t, i, 0]), float(values[t, i, 1]))
                    for t in range(config.steps + 1) for i, name in enumerate(rec.names)]
        del model, opt, rec
    assert infos is not None
    result = CoordResult(config, records, infos, fit_slopes(records, infos, config))
    result.notes += _notes(result, len(distinct), tokens)
    return result


def _notes(result: CoordResult, widths: int, tokens: int | None) -> list[str]:
    """What a reader of the table should know about the check itself; non-finite records also warn."""
    notes = []
    if widths < 3:
        notes.append("two widths: no intervals (three give one), so every verdict rests on the slope alone")
    narrowest = min(result.config.widths)
    if tokens is not None and tokens >= narrowest:
        notes.append(f"the batch has {tokens} tokens, at least the narrowest width {narrowest}: the theory's limit "
                     f"is width >> tokens, and narrow widths still carry finite-width transients (a shrinking init "
                     f"term, less coherent updates), so slopes there may read grows or shrinks: rely on the "
                     f"intervals, or use wider widths or a smaller batch")
    bad = result.nonfinite()
    if bad:
        where = [f"{module} at width {width} (seeds {sorted({r.seed for r in rs})}, "
                 f"steps {sorted({r.step for r in rs})})" for (module, width), rs in sorted(bad.items())]
        listed = "; ".join(where[:8]) + (f"; and {len(where) - 8} more" if len(where) > 8 else "")
        notes.append(f"non-finite measurements, left out of the fits (a verdict resting on them fails): {listed}")
        warnings.warn(notes[-1], ScalingWarning, stacklevel=3)
    return notes


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


def reference_batch(model: str, batch_size: int | None = None, seed: int = 0) -> Batch:
    """A fixed batch of a reference model's own data (see :data:`scaling.models.REGISTRY`).

    128 examples, or for the byte-level GPT 4 windows of 16 bytes: the theory's limit is the width
    growing at a fixed batch, and with as many tokens as the narrowest width the tokens' kernel
    fluctuations (of relative size ``sqrt(tokens / width)``) bias the narrow widths.
    """
    from scaling.data import load_dataset
    from scaling.models import dataset_of

    name = dataset_of(model)
    data = load_dataset(name, block_size=16) if name == "stdlib-bytes" else load_dataset(name)
    size = batch_size or (4 if data.block_size else 128)
    return data.sample(size, torch.Generator().manual_seed(seed))

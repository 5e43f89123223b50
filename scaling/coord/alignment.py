"""Alignment measured, not assumed: how coherently a layer's update adds up against its input.

muP's learning-rate exponents assume *full alignment*: after training starts, the update ``dW = W_t - W_0``
of a layer with fan-in ``n`` is correlated with the layer's input ``x``, so each coordinate of
``dW x`` sums ``n`` terms coherently and ``rms(dW x) ~ n rms(dW) rms(x)``. Without alignment the terms
add like a random walk, ``rms(dW x) ~ sqrt(n) rms(dW) rms(x)``; the Adam LR exponent that keeps the
update's effect O(1) is then ``n^-1/2`` instead of ``n^-1`` (Everett et al. 2024, "Scaling exponents
across parameterizations and optimizers", Sec. 3 and 4: alignment is measured there per layer and
found to fall during training; Kosson et al. 2025 likewise).

:func:`alignment_check` trains ``builder(width)`` as :func:`~scaling.coord.coord_check` does and, at the
chosen steps, measures for every :class:`torch.nn.Linear` the ratio

    r = rms(dW x) / (rms(dW) rms(x)),    alpha = log(r) / log(n)

on the fixed batch (``n`` the layer's fan-in). ``alpha`` is 1 for full alignment and 1/2 for none
(for i.i.d. random ``dW`` independent of ``x``). Read across widths, the slope of ``log2 r`` on
``log2 n`` is the alignment exponent with the constants removed: 1 full, 1/2 none; it is fitted per
layer and step with a 95% interval (:func:`~scaling.coord.fit.fit_slope`) for layers whose fan-in grows
with the width. The ratio is invariant to scalar multipliers of ``dW`` and ``x``, so a forward
multiplier or the learning rate's size does not enter.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from scaling.coord.check import Batch, _bases, _call, _first_device, _to
from scaling.coord.fit import fit_slope
from scaling.coord.result import CoordConfig
from scaling.data import loss_fn as default_loss_fn
from scaling.errors import ScalingError
from scaling.optim import optimizer_spec
from scaling.plan import parameterize
from scaling.text import format_table

FULL, NONE = 1.0, 0.5  # the alignment exponent with and without alignment (Everett et al. 2024, Sec. 3)


@dataclass(frozen=True)
class AlignmentRecord:
    """One layer's alignment at one width, seed and step (``dW`` taken against the step-0 weight)."""

    module: str
    role: str
    width: int
    seed: int
    step: int
    fan_in: int
    ratio: float  # rms(dW x) / (rms(dW) rms(x))

    @property
    def alpha(self) -> float:
        """``log(ratio) / log(fan_in)``: 1 for full alignment, 1/2 for none."""
        return math.log(self.ratio) / math.log(self.fan_in) if self.ratio > 0 and self.fan_in > 1 else math.nan


@dataclass(frozen=True)
class AlignmentFit:
    """The alignment exponent of one layer at one step: slope of ``log2 ratio`` on ``log2 fan_in``."""

    module: str
    role: str
    step: int
    slope: float
    low: float
    high: float
    alpha: dict[int, float]  # per width: the seed mean of ``alpha``

    @property
    def reading(self) -> str:
        """Which assumption the interval supports: "full", "none", "between" or "undetermined"."""
        if math.isnan(self.slope):
            return "undetermined"
        if math.isnan(self.low):  # no interval (two widths, one seed)
            return "full" if abs(self.slope - FULL) < abs(self.slope - NONE) else "none"
        if self.low <= FULL <= self.high and not self.low <= NONE <= self.high:
            return "full"
        if self.low <= NONE <= self.high and not self.low <= FULL <= self.high:
            return "none"
        return "between" if self.high < FULL and self.low > NONE else "undetermined"


@dataclass
class AlignmentResult:
    """Records and fits of :func:`alignment_check`."""

    config: CoordConfig
    steps: tuple[int, ...]
    records: list[AlignmentRecord]
    fits: list[AlignmentFit]

    def fit(self, module: str, step: int) -> AlignmentFit:
        """The fit of ``module`` at ``step``."""
        for f in self.fits:
            if f.module == module and f.step == step:
                return f
        raise ScalingError(f"no alignment fit for module {module!r} at step {step}; steps are {self.steps}")

    def table(self) -> str:
        """Per layer and step: alpha per width, the fitted exponent (95% CI), and the two predictions."""
        widths = sorted({r.width for r in self.records})
        rows = [
            {
                "module": f.module,
                "role": f.role,
                "step": f.step,
                **{f"alpha w={w}": f.alpha.get(w, math.nan) for w in widths},
                "exponent (95% CI)": _interval(f),
                "full": FULL,
                "none": NONE,
                "reading": f.reading,
            }
            for f in self.fits
        ]
        return format_table(rows)


def _interval(f: AlignmentFit) -> str:
    if math.isnan(f.slope):
        return "-"
    if math.isnan(f.low):
        return f"{f.slope:+.2f}"
    return f"{f.slope:+.2f} [{f.low:+.2f}, {f.high:+.2f}]"


def _rms(t: Tensor) -> Tensor:
    return t.square().mean().sqrt()


class _Probe:
    """Forward pre-hooks on every Linear: at a measured step, the ratio of ``dW x`` on that forward's input."""

    def __init__(self, model: nn.Module) -> None:
        self.layers = {name: m for name, m in model.named_modules() if isinstance(m, nn.Linear)}
        self.start = {name: m.weight.detach().clone() for name, m in self.layers.items()}
        self.step: int | None = None
        self.values: dict[tuple[str, int], Tensor] = {}
        self.handles = [m.register_forward_pre_hook(self._hook(name)) for name, m in self.layers.items()]

    def _hook(self, name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        weight = self.layers[name].weight

        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            if self.step is None or not args or not isinstance(args[0], Tensor):
                return
            with torch.no_grad():
                x = args[0].detach().reshape(-1, args[0].shape[-1]).float()
                dw = weight.detach().float() - self.start[name].float()
                self.values[(name, self.step)] = _rms(x @ dw.T) / (_rms(dw) * _rms(x))

        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()


def alignment_check(
    builder: Callable[[int], nn.Module],
    batch: Batch,
    config: CoordConfig | None = None,
    *,
    at: Sequence[int] | None = None,
    loss_fn: Callable[[Any, Any], Tensor] = default_loss_fn,
    train_batches: Iterable[Batch] | None = None,
    device: str | torch.device | None = None,
    progress: bool = False,
    **options: Any,
) -> AlignmentResult:
    """Measure each Linear layer's alignment at the steps ``at`` (default ``1..config.steps``).

    >>> result = alignment_check(lambda w: MyNet(w), (x, y), widths=(128, 256, 512), steps=100, at=(1, 10, 100))
    >>> print(result.table())

    Arguments as :func:`~scaling.coord.coord_check`: ``builder`` (``width -> nn.Module``), the fixed
    ``batch`` (measured, and trained on unless ``train_batches`` gives one batch per step), a
    :class:`~scaling.coord.CoordConfig` with ``options`` overriding its fields. Step ``t`` is measured
    on the weights after ``t`` updates (step 0 has ``dW = 0`` and is not measured).
    """
    for key in ("widths", "seeds"):
        if key in options:
            options[key] = tuple(range(options[key])) if isinstance(options[key], int) else tuple(options[key])
    spec = optimizer_spec(options.get("optimizer", (config or CoordConfig()).optimizer))
    if isinstance(options.get("optimizer"), type):
        options["optimizer"] = spec.name
    config = replace(config or CoordConfig(), **options)
    steps = tuple(sorted(set(at))) if at is not None else tuple(range(1, config.steps + 1))
    if not steps or steps[0] < 1 or steps[-1] > config.steps:
        raise ScalingError(f"at must list steps in 1..{config.steps} (the config's steps), got {tuple(at or ())}")
    if len(set(config.widths)) < 2:
        raise ScalingError(f"an alignment exponent needs at least two distinct widths, got {config.widths}")
    train = list(train_batches)[: config.steps] if train_batches is not None else None
    if train is not None and len(train) < config.steps:
        raise ScalingError(f"train_batches has {len(train)} batches for {config.steps} steps; give one per step")
    run_device = torch.device(device) if device is not None else _first_device(batch[0])
    x, y = _to(batch[0], run_device), _to(batch[1], run_device)
    if train is not None:
        train = [(_to(a, run_device), _to(b, run_device)) for a, b in train]
    base, delta = _bases(builder, config)
    runs = [(w, s) for s in config.seeds for w in config.widths]
    if progress:
        from tqdm import tqdm

        runs = tqdm(runs, desc=f"alignment {config.parameterization}", leave=False)  # type: ignore[assignment]
    records: list[AlignmentRecord] = []
    for width, seed in runs:
        torch.manual_seed(seed)
        model = builder(width).to(run_device)
        plan = parameterize(model, base=base, delta=delta, parameterization=config.parameterization,
                            optimizer=config.family, zero_readout=config.zero_readout, zero_query=config.zero_query,
                            init=config.init)
        opt = plan.optimizer_for(spec.cls, lr=config.base_lr, weight_decay=config.weight_decay, **spec.options)
        probe = _Probe(model)
        try:
            for t in range(1, config.steps + 1):
                tx, ty = (x, y) if train is None else train[t - 1]
                opt.zero_grad(set_to_none=True)
                loss_fn(_call(model, tx), ty).backward()
                opt.step()
                if t in steps:
                    probe.step = t
                    with torch.no_grad():
                        _call(model, x)
                    probe.step = None
        finally:
            probe.close()
        ratios = {key: float(v) for key, v in probe.values.items()}  # one host copy per run
        owner = {id(p): n for n, p in model.named_parameters()}  # a tied weight is planned under its first name
        roles = {name: plan.widths[owner[id(layer.weight)]].role for name, layer in probe.layers.items()}
        records += [AlignmentRecord(name, roles[name], width, seed, t, probe.layers[name].in_features, ratio)
                    for (name, t), ratio in ratios.items()]
        del model, opt, probe
    return AlignmentResult(config, steps, records, fit_alignment(records, steps))


def fit_alignment(records: Sequence[AlignmentRecord], steps: Sequence[int]) -> list[AlignmentFit]:
    """One :class:`AlignmentFit` per layer and step of ``records`` (saved records can be refitted)."""
    groups: dict[tuple[str, int], list[AlignmentRecord]] = {}
    for r in records:
        groups.setdefault((r.module, r.step), []).append(r)
    modules = list(dict.fromkeys(r.module for r in records))
    fits = []
    for m in modules:
        for t in steps:
            rows = groups.get((m, t), [])
            if not rows:
                continue
            grows = len({r.fan_in for r in rows}) > 1
            slope, lo, hi = fit_slope([r.fan_in for r in rows], [r.ratio for r in rows]) if grows else (math.nan,) * 3
            alpha = {w: _mean([r.alpha for r in rows if r.width == w]) for w in sorted({r.width for r in rows})}
            fits.append(AlignmentFit(m, rows[0].role, t, slope, lo, hi, alpha))
    return fits


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan

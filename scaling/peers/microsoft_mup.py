"""microsoft/mup 1.0.0 as a row of our sweeps: the model built and trained the way its README says.

For a model built from plain torch layers (PyTorch's default init), a microsoft/mup user:

1. replaces every readout ``nn.Linear`` (a width to a fixed size) by ``mup.MuReadout`` (a readout tied
   to the input embedding by ``mup.MuSharedReadout``) in the model and in its base and delta models;
2. writes attention logits as ``q.k / d_head`` (here: :class:`scaling.nn.Attention`'s scale set to
   ``sqrt(base_head_dim) / d_head``, equal to PyTorch's at the base head dimension);
3. calls ``mup.set_base_shapes(model, base, delta=delta)``, which rescales the readout init by
   ``sqrt(m)`` (TP-V Table 8) and the other biases as mup does;
4. trains with ``mup.MuAdam`` / ``MuAdamW`` / ``MuSGD`` at the base learning rate (epsilon unscaled).

The readout keeps the weights the builder drew (copied into ``MuReadout``), so at one seed both
packages start from the same PyTorch draw. Which modules are readouts is read from the shapes
(:func:`scaling.shapes.infer_widths`), never from names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from scaling import nn as snn
from scaling.errors import ScalingError
from scaling.optim import optimizer_spec
from scaling.shapes import build_on_meta, canonical_name, infer_widths, resolve_base_shapes, shapes_of
from scaling.sweep.config import RunSettings
from scaling.sweep.store import Cell
from scaling.sweep.task import Task


def _mup() -> Any:
    try:
        import mup
    except ImportError as e:
        raise ScalingError("the microsoft-mup row needs microsoft/mup: pip install --no-deps mup==1.0.0 "
                           "pyyaml pandas tqdm (./dev installs it)") from e
    return mup


def readouts(model: nn.Module, base: nn.Module, delta: nn.Module) -> list[str]:
    """Names of the modules whose weight is a readout (an ``output`` role) of ``model``."""
    target = {canonical_name(n): tuple(p.shape) for n, p in model.named_parameters()}
    resolved = resolve_base_shapes(target, shapes_of(base), shapes_of(delta))
    widths = infer_widths(model, resolved)
    return sorted({name.rpartition(".")[0] for name, w in widths.items() if w.role == "output"})


def _swap(model: nn.Module, names: list[str], zero_init: bool) -> None:
    mup = _mup()
    for name in names:
        old: Any = model.get_submodule(name)
        if isinstance(old, snn.TiedReadout):
            new: Any = mup.MuSharedReadout(old.weight, bias=old.bias is not None, readout_zero_init=zero_init)
        elif type(old) in (nn.Linear, snn.Linear, snn.Readout):
            new = mup.MuReadout(old.in_features, old.out_features, bias=old.bias is not None,
                                readout_zero_init=zero_init, device=old.weight.device, dtype=old.weight.dtype)
            with torch.no_grad():  # the builder's own draw, as a user who swapped the class would have had it
                if not zero_init and old.weight.device.type != "meta":
                    new.weight.copy_(old.weight)
                    if old.bias is not None:
                        new.bias.copy_(old.bias)
        else:
            raise ScalingError(f"microsoft-mup: readout {name!r} is a {type(old).__name__}; microsoft/mup needs "
                               "an nn.Linear there to swap for its MuReadout")
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, new)


def _attention(model: nn.Module, base: nn.Module) -> None:
    """1/d attention written by hand, as microsoft/mup asks of its users, equal to SP at base head dim."""
    for name, module in model.named_modules():
        if isinstance(module, snn.Attention):
            base_head_dim = int(getattr(base.get_submodule(name), "head_dim"))  # noqa: B009
            module.scaling_attention = math.sqrt(base_head_dim / module.head_dim)


def check(settings: RunSettings, task: Task) -> None:
    """Refuse, before any run, what microsoft/mup cannot express here."""
    _mup()
    kwargs = dict(settings.model_kwargs)
    model = build_on_meta(lambda: task.build(2 * settings.base_width, **kwargs))
    base = build_on_meta(lambda: task.build(settings.base_width, **kwargs))
    delta = build_on_meta(lambda: task.build(4 * settings.base_width, **kwargs))
    names = readouts(model, base, delta)
    if not names:
        raise ScalingError(f"microsoft-mup: {task.name!r} has no readout (a width-to-fixed-size layer)")
    _swap(model, names, zero_init=False)


def build(settings: RunSettings, cell: Cell, task: Task,
          device: str | torch.device = "cpu") -> tuple[nn.Module, torch.optim.Optimizer, Callable[[Any, Any], Tensor]]:
    """The model, its MuAdam/MuAdamW/MuSGD optimizer and the task's loss, for one run."""
    mup = _mup()
    if cell.scales:
        raise ScalingError("microsoft-mup: per-role constants (RoleScales) are this package's; the peer row "
                           "runs microsoft/mup as it is")
    kwargs = dict(settings.model_kwargs)
    torch.manual_seed(cell.seed)
    model = task.build(cell.width, **kwargs)
    base = build_on_meta(lambda: task.build(settings.base_width, **kwargs))
    delta = build_on_meta(lambda: task.build(2 * settings.base_width, **kwargs))
    names = readouts(model, base, delta)
    for m in (model, base, delta):
        _swap(m, names, settings.zero_readout)
    _attention(model, base)
    mup.set_base_shapes(model, base, delta=delta)
    model.to(device)
    spec = optimizer_spec(cell.optimizer)
    optimizers = {"adam": mup.MuAdam, "adamw": mup.MuAdamW, "sgd": mup.MuSGD}
    base_name = spec.cls.__name__.lower()
    if base_name not in optimizers:
        raise ScalingError(f"microsoft-mup has MuAdam, MuAdamW and MuSGD; no counterpart of {cell.optimizer!r}")
    options: dict[str, Any] = {**spec.options, "weight_decay": settings.weight_decay}
    if settings.eps is not None and spec.family == "adam":
        options["eps"] = settings.eps
    optimizer = optimizers[base_name](model.parameters(), lr=cell.lr, **options)
    return model, optimizer, task.loss

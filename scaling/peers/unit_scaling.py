"""unit-scaling 0.3.5's u-muP (Blake et al. 2024) as a row of our sweeps.

u-muP has no base model: every weight is drawn N(0, 1) and scaled in the forward pass (``1/sqrt(fan_in)``,
the readout ``1/fan_in``), biases start at 0, backward passes are unit-scaled, and ``uu.optim``
scales Adam's learning rate by ``fan_in^-1/2`` for weights (so the effective weight moves like
``lr / fan_in``), 1 for biases, norms and the readout (u-muP paper, Table 2; ``uu.optim.lr_scale_func_adam``).

A user writes the model from ``uu`` layers. For a model built from plain torch layers we do what that
user would: every ``nn.Linear`` becomes ``uu.Linear`` (``uu.LinearReadout`` for a readout, found from
the shapes), ``nn.Conv1d`` ``uu.Conv1d``, ``nn.Embedding`` ``uu.Embedding``, ``nn.LayerNorm``
``uu.LayerNorm``; the loss is u-muP's unit-scaled cross-entropy (the same value as PyTorch's). The
model's own functional ops (``torch.relu``, residual ``+``) stay as written: u-muP's scaled residual
ops cannot be swapped in from outside, which the row says. The reference GPT has a twin written with
u-muP's own attention and residual rule (:class:`GPT`). What u-muP cannot express is refused:
a readout tied to the embedding, an attention module other than the GPT's, a convolution other
than 1-D.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from scaling import nn as snn
from scaling.errors import ScalingError
from scaling.optim import optimizer_spec
from scaling.peers.microsoft_mup import readouts
from scaling.shapes import build_on_meta
from scaling.sweep.config import RunSettings
from scaling.sweep.store import Cell
from scaling.sweep.task import Task


def _uu() -> Any:
    try:
        import unit_scaling as uu
    except ImportError as e:
        raise ScalingError("the u-mup row needs unit-scaling: pip install 'scaling[peers]' "
                           "(unit-scaling==0.3.5, einops, tabulate, docstring-parser; ./dev installs it)") from e
    return uu


def loss(logits: Tensor, y: Tensor) -> Tensor:
    """u-muP's unit-scaled cross-entropy (its forward value is PyTorch's mean cross-entropy)."""
    uu = _uu()
    return uu.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


class GPT(nn.Module):
    """The reference GPT (:class:`scaling.models.GPT`: pre-LN, learned positions, GELU MLP 4x, untied
    readout) written with u-muP's own parts: ``uu.Embedding``, ``uu.LayerNorm``, ``uu.MHSA`` (its
    ``1/d_head`` attention), ``uu.Linear`` + ``U.gelu``, residual branches by ``U.residual_split`` /
    ``U.residual_add`` with ``transformer_residual_scaling_rule`` taus, blocks in a
    ``uu.DepthModuleList`` (depth-scaled learning rates), ``uu.LinearReadout``."""

    def __init__(self, width: int, n_layers: int = 2, n_heads: int = 4, vocab_size: int = 256,
                 block_size: int = 64, mlp_ratio: int = 4, tied: bool = False) -> None:
        super().__init__()
        uu = _uu()
        if tied:
            raise ScalingError("u-mup cannot express a readout tied to the embedding (uu.LinearReadout "
                               "has a weight of its own)")
        from unit_scaling.core.functional import transformer_residual_scaling_rule

        rule = transformer_residual_scaling_rule()
        self.wte, self.wpe = uu.Embedding(vocab_size, width), uu.Embedding(block_size, width)
        self.taus = [(rule(2 * i, 2 * n_layers), rule(2 * i + 1, 2 * n_layers)) for i in range(n_layers)]
        self.blocks = uu.DepthModuleList([nn.ModuleDict({
            "ln1": uu.LayerNorm(width), "attn": uu.MHSA(width, n_heads, is_causal=True),
            "ln2": uu.LayerNorm(width), "fc": uu.Linear(width, mlp_ratio * width),
            "proj": uu.Linear(mlp_ratio * width, width),
        }) for _ in range(n_layers)])
        self.ln_f = uu.LayerNorm(width)
        self.readout = uu.LinearReadout(width, vocab_size)

    def forward(self, idx: Tensor) -> Tensor:
        U = _uu().functional
        x = U.add(self.wte(idx), self.wpe(torch.arange(idx.shape[1], device=idx.device)))  # (B, T, C)
        for block, (tau_attn, tau_mlp) in zip(self.blocks, self.taus):
            h, skip = U.residual_split(x, tau=tau_attn)
            x = U.residual_add(block["attn"](block["ln1"](h)), skip, tau=tau_attn)
            h, skip = U.residual_split(x, tau=tau_mlp)
            x = U.residual_add(block["proj"](U.gelu(block["fc"](block["ln2"](h)))), skip, tau=tau_mlp)
        return self.readout(self.ln_f(x))  # (B, T, vocab)


def convert(model: nn.Module, readout_names: list[str]) -> nn.Module:
    """``model`` with every supported torch layer swapped for its ``uu`` counterpart (u-muP's own init)."""
    uu = _uu()
    for name, module in list(model.named_modules()):
        if isinstance(module, (snn.Attention, nn.MultiheadAttention)):
            raise ScalingError(f"u-mup: {name!r} is an attention module; u-muP needs its own uu.MHSA there "
                               "(the reference GPT has a u-muP twin, scaling.peers.unit_scaling.GPT)")
        if isinstance(module, snn.TiedReadout):
            raise ScalingError("u-mup cannot express a readout tied to the embedding")
        if isinstance(module, nn.modules.conv._ConvNd) and not isinstance(module, nn.Conv1d):
            raise ScalingError(f"u-mup: {name!r} is a {type(module).__name__}; unit-scaling 0.3.5 has only Conv1d")
    for name, module in list(model.named_modules()):
        new: nn.Module | None = None
        bias = getattr(module, "bias", None) is not None
        if isinstance(module, nn.Linear):
            cls = uu.LinearReadout if name in readout_names else uu.Linear
            new = cls(module.in_features, module.out_features, bias=bias)
        elif isinstance(module, nn.Conv1d):
            if not isinstance(module.padding, tuple) or module.stride != (1,) or module.dilation != (1,):
                raise ScalingError(f"u-mup: conv {name!r} must have integer padding, stride 1, dilation 1")
            new = uu.Conv1d(module.in_channels, module.out_channels, module.kernel_size[0],
                            padding=module.padding[0], bias=bias)
        elif isinstance(module, nn.Embedding):
            new = uu.Embedding(module.num_embeddings, module.embedding_dim)
        elif isinstance(module, nn.LayerNorm):
            new = uu.LayerNorm(module.normalized_shape, elementwise_affine=module.elementwise_affine)
        if new is not None:
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, new)
    return model


def _build_model(settings: RunSettings, width: int, task: Task) -> nn.Module:
    kwargs = dict(settings.model_kwargs)
    if task.name == "gpt":
        return GPT(width, **kwargs)
    base = build_on_meta(lambda: task.build(settings.base_width, **kwargs))
    delta = build_on_meta(lambda: task.build(2 * settings.base_width, **kwargs))
    model = task.build(width, **kwargs)
    return convert(model, readouts(model, base, delta))


def check(settings: RunSettings, task: Task) -> None:
    """Refuse, before any run, what u-muP cannot express here."""
    _uu()
    with torch.device("meta"):
        _build_model(settings, 2 * settings.base_width, task)


def build(settings: RunSettings, cell: Cell, task: Task,
          device: str | torch.device = "cpu") -> tuple[nn.Module, torch.optim.Optimizer, Callable[[Any, Any], Tensor]]:
    """The u-muP model (seeded: u-muP's own unit init), its ``uu.optim`` optimizer, and u-muP's loss."""
    uu = _uu()
    if cell.scales:
        raise ScalingError("u-mup: per-role constants (RoleScales) are this package's; the peer row runs u-muP "
                           "as it is")
    torch.manual_seed(cell.seed)
    model = _build_model(settings, cell.width, task).to(device)  # the uu layers draw u-muP's own init
    spec = optimizer_spec(cell.optimizer)
    optimizers = {"adam": uu.optim.Adam, "adamw": uu.optim.AdamW, "sgd": uu.optim.SGD}
    base_name = spec.cls.__name__.lower()
    if base_name not in optimizers:
        raise ScalingError(f"u-mup has uu.optim.Adam, AdamW and SGD; no counterpart of {cell.optimizer!r}")
    options: dict[str, Any] = {**spec.options, "weight_decay": settings.weight_decay}
    if settings.eps is not None and spec.family == "adam":
        options["eps"] = settings.eps
    optimizer = optimizers[base_name](model.parameters(), lr=cell.lr, **options)
    return model, optimizer, loss if task.loss is _default_loss() else task.loss


def _default_loss() -> Callable[[Any, Any], Tensor]:
    from scaling.data import loss_fn

    return loss_fn


__all__ = ["GPT", "build", "check", "convert", "loss"]

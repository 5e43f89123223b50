"""Parameterized layers to build new models with.

They are the torch layers they subclass, plus a plain float attribute that :func:`scaling.parameterize`
sets: ``scaling_multiplier``, the forward multiplier of the exponent table, which the layer applies to
its input (``Linear``, ``Conv``) or output (``Embedding``). At multiplier 1 they compute exactly what
the torch layer computes. Nothing is stored on the parameters, so models built from them survive
``copy.deepcopy``, pickling, ``state_dict`` round trips, ``torch.compile``, ``torch.func``, DDP and
FSDP2.

Plain torch layers work too: where a row of the table needs a multiplier on a ``nn.Linear``,
``nn.Conv*d`` or ``nn.Embedding``, :func:`scaling.parameterize` registers the hooks below, which read
the same attribute. These layers only save the hook call and say their role in the model's code.

Depth: :class:`ResidualBlock` (a block adding its branches through ``self.branch(...)``) and
:class:`Branch` (a wrapper marking one branch) tell :func:`scaling.parameterize` where the residual
branches are and count the model's depth; a depth row (:class:`scaling.table.DepthRule`) sets their
``scaling_branch``. A model of plain modules names its branches instead (``parameterize(...,
branches="blocks")``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scaling.errors import ScalingError
from scaling.table import softmax_scale


def scale_input_hook(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook: multiply the first input by ``module.scaling_multiplier``."""
    return (args[0] * float(getattr(module, "scaling_multiplier")), *args[1:])  # noqa: B009


def scale_output_hook(module: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor:
    """Forward hook: multiply the output by ``module.scaling_multiplier``."""
    return output * float(getattr(module, "scaling_multiplier"))  # noqa: B009


class Linear(nn.Linear):
    """``nn.Linear`` computing ``W (a x) + b`` with the forward multiplier ``a`` (1 unless set)."""

    scaling_multiplier: float = 1.0

    def forward(self, x: Tensor) -> Tensor:
        """``Linear`` applied to ``x`` times the forward multiplier."""
        if self.scaling_multiplier != 1.0:
            x = x * self.scaling_multiplier
        return F.linear(x, self.weight, self.bias)


class Readout(Linear):
    """The output layer: a ``Linear`` from a width to a fixed size (classes, vocabulary).

    Its role (``output``) follows from its shapes; the class names it in the model's code and offers
    the zero initialization that TP-V (Yang et al. 2022, §4, App. D.2) recommends for the readout.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, zero_init: bool = False,
                 device: Any = None, dtype: Any = None) -> None:
        self.zero_init = zero_init
        super().__init__(in_features, out_features, bias, device=device, dtype=dtype)

    def reset_parameters(self) -> None:
        """PyTorch's ``Linear`` initialization, or zeros with ``zero_init``."""
        if self.zero_init:
            nn.init.zeros_(self.weight)
            if self.bias is not None:
                nn.init.zeros_(self.bias)
        else:
            super().reset_parameters()


class TiedReadout(Readout):
    """A readout whose weight is an embedding's (``logits = a h @ E^T``).

    The weight is shared, so it has the embedding's init and learning rate; muP then needs the
    Table 8 form (``mup-table8``), where input and output weights scale alike and the readout carries
    the multiplier ``1/m``. :func:`scaling.parameterize` checks this.
    """

    def __init__(self, embedding: nn.Embedding, bias: bool = False) -> None:
        num, dim = embedding.weight.shape
        super().__init__(dim, num, bias=bias, device="meta", dtype=embedding.weight.dtype)
        self.weight = embedding.weight
        if self.bias is not None:
            self.bias = nn.Parameter(torch.zeros(num, device=embedding.weight.device, dtype=embedding.weight.dtype))


class Embedding(nn.Embedding):
    """``nn.Embedding`` whose output is multiplied by the forward multiplier (1 unless set)."""

    scaling_multiplier: float = 1.0

    def forward(self, idx: Tensor) -> Tensor:
        """The embedding of ``idx`` times the forward multiplier."""
        out = super().forward(idx)
        return out * self.scaling_multiplier if self.scaling_multiplier != 1.0 else out


class Conv1d(nn.Conv1d):
    """``nn.Conv1d`` applied to ``a x`` with the forward multiplier ``a`` (1 unless set)."""

    scaling_multiplier: float = 1.0

    def forward(self, x: Tensor) -> Tensor:
        """The convolution of ``x`` times the forward multiplier."""
        return super().forward(x * self.scaling_multiplier if self.scaling_multiplier != 1.0 else x)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` applied to ``a x`` with the forward multiplier ``a`` (1 unless set)."""

    scaling_multiplier: float = 1.0

    def forward(self, x: Tensor) -> Tensor:
        """The convolution of ``x`` times the forward multiplier."""
        return super().forward(x * self.scaling_multiplier if self.scaling_multiplier != 1.0 else x)


def scale_branch_hook(module: nn.Module, args: tuple[Any, ...], output: Tensor) -> Tensor:
    """Forward hook: multiply a residual branch's output by ``module.scaling_branch``."""
    return output * float(getattr(module, "scaling_branch"))  # noqa: B009


class ResidualBlock(nn.Module):
    """Base class of a residual block whose forward adds its branches through :meth:`branch`.

    ``x = x + self.branch(self.attn(self.ln1(x)))``: :func:`scaling.parameterize` sets
    ``scaling_branch``, the depth rule's ``m_L^-alpha`` (:class:`scaling.table.DepthRule`; 1 for rows
    without one and at base depth, where :meth:`branch` returns its input unchanged). Every parameter
    of the block is in a residual branch, and the number of blocks is the model's depth.
    """

    scaling_branch: float = 1.0

    def branch(self, y: Tensor) -> Tensor:
        """A branch's output times the depth multiplier (``y`` itself at multiplier 1)."""
        return y * self.scaling_branch if self.scaling_branch != 1.0 else y


class Branch(nn.Module):
    """Marks ``module`` as one residual branch: ``x = x + self.mlp(x)`` with ``self.mlp = Branch(...)``.

    Its output is ``module``'s times ``scaling_branch`` (see :class:`ResidualBlock`); every parameter of
    ``module`` is in a branch, and each ``Branch`` counts once in the model's depth. The wrapped module
    is ``self.module`` (parameter names gain ``module.``).
    """

    scaling_branch: float = 1.0

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped module's output times the depth multiplier."""
        out = self.module(*args, **kwargs)
        return out * self.scaling_branch if self.scaling_branch != 1.0 else out


class Attention(nn.Module):
    """Multi-head self-attention whose logit scale follows the exponent table.

    Logits are ``q.k * scaling_attention / sqrt(head_dim)``. :func:`scaling.parameterize` sets
    ``scaling_attention = (head_dim / base_head_dim) ** attention`` from the row's ``attention``
    exponent: 1 (PyTorch's ``1/sqrt(d)``) for SP and NTK, ``sqrt(base_head_dim / head_dim)`` for muP,
    which makes the scale ``sqrt(base_head_dim) / head_dim``: ``1/d`` scaling (TP-V §4), equal to
    SP at the base head dimension. ``base_head_dim`` is read from the base model, or given here when
    the base is only a table of shapes. The scale it passes to SDPA is
    ``scaling.attention_scale(plan, head_dim, base_head_dim)``, the one formula a custom attention uses.
    """

    scaling_attention: float = 1.0

    def __init__(self, d_model: int, n_heads: int, head_dim: int | None = None, bias: bool = True,
                 causal: bool = True, base_head_dim: int | None = None) -> None:
        super().__init__()
        if head_dim is None:
            if d_model % n_heads:
                raise ScalingError(f"d_model={d_model} is not divisible by n_heads={n_heads}; pass head_dim")
            head_dim = d_model // n_heads
        self.n_heads, self.head_dim, self.causal = n_heads, head_dim, causal
        self.base_head_dim = base_head_dim
        self.qkv = Linear(d_model, 3 * n_heads * head_dim, bias=bias)
        self.proj = Linear(n_heads * head_dim, d_model, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        """Causal self-attention of ``x`` (batch, time, channels), logits scaled by ``scaling_attention``."""
        B, T, _ = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.n_heads, self.head_dim).unbind(2)  # (B, T, nh, hs)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        scale = softmax_scale(self.scaling_attention, self.head_dim)  # = scaling.attention_scale(plan, ...)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal, scale=scale)
        return self.proj(y.transpose(1, 2).reshape(B, T, self.n_heads * self.head_dim))

    @torch.no_grad()
    def zero_query_(self) -> None:
        """Zero the query projection, as TP-V (§4, App. D.2) recommends: uniform attention at init."""
        rows = self.n_heads * self.head_dim
        self.qkv.weight[:rows].zero_()
        if self.qkv.bias is not None:
            self.qkv.bias[:rows].zero_()

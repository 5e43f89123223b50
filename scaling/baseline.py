"""PyTorch's default initialization: the baseline every row of the exponent table multiplies.

The table states each init as a factor on the std PyTorch would draw for that tensor, so the
baseline is part of the theory, and it lives here only. What ``torch.nn`` draws (torch 2.x):

- ``Linear`` and ``ConvNd`` weights: ``kaiming_uniform_(a=sqrt(5))``, i.e. ``U(-1/sqrt(fan_in),
  1/sqrt(fan_in))``, std ``1/sqrt(3 fan_in)``; their biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
  with the *weight's* fan-in; ``MultiheadAttention``'s in-projection ``xavier_uniform_`` (std
  ``sqrt(2 / (fan_in + fan_out))``), the same power of the width when both dimensions scale;
- ``Embedding``: ``N(0, 1)``; norm layers: gain 1, bias 0. Neither depends on the width.

As a power of the width multipliers, the std of a ``Linear``/``Conv`` weight or bias is
``m_in^-1/2`` (a bias's ``m_in`` being its layer's fan-in multiplier), and 1 for everything else.
That power is what :func:`scaling.parameterize` composes with a row's init factor to compare two
uses of one tied tensor, what :mod:`scaling.predict` starts its forward sizes from, and what a
model's own init is checked against (:func:`init_exponent`).

A model that draws its own init (nanoGPT and Hugging Face: ``N(0, 0.02)`` at every width) does not
scale like this baseline. ``parameterize(init="base")`` then takes the *base model's* tensors as the
baseline instead: each target tensor gets the std measured on the base's (:func:`init_scale`) times
the row's factor relative to base, ``(row.init + init_power)(m_in, m_out)``.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from scaling.table import ONE, Power, Role

FAN_IN_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, _ConvNd, nn.MultiheadAttention)
"""Modules whose default init draws with std ``~ 1/sqrt(fan_in)``, weights and biases alike."""

FAN_IN = Power(fan_in=-0.5)


def init_power(module: nn.Module) -> Power:
    """The width power of PyTorch's default std for the parameters of ``module``."""
    return FAN_IN if isinstance(module, FAN_IN_LAYERS) else ONE


def init_exponent(fan_in_infinite: bool) -> float:
    """The exponent of the width ``n`` in the default std of a ``Linear`` weight (or its bias):
    ``-1/2`` when the layer's fan-in is a width, 0 when it is finite."""
    return FAN_IN.fan_in if fan_in_infinite else 0.0


def role_init_exponent(role: Role) -> float:
    """:func:`init_exponent` for a ``Linear`` weight of a role (every infinite dimension ``n``)."""
    return init_exponent(role in ("hidden", "output"))


InitMode = Literal["pytorch", "base"]
"""What a row's init factors multiply: PyTorch's default init (``"pytorch"``), or the base model's own
init, measured tensor by tensor (``"base"``)."""

INIT_MODES: tuple[InitMode, ...] = get_args(InitMode)


@torch.no_grad()
def init_scale(t: torch.Tensor) -> float:
    """The measured scale of an initialized tensor: its std (population, in float64), or its RMS when
    it is constant (a norm gain of 1, a scalar), 0 for an all-zero tensor."""
    x = t.detach().reshape(-1).to(torch.float64)
    if x.numel() == 0:
        return 0.0
    std = float(x.std(correction=0)) if x.numel() > 1 else 0.0
    return std if std > 0 else float(x.square().mean().sqrt())

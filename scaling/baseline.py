"""PyTorch's default initialization: the baseline every row of the exponent table multiplies.

The table states each init as a factor on the std PyTorch would draw for that tensor, so the
baseline is part of the theory, and it lives here only. What ``torch.nn`` draws (torch 2.x):

- ``Linear`` and ``ConvNd`` weights: ``kaiming_uniform_(a=sqrt(5))``, i.e. ``U(-1/sqrt(fan_in),
  1/sqrt(fan_in))``, std ``1/sqrt(3 fan_in)``; their biases ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``
  with the *weight's* fan-in (for ``ConvTransposeNd`` torch reads that "fan-in" from the weight's
  dimension 1, its output channels: :func:`drawn_power`, corrected by :func:`default_correction`);
  ``MultiheadAttention``'s in-projection ``xavier_uniform_`` (std ``sqrt(2 / (fan_in + fan_out))``),
  the same power of the width when both dimensions scale;
- ``Embedding``: ``N(0, 1)``; norm layers: gain 1, bias 0. Neither depends on the width.

As a power of the width multipliers, the std of a ``Linear``/``Conv`` weight or bias is
``m_in^-1/2`` (a bias's ``m_in`` being its layer's fan-in multiplier), and 1 for everything else.
That power is what :func:`scaling.parameterize` composes with a row's init factor to compare two
uses of one tied tensor, what :mod:`scaling.predict` starts its forward sizes from, and what a
model's own init is checked against (:func:`init_exponent`).

A model that draws its own init (nanoGPT and Hugging Face: ``N(0, 0.02)`` at every width) does not
scale like this baseline. ``parameterize(init="base")`` then takes the *base model's* tensors as the
baseline instead: each target tensor gets the std measured on the base's (:func:`init_scale`) times
the row's factor relative to base, ``(row.init + init_power)(m_in, m_out)``. ``init="own"`` is the
same factor on the tensor as the model drew it, for an own init that does not change with width
(checked against the base: :func:`warn_width_dependent_init`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any, Literal, get_args

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd, _ConvTransposeNd

from scaling.errors import InitScalingWarning, ScalingError
from scaling.shapes import ParamWidth, canonical_name, is_transposed_linear, occurrences
from scaling.table import ONE, Power, Role

FAN_IN_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, _ConvNd, nn.MultiheadAttention)
"""Modules whose default init draws with std ``~ 1/sqrt(fan_in)``, weights and biases alike."""

FAN_IN = Power(fan_in=-0.5)
DRAWN_FAN_OUT = Power(fan_out=-0.5)


def is_fan_in_layer(module: nn.Module) -> bool:
    """A layer the table treats as ``Linear``: :data:`FAN_IN_LAYERS`, or transformers' ``Conv1D``."""
    return isinstance(module, FAN_IN_LAYERS) or is_transposed_linear(module)


def init_power(module: nn.Module) -> Power:
    """The width power of PyTorch's default std for the parameters of ``module`` (transformers' ``Conv1D``
    counts as a ``Linear``: the table's default for it is PyTorch's ``Linear``'s)."""
    return FAN_IN if is_fan_in_layer(module) else ONE


def drawn_power(module: nn.Module) -> Power:
    """The width power of the std PyTorch actually draws for ``module``'s parameters.

    It is :func:`init_power` except for transposed convolutions: ``ConvTransposeNd`` stores its weight
    as ``(in, out / groups, *kernel)`` and torch takes the fan-in from dimension 1, so it draws (weight
    and bias) with std ``~ 1/sqrt(out_channels x kernel)``: ``m_out^-1/2`` where the table assumes
    ``m_in^-1/2``.
    """
    return DRAWN_FAN_OUT if isinstance(module, _ConvTransposeNd) else init_power(module)


def default_correction(module: nn.Module) -> Power:
    """What turns PyTorch's draw into the default the table assumes: ``init_power - drawn_power``
    (1 but for transposed convolutions, ``m_in^-1/2 m_out^1/2``)."""
    return init_power(module) - drawn_power(module)


def init_exponent(fan_in_infinite: bool) -> float:
    """The exponent of the width ``n`` in the default std of a ``Linear`` weight (or its bias):
    ``-1/2`` when the layer's fan-in is a width, 0 when it is finite."""
    return FAN_IN.fan_in if fan_in_infinite else 0.0


def role_init_exponent(role: Role) -> float:
    """:func:`init_exponent` for a ``Linear`` weight of a role (every infinite dimension ``n``)."""
    return init_exponent(role in ("hidden", "output"))


InitMode = Literal["pytorch", "base", "own"]
"""What a row's init factors multiply: PyTorch's default init (``"pytorch"``); the base model's own
init, measured tensor by tensor (``"base"``); or the model's own init when it is the same at every
width (``"own"``: transformers' and nanoGPT's ``N(0, 0.02)``), so the tensor as drawn stands for the
base's and the row's factor relative to base multiplies it, with no measurement (exact at base width)."""

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


_MEASURE_MAX_NUMEL = 50_000_000  # a builder's base is built for real (to check the init) up to this size
_INIT_TOLERANCE = 1.25  # std ratios off PyTorch's by more than this are an init of the model's own


def measured_base(base: Any, base_meta: nn.Module | None, init: InitMode, rescale: bool) -> nn.Module | None:
    """The base model with its weights, to measure its init: given, or built (outside the global RNG)."""
    if not rescale:
        return None
    real: nn.Module | None = None
    if isinstance(base, nn.Module):
        real = base
    elif base_meta is not None and (
        init == "base" or sum(p.numel() for p in base_meta.parameters()) <= _MEASURE_MAX_NUMEL
    ):
        with torch.random.fork_rng(devices=[]):
            real = base()
    if real is None or any(p.is_meta for p in real.parameters()):
        if init == "base":
            raise ScalingError(
                "init='base' measures the init of the base model's tensors, but the base has no weights "
                f"(a {type(base).__name__}{' on the meta device' if real is not None else ''}): pass the "
                "base as a module with its weights, or as a builder (built on the CPU to measure)."
            )
        return None
    return real


def to_base(name: str, base: torch.Tensor, target: torch.Tensor) -> float:
    """The factor that gives ``target`` the measured scale of ``base`` (init='base')."""
    b, t = init_scale(base), init_scale(target)
    if b == 0.0:
        return 0.0
    if t == 0.0:
        raise ScalingError(
            f"init='base': {name!r} is all zeros in the model but not in the base (std {b:.3g}), so no "
            "factor gives it the base's init: initialize the model as the base is built."
        )
    return b / t


@torch.no_grad()
def warn_width_dependent_init(model: nn.Module, base: Mapping[str, torch.Tensor]) -> None:
    """init='own': warn when a tensor's std as drawn differs from the base's (the own init changes with width)."""
    off: list[str] = []
    for name, p in model.named_parameters():
        b_t = base.get(canonical_name(name))
        if b_t is None or min(p.numel(), b_t.numel()) < 256:  # too few numbers to tell
            continue
        b, t = init_scale(b_t), init_scale(p)
        if b > 0 and t > 0 and abs(math.log(t / b)) > math.log(_INIT_TOLERANCE):
            off.append(f"{name!r} has init std {t:.3g} against {b:.3g} in the base")
    if off:
        more = f" (and {len(off) - 1} more tensor(s))" if len(off) > 1 else ""
        warnings.warn(
            f"init='own' takes the model's init to be the same at every width, but {off[0]}{more}. Pass "
            "init='base' (each tensor relative to the base's measured std) or init='pytorch'.",
            InitScalingWarning,
            stacklevel=3,
        )


def warn_own_init(model: nn.Module, widths: Mapping[str, ParamWidth], base: Mapping[str, torch.Tensor]) -> None:
    """Warn when a Linear/Conv weight's std does not shrink from base to model like PyTorch's 1/sqrt(fan_in)."""
    primary = {id(p): n for n, p in model.named_parameters()}
    off: list[str] = []
    for module_name, module, attr, p in occurrences(model):
        name = primary[id(p)]
        w = widths[name]
        full = f"{module_name}.{attr}" if module_name else attr
        if full != name or not is_fan_in_layer(module) or p.dim() < 2 or w.m_in == 1.0:
            continue
        b_t = base[canonical_name(name)]
        if min(p.numel(), b_t.numel()) < 256:  # the std of fewer numbers is too noisy to tell
            continue
        b, t = init_scale(b_t), init_scale(p)
        expected = drawn_power(module)(w.m_in, w.m_out)
        if b > 0 and t > 0 and abs(math.log(t / b / expected)) > math.log(_INIT_TOLERANCE):
            off.append(
                f"{name!r} ({type(module).__name__}) has init std {t:.3g} at fan-in multiplier {w.m_in:g} "
                f"against {b:.3g} in the base, a ratio of {t / b:.3g} where PyTorch's 1/sqrt(fan_in) "
                f"default gives {expected:.3g}"
            )
    if off:
        more = f" (and {len(off) - 1} more tensor(s))" if len(off) > 1 else ""
        warnings.warn(
            f"the model's init does not scale with width like PyTorch's default: {off[0]}{more}. The table's "
            "init factors multiply PyTorch's default init, so this model (its own init, such as nanoGPT's "
            "and Hugging Face's N(0, 0.02) at every width) would be mis-parameterized. Pass "
            "init='base' to parameterize() to scale each tensor relative to the base model's own init.",
            InitScalingWarning,
            stacklevel=3,
        )

"""Reference models, each built from a width: ``build("mlp", 256)``.

- ``mlp``: the ReLU MLP 40-w-w-10 of the MNIST-1D reference task;
- ``resmlp``: a residual pre-LN MLP on MNIST-1D (two blocks ``h + W2 relu(W1 LN(h))``, final LayerNorm);
- ``cnn``: a 1-D CNN on MNIST-1D (two convolutions of w channels, global pooling, readout);
- ``gpt``: a pre-LN byte-level GPT with muP attention scaling (``scaling.nn.Attention``);
- ``question``: the original question's MLP, 10-w-2 (asked about w = 32 and w = 256);
- ``funnel``: the original question's 10-64-16-2 network, widths scaled together (w, w/4);
- ``resmlp-depth`` and ``gpt-depth``: ``resmlp`` (width 128) and ``gpt`` (width 64) built from their
  *depth* (residual blocks), for depth sweeps and checks at a fixed width (``fixed_width=`` changes it).
- ``resmlp-width-depth``: ``resmlp`` scaled by one factor ``k`` in both, width ``32 k`` and ``2 k`` blocks,
  for width and depth transferred together (``base_width=``, ``base_depth=`` change the unit).
- ``hf-gpt2`` and ``hf-llama``: transformers' GPT-2 and Llama built from a tiny template config at
  ``hidden_size = width`` (head dimension 16; keyword options override the config), returning logits
  (:func:`scaling.hf.causal_lm`; the ``hf`` extra). Parameterize them with ``init="own"``.

Every model takes the width as its first argument, so ``lambda: build(name, base_width)`` is a base
model for :func:`scaling.parameterize`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from scaling.errors import ScalingError
from scaling.models.gpt import GPT, GPTConfig
from scaling.models.mlp import MLP, CNN1d, FunnelMLP, QuestionMLP, ResMLP


def resmlp_at_depth(depth: int, fixed_width: int = 128, **kwargs: Any) -> ResMLP:
    """:class:`ResMLP` with ``depth`` residual blocks at a fixed width."""
    return ResMLP(fixed_width, depth=depth, **kwargs)


def gpt_at_depth(depth: int, fixed_width: int = 64, **kwargs: Any) -> GPT:
    """:class:`GPT` with ``depth`` blocks at a fixed ``d_model``."""
    return GPT.from_width(fixed_width, n_layers=depth, **kwargs)


def resmlp_width_depth(k: int, base_width: int = 32, base_depth: int = 2, **kwargs: Any) -> ResMLP:
    """:class:`ResMLP` ``k`` times as wide and ``k`` times as deep as ``ResMLP(base_width, depth=base_depth)``."""
    return ResMLP(base_width * k, depth=base_depth * k, **kwargs)


def hf_gpt2(width: int, **options: Any) -> nn.Module:
    """transformers' GPT-2 at ``width`` (:func:`scaling.hf.causal_lm`)."""
    from scaling.hf import causal_lm

    return causal_lm("gpt2", width, **options)


def hf_llama(width: int, **options: Any) -> nn.Module:
    """transformers' Llama at ``width`` (:func:`scaling.hf.causal_lm`)."""
    from scaling.hf import causal_lm

    return causal_lm("llama", width, **options)


@dataclass(frozen=True)
class ModelEntry:
    """A reference model: its builder ``(width, **options) -> nn.Module`` and the built-in dataset it reads."""

    build: Callable[..., nn.Module]
    dataset: str


REGISTRY: dict[str, ModelEntry] = {
    "mlp": ModelEntry(MLP, "mnist1d"),
    "resmlp": ModelEntry(ResMLP, "mnist1d"),
    "cnn": ModelEntry(CNN1d, "mnist1d"),
    "gpt": ModelEntry(GPT.from_width, "stdlib-bytes"),
    "question": ModelEntry(QuestionMLP, "toy"),
    "funnel": ModelEntry(FunnelMLP, "toy"),
    "resmlp-depth": ModelEntry(resmlp_at_depth, "mnist1d"),
    "gpt-depth": ModelEntry(gpt_at_depth, "stdlib-bytes"),
    "resmlp-width-depth": ModelEntry(resmlp_width_depth, "mnist1d"),
    "hf-gpt2": ModelEntry(hf_gpt2, "stdlib-bytes"),
    "hf-llama": ModelEntry(hf_llama, "stdlib-bytes"),
}
"""The reference models by name (see the module docstring)."""


def build(name: str, width: int, **kwargs: Any) -> nn.Module:
    """Build reference model ``name`` at ``width``."""
    if name not in REGISTRY:
        raise ScalingError(f"unknown model {name!r}; choose one of: {', '.join(REGISTRY)}")
    if width < 1:
        raise ScalingError(f"width must be a positive integer, got {width}")
    return REGISTRY[name].build(width, **kwargs)


def dataset_of(name: str) -> str:
    """The built-in dataset reference model ``name`` reads."""
    if name not in REGISTRY:
        raise ScalingError(f"unknown model {name!r}; choose one of: {', '.join(REGISTRY)}")
    return REGISTRY[name].dataset


__all__ = ["GPT", "MLP", "REGISTRY", "CNN1d", "FunnelMLP", "GPTConfig", "ModelEntry", "QuestionMLP", "ResMLP", "build",
           "dataset_of", "gpt_at_depth", "resmlp_at_depth"]

"""Reference models, each built from a width: ``build("mlp", 256)``.

- ``mlp``: the ReLU MLP 40-w-w-10 of the MNIST-1D reference task;
- ``cnn``: a 1-D CNN on MNIST-1D (two convolutions of w channels, global pooling, readout);
- ``gpt``: a pre-LN byte-level GPT with muP attention scaling (``scaling.nn.Attention``);
- ``question``: the original question's MLP, 10-w-2 (asked about w = 32 and w = 256);
- ``funnel``: the original question's 10-64-16-2 network, widths scaled together (w, w/4).

Every model takes the width as its first argument, so ``lambda: build(name, base_width)`` is a base
model for :func:`scaling.parameterize`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from scaling.models.gpt import GPT, GPTConfig
from scaling.models.mlp import MLP, CNN1d, FunnelMLP, QuestionMLP

REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLP,
    "cnn": CNN1d,
    "gpt": GPT.from_width,
    "question": QuestionMLP,
    "funnel": FunnelMLP,
}

# The data each reference model reads (see scaling.data.load_task).
DATASETS: dict[str, str] = {
    "mlp": "mnist1d",
    "cnn": "mnist1d",
    "gpt": "stdlib-bytes",
    "question": "toy",
    "funnel": "toy",
}


def build(name: str, width: int, **kwargs: Any) -> nn.Module:
    """Build reference model ``name`` at ``width``."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(REGISTRY)}")
    if width < 1:
        raise ValueError(f"width must be a positive integer, got {width}")
    return REGISTRY[name](width, **kwargs)


__all__ = ["DATASETS", "GPT", "MLP", "REGISTRY", "CNN1d", "FunnelMLP", "GPTConfig", "QuestionMLP", "build"]

"""A small pre-LN GPT (nanoGPT's shape) built from :mod:`scaling.nn` layers.

The width is ``d_model``; the number of heads is fixed, so the head dimension grows with the width
and muP's ``1/d_head`` attention scaling (TP-V §4) matters.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scaling import nn as snn


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a :class:`GPT`. ``d_model`` is the width."""

    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    vocab_size: int = 256  # bytes
    block_size: int = 64
    mlp_ratio: int = 4
    tied: bool = False  # a readout tied to the token embedding: muP then needs "mup-table8" (SP works as is)


class Block(snn.ResidualBlock):
    """Pre-LN transformer block: ``x + attn(ln(x))``, then ``x + mlp(ln(x))``, each branch through
    :meth:`scaling.nn.ResidualBlock.branch` (a depth row's ``m_L^-alpha``; unchanged otherwise)."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = snn.Attention(cfg.d_model, cfg.n_heads)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.fc = snn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model)
        self.proj = snn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model)

    def forward(self, x: Tensor) -> Tensor:
        """Pre-LN residual block: attention, then the MLP."""
        x = x + self.branch(self.attn(self.ln1(x)))
        return x + self.branch(self.proj(F.gelu(self.fc(self.ln2(x)))))


class GPT(nn.Module):
    """Byte-level GPT: token and position embeddings, pre-LN blocks, final LayerNorm, readout."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = snn.Embedding(cfg.vocab_size, cfg.d_model)
        self.wpe = snn.Embedding(cfg.block_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.readout: snn.Readout = (
            snn.TiedReadout(self.wte) if cfg.tied else snn.Readout(cfg.d_model, cfg.vocab_size, bias=False)
        )

    @classmethod
    def from_width(cls, width: int, **kwargs: object) -> GPT:
        """A GPT with ``d_model = width`` and other fields of :class:`GPTConfig` from ``kwargs``."""
        return cls(GPTConfig(d_model=width, **kwargs))  # type: ignore[arg-type]

    def forward(self, idx: Tensor) -> Tensor:
        """Next-byte logits (batch, time, vocab) for byte indices ``idx`` (batch, time)."""
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.readout(self.ln_f(x))  # (B, T, vocab)

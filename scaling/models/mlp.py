"""MLPs and a 1-D CNN: plain torch layers, so they stand for a user's own model."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from scaling.errors import ScalingError


class MLP(nn.Module):
    """ReLU MLP ``in_dim -> width -> width -> out_dim`` (40-w-w-10 for MNIST-1D)."""

    def __init__(self, width: int, in_dim: int = 40, out_dim: int = 10, depth: int = 2) -> None:
        super().__init__()
        self.input = nn.Linear(in_dim, width)
        self.hidden = nn.ModuleList(nn.Linear(width, width) for _ in range(depth - 1))
        self.readout = nn.Linear(width, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of a batch ``x`` (batch, features)."""
        h = torch.relu(self.input(x))
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return self.readout(h)


class ResMLP(nn.Module):
    """Residual pre-LN MLP: ``in_dim -> width``, ``depth`` blocks ``h + W2 relu(W1 LN(h))`` (square
    ``width x width`` weights), a final LayerNorm and the readout: the residual, normalized shape of a
    transformer's MLP path, without attention. Each block is a residual branch (``scaling_branches``:
    :mod:`scaling.depth`), so the depth rows scale them."""

    scaling_branches = "blocks"

    def __init__(self, width: int, in_dim: int = 40, out_dim: int = 10, depth: int = 2) -> None:
        super().__init__()
        self.input = nn.Linear(in_dim, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
            for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.readout = nn.Linear(width, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of a batch ``x`` (batch, features)."""
        h = self.input(x)
        for block in self.blocks:
            h = h + block(h)
        return self.readout(self.norm(h))


class CNN1d(nn.Module):
    """1-D CNN for length-40 signals: two convolutions of ``width`` channels, average pool, readout."""

    def __init__(self, width: int, in_channels: int = 1, out_dim: int = 10, kernel_size: int = 5) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(in_channels, width, kernel_size, padding=kernel_size // 2)
        self.conv2 = nn.Conv1d(width, width, kernel_size, padding=kernel_size // 2)
        self.readout = nn.Linear(width, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of a batch ``x`` (batch, length) or (batch, 1, length)."""
        if x.ndim == 2:
            x = x.unsqueeze(1)  # (B, L) -> (B, 1, L)
        h = torch.relu(self.conv1(x))  # (B, w, L)
        h = torch.relu(self.conv2(h))
        return self.readout(h.mean(dim=2))  # (B, w) -> (B, out)


class QuestionMLP(nn.Module):
    """The original question's network: ``10 -> width -> 2`` (hidden 32 or 256), ReLU."""

    def __init__(self, width: int, in_dim: int = 10, out_dim: int = 2) -> None:
        super().__init__()
        self.input = nn.Linear(in_dim, width)
        self.readout = nn.Linear(width, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of a batch ``x`` (batch, features)."""
        return self.readout(torch.relu(self.input(x)))


class FunnelMLP(nn.Module):
    """The original question's ``10 -> 64 -> 16 -> 2`` network, both hidden sizes scaled: ``(w, w/4)``."""

    def __init__(self, width: int, in_dim: int = 10, out_dim: int = 2) -> None:
        super().__init__()
        if width % 4:
            raise ScalingError(f"funnel width must be a multiple of 4 (hidden sizes w, w/4), got {width}")
        self.input = nn.Linear(in_dim, width)
        self.hidden = nn.Linear(width, width // 4)
        self.readout = nn.Linear(width // 4, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of a batch ``x`` (batch, features)."""
        return self.readout(torch.relu(self.hidden(torch.relu(self.input(x)))))

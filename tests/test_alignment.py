"""The alignment ratio (Everett et al. 2024): exact where the theory is, 1/2 for updates blind to the input."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from scaling import optim
from scaling.coord.alignment import FULL, NONE, alignment_check
from scaling.errors import ScalingError


def mlp(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(16, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 4))


def data(batch: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 16, generator=g), torch.randint(0, 4, (batch,), generator=g)


class RandomStep(torch.optim.SGD):
    """Moves every parameter by Gaussian noise: an update independent of every input (no alignment)."""

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[no-untyped-def]
        for group in self.param_groups:
            for p in group["params"]:
                p.add_(torch.randn_like(p), alpha=group["lr"])


def test_one_sgd_step_on_one_example_is_fully_aligned():
    # dW = -lr g x^T for the input layer, so dW x = -lr g |x|^2 and the ratio is exactly the fan-in.
    result = alignment_check(mlp, data(1), widths=(32, 64), optimizer="sgd", lr=0.1, steps=1, seeds=(0,))
    for r in result.records:
        if r.module == "0":
            assert r.ratio == pytest.approx(16, rel=1e-4)
            assert r.alpha == pytest.approx(FULL, abs=1e-4)


def test_adam_hidden_and_readout_updates_align_like_the_fan_in_early():
    # muP's assumption (TP-V Sec. 5): after a step on the measured batch, dW x grows like n rms(dW) rms(x).
    result = alignment_check(mlp, data(8), widths=(64, 128, 256, 512), optimizer="adam", lr=1e-2, steps=2, seeds=(0, 1))
    for name in ("2", "4"):
        f = result.fit(name, 1)
        assert abs(f.slope - FULL) < 0.15, (name, f)
        assert f.reading == "full"


def test_updates_independent_of_the_input_read_as_no_alignment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(optim.OPTIMIZERS, "randomstep", optim.OptimizerSpec("randomstep", RandomStep, "sgd", {}))
    result = alignment_check(mlp, data(64), widths=(64, 128, 256, 512, 1024), optimizer="randomstep", lr=1e-3,
                             steps=1, seeds=(0, 1))
    f = result.fit("2", 1)
    assert abs(f.slope - NONE) < 0.1, f
    assert f.reading == "none"
    assert all(abs(a - NONE) < 0.15 for a in f.alpha.values()), f.alpha
    assert math.isnan(result.fit("0", 1).slope)  # the input layer's fan-in does not grow: no exponent


def test_bad_requests_are_refused():
    with pytest.raises(ScalingError, match="two distinct widths"):
        alignment_check(mlp, data(4), widths=(32, 32), steps=1)
    with pytest.raises(ScalingError, match="at must list steps"):
        alignment_check(mlp, data(4), widths=(32, 64), steps=2, at=(0, 3))

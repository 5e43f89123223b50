"""Regression tests for bugs in the core: ties under SP, width inference, bad base shapes, Adam's
epsilon, scheduler-floor messages and param groups refined from the user's own groups."""

from __future__ import annotations

import pytest
import torch

import scaling
from scaling.models.gpt import GPT


def tied_gpt(width: int) -> GPT:
    return GPT.from_width(width, tied=True, block_size=16)


# --- 1. SP (and any row whose factors agree for both roles) on a tied model ---------------------


def test_sp_accepts_a_tied_model_wider_than_base() -> None:
    torch.manual_seed(0)
    model = tied_gpt(64)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    plan = scaling.parameterize(model, base=lambda: tied_gpt(32), parameterization="sp")
    assert plan.widths["wte.weight"].m_out == 2.0  # wider than base: the tie is really checked
    for n, p in model.named_parameters():
        assert torch.equal(p, before[n]), n  # SP rescales nothing
    groups = plan.param_groups(lr=1e-3)
    assert [g["lr"] for g in groups] == [1e-3]
    assert model.readout.weight is model.wte.weight


def test_mup_still_refuses_a_tied_model() -> None:
    with pytest.raises(scaling.ScalingError, match="mup-table8"):
        scaling.parameterize(tied_gpt(64), base=lambda: tied_gpt(32), parameterization="mup")
    scaling.parameterize(tied_gpt(64), base=lambda: tied_gpt(32), parameterization="mup-table8")

"""Custom attention: scaling.attention_scale is the one softmax-scale formula, and parameterize warns
when a row's 1/d_head scaling (TP-V, Yang et al. 2022, §4) cannot reach an attention module."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import scaling
from scaling import nn as snn
from scaling.models.gpt import GPT, GPTConfig


class CausalSelfAttention(nn.Module):
    """nanoGPT's attention: a fused c_attn projection, SDPA with its default 1/sqrt(d_head) or a scale."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)
        self.scale: float | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).view(B, T, 3, self.n_heads, self.head_dim).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=self.scale)
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class Mixer(nn.Module):
    """An attention under a neutral class name, found by its q/k/v projections."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.scaled_dot_product_attention(self.q_proj(x), self.k_proj(x), self.v_proj(x))


class Net(nn.Module):
    def __init__(self, d: int, attention: str = "custom", n_heads: int = 2) -> None:
        super().__init__()
        self.inp = nn.Linear(5, d)
        self.attn = {
            "custom": lambda: CausalSelfAttention(d, n_heads),
            "mixer": lambda: Mixer(d),
            "scaling": lambda: snn.Attention(d, n_heads),
        }[attention]()
        self.out = nn.Linear(d, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.attn(self.inp(x)))


def _warnings(model: nn.Module, base: nn.Module, **kwargs: object) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scaling.parameterize(model, base=base, **kwargs)  # type: ignore[arg-type]
    return [w for w in caught if issubclass(w.category, scaling.AttentionScalingWarning)]


def test_attention_scale_formula() -> None:
    assert scaling.attention_scale("sp", 64, 16) == 1 / math.sqrt(64)
    assert scaling.attention_scale("mup", 64, 16) == pytest.approx(math.sqrt(16) / 64, rel=1e-15)
    for row in ("sp", "ntk", "mup", "mup-table8", scaling.MUP):
        assert scaling.attention_scale(row, 16, 16) == 1 / math.sqrt(16)  # every row is SP at base
    plan = scaling.parameterize(Net(32, "scaling"), base=Net(16, "scaling"))
    assert scaling.attention_scale(plan, 64, 16) == scaling.attention_scale("mup", 64, 16)
    with pytest.raises(scaling.ScalingError, match="narrower"):
        scaling.attention_scale("mup", 8, 16)


def test_scaling_attention_passes_the_same_scale_to_sdpa(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[float] = []
    sdpa = F.scaled_dot_product_attention

    def spy(*args: object, scale: float, **kwargs: object) -> torch.Tensor:
        seen.append(scale)
        return sdpa(*args, scale=scale, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(snn.F, "scaled_dot_product_attention", spy)
    model = Net(64, "scaling", n_heads=2)  # head_dim 32 against base 8
    plan = scaling.parameterize(model, base=Net(16, "scaling", n_heads=2))
    model(torch.randn(2, 4, 5))
    assert seen == [scaling.attention_scale(plan, 32, 8)]
    assert seen[0] == pytest.approx(math.sqrt(8) / 32)


def test_custom_attention_with_the_helper_matches_scaling_attention() -> None:
    ours = Net(64, "scaling", n_heads=2)
    custom = Net(64, "custom", n_heads=2)
    with torch.no_grad():
        custom.inp.load_state_dict(ours.inp.state_dict())
        custom.out.load_state_dict(ours.out.state_dict())
        custom.attn.c_attn.load_state_dict(ours.attn.qkv.state_dict())
        custom.attn.c_proj.load_state_dict(ours.attn.proj.state_dict())
    scaling.parameterize(ours, base=Net(16, "scaling", n_heads=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scaling.AttentionScalingWarning)
        plan = scaling.parameterize(custom, base=Net(16, "custom", n_heads=2))
    x = torch.randn(2, 4, 5)
    assert not torch.allclose(custom(x), ours(x))  # SDPA's default 1/sqrt(d_head): not muP
    custom.attn.scale = scaling.attention_scale(plan, 32, 8)
    torch.testing.assert_close(custom(x), ours(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("attention", ["custom", "mixer"])
def test_custom_attention_warns_under_mup(attention: str) -> None:
    caught = _warnings(Net(64, attention), Net(16, attention))
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "'attn'" in message and "attention_scale" in message
    assert type(Net(16, attention).attn).__name__ in message
    assert caught[0].filename == __file__  # points at the caller of parameterize


@pytest.mark.parametrize(
    ("attention", "kwargs", "wide"),
    [
        ("custom", {"parameterization": "sp"}, True),  # SP's 1/sqrt(d_head) is SDPA's default
        ("custom", {"parameterization": "ntk"}, True),
        ("scaling", {}, True),  # scaling.nn.Attention takes the plan's scale
        ("custom", {"delta": Net(32)}, False),  # at base width the scales agree
    ],
)
def test_no_attention_warning_when_nothing_is_lost(attention: str, kwargs: dict, wide: bool) -> None:
    width = 64 if wide else 16
    assert _warnings(Net(width, attention), Net(16, attention), **kwargs) == []


def test_multihead_attention_is_custom_and_detection_skips_children() -> None:
    model = nn.Sequential(nn.Linear(3, 8), nn.MultiheadAttention(8, 2))
    assert scaling.custom_attention_modules(model) == ["1"]
    assert scaling.custom_attention_modules(Net(16, "mixer")) == ["attn"]
    assert scaling.custom_attention_modules(Net(16, "scaling")) == []
    assert scaling.custom_attention_modules(GPT(GPTConfig())) == []

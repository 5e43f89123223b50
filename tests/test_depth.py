"""Depth, the table's second dimension: Depth-muP (alpha = 1/2) and CompleteP (alpha = 1).

The tables below are written out by hand from the papers, not computed from the package's exponents:
CompleteP (Dey et al. 2025), Table 1 (pre-LN transformer, AdamW), and Depth-muP (Yang et al. 2023,
Tensor Programs VI, §3: branch multiplier a/sqrt(L), SGD learning rate depth-independent, Adam's
eta/sqrt(L)), at width multiplier m_N = 2 and depth multipliers m_L = 1, 2, 4.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import train_losses
from torch import nn

import scaling
from scaling import nn as snn
from scaling.errors import ScalingError
from scaling.models import GPT, ResMLP
from scaling.models.gpt import GPTConfig
from scaling.table import COMPLETEP, DEPTH_MUP, MUP_TABLE8, DepthRule

R2 = math.sqrt(2)


def gpt(width: int, layers: int) -> GPT:
    return GPT(GPTConfig(d_model=width, n_layers=layers, n_heads=2, block_size=16))


def plan_of(row: str, m_depth: int, optimizer: str = "adam", weight_decay: str = "coupled") -> scaling.ScalingPlan:
    torch.manual_seed(0)
    return scaling.parameterize(gpt(32, 2 * m_depth), base=lambda: gpt(16, 2), parameterization=row,
                                optimizer=optimizer, weight_decay=weight_decay)


# name -> (lr, eps, weight decay) multipliers at m_N = 2, AdamW, coupled decay, written out from the
# papers. CompleteP Table 1: hidden LR e m_N^-1 m_L^(alpha-1), in-block biases and pre-LN gains
# e m_L^(alpha-1), embedding / final LN / unembedding e; hidden weight decay l m_N; AdamW eps in the
# residual blocks eps m_N^-1 m_L^-alpha. Outside the blocks the width rule alone (muP, TP-V Table 3:
# the readout's LR 1/m_N; epsilon scaled like each tensor's gradient, m_N^-1 for the embeddings).
ADAM_TABLE = {
    # (row, m_L): {parameter: (lr, eps, wd)}
    ("completep", 1): {"blocks.0.fc.weight": (1 / 2, 1 / 2, 2), "blocks.0.ln1.weight": (1, 1 / 2, 1),
                       "blocks.0.fc.bias": (1, 1 / 2, 1), "wte.weight": (1, 1 / 2, 1),
                       "ln_f.weight": (1, 1 / 2, 1), "readout.weight": (1 / 2, 1, 2)},
    ("completep", 2): {"blocks.3.fc.weight": (1 / 2, 1 / 4, 2), "blocks.3.ln1.weight": (1, 1 / 4, 1),
                       "blocks.3.fc.bias": (1, 1 / 4, 1), "wte.weight": (1, 1 / 2, 1),
                       "ln_f.weight": (1, 1 / 2, 1), "readout.weight": (1 / 2, 1, 2)},
    ("completep", 4): {"blocks.7.fc.weight": (1 / 2, 1 / 8, 2), "blocks.7.ln1.weight": (1, 1 / 8, 1),
                       "blocks.7.fc.bias": (1, 1 / 8, 1), "wte.weight": (1, 1 / 2, 1),
                       "ln_f.weight": (1, 1 / 2, 1), "readout.weight": (1 / 2, 1, 2)},
    ("depth-mup", 1): {"blocks.0.fc.weight": (1 / 2, 1 / 2, 2), "blocks.0.ln1.weight": (1, 1 / 2, 1),
                       "blocks.0.fc.bias": (1, 1 / 2, 1), "wte.weight": (1, 1 / 2, 1),
                       "ln_f.weight": (1, 1 / 2, 1), "readout.weight": (1 / 2, 1, 2)},
    ("depth-mup", 2): {"blocks.3.fc.weight": (1 / (2 * R2), 1 / (2 * R2), 2),
                       "blocks.3.ln1.weight": (1 / R2, 1 / (2 * R2), 1),
                       "blocks.3.fc.bias": (1 / R2, 1 / (2 * R2), 1), "wte.weight": (1, 1 / 2, 1),
                       "ln_f.weight": (1, 1 / 2, 1), "readout.weight": (1 / 2, 1, 2)},
    ("depth-mup", 4): {"blocks.7.fc.weight": (1 / 4, 1 / 4, 2), "blocks.7.ln1.weight": (1 / 2, 1 / 4, 1),
                       "blocks.7.fc.bias": (1 / 2, 1 / 4, 1), "wte.weight": (1, 1 / 2, 1),
                       "ln_f.weight": (1, 1 / 2, 1), "readout.weight": (1 / 2, 1, 2)},
}
BRANCH = {("completep", 1): 1, ("completep", 2): 1 / 2, ("completep", 4): 1 / 4,
          ("depth-mup", 1): 1, ("depth-mup", 2): 1 / R2, ("depth-mup", 4): 1 / 2}


@pytest.mark.parametrize(("row", "m_depth"), list(ADAM_TABLE))
def test_adamw_table_written_out_from_completep_table_1(row: str, m_depth: int) -> None:
    plan = plan_of(row, m_depth)
    assert plan.depth is not None and plan.depth.multiplier == m_depth
    for name, (lr, eps, wd) in ADAM_TABLE[(row, m_depth)].items():
        assert plan.lr_multiplier(name) == pytest.approx(lr, rel=1e-12), name
        assert plan.eps_multiplier(name) == pytest.approx(eps, rel=1e-12), name
        assert plan.weight_decay_multiplier(name) == pytest.approx(wd, rel=1e-12), name
        # Init: no depth factor (CompleteP Table 1); the width rule's (TP-V Table 3: readout var 1/fan_in^2,
        # biases O(1), so x sqrt(m_N) on PyTorch's 1/sqrt(fan_in)).
        init = 1 / R2 if name == "readout.weight" else R2 if name.endswith("fc.bias") else 1.0
        assert plan.init_multiplier(name) == pytest.approx(init), name
    assert list(plan.branches.values()) == pytest.approx([BRANCH[(row, m_depth)]] * 2 * m_depth, rel=1e-12)
    assert len(plan.branches) == 2 * m_depth


@pytest.mark.parametrize("m_depth", [1, 2, 4])
def test_sgd_written_out_from_depth_mup(m_depth: int) -> None:
    # TP-VI §3: with branches x a/sqrt(L), SGD's learning rate does not change with depth; muP's square
    # hidden weight keeps SGD LR 1 (TP-V Table 3), its biases fan_out = m_N = 2.
    plan = plan_of("depth-mup", m_depth, optimizer="sgd")
    last = 2 * m_depth - 1
    assert plan.lr_multiplier(f"blocks.{last}.attn.proj.weight") == pytest.approx(1.0)
    assert plan.lr_multiplier(f"blocks.{last}.attn.proj.bias") == pytest.approx(2.0)
    # CompleteP with SGD (ours, derived in DepthRule): m_L^(2 alpha - 1) = m_L.
    plan = plan_of("completep", m_depth, optimizer="sgd")
    assert plan.lr_multiplier(f"blocks.{last}.attn.proj.weight") == pytest.approx(m_depth)


def test_depth_rule_exponents() -> None:
    assert (DepthRule(0.5).lr("adam"), DepthRule(0.5).lr("sgd"), DepthRule(0.5).branch) == (-0.5, 0.0, -0.5)
    assert (DepthRule(1).lr("adam"), DepthRule(1).lr("sgd"), DepthRule(1).lr("muon")) == (0.0, 1.0, 0.0)
    assert DepthRule(1).eps_for("adam") == (-1.0,) and DepthRule(0.5).eps_for("adafactor") == (-1.0, 0.0)
    assert DepthRule(1).eps_for("sgd") == ()
    with pytest.raises(ScalingError, match="alpha"):
        DepthRule(-1)


def test_independent_weight_decay_follows_the_full_learning_rate() -> None:
    # Independent decay: the per-step decay lr x wd is the base's whatever the LR (depth included).
    plan = plan_of("depth-mup", 4, weight_decay="independent")
    name = "blocks.7.fc.weight"
    assert plan.weight_decay_multiplier(name, lr=1e-3) == pytest.approx(1 / (1e-3 * plan.lr_multiplier(name)))


@pytest.mark.parametrize("row", ["sp", "mup", "depth-mup", "completep"])
@pytest.mark.parametrize("name", ["gpt", "resmlp"])
def test_base_depth_and_width_is_pytorch_bit_for_bit(row: str, name: str) -> None:
    def builder(depth: int = 2) -> nn.Module:
        return gpt(16, depth) if name == "gpt" else ResMLP(32, depth=depth)

    torch.manual_seed(3)
    plain = builder()
    torch.manual_seed(3)
    model = builder()
    # The delta is twice as deep and twice as wide: roles and depth known, every multiplier 1 here.
    delta = (lambda: gpt(32, 4)) if name == "gpt" else (lambda: ResMLP(64, depth=4))
    plan = scaling.parameterize(model, base=builder, delta=delta, parameterization=row)
    for (n, a), (_, b) in zip(plain.named_parameters(), model.named_parameters()):
        assert torch.equal(a, b), n
    assert set(plan.branches.values()) <= {1.0}
    x = torch.randint(0, 256, (2, 16)) if isinstance(plain, GPT) else torch.randn(4, 40)
    opt_a = torch.optim.AdamW(plain.parameters(), lr=1e-2, weight_decay=0.0)
    opt_b = torch.optim.AdamW(plan.param_groups(lr=1e-2))
    for _ in range(2):
        for model_, opt in ((plain, opt_a), (model, opt_b)):
            opt.zero_grad()
            model_(x).square().mean().backward()
            opt.step()
    assert torch.equal(plain(x), model(x))


def test_deeper_blocks_read_their_base_blocks_shapes() -> None:
    plan = plan_of("completep", 4)
    for i in range(8):
        assert plan.widths[f"blocks.{i}.attn.qkv.weight"].role == "hidden"
        assert plan.widths[f"blocks.{i}.ln2.bias"].role == "vector"
        assert plan.in_branch(f"blocks.{i}.fc.weight")
    assert not plan.in_branch("wte.weight") and not plan.in_branch("ln_f.weight")
    # The attention's base head dimension is its base block's: 1/d_head scaling as at base depth.
    attention = plan.model.blocks[7].attn  # type: ignore[union-attr]
    assert attention.scaling_attention == pytest.approx(math.sqrt(8 / 16))


class PlainResMLP(nn.Module):
    """A user's own residual MLP of plain torch modules (no scaling.nn): h = h + block(h)."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__()
        self.input = nn.Linear(40, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.ReLU(),
                                                  nn.Linear(width, width)) for _ in range(depth))
        self.readout = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x)
        for block in self.blocks:
            h = h + block(h)
        return self.readout(h)


class BlockResMLP(PlainResMLP):
    """The same network with its blocks marked by scaling.nn: ResidualBlock's branch()."""

    class Block(snn.ResidualBlock):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, h: torch.Tensor) -> torch.Tensor:
            return h + self.branch(self.inner(h))

    def __init__(self, width: int, depth: int) -> None:
        super().__init__(width, depth)
        self.blocks = nn.ModuleList(self.Block(b) for b in self.blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x)
        for block in self.blocks:
            h = block(h)
        return self.readout(h)


class WrappedResMLP(PlainResMLP):
    """The same network with each branch wrapped in scaling.nn.Branch."""

    def __init__(self, width: int, depth: int) -> None:
        super().__init__(width, depth)
        self.blocks = nn.ModuleList(snn.Branch(b) for b in self.blocks)


def _losses(cls: type[nn.Module], row: str, steps: int = 5, **kwargs: object) -> list[float]:
    torch.manual_seed(0)
    model = cls(64, 8)
    plan = scaling.parameterize(model, base=lambda: cls(32, 2), delta=lambda: cls(64, 4), parameterization=row,
                                **kwargs)
    opt = torch.optim.Adam(plan.param_groups(lr=3e-3))
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(32, 40, generator=g), torch.randint(0, 10, (32,), generator=g)
    return train_losses(model, opt, x, y, steps)


@pytest.mark.parametrize("row", ["depth-mup", "completep"])
def test_three_ways_of_marking_branches_train_alike(row: str) -> None:
    named = _losses(PlainResMLP, row, branches="blocks")
    assert named == pytest.approx(_losses(BlockResMLP, row), rel=1e-6)
    assert named == pytest.approx(_losses(WrappedResMLP, row), rel=1e-6)
    assert named != pytest.approx(_losses(PlainResMLP, "mup", branches="blocks"), rel=1e-3)  # depth mattered


def test_abc_equivalent_forms_of_a_depth_row_train_to_the_same_losses() -> None:
    # TP-V Table 3 vs Table 8 form (readout multiplier 1/m_N) of CompleteP: the same dynamics.
    table8 = MUP_TABLE8.with_depth(1.0, name="completep-table8")
    assert _losses(PlainResMLP, COMPLETEP, branches="blocks", steps=8) == pytest.approx(
        _losses(PlainResMLP, table8, branches="blocks", steps=8), rel=1e-5)
    table8_half = MUP_TABLE8.with_depth(0.5, name="depth-mup-table8")
    assert _losses(PlainResMLP, DEPTH_MUP, branches="blocks", steps=8) == pytest.approx(
        _losses(PlainResMLP, table8_half, branches="blocks", steps=8), rel=1e-5)


def test_a_depth_row_on_unmarked_branches_is_refused_and_changes_nothing() -> None:
    torch.manual_seed(0)
    model = PlainResMLP(64, 8)
    before = {n: p.clone() for n, p in model.named_parameters()}
    with pytest.raises(ScalingError, match="residual branches marked|no residual branch is marked"):
        scaling.parameterize(model, base=lambda: PlainResMLP(32, 2), parameterization="completep")
    with pytest.raises(ScalingError, match="no residual branch is marked"):
        scaling.parameterize(model, base=lambda: PlainResMLP(32, 8), parameterization="completep",
                             depth_multiplier=4)
    assert all(torch.equal(before[n], p) for n, p in model.named_parameters())
    assert not hasattr(model, "_scaling_parameterization")
    assert not any(m._forward_hooks for m in model.modules())


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"branches": "nothing"}, "not a module"),
    ({"branches": ["blocks", "blocks.0.1"]}, "inside residual branch"),
    ({"branches": "blocks", "depth_multiplier": 0}, "positive"),
])
def test_bad_depth_input_is_refused(kwargs: dict, match: str) -> None:
    model = PlainResMLP(64, 8)
    with pytest.raises(ScalingError, match=match):
        scaling.parameterize(model, base=lambda: PlainResMLP(32, 2), parameterization="completep", **kwargs)


def test_a_base_deeper_than_the_model_is_refused() -> None:
    with pytest.raises(ScalingError, match="shallowest"):
        scaling.parameterize(gpt(32, 2), base=lambda: gpt(16, 4), parameterization="completep")


def test_width_only_rows_train_a_deeper_model_unscaled() -> None:
    # SP and muP on a model deeper than its base: shapes from the base's blocks, no branch multiplier.
    plan = plan_of("mup", 4)
    assert set(plan.branches.values()) == {1.0}
    assert plan.lr_multiplier("blocks.7.fc.weight") == pytest.approx(0.5)
    assert plan.eps_multiplier("blocks.7.fc.weight") == pytest.approx(0.5)


def test_depth_rows_refuse_the_group_free_form() -> None:
    with pytest.raises(ScalingError, match="per-layer groups"):
        COMPLETEP.constant_lr()


@pytest.mark.parametrize(("row", "hidden", "vector"), [("mup", 1 / 4, 1), ("depth-mup", 1 / 8, 1 / 2),
                                                        ("completep", 1 / 4, 1)])
def test_width_and_depth_together_multiply(row: str, hidden: float, vector: float) -> None:
    # 4x wider and 4x deeper than the base, the delta 2x both (as the sweep engine builds them): m_N = m_L = 4.
    # Adam, in a block: hidden LR 1/m_N x m_L^(alpha - 1), gains and biases m_L^(alpha - 1) (CompleteP
    # Table 1); width-only muP leaves the deeper blocks unscaled.
    from scaling.models import build

    torch.manual_seed(0)
    plan = scaling.parameterize(build("resmlp-width-depth", 4), base=lambda: build("resmlp-width-depth", 1),
                                delta=lambda: build("resmlp-width-depth", 2), parameterization=row, optimizer="adam")
    assert plan.depth is not None and plan.depth.multiplier == 4
    assert plan.lr_multiplier("blocks.7.1.weight") == pytest.approx(hidden, rel=1e-12)
    assert plan.lr_multiplier("blocks.7.0.weight") == pytest.approx(vector, rel=1e-12)
    assert plan.lr_multiplier("readout.weight") == pytest.approx(1 / 4, rel=1e-12)
    assert plan.lr_multiplier("input.weight") == pytest.approx(1.0)

"""The exponent table written out: LR, init and epsilon multipliers per role, optimizer and width.

Each expected value below is transcribed from the papers, not computed from the code:
TP-V (Yang et al. 2022) Table 3 and Table 8 for muP, TP-IV (Yang & Hu 2021) §3 for NTK.
"""

from __future__ import annotations

import pytest

from scaling.optim import optimizer_family
from scaling.table import (
    MFP,
    MUP,
    MUP_TABLE8,
    NTK,
    PARAMETERIZATIONS,
    ROLES,
    SP,
    Power,
    get_parameterization,
    weight_decay_multiplier,
)

M = (1, 4, 8)

# (role, m) -> (init, Adam LR, SGD LR, Adam eps), for a square model: m_in = m_out = m, except that
# input weights and vectors have a finite fan-in (m_in = 1 for the LR; a hidden bias's m_in is its
# layer's, m, for the init) and the readout has a finite fan-out.
MUP_TABLE3 = {
    # TP-V Table 3: input weights & all biases: init var 1/fan_in, SGD LR fan_out, Adam LR 1.
    ("input", 1): (1, 1, 1, 1), ("input", 4): (1, 1, 4, 1 / 4), ("input", 8): (1, 1, 8, 1 / 8),
    # hidden weights: init var 1/fan_in (PyTorch's), SGD LR 1, Adam LR 1/fan_in.
    ("hidden", 1): (1, 1, 1, 1), ("hidden", 4): (1, 1 / 4, 1, 1 / 4), ("hidden", 8): (1, 1 / 8, 1, 1 / 8),
    # output weights: init var 1/fan_in^2 (std x 1/sqrt(m) vs PyTorch), SGD and Adam LR 1/fan_in.
    ("output", 1): (1, 1, 1, 1), ("output", 4): (1 / 2, 1 / 4, 1 / 4, 1), ("output", 8): (8**-0.5, 1 / 8, 1 / 8, 1),
    # a hidden layer's bias: O(1) init (PyTorch shrinks it like 1/sqrt(fan_in)), SGD LR fan_out.
    ("vector", 1): (1, 1, 1, 1), ("vector", 4): (2, 1, 4, 1 / 4), ("vector", 8): (8**0.5, 1, 8, 1 / 8),
}
MUP_TABLE8_OUTPUT = {
    # TP-V Table 8: output weights: multiplier 1/fan_in, init var 1, SGD LR fan_in, Adam LR 1.
    1: (1, 1, 1, 1, 1), 4: (1 / 4, 2, 1, 4, 1 / 4), 8: (1 / 8, 8**0.5, 1, 8, 1 / 8),
}


def _m(role: str, m: float) -> tuple[float, float]:
    return {"input": (1, m), "hidden": (m, m), "output": (m, 1), "vector": (m, m), "finite": (m, 1)}[role]


@pytest.mark.parametrize(("role", "m"), list(MUP_TABLE3))
def test_mup_table3_written_out(role: str, m: int) -> None:
    rule = MUP.rule(role)  # type: ignore[arg-type]
    m_in, m_out = _m(role, m)
    init, adam, sgd, eps = MUP_TABLE3[(role, m)]
    assert rule.init(m_in, m_out) == pytest.approx(init)
    assert rule.lr("adam")(m_in, m_out) == pytest.approx(adam)
    assert rule.lr("sgd")(m_in, m_out) == pytest.approx(sgd)
    assert rule.eps()(m_in, m_out) == pytest.approx(eps)
    assert rule.multiplier(m_in, m_out) == 1


@pytest.mark.parametrize("m", M)
def test_mup_table8_output_written_out(m: int) -> None:
    rule = MUP_TABLE8.rule("output")
    mult, init, adam, sgd, eps = MUP_TABLE8_OUTPUT[m]
    assert rule.multiplier(m, 1) == pytest.approx(mult)
    assert rule.init(m, 1) == pytest.approx(init)
    assert rule.lr("adam")(m, 1) == pytest.approx(adam)
    assert rule.lr("sgd")(m, 1) == pytest.approx(sgd)
    assert rule.eps()(m, 1) == pytest.approx(eps)
    for role in ("input", "hidden", "vector", "finite"):
        assert MUP_TABLE8.rule(role) == MUP.rule(role)  # type: ignore[arg-type]


def test_nonsquare_hidden_follows_microsoft_mup() -> None:
    """A 4x FFN weight (fan_out 4m, fan_in m) at m = 2: Adam 1/m_in, SGD m_out/m_in (mup's MuSGD)."""
    rule = MUP.rule("hidden")
    assert rule.lr("adam")(2, 8) == pytest.approx(1 / 2)
    assert rule.lr("sgd")(2, 8) == pytest.approx(4)


@pytest.mark.parametrize("m", M)
def test_ntk_written_out(m: int) -> None:
    """TP-IV §3: W = w/sqrt(fan_in), w ~ N(0, 1), one global SGD learning rate."""
    hidden, output = NTK.rule("hidden"), NTK.rule("output")
    assert hidden.multiplier(m, m) == pytest.approx(m**-0.5)
    assert hidden.init(m, m) == pytest.approx(m**0.5)  # x sqrt(m) vs PyTorch's 1/sqrt(fan_in): N(0, 1)
    assert output.multiplier(m, 1) == pytest.approx(m**-0.5)
    for role in ROLES:
        assert NTK.rule(role).lr("sgd")(*_m(role, m)) == 1
    # Adam: the LR that moves W as much as SGD does: SGD's LR times the gradient of w.
    assert hidden.lr("adam")(m, m) == pytest.approx(1 / m)
    assert output.lr("adam")(m, 1) == pytest.approx(m**-0.5)


def test_sp_is_pytorch_everywhere() -> None:
    for role in ROLES:
        rule = SP.rule(role)
        for m in M:
            values = [rule.init, rule.multiplier, rule.lr("sgd"), rule.lr("adam"), rule.eps()]
            assert all(v(m, m) == 1 for v in values)


@pytest.mark.parametrize("row", list(PARAMETERIZATIONS.values()), ids=list(PARAMETERIZATIONS))
def test_every_row_is_pytorch_at_base_width(row: object) -> None:
    for rule in row.rules.values():  # type: ignore[attr-defined]
        for p in (rule.init, rule.multiplier, rule.lr("sgd"), rule.lr("adam"), rule.eps()):
            assert p(1.0, 1.0) == 1.0  # exactly: base width is bit-for-bit PyTorch


def test_table8_is_table3_by_abc_symmetry() -> None:
    """TP-V Table 8 and Table 3 differ by the symmetry a -> a + t, b -> b - t, c -> c - 2t (SGD) / c - t."""
    assert MUP_TABLE8.without_multipliers().rules == MUP.rules
    assert MUP.shifted({"output": Power(fan_in=-1)}).rules == MUP_TABLE8.rules


def test_mfp_is_mup_by_abc_symmetry() -> None:
    """Everett et al. 2024 §2.1: muP and mean-field are one equivalence class."""
    assert MFP.without_multipliers().rules == MUP.rules
    assert all(MFP.rule(r).init(4, 4) * _default_std(r, 4) == pytest.approx(_default_std("input", 4))
               for r in ("input", "hidden", "output"))


def _default_std(role: str, m: float) -> float:
    """PyTorch's default std relative to base: 1/sqrt(m_in) for weights with an infinite fan-in."""
    return {"input": 1.0, "hidden": m**-0.5, "output": m**-0.5}[role]


def test_ntk_and_sp_are_not_equivalent() -> None:
    assert NTK.without_multipliers().rules != SP.rules


def test_eps_scales_like_the_gradient() -> None:
    """Shifting by the abc-symmetry multiplies the gradient of w by n^t, and eps follows it."""
    t = Power(fan_in=0.5)
    for row in PARAMETERIZATIONS.values():
        for rule in row.rules.values():
            assert rule.shifted(t).eps() == rule.eps() + t


def test_weight_decay_modes() -> None:
    # coupled: per-step decay lr * wd unchanged by the LR multiplier (microsoft/mup's choice)
    assert 0.25 * weight_decay_multiplier(0.25, 1e-3, "coupled") == pytest.approx(1)
    # independent: per-step decay wd, whatever the base LR and the multiplier
    assert 1e-3 * 0.25 * weight_decay_multiplier(0.25, 1e-3, "independent") == pytest.approx(1)
    with pytest.raises(ValueError, match="weight-decay mode"):
        weight_decay_multiplier(1, 1, "bogus")  # type: ignore[arg-type]


def test_attention_scaling() -> None:
    """TP-V §4: 1/d_head attention for muP (and its class), 1/sqrt(d_head) otherwise."""
    assert MUP.attention == MUP_TABLE8.attention == MFP.attention == -0.5
    assert SP.attention == NTK.attention == 0


@pytest.mark.parametrize(
    ("name", "family"),
    [("SGD", "sgd"), ("asgd", "sgd"), ("Adam", "adam"), ("AdamW", "adam"), ("adagrad", "adam"), ("RMSprop", "adam")],
)
def test_optimizer_families(name: str, family: str) -> None:
    import torch

    assert optimizer_family(name) == family
    cls = getattr(torch.optim, name, None)
    if cls is not None:
        assert optimizer_family(cls) == family


def test_unknown_names_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown parameterization 'mu-p'.*mup"):
        get_parameterization("mu-p")
    with pytest.raises(ValueError, match="optimizer='sgd' or optimizer='adam'.*register_optimizer"):
        optimizer_family("lion")
    assert get_parameterization("MUP_table8") is MUP_TABLE8

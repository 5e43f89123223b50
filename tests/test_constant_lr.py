"""muP without per-layer groups: the row ``mup-constant-lr`` moves every Adam LR factor into init and
forward multipliers (the abc-symmetry, TP-IV §3 Eq. 2), so a plain ``AdamW(model.parameters())`` trains
muP's dynamics."""

from __future__ import annotations

import pytest
import torch
from conftest import train_losses

import scaling
from scaling.models import MLP
from scaling.table import MUP, MUP_CONSTANT_LR, Power


def test_the_row_written_out() -> None:
    """Table 3's hidden rule shifted by t = -m_in: stored m_in x PyTorch's init, multiplied by 1/m_in, Adam
    LR 1; the readout becomes Table 8's (init x m_in^1/2, multiplier 1/m_in); input and vectors unchanged."""
    rules = MUP_CONSTANT_LR.rules
    assert (rules["hidden"].init, rules["hidden"].multiplier) == (Power(1, 0), Power(-1, 0))
    assert (rules["output"].init, rules["output"].multiplier) == (Power(0.5, 0), Power(-1, 0))
    assert rules["input"] == MUP.rules["input"] and rules["vector"] == MUP.rules["vector"]
    assert all(rule.lr("adam") == Power() for rule in rules.values())
    assert MUP_CONSTANT_LR.equivalent_to == "mup"


def test_every_adam_group_has_the_base_lr_at_width() -> None:
    plan = scaling.parameterize(MLP(256), base=MLP(64), parameterization="mup-constant-lr")
    assert {plan.lr_multiplier(n, "adam") for n in plan.widths} == {1.0}
    assert plan.lr_multiplier("hidden.0.weight", "adam") == 1.0
    with pytest.raises(scaling.ScalingError, match="shift 0"):
        MUP.constant_lr("adafactor")


def _losses(row: str, groups: bool, steps: int = 20) -> list[float]:
    torch.manual_seed(0)
    model = MLP(256).double()
    plan = scaling.parameterize(model, base=MLP(64), parameterization=row)
    params = plan.param_groups("adam", lr=3e-3, eps=1e-30) if groups else model.parameters()
    opt = torch.optim.AdamW(params, lr=3e-3, eps=1e-30, weight_decay=0.0)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(64, 40, generator=g, dtype=torch.float64), torch.randint(0, 10, (64,), generator=g)
    return train_losses(model, opt, x, y, steps)


def test_plain_adamw_on_model_parameters_trains_mup() -> None:
    """20 Adam steps at width 256 (base 64), epsilon negligible: a plain AdamW over model.parameters()
    on the constant-LR row gives the per-group muP losses within float64 rounding."""
    per_group, plain = _losses("mup", groups=True), _losses("mup-constant-lr", groups=False)
    assert plain == pytest.approx(per_group, rel=1e-9)
    assert _losses("sp", groups=False) != pytest.approx(per_group, rel=1e-3)  # and SP is not muP


def test_coordinate_check_of_the_constant_lr_row() -> None:
    g = torch.Generator().manual_seed(0)
    batch = torch.randn(64, 40, generator=g), torch.randint(0, 10, (64,), generator=g)
    result = scaling.coord_check(MLP, batch, widths=(128, 256, 512, 1024), parameterization="mup-constant-lr",
                                 optimizer="adam", lr=1e-2, steps=3, seeds=2)
    assert not result.unstable(), result.table()

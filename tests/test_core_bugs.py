"""Regression tests for bugs in the core: ties under SP, width inference, bad base shapes, Adam's
epsilon, scheduler-floor messages and param groups refined from the user's own groups."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

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


# --- 6. width multipliers that differ across the model --------------------------------------------


def mlp(width: int, d_in: int = 10) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 2))


def test_a_base_with_another_input_size_warns_naming_the_parameter() -> None:
    torch.manual_seed(0)
    with pytest.warns(scaling.ScalingWarning, match=r"differ across the model.*'0\.weight'"):
        plan = scaling.parameterize(mlp(128, d_in=10), base=lambda: mlp(32, d_in=5))
    assert plan.widths["0.weight"].role == "hidden"  # what the warning is about


def test_a_typo_in_a_shape_dict_warns() -> None:
    shapes = {n: tuple(p.shape) for n, p in mlp(32).named_parameters()}
    shapes["4.weight"] = (2, 23)  # meant 32
    with pytest.warns(scaling.ScalingWarning, match="'4.weight'"):
        scaling.parameterize(mlp(64), base=shapes)


def test_one_multiplier_across_the_model_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaling.parameterize(mlp(128), base=lambda: mlp(32))
        scaling.parameterize(GPT.from_width(64, block_size=16), base=lambda: GPT.from_width(32, block_size=16))
        scaling.parameterize(mlp(32), base=lambda: mlp(32), delta=lambda: mlp(64))  # base width, delta given


# --- 7. bad base shapes, ValueError, base equal to target -----------------------------------------


def test_a_number_for_a_shape_names_the_parameter() -> None:
    shapes: dict[str, object] = {n: tuple(p.shape) for n, p in mlp(32).named_parameters()}
    shapes["2.weight"] = 64
    with pytest.raises(scaling.ScalingError, match="'2.weight'"):
        scaling.parameterize(mlp(64), base=shapes)  # type: ignore[arg-type]
    shapes["2.weight"] = (32, "32")
    with pytest.raises(scaling.ScalingError, match="'2.weight'"):
        scaling.parameterize(mlp(64), base=shapes)  # type: ignore[arg-type]


def test_base_equal_to_target_warns() -> None:
    with pytest.warns(scaling.ScalingWarning, match="base shape"):
        scaling.parameterize(mlp(32), base=lambda: mlp(32))


def test_bad_input_raises_scaling_error_which_is_a_value_error() -> None:
    from scaling.data import load_dataset
    from scaling.models import build
    from scaling.predict import chain

    assert issubclass(scaling.ScalingError, ValueError)  # old `except ValueError` keeps working
    with pytest.raises(scaling.ScalingError, match="unknown model"):
        build("no-such-model", 64)
    with pytest.raises(scaling.ScalingError, match="positive integer"):
        build("mlp", 0)
    with pytest.raises(scaling.ScalingError, match="unknown dataset"):
        load_dataset("no-such-data")
    with pytest.raises(scaling.ScalingError, match="hidden_layers"):
        chain("mup", "adam", hidden_layers=-1)


# --- 8. Adam's epsilon unscaled; the ReduceLROnPlateau floor message ------------------------------


def mup_mlp() -> tuple[nn.Module, scaling.ScalingPlan]:
    torch.manual_seed(0)
    model = mlp(128)
    return model, scaling.parameterize(model, base=lambda: mlp(32))


def test_scale_eps_false_keeps_the_users_eps() -> None:
    _, plan = mup_mlp()
    scaled = plan.param_groups(torch.optim.Adam, lr=1e-3, eps=1e-6)
    assert len({g["eps"] for g in scaled}) > 1  # scaled by default: the test is not vacuous
    groups = plan.param_groups(torch.optim.Adam, lr=1e-3, eps=1e-6, scale_eps=False)
    assert {g["eps"] for g in groups} == {1e-6}
    assert sorted(g["lr"] for g in groups) == sorted({g["lr"] for g in scaled})  # LRs still scaled
    opt = plan.optimizer_for(torch.optim.AdamW, lr=1e-3, eps=1e-7, scale_eps=False)
    assert {g["eps"] for g in opt.param_groups} == {1e-7}


def test_a_plateau_floor_is_reported_as_a_floor() -> None:
    _, plan = mup_mlp()
    optimizer = torch.optim.Adam(plan.param_groups(lr=1e-2))
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0, min_lr=1e-4)
    for _ in range(20):
        optimizer.step()
        scheduler.step(1.0)
    with pytest.raises(scaling.ScalingError, match="min_lr") as info:
        plan.scaled_for_groups(optimizer, 1e-6)
    assert "build the groups with plan.param_groups()" not in str(info.value)
    assert "scaled_for_groups" in str(info.value)


# --- param_groups refines the user's groups ------------------------------------------------------


def test_param_groups_refines_user_groups() -> None:
    model, plan = mup_mlp()
    weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
    biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
    user = [
        {"params": weights, "weight_decay": 0.1, "lr": 1e-3, "tag": "decay"},
        {"params": biases, "weight_decay": 0.0, "lr": 3e-3, "tag": "no-decay"},
    ]
    groups = plan.param_groups(groups=user, weight_decay=0.5, betas=(0.8, 0.9))
    names = {id(p): n for n, p in model.named_parameters()}
    listed = [names[id(p)] for g in groups for p in g["params"]]
    assert sorted(listed) == sorted(names.values())  # every parameter exactly once
    assert len(groups) > len(user)  # split by role
    for g in groups:
        src = user[0] if g["tag"] == "decay" else user[1]
        assert all(any(p is q for q in src["params"]) for p in g["params"])
        assert g["betas"] == (0.8, 0.9)
        for p in g["params"]:
            mult = plan.lr_multiplier(names[id(p)])
            assert g["lr"] == pytest.approx(src["lr"] * mult, rel=1e-12)
            assert g["weight_decay"] == pytest.approx(src["weight_decay"] * plan.weight_decay_multiplier(names[id(p)]))
    assert {g["weight_decay"] for g in groups if g["tag"] == "no-decay"} == {0.0}
    assert any(g["weight_decay"] > 0 for g in groups if g["tag"] == "decay")
    torch.optim.AdamW(groups)  # torch takes them as they are


def test_param_groups_refuses_bad_user_groups() -> None:
    model, plan = mup_mlp()
    params = list(model.parameters())
    with pytest.raises(scaling.ScalingError, match="exactly one group"):
        plan.param_groups(lr=1e-3, groups=[{"params": params}, {"params": params[:1]}])
    with pytest.raises(scaling.ScalingError, match="not a parameter"):
        plan.param_groups(lr=1e-3, groups=[{"params": [torch.nn.Parameter(torch.zeros(3))]}])
    with pytest.raises(scaling.ScalingError, match="learning rate"):
        plan.param_groups(groups=[{"params": params}])


def test_a_user_groups_eps_is_its_base_eps() -> None:
    model, plan = mup_mlp()
    names = {id(p): n for n, p in model.named_parameters()}
    groups = plan.param_groups(torch.optim.Adam, lr=1e-3, groups=[{"params": list(model.parameters()), "eps": 1e-5}])
    for g in groups:
        for p in g["params"]:
            assert g["eps"] == pytest.approx(1e-5 * plan.eps_multiplier(names[id(p)]), rel=1e-12)
    unscaled = plan.param_groups(torch.optim.Adam, lr=1e-3, scale_eps=False,
                                 groups=[{"params": list(model.parameters()), "eps": 1e-5}])
    assert {g["eps"] for g in unscaled} == {1e-5}

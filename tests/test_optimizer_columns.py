"""The Adafactor and Muon columns of the exponent table, the Muon+Adam pair, and their coordinate checks.

The written-out tables below are transcribed from the derivations (scaling.table.ADAFACTOR_NOTE and
MUON_NOTE), not computed from the code: Adafactor's LR is Adam's over the tensor's init std relative
to base; Muon's keeps the spectral condition (Yang, Simon & Bernstein 2023, Condition 1),
``[sqrt(A/B) / adjust(A, B)] / [sqrt(A0/B0) / adjust(A0, B0)]``. Model: the MLP 40-w-w-10 at base
width 64, so m = w / 64.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import scaling
from scaling.coord import coord_check
from scaling.errors import ScalingError
from scaling.models import MLP
from scaling.optim import MuonAdam, OptimizerPair, optimizer_family, optimizer_spec
from scaling.table import FAMILIES, MUP, PARAMETERIZATIONS, Power

BASE = 64
M = (1, 4, 8)
R8 = 8**-0.5
NAMES = ("input.weight", "input.bias", "hidden.0.weight", "hidden.0.bias", "readout.weight", "readout.bias")

# Adafactor LR multipliers, in NAMES order, at m = 1, 4, 8.
ADAFACTOR = {
    # muP (Table 3): Adam's LR over init std: input 1/1, hidden m^-1 / m^-1/2, readout m^-1 / m^-1,
    # vectors 1 / 1 (O(1) init), readout bias 1.
    "mup": {1: (1, 1, 1, 1, 1, 1), 4: (1, 1, 1 / 2, 1, 1, 1), 8: (1, 1, R8, 1, 1, 1)},
    # Table 8 and mean-field are muP by the abc-symmetry, under which Adafactor's LR does not move.
    "mup-table8": {1: (1, 1, 1, 1, 1, 1), 4: (1, 1, 1 / 2, 1, 1, 1), 8: (1, 1, R8, 1, 1, 1)},
    "mfp": {1: (1, 1, 1, 1, 1, 1), 4: (1, 1, 1 / 2, 1, 1, 1), 8: (1, 1, R8, 1, 1, 1)},
    # NTK: every stored tensor is O(1), so Adafactor's LR is NTK's Adam LR: input and vectors m_out^-1/2,
    # hidden (m_in m_out)^-1/2, readout m_in^-1/2, readout bias 1.
    "ntk": {1: (1, 1, 1, 1, 1, 1), 4: (1 / 2, 1 / 2, 1 / 4, 1 / 2, 1 / 2, 1), 8: (R8, R8, 1 / 8, R8, R8, 1)},
    "sp": {m: (1, 1, 1, 1, 1, 1) for m in M},
}

# optimizer="muon": Muon for hidden.0.weight, AdamW (Adam's column) for the rest.
MUON_PAIR = {
    # muP, adjust "original": hidden sqrt(A/B)/sqrt(A/B) = 1; Adam: input 1, vectors 1, readout 1/m.
    ("mup", None): {1: (1, 1, 1, 1, 1, 1), 4: (1, 1, 1, 1, 1 / 4, 1), 8: (1, 1, 1, 1, 1 / 8, 1)},
    # adjust "match_rms_adamw": hidden 1 / (0.2 sqrt(w)) relative to base: m^-1/2.
    ("mup", "match_rms_adamw"): {1: (1, 1, 1, 1, 1, 1), 4: (1, 1, 1 / 2, 1, 1 / 4, 1), 8: (1, 1, R8, 1, 1 / 8, 1)},
    # SP is plain torch whatever the adjustment.
    ("sp", "match_rms_adamw"): {m: (1, 1, 1, 1, 1, 1) for m in M},
}

# torch.optim.Muon alone on a bias-free 40-w-w-10 (input, hidden, readout weights).
MUON_ONLY = {
    # "original": input sqrt(A/B)/sqrt(A/B) = 1 (w >= 40), hidden 1, readout sqrt(10/w)/1 = m^-1/2.
    None: {1: (1, 1, 1), 4: (1, 1, 1 / 2), 8: (1, 1, R8)},
    # "match_rms_adamw": input sqrt(w/40)/(0.2 sqrt(w)) = const: 1; hidden m^-1/2; readout
    # sqrt(10/w)/(0.2 sqrt(w)) ~ 1/w: 1/m.
    "match_rms_adamw": {1: (1, 1, 1), 4: (1, 1 / 2, 1 / 4), 8: (1, R8, 1 / 8)},
}


def _mlp(width: int) -> MLP:
    return MLP(width)


def _plan(width: int, row: str, optimizer: str | type = "adam", seed: int = 0) -> scaling.ScalingPlan:
    torch.manual_seed(seed)
    return scaling.parameterize(_mlp(width), base=lambda: _mlp(BASE), delta=lambda: _mlp(2 * BASE),
                                parameterization=row, optimizer=optimizer)


def _lrs(optimizer: torch.optim.Optimizer, model: nn.Module, base_lr: float) -> dict[str, float]:
    group = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    return {n: group[id(p)]["lr"] / base_lr for n, p in model.named_parameters()}


@pytest.mark.parametrize("row", list(ADAFACTOR))
@pytest.mark.parametrize("m", M)
def test_adafactor_lr_table(row: str, m: int) -> None:
    plan = _plan(BASE * m, row, "adafactor")
    assert plan.model is not None
    opt = plan.optimizer_for(torch.optim.Adafactor, lr=1e-2)
    assert isinstance(opt, torch.optim.Adafactor)
    got = _lrs(opt, plan.model, 1e-2)
    assert tuple(got[n] for n in NAMES) == pytest.approx(ADAFACTOR[row][m], rel=1e-12)


@pytest.mark.parametrize(("row", "adjust"), list(MUON_PAIR))
@pytest.mark.parametrize("m", M)
def test_muon_pair_lr_table(row: str, adjust: str | None, m: int) -> None:
    plan = _plan(BASE * m, row, "muon")
    assert plan.model is not None
    muon, adam = plan.optimizers(muon_lr=0.02, adam_lr=1e-3, muon_options={"adjust_lr_fn": adjust})
    assert isinstance(muon, torch.optim.Muon) and isinstance(adam, torch.optim.AdamW)
    got = {**_lrs_of(muon, plan.model, 0.02), **_lrs_of(adam, plan.model, 1e-3)}
    assert tuple(got[n] for n in NAMES) == pytest.approx(MUON_PAIR[row, adjust][m], rel=1e-12)
    # The engines' one-LR form gives the same multipliers.
    pair = plan.optimizer_for(MuonAdam, lr=1e-2, muon_options={"adjust_lr_fn": adjust})
    one = _lrs(pair, plan.model, 1e-2)
    assert tuple(one[n] for n in NAMES) == pytest.approx(MUON_PAIR[row, adjust][m], rel=1e-12)
    assert plan.check_optimizer(pair) == pytest.approx(1e-2)


def _lrs_of(optimizer: torch.optim.Optimizer, model: nn.Module, base_lr: float) -> dict[str, float]:
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)]: g["lr"] / base_lr for g in optimizer.param_groups for p in g["params"]}


def _bias_free(width: int) -> nn.Module:
    return nn.Sequential(nn.Linear(40, width, bias=False), nn.ReLU(), nn.Linear(width, width, bias=False), nn.ReLU(),
                         nn.Linear(width, 10, bias=False))


@pytest.mark.parametrize("adjust", list(MUON_ONLY))
@pytest.mark.parametrize("m", M)
def test_muon_only_lr_table(adjust: str | None, m: int) -> None:
    model = _bias_free(BASE * m)
    plan = scaling.parameterize(model, base=lambda: _bias_free(BASE), delta=lambda: _bias_free(2 * BASE),
                                optimizer=torch.optim.Muon)
    opt = plan.optimizer_for(torch.optim.Muon, lr=0.02, adjust_lr_fn=adjust)
    got = _lrs(opt, model, 0.02)
    assert tuple(got[n] for n in ("0.weight", "2.weight", "4.weight")) == pytest.approx(MUON_ONLY[adjust][m])


def test_adafactor_column_is_adam_over_init_std() -> None:
    """The column's formula (ADAFACTOR_NOTE) for every built-in row but SP, and its abc shift 0."""
    for name, row in PARAMETERIZATIONS.items():
        for role, rule in row.rules.items():
            t = Power(fan_in=0.5)
            assert rule.shifted(t).lr("adafactor") == rule.lr("adafactor")
            if name == "sp":
                continue
            expected = rule.lr("adam") - rule.std()
            m_in, m_out = {"input": (1, 4), "hidden": (4, 4), "output": (4, 1), "vector": (4, 4),
                           "finite": (4, 1)}[role]
            if role == "input":  # an input weight's fan-in is finite: m_in = 1
                m_in = 1
            assert rule.lr("adafactor")(m_in, m_out) == pytest.approx(expected(m_in, m_out)), (name, role)
    assert FAMILIES["adafactor"].shift == 0 and FAMILIES["muon"].shift == 1
    assert MUP.rule("output").lr("muon") == Power(fan_in=-0.5)


def _run(model: nn.Module, opt: torch.optim.Optimizer, steps: int = 4) -> list[float]:
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(32, 40, generator=g), torch.randint(0, 10, (32,), generator=g)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("row", ["sp", "mup", "mup-table8", "mfp", "ntk"])
def test_base_width_is_plain_pytorch(row: str) -> None:
    """At base width every column gives PyTorch's optimizer on PyTorch's model, loss for loss."""
    torch.manual_seed(0)
    plain = _mlp(BASE)

    def ours() -> tuple[nn.Module, scaling.ScalingPlan]:
        model = copy.deepcopy(plain)
        return model, scaling.parameterize(model, base=lambda: _mlp(BASE), delta=lambda: _mlp(2 * BASE),
                                           parameterization=row)

    a, (b, plan) = copy.deepcopy(plain), ours()
    assert _run(a, torch.optim.Adafactor(a.parameters(), lr=1e-2)) == _run(
        b, plan.optimizer_for(torch.optim.Adafactor, lr=1e-2))
    for adjust in (None, "match_rms_adamw"):
        a, (b, plan) = copy.deepcopy(plain), ours()
        hidden = [a.hidden[0].weight]
        rest = [p for p in a.parameters() if p is not a.hidden[0].weight]
        plain_pair = OptimizerPair(torch.optim.Muon(hidden, lr=0.02, adjust_lr_fn=adjust, weight_decay=0.1),
                                   torch.optim.AdamW(rest, lr=1e-3, weight_decay=0.1))
        muon, adam = plan.optimizers(muon_lr=0.02, adam_lr=1e-3, weight_decay=0.1,
                                     muon_options={"adjust_lr_fn": adjust})
        assert _run(a, plain_pair) == _run(b, OptimizerPair(muon, adam))


def test_adafactor_eps_pair_is_kept_and_scaled() -> None:
    plan = _plan(BASE * 4, "mup", "adafactor")
    assert plan.model is not None
    names = {id(p): n for n, p in plan.model.named_parameters()}

    def eps(groups: list[dict]) -> dict[str, object]:
        return {names[id(p)]: g["eps"] for g in groups for p in g["params"]}

    # torch's default (None, 1e-3): eps1 stays None; eps2 like the init std relative to base:
    # hidden m^-1/2, readout m^-1 (Table 3's 1/fan_in), the rest O(1).
    default = eps(plan.param_groups(torch.optim.Adafactor, lr=1e-2))
    assert default["hidden.0.weight"] == (None, pytest.approx(1e-3 / 2))
    assert default["readout.weight"] == (None, pytest.approx(1e-3 / 4))
    assert default["input.weight"] == default["hidden.0.bias"] == (None, 1e-3)
    # A given eps1 scales like the gradient squared: hidden and input weights' gradients ~ 1/m_out,
    # the readout's O(1).
    given = eps(plan.param_groups(torch.optim.Adafactor, lr=1e-2, eps=(1e-20, 1e-3)))
    assert given["hidden.0.weight"] == pytest.approx((1e-20 / 16, 1e-3 / 2))
    assert given["input.weight"] == pytest.approx((1e-20 / 16, 1e-3))
    assert given["readout.weight"] == pytest.approx((1e-20, 1e-3 / 4))
    # scale_eps=False keeps the pair as given
    assert set(eps(plan.param_groups(torch.optim.Adafactor, lr=1e-2, scale_eps=False)).values()) == {(None, 1e-3)}
    # The optimizer accepts the groups and steps.
    opt = plan.optimizer_for(torch.optim.Adafactor, lr=1e-2, eps=(1e-20, 1e-3))
    assert all(isinstance(g["eps"], tuple) for g in opt.param_groups)


@pytest.mark.parametrize("bad", [1e-3, (1e-3,), (1e-3, 1e-3, 1e-3), ("a", 1e-3), (None, None), (None, -1.0)])
def test_adafactor_eps_not_a_pair_is_refused(bad: object) -> None:
    plan = _plan(BASE * 2, "mup", "adafactor")
    assert plan.model is not None
    before = copy.deepcopy(plan.model.state_dict())
    with pytest.raises(ScalingError, match=r"Adafactor's eps is the pair \(eps1, eps2\).*got eps="):
        plan.optimizer_for(torch.optim.Adafactor, lr=1e-2, eps=bad)
    with pytest.raises(ScalingError, match="got eps="):
        plan.param_groups(torch.optim.Adafactor, lr=1e-2, groups=[{"params": list(plan.model.parameters()),
                                                                 "eps": bad}])
    assert all(torch.equal(before[k], v) for k, v in plan.model.state_dict().items())


def test_muon_given_a_vector_is_refused() -> None:
    plan = _plan(BASE * 2, "mup", "muon")
    assert plan.model is not None
    before = copy.deepcopy(plan.model.state_dict())
    with pytest.raises(ScalingError, match=r"torch.optim.Muon takes 2-D parameters only.*'input.bias'"):
        plan.optimizer_for(torch.optim.Muon, lr=0.02)
    with pytest.raises(ScalingError, match="2-D parameters only"):
        plan.param_groups("muon-only", lr=0.02)
    assert all(torch.equal(before[k], v) for k, v in plan.model.state_dict().items())
    with pytest.raises(ScalingError, match="adjust_lr_fn"):
        plan.param_groups("muon", lr=0.02, adjust_lr_fn="bogus")


def test_optimizers_partition_the_model() -> None:
    plan = _plan(BASE * 4, "mup", "muon")
    assert plan.model is not None
    muon, adam = plan.optimizers(muon_lr=0.02, adam_lr=1e-3, adam_options={"betas": (0.9, 0.95)})
    ids = [id(p) for opt in (muon, adam) for g in opt.param_groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in plan.model.parameters())  # each exactly once
    assert [id(p) for g in muon.param_groups for p in g["params"]] == [id(plan.model.hidden[0].weight)]
    assert all(g["betas"] == (0.9, 0.95) for g in adam.param_groups)
    with pytest.raises(ScalingError, match="Adam-like"):
        plan.optimizers(muon_lr=0.02, adam_lr=1e-3, adam=torch.optim.SGD)


def test_registry() -> None:
    assert optimizer_spec("muon").cls is MuonAdam and optimizer_family("muon") == "muon"
    assert optimizer_family(torch.optim.Adafactor) == "adafactor"  # no longer "adam"
    assert optimizer_family("adafactor") == "adafactor"
    assert optimizer_family(torch.optim.Muon) == "muon"
    with pytest.raises(ScalingError, match=r"unknown optimizer 'lion'; known: .*muon.*register_optimizer"):
        optimizer_spec("lion")


def test_pair_works_with_lr_schedulers() -> None:
    plan = _plan(BASE * 2, "mup", "muon")
    assert plan.model is not None
    pair = plan.optimizer_for(MuonAdam, lr=1e-2)
    assert isinstance(pair, OptimizerPair)
    lrs = [g["lr"] for g in pair.param_groups]
    lam = torch.optim.lr_scheduler.LambdaLR(pair, lambda step: 0.5 ** step)
    _run(plan.model, pair, steps=1)
    lam.step()
    for opt in pair.optimizers:  # the schedule reached both optimizers' own groups
        assert all(g["lr"] == pytest.approx(g["initial_lr"] / 2) for g in opt.param_groups)
    assert [g["lr"] for g in pair.param_groups] == pytest.approx([lr / 2 for lr in lrs])
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(pair, factor=0.1, patience=0)
    plateau.step(1.0)
    plateau.step(2.0)  # no improvement: every group x 0.1
    assert [g["lr"] for g in pair.param_groups] == pytest.approx([lr / 20 for lr in lrs])
    assert pair.optimizers[0].param_groups[0]["lr"] == pytest.approx(lrs[0] / 20)
    state = pair.state_dict()
    pair.load_state_dict(state)
    assert set(state) == {"first", "second"}


COORD = {"widths": (128, 256, 512, 1024), "steps": 3, "seeds": 2}
# torch.optim.Muon orthogonalizes in bfloat16, whose CPU matmul is slow past width 256 (one step of one
# 1024 x 1024 matrix takes ~30 s on 2 cores, 512: 1.6 s): Muon's checks span three doublings one lower.
MUON_COORD = {**COORD, "widths": (64, 128, 256, 512)}


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 40, generator=g), torch.randint(0, 10, (64,), generator=g)


@pytest.mark.parametrize("optimizer", ["adafactor", "muon"])
def test_mup_coord_check_is_stable(batch: tuple[torch.Tensor, torch.Tensor], optimizer: str) -> None:
    """muP with Adafactor and with Muon (+Adam): every module keeps its size from 128 to 1024."""
    result = coord_check(_mlp, batch, parameterization="mup", optimizer=optimizer,
                         **(MUON_COORD if optimizer == "muon" else COORD))
    assert result.unstable() == [], result.table()
    deltas = [f for f in result.fits if f.step >= 1 and f.stat == "mean_abs_delta"]
    assert len(deltas) == 12 and all(abs(f.slope) <= 0.15 for f in deltas), result.table()
    assert all(f.predicted == 0 for f in result.fits if f.step >= 1 and f.predicted is not None)


def test_sp_coord_check_moves_as_predicted(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    """SP, the control: Adafactor predicts (0, 1/2, 1), Muon (+Adam) (0, 0, 1), and so it measures."""
    ada = coord_check(_mlp, batch, parameterization="sp", optimizer="adafactor", **COORD)
    assert [ada.fit(m, 1).predicted for m in ("input", "hidden.0", "readout")] == [0, 0.5, 1]
    assert abs(ada.fit("input", 1).slope) <= 0.15
    assert ada.fit("hidden.0", 1).match and ada.fit("hidden.0", 1).slope >= 0.3
    assert ada.fit("readout", 1).slope >= 0.6
    muon = coord_check(_mlp, batch, parameterization="sp", optimizer="muon", **MUON_COORD)
    assert [muon.fit(m, 1).predicted for m in ("input", "hidden.0", "readout")] == [0, 0, 1]
    assert abs(muon.fit("input", 1).slope) <= 0.15 and abs(muon.fit("hidden.0", 1).slope) <= 0.15
    assert muon.fit("readout", 1).match and muon.fit("readout", 1).slope >= 0.6


def test_optimizer_for_muon_pair_with_a_fixed_adam_ratio() -> None:
    """``adam_lr_ratio``: the Adam part's base LR is a fixed multiple of Muon's (a sweep moves both)."""
    from scaling.models import MLP
    from scaling.optim import MuonAdam

    model = MLP(128)
    plan = scaling.parameterize(model, base=MLP(64), parameterization="mup")
    opt = plan.optimizer_for(MuonAdam, lr=0.02, adam_lr_ratio=1 / 16)
    muon, adam = opt.optimizers
    assert {g["lr"] for g in muon.param_groups} == {0.02}  # hidden, square: Muon's LR factor is 1
    readout = next(g for g in adam.param_groups if any(p is model.readout.weight for p in g["params"]))
    assert readout["lr"] == pytest.approx(0.02 / 16 / 2)  # Adam's 1/m_in at m = 2
    with pytest.raises(scaling.ScalingError):
        plan.optimizer_for(MuonAdam, lr=0.02, adam_lr_ratio=-1.0)


@pytest.mark.parametrize("lr", [0.01, 0.04])
def test_muon_pair_with_one_part_fixed(lr: float) -> None:
    """``fixed={"adam": lr0}``: the Adam part keeps its per-role factors at base LR ``lr0`` (then the
    ratio) whatever the swept ``lr``; Muon follows ``lr``. And the other way round."""
    from scaling.models import MLP
    from scaling.optim import MuonAdam

    model = MLP(128)
    plan = scaling.parameterize(model, base=MLP(64), parameterization="mup")
    muon, adam = plan.optimizer_for(MuonAdam, lr=lr, adam_lr_ratio=1 / 16, fixed={"adam": 0.02}).optimizers
    readout = next(g for g in adam.param_groups if any(p is model.readout.weight for p in g["params"]))
    assert {g["lr"] for g in muon.param_groups} == {lr}
    assert readout["lr"] == pytest.approx(0.02 / 16 / 2)
    muon, adam = plan.optimizer_for(MuonAdam, lr=lr, adam_lr_ratio=1 / 16, fixed={"muon": 0.02}).optimizers
    readout = next(g for g in adam.param_groups if any(p is model.readout.weight for p in g["params"]))
    assert [g["lr"] for g in muon.param_groups] == pytest.approx([0.02] * len(muon.param_groups))
    assert readout["lr"] == pytest.approx(lr / 16 / 2)
    # as the sweep engine builds it: the plan's groups (built at base LR lr), no lr given to MuonAdam
    groups = plan.param_groups("muon", lr=lr)
    muon, adam = MuonAdam(groups, adam_lr_ratio=1 / 16, fixed={"muon": 0.02}).optimizers
    assert [g["lr"] for g in muon.param_groups] == pytest.approx([0.02] * len(muon.param_groups))
    readout = next(g for g in adam.param_groups if any(p is model.readout.weight for p in g["params"]))
    assert readout["lr"] == pytest.approx(lr / 16 / 2)
    for bad in ({"readout": 0.02}, {"adam": -1.0}, {"adam": 0.02, "muon": 0.02}):
        with pytest.raises(scaling.ScalingError, match="fixed="):
            plan.optimizer_for(MuonAdam, lr=lr, fixed=bad)


@pytest.fixture(scope="module")
def text_batch() -> tuple[torch.Tensor, torch.Tensor]:
    from scaling.data import load_dataset

    data = load_dataset("stdlib-bytes", block_size=16, max_bytes=50_000)
    return data.sample(4, torch.Generator().manual_seed(0))


def _gpt(width: int) -> nn.Module:
    from scaling.models import build

    return build("gpt", width)


def test_mup_gpt_with_muon_is_stable(text_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Muon over the GPT's hidden matrices (attention and MLP), AdamW over embeddings, gains and readout."""
    result = coord_check(_gpt, text_batch, widths=(64, 128, 256), parameterization="mup", optimizer="muon",
                         lr=1e-2, steps=3, seeds=2, zero_readout=True, zero_query=True)
    assert not result.unstable(), result.table()


def test_mup_gpt_with_adafactor_needs_a_negligible_eps1(text_batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Adafactor's default eps1 (None: the dtype's epsilon, which the plan cannot scale) floors the GPT's
    squared-gradient statistics, which shrink with width under muP, and modules below the readout move
    unlike muP says; with a negligible eps1 only the readout's own size is off, its Table 3 init
    transient (a zero readout, which fixes that for Adam, cannot move under a relative step)."""
    from scaling.optim import register_optimizer

    # 1e-20, not 1e-30: scaled per tensor, 1e-30 gave non-finite measurements with two CPU threads (not one)
    register_optimizer("adafactor-eps1-tiny", torch.optim.Adafactor, "adafactor", replace=True, eps=(1e-20, 1e-3))
    options = {"widths": (128, 256, 512, 1024), "parameterization": "mup", "lr": 1e-2, "steps": 3, "seeds": 2}
    default = coord_check(_gpt, text_batch, optimizer="adafactor", **options)
    assert {f.module for f in default.unstable()} - {"readout", "<model>"}
    tiny = coord_check(_gpt, text_batch, optimizer="adafactor-eps1-tiny", **options)
    assert {(f.module, f.stat) for f in tiny.unstable()} <= {("readout", "mean_abs"), ("<model>", "mean_abs")}

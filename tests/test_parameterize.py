"""parameterize(): SP equality at base width, the abc-symmetry in training, roles, and bad input."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import scaling
from scaling import ScalingError, parameterize
from scaling.models import build

BASE, DELTA = 16, 32


def _batch(name: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    if name == "gpt":
        x = torch.randint(0, 256, (4, 16), generator=g)
        return x, torch.roll(x, -1, dims=1)
    if name in ("question", "funnel"):
        return torch.randn(32, 10, generator=g), torch.randint(0, 2, (32,), generator=g)
    return torch.randn(32, 40, generator=g), torch.randint(0, 10, (32,), generator=g)


def _losses(model: nn.Module, opt: torch.optim.Optimizer, name: str, steps: int) -> list[float]:
    losses = []
    x, y = _batch(name)  # one fixed batch: the loss must go down
    for _ in range(steps):
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def _built(name: str, width: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build(name, width)


MODELS = ["mlp", "cnn", "gpt"]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("parameterization", list(scaling.PARAMETERIZATIONS))
@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.Adam])
def test_base_width_is_pytorch_bit_for_bit(name: str, parameterization: str, optimizer: type) -> None:
    """At base width every row reproduces PyTorch's default model: parameters and losses, exactly."""
    reference = _built(name, BASE)
    model = _built(name, BASE)
    plan = parameterize(model, lambda: build(name, BASE), delta=lambda: build(name, DELTA),
                        parameterization=parameterization)
    assert {w.role for w in plan.widths.values()} >= {"input", "hidden", "output"}
    for (n, p), q in zip(model.named_parameters(), reference.parameters()):
        assert torch.equal(p, q), n
    lr = 0.05 if optimizer is torch.optim.SGD else 1e-3
    ours = _losses(model, optimizer(plan.param_groups(optimizer, lr=lr)), name, 5)
    theirs = _losses(reference, optimizer(reference.parameters(), lr=lr), name, 5)
    assert ours == theirs


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize(
    ("form_a", "form_b"),
    [("mup", "mup-table8"), ("mup", "mfp"), ("ntk", "ntk-absorbed")],
)
@pytest.mark.parametrize("name", ["mlp", "gpt"])
def test_abc_symmetry_trains_identically(name: str, form_a: str, form_b: str, optimizer: str) -> None:
    """Equivalent forms (TP-IV §3 abc-symmetry) give the same losses over 20 steps at width 4x base."""
    results = []
    for form in (form_a, form_b):
        model = _built(name, 4 * BASE)
        row, absorb = (form.removesuffix("-absorbed"), form.endswith("-absorbed"))
        plan = parameterize(model, lambda: build(name, BASE), parameterization=row, absorb_multipliers=absorb)
        family = torch.optim.SGD if optimizer == "sgd" else torch.optim.Adam
        lr = 0.1 if optimizer == "sgd" else 3e-3
        results.append(_losses(model, family(plan.param_groups(family, lr=lr)), name, 20))
    a, b = results
    assert a[-1] < a[0]  # it trained
    assert a == pytest.approx(b, rel=1e-4, abs=1e-5)


def test_inequivalent_rows_train_differently() -> None:
    """The symmetry test can fail: SP and muP differ at width 4x base."""
    results = []
    for row in ("sp", "mup"):
        model = _built("mlp", 4 * BASE)
        plan = parameterize(model, lambda: build("mlp", BASE), parameterization=row)
        results.append(_losses(model, torch.optim.Adam(plan.param_groups(lr=3e-3)), "mlp", 5))
    assert results[0] != pytest.approx(results[1], rel=1e-3)


def test_mlp_plan_roles_and_multipliers() -> None:
    model = _built("mlp", 4 * BASE)
    plan = parameterize(model, lambda: build("mlp", BASE), parameterization="mup-table8")
    roles = {n: w.role for n, w in plan.widths.items()}
    assert roles == {
        "input.weight": "input", "input.bias": "vector",
        "hidden.0.weight": "hidden", "hidden.0.bias": "vector",
        "readout.weight": "output", "readout.bias": "finite",
    }
    assert plan.multipliers == {"readout": 0.25}
    assert plan.widths["hidden.0.bias"].m_in == 4  # a hidden bias's init follows its layer's fan-in
    assert plan.init_multiplier("hidden.0.bias") == pytest.approx(2)
    assert plan.lr_multiplier("hidden.0.weight", "sgd") == 1
    assert plan.lr_multiplier("hidden.0.weight", "adam") == 0.25
    text = plan.table()
    assert "readout.weight" in text and "output" in text


def test_roles_of_embeddings_convolutions_and_norms() -> None:
    class Net(nn.Module):
        def __init__(self, w: int) -> None:
            super().__init__()
            self.emb = nn.Embedding(100, w)  # (vocab, width): an input weight, fan-in is the vocabulary
            self.conv = nn.Conv1d(w, 2 * w, 3)
            self.up = nn.ConvTranspose1d(2 * w, 3, 3)  # weight (in, out, k): fan-in first
            self.norm = nn.LayerNorm(w)
            self.pos = nn.Parameter(torch.zeros(16, w))  # unknown module: one width -> input-like
            self.mix = nn.Parameter(torch.zeros(w, 3, w))  # unknown module: two widths -> hidden
            self.head = nn.Linear(w, 7)

    plan = parameterize(Net(64), lambda: Net(16))
    roles = {n: w.role for n, w in plan.widths.items()}
    assert roles == {
        "pos": "input", "mix": "hidden", "emb.weight": "input", "conv.weight": "hidden", "conv.bias": "vector",
        "up.weight": "output", "up.bias": "finite", "norm.weight": "vector", "norm.bias": "vector",
        "head.weight": "output", "head.bias": "finite",
    }
    assert (plan.widths["up.weight"].m_in, plan.widths["up.weight"].m_out) == (4, 1)
    assert plan.widths["up.bias"].m_in == 4  # its layer's fan-in
    assert plan.widths["norm.weight"].m_in == 1
    override = parameterize(Net(64), lambda: Net(16), roles={"pos": "vector"})
    assert override.widths["pos"].role == "vector"


def test_init_is_rescaled_like_the_table() -> None:
    torch.manual_seed(0)
    wide = build("mlp", 1024)
    before = {n: p.detach().clone() for n, p in wide.named_parameters()}
    plan = parameterize(wide, lambda: build("mlp", 64), parameterization="mup")
    for n, p in wide.named_parameters():
        assert torch.equal(p, before[n] * plan.init_multiplier(n)), n
    assert plan.init_multiplier("readout.weight") == pytest.approx(1 / 4)  # 1/sqrt(16)
    # muP's readout std is Theta(1/n): 4x smaller than PyTorch's 1/sqrt(3 fan_in) at 16x base width
    assert wide.readout.weight.std().item() == pytest.approx(1 / (3 * 1024) ** 0.5 / 4, rel=0.05)


def test_zero_readout_and_query() -> None:
    model = _built("gpt", 2 * BASE)
    parameterize(model, lambda: build("gpt", BASE), zero_readout=True, zero_query=True)
    assert not model.readout.weight.any()
    attn = model.blocks[0].attn
    rows = attn.n_heads * attn.head_dim
    assert not attn.qkv.weight[:rows].any() and attn.qkv.weight[rows:].any()


def test_attention_scale_follows_head_dim() -> None:
    for row, expected in (("sp", 1.0), ("mup", 0.5), ("mfp", 0.5), ("ntk", 1.0)):
        model = build("gpt", 4 * BASE)  # 4 heads: head_dim grows 4x
        plan = parameterize(model, lambda: build("gpt", BASE), parameterization=row)
        assert plan.attention_scales == {"blocks.0.attn": expected, "blocks.1.attn": expected}
        assert model.blocks[0].attn.scaling_attention == expected


def test_tied_readout_needs_table8() -> None:
    model = build("gpt", 2 * BASE, tied=True)
    with pytest.raises(ScalingError, match="tied.*mup-table8"):
        parameterize(model, lambda: build("gpt", BASE, tied=True), parameterization="mup")
    plan = parameterize(model, lambda: build("gpt", BASE, tied=True), parameterization="mup-table8")
    assert plan.multipliers == {"readout": 0.5}
    assert model.readout.weight is model.wte.weight


def test_param_groups_merge_and_partition() -> None:
    model = _built("gpt", 4 * BASE)
    plan = parameterize(model, lambda: build("gpt", BASE), delta=lambda: build("gpt", DELTA))
    groups = plan.param_groups(torch.optim.AdamW, lr=1e-3, weight_decay=0.1, no_decay=("vector",))
    assert len(groups) <= 4
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    decayed = {id(p) for g in groups if g["weight_decay"] > 0 for p in g["params"]}
    assert id(model.blocks[0].ln1.weight) not in decayed and id(model.blocks[0].fc.weight) in decayed
    opt = plan.optimizer_for(torch.optim.AdamW, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95))
    assert plan.check_optimizer(opt) == pytest.approx(1e-3)
    opt.param_groups[0]["lr"] *= 2
    with pytest.raises(ScalingError, match="base learning rate"):
        plan.check_optimizer(opt)


def test_eps_and_weight_decay_in_groups() -> None:
    model = _built("mlp", 4 * BASE)
    plan = parameterize(model, lambda: build("mlp", BASE), weight_decay="independent")
    groups = plan.param_groups(torch.optim.Adagrad, lr=0.01, weight_decay=1e-4)
    by_param = {id(p): g for g in groups for p in g["params"]}
    hidden = by_param[id(model.hidden[0].weight)]
    assert hidden["eps"] == pytest.approx(1e-10 / 4)  # Adagrad's own default eps, scaled like the gradient
    assert hidden["lr"] * hidden["weight_decay"] == pytest.approx(1e-4)  # independent of lr and width
    assert "eps" not in plan.param_groups("sgd", lr=0.1)[0]


def test_bsh_files_interoperate_with_mup(tmp_path: object) -> None:
    mup = pytest.importorskip("mup")
    from pathlib import Path

    path = Path(str(tmp_path)) / "mlp.bsh"
    mup.make_base_shapes(build("mlp", BASE), build("mlp", DELTA), savefile=str(path))
    from_file = parameterize(build("mlp", 4 * BASE), str(path))
    from_models = parameterize(build("mlp", 4 * BASE), lambda: build("mlp", BASE), delta=lambda: build("mlp", DELTA))
    assert from_file.widths == from_models.widths
    ours = Path(str(tmp_path)) / "ours.bsh"
    scaling.save_base_shapes(from_models.widths, ours)
    assert scaling.load_base_shapes(ours) == scaling.load_base_shapes(path)
    assert {k: v.base_shape() for k, v in mup.load_base_shapes(str(ours)).items()} == {
        k: list(v) for k, v in scaling.load_base_shapes(path).items()
    }


# --- bad input: a clear error naming the parameter and the fix, and nothing changed ---------------


def _unchanged(make: Callable[[], nn.Module], call: Callable[[nn.Module], object], match: str) -> None:
    model = make()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ScalingError, match=match):
        call(model)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not hasattr(model, "_scaling_parameterization")


class _Odd(nn.Module):
    def __init__(self, w: int, depth: int = 1) -> None:
        super().__init__()
        self.layers = nn.Sequential(*[nn.Linear(w, w) for _ in range(depth)])


@pytest.mark.parametrize(
    ("make", "call", "match"),
    [
        (lambda: _Odd(32), lambda m: parameterize(m, lambda: _Odd(16, depth=2)), "names do not match.*layers.1"),
        (lambda: nn.Linear(32, 32), lambda m: parameterize(m, {"weight": (16, 16, 1), "bias": (16,)}),
         "'weight' has rank 2.*rank 3"),
        (lambda: build("mlp", 32), lambda m: parameterize(m, lambda: build("mlp", 64)), "narrower than its base"),
        (lambda: build("mlp", 32), lambda m: parameterize(m, lambda: build("mlp", 16), delta=lambda: build("mlp", 16)),
         "base and delta agree"),
        (lambda: nn.ParameterDict({"cube": nn.Parameter(torch.zeros(8, 8, 8))}),
         lambda m: parameterize(m, {"cube": (4, 4, 4)}), "'cube'.*3 infinite dimensions.*at most two"),
        (lambda: build("mlp", 32), lambda m: parameterize(m, lambda: build("mlp", 16), parameterization="mu-p"),
         "unknown parameterization"),
        (lambda: build("mlp", 32), lambda m: parameterize(m, lambda: build("mlp", 16), optimizer="lion"),
         "unknown optimizer .lion.*register_optimizer"),
        (lambda: build("mlp", 32), lambda m: parameterize(m, lambda: build("mlp", 16), roles={"nope": "hidden"}),
         "name no parameter"),
        (lambda: build("mlp", 32), lambda m: parameterize(m, lambda: build("mlp", 16), zero_query=True),
         "no scaling.nn.Attention"),
        (lambda: nn.MultiheadAttention(32, 2), lambda m: parameterize(m, lambda: nn.MultiheadAttention(16, 2),
                                                                       parameterization="ntk"),
         "in_proj_weight.*absorb_multipliers=True"),
    ],
    ids=["names", "rank", "narrower", "finite-changed", "three-infinite", "parameterization", "optimizer",
         "role-name", "zero-query", "multiplier-unsupported"],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(
    make: Callable[[], nn.Module], call: Callable[[nn.Module], object], match: str
) -> None:
    _unchanged(make, call, match)


def test_second_parameterize_is_refused_unless_rescale_false() -> None:
    model = build("mlp", 32)
    parameterize(model, lambda: build("mlp", 16), parameterization="mup-table8")
    snapshot = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ScalingError, match="parameterized already.*rescale=False"):
        parameterize(model, lambda: build("mlp", 16))
    plan = parameterize(model, lambda: build("mlp", 16), parameterization="mup-table8", rescale=False)
    assert all(torch.equal(snapshot[k], v) for k, v in model.state_dict().items())
    assert len(model.readout._forward_pre_hooks) == 1  # not hooked twice
    assert plan.multipliers == {"readout": 0.5}


def test_param_groups_that_miss_or_duplicate_are_errors() -> None:
    model = build("mlp", 32)
    params = list(model.parameters())
    with pytest.raises(ScalingError, match="miss 1 parameter.*readout.bias"):
        scaling.check_param_groups(model, [{"params": params[:-1]}])
    with pytest.raises(ScalingError, match="in param groups 0 and 1"):
        scaling.check_param_groups(model, [{"params": params}, {"params": params[:1]}])
    plan = parameterize(model, lambda: build("mlp", 16))
    with pytest.raises(ScalingError, match="lr must be a positive"):
        plan.param_groups(lr=0.0)


def test_role_scales_are_width_independent_constants() -> None:
    """Constants tuned at base width multiply the table's factors, identically at every width."""
    scales = scaling.RoleScales(lr={"input": 0.5}, init={"output": 0.0}, multiplier={"output": 2.0})
    plans = {}
    for width in (BASE, 4 * BASE):
        model = _built("mlp", width)
        plans[width] = parameterize(model, lambda: build("mlp", BASE), delta=lambda: build("mlp", DELTA),
                                    scales=scales)
        assert not model.readout.weight.any()
        assert model.readout.scaling_multiplier == 2.0  # Table 3 has no readout multiplier: 2 x 1
    for name in ("input.weight", "hidden.0.weight"):
        ratio = plans[4 * BASE].lr_multiplier(name) / plans[BASE].lr_multiplier(name)
        assert ratio == scaling.MUP.rule(plans[BASE].widths[name].role).lr("adam")(
            plans[4 * BASE].widths[name].m_in, plans[4 * BASE].widths[name].m_out)
    assert plans[BASE].lr_multiplier("input.weight") == 0.5
    x = torch.randn(3, 40)
    model = build("mlp", BASE)
    with pytest.raises(ScalingError, match="no parameter has.*delta"), \
            pytest.warns(scaling.ScalingWarning, match="no delta model"):  # at base width, roles need a delta
        parameterize(model, lambda: build("mlp", BASE), scales=scaling.RoleScales(multiplier={"output": 2.0}))
    parameterize(model, lambda: build("mlp", BASE), delta=lambda: build("mlp", DELTA),
                 scales=scaling.RoleScales(multiplier={"output": 2.0}))
    torch.testing.assert_close(model(x) - model.readout.bias, 2 * (model.readout.weight @ torch.relu(
        model.hidden[0](torch.relu(model.input(x)))).T).T)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"lr": {"readout": 2.0}}, "not a role"), ({"lr": {"input": 0.0}}, "positive"),
     ({"multiplier": {"vector": 2.0}}, "not vectors"), ({"init": {"output": float("nan")}}, "positive")],
)
def test_role_scales_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(ScalingError, match=match):
        scaling.RoleScales(**kwargs)

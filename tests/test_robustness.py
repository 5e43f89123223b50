"""A parameterized model survives what people do to models: copies, pickles, checkpoints, compile,
``torch.func``, LR schedulers, fused optimizers; and bad input fails loudly without side effects.

The models are parameterized with ``mup-table8`` so that forward multipliers are live (a hook on the
MLP's plain ``nn.Linear`` readout; the ``scaling.nn`` attribute on the GPT's readout) and the GPT's
attention-logit scale differs from 1. :func:`test_multipliers_are_live` checks that, so an equality
test below fails if a copy drops a multiplier.
"""

from __future__ import annotations

import copy
import io
import math
import pickle
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

import scaling
from scaling import nn as snn
from scaling.models import build

BUILDERS: dict[str, tuple[Callable[[], nn.Module], Callable[[], nn.Module]]] = {
    # name: (target builder, base builder)
    "mlp": (lambda: build("mlp", 128), lambda: build("mlp", 32)),
    "gpt": (lambda: build("gpt", 64, block_size=16), lambda: build("gpt", 32, block_size=16)),
}
LR = 1e-2


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Small models run as fast on one thread, and steadily when other processes load the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(name: str, seed: int = 0, **kwargs: Any) -> tuple[nn.Module, scaling.ScalingPlan]:
    """A seeded target model parameterized with mup-table8 against its base."""
    target, base = BUILDERS[name]
    torch.manual_seed(seed)
    model = target()
    plan = scaling.parameterize(model, base, parameterization="mup-table8", **kwargs)
    return model, plan


def batch(name: str, seed: int = 1) -> tuple[Tensor, Tensor]:
    """A fixed (inputs, targets) batch for the model."""
    g = torch.Generator().manual_seed(seed)
    if name == "gpt":
        tokens = torch.randint(0, 256, (4, 17), generator=g)
        return tokens[:, :-1], tokens[:, 1:]  # (B, T) next-byte targets
    return torch.randn(16, 40, generator=g), torch.randint(0, 10, (16,), generator=g)


def loss_of(model: nn.Module, xy: tuple[Tensor, Tensor]) -> Tensor:
    x, y = xy
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def train(model: nn.Module, optimizer: torch.optim.Optimizer, name: str, steps: int = 4) -> list[float]:
    """Full-batch steps on a fixed batch; the loss before each step."""
    xy = batch(name)
    losses = []
    for _ in range(steps):
        loss = loss_of(model, xy)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def lr_by_name(model: nn.Module, groups: list[dict[str, Any]]) -> dict[str, float]:
    group_of = {id(p): g for g in groups for p in g["params"]}
    return {scaling.shapes.canonical_name(n): group_of[id(p)]["lr"] for n, p in model.named_parameters()}


@pytest.fixture(params=["mlp", "gpt"])
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_multipliers_are_live(name: str) -> None:
    """The readout multiplier (and the GPT's attention scale) change the output: not identities."""
    model, plan = make(name)
    m = {"mlp": 4, "gpt": 2}[name]  # width / base width
    assert plan.multipliers == {"readout": 1 / m}
    if name == "gpt":
        assert plan.attention_scales == {f"blocks.{i}.attn": pytest.approx(m**-0.5) for i in range(2)}
    x, _ = batch(name)
    out = model(x)
    model.readout.scaling_multiplier = 1.0
    assert not torch.allclose(model(x), out)
    if name == "gpt":
        model.readout.scaling_multiplier = 1 / m
        for module in model.modules():
            if isinstance(module, snn.Attention):
                module.scaling_attention = 1.0
        assert not torch.allclose(model(x), out)


def test_deepcopy(name: str) -> None:
    """A deep copy computes the same outputs; param groups built on it hold its parameters only and
    train it exactly like the original."""
    model, plan = make(name)
    clone = copy.deepcopy(model)
    x, _ = batch(name)
    assert torch.equal(clone(x), model(x))
    groups = plan.param_groups(lr=LR, model=clone)
    scaling.check_param_groups(clone, groups)
    original = {id(p) for p in model.parameters()}
    assert not any(id(p) in original for g in groups for p in g["params"])
    assert lr_by_name(clone, groups) == lr_by_name(model, plan.param_groups(lr=LR))
    ours = train(model, torch.optim.Adam(plan.param_groups(lr=LR)), name)
    theirs = train(clone, torch.optim.Adam(groups), name)
    assert ours == theirs


def test_pickle(name: str) -> None:
    """Pickling a model with its plan keeps outputs, and the unpickled plan points at the unpickled model."""
    model, plan = make(name)
    model2, plan2 = pickle.loads(pickle.dumps((model, plan)))
    x, _ = batch(name)
    assert torch.equal(model2(x), model(x))
    groups = plan2.param_groups(lr=LR)
    scaling.check_param_groups(model2, groups)
    assert lr_by_name(model2, groups) == lr_by_name(model, plan.param_groups(lr=LR))


@pytest.mark.parametrize("rescale", [True, False])
def test_state_dict_round_trip(name: str, rescale: bool) -> None:
    """A checkpoint loaded into a freshly built, freshly parameterized model gives the same outputs
    and the same training losses (whether or not the fresh model was rescaled before loading)."""
    model, plan = make(name)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    fresh, fresh_plan = make(name, seed=123, rescale=rescale)
    buffer.seek(0)
    fresh.load_state_dict(torch.load(buffer))
    x, _ = batch(name)
    assert torch.equal(fresh(x), model(x))
    ours = train(model, torch.optim.Adam(plan.param_groups(lr=LR)), name)
    theirs = train(fresh, torch.optim.Adam(fresh_plan.param_groups(lr=LR)), name)
    assert ours == theirs


def test_state_dict_holds_weights_only(name: str) -> None:
    """Multipliers are module attributes, not state: loading a checkpoint into an unparameterized
    model does not reproduce the outputs, which is why the fresh model above is parameterized."""
    model, _ = make(name)
    target, _ = BUILDERS[name]
    torch.manual_seed(0)
    bare = target()
    bare.load_state_dict(model.state_dict())
    x, _ = batch(name)
    assert not torch.allclose(bare(x), model(x))


def test_torch_compile(name: str) -> None:
    """``torch.compile`` (aot_eager) runs the hooks and attributes: same outputs and training losses;
    param groups are built from the compiled module by name (``_orig_mod.`` is dropped)."""
    torch._dynamo.reset()
    model, plan = make(name)
    eager = copy.deepcopy(model)
    compiled = torch.compile(model, backend="aot_eager")
    x, _ = batch(name)
    torch.testing.assert_close(compiled(x), eager(x), rtol=1e-5, atol=1e-6)
    groups = plan.param_groups(lr=LR, model=compiled)
    assert lr_by_name(compiled, groups) == lr_by_name(model, plan.param_groups(lr=LR))
    ours = train(compiled, torch.optim.Adam(groups), name)
    reference = train(eager, torch.optim.Adam(plan.param_groups(lr=LR, model=eager)), name)
    assert ours == pytest.approx(reference, rel=1e-5)


def test_functional_call(name: str) -> None:
    """``torch.func.functional_call`` with another model's weights computes that model's output (the
    multipliers live on modules, not on parameters), and its gradients match autograd's."""
    model, _ = make(name)
    other, _ = make(name, seed=7)
    params = {n: p.detach() for n, p in other.named_parameters()}
    x, y = batch(name)
    assert torch.equal(torch.func.functional_call(model, params, (x,)), other(x))

    def loss(p: dict[str, Tensor]) -> Tensor:
        logits = torch.func.functional_call(model, p, (x,))
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))

    grads = torch.func.grad(loss)(params)
    loss_of(other, (x, y)).backward()
    for n, p in other.named_parameters():
        torch.testing.assert_close(grads[n], p.grad, rtol=1e-5, atol=1e-7)


# --- LR schedulers keep the per-layer ratios -----------------------------------------------------

SCHEDULES: dict[str, tuple[Callable[[torch.optim.Optimizer], Any], Callable[[int], float]]] = {
    # name: (scheduler builder, base-LR factor after t scheduler steps)
    "step": (lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5), lambda t: 0.5 ** (t // 2)),
    "lambda": (lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: 1 / (1 + t)), lambda t: 1 / (1 + t)),
    "cosine": (
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8),
        lambda t: (1 + math.cos(math.pi * t / 8)) / 2,
    ),
}


def assert_ratios(plan: scaling.ScalingPlan, optimizer: torch.optim.Optimizer, base_lr: float) -> None:
    """Every group's lr is ``base_lr`` times the plan's multiplier of each of its parameters."""
    assert plan.model is not None
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    for n, p in plan.model.named_parameters():
        assert group_of[id(p)]["lr"] == pytest.approx(base_lr * plan.lr_multiplier(n), rel=1e-12), n
    assert plan.check_optimizer(optimizer) == pytest.approx(base_lr, rel=1e-12)


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_scheduler_keeps_lr_ratios(name: str, schedule: str) -> None:
    _, plan = make(name)
    optimizer = torch.optim.Adam(plan.param_groups(lr=LR))
    assert len({g["lr"] for g in optimizer.param_groups}) > 1  # a single LR would make this vacuous
    build_scheduler, factor = SCHEDULES[schedule]
    scheduler = build_scheduler(optimizer)
    for t in range(1, 8):
        optimizer.step()  # no gradients: a no-op that keeps the scheduler's order check quiet
        scheduler.step()
        assert_ratios(plan, optimizer, LR * factor(t))


def test_reduce_lr_on_plateau_keeps_lr_ratios(name: str) -> None:
    """A constant metric makes ReduceLROnPlateau (patience 0) halve every LR from its second step on:
    the ratios stay."""
    _, plan = make(name)
    optimizer = torch.optim.Adam(plan.param_groups(lr=LR))
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=0)
    for t in range(1, 7):
        optimizer.step()
        scheduler.step(1.0)  # the first call records the best metric; every later one is a plateau
        assert_ratios(plan, optimizer, LR * 0.5 ** (t - 1))


def test_reduce_lr_on_plateau_floor_and_eps(name: str) -> None:
    """``min_lr`` and ``eps`` of ReduceLROnPlateau are absolute LRs: a scalar floor clamps every group
    to the same LR, and the default ``eps=1e-8`` (skip reductions smaller than that) stops small-LR
    groups first; either breaks the ratios. A floor per group, scaled like its LR, and ``eps=0``
    keep them all the way down."""
    _, plan = make(name)
    per_group = [g["lr"] for g in plan.param_groups(lr=LR)]
    floors = plan.scaled_for_groups(torch.optim.Adam(plan.param_groups(lr=LR)), 1e-4 * LR)
    assert floors == pytest.approx([1e-4 * lr for lr in per_group], rel=1e-12)
    runs = {  # name: (min_lr, eps, base floor)
        "per-group floor, eps 0": (floors, 0.0, 1e-4),
        "scalar floor": (LR * 1e-4, 0.0, 1e-4),
        "default eps": ([1e-9 * lr for lr in per_group], 1e-8, 1e-9),
    }
    final = {}
    for run, (min_lr, eps, _) in runs.items():
        optimizer = torch.optim.Adam(plan.param_groups(lr=LR))
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=0.5, patience=0, min_lr=min_lr, eps=eps
        )
        for _ in range(40):  # 2**-39 is far below every floor
            optimizer.step()
            scheduler.step(1.0)
        final[run] = [g["lr"] / lr for g, lr in zip(optimizer.param_groups, per_group)]  # schedule factor per group
    assert final["per-group floor, eps 0"] == pytest.approx([1e-4] * len(per_group), rel=1e-12)
    assert len(set(final["scalar floor"])) > 1
    assert len(set(final["default eps"])) > 1
    assert min(final["default eps"]) > 1e-9  # every group stopped at eps, above its floor


# --- optimizers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("optimizer_class", [torch.optim.Adam, torch.optim.AdamW])
@pytest.mark.parametrize("impl", ["foreach", "fused"])
def test_foreach_and_fused_adam(name: str, optimizer_class: type[torch.optim.Optimizer], impl: str) -> None:
    """foreach and fused Adam/AdamW take the groups (with per-group lr, eps, weight decay) and train
    as the plain for-loop implementation does."""
    losses = {}
    for variant in ("for-loop", impl):
        model, plan = make(name)
        groups = plan.param_groups(optimizer_class, lr=LR, weight_decay=0.1)
        options = {"foreach": False} if variant == "for-loop" else {variant: True}
        optimizer = optimizer_class(groups, **options)
        losses[variant] = train(model, optimizer, name, steps=5)
        assert plan.check_optimizer(optimizer) == pytest.approx(LR)
    assert losses[impl] == pytest.approx(losses["for-loop"], rel=1e-5)
    assert losses[impl][-1] < losses[impl][0]


# --- bad input -----------------------------------------------------------------------------------


def test_parameterize_twice_raises_and_changes_nothing(name: str) -> None:
    model, _ = make(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, _ = batch(name)
    out = model(x)
    _, base = BUILDERS[name]
    for row in ("mup-table8", "mup", "sp"):
        with pytest.raises(scaling.ScalingError, match="rescale=False"):
            scaling.parameterize(model, base, parameterization=row)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(model(x), out)


def test_rescale_false_reapplies_without_changing_weights(name: str) -> None:
    """``rescale=False`` recomputes the plan and multipliers; weights, outputs and hooks stay as they were."""
    model, plan = make(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x, _ = batch(name)
    out = model(x)
    _, base = BUILDERS[name]
    again = scaling.parameterize(model, base, parameterization="mup-table8", rescale=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert torch.equal(model(x), out)  # a second hook would apply the readout multiplier twice
    hooks = list(model.readout._forward_pre_hooks.values())
    assert hooks.count(snn.scale_input_hook) == (1 if name == "mlp" else 0)
    assert again.widths == plan.widths
    assert lr_by_name(model, again.param_groups(lr=LR)) == lr_by_name(model, plan.param_groups(lr=LR))


def test_check_param_groups_rejects_bad_groups() -> None:
    model, plan = make("mlp")
    groups = plan.param_groups(lr=LR)
    scaling.check_param_groups(model, groups)
    missing = [{**g, "params": g["params"][1:]} if i == 0 else g for i, g in enumerate(groups)]
    with pytest.raises(scaling.ScalingError, match="miss 1 parameter"):
        scaling.check_param_groups(model, missing)
    duplicated = [*groups, {"params": [model.readout.weight], "lr": LR}]
    with pytest.raises(scaling.ScalingError, match="'readout.weight' is in param groups"):
        scaling.check_param_groups(model, duplicated)
    stale = copy.deepcopy(model).readout.weight
    with pytest.raises(scaling.ScalingError, match="not parameters of the model"):
        scaling.check_param_groups(model, [*groups, {"params": [stale], "lr": LR}])


def test_check_optimizer_rejects_a_wrong_lr() -> None:
    _, plan = make("mlp")
    optimizer = torch.optim.Adam(plan.param_groups(lr=LR))
    optimizer.param_groups[-1]["lr"] *= 2
    with pytest.raises(scaling.ScalingError, match="implies a base learning rate"):
        plan.check_optimizer(optimizer)


def test_param_groups_by_name_on_a_wrapped_model_is_linear_time() -> None:
    """Wrapped names (DDP's ``module.``, compile's ``_orig_mod.``) are matched through an index built
    once, not by a scan of the plan per parameter: 3000 parameters take milliseconds, not seconds."""
    depth = 1500

    def deep(width: int) -> nn.Module:
        return nn.Sequential(*(nn.Linear(width, width) for _ in range(depth)))

    with torch.device("meta"):
        model = deep(8)
        plan = scaling.parameterize(model, lambda: deep(4))
        wrapper = nn.Module()
        wrapper.module = model  # what DistributedDataParallel looks like, name-wise
    start = time.perf_counter()
    groups = plan.param_groups(lr=LR, model=wrapper)
    elapsed = time.perf_counter() - start
    assert sum(len(g["params"]) for g in groups) == 2 * depth
    assert elapsed < 1.0, f"{elapsed:.2f} s: the name lookup is quadratic in the number of parameters"

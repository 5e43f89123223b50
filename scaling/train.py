"""One training run: a reference model at one width, parameterized against its base width, trained
for a fixed number of steps with one base learning rate.

This is the cell of an LR-transfer sweep (:mod:`scaling.sweep`). Everything random is seeded by
``config.seed``: the initialization (the global generator, just before the model is built) and the
order of training batches (a generator of its own), so two runs that differ only in learning rate or
parameterization see the same batches; that shared noise is what makes loss-vs-LR curves smooth.

A run whose loss becomes non-finite or grows past ``diverge_factor`` times its first loss is stopped
and reported as diverged: a data point, not a crash.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, ReduceLROnPlateau
from torch.utils.flop_counter import FlopCounterMode

from scaling.data import Dataset, load_dataset, loss_fn
from scaling.errors import ScalingError
from scaling.models import DATASETS, build
from scaling.plan import parameterize
from scaling.table import RoleScales

Schedule = Literal["none", "cosine", "plateau"]
"""``none``: constant LR. ``cosine``: cosine decay to 0 over the run (``CosineAnnealingLR``).
``plateau``: ``ReduceLROnPlateau`` on the training loss, as the original question's network used."""

SCHEDULES: tuple[Schedule, ...] = get_args(Schedule)

# name -> (optimizer class, options). Every group's lr / weight_decay / eps come from the plan.
OPTIMIZERS: dict[str, tuple[type[torch.optim.Optimizer], dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, {}),
    "momentum": (torch.optim.SGD, {"momentum": 0.9}),
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
}

# ReduceLROnPlateau settings (empirical, ours): the train loss is averaged over windows of one epoch
# (at most a tenth of the run) and the LR halves after two windows without a 1% improvement.
PLATEAU_FACTOR = 0.5
PLATEAU_PATIENCE = 2
PLATEAU_THRESHOLD = 0.01


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``lr`` is the base learning rate: the one that would be tuned at base width."""

    model: str
    width: int
    base_width: int
    lr: float
    parameterization: str = "mup"
    optimizer: str = "adam"
    seed: int = 0
    steps: int = 300
    batch_size: int = 128
    schedule: Schedule = "none"
    last_k: int = 50
    weight_decay: float = 0.0
    diverge_factor: float = 100.0
    dataset: str | None = None  # default: the model's own, scaling.models.DATASETS
    dataset_kwargs: Mapping[str, Any] = field(default_factory=dict)
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    # Width-independent per-role constants, RoleScales as a dict: {"lr": {"input": 2.0}, "init": {...}}.
    scales: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    zero_readout: bool = False  # zero-initialize the readout (TP-V App. D.2)
    eps: float | None = None  # the base Adam epsilon (default: the optimizer's, 1e-8)


@dataclass(frozen=True)
class RunResult:
    """What one run measured.

    ``train_loss`` is the mean of the last ``last_k`` training losses (``inf`` if diverged);
    ``val_loss`` the loss on the dataset's fixed validation batches after training (``nan`` if
    diverged); ``flops`` the training FLOPs, forward and backward, measured on the first step by
    ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and convolutions) times ``steps``.
    """

    train_loss: float
    val_loss: float
    diverged: bool
    steps: int
    seconds: float
    flops: float


def build_optimizer(name: str, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """The optimizer ``name`` (sgd, momentum, adam, adamw) over ready-made param groups."""
    if name not in OPTIMIZERS:
        raise ScalingError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    cls, options = OPTIMIZERS[name]
    return cls(groups, **options)


def build_model(config: TrainConfig, device: str | torch.device = "cpu") -> tuple[nn.Module, torch.optim.Optimizer]:
    """The parameterized model (seeded init, on the CPU, then moved) and its optimizer, with per-layer
    groups from the plan.

    The base model is built on the meta device from a builder, with a delta model at twice the base
    width, so each parameter's role is known even when ``width == base_width``.
    """
    if config.optimizer not in OPTIMIZERS:
        raise ScalingError(f"unknown optimizer {config.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[config.optimizer][0]
    kwargs = dict(config.model_kwargs)
    torch.manual_seed(config.seed)
    model = build(config.model, config.width, **kwargs).to(device)
    plan = parameterize(
        model,
        base=lambda: build(config.model, config.base_width, **kwargs),
        delta=lambda: build(config.model, 2 * config.base_width, **kwargs),
        parameterization=config.parameterization,
        optimizer=cls,
        scales=RoleScales.from_dict(config.scales),
        zero_readout=config.zero_readout,
    )
    groups = plan.param_groups(cls, lr=config.lr, weight_decay=config.weight_decay, eps=config.eps)
    return model, build_optimizer(config.optimizer, groups)


def train(config: TrainConfig, data: Dataset | None = None, device: str | torch.device = "cpu") -> RunResult:
    """Train one model as ``config`` says and measure it. ``data`` saves reloading the dataset."""
    start = time.perf_counter()
    if data is None:
        data = load_dataset(config.dataset or DATASETS[config.model], **dict(config.dataset_kwargs))
    model, optimizer = build_model(config, device)
    scheduler = _scheduler(config, optimizer)
    generator = torch.Generator().manual_seed(config.seed + 1_000_003)  # data order: its own stream
    losses = torch.full((config.steps,), math.nan)
    window = _plateau_window(config, data)
    bound, flops_per_step, steps_done, diverged = math.inf, 0.0, 0, False
    model.train()
    for step in range(config.steps):
        x, y = (t.to(device) for t in data.sample(config.batch_size, generator))
        if step == 0:  # count one step's FLOPs (matrix products), then train without the counter
            with FlopCounterMode(display=False) as counter:
                loss = _step(model, optimizer, x, y)
            flops_per_step = float(counter.get_total_flops())
        else:
            loss = _step(model, optimizer, x, y)
        value = loss.item()  # the one sync per step: divergence must stop the run at once
        losses[step] = value
        steps_done = step + 1
        if step == 0:
            bound = config.diverge_factor * max(abs(value), 1e-3)
        if not math.isfinite(value) or value > bound:
            diverged = True
            break
        if isinstance(scheduler, ReduceLROnPlateau):
            if steps_done % window == 0:
                scheduler.step(float(losses[steps_done - window : steps_done].mean()))
        elif scheduler is not None:
            scheduler.step()
    last = losses[max(0, steps_done - config.last_k) : steps_done]
    train_loss = math.inf if diverged else float(last.mean())
    val_loss = math.nan if diverged else evaluate(model, data, device)
    return RunResult(
        train_loss=train_loss,
        val_loss=val_loss,
        diverged=diverged,
        steps=steps_done,
        seconds=time.perf_counter() - start,
        flops=flops_per_step * steps_done,
    )


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor) -> Tensor:
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset, device: str | torch.device = "cpu") -> float:
    """Mean loss over the dataset's fixed validation batches (weighted by batch size)."""
    model.eval()
    total, count = 0.0, 0
    for x, y in data.validation():
        n = y.numel()
        total += float(loss_fn(model(x.to(device)), y.to(device))) * n
        count += n
    model.train()
    return total / max(count, 1)


def _plateau_window(config: TrainConfig, data: Dataset) -> int:
    """Steps per ReduceLROnPlateau update: one epoch, at most a tenth of the run, at least one step."""
    epoch = len(data.x_train) // max(config.batch_size * max(data.block_size, 1), 1)
    return max(1, min(epoch, config.steps // 10))


def _scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer) -> LRScheduler | None:
    """The LR schedule; each scales every group's LR by the same factor, so the plan's ratios hold."""
    if config.schedule == "none":
        return None
    if config.schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=config.steps)
    if config.schedule == "plateau":
        return ReduceLROnPlateau(
            optimizer, factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE, threshold=PLATEAU_THRESHOLD
        )
    raise ScalingError(f"unknown schedule {config.schedule!r}; choose one of: {', '.join(SCHEDULES)}")

"""One training run: a task's model at one width, parameterized against its base width, trained for a
fixed number of steps with one base learning rate. A run is ``(settings, cell)`` and gives a
:class:`scaling.sweep.store.RunRecord`.

Everything random is seeded by the cell's seed: the initialization (the global generator, just
before the model is built) and the order of training batches (a generator of its own), so two runs
that differ only in learning rate or parameterization see the same batches; that shared noise is
what makes loss-vs-LR curves smooth.

A run whose loss becomes non-finite or grows past ``diverge_factor`` times its first loss is stopped
and reported as diverged: a data point, not a crash.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LRScheduler, ReduceLROnPlateau
from torch.utils.flop_counter import FlopCounterMode

from scaling.data import Data
from scaling.errors import ScalingError
from scaling.optim import optimizer_spec
from scaling.peers import PEERS
from scaling.peers import adapter as peer_adapter
from scaling.plan import ScalingPlan, parameterize
from scaling.shapes import build_on_meta
from scaling.sweep.config import SCHEDULES, RunSettings
from scaling.sweep.store import Cell, RunRecord
from scaling.sweep.task import Task, task_for
from scaling.table import RoleScales

# ReduceLROnPlateau settings (empirical, ours): the train loss is averaged over windows of one epoch
# (at most a tenth of the run) and the LR halves after two windows without a 1% improvement.
PLATEAU_FACTOR = 0.5
PLATEAU_PATIENCE = 2
PLATEAU_THRESHOLD = 0.01

DATA_SEED_OFFSET = 1_000_003  # the batch order's generator: seed + this, a stream of its own


def reference_task(settings: RunSettings) -> Task:
    """The task ``settings`` name (a reference model and built-in dataset, or ``module:function``s)."""
    return task_for(settings.model, settings.dataset_name, dict(settings.dataset_kwargs), settings.loss)


def build_run(
    settings: RunSettings, cell: Cell, task: Task, device: str | torch.device = "cpu"
) -> tuple[nn.Module, torch.optim.Optimizer, Callable[[Any, Any], Tensor]]:
    """The model, optimizer and loss of one run: a row of the table (:func:`build_model`), or a peer
    package's own way (:mod:`scaling.peers`)."""
    if cell.parameterization in PEERS:
        built: tuple[nn.Module, torch.optim.Optimizer, Callable[[Any, Any], Tensor]] = \
            peer_adapter(cell.parameterization).build(settings, cell, task, device)
        return built
    model, optimizer, _ = build_model(settings, cell, task, device)
    return model, optimizer, task.loss


def build_model(
    settings: RunSettings, cell: Cell, task: Task, device: str | torch.device = "cpu"
) -> tuple[nn.Module, torch.optim.Optimizer, ScalingPlan]:
    """The parameterized model (seeded init, on the CPU, then moved), its optimizer with per-layer
    groups from the plan, and the plan.

    The base model is built on the meta device, with a delta model at twice the base width, so each
    parameter's role is known even when ``width == base_width``.
    """
    spec = optimizer_spec(cell.optimizer)
    kwargs = dict(settings.model_kwargs)
    torch.manual_seed(cell.seed)
    model = task.build(cell.width, **kwargs).to(device)
    plan = parameterize(
        model,
        base=lambda: task.build(settings.base_width, **kwargs),
        delta=lambda: task.build(2 * settings.base_width, **kwargs),
        parameterization=cell.parameterization,
        optimizer=spec.cls,
        scales=RoleScales.from_dict(cell.scales_dict()),
        zero_readout=settings.zero_readout,
        init=settings.init,
    )
    return model, optimizer_for(settings, cell, plan), plan


def optimizer_for(settings: RunSettings, cell: Cell, plan: ScalingPlan, model: nn.Module | None = None) -> \
        torch.optim.Optimizer:
    """The run's optimizer over the plan's per-layer groups, taken from ``model`` (default: the planned
    model; a DDP- or FSDP2-wrapped one is matched by name)."""
    spec = optimizer_spec(cell.optimizer)
    groups = plan.param_groups(spec.cls, lr=cell.lr, weight_decay=settings.weight_decay, eps=settings.eps,
                               model=model)
    return spec.build(groups)


def train(settings: RunSettings, cell: Cell, task: Task | None = None, device: str | torch.device = "cpu") -> RunRecord:
    """Train the run ``(settings, cell)`` and measure it. ``task`` saves rebuilding the task (and its data)."""
    start = time.perf_counter()
    task = task or reference_task(settings)
    data: Data = task.data
    model, optimizer, loss_fn = build_run(settings, cell, task, device)
    trajectory = run_steps(settings, model, optimizer, loss_fn, training_batches(settings, cell, data),
                           data.steps_per_epoch(settings.batch_size), device)
    val_loss = math.nan if trajectory.diverged else evaluate(model, data, loss_fn, device)
    return trajectory.record(cell, settings, val_loss, time.perf_counter() - start)


def training_batches(settings: RunSettings, cell: Cell, data: Data) -> Iterator[Any]:
    """The run's training batches: an order fixed by the cell's seed alone (a generator of its own)."""
    generator = torch.Generator().manual_seed(cell.seed + DATA_SEED_OFFSET)
    return data.batches(settings.batch_size, generator)


@dataclass(frozen=True)
class Trajectory:
    """What the step loop measured: every step's loss (``nan`` after a stop), the steps completed,
    whether the run diverged, and the FLOPs of one step (counted on the first)."""

    losses: Tensor
    steps: int
    diverged: bool
    flops_per_step: float

    def record(self, cell: Cell, settings: RunSettings, val_loss: float, seconds: float) -> RunRecord:
        """The run's record: train loss the mean of the last ``last_k`` losses (``inf`` if diverged)."""
        last = self.losses[max(0, self.steps - settings.last_k) : self.steps]
        train_loss = math.inf if self.diverged else float(last.mean())
        return RunRecord(cell, train_loss=train_loss, val_loss=math.nan if self.diverged else val_loss,
                         diverged=self.diverged, steps=self.steps, seconds=seconds,
                         flops=self.flops_per_step * self.steps)


def run_steps(
    settings: RunSettings,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable[[Any, Any], Tensor],
    batches: Iterator[Any],
    steps_per_epoch: int,
    device: str | torch.device = "cpu",
    reduce: Callable[[Tensor], Tensor] | None = None,
) -> Trajectory:
    """The training loop of a run: ``settings.steps`` steps on ``batches``, the LR schedule, and the
    divergence check, which stops the run at once.

    ``reduce`` turns a step's loss into the one logged and checked (a data-parallel run's mean over
    ranks, :mod:`scaling.sweep.wide`); by default the loss itself.
    """
    scheduler = _scheduler(settings, optimizer)
    losses = torch.full((settings.steps,), math.nan)
    window = max(1, min(steps_per_epoch, settings.steps // 10))
    bound, flops_per_step, steps_done, diverged = math.inf, 0.0, 0, False
    model.train()
    for step in range(settings.steps):
        x, y = (_to(t, device) for t in next(batches))
        if step == 0:  # count one step's FLOPs (matrix products), then train without the counter
            with FlopCounterMode(display=False) as counter:
                loss = _step(model, optimizer, loss_fn, x, y)
            flops_per_step = float(counter.get_total_flops())
        else:
            loss = _step(model, optimizer, loss_fn, x, y)
        if reduce is not None:
            loss = reduce(loss)
        value = loss.item()  # the one sync per step: divergence must stop the run at once
        losses[step] = value
        steps_done = step + 1
        if step == 0:
            bound = settings.diverge_factor * max(abs(value), 1e-3)
        if not math.isfinite(value) or value > bound:
            diverged = True
            break
        if isinstance(scheduler, ReduceLROnPlateau):
            if steps_done % window == 0:
                scheduler.step(float(losses[steps_done - window : steps_done].mean()))
        elif scheduler is not None:
            scheduler.step()
    return Trajectory(losses, steps_done, diverged, flops_per_step)


def _to(x: Any, device: str | torch.device) -> Any:
    return x.to(device) if isinstance(x, Tensor) else x


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, loss_fn: Callable[[Any, Any], Tensor], x: Any,
          y: Any) -> Tensor:
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()


@torch.no_grad()
def evaluate(model: nn.Module, data: Data, loss_fn: Callable[[Any, Any], Tensor],
             device: str | torch.device = "cpu") -> float:
    """Mean loss over the data's fixed validation batches (weighted by batch size; ``nan`` without any)."""
    model.eval()
    total, count = 0.0, 0
    for x, y in data.validation():
        n = y.numel()
        total += float(loss_fn(model(_to(x, device)), _to(y, device))) * n
        count += n
    model.train()
    return total / count if count else math.nan


def check_task(settings: RunSettings, widths: tuple[int, ...], parameterizations: tuple[str, ...],
               scales: Sequence[Mapping[str, Mapping[str, float]]], task: Task) -> None:
    """Check, before the first run, that every width builds and parameterizes (on the meta device:
    free) and that the base model reads a batch of the task's data."""
    kwargs = dict(settings.model_kwargs)
    for width in widths:
        try:
            model = build_on_meta(lambda w=width: task.build(w, **kwargs))  # type: ignore[misc]
        except (TypeError, ValueError) as e:
            raise ScalingError(f"cannot build {task.name!r} at width {width}: {e}") from e
        for p in parameterizations:
            if p in PEERS:
                if width == widths[0]:
                    peer_adapter(p).check(settings, task)
                continue
            for s in scales:
                try:
                    parameterize(model, base=lambda: task.build(settings.base_width, **kwargs),
                                 delta=lambda: task.build(2 * settings.base_width, **kwargs), parameterization=p,
                                 scales=RoleScales.from_dict(s), zero_readout=settings.zero_readout,
                                 rescale=False)
                except ScalingError as e:
                    raise ScalingError(f"{p} at width {width}: {e}") from e
    x = next(task.data.batches(2, torch.Generator().manual_seed(0)))[0]
    # Building the first optimizer imports torch._dynamo (1-2 s): do it now, not inside the first run's clock.
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    try:
        with torch.no_grad():
            task.build(settings.base_width, **kwargs)(x[:2])
    except (RuntimeError, IndexError, ValueError, TypeError) as e:
        raise ScalingError(f"model {task.name!r} cannot read dataset {getattr(task.data, 'name', '?')!r}: {e}") \
            from e


def _scheduler(settings: RunSettings, optimizer: torch.optim.Optimizer) -> LRScheduler | ReduceLROnPlateau | None:
    """The LR schedule; each scales every group's LR by the same factor, so the plan's ratios hold."""
    if settings.schedule == "none":
        return None
    if settings.schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=settings.steps)
    if settings.schedule == "plateau":
        return ReduceLROnPlateau(
            optimizer, factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE, threshold=PLATEAU_THRESHOLD
        )
    raise ScalingError(f"unknown schedule {settings.schedule!r}; choose one of: {', '.join(SCHEDULES)}")

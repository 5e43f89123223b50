"""Many small runs at once: K runs of one width trained as one batched model with ``torch.func``.

Runs that share a row, an optimizer, a width and per-role constants have parameters of the same shapes;
they differ only in base learning rate and seed. Stacked along a new leading dimension
(``torch.func.stack_module_state``), their forward is one ``vmap`` of ``functional_call`` over the
stack, their backward one ``backward`` of the *summed* losses (each model's gradient is its own loss's:
a sum does not mix them, where a mean would divide every gradient by K), and their optimizer step a
batched SGD or Adam(W) whose learning rate is a ``(K,)`` tensor per parameter: each model's group
learning rate from the plan (its base LR times the plan's factor for that tensor, and the schedule's
factor of the step). So a batched run is the sequential run (:func:`scaling.sweep.train.train`) up to
floating-point rounding: the same seeded initialization (each model is built as a sequential run builds
it), the same batches (each model reads its own seed's stream), the same divergence rule, the same
schedules (each model keeps the torch scheduler of a sequential run, on its own optimizer's groups,
which are read but never stepped), the same validation loss.

On a small CPU model most of a step's time is Python and dispatch, paid once for K models here, so
batching is fast where models are small; on large ones it gains nothing (``experiments/bench_batched.py``
measures where). :func:`probe` measures it for a given group before the engine decides.

Batched: ``torch.optim.SGD`` (with or without momentum, Nesterov), ``Adam`` and ``AdamW`` (no AMSGrad,
no ``maximize``), rows of the table. Not batched (trained one by one): the peers' own optimizers, Muon
pairs, other optimizer classes; :func:`batch_problem` says why.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.func import functional_call, stack_module_state, vmap
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau
from torch.utils.flop_counter import FlopCounterMode

from scaling.errors import ScalingError
from scaling.optim import optimizer_spec
from scaling.peers import PEERS
from scaling.sweep.config import RunSettings
from scaling.sweep.store import Cell, RunRecord, canonical_scales
from scaling.sweep.task import Task
from scaling.sweep.train import DATA_SEED_OFFSET, _scheduler, build_model

BATCHED_OPTIMIZERS: tuple[type[torch.optim.Optimizer], ...] = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW)
"""The optimizer classes the batched step implements (exact classes: a subclass may change ``step``)."""

GroupKey = tuple[str, str, int, str]

AUTO_MARGIN = 1.2  # batch only when a probe measures it this much faster: probes are noisy


class CannotBatchError(ScalingError):
    """The runs cannot train as one batched model (the message says why); train them one by one."""


def group_key(cell: Cell) -> GroupKey:
    """What runs batched together share: row, optimizer, width and the forward multipliers' constants.

    Per-role LR and init constants may differ within a batch (they set each model's groups and initial
    values); the ``multiplier`` constants change the forward itself, which one template computes for all.
    """
    multipliers = cell.scales_dict().get("multiplier", {})
    return cell.parameterization, cell.optimizer, cell.width, canonical_scales({"multiplier": multipliers})


def batch_problem(cell: Cell) -> str | None:
    """Why runs like ``cell`` cannot be batched (``None``: they can)."""
    if cell.parameterization in PEERS:
        return f"{cell.parameterization} builds its own model and optimizer"
    cls = optimizer_spec(cell.optimizer).cls
    if cls not in BATCHED_OPTIMIZERS:
        return f"the batched step implements {', '.join(c.__name__ for c in BATCHED_OPTIMIZERS)}, not {cls.__name__}"
    return None


def _unsupported(group: dict[str, Any], cls: type) -> str | None:
    for option in ("amsgrad", "maximize", "differentiable"):
        if group.get(option):
            return f"{cls.__name__}({option}=True) is not batched"
    if isinstance(group.get("lr"), Tensor):
        return "a tensor learning rate is not batched"
    return None


@dataclass
class _Param:
    """One stacked parameter: which group of each model's optimizer holds it."""

    name: str
    groups: list[int]  # per model: the index of the group holding it


class BatchedRuns:
    """K runs of one width as one batched model: :meth:`step` trains all of them one step.

    Built from the cells exactly as :func:`scaling.sweep.train.build_model` builds each run (seeded
    init, the plan's param groups at each cell's LR), then stacked. Raises :class:`ScalingError` when
    the cells cannot be batched (different shapes, options the batched step does not implement).
    """

    def __init__(self, settings: RunSettings, cells: Sequence[Cell], task: Task, *, shared_batches: bool = False):
        if not cells:
            raise CannotBatchError("no cells to batch")
        keys = {group_key(c) for c in cells}
        if len(keys) > 1:
            raise CannotBatchError(f"batched runs must share row, optimizer, width and constants, got {sorted(keys)}")
        problem = batch_problem(cells[0])
        if problem:
            raise CannotBatchError(f"cannot batch {cells[0]}: {problem}")
        self.settings, self.cells, self.task, self.shared_batches = settings, list(cells), task, shared_batches
        self.cls = optimizer_spec(cells[0].optimizer).cls
        models, self.optimizers, forward = [], [], None
        for cell in cells:
            model, optimizer, plan = build_model(settings, cell, task)
            if type(optimizer) is not self.cls:
                raise CannotBatchError(f"cannot batch {cell}: its optimizer is {type(optimizer).__name__}")
            this = (plan.multipliers, plan.attention_scales, plan.branches)
            if forward is not None and this != forward:  # one template computes every model's forward
                raise CannotBatchError(f"cannot batch {cell}: its forward multipliers differ from {cells[0]}'s")
            forward = this
            models.append(model)
            self.optimizers.append(optimizer)
        self.model = models[0]  # the functional template: its hooks and multipliers, the stack's parameters
        names = [n for n, _ in self.model.named_parameters()]
        self.params: dict[str, Tensor]
        self.params, self.buffers = stack_module_state(models)
        self.table: list[_Param] = []
        for name in names:
            where = []
            for model, optimizer in zip(models, self.optimizers):
                p = model.get_parameter(name)
                index = next((i for i, g in enumerate(optimizer.param_groups) if any(q is p for q in g["params"])),
                             None)
                if index is None:
                    raise CannotBatchError(f"cannot batch: {name} is in no param group")
                problem = _unsupported(optimizer.param_groups[index], self.cls)
                if problem:
                    raise CannotBatchError(f"cannot batch {name}: {problem}")
                where.append(index)
            self.table.append(_Param(name, where))
        self._shared = self._shared_options()
        self.schedulers = [_scheduler(settings, o) for o in self.optimizers]
        self.state: dict[str, dict[str, Tensor]] = {n: {} for n in names}
        self.t = 0
        self._hyper = self._read_hyper()
        del models  # the stack holds the values; the per-model copies live on only in the optimizers' groups

    def _shared_options(self) -> dict[str, Any]:
        """Options every group of every model must share (the batched step reads one value)."""
        keys = ("betas", "momentum", "dampening", "nesterov")
        seen: dict[str, set[Any]] = {k: set() for k in keys}
        for optimizer in self.optimizers:
            for g in optimizer.param_groups:
                for k in keys:
                    if k in g:
                        seen[k].add(tuple(g[k]) if isinstance(g[k], (list, tuple)) else g[k])
        many = [k for k, v in seen.items() if len(v) > 1]
        if many:
            raise CannotBatchError(f"cannot batch: the runs' groups differ in {many}")
        return {k: next(iter(v)) for k, v in seen.items() if v}

    def _read_hyper(self) -> dict[str, dict[str, Tensor]]:
        """Per parameter, the ``(K, 1, ...)`` learning rate, weight decay and epsilon of each model's group."""
        out: dict[str, dict[str, Tensor]] = {}
        for entry in self.table:
            p = self.params[entry.name]
            shape = (len(self.cells),) + (1,) * (p.dim() - 1)
            groups = [o.param_groups[i] for o, i in zip(self.optimizers, entry.groups)]
            out[entry.name] = {
                k: torch.tensor([float(g.get(k, 0.0) or 0.0) for g in groups], dtype=p.dtype).reshape(shape)
                for k in ("lr", "weight_decay", "eps")
            }
        return out

    # -- data ----------------------------------------------------------------------------------------
    def streams(self) -> Callable[[], tuple[Any, Any, bool]]:
        """A function giving the next step's stacked inputs and targets (and whether they are stacked).

        Each model reads its own seed's batches (the stream a sequential run of that seed reads; models
        of one seed share one stream); with ``shared_batches`` every model reads the first cell's.
        """
        seeds = [self.cells[0].seed] if self.shared_batches else sorted({c.seed for c in self.cells})
        its = {s: self.task.data.batches(self.settings.batch_size,
                                         torch.Generator().manual_seed(s + DATA_SEED_OFFSET)) for s in seeds}
        order = [seeds.index(c.seed) if not self.shared_batches else 0 for c in self.cells]

        def take() -> tuple[Any, Any, bool]:
            batch = [next(its[s]) for s in seeds]
            if len(seeds) == 1:
                return batch[0][0], batch[0][1], False
            return (torch.stack([batch[i][0] for i in order]), torch.stack([batch[i][1] for i in order]), True)

        return take

    # -- training ------------------------------------------------------------------------------------
    def losses(self, x: Any, y: Any, stacked: bool) -> Tensor:
        """The ``(K,)`` losses of the models on their batches (``stacked``: one batch per model)."""
        def one(params: dict[str, Tensor], buffers: dict[str, Tensor], x: Any, y: Any) -> Tensor:
            return self.task.loss(functional_call(self.model, (params, buffers), (x,)), y)

        dims = 0 if stacked else None
        with warnings.catch_warnings():  # an op without a batching rule runs in a loop: slower, still right,
            warnings.filterwarnings("ignore", message="There is a performance drop")  # and the probe sees it
            return vmap(one, in_dims=(0, 0, dims, dims), randomness="different")(self.params, self.buffers, x, y)

    def step(self, x: Any, y: Any, stacked: bool, alive: Tensor) -> Tensor:
        """One training step of every model; returns the ``(K,)`` losses before it. Models not ``alive``
        (diverged) contribute no gradient."""
        for p in self.params.values():
            p.grad = None
        losses = self.losses(x, y, stacked)
        torch.where(alive, losses, torch.zeros_like(losses)).sum().backward()
        self.t += 1
        with torch.no_grad():
            for entry in self.table:
                self._update(entry.name)
        return losses.detach()

    def _update(self, name: str) -> None:
        p, h, state = self.params[name], self._hyper[name], self.state[name]
        g = p.grad
        if g is None:
            return
        lr, wd = h["lr"], h["weight_decay"]
        if self.cls is torch.optim.SGD:
            if bool((wd != 0).any()):
                g = g.add(wd * p)
            momentum = self._shared.get("momentum", 0.0)
            if momentum:
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = g.clone()
                else:
                    state["momentum_buffer"].mul_(momentum).add_(g, alpha=1 - self._shared.get("dampening", 0.0))
                buf = state["momentum_buffer"]
                g = g.add(buf, alpha=momentum) if self._shared.get("nesterov") else buf
            p.sub_(lr * g)
            return
        beta1, beta2 = self._shared["betas"]
        if self.cls is torch.optim.AdamW:
            p.mul_(1 - lr * wd)
        elif bool((wd != 0).any()):
            g = g.add(wd * p)
        if not state:
            state["exp_avg"], state["exp_avg_sq"] = torch.zeros_like(p), torch.zeros_like(p)
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        bias1, bias2 = 1 - beta1**self.t, 1 - beta2**self.t
        denom = (v.sqrt() / math.sqrt(bias2)).add_(h["eps"])
        p.sub_(m / denom * (lr / bias1))

    def schedule(self, step: int, losses: Tensor) -> None:
        """Advance every model's scheduler as a sequential run does after ``step`` (0-based), then read
        the new group learning rates. ``losses``: the ``(steps, K)`` training losses so far."""
        if all(s is None for s in self.schedulers):
            return
        done = step + 1
        window = max(1, min(self.task.data.steps_per_epoch(self.settings.batch_size), self.settings.steps // 10))
        for k, scheduler in enumerate(self.schedulers):
            if isinstance(scheduler, ReduceLROnPlateau):
                if done % window == 0:
                    scheduler.step(float(losses[done - window : done, k].mean()))
            elif isinstance(scheduler, LRScheduler):
                with warnings.catch_warnings():  # its optimizer is read, never stepped: the batched step is
                    warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
                    scheduler.step()
        self._hyper = self._read_hyper()

    def flops_per_step(self, x: Any, y: Any) -> float:
        """One model's forward and backward FLOPs on one batch, counted as a sequential run counts them:
        on the template with the first model's values, not under ``vmap`` (batching rules rewrite some ops,
        a convolution into a grouped one, which the counter does not count as K convolutions)."""
        params = {n: p[0].detach().requires_grad_(p.requires_grad) for n, p in self.params.items()}
        buffers = {n: b[0].clone() for n, b in self.buffers.items()}
        with FlopCounterMode(display=False) as counter:
            self.task.loss(functional_call(self.model, (params, buffers), (x,)), y).backward()
        return float(counter.get_total_flops())

    @torch.no_grad()
    def evaluate(self) -> Tensor:
        """Each model's mean loss over the data's fixed validation batches (weighted by batch size)."""
        self.model.eval()
        total, count = torch.zeros(len(self.cells)), 0
        for x, y in self.task.data.validation():
            n = y.numel()
            total += self.losses(x, y, stacked=False).to(total.dtype) * n
            count += n
        self.model.train()
        return total / count if count else torch.full((len(self.cells),), math.nan)


def train_batched(settings: RunSettings, cells: Sequence[Cell], task: Task, *,
                  shared_batches: bool = False) -> list[RunRecord]:
    """Train ``cells`` (one row, optimizer, width and constants; any LRs and seeds) as one batched model.

    Returns one :class:`RunRecord` per cell, in order, equal to :func:`scaling.sweep.train.train`'s up to
    floating-point rounding (``tests/test_batched.py``). ``seconds`` is the batched wall time over K;
    ``flops`` each model's own (the batched first step's count over K). ``shared_batches``: every model
    reads the first cell's batches (faster: no stacked inputs), so runs of other seeds are *not* the
    sequential runs of their seed; the engine never uses it.
    """
    start = time.perf_counter()
    runs = BatchedRuns(settings, cells, task, shared_batches=shared_batches)
    k, steps = len(cells), settings.steps
    take = runs.streams()
    losses = torch.full((steps, k), math.nan)
    alive = torch.ones(k, dtype=torch.bool)
    done = torch.zeros(k, dtype=torch.long)
    bound = torch.full((k,), math.inf)
    flops = 0.0
    runs.model.train()
    for step in range(steps):
        x, y, stacked = take()
        if step == 0:
            flops = runs.flops_per_step(x[0] if stacked else x, y[0] if stacked else y)
        loss = runs.step(x, y, stacked, alive)
        loss = loss.to(losses.dtype)
        losses[step] = torch.where(alive, loss, torch.nan)
        done += alive.long()
        if step == 0:
            bound = settings.diverge_factor * loss.abs().clamp_min(1e-3)
        alive &= torch.isfinite(loss) & (loss <= bound)
        if not bool(alive.any()):
            break
        runs.schedule(step, losses)
    val = runs.evaluate()
    seconds = (time.perf_counter() - start) / k
    records = []
    for i, cell in enumerate(cells):
        n = int(done[i])
        diverged = not bool(alive[i])
        last = losses[max(0, n - settings.last_k) : n, i]
        records.append(RunRecord(cell, train_loss=math.inf if diverged else float(last.mean()),
                                 val_loss=math.nan if diverged else float(val[i]), diverged=diverged, steps=n,
                                 seconds=seconds, flops=flops * n))
    return records


@dataclass(frozen=True)
class Probe:
    """What :func:`probe` measured: seconds per step of one sequential run and of the batched K."""

    k: int
    sequential_s: float
    batched_s: float
    problem: str | None = None

    @property
    def speedup(self) -> float:
        """K sequential steps over one batched step (how many times faster batching is)."""
        return self.k * self.sequential_s / self.batched_s if self.batched_s > 0 else 0.0

    @property
    def worth_it(self) -> bool:
        """Whether to batch: it ran, and measured more than :data:`AUTO_MARGIN` times faster."""
        return self.problem is None and self.speedup > AUTO_MARGIN

    def __str__(self) -> str:
        if self.problem:
            return f"sequential ({self.problem})"
        if not self.worth_it:
            return f"sequential (batched only {self.speedup:.1f}x in the probe)"
        return f"batched (K={self.k}: batched {self.speedup:.1f}x sequential, measured)"


def probe(settings: RunSettings, cells: Sequence[Cell], task: Task, steps: int = 3) -> Probe:
    """Time a few steps of one sequential run and of ``cells`` batched, on throwaway models (after one
    warm-up step each), so the engine can choose. A group that fails to batch gets its reason."""
    from scaling.sweep.train import _step, build_run

    problem = batch_problem(cells[0])
    if problem:
        return Probe(len(cells), 0.0, 0.0, problem)
    gen = torch.Generator().manual_seed(0)
    batches = task.data.batches(settings.batch_size, gen)
    sample = [next(batches) for _ in range(steps + 1)]
    with torch.random.fork_rng(devices=[]):
        model, optimizer, loss_fn = build_run(settings, cells[0], task)
        t_seq = _timed([lambda b=b: _step(model, optimizer, loss_fn, *b) for b in sample])  # type: ignore[misc]
        try:
            runs = BatchedRuns(settings, cells, task)
            alive = torch.ones(len(cells), dtype=torch.bool)
            t_bat = _timed([lambda b=b: runs.step(b[0], b[1], False, alive) for b in sample])  # type: ignore[misc]
        except (CannotBatchError, RuntimeError, NotImplementedError, TypeError) as e:
            return Probe(len(cells), t_seq, 0.0, f"torch.func could not batch it: {str(e).splitlines()[0]}")
    return Probe(len(cells), t_seq, t_bat)


def _timed(steps: Sequence[Callable[[], object]]) -> float:
    """Seconds per call of ``steps[1:]`` (the first is a warm-up)."""
    steps[0]()
    start = time.perf_counter()
    for s in steps[1:]:
        s()
    return (time.perf_counter() - start) / max(1, len(steps) - 1)

"""The wide run: one configuration of a sweep, typically the transferred one at the target width,
trained with the sweep's data, steps and logging and recorded in its store beside the base-width runs.

On one process it is exactly :func:`scaling.sweep.train.train`. Launched by ``torchrun`` it is
data-parallel: every rank builds the identically seeded model, wraps it in DDP or shards it with
FSDP2 (``torch.distributed.fsdp.fully_shard``), rebuilds the plan's param groups from the wrapped
model by name, and takes an equal contiguous slice of every global batch (the very batches a
single-process run draws). The loss logged, and the divergence decided on, is the mean over ranks,
which is the single-process loss of the global batch (the task's loss must be a mean over examples);
gradients are averaged the same way by the wrapper. Rank 0 alone writes the store.

    torchrun --standalone --nproc_per_node 4 -m scaling train --db out/mlp.db --width 4096 --log2-lr -7 \
        --parameterization mup --parallel fsdp

Randomness inside the forward pass (dropout) is drawn per rank and does not match a single process.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Literal, get_args

import torch
import torch.distributed as dist
from torch import Tensor, nn

from scaling.errors import ScalingError
from scaling.optim import optimizer_spec
from scaling.peers import PEERS
from scaling.plan import check_param_groups
from scaling.sweep.config import RunSettings, SweepConfig
from scaling.sweep.engine import prepare
from scaling.sweep.store import Cell, RunRecord, SweepStore, open_existing
from scaling.sweep.task import Task
from scaling.sweep.train import build_model, build_run, evaluate, optimizer_for, run_steps, train, training_batches

Parallel = Literal["auto", "ddp", "fsdp"]
"""``ddp``: ``DistributedDataParallel`` (a full copy per rank). ``fsdp``: FSDP2's ``fully_shard`` (each
rank holds a shard of every parameter and of the optimizer state). ``auto``: DDP."""

PARALLEL: tuple[Parallel, ...] = get_args(Parallel)


def world_size() -> int:
    """The number of ranks ``torchrun`` launched (1 without it)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank under ``torchrun`` (0 without it)."""
    return int(os.environ.get("RANK", "0"))


def sweep_of(settings: RunSettings, cell: Cell) -> SweepConfig:
    """The one-cell sweep of ``(settings, cell)``: what :func:`scaling.sweep.engine.prepare` checks."""
    shared = {f.name: getattr(settings, f.name) for f in fields(RunSettings)}
    return SweepConfig(**shared, parameterizations=(cell.parameterization,), optimizers=(cell.optimizer,),
                       widths=(cell.width,), log2_lrs=(cell.log2_lr,), seeds=(cell.seed,),
                       scales=(cell.scales_dict(),))


def recorded(store: SweepStore, cell: Cell) -> RunRecord | None:
    """The record of ``cell`` in ``store``, if it has one."""
    return next((r for r in store.runs() if r.cell == cell), None)


def check_store(store: SweepStore, settings: RunSettings, cell: Cell) -> None:
    """Refuse a database that holds no sweep, or a sweep of other settings (the run would be misfiled)."""
    theirs = store.fixed()
    if not theirs:
        raise ScalingError(f"{store.path} holds no sweep; run `scaling sweep --db {store.path} ...` first")
    ours = json.loads(json.dumps(sweep_of(settings, cell).fixed()))  # as the store wrote it: tuples as lists
    diff = sorted(k for k in theirs.keys() | ours.keys() if theirs.get(k) != ours.get(k))
    if diff:
        changes = ", ".join(f"{k}: {theirs.get(k)!r} -> {ours.get(k)!r}" for k in diff)
        raise ScalingError(f"{store.path} holds a sweep with other settings ({changes}); train with its settings "
                           "(scaling.sweep.read_config) or pass another --db")


def train_wide(
    config_or_settings: RunSettings,
    cell: Cell,
    task: Task | None = None,
    db: str | Path | None = None,
    parallel: Parallel = "auto",
) -> RunRecord:
    """Train ``cell`` with the sweep's settings, on one process or on the ranks ``torchrun`` launched,
    and record it in ``db`` (which must hold the sweep: a database of other settings is refused).

    A cell ``db`` already holds is not trained again: its record is returned. Every rank returns the
    same record; only rank 0 writes it. Under ``torchrun`` the global batch must divide by the number
    of ranks. With a process group already initialized (your own launcher), that group is used and
    left as it is.
    """
    settings = config_or_settings
    if parallel not in PARALLEL:
        raise ScalingError(f"parallel must be one of {', '.join(PARALLEL)}, got {parallel!r}")
    if cell.width < settings.base_width:
        raise ScalingError(f"width {cell.width} is below the sweep's base width {settings.base_width}: the wide "
                           "run scales up from the base; pass a width at least that")
    task = prepare(sweep_of(settings, cell), task)
    if db is not None:
        with open_existing(db) as store:
            check_store(store, settings, cell)
            old = recorded(store, cell)
        if old is not None:
            return old
    own_group = not dist.is_initialized()
    world = world_size() if own_group else dist.get_world_size()
    writes = db is not None and (rank() if own_group else dist.get_rank()) == 0
    if world == 1:
        record = train(settings, cell, task)
    else:
        if settings.batch_size % world:
            raise ScalingError(f"batch size {settings.batch_size} does not divide over {world} ranks; launch a "
                               "number of processes that divides it")
        if parallel == "fsdp" and cell.parameterization in PEERS:
            raise ScalingError(f"{cell.parameterization} builds its own optimizer, which FSDP2's sharded "
                               "parameters would orphan; use --parallel ddp")
        if parallel == "fsdp" and optimizer_spec(cell.optimizer).family == "muon":
            raise ScalingError("Muon orthogonalizes whole matrices and FSDP2 shards them; use --parallel ddp")
        device = _device()
        if own_group:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        try:
            record = _train_parallel(settings, cell, task, device, parallel)
        finally:
            if own_group:
                dist.destroy_process_group()
    if writes:
        assert db is not None
        with open_existing(db) as store:
            store.record(record)
    return record


def _device() -> torch.device:
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
        return device
    return torch.device("cpu")


def _train_parallel(settings: RunSettings, cell: Cell, task: Task, device: torch.device,
                    parallel: Parallel) -> RunRecord:
    """One rank's share of the run (the process group is up)."""
    start = time.perf_counter()
    me, world = dist.get_rank(), dist.get_world_size()
    model, optimizer, loss_fn = wrap(settings, cell, task, device, parallel)
    trajectory = run_steps(settings, model, optimizer, loss_fn,
                           shard_batches(training_batches(settings, cell, task.data), me, world),
                           task.data.steps_per_epoch(settings.batch_size), device, reduce=mean_over_ranks)
    flops = torch.tensor(trajectory.flops_per_step, dtype=torch.float64, device=device)
    dist.all_reduce(flops)  # every rank counted its slice: the global batch's FLOPs are their sum
    trajectory = replace(trajectory, flops_per_step=float(flops))
    # Every rank evaluates the whole validation set (FSDP2 needs every rank in each forward's all-gather).
    val_loss = math.nan if trajectory.diverged else evaluate(model, task.data, loss_fn, device)
    return trajectory.record(cell, settings, val_loss, time.perf_counter() - start)


def wrap(settings: RunSettings, cell: Cell, task: Task, device: torch.device,
         parallel: Parallel) -> tuple[nn.Module, torch.optim.Optimizer, Any]:
    """The run's model wrapped for data parallelism, its optimizer over the wrapped parameters, its loss.

    The plan's groups are rebuilt from the wrapped model by name (DDP prefixes ``module.``; FSDP2
    swaps every parameter for a sharded ``DTensor``), and must partition its parameters.
    """
    if cell.parameterization in PEERS:  # the peer's own optimizer: DDP keeps the parameters it holds
        model, optimizer, loss_fn = build_run(settings, cell, task, device)
        wrapped: nn.Module = _ddp(model, device)
        check_param_groups(wrapped, optimizer.param_groups)
        return wrapped, optimizer, loss_fn
    model, _, plan = build_model(settings, cell, task, device)
    wrapped = _fully_shard(model, device) if parallel == "fsdp" else _ddp(model, device)
    optimizer = optimizer_for(settings, cell, plan, wrapped)
    check_param_groups(wrapped, optimizer.param_groups)
    return wrapped, optimizer, task.loss


def _ddp(model: nn.Module, device: torch.device) -> nn.Module:
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def _fully_shard(model: nn.Module, device: torch.device) -> nn.Module:
    """FSDP2 over each block of the model (every element of its ``nn.ModuleList``s, as torchtitan
    shards a transformer's layers), then the root, which gathers the rest (embeddings, readout).

    With a parameter shared between modules (a tied readout), the root alone: a block's shard is
    gathered only around the block's own forward, and another module would see it sharded.
    """
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    shared = len(list(model.parameters())) != len(list(model.named_parameters(remove_duplicate=False)))
    blocks = [] if shared else [block for m in model.modules() if isinstance(m, nn.ModuleList) for block in m]
    for block in reversed(blocks):  # inner blocks first: FSDP2 shards bottom-up
        if next(block.parameters(), None) is not None:
            fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)  # in place: the model's class becomes an FSDPModule subclass
    return model


def mean_over_ranks(loss: Tensor) -> Tensor:
    """The mean of a scalar over the ranks: with equal slices, the loss of the whole global batch."""
    total = loss.detach().clone()
    dist.all_reduce(total)
    return total / dist.get_world_size()


def shard_batches(batches: Iterator[Any], me: int, world: int) -> Iterator[Any]:
    """Rank ``me``'s equal contiguous slice of every batch (tensors split along their first dimension)."""
    for batch in batches:
        yield shard(batch, me, world)


def shard(batch: Any, me: int, world: int) -> Any:
    """Rank ``me``'s slice of one batch: a tensor, or a tuple, list or mapping of them."""
    if isinstance(batch, Tensor):
        n = batch.shape[0] if batch.dim() else 0
        if n % world or n == 0:
            raise ScalingError(f"a batch of {n} examples does not split evenly over {world} ranks")
        size = n // world
        return batch.narrow(0, me * size, size)
    if isinstance(batch, tuple | list):
        return [shard(b, me, world) for b in batch] if isinstance(batch, list) else \
            tuple(shard(b, me, world) for b in batch)
    if isinstance(batch, Mapping):
        return {k: shard(v, me, world) for k, v in batch.items()}
    raise ScalingError(f"cannot split a batch of {type(batch).__name__} over ranks; give tensors (or tuples, "
                       "lists or dicts of them)")

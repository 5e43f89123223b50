"""The sweep engine: train the cells a database lacks, resumable, on one process or several.

Finished runs go to a :class:`scaling.sweep.store.SweepStore`; starting a sweep again skips them, so a
sweep killed at any moment loses at most the runs in flight. Two workers started on one database
share the cells (each claims the one it trains); ``worker=(i, n)`` splits them instead. Every input
is checked, and the database's fixed settings compared with the sweep's, before the first run.

The task (model builder, data, loss) is the user's :class:`scaling.sweep.task.Task` or the one the
sweep's names stand for (:func:`scaling.sweep.train.reference_task`).
"""

from __future__ import annotations

import itertools
import json
import math
import multiprocessing as mp
import pickle
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm import tqdm

from scaling.errors import ScalingError
from scaling.optim import OPTIMIZERS, OptimizerSpec, register_optimizer
from scaling.sweep.config import SweepConfig, problems
from scaling.sweep.store import Cell, RunRecord, SweepStore, canonical_scales
from scaling.sweep.task import Task
from scaling.sweep.train import check_task, reference_task, train


def validate(config: SweepConfig, task: Task | None = None) -> None:
    """Raise :class:`ScalingError` listing every problem of ``config`` that needs no training to see."""
    from scaling.data import DATASETS
    from scaling.models import REGISTRY
    from scaling.sweep.task import is_import_spec

    found = problems(config)
    if task is None:
        if config.model not in REGISTRY and not is_import_spec(config.model):
            found.insert(0, f"unknown model {config.model!r}; choose one of: {', '.join(REGISTRY)}, "
                            "or module:function")
        if not config.dataset_name:
            found.insert(1, f"model {config.model!r} has no built-in dataset: name one ({', '.join(DATASETS)}) "
                            "or give module:function returning (x, y), (x, y, x_val, y_val) or a DataLoader")
        elif config.dataset_name not in DATASETS and not is_import_spec(config.dataset_name):
            found.insert(1, f"unknown dataset {config.dataset_name!r}; choose one of: {', '.join(DATASETS)}, "
                            "or module:function")
    if found:
        raise ScalingError("bad sweep configuration:\n  - " + "\n  - ".join(found))


def prepare(config: SweepConfig, task: Task | None = None) -> Task:
    """Check everything before the first run and load the data; return the task to train."""
    validate(config, task)
    if task is None:
        task = reference_task(config)
    check_task(config, config.widths, config.parameterizations, config.scales, task)
    return task


@dataclass(frozen=True)
class SweepSummary:
    """What one call of :func:`run_sweep` did."""

    cells: int  # in the grid
    ran: int  # by this worker
    diverged: int  # of those
    skipped: int  # finished or being trained by other workers meanwhile
    finished: int  # grid cells with a row in the database now
    seconds: float  # summed training time of this worker's runs
    batched: int = 0  # of the runs, trained batched (scaling.sweep.batched)
    how: tuple[str, ...] = ()  # per group of runs: batched or sequential, and why

    def __str__(self) -> str:
        held = f"; {self.skipped} taken by other workers" if self.skipped else ""
        text = (f"ran {self.ran} runs ({self.diverged} diverged) in {self.seconds:.1f} s{held}; "
                f"{self.finished}/{self.cells} cells finished")
        if self.batched:
            text += f"; {self.batched} of the runs batched"
        return "\n".join((text, *(f"  {line}" for line in self.how)))


Batching = Literal["auto", "always", "never"]
"""How the engine trains runs of one width: ``auto`` batches a group of K runs when a short probe
(:func:`scaling.sweep.batched.probe`) finds it faster than K sequential runs, ``always`` whenever the
runs can be batched, ``never`` one by one."""

BATCHINGS: tuple[Batching, ...] = ("auto", "always", "never")
MAX_MODELS = 32  # the most runs batched at once (the benchmark's largest K)


def run_sweep(
    config: SweepConfig,
    db: str | Path,
    *,
    task: Task | None = None,
    cells: Sequence[Cell] | None = None,
    worker: tuple[int, int] = (0, 1),
    threads: int | None = None,
    progress: bool = True,
    batched: Batching = "auto",
    max_models: int = MAX_MODELS,
) -> SweepSummary:
    """Run the cells of ``config`` (or the given ``cells``) not yet in ``db``, shard ``worker = (i, n)``.

    Grid axes may grow between calls; other settings may not. Runs of one row, optimizer and width go
    in groups of up to ``max_models``, each trained batched or one by one as ``batched`` says
    (:data:`Batching`); the summary says which, per group.
    """
    i, n = worker
    if not 0 <= i < n:
        raise ScalingError(f"worker must be i/n with 0 <= i < n, got {i}/{n}")
    if batched not in BATCHINGS:
        raise ScalingError(f"batched must be one of {', '.join(BATCHINGS)}, got {batched!r}")
    if max_models < 1:
        raise ScalingError(f"max_models must be at least 1, got {max_models}")
    task = prepare(config, task)
    before = torch.get_num_threads()  # the caller's: restored, so that a sweep run in-process changes nothing
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _run_sweep(config, db, task, worker, cells, progress, batched, max_models)
    finally:
        torch.set_num_threads(before)


def _run_sweep(config: SweepConfig, db: str | Path, task: Task, worker: tuple[int, int],
               cells: Sequence[Cell] | None, progress: bool, batched: Batching, max_models: int) -> SweepSummary:
    i, n = worker
    grid = list(cells) if cells is not None else config.cells()
    with SweepStore(db) as store:
        check_and_write_meta(store, config, task)
        done = store.done()
        todo = [c for c in grid if _shard(c, n) == i and c not in done]
        chooser = _Chooser(config, task, batched)
        ran = diverged = held = n_batched = 0
        seconds = 0.0
        with tqdm(total=len(todo), desc="sweep", unit="run", disable=not progress, dynamic_ncols=True) as bar:
            for group in groups_of(todo, max_models if batched != "never" else 1):
                together = chooser.batch(group)
                # Batched: claim the group at once; one by one: claim each run just before training it,
                # so that workers sharing the database keep sharing the cells of a long group.
                for part in ([group] if together else [[c] for c in group]):
                    claimed = [c for c in part if store.claim(c)]  # the others: finished or another worker's
                    held += len(part) - len(claimed)
                    bar.update(len(part) - len(claimed))
                    if not claimed:
                        continue
                    try:
                        records = _train_group(config, claimed, task, together and len(claimed) > 1, bar)
                    except BaseException:
                        for c in claimed:
                            store.release(c)
                        raise
                    for record in records:
                        store.record(record)
                    ran += len(records)
                    diverged += sum(r.diverged for r in records)
                    seconds += sum(r.seconds for r in records)
                    n_batched += len(records) if together and len(claimed) > 1 else 0
        finished = len(set(grid) & store.done())
    return SweepSummary(len(grid), ran, diverged, held, finished, seconds, n_batched, tuple(chooser.notes))


def groups_of(cells: Sequence[Cell], max_models: int) -> list[list[Cell]]:
    """``cells`` in groups that can train batched (one :func:`scaling.sweep.batched.group_key`), each of at
    most ``max_models`` and split evenly (34 runs at 32 become 17 + 17), in the order of first appearance."""
    from scaling.sweep.batched import group_key

    if max_models == 1:
        return [[c] for c in cells]
    by_key: dict[Any, list[Cell]] = {}
    for c in cells:
        by_key.setdefault(group_key(c), []).append(c)
    out = []
    for members in by_key.values():
        parts = math.ceil(len(members) / max_models)
        size = math.ceil(len(members) / parts)
        out += [members[j : j + size] for j in range(0, len(members), size)]
    return out


def _train_group(config: SweepConfig, cells: list[Cell], task: Task, together: bool, bar: tqdm) -> list[RunRecord]:
    if together:
        from scaling.sweep.batched import CannotBatchError, train_batched

        bar.set_postfix_str(f"{len(cells)} batched: {cells[0]}")
        try:
            records = train_batched(config, cells, task)
        except CannotBatchError as e:  # found only on building every model (forward multipliers that differ)
            bar.write(f"training one by one: {e}")
        else:
            bar.update(len(records))
            return records
    records = []
    for c in cells:
        bar.set_postfix_str(str(c))
        records.append(train(config, c, task))
        bar.update()
    return records


_PROBED: dict[tuple[str, str, Any, int], tuple[bool, str]] = {}  # auto's decisions, kept for the process


class _Chooser:
    """Decides, per group, batched or sequential, and keeps one line per decision for the summary. Under
    ``auto`` a group's probe (:func:`scaling.sweep.batched.probe`) is measured once per process for its task,
    settings, width and size: a tuner calling :func:`run_cells` for every line search probes once."""

    def __init__(self, config: SweepConfig, task: Task, batched: Batching) -> None:
        self.config, self.task, self.mode = config, task, batched
        self.decided: dict[tuple[Any, int], bool] = {}
        self.notes: list[str] = []

    def batch(self, cells: list[Cell]) -> bool:
        if self.mode == "never" or len(cells) < 2:
            return False
        from scaling.sweep.batched import batch_problem, group_key, probe

        key = (group_key(cells[0]), len(cells))
        if key in self.decided:
            return self.decided[key]
        c = cells[0]
        where = f"{c.parameterization} {c.optimizer} width {c.width}, {len(cells)} runs"
        problem = batch_problem(c)
        if problem:
            together, why = False, f"sequential ({problem})"
        elif self.mode == "always":
            together, why = True, "batched (always)"
        else:
            probed = (self.task.name, json.dumps(self.config.fixed(), sort_keys=True, default=str), *key)
            if probed not in _PROBED:
                measured = probe(self.config, cells, self.task)
                _PROBED[probed] = (measured.worth_it, str(measured))
            together, why = _PROBED[probed]
        self.decided[key] = together
        self.notes.append(f"{where}: {why}")
        return together


def _worker(config: SweepConfig, db: str, index: int, setup: Callable[[], object] | None, task: Task | None,
            cells: Sequence[Cell] | None, optimizers: Sequence[OptimizerSpec], batched: Batching) -> None:
    for spec in optimizers:  # the parent's registry, in case the user registered one of their own
        register_optimizer(spec.name, spec.cls, spec.family, replace=True, **spec.options)
    if setup is not None:
        setup()
    summary = run_sweep(config, db, task=task, cells=cells, threads=1, progress=index == 0, batched=batched)
    if index == 0 and summary.how:
        print("\n".join(summary.how), file=sys.stderr)


def run_parallel(
    config: SweepConfig,
    db: str | Path,
    workers: int = 2,
    setup: Callable[[], object] | None = None,
    *,
    task: Task | None = None,
    cells: Sequence[Cell] | None = None,
    progress: bool = True,
    extend: int = 0,
    metric: str = "train_loss",
    batched: Batching = "auto",
) -> SweepSummary | None:
    """Run a sweep with ``workers`` processes (one torch thread each) sharing the cells by claims.

    One thread per process is the fastest use of a small CPU; the first worker shows the progress
    bar. ``setup`` (a picklable function) runs first in every process, to register a custom row of
    the table, say. A user's ``task`` goes to the workers by pickling: its builder must be a
    module-level function (not a lambda). With one worker this is :func:`run_sweep`.

    ``extend``: up to this many times, every curve whose best ``metric`` sits at the first or last
    LR of its grid gets one more grid step beyond that edge (:func:`beyond_edges`), so that an
    optimum the grid missed is found rather than reported at the edge.

    ``batched``: as in :func:`run_sweep`, in every worker.
    """
    summary = _run_parallel(config, db, workers, setup, task=task, cells=cells, progress=progress, batched=batched)
    grid = list(cells) if cells is not None else config.cells()
    for _ in range(extend):
        with SweepStore(db) as store:
            wanted = set(grid)
            runs = [r for r in store.runs() if r.cell in wanted]
        more = beyond_edges(runs, metric, _grid_step(config))
        if not more:
            break
        grid += more
        summary = _run_parallel(config, db, workers, setup, task=task, cells=more, progress=progress,
                                batched=batched)
    return summary


def _grid_step(config: SweepConfig) -> float:
    xs = config.log2_lrs
    return min((b - a for a, b in itertools.pairwise(xs)), default=1.0)


def beyond_edges(runs: Sequence[RunRecord], metric: str, step: float) -> list[Cell]:
    """For every curve (row, optimizer, constants, width) whose seed-mean best ``metric`` sits at the
    lowest or highest LR it has, the cells one ``step`` beyond that edge, for each of its seeds.

    A diverged run, or a non-finite loss, counts as ``+inf`` (a curve that diverged everywhere gets
    nothing); a curve whose edge optimum borders a diverged neighbour is not extended there.
    """
    groups: dict[tuple[str, str, int, str], dict[float, list[float]]] = {}
    seeds: dict[tuple[str, str, int, str], set[int]] = {}
    for r in runs:
        c = r.cell
        key = (c.parameterization, c.optimizer, c.width, c.scales)
        value = getattr(r, metric)
        groups.setdefault(key, {}).setdefault(c.log2_lr, []).append(
            value if not r.diverged and math.isfinite(value) else math.inf)
        seeds.setdefault(key, set()).add(c.seed)
    out = []
    for key, by_lr in groups.items():
        xs = sorted(by_lr)
        means = [sum(by_lr[x]) / len(by_lr[x]) for x in xs]
        if len(xs) < 2 or not any(math.isfinite(m) for m in means):
            continue
        i = min(range(len(xs)), key=lambda j: means[j])
        if i == 0:
            x = round(xs[0] - step, 6)
        elif i == len(xs) - 1:
            x = round(xs[-1] + step, 6)
        else:
            continue
        out += [Cell(key[0], key[1], key[2], x, s, key[3]) for s in sorted(seeds[key])]
    return out


def _run_parallel(
    config: SweepConfig,
    db: str | Path,
    workers: int,
    setup: Callable[[], object] | None,
    *,
    task: Task | None,
    cells: Sequence[Cell] | None,
    progress: bool,
    batched: Batching,
) -> SweepSummary | None:
    if setup is not None:
        setup()
    validate(config, task)
    if workers <= 1:
        return run_sweep(config, db, task=task, cells=cells, threads=1, progress=progress, batched=batched)
    if task is not None:
        try:
            pickle.dumps(task)
        except (pickle.PicklingError, AttributeError, TypeError) as e:
            raise ScalingError(f"workers={workers} needs a task that pickles (a module-level builder and loss, "
                               f"not a lambda): {e}. Pass workers=1 to train in this process.") from e
    prepare(config, task)  # fail here, once, rather than in every worker
    ctx = mp.get_context("spawn")
    optimizers = [OPTIMIZERS[o] for o in config.optimizers]
    procs = [ctx.Process(target=_worker, args=(config, str(db), i, setup, task, cells, optimizers, batched))
             for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise ScalingError(f"{len(failed)} sweep worker(s) failed (exit codes {failed}); rerun to resume")
    return None


def process_pool(workers: int, *, task: Task | None = None, setup: Callable[[], object] | None = None,
                 optimizers: Sequence[str] = ()) -> ProcessPoolExecutor:
    """Worker processes (spawned, one torch thread each) for :func:`run_cells`: they train runs and
    return the records; the caller alone writes the store. ``task`` (pickled once per worker) and
    ``setup`` as in :func:`run_parallel`; ``optimizers`` names registered optimizers to carry over."""
    specs = [OPTIMIZERS[o] for o in optimizers]
    return ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_init_pool,
                               initargs=(task, setup, specs))


_POOL_TASK: dict[str, Any] = {}


def _init_pool(task: Task | None, setup: Callable[[], object] | None, optimizers: Sequence[OptimizerSpec]) -> None:
    torch.set_num_threads(1)
    for spec in optimizers:
        register_optimizer(spec.name, spec.cls, spec.family, replace=True, **spec.options)
    if setup is not None:
        setup()
    _POOL_TASK["task"] = task


def _train_in_pool(config: SweepConfig, cells: list[Cell]) -> list[RunRecord]:
    task = _POOL_TASK.get("task")
    if task is None:  # a reference task: built once per worker process
        key = json.dumps(config.fixed(), sort_keys=True)
        if key not in _POOL_TASK:
            _POOL_TASK[key] = reference_task(config)
        task = _POOL_TASK[key]
    return _train_job(config, cells, task)


def run_cells(
    config: SweepConfig,
    db: str | Path,
    cells: Sequence[Cell],
    *,
    task: Task | None = None,
    pool: ProcessPoolExecutor | None = None,
    progress: bool = False,
    batched: Batching = "auto",
) -> list[RunRecord]:
    """Make sure ``cells`` (any cells, not only ``config``'s grid) are in ``db``; return their records
    in the order asked. Only the missing ones are trained, in this process or on ``pool``
    (:func:`process_pool`), and each is committed as it finishes: a cache of runs that a tuner, say,
    fills a few points at a time, killed and resumed like a sweep. ``batched`` as in :func:`run_sweep`
    (a batched group is one job of the pool)."""
    task = prepare(config, task)
    with SweepStore(db) as store:
        check_and_write_meta(store, config, task)
        have = store.done()
        missing = [c for c in dict.fromkeys(cells) if c not in have]
        chooser = _Chooser(config, task, batched)
        jobs = []
        for group in groups_of(missing, MAX_MODELS if batched != "never" else 1):
            jobs += [group] if chooser.batch(group) else [[c] for c in group]
        with tqdm(total=len(missing), desc="runs", unit="run", disable=not progress or not missing) as bar:
            if pool is None:
                done: Iterable[list[RunRecord]] = (_train_job(config, job, task) for job in jobs)
            else:
                futures = [pool.submit(_train_in_pool, config, job) for job in jobs]
                done = (f.result() for f in as_completed(futures))
            for records in done:
                for record in records:
                    store.record(record)
                bar.update(len(records))
        by_cell = {r.cell: r for r in store.runs()}
    return [by_cell[c] for c in cells]


def _train_job(config: SweepConfig, cells: list[Cell], task: Task) -> list[RunRecord]:
    """One run, or a group the chooser batched (one by one if it turns out it cannot be)."""
    if len(cells) == 1:
        return [train(config, cells[0], task)]
    from scaling.sweep.batched import CannotBatchError, train_batched

    try:
        return train_batched(config, cells, task)
    except CannotBatchError:
        return [train(config, c, task) for c in cells]


def cell(config: SweepConfig, parameterization: str, optimizer: str, width: int, log2_lr: float, seed: int,
         scales: Any = None) -> Cell:
    """A cell of ``config``'s kind with its values normalized as the grid's are (log2 LR rounded)."""
    return Cell(parameterization.lower(), optimizer.lower(), int(width), round(float(log2_lr), 6), int(seed),
                canonical_scales(scales))


def _shard(cell: Cell, n: int) -> int:
    """A stable shard of a cell (a hash: every worker gets a mix of widths)."""
    key = tuple(cell) if cell.scales else tuple(cell)[:5]  # cells without constants keep their version-1 shard
    return zlib.crc32(repr(key).encode()) % n


def check_and_write_meta(store: SweepStore, config: SweepConfig, task: Task) -> None:
    """Refuse a database of another sweep; then record this sweep's settings and provenance."""
    meta = store.meta()
    new = json.loads(json.dumps(config.fixed()))
    if "fixed" in meta:
        old = json.loads(meta["fixed"])
        diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if diff:
            changes = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
            raise ScalingError(f"{store.path} holds a sweep with other settings ({changes}); only the grid "
                               "axes may change when resuming. Use a new --db path or the same settings.")
    store.set_meta({
        "fixed": new,
        "config": config.to_dict(),
        "git_revision": git_revision(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "dataset_info": {k: str(v) for k, v in task.info.items()},
    })


def read_config(store: SweepStore) -> SweepConfig:
    """The configuration last used with a database."""
    meta = store.meta()
    if "config" not in meta:
        raise ScalingError(f"{store.path} holds no sweep configuration (no sweep was started on it)")
    return SweepConfig.from_dict(json.loads(meta["config"]))


def git_revision() -> str:
    """The package's git commit (``+dirty`` with uncommitted changes), or ``unknown``."""
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")

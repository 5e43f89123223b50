"""Sweeps past one machine: every cell a Ray task (:func:`run_ray`), and shards merged (:func:`merge`).

With Ray, the driver alone writes the SQLite store: each cell goes to the cluster as one task, its
:class:`RunRecord` comes back, and the driver commits it as one row, as the local engine does. A run's
identity is :func:`scaling.sweep.store.run_id` (a hash of its cell and the sweep's fixed settings),
so a rerun, a second driver or a merge skips what is done; a worker killed mid-run is retried by
Ray (``max_retries``), a killed driver loses only the runs in flight.

Shards run apart (``scaling sweep --worker I/N`` into separate databases, on machines that share no
file) become one database with :func:`merge`: idempotent, and refusing a database of another sweep.

Ray is imported on first use only (``pip install 'scaling[ray]'``); merging needs no Ray.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from scaling.errors import ScalingError
from scaling.optim import OPTIMIZERS, OptimizerSpec, register_optimizer
from scaling.sweep.config import SweepConfig
from scaling.sweep.engine import SweepSummary, check_and_write_meta, prepare
from scaling.sweep.store import Cell, RunRecord, SweepStore, read_database, run_id
from scaling.sweep.task import Task
from scaling.sweep.train import train

# --- Ray: the driver submits, the workers train -----------------------------------------------------


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise ScalingError(f"the Ray backend needs ray ({e}): pip install 'scaling[ray]'") from e
    return ray


def run_ray(
    config: SweepConfig,
    db: str | Path,
    *,
    task: Task | None = None,
    address: str | None = None,
    num_cpus: float = 1,
    num_gpus: float = 0,
    max_retries: int = 3,
    setup: Callable[[], object] | None = None,
    cells: Sequence[Cell] | None = None,
    progress: bool = True,
) -> SweepSummary:
    """Run the cells of ``config`` (or the given ``cells``) not yet in ``db``, each as one Ray task.

    Every task asks for ``num_cpus`` CPUs (its torch thread count, at least 1) and ``num_gpus`` GPUs
    (fractions share one; with any, the run trains on ``cuda``); a task whose worker dies is retried
    up to ``max_retries`` times. The task (model builder, data, loss) goes to the object store once
    and is unpickled once per worker process (cloudpickle: lambdas work; a builder imported from a
    module must be importable on the workers). ``setup`` runs here and once per worker process
    before its first run, to register a custom optimizer or row, say.

    ``address``: a running cluster (``"auto"``, ``"HOST:6379"``, ``"ray://HOST:10001"``); unset, a
    Ray this process started already is used as it is, else a local one is started and shut down at
    the end. A run that raises (a bug, not a crash) ends the sweep with a :class:`ScalingError`
    naming its cell, after the runs finished so far are stored; rerunning resumes.
    """
    ray = _import_ray()
    if num_cpus < 0 or num_gpus < 0 or max_retries < 0:
        raise ScalingError(f"num_cpus, num_gpus and max_retries must be >= 0, got {num_cpus}, {num_gpus}, "
                           f"{max_retries}")
    if ray.is_initialized() and address is not None:
        raise ScalingError(f"Ray is running in this process already; pass no address (got {address!r}) to use "
                           "it, or call ray.shutdown() first")
    if setup is not None:
        setup()  # here too: it may register what the checks look up
    task = prepare(config, task)
    grid = list(dict.fromkeys(cells)) if cells is not None else config.cells()
    with SweepStore(db) as store:
        check_and_write_meta(store, config, task)
        done = store.done()
        todo = [c for c in grid if c not in done]
        ran = diverged = skipped = 0
        seconds = 0.0
        if todo:
            started = not ray.is_initialized()
            if started:
                _init(ray, address)
            try:
                jobs = _Jobs(ray, config, task, setup, num_cpus, num_gpus, max_retries)
                with tqdm(total=len(todo), desc="sweep (ray)", unit="run", disable=not progress,
                          dynamic_ncols=True) as bar:

                    def store_run(record: RunRecord, where: str) -> None:
                        nonlocal ran, diverged, skipped, seconds
                        if store.record(record, worker=where):
                            ran, diverged, seconds = ran + 1, diverged + record.diverged, seconds + record.seconds
                        else:  # another driver stored this run meanwhile
                            skipped += 1
                        bar.set_postfix_str(str(record.cell))
                        bar.update()

                    jobs.run(todo, store_run)
            finally:
                if started:
                    ray.shutdown()
        finished = len(set(grid) & store.done())
    return SweepSummary(len(grid), ran, diverged, skipped, finished, seconds)


def _init(ray: Any, address: str | None) -> None:
    try:
        if address is None:
            ray.init(include_dashboard=False)
        else:
            ray.init(address=address)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = f"the Ray cluster at {address!r}" if address else "a local Ray"
        raise ScalingError(f"cannot start {where}: {e}") from e


class _Jobs:
    """The sweep's Ray tasks: submitted at once, handed back as they finish."""

    def __init__(self, ray: Any, config: SweepConfig, task: Task, setup: Callable[[], object] | None,
                 num_cpus: float, num_gpus: float, max_retries: int) -> None:
        self.ray = ray
        try:
            ref = ray.put(task)
        except (TypeError, AttributeError, ValueError) as e:  # what pickling raises on, say, an open file
            raise ScalingError(f"the task must pickle (cloudpickle) to reach the Ray workers: {e}") from e
        optimizers = [OPTIMIZERS[o] for o in config.optimizers]  # the driver's registry, for the workers
        device = "cuda" if num_gpus > 0 else "cpu"
        # The reference rides in a list, so Ray passes it unresolved: a worker fetches the task once, not per run.
        self.args = (config, uuid.uuid4().hex, [ref], setup, optimizers, max(1, int(num_cpus)), device)
        self.remote = ray.remote(_train_on_worker)
        self.options = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_retries": max_retries}
        self.max_retries = max_retries

    def run(self, cells: Sequence[Cell], done: Callable[[RunRecord, str], None]) -> None:
        """Submit a task per cell, and call ``done(record, worker)`` as each finishes. On a failed run: the
        runs finished meanwhile are passed on, the rest cancelled, and :class:`ScalingError` raised."""
        ray = self.ray
        pending: dict[Any, Cell] = {}
        try:
            for cell in cells:
                pending[self.remote.options(name=f"train {cell}", **self.options).remote(cell, *self.args)] = cell
            while pending:
                ready, rest = ray.wait(list(pending), num_returns=1)
                if rest:  # and whatever else has finished by now
                    ready += ray.wait(rest, num_returns=len(rest), timeout=0)[0]
                failure: ScalingError | None = None
                for ref in ready:
                    cell = pending.pop(ref)
                    try:
                        record, where = ray.get(ref)
                    except ray.exceptions.RayError as e:
                        failure = failure or self._failure(cell, e)
                        continue
                    done(record, where)
                if failure is not None:
                    raise failure
        finally:
            for ref in pending:  # after a failed run, or the driver interrupted: stop what still runs
                ray.cancel(ref)

    def _failure(self, cell: Cell, error: Exception) -> ScalingError:
        cause = getattr(error, "cause", None)
        if isinstance(error, self.ray.exceptions.RayTaskError) and cause is not None:  # the run raised
            return ScalingError(f"run {cell} failed: {type(cause).__name__}: {cause}. The runs finished so far "
                                "are stored; fix the task and rerun to resume")
        return ScalingError(f"run {cell} failed on Ray after {self.max_retries} retries: {error}. "
                            "Rerun to resume")


_WORKER_TASKS: dict[str, Task] = {}  # per worker process: the task of each sweep it has set up
_KEEP_TASKS = 4  # a worker serving several drivers keeps the last few tasks, not every one


def _train_on_worker(cell: Cell, config: SweepConfig, sweep: str, task_ref: list[Any],
                     setup: Callable[[], object] | None, optimizers: Sequence[OptimizerSpec], threads: int,
                     device: str) -> tuple[RunRecord, str]:
    """One Ray task: the run of ``cell``, and the worker (``host:pid``) that trained it."""
    if sweep not in _WORKER_TASKS:  # this process's first run of this sweep
        import ray

        for spec in optimizers:
            register_optimizer(spec.name, spec.cls, spec.family, replace=True, **spec.options)
        if setup is not None:
            setup()
        while len(_WORKER_TASKS) >= _KEEP_TASKS:
            del _WORKER_TASKS[next(iter(_WORKER_TASKS))]
        _WORKER_TASKS[sweep] = ray.get(task_ref[0])
    torch.set_num_threads(threads)
    record = train(config, cell, _WORKER_TASKS[sweep], device)
    return record, f"{socket.gethostname()}:{os.getpid()}"


# --- merging shards ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergeSummary:
    """What one call of :func:`merge` did: per input, its rows and how many of them were new to ``db``."""

    db: Path
    inputs: tuple[Path, ...]
    rows: tuple[int, ...]  # per input
    added: tuple[int, ...]  # per input: rows ``db`` lacked
    total: int  # runs in ``db`` now

    def __str__(self) -> str:
        added = sum(self.added)
        lines = [f"merged {len(self.inputs)} database(s) into {self.db}: {added} rows added, "
                 f"{sum(self.rows) - added} already there; {self.total} runs in {self.db.name}"]
        lines += [f"  {p}: {n} rows, {a} added" for p, n, a in zip(self.inputs, self.rows, self.added)]
        return "\n".join(lines)


def merge(db: str | Path, inputs: Sequence[str | Path]) -> MergeSummary:
    """Copy every run of the sweep databases ``inputs`` into ``db`` (created if missing, with the first
    input's meta), one transaction per input, keeping the rows ``db`` has: merging again adds nothing.

    Every input is read (never written) and checked before anything is written: it must be a sweep
    database of this version, of the same sweep as the others and as ``db`` (equal fixed settings, as
    :func:`scaling.sweep.engine.check_and_write_meta` compares them), and each row's stored
    ``run_id`` must be the :func:`scaling.sweep.store.run_id` of its cell; else :class:`ScalingError`
    and ``db`` is left as it was.
    """
    out = Path(db)
    if not inputs:
        raise ScalingError("merge needs at least one input database")
    shards = []
    for path in map(Path, inputs):
        if out.exists() and path.exists() and path.samefile(out):
            raise ScalingError(f"{path} is the output database itself; merge into another --db path")
        meta, rows = read_database(path)
        if "fixed" not in meta:
            raise ScalingError(f"{path} holds no sweep (it was created, but no sweep was started on it)")
        fixed = json.loads(meta["fixed"])
        for row in rows:
            cell = Cell(*row[1:7])
            if row[0] != run_id(fixed, cell):
                raise ScalingError(f"{path}: the run {cell} has run_id {row[0]}, not {run_id(fixed, cell)} as its "
                                   "cell and the sweep's settings give: a row edited by hand or from another "
                                   "sweep; not merged")
        shards.append((path, meta, fixed, rows))
    first, reference = shards[0][0], shards[0][2]
    for path, _, fixed, _ in shards[1:]:
        _same_sweep(reference, fixed, f"{path} holds another sweep than {first}")
    if out.exists():
        meta = read_database(out)[0]
        if "fixed" in meta:
            _same_sweep(json.loads(meta["fixed"]), reference, f"{out} holds another sweep than {first}")
    added = []
    with SweepStore(out) as store:
        if "fixed" not in store.meta():
            store.set_meta({k: v for k, v in shards[0][1].items() if k not in ("schema_version", "merged_from")})
        for _, _, _, rows in shards:
            added.append(store.insert_rows(rows))
        merged = json.loads(store.meta().get("merged_from", "[]"))
        store.set_meta({"merged_from": list(dict.fromkeys([*merged, *(str(s[0].resolve()) for s in shards)]))})
        total = store.count()
    return MergeSummary(out, tuple(s[0] for s in shards), tuple(len(s[3]) for s in shards), tuple(added), total)


def _same_sweep(old: dict[str, Any], new: dict[str, Any], what: str) -> None:
    diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    if diff:
        changes = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
        raise ScalingError(f"{what} ({changes}); merge only shards of one sweep. Nothing was written")

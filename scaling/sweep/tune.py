"""muTransfer's first half: tune the base learning rate and the per-role constants at the base width.

TP-V (Yang et al. 2022, §3 and App. F) tunes a handful of width-independent constants on a small model
and transfers them: the exponent table scales with width, the constants do not
(:class:`scaling.table.RoleScales`). :func:`tune` searches them on any task (your builder and data) at
its base width, within a budget of runs or FLOPs, and writes one JSON file; ``scaling train --constants
FILE --width N`` trains the target once with them (:mod:`scaling.sweep.wide`).

The search is coordinate descent on log2 values, one coordinate at a time: a 1-D search on a grid of
``step`` around the current value (``2 half + 1`` points, extended until the minimum has ``half`` points on
each side), then the vertex of a quadratic through those points (the grid minimum if the fit is not
convex or its vertex leaves the window); at most ``passes`` passes, stopping early when no coordinate
moved by ``tolerance``. Why coordinate descent rather than TP-V's random search: the loss is close to
separable in these coordinates near the optimum (each constant scales one role), and a 1-D search
needs 5-7 runs a coordinate where random search over 8 dimensions needs hundreds to land as close; each
line search is one batch of runs of one width, which :mod:`scaling.sweep.batched` trains at once. The
loss is the seed mean of the sweep's metric (train loss by default); a diverged run counts as +inf.

Every run is a cell of one sweep database (:func:`scaling.sweep.engine.run_cells`: the constants are
part of a run's key), so a killed tuning resumes where it stopped, repeats no finished run, and,
being deterministic, takes the same path again. The budget counts the runs the search *used* (found in
the database or trained), so a resumed search stops where the uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from tqdm import tqdm

from scaling.errors import ScalingError
from scaling.sweep.config import SweepConfig
from scaling.sweep.engine import Batching, cell, git_revision, prepare, process_pool, run_cells
from scaling.sweep.store import RunRecord
from scaling.sweep.task import Task
from scaling.table import ROLES

FORMAT = "scaling-constants/1"
DEFAULT_COORDINATES: tuple[str, ...] = (
    "lr", "lr.output", "lr.input", "init.output", "lr.vector", "lr.finite", "init.input", "init.hidden",
)
"""The base LR (``lr``) and seven constants ``kind.role`` (:class:`scaling.table.RoleScales`): what
``experiments/tune_base.py`` tunes on the MLP."""


def parse_coordinate(name: str) -> tuple[str, str | None]:
    """``"lr"`` (the base learning rate) or ``"kind.role"`` (a :class:`RoleScales` constant)."""
    if name == "lr":
        return "lr", None
    kind, sep, role = name.partition(".")
    if not sep or kind not in ("lr", "init", "multiplier") or role not in ROLES:
        raise ScalingError(f"unknown coordinate {name!r}: give 'lr' (the base LR) or kind.role with kind lr, init "
                           f"or multiplier and role one of {', '.join(ROLES)}")
    if kind == "multiplier" and role in ("vector", "finite"):
        raise ScalingError(f"coordinate {name!r}: multipliers apply to weights (input, hidden, output)")
    return kind, role


@dataclass(frozen=True)
class Search:
    """How :func:`tune` searches: the coordinates, the grid, the passes and the budget.

    ``budget_runs`` / ``budget_flops`` bound what the search uses (runs, or their training FLOPs); the
    search stops before a line search would exceed them and keeps the best point found so far.
    ``keep``: at the end, ``best`` returns the point with the lowest loss among those run (the last
    vertex or an earlier grid point: on a noisy loss a fitted vertex can land above a point already
    seen), ``last`` the state the descent ended in (``experiments/tune_base.py``'s protocol).
    """

    coordinates: tuple[str, ...] = DEFAULT_COORDINATES
    start_log2_lr: float | None = None  # default: -7 for Adam-like optimizers, -2 for SGD
    step: float = 0.5
    half: int = 2
    passes: int = 3
    tolerance: float = 0.25
    bounds: tuple[float, float] = (-12.0, 8.0)  # log2 range of a constant
    lr_bounds: tuple[float, float] = (-20.0, 2.0)  # log2 range of the base LR
    budget_runs: int | None = None
    budget_flops: float | None = None
    keep: Literal["best", "last"] = "best"

    def problems(self) -> list[str]:
        """Every problem of the search that needs no training to see."""
        found = []
        for c in self.coordinates:
            try:
                parse_coordinate(c)
            except ScalingError as e:
                found.append(str(e))
        if not self.coordinates:
            found.append("no coordinates to tune")
        if len(set(self.coordinates)) != len(self.coordinates):
            found.append(f"a coordinate is named twice: {list(self.coordinates)}")
        if not (self.step > 0 and math.isfinite(self.step)):
            found.append(f"step must be positive, got {self.step}")
        if self.keep not in ("best", "last"):
            found.append(f"keep must be 'best' or 'last', got {self.keep!r}")
        if self.half < 1 or self.passes < 1:
            found.append(f"half and passes must be at least 1, got {self.half} and {self.passes}")
        for name in ("budget_runs", "budget_flops"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                found.append(f"{name} must be positive, got {value}")
        return found


@dataclass
class TuneResult:
    """What :func:`tune` found and spent; :meth:`save` writes it as the constants file."""

    config: SweepConfig  # the settings at the base width the runs share
    parameterization: str
    optimizer: str
    log2_lr: float
    log2_scales: dict[str, dict[str, float]]
    loss: float
    runs: int
    flops: float
    seconds: float  # wall time of the search
    stopped: str  # converged, passes, budget
    passes: int = 0
    last_move: float = math.inf  # the largest move (log2) in the last pass
    history: list[dict[str, Any]] = field(default_factory=list)
    db: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    records: list[RunRecord] = field(default_factory=list, repr=False)  # the runs used (not in the file)

    @property
    def train_seconds(self) -> float:
        """The summed training time of the runs used."""
        return sum(r.seconds for r in self.records)

    @property
    def scales(self) -> dict[str, dict[str, float]]:
        """The constants as factors (:meth:`scaling.table.RoleScales.from_dict` reads them)."""
        return factors(self.log2_scales)

    def to_dict(self) -> dict[str, Any]:
        """The constants file's JSON object."""
        return {
            "format": FORMAT,
            "model": self.config.model, "dataset": self.config.dataset_name, "base_width": self.config.base_width,
            "parameterization": self.parameterization, "optimizer": self.optimizer,
            "base_log2_lr": self.log2_lr, "base_lr": 2.0**self.log2_lr,
            "scales": self.scales, "log2_scales": self.log2_scales, "loss": self.loss,
            "seeds": list(self.config.seeds),
            "spent": {"runs": self.runs, "flops": self.flops, "wall_seconds": self.seconds,
                      "train_seconds": self.train_seconds},
            "stopped": self.stopped, "passes": self.passes, "last_move": self.last_move, "db": self.db,
            "settings": self.config.to_dict(),
            "history": self.history, "provenance": self.provenance,
        }

    def save(self, path: str | Path) -> Path:
        """Write the constants file (atomically: a temporary file renamed). The tuning's database is written
        relative to the file's folder, so the two can move together (:func:`load_constants` resolves it)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = self.to_dict()
        if self.db:
            data["db"] = os.path.relpath(Path(self.db).resolve(), path.parent.resolve())
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(_finite(data), indent=2, allow_nan=False))
        tmp.replace(path)
        return path


def _finite(x: Any) -> Any:
    """``x`` with every non-finite float (a diverged point's loss) as ``None``: strict JSON."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def factors(log2_scales: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-role constants as factors, from log2 values."""
    return {kind: {role: 2.0**v for role, v in roles.items()} for kind, roles in log2_scales.items()}


@dataclass(frozen=True)
class Constants:
    """A constants file, read back: the base LR, the per-role constants and the settings they were tuned
    under (:func:`load_constants`)."""

    path: Path
    config: SweepConfig
    parameterization: str
    optimizer: str
    log2_lr: float
    scales: dict[str, dict[str, float]]
    data: dict[str, Any]

    @property
    def db(self) -> Path | None:
        """The tuning's database (relative paths are relative to the constants file's folder)."""
        db = self.data.get("db")
        return (self.path.parent / db) if db else None


def load_constants(path: str | Path) -> Constants:
    """Read a file :meth:`TuneResult.save` wrote; a clear error for anything else."""
    path = Path(path)
    if not path.is_file():
        raise ScalingError(f"no constants file at {path}: run `scaling tune ... --out {path}` first")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ScalingError(f"{path} is not JSON ({e})") from e
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ScalingError(f"{path} is not a constants file of `scaling tune` (format {FORMAT})")
    try:
        config = SweepConfig.from_dict(data["settings"])
        return Constants(path, config, data["parameterization"], data["optimizer"], float(data["base_log2_lr"]),
                         data["scales"], data)
    except (KeyError, TypeError, ValueError) as e:
        raise ScalingError(f"{path}: a constants file with a missing or bad entry ({e})") from e


def default_start(optimizer: str) -> float:
    """Where the base-LR search starts: 2^-7 for Adam-like optimizers, 2^-2 for SGD (typical optima at width
    64 on the reference tasks; the line search walks on from there)."""
    from scaling.optim import optimizer_spec

    return -2.0 if optimizer_spec(optimizer).family == "sgd" else -7.0


class _Evaluator:
    """The tuning loss of points ``(log2 LR, log2 constants)``: seed means over runs of the database."""

    def __init__(self, config: SweepConfig, db: Path, task: Task, search: Search, batched: Batching,
                 flops_per_run: float, bar: tqdm, pool: ProcessPoolExecutor | None) -> None:
        self.config, self.db, self.task, self.search, self.batched = config, db, task, search, batched
        self.flops_per_run, self.bar, self.pool = flops_per_run, bar, pool
        self.used: dict[Any, RunRecord] = {}
        self.best: tuple[float, float, dict[str, dict[str, float]]] = (math.inf, math.nan, {})  # (loss, point)

    def cells(self, log2_lr: float, log2_scales: dict[str, dict[str, float]]) -> list[Any]:
        c = self.config
        return [cell(c, c.parameterizations[0], c.optimizers[0], c.base_width, round(log2_lr, 4), s,
                     factors(log2_scales)) for s in c.seeds]

    def affordable(self, points: Sequence[tuple[float, dict[str, dict[str, float]]]]) -> bool:
        """Whether the runs of ``points`` not used yet fit in what is left of the budget."""
        new = {c for p in points for c in self.cells(*p)} - set(self.used)
        s = self.search
        if s.budget_runs is not None and len(self.used) + len(new) > s.budget_runs:
            return False
        spent = sum(r.flops for r in self.used.values())
        return s.budget_flops is None or spent + len(new) * self.flops_per_run <= s.budget_flops

    def losses(self, points: Sequence[tuple[float, dict[str, dict[str, float]]]]) -> list[float]:
        per_point = [self.cells(*p) for p in points]
        records = run_cells(self.config, self.db, [c for cs in per_point for c in cs], task=self.task,
                            pool=self.pool, batched=self.batched)
        by_cell = {r.cell: r for r in records}
        out = []
        for cs in per_point:
            rs = [by_cell[c] for c in cs]
            self.used.update((c, by_cell[c]) for c in cs)
            out.append(math.inf if any(r.diverged for r in rs) else float(np.mean([self.metric(r) for r in rs])))
        for (log2_lr, log2_scales), loss in zip(points, out):  # the lowest seed-mean loss of any point run
            if loss < self.best[0] or math.isnan(self.best[1]):
                self.best = (loss, log2_lr, log2_scales)
        self.bar.n = len(self.used)
        self.bar.refresh()
        return out

    def metric(self, r: RunRecord) -> float:
        return float(r.train_loss)


class _OutOfBudgetError(Exception):
    """The next points of a line search do not fit in the budget."""


def line_search(evaluate: Callable[[list[float]], list[float]], x0: float, step: float, half: int, lo: float,
                hi: float, affordable: Callable[[list[float]], bool] = lambda xs: True) -> dict[str, Any]:
    """Minimize a 1-D function on the grid ``x0 + k step`` (within ``[lo, hi]``) until the minimum has
    ``half`` points on each side, then take the quadratic vertex through those ``2 half + 1`` points.
    Raises ``_OutOfBudgetError`` (internal) when the next points are not ``affordable``."""
    pts: dict[float, float] = {}

    def need(center: float) -> list[float]:
        xs = [round(center + d * step, 4) for d in range(-half, half + 1)]
        return [x for x in xs if lo <= x <= hi and x not in pts]

    x0 = round(round(x0 / step) * step, 4)
    todo = need(x0)
    while todo:
        if not affordable(todo):
            raise _OutOfBudgetError
        for x, y in zip(todo, evaluate(todo)):
            pts[x] = y
        xs = sorted(pts)
        xm = xs[int(np.argmin([pts[x] for x in xs]))]
        todo = need(xm)
    xs_arr = np.array(sorted(pts))
    ys_arr = np.array([pts[x] for x in xs_arr])
    i = int(np.argmin(ys_arr))
    xm, ym = float(xs_arr[i]), float(ys_arr[i])
    sel = (np.abs(xs_arr - xm) <= half * step + 1e-9) & np.isfinite(ys_arr)
    x_best, y_best, fitted = xm, ym, False
    if sel.sum() >= 3:
        a, b, c = np.polyfit(xs_arr[sel], ys_arr[sel], 2)
        if a > 0 and xs_arr[sel][0] <= -b / (2 * a) <= xs_arr[sel][-1]:
            x_best, y_best, fitted = float(-b / (2 * a)), float(np.polyval([a, b, c], -b / (2 * a))), True
    return {"x": x_best, "loss": y_best, "grid_x": xm, "grid_loss": ym, "fitted": fitted, "points": len(pts)}


def flops_of_one_run(config: SweepConfig, task: Task) -> float:
    """The training FLOPs of one run at the base width (one step counted, times the steps)."""
    from torch.utils.flop_counter import FlopCounterMode

    from scaling.sweep.train import _step, build_run

    c = cell(config, config.parameterizations[0], config.optimizers[0], config.base_width, -10.0, config.seeds[0])
    with torch.random.fork_rng(devices=[]):
        model, optimizer, loss_fn = build_run(config, c, task)
        x, y = next(task.data.batches(config.batch_size, torch.Generator().manual_seed(0)))
        with FlopCounterMode(display=False) as counter:
            _step(model, optimizer, loss_fn, x, y)
    return float(counter.get_total_flops()) * config.steps


def tune(config: SweepConfig, db: str | Path, *, task: Task | None = None, search: Search = Search(),
         batched: Batching = "auto", workers: int = 1, progress: bool = True,
         log: Callable[[str], object] | None = print) -> TuneResult:
    """Tune the base LR and ``search.coordinates`` of ``config``'s one row and optimizer at its base width.

    ``config`` holds the settings every run shares (model, data, steps, batch size...) and the seeds;
    its ``parameterizations`` and ``optimizers`` must name one each. Every run goes to ``db``. The runs
    of a line search train batched (``batched``, :func:`scaling.sweep.engine.run_sweep`), on ``workers``
    processes (:func:`scaling.sweep.engine.process_pool`; a user's task must then pickle).
    """
    found = search.problems()
    if len(config.parameterizations) != 1 or len(config.optimizers) != 1:
        found.append(f"tune one row and one optimizer at a time, got {list(config.parameterizations)} and "
                     f"{list(config.optimizers)}")
    if found:
        raise ScalingError("bad tuning:\n  - " + "\n  - ".join(found))
    config = replace(config, widths=(config.base_width,))
    task = prepare(config, task)
    per_run = flops_of_one_run(config, task)
    point = len(config.seeds)  # a point is one run per seed
    if search.budget_runs is not None and search.budget_runs < point:
        raise ScalingError(f"a budget of {search.budget_runs} runs is too small: one point costs {point} runs "
                           f"(one per seed)")
    if search.budget_flops is not None and search.budget_flops < point * per_run:
        raise ScalingError(f"a budget of {search.budget_flops:.3g} FLOPs is too small: one point costs "
                           f"{point * per_run:.3g} ({point} runs of {per_run:.3g})")
    say = log or (lambda _: None)
    start = time.perf_counter()
    log2_lr = default_start(config.optimizers[0]) if search.start_log2_lr is None else search.start_log2_lr
    scales: dict[str, dict[str, float]] = {}
    history: list[dict[str, Any]] = []
    stopped, moved = "passes", math.inf
    total = search.budget_runs or (int(search.budget_flops // per_run) if search.budget_flops else None)
    with tqdm(total=total, desc="tune", unit="run", disable=not progress, dynamic_ncols=True) as bar:
        pool = process_pool(workers, task=task, optimizers=config.optimizers) if workers > 1 else None
        ev = _Evaluator(config, Path(db), task, search, batched, per_run, bar, pool)
        try:
            for sweep_pass in range(search.passes):
                moved = 0.0
                for name in search.coordinates:
                    kind, role = parse_coordinate(name)
                    x0 = log2_lr if role is None else scales.get(kind, {}).get(role, 0.0)
                    lo, hi = search.lr_bounds if role is None else search.bounds
                    at = partial(_points, kind, role, log2_lr, scales)
                    found_1d = line_search(lambda xs, at=at: ev.losses(at(xs)), x0, search.step,  # type: ignore[misc]
                                           search.half, lo, hi, lambda xs, at=at: ev.affordable(at(xs)))  # type: ignore[misc]
                    new = round(found_1d["x"], 2)
                    moved = max(moved, abs(new - x0))
                    log2_lr, scales = _set(kind, role, log2_lr, scales, new)
                    history.append({"pass": sweep_pass, "coordinate": name, "from": x0, "to": new,
                                    "loss": found_1d["loss"], "grid_x": found_1d["grid_x"],
                                    "grid_loss": found_1d["grid_loss"], "fitted": found_1d["fitted"],
                                    "points": found_1d["points"], "runs_used": len(ev.used)})
                    say(f"pass {sweep_pass} {name}: {x0:+.2f} -> {new:+.2f}  loss {found_1d['loss']:.4f}")
                if moved < search.tolerance:
                    stopped = "converged"
                    break
            if ev.affordable([(log2_lr, scales)]):
                final = ev.losses([(log2_lr, scales)])[0]
                if search.keep == "best" and ev.best[0] < final:
                    final, log2_lr, scales = ev.best
            else:  # the rounded vertex is a new point the budget cannot pay for: keep the best point run
                stopped, (final, log2_lr, scales) = "budget", ev.best
        except _OutOfBudgetError:
            if math.isnan(ev.best[1]):
                raise ScalingError(f"the budget pays for no line search: the first needs {2 * search.half + 1} "
                                   f"points of {point} runs each; raise the budget or lower half") from None
            stopped = "budget"
            final, log2_lr, scales = ev.best
            say(f"budget reached after {len(ev.used)} runs: keeping the best point found")
        finally:
            if pool is not None:
                pool.shutdown()
    used = list(ev.used.values())
    return TuneResult(config, config.parameterizations[0], config.optimizers[0], log2_lr, scales, final,
                      runs=len(used), flops=sum(r.flops for r in used), seconds=time.perf_counter() - start,
                      stopped=stopped, passes=1 + max((h["pass"] for h in history), default=0), last_move=moved,
                      history=history, db=str(db), records=used,
                      provenance={"git_revision": git_revision(), "torch": torch.__version__,
                                  "date": time.strftime("%Y-%m-%d %H:%M:%S"), "search": asdict(search)})


def _set(kind: str, role: str | None, log2_lr: float, scales: dict[str, dict[str, float]],
         x: float) -> tuple[float, dict[str, dict[str, float]]]:
    """The point with coordinate ``(kind, role)`` set to ``x`` (role None: the base LR)."""
    return (x, scales) if role is None else (log2_lr, _with(scales, kind, role, x))


def _points(kind: str, role: str | None, log2_lr: float, scales: dict[str, dict[str, float]],
            xs: list[float]) -> list[tuple[float, dict[str, dict[str, float]]]]:
    """The points of a line search over coordinate ``(kind, role)``, the others held."""
    return [_set(kind, role, log2_lr, scales, x) for x in xs]


def _with(scales: dict[str, dict[str, float]], kind: str, role: str, x: float) -> dict[str, dict[str, float]]:
    new = {k: dict(v) for k, v in scales.items()}
    new.setdefault(kind, {})[role] = x
    return new

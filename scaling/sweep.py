"""LR x width x seed sweeps: the grid, input checks, the resumable loop and the ``scaling sweep`` command.

A sweep is a :class:`SweepConfig`: a grid of parameterization x optimizer x width x log2 LR x seed,
every cell one :func:`scaling.train.train` run with the same fixed settings (model, data, steps,
batch size, schedule). Finished runs go to a :class:`scaling.store.SweepStore`; starting a sweep again
skips them, so a sweep killed at any moment loses at most the runs in flight. Two workers started on
one database share the cells (each claims the one it trains); ``--worker i/n`` splits them instead.

    scaling sweep --db out/mlp.db --model mlp --widths 64 128 256 512 --log2-lr-range -12 -4 1
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import subprocess
import sys
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from tqdm import tqdm

from scaling.data import DATASETS as DATASET_NAMES
from scaling.data import Dataset, load_dataset
from scaling.errors import ScalingError
from scaling.models import DATASETS, REGISTRY, build
from scaling.plan import parameterize
from scaling.shapes import build_on_meta
from scaling.store import Cell, SweepStore
from scaling.table import PARAMETERIZATIONS, RoleScales, get_parameterization
from scaling.train import OPTIMIZERS, SCHEDULES, Schedule, TrainConfig, train


def log2_grid(start: float, stop: float, step: float = 1.0) -> tuple[float, ...]:
    """``start, start + step, ..., stop`` (inclusive), rounded to 6 decimals so grid points compare equal."""
    if step <= 0 or not all(map(math.isfinite, (start, stop, step))):
        raise ScalingError(f"a log2 LR range needs finite bounds and a positive step, got {start}, {stop}, {step}")
    n = math.floor((stop - start) / step + 1e-9) + 1
    return tuple(round(start + i * step, 6) for i in range(max(n, 0)))


def log2_lrs_of(lrs: Sequence[float]) -> tuple[float, ...]:
    """The log2 grid of explicit learning rates, each of which must be positive."""
    bad = [lr for lr in lrs if not (lr > 0 and math.isfinite(lr))]
    if bad:
        raise ScalingError(f"learning rates must be positive and finite, got {bad}")
    return tuple(round(math.log2(lr), 6) for lr in lrs)


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: the grid axes (tuples) and the settings every run shares. Axes are sorted and deduplicated."""

    model: str = "mlp"
    dataset: str | None = None  # default: the model's own (scaling.models.DATASETS)
    parameterizations: tuple[str, ...] = ("sp", "mup")
    optimizers: tuple[str, ...] = ("adam",)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    base_width: int = 64
    log2_lrs: tuple[float, ...] = log2_grid(-12, -4)
    seeds: tuple[int, ...] = (0,)
    steps: int = 300
    batch_size: int = 128
    schedule: Schedule = "none"
    last_k: int = 50
    weight_decay: float = 0.0
    diverge_factor: float = 100.0
    dataset_kwargs: Mapping[str, Any] = field(default_factory=dict)
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    scales: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # RoleScales as a dict
    zero_readout: bool = False
    eps: float | None = None  # the base Adam epsilon (default: the optimizer's)

    GRID: ClassVar[tuple[str, ...]] = ("parameterizations", "optimizers", "widths", "log2_lrs", "seeds")

    def __post_init__(self) -> None:
        unique = lambda xs: tuple(dict.fromkeys(xs))  # noqa: E731  # keeps order
        object.__setattr__(self, "parameterizations", unique(p.lower() for p in self.parameterizations))
        object.__setattr__(self, "optimizers", unique(o.lower() for o in self.optimizers))
        object.__setattr__(self, "widths", tuple(sorted(set(self.widths))))
        object.__setattr__(self, "log2_lrs", tuple(sorted({round(float(x), 6) for x in self.log2_lrs})))
        object.__setattr__(self, "seeds", tuple(sorted(set(self.seeds))))
        object.__setattr__(self, "dataset_kwargs", dict(self.dataset_kwargs))
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))
        object.__setattr__(self, "scales", {k: dict(v) for k, v in self.scales.items()})

    @property
    def dataset_name(self) -> str:
        """The dataset the runs read."""
        return self.dataset or DATASETS.get(self.model, "?")

    def cells(self) -> list[Cell]:
        """The grid, widths innermost: consecutive runs cost about the same on average, so the ETA holds."""
        return [
            Cell(p, o, w, x, s)
            for s in self.seeds
            for p in self.parameterizations
            for o in self.optimizers
            for x in self.log2_lrs
            for w in self.widths
        ]

    def train_config(self, cell: Cell) -> TrainConfig:
        """The training run of one cell."""
        return TrainConfig(
            model=self.model, width=cell.width, base_width=self.base_width, lr=cell.lr,
            parameterization=cell.parameterization, optimizer=cell.optimizer, seed=cell.seed,
            steps=self.steps, batch_size=self.batch_size, schedule=self.schedule, last_k=self.last_k,
            weight_decay=self.weight_decay, diverge_factor=self.diverge_factor, dataset=self.dataset_name,
            dataset_kwargs=self.dataset_kwargs, model_kwargs=self.model_kwargs,
            scales=self.scales, zero_readout=self.zero_readout, eps=self.eps,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the dataset resolved)."""
        return {**asdict(self), "dataset": self.dataset_name}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SweepConfig:
        """The inverse of :meth:`to_dict` (lists become tuples; unknown keys are an error)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ScalingError(f"unknown sweep settings {sorted(unknown)}; known: {sorted(names)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**values)

    def fixed(self) -> dict[str, Any]:
        """The settings every run of the database must share (all but the grid axes)."""
        return {k: v for k, v in self.to_dict().items() if k not in self.GRID}


def default_config(model: str = "mlp", **overrides: Any) -> SweepConfig:
    """A sensible sweep of a reference model: the MNIST-1D reference task for ``mlp``."""
    per_model: dict[str, dict[str, Any]] = {
        "question": {"widths": (32, 64, 128, 256), "base_width": 32, "batch_size": 64},
        "funnel": {"widths": (32, 64, 128, 256), "base_width": 32, "batch_size": 64},
        "gpt": {"widths": (32, 64, 128, 256), "base_width": 32, "batch_size": 16, "log2_lrs": log2_grid(-14, -4)},
    }
    return SweepConfig(model=model, **{**per_model.get(model, {}), **overrides})


def quick_config(model: str = "mlp", **overrides: Any) -> SweepConfig:
    """A sweep that runs in a minute or two on a 2-core CPU: three widths, every other LR, 100 steps."""
    full = default_config(model)
    quick = {"widths": full.widths[:3], "log2_lrs": full.log2_lrs[::2], "steps": 100, "last_k": 20}
    return replace(full, **{**quick, **overrides})


def validate(config: SweepConfig) -> None:
    """Raise :class:`ScalingError` listing every problem of ``config`` that needs no data to see."""
    problems = []
    if config.model not in REGISTRY:
        problems.append(f"unknown model {config.model!r}; choose one of: {', '.join(REGISTRY)}")
    if config.dataset_name not in DATASET_NAMES:
        problems.append(f"unknown dataset {config.dataset_name!r}; choose one of: {', '.join(DATASET_NAMES)}")
    problems += [f"empty grid: no {axis} given" for axis in config.GRID if not getattr(config, axis)]
    problems += [f"unknown parameterization {p!r}; choose one of: {', '.join(PARAMETERIZATIONS)}"
                 for p in config.parameterizations if p not in PARAMETERIZATIONS and not _known_alias(p)]
    problems += [f"unknown optimizer {o!r}; choose one of: {', '.join(OPTIMIZERS)}"
                 for o in config.optimizers if o not in OPTIMIZERS]
    if config.schedule not in SCHEDULES:
        problems.append(f"unknown schedule {config.schedule!r}; choose one of: {', '.join(SCHEDULES)}")
    if [x for x in config.log2_lrs if not math.isfinite(x)]:
        problems.append(f"log2 learning rates must be finite (lr > 0), got {list(config.log2_lrs)}")
    if config.base_width < 1:
        problems.append(f"base width must be positive, got {config.base_width}")
    narrow = [w for w in config.widths if w < config.base_width]
    if narrow:
        problems.append(f"widths {narrow} are below the base width {config.base_width}: muP scales up from the "
                        "base, so pass --base-width at most the smallest width")
    for name, lower in (("steps", 1), ("batch_size", 1), ("last_k", 1)):
        if getattr(config, name) < lower:
            problems.append(f"{name} must be at least {lower}, got {getattr(config, name)}")
    if config.last_k > config.steps:
        problems.append(f"last_k ({config.last_k}) cannot exceed steps ({config.steps})")
    if not config.diverge_factor > 1:
        problems.append(f"diverge_factor must exceed 1, got {config.diverge_factor}")
    if config.eps is not None and not (config.eps >= 0 and math.isfinite(config.eps)):
        problems.append(f"eps must be a finite number >= 0, got {config.eps}")
    try:
        RoleScales.from_dict(config.scales)
    except (ScalingError, TypeError, ValueError, AttributeError) as e:
        problems.append(f"bad scales {dict(config.scales)!r}: {e}")
    if problems:
        raise ScalingError("bad sweep configuration:\n  - " + "\n  - ".join(problems))


def _known_alias(name: str) -> bool:
    try:
        get_parameterization(name)
    except ScalingError:
        return False
    return True


def prepare(config: SweepConfig) -> Dataset:
    """Check everything before the first run and load the data: every width builds and parameterizes
    (on the meta device, free), and the base model reads a batch of the dataset."""
    validate(config)
    try:
        data = load_dataset(config.dataset_name, **config.dataset_kwargs)
    except TypeError as e:
        raise ScalingError(f"bad dataset options {dict(config.dataset_kwargs)} for {config.dataset_name!r}: {e}") from e
    kwargs = dict(config.model_kwargs)
    for width, p in ((w, p) for w in config.widths for p in config.parameterizations):
        try:
            model = build_on_meta(lambda w=width: build(config.model, w, **kwargs))  # type: ignore[misc]
        except (TypeError, ValueError) as e:
            raise ScalingError(f"cannot build {config.model!r} at width {width}: {e}") from e
        try:
            parameterize(model, base=lambda: build(config.model, config.base_width, **kwargs),
                         delta=lambda: build(config.model, 2 * config.base_width, **kwargs), parameterization=p,
                         scales=RoleScales.from_dict(config.scales), zero_readout=config.zero_readout)
        except ScalingError as e:
            raise ScalingError(f"{p} at width {width}: {e}") from e
    x = data.validation()[0][0]
    # Building the first optimizer imports torch._dynamo (1-2 s): do it now, not inside the first run's clock.
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    try:
        with torch.no_grad():
            build(config.model, config.base_width, **kwargs)(x[:2])
    except (RuntimeError, IndexError, ValueError) as e:
        raise ScalingError(f"model {config.model!r} cannot read dataset {config.dataset_name!r}: {e}") from e
    return data


@dataclass(frozen=True)
class SweepSummary:
    """What one call of :func:`run_sweep` did."""

    cells: int  # in the grid
    ran: int  # by this worker
    diverged: int  # of those
    skipped: int  # finished or being trained by other workers meanwhile
    finished: int  # grid cells with a row in the database now
    seconds: float  # summed training time of this worker's runs

    def __str__(self) -> str:
        held = f"; {self.skipped} taken by other workers" if self.skipped else ""
        return (f"ran {self.ran} runs ({self.diverged} diverged) in {self.seconds:.1f} s{held}; "
                f"{self.finished}/{self.cells} cells finished")


def run_sweep(
    config: SweepConfig,
    db: str | Path,
    *,
    worker: tuple[int, int] = (0, 1),
    threads: int | None = None,
    progress: bool = True,
) -> SweepSummary:
    """Run the cells of ``config`` not yet in the database ``db`` (shard ``worker = (i, n)`` of them).

    Every input is checked, and the database's schema version and fixed settings compared with
    ``config``, before the first run. Grid axes may grow between calls; other settings may not.
    """
    i, n = worker
    if not 0 <= i < n:
        raise ScalingError(f"worker must be i/n with 0 <= i < n, got {i}/{n}")
    data = prepare(config)
    if threads is not None:
        torch.set_num_threads(threads)
    with SweepStore(db) as store:
        _check_and_write_meta(store, config, data)
        grid = config.cells()
        done = store.done()
        todo = [c for c in grid if _shard(c, n) == i and c not in done]
        ran = diverged = held = 0
        seconds = 0.0
        with tqdm(total=len(todo), desc="sweep", unit="run", disable=not progress, dynamic_ncols=True) as bar:
            for cell in todo:
                bar.set_postfix_str(str(cell))
                if not store.claim(cell):  # finished or being trained by another worker
                    held += 1
                    bar.update()
                    continue
                try:
                    result = train(config.train_config(cell), data)
                except BaseException:
                    store.release(cell)
                    raise
                store.record(cell, result)
                ran, diverged, seconds = ran + 1, diverged + result.diverged, seconds + result.seconds
                bar.update()
        finished = len(set(grid) & store.done())
    return SweepSummary(len(grid), ran, diverged, held, finished, seconds)


def _worker(config: SweepConfig, db: str, index: int, setup: Callable[[], object] | None) -> None:
    if setup is not None:
        setup()
    run_sweep(config, db, threads=1, progress=index == 0)


def run_parallel(
    config: SweepConfig, db: str | Path, workers: int = 2, setup: Callable[[], object] | None = None
) -> SweepSummary | None:
    """Run a sweep with ``workers`` processes (one torch thread each) sharing the cells by claims.

    One thread per process is the fastest use of a small CPU (see :mod:`scaling.train`); the first
    worker shows the progress bar. ``setup`` (a picklable function) runs first in every process, to
    register a custom row of the table, say. With one worker this is :func:`run_sweep`.
    """
    if setup is not None:
        setup()
    validate(config)
    if workers <= 1:
        return run_sweep(config, db, threads=1)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(config, str(db), i, setup)) for i in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [p.exitcode for p in procs if p.exitcode]
    if failed:
        raise ScalingError(f"{len(failed)} sweep worker(s) failed (exit codes {failed}); rerun to resume")
    return None


def _shard(cell: Cell, n: int) -> int:
    """A stable shard of a cell (a hash: every worker gets a mix of widths)."""
    return zlib.crc32(repr(tuple(cell)).encode()) % n


def _check_and_write_meta(store: SweepStore, config: SweepConfig, data: Dataset) -> None:
    meta = store.meta()
    if "fixed" in meta:
        old = json.loads(meta["fixed"])
        new = json.loads(json.dumps(config.fixed()))
        diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        if diff:
            changes = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
            raise ScalingError(f"{store.path} holds a sweep with other settings ({changes}); only the grid "
                               "axes may change when resuming. Use a new --db path or the same settings.")
    store.set_meta({
        "fixed": config.fixed(),
        "config": config.to_dict(),
        "git_revision": git_revision(),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "dataset_info": {k: str(v) for k, v in data.info.items()},
    })


def read_config(store: SweepStore) -> SweepConfig:
    """The configuration last used with a database."""
    meta = store.meta()
    if "config" not in meta:
        raise ScalingError(f"{store.path} holds no sweep configuration (no sweep was started on it)")
    return SweepConfig.from_dict(json.loads(meta["config"]))


def git_revision() -> str:
    """The package's git commit (``+dirty`` with uncommitted changes), or ``unknown``."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("+dirty" if dirty else "")


# --- the `scaling sweep` command -------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scaling sweep``: one option per :class:`SweepConfig` field, and how to run."""
    parser.add_argument("--db", required=True, help="SQLite database: created if missing, resumed if not")
    g = parser.add_argument_group("sweep (defaults: scaling.sweep.default_config, or quick_config with --quick)")
    g.add_argument("--quick", action="store_true", help="a small sweep that runs in a minute or two")
    g.add_argument("--model", help=f"reference model: {', '.join(REGISTRY)} (default mlp)")
    g.add_argument("--dataset", help=f"{', '.join(DATASET_NAMES)} (default: the model's own)")
    g.add_argument("--dataset-option", action="append", metavar="KEY=VALUE", help="dataset argument (repeat)")
    g.add_argument("--model-option", action="append", metavar="KEY=VALUE", help="model argument (repeat)")
    g.add_argument("--parameterizations", nargs="*", metavar="P", help=f"of {', '.join(PARAMETERIZATIONS)}")
    g.add_argument("--optimizers", nargs="*", metavar="OPT", help=f"of {', '.join(OPTIMIZERS)}")
    g.add_argument("--widths", nargs="*", type=int, metavar="W")
    g.add_argument("--base-width", type=int)
    g.add_argument("--log2-lrs", nargs="*", type=float, metavar="X", help="base LRs 2^X")
    g.add_argument("--log2-lr-range", nargs=3, type=float, metavar=("START", "STOP", "STEP"),
                   help="base LRs 2^START ... 2^STOP (inclusive)")
    g.add_argument("--lrs", nargs="*", type=float, metavar="LR", help="base LRs, given directly")
    g.add_argument("--seeds", nargs="*", type=int, metavar="S")
    g.add_argument("--steps", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--schedule", help=f"{', '.join(SCHEDULES)}")
    g.add_argument("--last-k", type=int, help="the train loss is the mean of the last k steps")
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--diverge-factor", type=float, help="diverged: loss above this times the first loss")
    g.add_argument("--scales", type=json.loads, metavar="JSON",
                   help='per-role constants tuned at base width: {"lr": {"input": 2}, "init": {"output": 0.5}}')
    g.add_argument("--zero-readout", action="store_true", default=None, help="zero-initialize the readout")
    g.add_argument("--eps", type=float, help="base Adam epsilon (default 1e-8, scaled per layer by the table)")
    r = parser.add_argument_group("running and reporting")
    r.add_argument("--worker", default="0/1", metavar="I/N", help="run only shard I of N (default: share all)")
    r.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1: fastest on "
                   "small models; run one worker per core)")
    r.add_argument("--report-only", action="store_true", help="run nothing: analyze the database")
    r.add_argument("--figure", metavar="DIR", help="save the transfer figure (PNG) in DIR")
    r.add_argument("--pdf", action="store_true", help="also save the figure as PDF")
    r.add_argument("--metric", default="train_loss", choices=("train_loss", "val_loss"))
    r.add_argument("--quiet", action="store_true", help="no progress bar and no table")


def config_from_args(args: argparse.Namespace) -> SweepConfig:
    """The :class:`SweepConfig` the command line asks for: a preset, then every option given."""
    preset = quick_config if args.quick else default_config
    config = preset(args.model or "mlp")
    overrides: dict[str, Any] = {}
    for f in fields(SweepConfig):
        value = getattr(args, f.name, None)
        if value is not None and f.name != "log2_lrs":
            overrides[f.name] = tuple(value) if isinstance(value, list) else value
    lrs: list[float] = []
    if args.log2_lrs is not None:
        lrs += args.log2_lrs
    if args.log2_lr_range is not None:
        lrs += log2_grid(*args.log2_lr_range)
    if args.lrs is not None:
        lrs += log2_lrs_of(args.lrs)
    if args.log2_lrs is not None or args.log2_lr_range is not None or args.lrs is not None:
        overrides["log2_lrs"] = tuple(lrs)
    for name, options in (("dataset_kwargs", args.dataset_option), ("model_kwargs", args.model_option)):
        if options:
            overrides[name] = dict(_key_value(o) for o in options)
    return replace(config, **overrides)


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ScalingError(f"options are KEY=VALUE, got {text!r}")
    try:
        return key.replace("-", "_"), json.loads(value)
    except json.JSONDecodeError:
        return key.replace("-", "_"), value


def _parse_worker(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ScalingError(f"--worker takes I/N (shard I of N, from 0), got {text!r}") from None
    return i, n


def run(args: argparse.Namespace) -> int:
    """``scaling sweep``: run (or resume) the sweep, then print its analysis and save the figure."""
    from scaling.analysis import analyze, format_table
    from scaling.store import open_existing

    try:
        if not args.report_only:
            summary = run_sweep(config_from_args(args), args.db, worker=_parse_worker(args.worker),
                                threads=args.threads, progress=not args.quiet)
            print(summary)
        if args.quiet and not args.figure:
            return 0
        with open_existing(args.db) as store:
            runs = store.runs()
        analysis = analyze(runs, args.metric)
        if not args.quiet:
            print(format_table(analysis))
        if args.figure:
            from scaling.transfer_plot import save_transfer_figure  # matplotlib: only when drawing

            for path in save_transfer_figure(args.db, args.figure, metric=args.metric, pdf=args.pdf,
                                             analysis=analysis):
                print(f"wrote {path}")
    except ScalingError as e:
        print(f"scaling sweep: error: {e}", file=sys.stderr)
        return 2
    return 0

"""``lr_sweep``: an LR x width x seed sweep of your own model, resumable, analyzed and plotted.

>>> result = lr_sweep(lambda w: MyNet(w), (x, y), db="out/mynet.db", widths=(64, 128, 256, 512),
...                   log2_lrs=log2_grid(-12, -4), parameterizations=("sp", "mup"), steps=300)
>>> print(result.table())          # optimum per width, regret, drift with its bootstrap interval
>>> result.plot("out/mynet")       # the transfer figure, out/mynet.png

The same engine, store, analysis and figure as ``scaling sweep``: kill it and call it again, and it
trains only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from scaling.optim import OPTIMIZERS, optimizer_spec, register_optimizer
from scaling.sweep.analysis import Analysis, Metric, analyze, format_table
from scaling.sweep.config import SweepConfig, log2_grid
from scaling.sweep.engine import Batching, run_parallel
from scaling.sweep.store import RunRecord, open_existing
from scaling.sweep.task import Task, cross_entropy


@dataclass
class SweepResult:
    """A finished (or resumed) sweep: its config, database, runs and their analysis."""

    config: SweepConfig
    db: Path
    runs: list[RunRecord]
    analysis: Analysis
    figures: list[Path] = field(default_factory=list)

    def table(self) -> str:
        """Optima, regrets and drifts as text (:func:`scaling.sweep.analysis.format_table`)."""
        return format_table(self.analysis)

    def plot(self, path: str | Path, *, pdf: bool = False, title: str | None = None) -> list[Path]:
        """Save the transfer figure as ``path.png`` (and ``.pdf``); returns the files."""
        from scaling.sweep.figures import plot_transfer

        self.figures = plot_transfer(self.analysis, path, title=title or self.config.model,
                                     formats=("png", "pdf") if pdf else ("png",))
        return self.figures


def optimizer_name(optimizer: str | type) -> str:
    """The registry name of an optimizer, registering a ``torch.optim`` class on first use."""
    if isinstance(optimizer, str):
        return optimizer_spec(optimizer).name
    spec = optimizer_spec(optimizer)
    if spec.name not in OPTIMIZERS:
        register_optimizer(spec.name, spec.cls, spec.family)
    return spec.name


def lr_sweep(
    builder: Callable[..., nn.Module],
    data: Any,
    *,
    db: str | Path,
    widths: Sequence[int],
    base_width: int | None = None,
    log2_lrs: Sequence[float] = log2_grid(-12, -4),
    parameterizations: Sequence[str] = ("sp", "mup"),
    optimizer: str | type = "adam",
    loss: Callable[[Any, Any], Tensor] = cross_entropy,
    seeds: Sequence[int] = (0,),
    scales: Mapping[str, Mapping[str, float]] | Sequence[Mapping[str, Mapping[str, float]]] | None = None,
    name: str = "",
    workers: int = 1,
    progress: bool = True,
    metric: Metric = "train_loss",
    batched: Batching = "auto",
    **settings: Any,
) -> SweepResult:
    """Sweep ``builder``'s model (``width -> nn.Module``, PyTorch's default init) over widths and LRs.

    Args:
        builder: the model at any width (module-level, so it pickles, when ``workers > 1``).
        data: ``(x, y)``, ``(x, y, x_val, y_val)``, a ``DataLoader`` (or a pair of them), or a
            :class:`scaling.data.Dataset`.
        db: the SQLite database of the sweep: created if missing, resumed if not.
        widths, log2_lrs, parameterizations, seeds: the grid (base LR ``2 ** log2_lr``).
        base_width: the width the LR is tuned at (default the narrowest).
        optimizer: a registered name (:data:`scaling.optim.OPTIMIZERS`) or a ``torch.optim`` class.
        loss: ``loss(output, targets)``, default cross-entropy.
        scales: per-role constants (:class:`scaling.table.RoleScales` as a dict), or several as a grid axis.
        name: the task's name in the database (default: the builder's ``module:qualname``).
        workers: processes sharing the cells (one torch thread each).
        metric: what the analysis minimizes, ``train_loss`` or ``val_loss``.
        batched: ``auto`` trains runs of one width as one batched model (:mod:`scaling.sweep.batched`)
            where a short probe finds it faster, ``always`` wherever it can, ``never`` one by one.
        settings: other :class:`scaling.sweep.config.RunSettings` fields (``steps``, ``batch_size``,
            ``schedule``, ``last_k``, ``weight_decay``, ``model_kwargs``, ``zero_readout``, ``eps``...).
    """
    task = Task(builder, data, loss, name=name)
    grid_scales: Sequence[Mapping[str, Mapping[str, float]]]
    if scales is None:
        grid_scales = ({},)
    elif isinstance(scales, Mapping):
        grid_scales = (scales,)
    else:
        grid_scales = tuple(scales)
    config = SweepConfig(model=task.name, dataset=task.data.name, widths=tuple(widths),
                         base_width=base_width or min(widths), log2_lrs=tuple(log2_lrs),
                         parameterizations=tuple(parameterizations), optimizers=(optimizer_name(optimizer),),
                         seeds=tuple(seeds), scales=tuple(grid_scales), **settings)
    run_parallel(config, db, workers, task=task, progress=progress, batched=batched)
    with open_existing(db) as store:
        runs = [r for r in store.runs() if r.cell in set(config.cells())]
    return SweepResult(config, Path(db), runs, analyze(runs, metric))

"""LR-transfer sweeps: a grid of parameterization x optimizer x width x LR x seed, resumable in SQLite.

- :mod:`~scaling.sweep.config`: :class:`RunSettings` (what every run shares), :class:`SweepConfig` (the
  grid), presets and input checks;
- :mod:`~scaling.sweep.task`: :class:`Task`, the model builder, data and loss a sweep trains;
- :mod:`~scaling.sweep.train`: one run, ``(settings, cell) -> RunRecord``;
- :mod:`~scaling.sweep.store`: the SQLite store, one :class:`RunRecord` per finished run;
- :mod:`~scaling.sweep.engine`: training what a database lacks, on one process or several;
- :mod:`~scaling.sweep.batched`: K runs of one width trained as one ``torch.func`` model (the engine's
  ``batched=``);
- :mod:`~scaling.sweep.distributed`: every run a Ray task (:func:`run_ray`), and merging shards (:func:`merge`);
- :mod:`~scaling.sweep.wide`: the wide run, one cell under ``torchrun`` with DDP or FSDP2 (:func:`train_wide`);
- :mod:`~scaling.sweep.tune`: the base LR and per-role constants tuned at base width within a budget
  (:func:`tune`), the first half of muTransfer;
- :mod:`~scaling.sweep.analysis`: optimum per width, drift with a bootstrap interval, regret;
- :mod:`~scaling.sweep.figures`: the transfer figure (matplotlib, imported on first use);
- :mod:`~scaling.sweep.api`: :func:`lr_sweep`, all of it on your own model.
"""

from scaling.sweep.analysis import Analysis, analyze, format_table
from scaling.sweep.api import SweepResult, lr_sweep
from scaling.sweep.batched import train_batched
from scaling.sweep.config import RunSettings, SweepConfig, default_config, log2_grid, log2_lrs_of, quick_config
from scaling.sweep.distributed import merge, run_ray
from scaling.sweep.engine import SweepSummary, read_config, run_cells, run_parallel, run_sweep, validate
from scaling.sweep.store import Cell, RunRecord, SweepStore, open_existing, write_csv
from scaling.sweep.task import Task
from scaling.sweep.train import train
from scaling.sweep.tune import Search, TuneResult, load_constants, tune
from scaling.sweep.wide import train_wide

__all__ = [
    "Analysis", "Cell", "RunRecord", "RunSettings", "Search", "SweepConfig", "SweepResult", "SweepStore",
    "SweepSummary", "Task", "TuneResult", "analyze", "default_config", "format_table", "load_constants", "log2_grid",
    "log2_lrs_of", "lr_sweep", "merge", "open_existing", "quick_config", "read_config", "run_cells", "run_parallel",
    "run_ray", "run_sweep", "train", "train_batched", "train_wide", "tune", "validate", "write_csv",
]

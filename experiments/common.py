"""Plumbing shared by the experiment scripts: where artifacts go, running a sweep on every core, turning an
analysis into flat summary numbers, and saving each figure with its data, config and git revision beside it.

Every script has three sizes (``--smoke`` seconds, for the tests; ``--quick`` a minute or two; the full
run), a ``run`` step that only adds missing runs to its SQLite sweep databases (re-running skips finished
work), and a ``plot`` step that reads the databases and writes figures (PNG and PDF), CSV, ``config.json``
and ``summary.json``. Full runs write to ``experiments/results/<name>/`` (committed: the paper reads
them); ``--quick`` to ``out/quick/<name>/`` and ``--smoke`` to ``out/smoke/<name>/`` (ignored by git).

``summary.json`` is flat: one JSON object whose values are numbers, booleans, strings or null (never
nested), with lower-case keys ``[a-z0-9_]``, so ``experiments/paper_numbers.py`` can turn every key into
a macro. Nested detail (per-run tables, configs) goes to ``details.json``, ``config.json`` and CSV.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from scaling.sweep import SweepConfig, read_config, run_parallel
from scaling.sweep.analysis import Analysis, format_table
from scaling.sweep.engine import git_revision
from scaling.sweep.figures import figure_name, plot_transfer
from scaling.sweep.store import RunRecord, open_existing
from scaling.table import MUP, Parameterization, Power, register_parameterization

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
QUICK = ROOT / "out" / "quick"
SMOKE = ROOT / "out" / "smoke"

Mode = Literal["full", "quick", "smoke"]


def parser(description: str) -> argparse.ArgumentParser:
    """The options every experiment script takes."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a small grid that runs in a minute or two (out/quick/)")
    size.add_argument("--smoke", action="store_true", help="a tiny grid that runs in seconds (out/smoke/; tests)")
    p.add_argument("--workers", type=int, default=2, help="worker processes sharing each sweep (default 2)")
    p.add_argument("--out", type=Path, help="artifact root (default experiments/results/, out/quick/ or out/smoke/)")
    p.add_argument("--plot-only", action="store_true", help="no training: re-analyze and re-plot the data there is")
    return p


def mode_of(args: argparse.Namespace) -> Mode:
    """``full``, ``quick`` or ``smoke``, from the command line."""
    return "smoke" if args.smoke else "quick" if args.quick else "full"


def artifact_dir(name: str, args: argparse.Namespace) -> Path:
    """The folder of one experiment's artifacts, created if needed."""
    default = {"full": RESULTS, "quick": QUICK, "smoke": SMOKE}[mode_of(args)]
    path = Path(args.out if args.out is not None else default) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def provenance() -> dict[str, Any]:
    """What produced an artifact: git revision, versions, the command line and the date."""
    return {
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def write_json(path: Path, obj: Any) -> Path:
    """Write JSON atomically (a temp file renamed), non-finite floats as null."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(_finite(obj), indent=1) + "\n")
    tmp.replace(path)
    return path


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return _finite(obj.item())
    if isinstance(obj, Mapping):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


# --- the research row ------------------------------------------------------------------------------

NOALIGN = "mup-noalign-readout"
NOALIGN_CITATION = (
    "Everett et al. 2024, 'Scaling Exponents Across Parameterizations and Optimizers' (ICML): per-layer "
    "LR exponents without the alignment assumption; for Adam the readout's LR scales like n^-1/2. "
    "Here muP (TP-V Table 3) with only the readout's Adam LR exponent changed from -1 to -1/2."
)


def register_rows() -> None:
    """Register the research row (also in every sweep worker: ``setup`` of run_parallel)."""
    rules = dict(MUP.rules)
    rules["output"] = rules["output"].with_lr("adam", Power(fan_in=-0.5))
    register_parameterization(Parameterization(name=NOALIGN, rules=rules, attention=MUP.attention,
                                               citation=NOALIGN_CITATION), replace_existing=True)


# --- sweeps ------------------------------------------------------------------------------------------


def sweep(config: SweepConfig, db: Path, workers: int, setup: Callable[[], object] | None = None,
          extend: int = 0, metric: str = "train_loss") -> None:
    """Run the cells of ``config`` missing from ``db`` on ``workers`` processes (resumable); ``extend``:
    grid steps added beyond an edge optimum (:func:`scaling.sweep.engine.run_parallel`)."""
    print(f"\n-- {db.name}: {len(config.cells())} cells ({db})", flush=True)
    run_parallel(config, db, workers, setup=setup, extend=extend, metric=metric)


def read_db_config(db: Path) -> SweepConfig:
    """The sweep configuration a database was last run with."""
    with open_existing(db) as store:
        return read_config(store)


def load_runs(db: Path, label: str | None = None) -> list[RunRecord]:
    """Every finished run of a database, its parameterization renamed ``label`` if given (so that two
    databases with the same row, plain and with tuned constants, say, can share one analysis)."""
    with open_existing(db) as store:
        runs = store.runs()
    if label is None:
        return runs
    return [replace(r, cell=r.cell._replace(parameterization=label)) for r in runs]


def merged_config(configs: Sequence[SweepConfig], labels: Sequence[str]) -> SweepConfig:
    """One config standing for several databases in a figure name: the labels as parameterizations and
    the union of their LR grids (settings other than the grid are taken from the first)."""
    lrs = sorted({x for c in configs for x in c.log2_lrs})
    return replace(configs[0], parameterizations=tuple(labels), log2_lrs=tuple(lrs))


def figure_stem(config: SweepConfig, tag: str = "") -> str:
    """:func:`scaling.transfer_plot.figure_name` (the configuration in ASCII), plus a readable tag."""
    name = figure_name(config)
    return f"{name}_{tag}" if tag else name


def save_transfer(analysis: Analysis, out: Path, stem: str, title: str, logy: bool = False,
                  axis: str = "width", xlabel: str = "log2 base learning rate") -> list[str]:
    """The transfer figure as PNG and PDF (``logy``: log loss axis; ``axis``: what the widths are;
    ``xlabel``: what was swept); returns the file names."""
    return [p.name for p in plot_transfer(analysis, out / stem, title=title, logy=logy, formats=("png", "pdf"),
                                          axis=axis, xlabel=xlabel)]


def save_figure(fig: Any, out: Path, stem: str) -> list[str]:
    """Save a matplotlib figure as ``<stem>.png`` and ``<stem>.pdf`` in ``out``, close it, return the names."""
    import matplotlib.pyplot as plt

    names = []
    for fmt in ("png", "pdf"):
        fig.savefig(out / f"{stem}.{fmt}", dpi=150)
        names.append(f"{stem}.{fmt}")
    plt.close(fig)
    return names


def prune_figures(out: Path, keep: Sequence[str]) -> list[str]:
    """Delete figures (PNG/PDF) in ``out`` that this run did not write: a figure whose name (its
    configuration) changed would otherwise linger beside the current one. Returns what was deleted."""
    gone = [p.name for p in out.iterdir() if p.suffix in (".png", ".pdf") and p.name not in set(keep)]
    for name in gone:
        (out / name).unlink()
    return gone


def title_of(config: SweepConfig, what: str = "") -> str:
    """A figure title that states the protocol."""
    seeds = f"{len(config.seeds)} seed{'s' if len(config.seeds) > 1 else ''}"
    sched = f", {config.schedule} schedule" if config.schedule != "none" else ""
    head = f"{what}: " if what else ""
    return (f"{head}{config.model} on {config.dataset_name}, {config.steps} steps, batch {config.batch_size}{sched}, "
            f"base width {config.base_width}, {seeds}")


# --- flat summaries ----------------------------------------------------------------------------------


def key(*parts: object) -> str:
    """A summary key: parts joined by ``_``, lower case, anything but ``[a-z0-9_]`` made ``_``
    (``key("adam", "mup-tuned", "w1024", "regret") == "adam_mup_tuned_w1024_regret"``)."""
    text = "_".join(str(p) for p in parts if p != "")
    return re.sub(r"[^a-z0-9_]", "_", text.lower().replace(".", "p"))


def flat_transfer(prefix: str, analysis: Analysis, parameterization: str, optimizer: str | None = None,
                  runs: Sequence[RunRecord] = ()) -> dict[str, Any]:
    """The numbers of one (parameterization, optimizer) of an analysis, flat, under ``prefix``:

    - ``{prefix}_drift``, ``_drift_lo``, ``_drift_hi`` (90% seed-bootstrap interval), ``_drift_edges``
      (widths whose optimum sits at a grid edge);
    - per width ``w``: ``{prefix}_w{w}_log2_lr`` (optimum, log2 of the base LR), ``_lr``, ``_best_loss``,
      ``_loss_at_base_lr`` (at the base width's optimum), ``_regret``, ``_edge`` ("", "low", "high"),
      ``_fitted`` (the quadratic vertex was used), ``_seeds``;
    - ``{prefix}_base_width``, ``_max_width``, ``_regret_max_width``, ``_best_loss_max_width``,
      ``_log2_lr_shift`` (optimum at the widest minus at the base width);
    - with ``runs``: ``{prefix}_runs``, ``_diverged``, ``_flops``, ``_train_seconds``.
    """
    rows = [r for r in analysis.widths if r.parameterization == parameterization
            and optimizer in (None, r.optimizer)]
    d = analysis.drift(parameterization, optimizer)
    out: dict[str, Any] = {
        key(prefix, "drift"): d.slope, key(prefix, "drift_lo"): d.low, key(prefix, "drift_hi"): d.high,
        key(prefix, "drift_edges"): d.edges,
    }
    for r in rows:
        o = r.optimum
        w = f"w{r.width}"
        out.update({
            key(prefix, w, "log2_lr"): o.log2_lr, key(prefix, w, "lr"): 2.0**o.log2_lr,
            key(prefix, w, "best_loss"): o.loss, key(prefix, w, "loss_at_base_lr"): r.loss_at_reference,
            key(prefix, w, "regret"): r.regret, key(prefix, w, "edge"): o.edge, key(prefix, w, "fitted"): o.fitted,
            key(prefix, w, "seeds"): r.seeds,
        })
    if rows:
        base, widest = min(rows, key=lambda r: r.width), max(rows, key=lambda r: r.width)
        out.update({
            key(prefix, "base_width"): base.width, key(prefix, "max_width"): widest.width,
            key(prefix, "regret_max_width"): widest.regret, key(prefix, "best_loss_max_width"): widest.optimum.loss,
            key(prefix, "log2_lr_shift"): widest.optimum.log2_lr - base.optimum.log2_lr,
        })
    mine = [r for r in runs if r.cell.parameterization == parameterization and optimizer in (None, r.cell.optimizer)]
    if mine:
        out.update({
            key(prefix, "runs"): len(mine), key(prefix, "diverged"): sum(r.diverged for r in mine),
            key(prefix, "flops"): sum(r.flops for r in mine),
            key(prefix, "train_seconds"): sum(r.seconds for r in mine),
        })
    return out


def gaps_to_sp(summary: Mapping[str, Any], prefix: str, rows: Sequence[str], metric: str = "") -> dict[str, float]:
    """``{prefix}_{row}_gap_to_sp``: each row's best loss at the widest width over SP's there, minus one
    (``{prefix}_{row}_{metric}_gap_to_sp`` from the ``{prefix}_{row}_{metric}_*`` keys with ``metric``)."""
    sp = summary.get(key(prefix, "sp", metric, "best_loss_max_width"))
    out = {}
    for row in rows:
        best = summary.get(key(prefix, row, metric, "best_loss_max_width"))
        if sp and best is not None:
            out[key(prefix, row, metric, "gap_to_sp")] = best / sp - 1
    return out


def nested_transfer(analysis: Analysis) -> dict[str, Any]:
    """Optima, regrets, drifts and curves as nested data (for ``details.json``)."""
    return {
        "metric": analysis.metric,
        "reference_width": analysis.reference_width,
        "drifts": [vars(d) for d in analysis.drifts],
        "widths": [
            {"parameterization": r.parameterization, "optimizer": r.optimizer, "width": r.width, "seeds": r.seeds,
             "log2_lr": r.optimum.log2_lr, "grid_log2_lr": r.optimum.grid_log2_lr, "edge": r.optimum.edge,
             "fitted": r.optimum.fitted, "best_loss": r.optimum.loss, "loss_at_reference_lr": r.loss_at_reference,
             "regret": r.regret}
            for r in analysis.widths
        ],
        "curves": [
            {"parameterization": c.parameterization, "optimizer": c.optimizer, "width": c.width,
             "log2_lrs": c.log2_lrs.tolist(), "seeds": list(c.seeds), "losses": c.losses.tolist(),
             "mean": c.mean.tolist()}
            for c in analysis.curves
        ],
    }


def header(name: str, mode: Mode) -> dict[str, Any]:
    """The first keys of every summary: which experiment, which size, which code."""
    p = provenance()
    return {"experiment": name, "mode": mode, "git_revision": p["git_revision"], "date": p["date"],
            "torch": p["torch"], "python": p["python"]}


def check_flat(summary: Mapping[str, Any]) -> None:
    """Fail loudly if a summary is not flat or has a badly formed key (the paper's macros depend on it)."""
    for k, v in summary.items():
        if not re.fullmatch(r"[a-z0-9_]+", k):
            raise ValueError(f"summary key {k!r} must match [a-z0-9_]+")
        if v is not None and not isinstance(v, (bool, int, float, str)):
            raise ValueError(f"summary value of {k!r} must be a number, bool, string or null, got {type(v).__name__}")


def write_summary(out: Path, summary: Mapping[str, Any]) -> Path:
    """Check that ``summary`` is flat and write it as ``summary.json``."""
    clean = _finite(dict(summary))
    check_flat(clean)
    return write_json(out / "summary.json", clean)


def write_config(out: Path, configs: Mapping[str, Any], **extra: Any) -> Path:
    """``config.json``: every resolved configuration and the provenance."""
    return write_json(out / "config.json", {"provenance": provenance(), "configs": dict(configs), **extra})


def print_table(analysis: Analysis, out: Path, name: str) -> None:
    """Print the optima table and save it beside the figure."""
    table = format_table(analysis)
    (out / f"{name}.txt").write_text(table + "\n")
    print(f"\n{name}\n{table}")

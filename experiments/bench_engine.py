"""Benchmark: the sequential sweep engine's throughput against the FLOP floor, a plain torch loop.

The engine's run (:func:`scaling.sweep.train.train`: the muP MLP 40-w-w-10 on MNIST-1D, Adam with the
plan's per-layer groups, batch 128, the sweep's default 300 steps) is timed whole: building and
parameterizing the model, drawing each batch, the FLOP count of the first step, the loss read every
step for the divergence check, and the validation pass at the end. The floor is a plain loop over
the same model (built plainly, in SP), ``torch.optim.Adam(model.parameters())``, the same batches
generated beforehand, ``zero_grad``, ``backward``, ``step`` and nothing else. The two are timed in
interleaved rounds (the order flipped every round) on one torch thread; we report the median over
rounds of plain time / engine time (this thread's CPU time; wall time beside it), the fraction of the
plain loop's speed the engine keeps, with its interquartile range. Target: at least 0.7 at widths >= 256.

    python experiments/bench_engine.py            # -> experiments/results/bench_engine.json
    python experiments/bench_engine.py --quick    # -> out/quick/bench_engine.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import scaling
from scaling.models import build
from scaling.sweep.config import RunSettings
from scaling.sweep.engine import git_revision
from scaling.sweep.store import Cell
from scaling.sweep.task import Task
from scaling.sweep.train import reference_task, train, training_batches

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Config:
    """What to measure. ``--quick`` is a smaller version."""

    widths: tuple[int, ...] = (64, 128, 256, 512, 1024)
    base_width: int = 64
    batch: int = 128
    steps: int = 300  # RunSettings' default: what one run of a sweep trains
    log2_lr: float = -10.0  # far from divergence at every width, so every run trains all its steps
    parameterization: str = "mup"
    rounds: int = 7
    threads: int = 1
    target_ratio: float = 0.7  # plain time / engine time at widths >= target_from
    target_from: int = 256
    seed: int = 0


QUICK = Config(widths=(64, 256), steps=100, rounds=3)


def settings_of(cfg: Config) -> RunSettings:
    """The engine's settings: the reference MLP task at the benchmark's batch and steps."""
    return RunSettings("mlp", base_width=cfg.base_width, steps=cfg.steps, batch_size=cfg.batch,
                       last_k=min(50, cfg.steps))


def nothing() -> None:
    """No set-up."""


@dataclass(frozen=True)
class Timed:
    """What is timed (``run``), and what is made before the clock starts each round (``setup``)."""

    run: Callable[[], None]
    setup: Callable[[], None] = nothing


def engine_run(cfg: Config, task: Task, width: int) -> Timed:
    """One whole run of the engine at ``width``: all of it on the clock."""
    settings = settings_of(cfg)
    cell = Cell(cfg.parameterization, "adam", width, cfg.log2_lr, cfg.seed)

    def run() -> None:
        record = train(settings, cell, task)
        if record.diverged or record.steps != cfg.steps:
            raise RuntimeError(f"the benchmark's run stopped early: {record}")

    return Timed(run)


def plain_run(cfg: Config, task: Task, width: int) -> Timed:
    """The plain loop at ``width``: its model and batches are made before the clock starts."""
    settings = settings_of(cfg)
    it = training_batches(settings, Cell(cfg.parameterization, "adam", width, cfg.log2_lr, cfg.seed), task.data)
    batches = [next(it) for _ in range(cfg.steps)]  # the engine's own batches
    state: dict[str, Any] = {}

    def setup() -> None:
        torch.manual_seed(cfg.seed)
        model = build("mlp", width)
        state["model"], state["optimizer"] = model, torch.optim.Adam(model.parameters(), lr=1e-3)

    def run() -> None:
        model, optimizer = state["model"], state["optimizer"]
        for x, y in batches:
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()

    return Timed(run, setup)


def time_width(cfg: Config, task: Task, width: int) -> dict[str, float]:
    """Per-step milliseconds of the engine and the plain loop, and the median per-round ratio."""
    runs = {"engine": engine_run(cfg, task, width), "plain": plain_run(cfg, task, width)}
    for timed in runs.values():  # warm up
        timed.setup()
        timed.run()
    seconds: dict[str, dict[str, list[float]]] = {n: {"cpu": [], "wall": []} for n in runs}
    for r in range(cfg.rounds):
        for name in list(runs)[:: 1 if r % 2 == 0 else -1]:
            runs[name].setup()  # the plain loop's fresh model, off the clock
            w0, c0 = time.perf_counter(), time.thread_time()
            runs[name].run()
            seconds[name]["wall"].append((time.perf_counter() - w0) / cfg.steps)
            seconds[name]["cpu"].append((time.thread_time() - c0) / cfg.steps)
    row: dict[str, float] = {}
    for clock in ("cpu", "wall"):
        for name in runs:
            row[f"{name}_{clock}_ms_per_step"] = 1e3 * statistics.median(seconds[name][clock])
        ratios = [p / e for p, e in zip(seconds["plain"][clock], seconds["engine"][clock])]
        q1, med, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
        row |= {f"{clock}_ratio": med, f"{clock}_ratio_q1": q1, f"{clock}_ratio_q3": q3}
    return row


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two widths, 100 steps, 3 rounds (~10 s)")
    parser.add_argument("--json", type=Path, help="where to write the numbers (default "
                        "experiments/results/bench_engine.json; --quick: out/quick/bench_engine.json)")
    parser.add_argument("--rounds", type=int, help="interleaved timing rounds")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else Config()
    if args.rounds is not None:
        cfg = Config(**{**asdict(cfg), "rounds": args.rounds})
    if args.json is None:
        args.json = ROOT / ("out/quick" if args.quick else "experiments/results") / "bench_engine.json"
    torch.set_num_threads(cfg.threads)
    print(f"torch {torch.__version__}, {cfg.threads} thread(s), git {git_revision()}")
    task = reference_task(settings_of(cfg))
    results: dict[str, Any] = {"config": asdict(cfg), "torch": torch.__version__, "git": git_revision(),
                               "widths": {}}
    for width in cfg.widths:
        results["widths"][width] = time_width(cfg, task, width)
        r = results["widths"][width]
        print(f"  width {width:5d}: engine {r['engine_cpu_ms_per_step']:.3f} ms/step, plain "
              f"{r['plain_cpu_ms_per_step']:.3f} ms/step, ratio {r['cpu_ratio']:.3f} "
              f"(IQR {r['cpu_ratio_q1']:.3f}-{r['cpu_ratio_q3']:.3f}; wall {r['wall_ratio']:.3f})")
    wide = [r["cpu_ratio"] for w, r in results["widths"].items() if w >= cfg.target_from]
    results["target_met"] = bool(wide) and min(wide) >= cfg.target_ratio
    print(f"\nplain time / engine time (CPU, median); target >= {cfg.target_ratio:g} at widths >= "
          f"{cfg.target_from}: {'met' if results['target_met'] else 'NOT met'}")
    print(scaling.format_table([{"width": w, "engine ms/step": r["engine_cpu_ms_per_step"],
                                 "plain ms/step": r["plain_cpu_ms_per_step"], "ratio": r["cpu_ratio"],
                                 "IQR": f"{r['cpu_ratio_q1']:.3f}-{r['cpu_ratio_q3']:.3f}",
                                 "wall ratio": r["wall_ratio"]} for w, r in results["widths"].items()]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.json}")
    return results


if __name__ == "__main__":
    main()

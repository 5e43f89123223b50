"""Benchmark: K small runs trained as one batched model (``scaling.sweep.batched``) against K sequential runs.

For the MNIST-1D reference MLP (40-w-w-10, muP, Adam, batch 128, two seeds among the K runs as in a
sweep) at widths 32..1024 and K = 8, 16, 32: the time of one batched training step of K models
against K times one sequential step (the engine's step: forward, backward, Adam with the plan's
groups), one torch thread each (the engine runs one thread per worker, one worker per core). Timed in
interleaved rounds; we report the median over rounds of the per-round speedup (K sequential steps
over one batched step, this thread's CPU time) and its interquartile range, and, beside it, what the
engine's probe (:func:`scaling.sweep.batched.probe`, the measurement behind ``batched="auto"``) decides
for that group. Target: at least 3x at widths <= 128.

An end-to-end row per width confirms the step ratio on whole runs (``train`` K times against one
``train_batched``: building, FLOP counting and validation included). Last, the wall time of the
tuned-constants route's tuning at base width (``experiments/tune_base.py``'s coordinate descent, one
process, fresh databases) with the engine's ``batched="never"`` and ``"auto"``, and whether the two find
the same constants.

    python experiments/bench_batched.py            # -> experiments/results/bench_batched/bench_batched.json
    python experiments/bench_batched.py --quick    # -> out/quick/bench_batched/bench_batched.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from scaling.sweep.batched import BatchedRuns, probe, train_batched
from scaling.sweep.config import SweepConfig
from scaling.sweep.engine import git_revision
from scaling.sweep.store import Cell
from scaling.sweep.train import _step, build_run, reference_task, train

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tune_base, run as a script's neighbour


@dataclass(frozen=True)
class Config:
    """What to measure. ``--quick`` is a smaller version of each field."""

    widths: tuple[int, ...] = (32, 64, 128, 256, 512, 1024)
    ks: tuple[int, ...] = (8, 16, 32)
    base_width: int = 32
    batch: int = 128
    rounds: int = 7  # interleaved timing rounds
    steps: int = 5  # training steps per timed block
    end_to_end_steps: int = 100  # steps of the whole-run comparison (at K = 16)
    end_to_end_k: int = 16
    threads: int = 1
    target: float = 3.0  # speedup at widths <= target_width
    target_width: int = 128


QUICK = Config(widths=(32, 128, 512), ks=(8, 32), rounds=3, steps=3, end_to_end_steps=30)


def cells_for(width: int, k: int) -> list[Cell]:
    """K cells of one width as a sweep has them: LRs on a grid, two seeds."""
    return [Cell("mup", "adam", width, round(-10 + 0.5 * (i // 2), 6), i % 2) for i in range(k)]


def cpu_seconds(fn: Callable[[], object], n: int) -> float:
    start = time.thread_time()
    for _ in range(n):
        fn()
    return (time.thread_time() - start) / n


def bench_width(width: int, cfg: Config) -> dict[str, Any]:
    """Step speedups at every K, the probe's decisions, and one end-to-end comparison."""
    settings = SweepConfig(model="mlp", widths=(width,), base_width=cfg.base_width, batch_size=cfg.batch,
                           steps=cfg.end_to_end_steps, last_k=10)
    task = reference_task(settings)
    out: dict[str, Any] = {"k": {}}
    sample = next(task.data.batches(cfg.batch, torch.Generator().manual_seed(0)))
    model, optimizer, loss_fn = build_run(settings, cells_for(width, 1)[0], task)
    sequential = lambda: _step(model, optimizer, loss_fn, *sample)  # noqa: E731
    for k in cfg.ks:
        runs = BatchedRuns(settings, cells_for(width, k), task)
        take = runs.streams()
        x, y, stacked = take()
        alive = torch.ones(k, dtype=torch.bool)
        batched = lambda: runs.step(x, y, stacked, alive)  # noqa: E731,B023
        sequential(), batched()  # warm-up
        speedups, seq_s, bat_s = [], [], []
        for _ in range(cfg.rounds):
            s = cpu_seconds(sequential, cfg.steps)
            b = cpu_seconds(batched, cfg.steps)
            seq_s.append(s)
            bat_s.append(b)
            speedups.append(k * s / b)
        q = statistics.quantiles(speedups, n=4) if len(speedups) > 1 else [speedups[0]] * 3
        decided = probe(settings, cells_for(width, k), task)
        flops = runs.flops_per_step(x[0] if stacked else x, y[0] if stacked else y)  # one model's step
        out["k"][k] = {"speedup": statistics.median(speedups), "iqr": [q[0], q[2]],
                       "sequential_step_s": statistics.median(seq_s), "batched_step_s": statistics.median(bat_s),
                       "flops_per_model_step": flops,
                       "sequential_gflops": flops / statistics.median(seq_s) / 1e9,
                       "batched_gflops": k * flops / statistics.median(bat_s) / 1e9,
                       "probe_speedup": decided.speedup, "auto_batches": decided.worth_it}
    k = cfg.end_to_end_k
    cells = cells_for(width, k)
    start = time.perf_counter()
    for c in cells:
        train(settings, c, task)
    seq_wall = time.perf_counter() - start
    start = time.perf_counter()
    train_batched(settings, cells, task)
    bat_wall = time.perf_counter() - start
    out["end_to_end"] = {"k": k, "steps": cfg.end_to_end_steps, "sequential_s": seq_wall, "batched_s": bat_wall,
                         "speedup": seq_wall / bat_wall}
    return out


def bench_noise(steps: int = 200, width: int = 64) -> dict[str, Any]:
    """How reproducible one run is at all: the same cells trained sequentially on 1 and on 2 torch threads, and
    batched; the largest relative difference of the final train loss (float rounding amplified by training)."""
    settings = SweepConfig(model="mlp", widths=(width,), base_width=width, steps=steps, last_k=50, seeds=(100, 101))
    task = reference_task(settings)
    cells = [Cell("mup", "adam", width, x, s) for x in (-7.5, -7.0, -6.5, -6.0, -5.5) for s in (100, 101)]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = [train(settings, c, task).train_loss for c in cells]
        batched = [r.train_loss for r in train_batched(settings, cells, task)]
        torch.set_num_threads(2)
        two = [train(settings, c, task).train_loss for c in cells]
    finally:
        torch.set_num_threads(before)
    rel = lambda a, b: max(abs(x - y) / abs(y) for x, y in zip(a, b))  # noqa: E731
    return {"steps": steps, "width": width, "runs": len(cells), "threads_1_vs_2": rel(two, one),
            "batched_vs_sequential": rel(batched, one)}


def bench_tuning(steps: int) -> dict[str, Any]:
    """Wall time of tune_base's tuning, one process, sequential against the engine's choice."""
    import tempfile

    import tune_base

    tuning = replace(tune_base.Tuning(), steps=steps)
    out: dict[str, Any] = {"tuning": asdict(tuning)}
    for how in ("never", "auto"):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            got = tune_base.tune(tuning, Path(tmp) / "tune_runs.db", workers=1, batched=how)
            out[how] = {"wall_s": time.perf_counter() - start, "runs": got["runs"], "log2_lr": got["log2_lr"],
                        "log2_scales": got["log2_scales"], "final_loss": got["final_loss"]}
    out["saved"] = 1 - out["auto"]["wall_s"] / out["never"]["wall_s"]
    out["same_constants"] = (out["auto"]["log2_lr"], out["auto"]["log2_scales"]) == \
        (out["never"]["log2_lr"], out["never"]["log2_scales"])
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="three widths, two K, fewer rounds (~30 s)")
    parser.add_argument("--json", type=Path, help="where to write the numbers (default experiments/results/"
                        "bench_batched/bench_batched.json; --quick: under out/quick/)")
    parser.add_argument("--tuning-steps", type=int, default=200, help="steps per run of the timed tuning "
                        "(tune_base's own: 500); 0 skips it (--quick does)")
    args = parser.parse_args(argv)
    if args.json is None:
        root = ROOT / ("out/quick" if args.quick else "experiments/results")
        args.json = root / "bench_batched" / "bench_batched.json"
    cfg = QUICK if args.quick else Config()
    torch.set_num_threads(cfg.threads)
    print(f"torch {torch.__version__}, {cfg.threads} thread(s), git {git_revision()}")
    results: dict[str, Any] = {"config": asdict(cfg), "torch": torch.__version__, "git": git_revision(), "mlp": {}}
    print(f"{'width':>6} " + " ".join(f"{'K=' + str(k):>22}" for k in cfg.ks) + "   end to end")
    for w in cfg.widths:
        r = results["mlp"][w] = bench_width(w, cfg)
        cols = [f"{r['k'][k]['speedup']:5.2f}x [{r['k'][k]['iqr'][0]:.2f}, {r['k'][k]['iqr'][1]:.2f}] "
                f"{'auto' if r['k'][k]['auto_batches'] else 'seq.':>4}" for k in cfg.ks]
        e = r["end_to_end"]
        print(f"{w:>6} " + " ".join(f"{c:>22}" for c in cols) + f"   {e['speedup']:.2f}x (K={e['k']})")
        kmax = r["k"][max(cfg.ks)]
        print(f"{'':>6} K={max(cfg.ks)}: sequential {kmax['sequential_gflops']:.1f} GFLOP/s, batched "
              f"{kmax['batched_gflops']:.1f} GFLOP/s")
    small = [results["mlp"][w]["k"][k]["speedup"] for w in cfg.widths if w <= cfg.target_width for k in cfg.ks]
    results["target"] = {"speedup": cfg.target, "widths_up_to": cfg.target_width, "worst": min(small),
                         "met": min(small) >= cfg.target}
    print(f"target >= {cfg.target:g}x at widths <= {cfg.target_width}: worst {min(small):.2f}x -> "
          f"{'met' if results['target']['met'] else 'MISSED'}")
    n = results["noise"] = bench_noise()
    print(f"one run, {n['steps']} steps at width {n['width']}: 1 vs 2 torch threads differ by up to "
          f"{100 * n['threads_1_vs_2']:.1f}% in the final loss, batched vs sequential by "
          f"{100 * n['batched_vs_sequential']:.1f}%")
    if args.tuning_steps and not args.quick:
        t = results["tuning"] = bench_tuning(args.tuning_steps)
        print(f"tune_base at width {t['tuning']['width']} ({args.tuning_steps} steps a run, 1 process): sequential "
              f"{t['never']['wall_s']:.0f} s, auto {t['auto']['wall_s']:.0f} s ({100 * t['saved']:.0f}% saved); "
              f"same constants: {t['same_constants']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str))
    print(f"wrote {args.json}")
    return results


if __name__ == "__main__":
    main()

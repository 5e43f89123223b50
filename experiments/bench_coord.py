"""Benchmark: what a coordinate check costs on top of the training it contains.

A coordinate check is training plus measurement, so its floor is the bare training. On the MLP
workload (ReLU MLP 40-w-w-10, one MNIST-1D batch of 128, widths 2^7..2^12, 3 seeds, 5 Adam steps,
muP) this script times, in one run and interleaved to share the machine's noise:

- ours: ``scaling.coord.coord_check`` (states 0..5: 5 steps and one extra forward pass),
- ours, bare: the same models built, parameterized and trained 5 steps with no measurement,
- mup: ``mup.coord_check.get_coord_data`` (microsoft/mup 1.0.0, its ``MuReadout`` and ``MuAdam``;
  states 0..4: 5 steps, the last one's update never measured),
- mup, bare: the same mup models trained 5 steps with ``MuAdam``, no measurement,
- ours over mup's states (0..4: 4 steps and one forward pass), over ours, bare,

and prints both ratios (coordinate check / bare training) side by side: the median over repeats of
the per-repeat ratio, and the ratio of the fastest times. Goal: ours at most 1.10.

    python experiments/bench_coord.py            # 7 repeats, ~4 minutes on 2 cores
    python experiments/bench_coord.py --quick    # widths up to 2^10, 3 repeats, seconds
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import scaling
from scaling.coord import coord_check, reference_batch
from scaling.models import MLP
from scaling.sweep.engine import git_revision

LR = 1e-2
BATCH = 128


def ours(widths: list[int], seeds: int, steps: int, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    coord_check(lambda w: MLP(w), batch, widths=widths, base_width=widths[0], parameterization="mup",
                optimizer="adam", lr=LR, steps=steps, seeds=seeds)


def ours_same_states(widths: list[int], seeds: int, steps: int, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    """States 0..steps-1, as get_coord_data records: steps - 1 updates and one forward pass."""
    ours(widths, seeds, steps - 1, batch)


def ours_bare(widths: list[int], seeds: int, steps: int, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    base = scaling.build_on_meta(lambda: MLP(widths[0]))
    delta = scaling.build_on_meta(lambda: MLP(2 * widths[0]))
    x, y = batch
    for seed in range(seeds):
        for w in widths:
            torch.manual_seed(seed)
            model = MLP(w)
            plan = scaling.parameterize(model, base=base, delta=delta, parameterization="mup", optimizer="adam")
            opt = plan.optimizer_for(torch.optim.Adam, lr=LR)
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(x), y).backward()
                opt.step()


def _mup_models(widths: list[int]) -> dict[int, Callable[[], nn.Module]]:
    from mup import MuReadout, set_base_shapes

    def mlp(w: int) -> nn.Module:
        return nn.Sequential(nn.Linear(40, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(), MuReadout(w, 10))

    base, delta = mlp(widths[0]), mlp(2 * widths[0])

    def lazy(w: int) -> Callable[[], nn.Module]:
        return lambda: set_base_shapes(mlp(w), base, delta=delta)

    return {w: lazy(w) for w in widths}


def mup_coord(widths: list[int], seeds: int, steps: int, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    from mup.coord_check import get_coord_data

    get_coord_data(_mup_models(widths), [batch], optimizer="adam", lr=LR, mup=True, nsteps=steps, nseeds=seeds,
                   cuda=False, show_progress=False)


def mup_bare(widths: list[int], seeds: int, steps: int, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    from mup.optim import MuAdam

    models = _mup_models(widths)
    x, y = batch
    for seed in range(seeds):
        torch.manual_seed(seed)  # as get_coord_data: one seed per pass over the widths
        for make in models.values():
            model = make().train()
            opt = MuAdam(model.parameters(), lr=LR)
            for _ in range(steps):
                opt.zero_grad()
                F.cross_entropy(model(x), y).backward()
                opt.step()


JOBS: dict[str, Callable[[list[int], int, int, tuple[torch.Tensor, torch.Tensor]], None]] = {
    "ours": ours, "ours_bare": ours_bare, "mup": mup_coord, "mup_bare": mup_bare, "ours_same_states": ours_same_states,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="widths 2^7..2^10, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, one per core)")
    parser.add_argument("--out", type=Path, default=None,
                        help="default experiments/results/bench_coord/ (--quick: out/quick/bench_coord/)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    widths = [2**k for k in range(7, 11 if args.quick else 13)]
    repeats = args.repeats or (3 if args.quick else 7)
    batch = reference_batch("mlp", BATCH)  # the MLP's own data, MNIST-1D

    for fn in JOBS.values():  # warm up: allocator, kernels, imports
        fn(widths[:2], 1, 1, batch)
    times: dict[str, list[float]] = {k: [] for k in JOBS}
    names = list(JOBS)
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]  # rotate, so no job always runs first
        for name in order:
            t0 = time.perf_counter()
            JOBS[name](widths, args.seeds, args.steps, batch)
            times[name].append(time.perf_counter() - t0)
        print(f"repeat {r + 1}/{repeats}: " + ", ".join(f"{k} {times[k][-1]:.2f}s" for k in names), flush=True)

    def ratios(check: str, bare: str) -> tuple[float, float]:
        per_repeat = [a / b for a, b in zip(times[check], times[bare])]
        return statistics.median(per_repeat), min(times[check]) / min(times[bare])

    ours_med, ours_min = ratios("ours", "ours_bare")
    mup_med, mup_min = ratios("mup", "mup_bare")
    same_med, same_min = ratios("ours_same_states", "ours_bare")
    print(f"\nMLP 40-w-w-10, widths {widths[0]}..{widths[-1]}, {args.seeds} seeds, {args.steps} Adam steps, "
          f"batch {BATCH}, {torch.get_num_threads()} threads, {repeats} repeats")
    print("coordinate check / bare training    median of ratios   ratio of fastest")
    print(f"scaling.coord.coord_check           {ours_med:16.3f}   {ours_min:16.3f}")
    print(f"mup.coord_check.get_coord_data      {mup_med:16.3f}   {mup_min:16.3f}")
    print(f"coord_check, states 0..{args.steps - 1} as mup's   {same_med:12.3f}   {same_min:16.3f}")
    print(f"(ours records states 0..{args.steps}: {args.steps} steps and one extra forward pass; get_coord_data "
          f"records 0..{args.steps - 1}, its last update unmeasured. The last line is ours over the same states.)")
    root = Path(__file__).resolve().parent.parent
    folder = args.out or (root / "out" / "quick" / "bench_coord" if args.quick else root / "experiments" / "results"
                          / "bench_coord")
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "bench_coord.json"
    out.write_text(json.dumps({
        "config": {"widths": widths, "seeds": args.seeds, "steps": args.steps, "batch": BATCH, "lr": LR,
                   "repeats": repeats, "threads": torch.get_num_threads()},
        "times": times,
        "ratio": {"ours": {"median": ours_med, "fastest": ours_min}, "mup": {"median": mup_med, "fastest": mup_min},
                  "ours_same_states": {"median": same_med, "fastest": same_min}},
        "git_revision": git_revision(), "torch": torch.__version__, "python": platform.python_version(),
        "machine": platform.platform(), "command": " ".join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Benchmark: what muP costs at training time and at set-up time, ours beside microsoft/mup's.

(a) Time per training step (forward, backward, Adam step) of a muP model trained with its param groups,
    as a ratio to the same model in SP trained with one ``torch.optim.Adam(model.parameters(),
    foreach=True)``: a ReLU MLP 40-w-w-10 (batch 128, MNIST-1D-sized random inputs) at several widths,
    and a small GPT. Ours in both muP forms (``mup``: Table 3, no forward multiplier; ``mup-table8``: a
    forward pre-hook on the readout), microsoft/mup's (``MuReadout`` + ``MuAdam``), and fused Adam
    for context. Runs are timed in interleaved rounds, each round in a rotated order; we report the
    median over rounds of the per-round ratio to SP (this thread's CPU time, and wall time) with its
    interquartile range. Target: ratio <= 1.03.
(b) Set-up of a ~7B-parameter nanoGPT-style skeleton (d_model 4096, 32 layers, vocab 32000, MLP ratio
    4) on the meta device, base d_model 256, delta 512: wall time (median of repeats) and Python peak
    memory (tracemalloc) of ``scaling.parameterize`` + ``plan.param_groups`` against
    ``mup.set_base_shapes`` on the same model with a ``MuReadout``. Target: ours under 0.1 s and 100 MB.

    python experiments/bench_parameterize.py            # -> experiments/results/bench_parameterize/*.json
    python experiments/bench_parameterize.py --quick    # -> out/quick/bench_parameterize/*.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

import scaling
from scaling.models import build
from scaling.sweep.engine import git_revision

try:
    import mup
except ImportError:  # the reference is optional: its rows are left out
    mup = None

ROOT = Path(__file__).resolve().parent.parent

@dataclass(frozen=True)
class Config:
    """What to measure. ``--quick`` is a smaller version of each field."""

    mlp_widths: tuple[int, ...] = (256, 512, 1024, 2048)
    mlp_base: int = 64
    batch: int = 128
    gpt_width: int = 128
    gpt_base: int = 32
    gpt_layers: int = 2
    gpt_block: int = 64
    gpt_batch: int = 16
    rounds: int = 15  # interleaved timing rounds
    target_ratio: float = 1.03  # the per-step ratio to SP we aim at
    steps: int = 50  # at most this many training steps per run per round...
    block_s: float = 0.1  # ...about this many seconds of them
    warmup: int = 5
    skeleton_repeats: int = 5
    threads: int = 1
    seed: int = 0


QUICK = Config(mlp_widths=(256, 1024), rounds=7, block_s=0.05, warmup=3, skeleton_repeats=3)

Step = Callable[[], None]


# --- (a) time per training step ------------------------------------------------------------------


def make_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor) -> Step:
    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)).backward()
        optimizer.step()

    return step


def mup_readout_model(builder: Callable[[], nn.Module]) -> nn.Module:
    """A model from ``builder`` with its ``readout`` swapped for microsoft/mup's ``MuReadout``."""
    assert mup is not None
    model = builder()
    old = model.readout
    assert isinstance(old, nn.Linear)
    model.readout = mup.MuReadout(old.in_features, old.out_features, bias=old.bias is not None,
                                  device=old.weight.device)
    return model


def variants(builder: Callable[[int], nn.Module], width: int, base: int, lr: float = 1e-3) -> dict[str, Any]:
    """The runs to time: name -> (model, optimizer), every model from the same seed."""
    out: dict[str, Any] = {}
    for impl in ("foreach", "fused"):
        torch.manual_seed(0)
        sp = builder(width)
        name = "sp" if impl == "foreach" else "sp (fused)"
        out[name] = (sp, torch.optim.Adam(sp.parameters(), lr=lr, foreach=impl == "foreach", fused=impl == "fused"))
    for row, impl in (("mup", "foreach"), ("mup-table8", "foreach"), ("mup-table8", "fused")):
        torch.manual_seed(0)
        model = builder(width)
        plan = scaling.parameterize(model, lambda: builder(base), parameterization=row)
        name = f"ours {row}" + (" (fused)" if impl == "fused" else "")
        groups = plan.param_groups(lr=lr)
        out[name] = (model, torch.optim.Adam(groups, foreach=impl == "foreach", fused=impl == "fused"))
    # muP without per-layer groups: the constant-LR row, one Adam over model.parameters() (its forward
    # multipliers are what it costs).
    torch.manual_seed(0)
    model = builder(width)
    scaling.parameterize(model, lambda: builder(base), parameterization="mup-constant-lr")
    out["ours mup-constant-lr"] = (model, torch.optim.Adam(model.parameters(), lr=lr, foreach=True))
    # Diagnostic: the SP model split into mup-table8's groups, all with SP's lr and eps. Its ratio to
    # sp is what the number of groups alone costs.
    torch.manual_seed(0)
    sp = builder(width)
    groups = [{**g, "lr": lr, "eps": 1e-8} for g in plan.param_groups(lr=lr, model=sp)]
    out[f"sp in {len(groups)} groups"] = (sp, torch.optim.Adam(groups, foreach=True))
    if mup is not None:
        torch.manual_seed(0)
        model = mup_readout_model(lambda: builder(width))
        mup.set_base_shapes(model, mup_readout_model(lambda: builder(base)))
        out["microsoft/mup"] = (model, mup.MuAdam(model.parameters(), lr=lr, foreach=True))
    return out


def time_steps(runs: dict[str, Any], x: Tensor, y: Tensor, cfg: Config) -> dict[str, dict[str, float]]:
    """Per-step seconds of each run over interleaved rounds, and the median per-round ratio to ``sp``.

    Both wall time and this thread's CPU time are recorded; with one torch thread all the work of
    a step runs on this thread, and its CPU time does not count time the process spends descheduled
    by other load on the machine, so its ratio is the steadier one.
    """
    steps = {n: make_step(m, o, x, y) for n, (m, o) in runs.items()}
    for step in steps.values():
        for _ in range(cfg.warmup):
            step()
    t0 = time.perf_counter()
    steps["sp"]()
    per_round = max(3, min(cfg.steps, round(cfg.block_s / (time.perf_counter() - t0))))
    names = list(steps)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(cfg.rounds):
        for n in names[r % len(names):] + names[: r % len(names)]:  # rotate the order every round
            w0, c0 = time.perf_counter(), time.thread_time()
            for _ in range(per_round):
                steps[n]()
            wall[n].append((time.perf_counter() - w0) / per_round)
            cpu[n].append((time.thread_time() - c0) / per_round)
    out = {}
    for n in names:
        row = {"groups": float(len(runs[n][1].param_groups))}
        for clock, seconds in (("cpu", cpu), ("wall", wall)):
            ratios = [a / b for a, b in zip(seconds[n], seconds["sp"])]
            q1, med, q3 = statistics.quantiles(ratios, n=4, method="inclusive")
            row |= {f"{clock}_ms_per_step": 1e3 * statistics.median(seconds[n]), f"{clock}_ratio": med,
                    f"{clock}_ratio_q1": q1, f"{clock}_ratio_q3": q3}
        out[n] = row
    return out


def bench_mlp(width: int, cfg: Config) -> dict[str, dict[str, float]]:
    g = torch.Generator().manual_seed(cfg.seed)
    x, y = torch.randn(cfg.batch, 40, generator=g), torch.randint(0, 10, (cfg.batch,), generator=g)
    return time_steps(variants(lambda w: build("mlp", w), width, cfg.mlp_base), x, y, cfg)


def bench_gpt(cfg: Config) -> dict[str, dict[str, float]]:
    g = torch.Generator().manual_seed(cfg.seed)
    tokens = torch.randint(0, 256, (cfg.gpt_batch, cfg.gpt_block + 1), generator=g)
    builder = lambda w: build("gpt", w, n_layers=cfg.gpt_layers, block_size=cfg.gpt_block)  # noqa: E731
    return time_steps(variants(builder, cfg.gpt_width, cfg.gpt_base), tokens[:, :-1], tokens[:, 1:], cfg)


# --- (b) set-up of a 7B skeleton on the meta device ----------------------------------------------


@dataclass(frozen=True)
class SkeletonConfig:
    """nanoGPT's shape at ~7B parameters (LLaMA-7B's width and depth)."""

    d_model: int = 4096
    n_layers: int = 32
    vocab_size: int = 32000
    block_size: int = 2048
    mlp_ratio: int = 4


class SkeletonBlock(nn.Module):
    """Pre-LN block with nanoGPT's parameter layout (attention as plain Linear layers)."""

    def __init__(self, d: int, mlp_ratio: int) -> None:
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)  # q, k, v
        self.attn_proj = nn.Linear(d, d)
        self.c_fc = nn.Linear(d, mlp_ratio * d)
        self.mlp_proj = nn.Linear(mlp_ratio * d, d)


class Skeleton(nn.Module):
    """Token and position embeddings, blocks, final LayerNorm, readout. Never run: only its shapes count."""

    def __init__(self, cfg: SkeletonConfig, mup_readout: bool = False) -> None:
        super().__init__()
        d = cfg.d_model
        self.wte = nn.Embedding(cfg.vocab_size, d)
        self.wpe = nn.Embedding(cfg.block_size, d)
        self.h = nn.ModuleList(SkeletonBlock(d, cfg.mlp_ratio) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = (mup.MuReadout if mup_readout and mup is not None else nn.Linear)(d, cfg.vocab_size, bias=False)


def on_meta(d_model: int, mup_readout: bool = False) -> nn.Module:
    with torch.device("meta"):
        return Skeleton(SkeletonConfig(d_model=d_model), mup_readout)


def ours_setup(target: nn.Module, base: nn.Module, delta: nn.Module) -> None:
    plan = scaling.parameterize(target, base, delta=delta)
    plan.param_groups(lr=1e-3)


def mup_setup(target: nn.Module, base: nn.Module, delta: nn.Module) -> None:
    assert mup is not None
    mup.set_base_shapes(target, base, delta=delta)


def bench_skeleton(cfg: Config) -> dict[str, dict[str, float]]:
    """Median wall time and tracemalloc peak of each set-up; a fresh meta target for every run."""
    setups: dict[str, tuple[Callable[[nn.Module, nn.Module, nn.Module], None], bool]] = {"ours": (ours_setup, False)}
    if mup is not None:
        setups["microsoft/mup"] = (mup_setup, True)
    out: dict[str, dict[str, float]] = {}
    for name, (setup, mu) in setups.items():
        base, delta = on_meta(256, mu), on_meta(512, mu)
        times = []
        for _ in range(cfg.skeleton_repeats):
            target = on_meta(4096, mu)
            t0 = time.perf_counter()
            setup(target, base, delta)
            times.append(time.perf_counter() - t0)
        target = on_meta(4096, mu)
        tracemalloc.start()
        setup(target, base, delta)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        n_params = sum(p.numel() for p in target.parameters())
        out[name] = {"seconds": statistics.median(times), "peak_mb": peak / 2**20, "params_b": n_params / 1e9}
    return out


# --- report --------------------------------------------------------------------------------------


def print_steps(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    table = [{"run": n, "groups": int(r["groups"]), "ms/step": r["cpu_ms_per_step"], "ratio to sp": r["cpu_ratio"],
              "IQR": f"{r['cpu_ratio_q1']:.3f}-{r['cpu_ratio_q3']:.3f}", "wall ratio": r["wall_ratio"]}
             for n, r in rows.items()]
    print(scaling.format_table(table))


def print_summary(results: dict[str, Any]) -> None:
    """One line per model: our per-step ratios to SP (CPU time) beside microsoft/mup's, and the target."""
    print(f"\nper-step time / SP's (median, CPU time); target <= {results['config']['target_ratio']:g}")
    cases = [(f"MLP {w}", rows) for w, rows in results["mlp"].items()] + [("GPT", results["gpt"])]
    for label, rows in cases:
        names = [n for n in ("ours mup", "ours mup-table8", "ours mup-constant-lr", "microsoft/mup") if n in rows]
        cells = [f"{n} {rows[n]['cpu_ratio']:.3f}" for n in names]
        print(f"  {label:9s} " + "   ".join(cells))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two MLP widths, fewer rounds (~15 s)")
    parser.add_argument("--json", type=Path, help="write the numbers (and the config) to this JSON file (default "
                        "experiments/results/bench_parameterize/bench_parameterize.json; --quick: under out/quick/)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default 1: steadier timings)")
    parser.add_argument("--rounds", type=int, help="interleaved timing rounds")
    parser.add_argument("--skip-steps", action="store_true", help="only the 7B set-up benchmark")
    args = parser.parse_args(argv)
    if args.json is None:
        root = ROOT / ("out/quick" if args.quick else "experiments/results")
        args.json = root / "bench_parameterize" / "bench_parameterize.json"
    cfg = QUICK if args.quick else Config()
    overrides = {k: v for k, v in {"threads": args.threads, "rounds": args.rounds}.items() if v is not None}
    cfg = Config(**{**asdict(cfg), **overrides})
    torch.set_num_threads(cfg.threads)
    print(f"torch {torch.__version__}, {cfg.threads} thread(s), mup {'yes' if mup else 'not installed'}, "
          f"git {git_revision()}")

    results: dict[str, Any] = {"config": asdict(cfg), "torch": torch.__version__, "git": git_revision(),
                               "mlp": {}, "gpt": {}}
    if not args.skip_steps:
        for w in cfg.mlp_widths:
            results["mlp"][w] = bench_mlp(w, cfg)
            print_steps(f"MLP 40-{w}-{w}-10, batch {cfg.batch}, base {cfg.mlp_base}", results["mlp"][w])
        results["gpt"] = bench_gpt(cfg)
        print_steps(f"GPT d_model {cfg.gpt_width}, {cfg.gpt_layers} layers, block {cfg.gpt_block}, "
                    f"batch {cfg.gpt_batch}, base {cfg.gpt_base}", results["gpt"])
        print_summary(results)
    results["skeleton"] = bench_skeleton(cfg)
    print("\n7B skeleton on meta (d_model 4096, 32 layers, vocab 32000; base 256, delta 512)")
    print(scaling.format_table([{"setup": n, "params (B)": r["params_b"], "seconds": r["seconds"],
                                 "peak MB": r["peak_mb"]} for n, r in results["skeleton"].items()]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwrote {args.json}")
    return results


if __name__ == "__main__":
    main()

"""``scaling tune``: tune the base LR and per-role constants at the base width, within a budget, into one file.

    scaling tune --db out/tune.db --out out/constants.json --model mlp --base-width 64 --budget-runs 120
    scaling tune --db out/mine.db --out out/mine.json --model mypkg.nets:build --dataset mypkg.nets:data \\
        --base-width 64 --coordinates lr lr.output init.output --budget-flops 1e13
    scaling train --constants out/constants.json --width 1024     # then the target, once

Killed, it resumes from the database and repeats no finished run (:mod:`scaling.sweep.tune`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import Any

from scaling.errors import ScalingError
from scaling.models import REGISTRY
from scaling.optim import OPTIMIZERS
from scaling.sweep.config import SCHEDULES, default_config
from scaling.sweep.tune import DEFAULT_COORDINATES, Search, tune
from scaling.table import PARAMETERIZATIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scaling tune``: the task at base width, the search, the budget, the output file."""
    parser.add_argument("--db", required=True, help="SQLite database of the tuning's runs: created, or resumed")
    parser.add_argument("--out", required=True, help="the constants file (JSON) to write")
    g = parser.add_argument_group("the task at base width (defaults: scaling.sweep.default_config of the model)")
    g.add_argument("--model", default="mlp", help=f"a reference model ({', '.join(REGISTRY)}) or module:function")
    g.add_argument("--dataset", help="a built-in dataset or module:function (default: the model's own)")
    g.add_argument("--dataset-option", action="append", metavar="KEY=VALUE", help="dataset argument (repeat)")
    g.add_argument("--model-option", action="append", metavar="KEY=VALUE", help="model argument (repeat)")
    g.add_argument("--loss", metavar="MODULE:FUNCTION", help="loss(output, targets) (default cross-entropy)")
    g.add_argument("--base-width", type=int, help="the width tuned at")
    g.add_argument("--parameterization", default="mup", help=f"a row ({', '.join(PARAMETERIZATIONS)})")
    g.add_argument("--optimizer", default="adam", help=f"of {', '.join(OPTIMIZERS)}")
    g.add_argument("--seeds", nargs="*", type=int, metavar="S", help="each point is the mean over these (default 0)")
    g.add_argument("--steps", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--schedule", help=f"{', '.join(SCHEDULES)}")
    g.add_argument("--last-k", type=int, help="the loss is the mean of the last k training losses")
    g.add_argument("--weight-decay", type=float)
    g.add_argument("--init", choices=("pytorch", "base", "own"), help="as in `scaling sweep`")
    s = parser.add_argument_group("the search (coordinate descent on log2 values)")
    s.add_argument("--coordinates", nargs="*", metavar="C", help="'lr' (the base LR) and kind.role constants, "
                   f"kind lr, init or multiplier (default: {' '.join(DEFAULT_COORDINATES)})")
    s.add_argument("--budget-runs", type=int, help="use at most this many runs")
    s.add_argument("--budget-flops", type=float, help="use at most this many training FLOPs")
    s.add_argument("--start-log2-lr", type=float, help="where the base LR search starts (default -7 Adam, -2 SGD)")
    s.add_argument("--step", type=float, help="grid step of each line search, log2 (default 0.5)")
    s.add_argument("--passes", type=int, help="passes over the coordinates at most (default 3)")
    s.add_argument("--batched", choices=("auto", "always", "never"), default="auto",
                   help="train a line search's runs as one batched model (default auto: when measured faster)")
    s.add_argument("--workers", type=int, default=1, help="processes training runs (default 1)")
    s.add_argument("--quiet", action="store_true", help="no progress bar, no log")


def run(args: argparse.Namespace) -> int:
    """``scaling tune``: search, then write the constants file and print it."""
    from scaling.cli.sweep import key_value

    try:
        config = default_config(args.model)
        overrides: dict[str, Any] = {"parameterizations": (args.parameterization,), "optimizers": (args.optimizer,)}
        for name in ("dataset", "loss", "base_width", "steps", "batch_size", "schedule", "last_k", "weight_decay",
                     "init"):
            if getattr(args, name) is not None:
                overrides[name] = getattr(args, name)
        if args.seeds:
            overrides["seeds"] = tuple(args.seeds)
        for name, options in (("dataset_kwargs", args.dataset_option), ("model_kwargs", args.model_option)):
            if options:
                overrides[name] = dict(key_value(o) for o in options)
        config = replace(config, **overrides)
        search = Search(**{k: v for k, v in {
            "coordinates": tuple(args.coordinates) if args.coordinates else None, "budget_runs": args.budget_runs,
            "budget_flops": args.budget_flops, "start_log2_lr": args.start_log2_lr, "step": args.step,
            "passes": args.passes}.items() if v is not None})
        result = tune(config, args.db, search=search, batched=args.batched, workers=args.workers,
                      progress=not args.quiet, log=None if args.quiet else print)
        path = result.save(args.out)
    except ScalingError as e:
        print(f"scaling tune: error: {e}", file=sys.stderr)
        return 2
    print(f"base LR 2^{result.log2_lr:.2f}, constants {json.dumps(result.scales)}; loss {result.loss:.4f} "
          f"({result.stopped}); {result.runs} runs, {result.flops:.3g} FLOPs\nwrote {path}")
    return 0

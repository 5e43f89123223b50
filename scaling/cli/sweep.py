"""``scaling sweep``: an LR x width x seed sweep into a resumable SQLite database, analyzed and plotted.

    scaling sweep --db out/mlp.db --model mlp --widths 64 128 256 512 --log2-lr-range -12 -4 1
    scaling sweep --db out/mine.db --model mypkg.nets:build --dataset mypkg.nets:data --widths 64 256
    scaling sweep --db out/mlp.db --backend ray --address auto --cpus-per-run 2    (every run a Ray task)
    scaling sweep merge --db out/all.db out/shard0.db out/shard1.db    (shards run with --worker I/N)
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields, replace
from typing import Any

from scaling.data import DATASETS
from scaling.errors import ScalingError
from scaling.models import REGISTRY
from scaling.optim import OPTIMIZERS
from scaling.sweep.analysis import analyze, format_table
from scaling.sweep.config import SCHEDULES, SweepConfig, default_config, log2_grid, log2_lrs_of, quick_config
from scaling.sweep.distributed import merge, run_ray
from scaling.sweep.engine import run_sweep
from scaling.sweep.store import open_existing
from scaling.table import PARAMETERIZATIONS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scaling sweep``: one option per :class:`SweepConfig` field, and how to run."""
    # Not required by argparse: `scaling sweep merge --db OUT IN...` gives it after the subcommand (run() checks).
    parser.add_argument("--db", help="SQLite database: created if missing, resumed if not (required)")
    sub = parser.add_subparsers(dest="sweep_command", metavar="merge", title="subcommand (optional)")
    m = sub.add_parser("merge", help="merge sweep databases (shards run with --worker I/N) into --db",
                       description="Copy every run of the input databases into --db (created if missing), one "
                       "transaction per input; runs already there are kept. Inputs of another sweep are refused.")
    m.add_argument("--db", default=argparse.SUPPRESS, help="the merged database (required)")
    m.add_argument("inputs", nargs="+", metavar="IN.db", help="sweep databases of the same sweep")
    g = parser.add_argument_group("sweep (defaults: scaling.sweep.default_config, or quick_config with --quick)")
    g.add_argument("--quick", action="store_true", help="a small sweep that runs in a minute or two")
    g.add_argument("--model", help=f"a reference model ({', '.join(REGISTRY)}; default mlp) or your builder as "
                   "module:function (width, **model options) -> nn.Module")
    g.add_argument("--dataset", help=f"{', '.join(DATASETS)} (default: the model's own), or module:function "
                   "returning (x, y), (x, y, x_val, y_val) or a DataLoader")
    g.add_argument("--loss", metavar="MODULE:FUNCTION", help="loss(output, targets) (default cross-entropy)")
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
    g.add_argument("--init", choices=("pytorch", "base", "own"), help="base: your model draws its own init "
                   "(nanoGPT's N(0, 0.02)); scale each tensor from the base model's measured std; own: the model's "
                   "own init, the same at every width (default pytorch, own with --hf)")
    g.add_argument("--hf", choices=("gpt2", "llama"), help="a transformers family from a tiny config at each width "
                   "(the model hf-FAMILY on the byte corpus; the hf extra)")
    g.add_argument("--hf-option", action="append", metavar="KEY=VALUE", help="a config option of --hf (repeat)")
    r = parser.add_argument_group("running and reporting")
    r.add_argument("--worker", default="0/1", metavar="I/N", help="run only shard I of N (default: share all)")
    r.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1: fastest on "
                   "small models; run one worker per core); local backend")
    r.add_argument("--batched", choices=("auto", "always", "never"), default="auto", help="local: train the "
                   "runs of one width as one torch.func model where a short probe measures it faster (auto, the "
                   "default), wherever possible (always), or one by one (never)")
    r.add_argument("--backend", choices=("local", "ray"), default="local", help="local: this process (default); "
                   "ray: every run a Ray task, on a cluster or a local Ray (the ray extra)")
    r.add_argument("--address", help="ray: the cluster to join (auto, HOST:6379, ray://HOST:10001; default: "
                   "start a local Ray)")
    r.add_argument("--cpus-per-run", type=float, default=1, metavar="N", help="ray: CPUs per run, its torch "
                   "threads (default 1)")
    r.add_argument("--gpus-per-run", type=float, default=0, metavar="G", help="ray: GPUs per run (fractions "
                   "share one; any trains on cuda; default 0)")
    r.add_argument("--max-retries", type=int, default=3, help="ray: retries of a run whose worker died (default 3)")
    r.add_argument("--report-only", action="store_true", help="run nothing: analyze the database")
    r.add_argument("--figure", metavar="DIR", help="save the transfer figure (PNG) in DIR")
    r.add_argument("--pdf", action="store_true", help="also save the figure as PDF")
    r.add_argument("--metric", default="train_loss", choices=("train_loss", "val_loss"))
    r.add_argument("--quiet", action="store_true", help="no progress bar and no table")


def config_from_args(args: argparse.Namespace) -> SweepConfig:
    """The :class:`SweepConfig` the command line asks for: a preset, then every option given."""
    preset = quick_config if args.quick else default_config
    if args.hf is not None:
        if args.model is not None:
            raise ScalingError("give --model or --hf, not both")
        args.model = f"hf-{args.hf}"
        args.model_option = (args.model_option or []) + (args.hf_option or [])
        args.init = args.init or "own"
    elif args.hf_option:
        raise ScalingError("--hf-option needs --hf FAMILY")
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
            overrides[name] = dict(key_value(o) for o in options)
    return replace(config, **overrides)


def key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from the command line: the value as JSON where it parses (numbers, true), else text."""
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
    """``scaling sweep``: run (or resume) the sweep, here or on Ray, then print its analysis and save the
    figure; ``scaling sweep merge``: merge databases of one sweep."""

    try:
        if args.db is None:
            raise ScalingError("the following argument is required: --db")
        if args.sweep_command == "merge":
            print(merge(args.db, args.inputs))
            return 0
        if args.backend != "ray" and args.address is not None:
            raise ScalingError("--address is for --backend ray")
        if not args.report_only and args.backend == "ray":
            if _parse_worker(args.worker) != (0, 1):
                raise ScalingError("--worker splits a sweep by hand; with --backend ray the cluster shares the "
                                   "cells: drop --worker")
            summary = run_ray(config_from_args(args), args.db, address=args.address, num_cpus=args.cpus_per_run,
                              num_gpus=args.gpus_per_run, max_retries=args.max_retries, progress=not args.quiet)
            print(summary)
        elif not args.report_only:
            summary = run_sweep(config_from_args(args), args.db, worker=_parse_worker(args.worker),
                                threads=args.threads, progress=not args.quiet, batched=args.batched)
            print(summary)
        if args.quiet and not args.figure:
            return 0
        with open_existing(args.db) as store:
            runs = store.runs()
        analysis = analyze(runs, args.metric)
        if not args.quiet:
            print(format_table(analysis))
        if args.figure:
            from scaling.sweep.figures import save_transfer_figure  # matplotlib: only when drawing

            for path in save_transfer_figure(args.db, args.figure, metric=args.metric, pdf=args.pdf,
                                             analysis=analysis):
                print(f"wrote {path}")
    except ScalingError as e:
        print(f"scaling sweep: error: {e}", file=sys.stderr)
        return 2
    return 0

"""``scaling train``: the wide run, one configuration of a sweep (typically the transferred LR at the
target width), trained with the sweep's settings and recorded in its database beside the base-width runs.

    scaling train --db out/mlp.db --width 1024 --parameterization mup --log2-lr -7
    scaling train --constants out/constants.json --width 1024      # what `scaling tune` found, into its database
    torchrun --standalone --nproc_per_node 4 -m scaling train --db out/mlp.db --width 4096 --log2-lr -7 \\
        --parameterization mup --parallel fsdp
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

import torch

from scaling.errors import ScalingError
from scaling.sweep.config import SweepConfig
from scaling.sweep.engine import cell, read_config
from scaling.sweep.store import Cell, RunRecord, canonical_scales, open_existing
from scaling.sweep.tune import Constants, load_constants
from scaling.sweep.wide import PARALLEL, rank, recorded, train_wide, world_size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scaling train``: the database, the cell, and how to run it."""
    parser.add_argument("--db", help="the sweep's SQLite database (from `scaling sweep` or `scaling tune`): the "
                        "run takes its settings and is recorded there (default with --constants: the tuning's)")
    parser.add_argument("--constants", metavar="FILE", help="a constants file from `scaling tune`: its base LR, "
                        "row, optimizer and per-role constants")
    parser.add_argument("--width", type=int, required=True, help="the width to train (at least the base width)")
    lr = parser.add_mutually_exclusive_group()
    lr.add_argument("--log2-lr", type=float, metavar="X", help="base learning rate 2^X (the one tuned at base width)")
    lr.add_argument("--lr", type=float, help="base learning rate, given directly")
    parser.add_argument("--parameterization", help="a row of the table (default: the sweep's, if it has one)")
    parser.add_argument("--optimizer", help="default: the sweep's, if it has one")
    parser.add_argument("--seed", type=int, help="default: the sweep's, if it has one")
    parser.add_argument("--scales", type=json.loads, metavar="JSON",
                        help="per-role constants (default: the sweep's, if it has one set)")
    parser.add_argument("--parallel", choices=PARALLEL, default="auto", help="under torchrun: ddp "
                        "(DistributedDataParallel) or fsdp (FSDP2 fully_shard); auto is ddp (default auto)")
    parser.add_argument("--threads", type=int, help="torch threads per process (default torch's own)")


def only(config: SweepConfig, axis: str, given: Any, option: str) -> Any:
    """The value given, or the sweep's only value on ``axis``; an error naming the choices otherwise."""
    if given is not None:
        return given
    values = getattr(config, axis)
    if len(values) != 1:
        shown = ", ".join(str(v) for v in values) if axis != "scales" else \
            ", ".join(canonical_scales(v) or "{}" for v in values)
        raise ScalingError(f"the sweep has several {axis} ({shown}): pass {option}")
    return values[0]


def cell_from_constants(args: argparse.Namespace, config: SweepConfig, constants: Constants) -> Cell:
    """The cell of a constants file at ``--width`` (seed: ``--seed``, or the tuning's first), after checking
    that the database's sweep has the settings the constants were tuned under."""
    options = {"--lr": args.lr, "--log2-lr": args.log2_lr, "--parameterization": args.parameterization,
               "--optimizer": args.optimizer, "--scales": args.scales}
    given = [o for o, v in options.items() if v is not None]
    if given:
        raise ScalingError(f"{', '.join(given)}: the constants file sets these; leave them out")
    tuned, here = constants.config.fixed(), config.fixed()
    diff = sorted(k for k in tuned.keys() | here.keys() if tuned.get(k) != here.get(k))
    if diff:
        changes = ", ".join(f"{k}: {tuned.get(k)!r} in the constants, {here.get(k)!r} in the database" for k in diff)
        raise ScalingError(f"{constants.path} was tuned on another task or settings than {args.db} holds ({changes})")
    seed = args.seed if args.seed is not None else constants.config.seeds[0]
    return cell(config, constants.parameterization, constants.optimizer, args.width, constants.log2_lr, seed,
                constants.scales)


def cell_from_args(args: argparse.Namespace, config: SweepConfig) -> Cell:
    """The cell the command line names, with the sweep's only value wherever an option is left out."""
    if args.lr is None and args.log2_lr is None:
        raise ScalingError("give --log2-lr or --lr (or --constants FILE from `scaling tune`)")
    if args.lr is not None and not (args.lr > 0 and math.isfinite(args.lr)):
        raise ScalingError(f"--lr must be positive and finite, got {args.lr}")
    log2_lr = args.log2_lr if args.log2_lr is not None else math.log2(args.lr)
    if not math.isfinite(log2_lr):
        raise ScalingError(f"--log2-lr must be finite, got {log2_lr}")
    return cell(config, only(config, "parameterizations", args.parameterization, "--parameterization"),
                only(config, "optimizers", args.optimizer, "--optimizer"), args.width, log2_lr,
                only(config, "seeds", args.seed, "--seed"), only(config, "scales", args.scales, "--scales"))


def describe(record: RunRecord) -> str:
    """One line: the cell and what it measured."""
    if record.diverged:
        measured = f"diverged after {record.steps} steps"
    else:
        measured = f"train loss {record.train_loss:.4f}, val loss {record.val_loss:.4f}, {record.steps} steps"
    return f"{record.cell}: {measured}, {record.seconds:.1f} s, {record.flops:.3g} FLOPs"


def say(*lines: str) -> None:
    """Print on rank 0 only (every rank runs this command under torchrun)."""
    if rank() == 0:
        for line in lines:
            print(line)


def run(args: argparse.Namespace) -> int:
    """``scaling train``: train the cell on this process or on torchrun's ranks; record it in the database."""
    try:
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        constants = load_constants(args.constants) if args.constants else None
        if args.db is None:
            if constants is None:
                raise ScalingError("give --db (the sweep's database) or --constants FILE")
            args.db = str(constants.db or "")
        with open_existing(args.db) as store:
            config = read_config(store)
            the_cell = cell_from_args(args, config) if constants is None else \
                cell_from_constants(args, config, constants)
            old = recorded(store, the_cell)
        if old is not None:
            say(f"{args.db} already holds this run:", describe(old))
            return 0
        record = train_wide(config, the_cell, db=args.db, parallel=args.parallel)
        where = f"{args.parallel if args.parallel != 'auto' else 'ddp'} over {world_size()} processes" \
            if world_size() > 1 else "one process"
        say(f"{describe(record)} ({where})", f"recorded in {args.db}")
    except ScalingError as e:  # on every rank: torchrun stops the others when the first one exits
        print(f"scaling train: error: {e}", file=sys.stderr)
        return 2
    return 0

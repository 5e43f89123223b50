"""``scaling depth-check``: how the residual stream and the blocks' updates scale with depth, per row.

    scaling depth-check --model gpt --width 64 --depths 2 4 8 16 32
    scaling depth-check --model mypkg.nets:build_at_depth --data mypkg.nets:batch
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from scaling.cli.coord import own_model_and_batch
from scaling.coord import reference_batch
from scaling.coord.depth import DepthCoordConfig, depth_coord_check
from scaling.errors import ScalingError
from scaling.models import build
from scaling.sweep.task import is_import_spec
from scaling.table import PARAMETERIZATIONS

# The reference models with residual blocks, and the keyword that sets their depth.
DEPTH_KEYWORD = {"gpt": "n_layers", "resmlp": "depth"}


def _builder_and_batch(args: argparse.Namespace) -> tuple[Callable[[int], nn.Module], Any]:
    if is_import_spec(args.model):
        return own_model_and_batch(args)
    if args.model not in DEPTH_KEYWORD:
        raise ScalingError(f"--model {args.model!r} has no residual blocks to deepen; choose one of "
                           f"{', '.join(DEPTH_KEYWORD)}, or your builder (depth -> nn.Module) as module:function")
    model, width, keyword = args.model, args.width, DEPTH_KEYWORD[args.model]
    return (lambda depth: build(model, width, **{keyword: depth})), reference_batch(model)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scaling depth-check``."""
    d = DepthCoordConfig()
    parser.add_argument("--model", default="gpt", help=f"a reference model ({', '.join(DEPTH_KEYWORD)}) or your "
                        "builder as module:function (depth -> nn.Module at a fixed width)")
    parser.add_argument("--data", default=None, metavar="MODULE:FUNCTION",
                        help="for your own model: a function returning the fixed batch (inputs, targets)")
    parser.add_argument("--width", type=int, default=64, help="the fixed width of a reference model")
    parser.add_argument("--depths", type=int, nargs="+", default=list(d.depths))
    parser.add_argument("--base-depth", type=int, default=None, help="default: the shallowest depth")
    parser.add_argument("--rows", nargs="+", default=list(d.parameterizations), choices=sorted(PARAMETERIZATIONS))
    parser.add_argument("--optimizer", default=d.optimizer)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--steps", type=int, default=d.steps)
    parser.add_argument("--seeds", type=int, default=len(d.seeds), help="number of seeds")
    parser.add_argument("--out", type=Path, default=Path("out"), help="folder for the JSON data and the plot")
    parser.add_argument("--fail-on-unstable", action="store_true",
                        help="exit 1 when a depth row's final stream is not flat at the last step")


def run(args: argparse.Namespace) -> int:
    """Run the check, print the fits at the last step, write ``depth-check-<model>.json`` and ``.png``."""
    builder, batch = _builder_and_batch(args)
    config = DepthCoordConfig(depths=tuple(args.depths), base_depth=args.base_depth, parameterizations=tuple(args.rows),
                              optimizer=args.optimizer, lr=args.lr, steps=args.steps, seeds=tuple(range(args.seeds)))
    result = depth_coord_check(builder, batch, config, progress=True)
    print(result.table())
    stem = "depth-check-" + "".join(c if c.isalnum() or c in "._-" else "-" for c in args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    result.to_json(args.out / f"{stem}.json")
    result.plot(args.out / f"{stem}.png")
    print(f"wrote {args.out / stem}.json and .png")
    bad = [f for f in result.fits if f.step == config.steps and f.quantity == "stream" and f.predicted == 0
           and f.verdict != "stable"]
    for f in bad:
        print(f"not flat: {f.parameterization} final stream {f.stat} slope {f.slope:+.2f}")
    return 1 if bad and args.fail_on_unstable else 0

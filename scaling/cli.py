"""The ``scaling`` command line.

    scaling demo          parameterize a reference model and print its scaling table
    scaling coord-check   coordinate check: measured vs predicted width exponents, plot and data
    scaling sweep         LR x width x seed sweep into a resumable SQLite database
    scaling main          the README's main job: a quick SP-vs-muP coordinate check and transfer plot

Each subcommand lives with its code: a module with ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from scaling.models import REGISTRY, build
from scaling.table import PARAMETERIZATIONS, describe, get_parameterization, optimizer_family

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("scaling.cli", "parameterize a reference model and print its scaling table"),
    "coord-check": ("scaling.coord", "coordinate check: measured vs predicted width exponents"),
    "sweep": ("scaling.sweep", "LR x width x seed sweep into a resumable SQLite database"),
    "main": ("scaling.main_job", "quick SP-vs-muP coordinate check and LR-transfer plot (the README's main job)"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scaling demo``."""
    parser.add_argument("--model", default="mlp", choices=sorted(REGISTRY))
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--base-width", type=int, default=64)
    parser.add_argument("--parameterization", default="mup", choices=sorted(PARAMETERIZATIONS))
    parser.add_argument("--optimizer", default="adam", help="sgd, adam, adamw, ... (a family or a name)")


def run(args: argparse.Namespace) -> int:
    """``scaling demo``: the exponent table row, then the plan of one reference model."""
    from scaling.plan import format_table, parameterize

    row = get_parameterization(args.parameterization)
    family = optimizer_family(args.optimizer)
    print(f"Exponent table row {row.name!r} for {family} ({row.citation})")
    print(format_table(describe(row, family)))
    print()
    model = build(args.model, args.width)
    plan = parameterize(
        model,
        base=lambda: build(args.model, args.base_width),
        delta=lambda: build(args.model, 2 * args.base_width),
        parameterization=row,
        optimizer=family,
    )
    print(f"{args.model} at width {args.width}, base width {args.base_width}:")
    print(plan.table())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``scaling`` console script.

    Only the chosen subcommand's module is imported (torch, scipy and matplotlib are slow to load).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="scaling", description=(__doc__ or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    module = None
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = sys.modules[__name__] if module_name == __name__ else importlib.import_module(module_name)
            module.add_arguments(p)
    args = parser.parse_args(argv)
    assert module is not None
    return int(module.run(args))


if __name__ == "__main__":
    raise SystemExit(main())

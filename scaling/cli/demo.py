"""``scaling demo``: a row of the exponent table, then the plan of one reference model."""

from __future__ import annotations

import argparse

from scaling.models import REGISTRY, build
from scaling.optim import optimizer_family
from scaling.plan import parameterize
from scaling.table import PARAMETERIZATIONS, describe, get_parameterization
from scaling.text import format_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``scaling demo``."""
    parser.add_argument("--model", default="mlp", choices=sorted(REGISTRY))
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--base-width", type=int, default=64)
    parser.add_argument("--parameterization", default="mup", choices=sorted(PARAMETERIZATIONS))
    parser.add_argument("--optimizer", default="adam", help="sgd, adam, adamw, ... (a family or a name)")


def run(args: argparse.Namespace) -> int:
    """``scaling demo``: the exponent table row, then the plan of one reference model."""
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

"""The ``scaling`` command line.

    scaling demo          parameterize a reference model and print its scaling table
    scaling coord-check   coordinate check: measured vs predicted width exponents, plot and data
    scaling depth-check   depth coordinate check: the residual stream and block updates vs depth, per row
    scaling sweep         LR x width x seed sweep into a resumable SQLite database
    scaling tune          tune the base LR and per-role constants at the base width, within a budget
    scaling train         the wide run: one cell of a sweep (the target width), under torchrun if launched so
    scaling main          the README's main job: a quick SP-vs-muP coordinate check and transfer plot

Each subcommand is a module of this package with ``add_arguments(parser)`` and ``run(args) -> int``;
library modules hold no argparse.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("scaling.cli.demo", "parameterize a reference model and print its scaling table"),
    "coord-check": ("scaling.cli.coord", "coordinate check: measured vs predicted width exponents"),
    "depth-check": ("scaling.cli.depth", "depth coordinate check: residual stream and block updates vs depth"),
    "sweep": ("scaling.cli.sweep", "LR x width x seed sweep into a resumable SQLite database"),
    "tune": ("scaling.cli.tune", "tune the base LR and per-role constants at the base width into a constants file"),
    "train": ("scaling.cli.train", "the wide run: one cell of a sweep, recorded beside it (DDP/FSDP2 under torchrun)"),
    "main": ("scaling.cli.main_job", "quick SP-vs-muP coordinate check and LR-transfer plot (the README's main job)"),
}


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
            module = importlib.import_module(module_name)
            module.add_arguments(p)
    args = parser.parse_args(argv)
    assert module is not None
    return int(module.run(args))


if __name__ == "__main__":
    raise SystemExit(main())

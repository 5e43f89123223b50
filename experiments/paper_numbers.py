"""Write the paper's numbers: ``paper/generated/numbers.tex`` (LaTeX macros) and ``results.md``.

Every number the paper prints is a macro defined here, computed from the package's own exponent table
(:mod:`scaling.table`, :mod:`scaling.predict`) or read from an experiment's artifacts; nothing is
typed by hand. Full runs are read from ``experiments/results/<name>/``, ``--quick`` runs from
``out/quick/<name>/``. A missing artifact is an error that names it.

Macro names are ASCII letters only: ``<Experiment><Optimizer><Parameterization><Quantity>``, e.g.
``\\MlpAdamSpDrift`` (the drift exponent of SP with Adam in the MLP transfer experiment),
``\\MlpAdamMupRegretWidest``; widths are spelled out (``\\QuestionAdamSpLrAtThirtyTwo``); table bodies
end in ``Rows`` (``\\MlpAdamOptimaRows``); figure paths start with ``Fig`` and are relative to the
``\\graphicspath`` that ``numbers.tex`` sets. ``results.md`` holds the same results as Markdown for
the README.

The work is split by concern: ``paper_format.py`` (macros and number formatting), ``paper_theory.py``
(the exponent-table macros), ``paper_artifacts.py`` (reading the artifacts, their macros and tables),
``paper_claims.py`` (the targets and the claims of the text, checked), ``paper_readme.py`` (the README's
results block); ``keys.py`` names the summary keys the claims read, shared with the scripts that write them.

    python experiments/paper_numbers.py [--quick] [--out paper/generated]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (ROOT, HERE):  # run as a script from anywhere, or loaded by file name (tests/test_paper.py)
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from paper_artifacts import (  # noqa: E402
    QUICK,
    RESULTS,
    MissingArtifactError,
    Source,
    SweepRow,
    bench_coord,
    bench_parameterize,
    coord_table,
    flat,
    rel,
    revision_of,
    short_revision,
    transfer_table,
)
from paper_claims import CLAIMS, ROUTE, check_claims, targets_lines  # noqa: E402
from paper_format import (  # noqa: E402
    Macros,
    camel,
    fmt_exponent,
    fmt_fixed,
    fmt_loss,
    fmt_percent,
    fmt_sci,
    number_words,
    tex_escape,
)
from paper_readme import README_FIGURES, answer_lines, markdown, with_results  # noqa: E402
from paper_theory import theory  # noqa: E402

# what the tests and other callers use from here, besides main
__all__ = ["CLAIMS", "EXPERIMENTS", "QUICK", "RESULTS", "Experiment", "Macros", "MissingArtifactError", "Source",
           "camel", "check_claims", "fmt_exponent", "fmt_fixed", "fmt_loss", "fmt_percent", "fmt_sci", "generate",
           "main", "number_words", "theory", "with_results"]

GENERATED = ROOT / "paper" / "generated"
README = ROOT / "README.md"


@dataclass(frozen=True)
class Experiment:
    """An experiment whose artifacts the paper reads: its folder, macro prefix, kind and label."""

    name: str
    prefix: str
    kind: str
    label: str = ""
    filename: str = "summary.json"


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("tune_base", "Tune", "flat", "Tuning"),
    Experiment("transfer_mlp", "Mlp", "flat", "MLP, MNIST-1D"),
    Experiment("transfer_question", "Question", "flat", "The question's networks, Adam"),
    Experiment("transfer_gpt", "Gpt", "flat", "GPT, Adam"),
    Experiment("transfer_mlp_s4", "MlpSFour", "extra", "MLP, MNIST-1D, 4 seeds"),
    Experiment("coord_mlp", "CoordMlp", "coord", "Coordinate check, MLP"),
    Experiment("coord_gpt", "CoordGpt", "flat", "Coordinate check, GPT"),
    Experiment("bench_parameterize", "Bench", "bench_parameterize", filename="bench_parameterize.json"),
    Experiment("bench_coord", "BenchCoord", "bench_coord", filename="bench_coord.json"),
)


def generate(src: Source) -> tuple[Macros, str, list[str]]:
    """All macros, the Markdown results block and the claims that fail; :class:`MissingArtifactError`
    names every missing artifact."""
    m = Macros()
    m.preamble.append(rf"\graphicspath{{{{{_graphics_root(src)}}}}}")
    m.add("ArtifactKind", "quick runs (not the paper's results)" if src.quick else "full runs", "artifacts")
    theory(m)
    missing: list[str] = []
    revisions: dict[str, str] = {}
    rows: list[SweepRow] = []
    bench_lines: list[str] = []
    coord_lines: list[str] = []
    loaded: dict[str, dict[str, Any]] = {}
    for exp in EXPERIMENTS:
        try:
            data = loaded[exp.name] = src.load(exp.name, exp.filename)
            revisions[exp.name] = revision_of(data)
            if exp.kind in ("flat", "coord", "extra"):  # "extra": macros only, no rows in the table of optima
                found = flat(m, exp.prefix, exp.name, data, src, exp.label)
                rows += found if exp.kind != "extra" else []
            if exp.kind == "coord":
                coord_lines += coord_table(m, exp.prefix, data, rel(src.path(exp.name)))
            elif exp.kind == "bench_coord":
                bench_lines += bench_coord(m, exp.prefix, exp.name, data, src)
            elif exp.kind == "bench_parameterize":
                bench_lines += bench_parameterize(m, exp.prefix, exp.name, data, src)
        except MissingArtifactError as e:
            missing.append(str(e))
    if missing:
        raise MissingArtifactError("the paper needs these artifacts:\n  " + "\n  ".join(missing))
    with contextlib.suppress(MissingArtifactError):  # the route's targets row, where mutransfer.py has run
        loaded[ROUTE] = src.load(ROUTE)
    transfer_table(m, rows)
    revs = sorted({short_revision(r) for r in revisions.values()})
    m.add("GitRevision", tex_escape(", ".join(revs)), "artifacts")
    provenance = []
    for exp in EXPERIMENTS:
        data = loaded[exp.name]
        date = str(data.get("date") or data.get("provenance", {}).get("date") or "n/a")
        provenance.append(rf"\texttt{{{tex_escape(rel(src.path(exp.name, exp.filename)))}}} & "
                          rf"\texttt{{{tex_escape(short_revision(revisions[exp.name]))}}} & {tex_escape(date)} \\")
    m.add("TableProvenanceRows", "\n".join(provenance), "artifacts")
    figures = [(caption, rel(src.root / m.values[name]).removesuffix(".pdf") + ".png")
               for name, caption in README_FIGURES.items()]
    md = markdown(src, rows, coord_lines, bench_lines, revs, figures, targets_lines(loaded), answer_lines(loaded))
    return m, md, check_claims(loaded)


def _graphics_root(src: Source) -> str:
    """The artifact root relative to ``paper/`` (where LaTeX runs), with a trailing slash."""
    rel = Path("..") / src.root.relative_to(ROOT) if src.root.is_relative_to(ROOT) else src.root
    return rel.as_posix().rstrip("/") + "/"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="read out/quick/ (the --quick runs) instead")
    parser.add_argument("--root", type=Path, help="read artifacts from this folder instead")
    parser.add_argument("--out", type=Path, default=GENERATED, help="where numbers.tex and results.md go")
    args = parser.parse_args(argv)
    root = args.root or (QUICK if args.quick else RESULTS)
    src = Source(root.resolve(), quick=args.quick)
    try:
        macros, md, failed = generate(src)
    except MissingArtifactError as e:
        print(f"paper_numbers: {e}", file=sys.stderr)
        return 1
    if failed:
        what = "warning" if src.quick else "error"
        print(f"paper_numbers: {what}: the paper's text says, but these artifacts do not show:\n  "
              + "\n  ".join(failed), file=sys.stderr)
        if not src.quick:
            print("revise paper/paper.tex (and CLAIMS in experiments/paper_claims.py); nothing written",
                  file=sys.stderr)
            return 1
    args.out.mkdir(parents=True, exist_ok=True)
    header = (f"Generated by experiments/paper_numbers.py from {rel(src.root)} ({macros.values['ArtifactKind']}).\n"
              "Do not edit: rerun `python experiments/run_all.py --quick|--full` or experiments/paper_numbers.py.")
    (args.out / "numbers.tex").write_text(macros.tex(header))
    (args.out / "results.md").write_text(md)
    print(f"wrote {rel(args.out / 'numbers.tex')} ({len(macros.values)} macros) and {rel(args.out / 'results.md')}")
    if not src.quick and args.root is None and args.out == GENERATED:  # the full runs' results go in the README
        README.write_text(with_results(README.read_text(), md))
        print(f"updated the results block of {rel(README)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

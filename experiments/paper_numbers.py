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

    python experiments/paper_numbers.py [--quick] [--out paper/generated]
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from scaling.coord import CONFIDENCE  # noqa: E402
from scaling.predict import mlp_exponents, weight_exponents  # noqa: E402
from scaling.sweep.analysis import analyze  # noqa: E402
from scaling.sweep.train import PLATEAU_FACTOR, PLATEAU_PATIENCE, PLATEAU_THRESHOLD  # noqa: E402
from scaling.table import PARAMETERIZATIONS, ROLES, Parameterization, Power  # noqa: E402

# the drifts' seed-bootstrap interval (scaling.analysis.analyze's default)
DRIFT_CONFIDENCE: float = inspect.signature(analyze).parameters["confidence"].default
RESULTS = ROOT / "experiments" / "results"
QUICK = ROOT / "out" / "quick"
GENERATED = ROOT / "paper" / "generated"
README = ROOT / "README.md"
README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"

BUILTIN_ROWS = ("sp", "ntk", "mfp", "mup", "mup-table8")
ROW_LABELS = {"sp": "SP", "ntk": "NTK", "mfp": "MFP", "mup": r"$\mu$P (Table 3)", "mup-table8": r"$\mu$P (Table 8)"}
LAYERS = ("input", "hidden", "logits")


class MissingArtifactError(Exception):
    """An artifact the paper needs is not there."""


# --- macros ----------------------------------------------------------------------------------------


@dataclass
class Macros:
    """The macros of ``numbers.tex``, in order, each with a comment saying where it comes from."""

    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    preamble: list[str] = field(default_factory=list)

    def add(self, name: str, value: str, source: str = "") -> None:
        if not re.fullmatch(r"[A-Za-z]+", name):
            raise ValueError(f"macro name {name!r} must be ASCII letters only")
        if name in self.values:
            raise ValueError(f"macro \\{name} defined twice")
        self.values[name] = value
        self.sources[name] = source

    def tex(self, header: str) -> str:
        lines = [f"% {line}" if line else "%" for line in header.splitlines()]
        lines += self.preamble
        source = None
        for name, value in self.values.items():
            if self.sources[name] != source:
                source = self.sources[name]
                lines.append(f"% --- {source}")
            lines.append(f"\\newcommand{{\\{name}}}{{{value}}}")
        return "\n".join(lines) + "\n"


def camel(text: str) -> str:
    """``mup-table8`` -> ``MupTableEight``; ``transfer_mlp`` -> ``TransferMlp`` (digits spelled out)."""
    words = re.findall(r"[A-Za-z]+|\d+", text)
    return "".join(number_words(int(w)) if w.isdigit() else w[:1].upper() + w[1:].lower() for w in words)


_ONES = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten", "Eleven", "Twelve",
         "Thirteen", "Fourteen", "Fifteen", "Sixteen", "Seventeen", "Eighteen", "Nineteen")
_TENS = ("", "", "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety")


def number_words(n: int) -> str:
    """An integer in CamelCase words: 32 -> ``ThirtyTwo``, 1024 -> ``OneThousandTwentyFour``."""
    if n < 0:
        return "Minus" + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + (_ONES[n % 10] if n % 10 else "")
    for size, word in ((10**6, "Million"), (1000, "Thousand"), (100, "Hundred")):
        if n >= size:
            rest = n % size
            return number_words(n // size) + word + (number_words(rest) if rest else "")
    raise AssertionError(n)  # pragma: no cover


# --- formatting ------------------------------------------------------------------------------------


def fmt_fixed(x: float, digits: int = 2, sign: bool = False) -> str:
    """``0.1707`` -> ``0.17`` (``+0.17`` with ``sign``), in math mode so that a minus sign is one."""
    _finite(x)
    s = f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"
    if float(s) == 0:  # -0.00 -> 0.00
        s = ("+" if sign else "") + f"{0:.{digits}f}"
    return rf"\ensuremath{{{s}}}"


def fmt_percent(x: float) -> str:
    """A relative quantity as a percentage, two significant digits below 100\\%: ``0.1726`` -> ``17\\%``."""
    _finite(x)
    p = 100 * x
    s = f"{p:.0f}" if abs(p) >= 9.95 else f"{p:.1f}"  # 17%, 220%; 1.0%, 0.3%
    if float(s) == 0:
        s = "0.0"
    return (rf"\ensuremath{{{s}}}" if s.startswith("-") else s) + r"\%"


def fmt_sci(x: float, digits: int = 2) -> str:
    """``0.0137`` -> ``1.4\\times10^{-2}``, ``0.01`` -> ``10^{-2}``, ``0.5`` -> ``0.5``; in math mode."""
    _finite(x)
    if x == 0:
        return r"\ensuremath{0}"
    exp = math.floor(math.log10(abs(x)))
    mant = round(x / 10**exp, digits - 1)
    if abs(mant) >= 10:
        mant, exp = mant / 10, exp + 1
    text = f"{mant:.{digits - 1}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if exp in (-1, 0, 1, 2):
        plain = f"{x:.{max(digits - 1 - exp, 0)}f}"
        return rf"\ensuremath{{{plain.rstrip('0').rstrip('.') if '.' in plain else plain}}}"
    if text in ("1", "-1"):
        return rf"\ensuremath{{{text[:-1]}10^{{{exp}}}}}"
    return rf"\ensuremath{{{text}\times10^{{{exp}}}}}"


def fmt_loss(x: float) -> str:
    """A loss with three decimals below 1, two above (``0.280``, ``1.10``)."""
    _finite(x)
    return f"{x:.2f}" if abs(x) >= 1 else f"{x:.3f}"


def fmt_ratio(x: float) -> str:
    """A time ratio with two decimals (``1.05``)."""
    return fmt_fixed(x, 2)


def _frac(x: float) -> str:
    """``x`` as a fraction with a small denominator: ``-0.5`` -> ``-1/2``, ``2.0`` -> ``2``."""
    f = Fraction(x).limit_denominator(8)
    return str(f.numerator) if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


def fmt_exponent(x: float) -> str:
    """A theoretical exponent as a fraction in math mode: ``-0.5`` -> ``$-1/2$``."""
    return rf"\ensuremath{{{_frac(x)}}}"


def fmt_power(p: Power) -> str:
    """A width monomial in LaTeX math: ``m_in^-1/2 m_out`` -> ``m_{\\rm in}^{-1/2} m_{\\rm out}``."""
    parts = []
    for sym, e in (("m_{\\mathrm{in}}", p.fan_in), ("m_{\\mathrm{out}}", p.fan_out)):
        if e == 0:
            continue
        if e == 1:
            parts.append(sym)
        else:
            parts.append(f"{sym}^{{{_frac(e)}}}")
    return "$" + ("".join(parts) if parts else "1") + "$"


def _finite(x: float) -> None:
    if x is None or not math.isfinite(x):
        raise ValueError(f"cannot format a non-finite number {x!r} for the paper")


def tex_escape(text: str) -> str:
    """Escape LaTeX's special characters in plain text (paths, revisions, commands)."""
    out = text.replace("\\", r"\textbackslash{}")
    for ch in "&%$#_{}":
        out = out.replace(ch, "\\" + ch)
    return out.replace("~", r"\textasciitilde{}").replace("^", r"\textasciicircum{}")


# --- theory: the exponent table and the predictions --------------------------------------------------


def abc(row: Parameterization, role: str, family: str) -> tuple[float, float, float]:
    """Absolute abc exponents (TP-IV) of a weight of ``role`` when every width is ``n``.

    ``W = n^-a w``, ``w ~ N(0, n^-2b)``, learning rate ``n^-c``: from :func:`scaling.predict.weight_exponents`,
    ``a`` is minus the multiplier exponent ``alpha``, ``b`` is ``alpha`` minus the effective entry size
    ``sigma`` (which includes PyTorch's default std), and ``c`` is minus the learning-rate exponent.
    """
    w = weight_exponents(row, role, family)  # type: ignore[arg-type]
    return -w.alpha, w.alpha - w.sigma, -w.eta


def theory(m: Macros) -> None:
    """The exponent table (base-relative and abc form) and the predicted coordinate exponents."""
    src = "theory and protocol: scaling.table, scaling.predict, scaling.train, scaling.analysis"
    rows = [PARAMETERIZATIONS[name] for name in BUILTIN_ROWS]

    # Base-relative table, every role, both optimizer families (appendix).
    lines = []
    for row in rows:
        for i, role in enumerate(ROLES):
            rule = row.rule(role)
            label = ROW_LABELS[row.name] if i == 0 else ""
            cells = [label, role, fmt_power(rule.init), fmt_power(rule.multiplier),
                     fmt_power(rule.lr("sgd")), fmt_power(rule.lr("adam")), fmt_power(rule.eps())]
            lines.append(" & ".join(cells) + r" \\")
        lines.append(r"\midrule" if row is not rows[-1] else "")
    m.add("TableBaseRelativeRows", "\n".join(line for line in lines if line), src)

    # abc table for the three weight roles (main text).
    lines = []
    for row in rows:
        cells = [ROW_LABELS[row.name]]
        for role in ("input", "hidden", "output"):
            a, b, c_sgd = abc(row, role, "sgd")
            c_adam = abc(row, role, "adam")[2]
            cells += [fmt_exponent(a), fmt_exponent(b), fmt_exponent(c_sgd), fmt_exponent(c_adam)]
        lines.append(" & ".join(cells) + r" \\")
    m.add("TableAbcRows", "\n".join(lines), src)

    # Predicted exponents of mean|h_1 - h_0| for the ReLU MLP 40-w-w-10.
    lines = []
    for row in rows:
        cells = [ROW_LABELS[row.name]]
        for family in ("sgd", "adam"):
            pred = mlp_exponents(row.name, family)
            cells += [fmt_exponent(pred[layer]) for layer in LAYERS]
        lines.append(" & ".join(cells) + r" \\")
    m.add("TablePredictedRows", "\n".join(lines), src)
    for row in rows:
        for family in ("sgd", "adam"):
            pred = mlp_exponents(row.name, family)
            for layer in LAYERS:
                m.add(f"Pred{camel(row.name)}{camel(family)}{camel(layer)}", fmt_exponent(pred[layer]), src)
    # Protocol constants of the package that the text names.
    m.add("PlateauFactor", fmt_sig(PLATEAU_FACTOR, 2), src)
    m.add("PlateauPatience", str(PLATEAU_PATIENCE), src)
    m.add("PlateauThreshold", f"{100 * PLATEAU_THRESHOLD:g}\\%", src)
    m.add("AnalysisConfidence", f"{100 * DRIFT_CONFIDENCE:g}\\%", src)
    m.add("CoordConfidence", f"{100 * CONFIDENCE:g}\\%", src)
    # The network of the original question has no hidden-to-hidden layer: its logits grow like n.
    shallow = mlp_exponents("sp", "adam", hidden_layers=0)
    m.add("PredSpAdamLogitsShallow", fmt_exponent(shallow["logits"]), src)


# --- artifacts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where the artifacts are read from: ``experiments/results`` (full) or ``out/quick``."""

    root: Path
    quick: bool

    def path(self, experiment: str, filename: str = "summary.json") -> Path:
        return self.root / experiment / filename

    def load(self, experiment: str, filename: str = "summary.json") -> dict[str, Any]:
        path = self.path(experiment, filename)
        if not path.is_file():
            how = f"python experiments/{experiment}.py{' --quick' if self.quick else ''}"
            if experiment == "bench_parameterize":
                how += f" --json {_rel(path)}"
            raise MissingArtifactError(f"{_rel(path)} (written by `{how}`)")
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def figure(self, experiment: str, name: str) -> str:
        """A figure's path relative to the ``\\graphicspath`` root, checked to exist."""
        path = self.root / experiment / name
        if not path.is_file():
            raise MissingArtifactError(f"{_rel(path)} (a figure named in {experiment}/summary.json)")
        return f"{experiment}/{name}"


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def revision_of(data: Mapping[str, Any]) -> str:
    """The git revision an artifact records (``provenance.git_revision`` or a top-level field)."""
    prov = data.get("provenance", {})
    rev = prov.get("git_revision") or data.get("git_revision") or data.get("git") or "unknown"
    return str(rev)


def short_revision(rev: str) -> str:
    head, plus, tail = rev.partition("+")
    return head[:7] + plus + tail


# --- flat summaries --------------------------------------------------------------------------------

SKIPPED_KEYS = frozenset({"experiment", "date", "torch", "python", "git_revision", "figures"})


def fmt_value(key: str, value: Any) -> str:
    """A summary value formatted by what its key says it is (see ``experiments/common.py``'s keys)."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        if re.fullmatch(r"\d+(,\d+)+", value):  # a list of widths
            return widths_list(int(w) for w in value.split(","))
        return tex_escape(value)
    tokens = key.split("_")
    if "flops" in tokens:
        return fmt_sci(float(value))
    if isinstance(value, int):
        return f"{value:,}".replace(",", r"\,") if abs(value) >= 10_000 else str(value)
    x = float(value)
    if "loss" in tokens:
        return fmt_loss(x)
    if "log2" in tokens or (tokens[0] != "target" and tokens[-1] in ("lo", "hi") and "grid" in tokens):
        return fmt_fixed(x, 2, sign="shift" in tokens)
    if "drift" in tokens:
        return fmt_fixed(x, 2, sign=True)
    if "seconds" in tokens:
        return fmt_fixed(x, 0 if x >= 10 else 1)
    if "ratio" in tokens:
        return fmt_fixed(x, 2)
    if "regret" in tokens or tokens[0] == "gap":
        return fmt_percent(x)
    if tokens[-1] == "lr":
        return fmt_sci(x)
    if x == round(x) and abs(x) < 1e6:
        return fmt_fixed(x, 0) if x < 0 else str(int(x))
    return fmt_sig(x, 3)


def fmt_sig(x: float, digits: int = 3) -> str:
    """``digits`` significant digits, plain notation for moderate sizes, in math mode."""
    _finite(x)
    if x != 0 and not 1e-3 <= abs(x) < 1e5:
        return fmt_sci(x, digits)
    return rf"\ensuremath{{{float(f'{x:.{digits}g}'):g}}}"


def widths_list(widths: Iterable[int]) -> str:
    """``32, 64 and 128``."""
    ws = sorted(widths)
    return ", ".join(str(w) for w in ws[:-1]) + (" and " if len(ws) > 1 else "") + str(ws[-1])


def sweeps_of(summary: Mapping[str, Any]) -> list[str]:
    """The sweep prefixes of a flat summary: every ``<sweep>_drift`` key (``adam_mup``, ``adam_sp_tuned``)."""
    candidates = [k.removesuffix("_drift") for k in summary
                  if k.endswith("_drift") and not k.startswith(("target_", "check_"))]
    return [c for c in candidates if widths_of(summary, c)]  # not ``<sweep>_max_lr_drift``


def widths_of(summary: Mapping[str, Any], sweep: str) -> list[int]:
    pattern = re.compile(rf"{re.escape(sweep)}_w(\d+)_log2_lr")
    return sorted(int(m.group(1)) for k in summary if (m := pattern.fullmatch(k)))


@dataclass
class SweepRow:
    """One sweep of an experiment (a row of the paper's table of optima)."""

    experiment: str
    label: str
    sweep: str
    summary: Mapping[str, Any]

    def get(self, *parts: object) -> Any:
        return self.summary["_".join([self.sweep, *map(str, parts)])]

    @property
    def widths(self) -> list[int]:
        return widths_of(self.summary, self.sweep)


SWEEP_WORDS = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "momentum": "SGD+mom.", "sp": "SP", "ntk": "NTK",
               "mfp": "MFP", "mup": r"$\mu$P", "toy": "toy data", "mnist1d": "MNIST-1D",
               "question": "10-$n$-2", "funnel": "$n$-$n/4$ funnel, plateau"}
SWEEP_MODIFIERS = {"tuned": "+ tuned constants", "noalign": r"+ readout LR $m^{-1/2}$", "table8": "(Table 8)",
                   "long": "+ long training", "initreadout": "+ readout init. not zero"}


def sweep_label(sweep: str) -> str:
    """``adam_mup_tuned`` -> ``Adam, $\\mu$P + tuned constants``; ``question_toy_sp`` -> ``10-$n$-2, toy data, SP``."""
    parts: list[str] = []
    for token in sweep.split("_"):
        if token in SWEEP_MODIFIERS and parts:
            parts[-1] += " " + SWEEP_MODIFIERS[token]
        else:
            parts.append(SWEEP_WORDS.get(token, tex_escape(token)))
    return ", ".join(parts)


# Figure macros: name -> (experiment, regular expression of the PDF's name in summary.json's "figures").
# File names encode their configuration, so quick and full runs differ; the patterns match both.
FIGURES: dict[str, tuple[str, str]] = {
    "FigMlpAdam": ("transfer_mlp", r"transfer_mlp_.*_adam\.pdf"),
    "FigMlpTuned": ("transfer_mlp", r"transfer_mlp_.*_tuned\.pdf"),
    "FigMlpNoalign": ("transfer_mlp", r"transfer_mlp_.*_noalign\.pdf"),
    "FigMlpSgd": ("transfer_mlp", r"transfer_mlp_.*_sgd\.pdf"),
    "FigMlpOptima": ("transfer_mlp", r"optima_mlp_.*\.pdf"),
    "FigMlpLong": ("transfer_mlp", r"transfer_mlp_.*_long\.pdf"),
    "FigQuestionToy": ("transfer_question", r"transfer_question_toy_.*\.pdf"),
    "FigQuestionMnist": ("transfer_question", r"transfer_question_mnist1d_.*\.pdf"),
    "FigFunnelToy": ("transfer_question", r"transfer_funnel_toy_.*\.pdf"),
    "FigFunnelMnist": ("transfer_question", r"transfer_funnel_mnist1d_.*\.pdf"),
    "FigQuestionOptima": ("transfer_question", r"question_lr_vs_width_.*\.pdf"),
    "FigCoordMlpDelta": ("coord_mlp", r"coord_mlp_.*_delta\.pdf"),
    "FigCoordMlpAbs": ("coord_mlp", r"coord_mlp_.*_abs\.pdf"),
    "FigCoordGptDelta": ("coord_gpt", r"coord_gpt_.*_delta\.pdf"),
    "FigCoordGptAbs": ("coord_gpt", r"coord_gpt_.*_abs\.pdf"),
    "FigGpt": ("transfer_gpt", r"transfer_gpt_.*\.pdf"),
}


def flat(m: Macros, prefix: str, experiment: str, summary: Mapping[str, Any], src: Source,
         label: str) -> list[SweepRow]:
    """A macro for every key of a flat ``summary.json``, figure macros, and each sweep's table of optima."""
    where = _rel(src.path(experiment))
    mode = summary.get("mode")
    if mode is not None and mode != ("quick" if src.quick else "full"):
        raise MissingArtifactError(f"{where} holds a {mode} run, not a {'quick' if src.quick else 'full'} one "
                                   f"(rerun `python experiments/{experiment}.py{' --quick' if src.quick else ''}`)")
    for key, value in summary.items():
        if key not in SKIPPED_KEYS:
            m.add(prefix + camel(key), fmt_value(key, value), where)
    m.add(f"{prefix}Revision", tex_escape(short_revision(revision_of(summary))), where)
    figures = [f for f in str(summary.get("figures") or "").split(",") if f.endswith(".pdf")]
    for name, (exp, pattern) in FIGURES.items():
        if exp != experiment:
            continue
        hits = [f for f in figures if re.fullmatch(pattern, f)]
        if len(hits) != 1:
            raise MissingArtifactError(f"{where}: figures matching {pattern!r} for \\{name}: {hits or 'none'}")
        m.add(name, src.figure(experiment, hits[0]), where)
    rows = []
    for sweep in sweeps_of(summary):
        row = SweepRow(experiment, label, sweep, summary)
        key = prefix + camel(sweep)
        m.add(f"{key}OptimaRows", optima_rows(row), where)
        ws = row.widths
        if ws:  # width-independent names for the base and widest optimum (quick and full grids differ)
            base, last = row.get(f"w{ws[0]}", "log2_lr"), row.get(f"w{ws[-1]}", "log2_lr")
            if base is not None and last is not None:
                m.add(f"{key}LogTwoLrBase", fmt_fixed(base, 2), where)
                m.add(f"{key}LogTwoLrWidest", fmt_fixed(last, 2), where)
                m.add(f"{key}LrBase", fmt_sci(2.0**base), where)
                m.add(f"{key}LrWidest", fmt_sci(2.0**last), where)
                m.add(f"{key}LrFactorWidest", fmt_sig(2.0 ** (last - base), 2), where)
            m.add(f"{key}LossAtBaseLrWidest", _loss(row.get(f"w{ws[-1]}", "loss_at_base_lr")), where)
        rows.append(row)
    return rows


def _edge_mark(edge: str | None) -> str:
    return {"low": r"$^{\leftarrow}$", "high": r"$^{\rightarrow}$"}.get(edge or "", "")


def _fx(x: Any, digits: int = 2, sign: bool = False) -> str:
    return "n/a" if x is None else fmt_fixed(float(x), digits, sign)


def _pct(x: Any) -> str:
    return "n/a" if x is None else fmt_percent(float(x))


def _loss(x: Any) -> str:
    return "n/a" if x is None else fmt_loss(float(x))


def optima_rows(row: SweepRow) -> str:
    """Table body: width, log2 lr* (an arrow marks a grid edge), best loss, loss at the base lr*, regret."""
    lines = []
    for w in row.widths:
        cells = [str(w), _fx(row.get(f"w{w}", "log2_lr")) + _edge_mark(row.get(f"w{w}", "edge")),
                 _loss(row.get(f"w{w}", "best_loss")), _loss(row.get(f"w{w}", "loss_at_base_lr")),
                 _pct(row.get(f"w{w}", "regret"))]
        lines.append(" & ".join(cells) + r" \\")
    return "\n".join(lines)


def transfer_table(m: Macros, rows: Sequence[SweepRow]) -> None:
    """The paper's table of optima: a heading line per experiment, then one line per sweep."""
    lines = []
    previous = None
    for row in rows:
        if row.label != previous:
            if previous is not None:
                lines.append(r"\midrule")
            lines.append(rf"\multicolumn{{7}}{{@{{}}l}}{{\emph{{{row.label}}}}} \\")
        ws = row.widths
        base, last = ws[0], ws[-1]
        cells = [sweep_label(row.sweep),
                 f"{_fx(row.get('drift'), sign=True)} [{_fx(row.get('drift_lo'), sign=True)}, "
                 f"{_fx(row.get('drift_hi'), sign=True)}]",
                 _fx(row.get(f"w{base}", "log2_lr")) + _edge_mark(row.get(f"w{base}", "edge")),
                 _fx(row.get(f"w{last}", "log2_lr")) + _edge_mark(row.get(f"w{last}", "edge")),
                 str(last), _loss(row.get(f"w{last}", "best_loss")), _pct(row.get(f"w{last}", "regret"))]
        lines.append(r"\quad " + " & ".join(cells) + r" \\")
        previous = row.label
    m.add("TableTransferRows", "\n".join(lines), "all transfer summaries")


# --- benchmarks ------------------------------------------------------------------------------------


def bench_coord(m: Macros, prefix: str, experiment: str, data: Mapping[str, Any], src: Source) -> list[str]:
    """The coordinate-check benchmark: time of a check over the same bare training, ours and mup's."""
    where = _rel(src.path(experiment, "bench_coord.json"))
    cfg, ratio = data["config"], data["ratio"]
    m.add(f"{prefix}Widths", rf"\ensuremath{{{min(cfg['widths'])}\ldots{max(cfg['widths'])}}}", where)
    m.add(f"{prefix}Seeds", str(cfg["seeds"]), where)
    m.add(f"{prefix}Steps", str(cfg["steps"]), where)
    m.add(f"{prefix}Repeats", str(cfg["repeats"]), where)
    m.add(f"{prefix}Ours", fmt_ratio(ratio["ours"]["median"]), where)
    m.add(f"{prefix}Mup", fmt_ratio(ratio["mup"]["median"]), where)
    m.add(f"{prefix}OursSameStates", fmt_ratio(ratio["ours_same_states"]["median"]), where)
    return [
        f"| coordinate check / bare training (median of {cfg['repeats']} repeats) | "
        f"{ratio['ours']['median']:.2f} (same states as mup: {ratio['ours_same_states']['median']:.2f}) | "
        f"{ratio['mup']['median']:.2f} |",
    ]


def coord_table(m: Macros, prefix: str, summary: Mapping[str, Any], where: str) -> list[str]:
    """The measured-vs-predicted table of ``coord_mlp``: ``table_<row>_<opt>_<layer>_{measured,lo,hi,predicted}``."""
    pattern = re.compile(r"table_([a-z0-9]+)_([a-z]+)_(input|hidden|logits)_measured")
    cells: dict[tuple[str, str], dict[str, str]] = {}
    md = []
    for key in summary:
        if (hit := pattern.fullmatch(key)) is None:
            continue
        row, opt, layer = hit.groups()
        base = key.removesuffix("_measured")
        got, lo, hi, pred = (summary[f"{base}_{k}"] for k in ("measured", "lo", "hi", "predicted"))
        ok = summary.get(f"{base}_match")
        mark = "" if ok else r"$^{\times}$"
        interval = f"{{\\scriptsize[{fmt_fixed(lo, 2)}, {fmt_fixed(hi, 2)}]}}"
        cells.setdefault((row, opt), {})[layer] = f"{fmt_fixed(got, 2)}{mark} {interval} & {fmt_exponent(pred)}"
        md.append((row, opt, layer, got, lo, hi, pred, ok))
    if not cells:
        raise MissingArtifactError(f"{where} has no table_<row>_<optimizer>_<layer>_measured keys")
    lines = []
    for (row, opt), by_layer in cells.items():
        label = f"{_row_name(row)}, {SWEEP_WORDS.get(opt, opt)}"
        lines.append(" & ".join([label, *(by_layer.get(layer, "n/a & n/a") for layer in LAYERS)]) + r" \\")
    m.add(f"{prefix}TableRows", "\n".join(lines), where)
    return [f"| {row} {opt} {layer} | {got:+.2f} [{lo:+.2f}, {hi:+.2f}] | {pred:+.2f} | {'yes' if ok else 'no'} |"
            for row, opt, layer, got, lo, hi, pred, ok in md]


def _row_name(row: str) -> str:
    return {"sp": "SP", "ntk": "NTK", "mfp": "MFP", "mup": r"$\mu$P", "mup-table8": r"$\mu$P (Table 8)"}.get(
        row, tex_escape(row))


BENCH_RUNS = {"ours mup": "OursMup", "ours mup-table8": "OursMupTableEight",
              "ours mup-table8 (fused)": "OursMupTableEightFused", "microsoft/mup": "Mup",
              "sp in groups": "SpGroups", "sp (fused)": "SpFused"}


def _bench_rows(rows: Mapping[str, Any]) -> dict[str, Any]:
    """A case's timings keyed as in :data:`BENCH_RUNS` (``sp in 3 groups``, SP split into as many param
    groups as muP's, becomes ``sp in groups``)."""
    return {("sp in groups" if k.startswith("sp in ") else k): v for k, v in rows.items()}


def bench_parameterize(m: Macros, prefix: str, experiment: str, data: Mapping[str, Any], src: Source) -> list[str]:
    """Per-step time over SP's (median over interleaved rounds, CPU time, IQR) and the 7B set-up benchmark."""
    where = _rel(src.path(experiment, "bench_parameterize.json"))
    cfg = data["config"]
    m.add(f"{prefix}MlpWidths", widths_list(int(w) for w in cfg["mlp_widths"]), where)
    m.add(f"{prefix}MlpBase", str(cfg["mlp_base"]), where)
    m.add(f"{prefix}GptWidth", str(cfg["gpt_width"]), where)
    m.add(f"{prefix}GptBase", str(cfg["gpt_base"]), where)
    m.add(f"{prefix}Rounds", str(cfg["rounds"]), where)
    m.add(f"{prefix}Threads", str(cfg["threads"]), where)
    m.add(f"{prefix}TargetRatio", fmt_ratio(cfg["target_ratio"]), where)
    m.add(f"{prefix}Revision", tex_escape(short_revision(revision_of(data))), where)
    mlp = {w: _bench_rows(rows) for w, rows in data["mlp"].items()}
    cases = [(f"MLP 40-{w}-{w}-10", f"Mlp{number_words(int(w))}", rows) for w, rows in mlp.items()]
    for which, w in (("Widest", max(mlp, key=int)), ("Narrowest", min(mlp, key=int))):
        m.add(f"{prefix}Mlp{which}", str(w), where)
        for run, name in BENCH_RUNS.items():
            m.add(f"{prefix}Mlp{which}{name}", fmt_ratio(mlp[w][run]["cpu_ratio"]), where)
        m.add(f"{prefix}Mlp{which}SpGroupsCount", number_words(int(mlp[w]["sp in groups"]["groups"])).lower(), where)
    cases.append((f"GPT $d={cfg['gpt_width']}$", "Gpt", _bench_rows(data["gpt"])))
    lines, md = [], []
    for label, key, rows in cases:
        cells = [label]
        for run, name in BENCH_RUNS.items():
            r = rows.get(run)
            if r is None:
                raise MissingArtifactError(f"{where}: no {run!r} timing for {label}")
            m.add(f"{prefix}{key}{name}", fmt_ratio(r["cpu_ratio"]), where)
            m.add(f"{prefix}{key}{name}Iqr", f"[{fmt_ratio(r['cpu_ratio_q1'])}, {fmt_ratio(r['cpu_ratio_q3'])}]",
                  where)
            cells.append(f"{fmt_ratio(r['cpu_ratio'])} {{\\scriptsize[{fmt_ratio(r['cpu_ratio_q1'])}, "
                         f"{fmt_ratio(r['cpu_ratio_q3'])}]}}")
        lines.append(" & ".join(cells) + r" \\")
        md.append(f"| per-step time / SP's, {_md(label)} | {rows['ours mup']['cpu_ratio']:.2f} (Table 3), "
                  f"{rows['ours mup-table8']['cpu_ratio']:.2f} (Table 8) | {rows['microsoft/mup']['cpu_ratio']:.2f} |")
    m.add(f"{prefix}TableRows", "\n".join(lines), where)
    sk = data["skeleton"]
    ours, theirs = sk["ours"], sk["microsoft/mup"]
    m.add(f"{prefix}SkeletonParams", fmt_fixed(ours["params_b"], 1), where)
    m.add(f"{prefix}SkeletonOursSeconds", fmt_sig(ours["seconds"], 2), where)
    m.add(f"{prefix}SkeletonMupSeconds", fmt_sig(theirs["seconds"], 2), where)
    m.add(f"{prefix}SkeletonOursMb", fmt_sig(ours["peak_mb"], 2), where)
    m.add(f"{prefix}SkeletonMupMb", fmt_sig(theirs["peak_mb"], 2), where)
    md.append(f"| set-up of a {ours['params_b']:.1f}B-parameter model on meta | "
              f"{ours['seconds']:.3f} s, {ours['peak_mb']:.2g} MB peak | "
              f"{theirs['seconds']:.3f} s, {theirs['peak_mb']:.2g} MB peak |")
    return md


# --- the paper's qualitative claims ---------------------------------------------------------------

Claim = tuple[str, Callable[[Mapping[str, Mapping[str, Any]]], bool]]


def _widest(s: Mapping[str, Any], sweep: str, what: str) -> Any:
    return s[f"{sweep}_w{max(widths_of(s, sweep))}_{what}"]


def _bench(a: Mapping[str, Mapping[str, Any]], case: str, run: str) -> float:
    """A per-step ratio of bench_parameterize: ``case`` an MLP width (as a string), ``narrowest`` or ``gpt``."""
    data = a["bench_parameterize"]
    if case == "narrowest":
        case = min(data["mlp"], key=int)
    rows = data["gpt"] if case == "gpt" else data["mlp"][case]
    return float(_bench_rows(rows)[run]["cpu_ratio"])


def _tuned_better_everywhere(s: Mapping[str, Any]) -> bool:
    return all(s[f"adam_mup_tuned_w{w}_best_loss"] < s[f"adam_mup_w{w}_best_loss"] for w in widths_of(s, "adam_mup"))


# What paper.tex says in words about the numbers; each must hold on the artifacts. A failed claim is an
# error for the full runs (revise the text) and a warning for quick runs (small grids are noisy).
CLAIMS: tuple[Claim, ...] = (
    ("MLP, SP+Adam: the optimum falls with width (drift interval below 0)",
     lambda a: a["transfer_mlp"]["adam_sp_drift_hi"] < 0),
    ("MLP, muP+Adam: drift positive (interval above 0) and smaller in size than SP's",
     lambda a: a["transfer_mlp"]["adam_mup_drift_lo"] > 0
     and abs(a["transfer_mlp"]["adam_mup_drift"]) < abs(a["transfer_mlp"]["adam_sp_drift"])),
    ("MLP, muP+Adam: regret at the widest width above the target",
     lambda a: a["transfer_mlp"]["adam_mup_regret_max_width"] > a["transfer_mlp"]["target_mup_regret_max"]),
    ("MLP: the widest muP model at the base width's LR beats the widest SP model at its base width's LR",
     lambda a: _widest(a["transfer_mlp"], "adam_mup", "loss_at_base_lr")
     < _widest(a["transfer_mlp"], "adam_sp", "loss_at_base_lr")),
    ("MLP: tuned constants lower muP's best loss at every width",
     lambda a: _tuned_better_everywhere(a["transfer_mlp"])),
    ("MLP: tuned constants shrink muP's drift but leave its regret above the target",
     lambda a: abs(a["transfer_mlp"]["adam_mup_tuned_drift"]) < abs(a["transfer_mlp"]["adam_mup_drift"])
     and a["transfer_mlp"]["adam_mup_tuned_regret_max_width"] > a["transfer_mlp"]["target_mup_regret_max"]),
    ("MLP: the muTransfer route beats the direct SP sweep's best run at the widest width, at less compute",
     lambda a: a["transfer_mlp"]["gap"] < 0 and a["transfer_mlp"]["gap_cost_ratio"] < 1),
    ("MLP: tuned SP's and tuned muP's own optima at the widest width beat the transferred run",
     lambda a: a["transfer_mlp"]["adam_sp_tuned_best_loss_max_width"] < a["transfer_mlp"]["gap_transferred_loss"]
     and a["transfer_mlp"]["gap_vs_adam_mup_tuned_best"] > 0),
    ("MLP: tuned constants do not rescue SP (drift interval below 0)",
     lambda a: a["transfer_mlp"]["adam_sp_tuned_drift_hi"] < 0),
    ("MLP: the no-alignment readout row removes the drift (interval holds 0, |drift| within the target) and "
     "has regret below the target",
     lambda a: a["transfer_mlp"]["adam_mup_noalign_drift_lo"] < 0 < a["transfer_mlp"]["adam_mup_noalign_drift_hi"]
     and abs(a["transfer_mlp"]["adam_mup_noalign_drift"]) <= a["transfer_mlp"]["target_mup_drift_abs_max"]
     and a["transfer_mlp"]["adam_mup_noalign_regret_max_width"] < a["transfer_mlp"]["target_mup_regret_max"]),
    ("MLP, 4 seeds: SP's drift interval below 0, muP's above the +-0.1 target, regret above 2%",
     lambda a: a["transfer_mlp_s4"]["adam_sp_drift_hi"] < 0
     and a["transfer_mlp_s4"]["adam_mup_drift_lo"] > a["transfer_mlp"]["target_mup_drift_abs_max"]
     and a["transfer_mlp_s4"]["adam_mup_regret_max_width"] > a["transfer_mlp"]["target_mup_regret_max"]),
    ("MLP: the muTransfer route's cost ratio is above a tenth with 2 seeds and below with 4",
     lambda a: a["transfer_mlp_s4"]["gap_cost_ratio"] < a["transfer_mlp"]["target_cost_ratio_max"]
     < a["transfer_mlp"]["gap_cost_ratio"]),
    ("MLP, 4x steps on the validation loss: SP's drift interval below 0 and regret above the target; muP's "
     "interval holds 0 with |drift| and regret within the targets; SP's best validation loss below muP's; the "
     "widest models memorize (best training loss below 0.01)",
     lambda a: a["transfer_mlp"]["adam_sp_long_drift_hi"] < 0
     and a["transfer_mlp"]["adam_sp_long_regret_max_width"] > a["transfer_mlp"]["target_mup_regret_max"]
     and a["transfer_mlp"]["adam_mup_long_drift_lo"] < 0 < a["transfer_mlp"]["adam_mup_long_drift_hi"]
     and abs(a["transfer_mlp"]["adam_mup_long_drift"]) <= a["transfer_mlp"]["target_mup_drift_abs_max"]
     and a["transfer_mlp"]["adam_mup_long_regret_max_width"] < a["transfer_mlp"]["target_mup_regret_max"]
     and a["transfer_mlp"]["adam_sp_long_best_loss_max_width"] < a["transfer_mlp"]["adam_mup_long_best_loss_max_width"]
     and a["transfer_mlp"]["adam_sp_long_metric"] == a["transfer_mlp"]["adam_mup_long_metric"] == "val_loss"
     and max(a["transfer_mlp"][f"adam_{p}_long_min_train_loss_max_width"] for p in ("sp", "mup")) < 0.01),
    ("MLP, SGD: SP's drift is smaller in size than with Adam",
     lambda a: abs(a["transfer_mlp"]["sgd_sp_drift"]) < abs(a["transfer_mlp"]["adam_sp_drift"])),
    ("MLP, SGD: SP's drift interval lies above -1/2",
     lambda a: a["transfer_mlp"]["sgd_sp_drift_lo"] > -0.5),
    ("GPT: SP's drift is steeper than on the MLP, and muP's regret is below the MLP target",
     lambda a: a["transfer_gpt"]["sp_drift"] < a["transfer_mlp"]["adam_sp_drift"]
     and a["transfer_gpt"]["mup_regret_max_width"] < a["transfer_mlp"]["target_mup_regret_max"]),
    ("Question, 10-n-2, SP: on toy data the optimum falls between the asked widths; on MNIST-1D it rises between "
     "them but drifts down overall (interval below 0); the largest usable LR does not rise on either",
     lambda a: a["transfer_question"]["question_toy_sp_lr_ratio"] < 1
     and a["transfer_question"]["question_mnist1d_sp_lr_ratio"] > 1
     and a["transfer_question"]["question_mnist1d_sp_drift_hi"] < 0
     and all(a["transfer_question"][f"question_{d}_sp_max_lr_ratio"] <= 1 for d in ("toy", "mnist1d"))),
    ("GPT: muP's drift within its target but its interval reaches beyond it; muP's best and transferred losses "
     "at the widest width are above SP's best",
     lambda a: abs(a["transfer_gpt"]["mup_drift"]) <= a["transfer_gpt"]["target_mup_drift_abs_max"]
     < -a["transfer_gpt"]["mup_drift_lo"]
     and a["transfer_gpt"]["gap_mup_best"] > 0 and a["transfer_gpt"]["gap_mup_transferred"] > 0),
    ("GPT: the no-alignment readout's best loss is below SP's best, its drift interval below 0, its regret above "
     "the MLP target",
     lambda a: a["transfer_gpt"]["gap_mup_noalign_best"] < 0 and a["transfer_gpt"]["mup_noalign_drift_hi"] < 0
     and a["transfer_gpt"]["mup_noalign_regret_max_width"] > a["transfer_mlp"]["target_mup_regret_max"]),
    ("GPT: without the zero readout muP transfers (drift interval holds 0, |drift| within the target, regret below "
     "the MLP target) and loses to SP's best by less than half the zero-readout gap, best and transferred",
     lambda a: a["transfer_gpt"]["mup_initreadout_drift_lo"] < 0 < a["transfer_gpt"]["mup_initreadout_drift_hi"]
     and abs(a["transfer_gpt"]["mup_initreadout_drift"]) <= a["transfer_gpt"]["target_mup_drift_abs_max"]
     and a["transfer_gpt"]["mup_initreadout_regret_max_width"] < a["transfer_mlp"]["target_mup_regret_max"]
     and 0 < a["transfer_gpt"]["gap_mup_initreadout_best"] < a["transfer_gpt"]["gap_mup_best"] / 2
     and 0 < a["transfer_gpt"]["gap_mup_initreadout_transferred"] < a["transfer_gpt"]["gap_mup_transferred"] / 2),
    ("Question, SP: the largest usable LR falls from the small to the large width on all four tasks",
     lambda a: all(a["transfer_question"][f"{n}_{d}_sp_max_lr_ratio"] < 1
                   for n in ("question", "funnel") for d in ("toy", "mnist1d"))),
    ("Question, muP: the three tasks other than 10-n-2 on toy data share one widest width",
     lambda a: len({a["transfer_question"][f"{t}_mup_max_width"]
                    for t in ("question_mnist1d", "funnel_toy", "funnel_mnist1d")}) == 1),
    ("Question, funnel under plateau, SP: drift interval below 0 and regret above the MLP target",
     lambda a: all(a["transfer_question"][f"funnel_{d}_sp_drift_hi"] < 0
                   and a["transfer_question"][f"funnel_{d}_sp_regret_max_width"]
                   > a["transfer_mlp"]["target_mup_regret_max"] for d in ("toy", "mnist1d"))),
    ("Question, muP: the optimum rises with width on the three tasks other than 10-n-2 on toy data, each drift "
     "larger than the MLP's",
     lambda a: all(a["transfer_question"][f"{t}_mup_drift"] > a["transfer_mlp"]["adam_mup_drift"] > 0
                   for t in ("question_mnist1d", "funnel_toy", "funnel_mnist1d"))),
    ("Question, 10-n-2 on toy data: muP's drift is smaller in size than SP's",
     lambda a: abs(a["transfer_question"]["question_toy_mup_drift"])
     < abs(a["transfer_question"]["question_toy_sp_drift"])),
    ("Coordinate check: every slope matches its prediction",
     lambda a: a["coord_mlp"]["table_matches"] == a["coord_mlp"]["table_cells"]),
    ("Coordinate check: SP+Adam logits' interval excludes the naive 1, and the slope is below 3/2",
     lambda a: a["coord_mlp"]["table_sp_adam_logits_lo"] > 1 and a["coord_mlp"]["table_sp_adam_logits_measured"] < 1.5),
    ("Coordinate check figure: muP flat (max |slope| below the stability tolerance), SP logits grow",
     lambda a: a["coord_mlp"]["fig_mup_adam_max_abs_delta_slope"] < a["coord_mlp"]["stable_tol"]
     and a["coord_mlp"]["fig_sp_adam_logits_t1_delta_slope"] > a["coord_mlp"]["stable_tol"]),
    ("Benchmark: at the narrowest MLP ours and mup miss the target; SP split into groups alone misses it too; "
     "fused Adam makes our Table 8 form faster than plain SP in every case",
     lambda a: min(_bench(a, "narrowest", run) for run in ("ours mup", "microsoft/mup", "sp in groups"))
     > a["bench_parameterize"]["config"]["target_ratio"]
     and all(_bench(a, w, "ours mup-table8 (fused)") < 1 for w in [*a["bench_parameterize"]["mlp"], "gpt"])),
    ("GPT coordinate check: muP's largest slope is below SP's",
     lambda a: a["coord_gpt"]["mup_max_abs_delta_slope"] < a["coord_gpt"]["sp_max_abs_delta_slope"]),
)


def check_claims(data: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The claims of :data:`CLAIMS` that do not hold (or cannot be evaluated) on these artifacts."""
    failed = []
    for text, holds in CLAIMS:
        try:
            ok = bool(holds(data))
        except (KeyError, TypeError, ValueError) as e:
            failed.append(f"{text} (cannot evaluate: {type(e).__name__} {e})")
            continue
        if not ok:
            failed.append(text)
    return failed


# --- the whole paper -------------------------------------------------------------------------------


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
                coord_lines += coord_table(m, exp.prefix, data, _rel(src.path(exp.name)))
            elif exp.kind == "bench_coord":
                bench_lines += bench_coord(m, exp.prefix, exp.name, data, src)
            elif exp.kind == "bench_parameterize":
                bench_lines += bench_parameterize(m, exp.prefix, exp.name, data, src)
        except MissingArtifactError as e:
            missing.append(str(e))
    if missing:
        raise MissingArtifactError("the paper needs these artifacts:\n  " + "\n  ".join(missing))
    transfer_table(m, rows)
    revs = sorted({short_revision(r) for r in revisions.values()})
    m.add("GitRevision", tex_escape(", ".join(revs)), "artifacts")
    provenance = []
    for exp in EXPERIMENTS:
        data = loaded[exp.name]
        date = str(data.get("date") or data.get("provenance", {}).get("date") or "n/a")
        provenance.append(rf"\texttt{{{tex_escape(_rel(src.path(exp.name, exp.filename)))}}} & "
                          rf"\texttt{{{tex_escape(short_revision(revisions[exp.name]))}}} & {tex_escape(date)} \\")
    m.add("TableProvenanceRows", "\n".join(provenance), "artifacts")
    figures = [(caption, _rel(src.root / m.values[name]).removesuffix(".pdf") + ".png")
               for name, caption in README_FIGURES.items()]
    md = markdown(src, rows, coord_lines, bench_lines, revs, figures, targets_lines(loaded), answer_lines(loaded))
    return m, md, check_claims(loaded)


# The figures the README shows under its results table (their PNG twins), with a caption each.
README_FIGURES = {
    "FigMlpAdam": "MLP 40-w-w-10 on MNIST-1D, Adam: loss vs base LR per width, SP (left) and muP (right)",
    "FigCoordMlpDelta": "Coordinate check, MLP with Adam: mean|h_t - h_0| vs width, SP (top) and muP (bottom)",
    "FigQuestionOptima": "The question's networks: optimal and largest usable Adam LR vs width, SP and muP",
    "FigGpt": "Byte-level GPT, Adam: loss vs base LR per width, SP and muP",
}


def answer_lines(loaded: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The question's answer in words, every number from ``transfer_question`` and ``transfer_mlp``."""
    q, mlp = loaded["transfer_question"], loaded["transfer_mlp"]
    small, large = q["question_toy_small_width"], q["question_toy_large_width"]
    ws = str(q["question_toy_widths"]).split(",")
    others = ", ".join(f"{q[f'{t}_mup_drift']:+.2f}" for t in ("question_mnist1d", "funnel_toy", "funnel_mnist1d"))
    return [
        f"**The answer.** In PyTorch's default parameterization Adam's optimal learning rate *falls* as the "
        f"layers widen. For the question's 10-n-2 MLP on its own toy data the optimum with {large} hidden units "
        f"is {q['question_toy_sp_lr_ratio']:.2f}x the one with {small} (drift "
        f"{q['question_toy_sp_drift']:+.2f} over widths {ws[0]}..{ws[-1]}), and the largest usable learning "
        f"rate changes by {q['question_toy_sp_max_lr_ratio']:.2f}x. The funnel network (its "
        f"width-{q['funnel_toy_sp_base_width']} "
        f"member is the question's 64->16) under `ReduceLROnPlateau` drifts too ({q['funnel_toy_sp_drift']:+.2f}), "
        f"and its width-{q['funnel_toy_sp_base_width']} optimum costs {q['funnel_toy_sp_regret_max_width']:.0%} "
        f"excess loss at width {q['funnel_toy_sp_max_width']}. So \"wider layers tolerate larger learning rates\" "
        f"is wrong for Adam. Under muP (`scaling.parameterize`) the 10-n-2 optimum stays put (ratio "
        f"{q['question_toy_mup_lr_ratio']:.2f}, drift {q['question_toy_mup_drift']:+.2f}, regret "
        f"{q['question_toy_mup_regret_max_width']:.1%} at width {q['question_toy_mup_max_width']}); on the other "
        f"three tasks its optimum rises with width (drifts {others}), as on the MNIST-1D MLP "
        f"({mlp['adam_mup_drift']:+.2f}): there muP over-corrects, and the readout is the suspect (see the paper).",
        "",
    ]


def targets_lines(loaded: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The transfer experiments' targets (issue 4) as Markdown table rows: target, measured, met."""
    mlp, gpt, s4 = loaded["transfer_mlp"], loaded["transfer_gpt"], loaded["transfer_mlp_s4"]

    def interval(s: Mapping[str, Any], sweep: str) -> str:
        return f"{s[sweep + '_drift']:+.2f} [{s[sweep + '_drift_lo']:+.2f}, {s[sweep + '_drift_hi']:+.2f}]"

    rows = [
        (f"MLP/Adam: muP drift within +-{mlp['target_mup_drift_abs_max']:g}",
         f"{interval(mlp, 'adam_mup')}; {s4['seeds']} seeds: {interval(s4, 'adam_mup')}",
         mlp["check_adam_mup_drift_within_0p1"]),
        (f"MLP/Adam: SP drift at most {mlp['target_sp_drift_max']:g}", interval(mlp, "adam_sp"),
         mlp["check_adam_sp_drift_le_m0p5"]),
        (f"MLP/Adam: SP and muP {DRIFT_CONFIDENCE:.0%} intervals disjoint", "",
         mlp["check_adam_mup_vs_sp_intervals_disjoint"]),
        (f"MLP/Adam: muP regret at width {mlp['adam_mup_max_width']} under {mlp['target_mup_regret_max']:.0%}",
         f"{mlp['adam_mup_regret_max_width']:.1%}", mlp["check_adam_mup_regret_lt_2pct"]),
        (f"MLP/Adam: muTransfer gap (constants tuned at width {mlp['adam_mup_base_width']}, loss at width "
         f"{mlp['gap_width']} over the direct SP sweep's best) at most {mlp['target_gap_max']:.0%} above it",
         f"{mlp['gap']:+.1%}", mlp["check_gap_at_most_2pct_above_sp"]),
        (f"MLP/Adam: ... at most {mlp['target_cost_ratio_max']:.0%} of that sweep's FLOPs",
         f"{mlp['gap_cost_ratio']:.1%} ({mlp['gap_cost_ratio_tuning_only']:.1%} tuning only); "
         f"{s4['seeds']} seeds: {s4['gap_cost_ratio']:.1%}",
         mlp["check_cost_le_10pct"]),
        (f"GPT/Adam: muP drift within +-{gpt['target_mup_drift_abs_max']:g}",
         f"{interval(gpt, 'mup')} (zero readout); {interval(gpt, 'mup_initreadout')} (readout init. as Table 3)",
         gpt["check_mup_drift_within_0p2"]),
    ]
    return [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in rows]


def _graphics_root(src: Source) -> str:
    """The artifact root relative to ``paper/`` (where LaTeX runs), with a trailing slash."""
    rel = Path("..") / src.root.relative_to(ROOT) if src.root.is_relative_to(ROOT) else src.root
    return rel.as_posix().rstrip("/") + "/"


def _md(tex: str) -> str:
    """A LaTeX cell as Markdown text."""
    out = re.sub(r"\\ensuremath\{(.*?)\}", r"\1", tex).replace(r"\%", "%").replace(r"\,", ",")
    out = out.replace(r"$\mu$P", "muP").replace(r"$m^{-1/2}$", "m^-1/2").replace("$", "")
    return out.replace(r"^{\leftarrow}", " (grid edge)").replace(r"^{\rightarrow}", " (grid edge)")


def markdown(src: Source, rows: Sequence[SweepRow], coord_lines: Sequence[str], bench_lines: Sequence[str],
             revisions: Sequence[str], figures: Sequence[tuple[str, str]] = (), targets: Sequence[str] = (),
             answers: Sequence[str] = ()) -> str:
    """The README's results block: the answer in words, the targets met and missed, the table of optima, the
    coordinate-check table, the benchmark ratios and the main figures (``(caption, path)`` pairs), as Markdown."""
    out = [
        f"<!-- generated by experiments/paper_numbers.py from {_rel(src.root)}: do not edit by hand -->",
        "",
    ]
    out += answers
    if targets:
        out += ["| target | measured | met |", "|---|---|---|", *targets, ""]
    out += [
        f"| experiment | sweep | drift d log2 lr*/d log2 width [{DRIFT_CONFIDENCE:.0%} CI] | log2 lr* (base) "
        "| log2 lr* (widest) | widest | best loss (widest) | regret (widest) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ws = row.widths
        base, last = ws[0], ws[-1]
        cells = [row.label, sweep_label(row.sweep),
                 f"{_fx(row.get('drift'), sign=True)} [{_fx(row.get('drift_lo'), sign=True)}, "
                 f"{_fx(row.get('drift_hi'), sign=True)}]",
                 _fx(row.get(f"w{base}", "log2_lr")) + _edge_mark(row.get(f"w{base}", "edge")),
                 _fx(row.get(f"w{last}", "log2_lr")) + _edge_mark(row.get(f"w{last}", "edge")),
                 str(last), _loss(row.get(f"w{last}", "best_loss")), _pct(row.get(f"w{last}", "regret"))]
        out.append("| " + " | ".join(_md(c) for c in cells) + " |")
    if coord_lines:
        out += ["", f"| coordinate check, MLP (row, optimizer, layer) | measured slope [{CONFIDENCE:.0%} CI] "
                    "| predicted | match |",
                "|---|---|---|---|", *coord_lines]
    if bench_lines:
        out += ["", "| benchmark | scaling | microsoft/mup |", "|---|---|---|", *bench_lines]
    for caption, path in figures:
        out += ["", f"![{caption}]({path})", f"*{caption}.*"]
    kind = "quick runs (not the paper's results)" if src.quick else "full runs"
    out += ["", f"Artifacts: {kind}, git revision {', '.join(revisions)}.", ""]
    return "\n".join(out)


def with_results(readme: str, md: str) -> str:
    """``readme`` with the text between its results markers replaced by ``md``."""
    head, begin, rest = readme.partition(README_BEGIN)
    _, end, tail = rest.partition(README_END)
    if not begin or not end:
        raise ValueError(f"README.md lacks the markers {README_BEGIN} ... {README_END}")
    return f"{head}{begin}\n{md.strip()}\n{end}{tail}"


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
            print("revise paper/paper.tex (and CLAIMS in experiments/paper_numbers.py); nothing written",
                  file=sys.stderr)
            return 1
    args.out.mkdir(parents=True, exist_ok=True)
    header = (f"Generated by experiments/paper_numbers.py from {_rel(src.root)} ({macros.values['ArtifactKind']}).\n"
              "Do not edit: rerun `python experiments/run_all.py --quick|--full` or experiments/paper_numbers.py.")
    (args.out / "numbers.tex").write_text(macros.tex(header))
    (args.out / "results.md").write_text(md)
    print(f"wrote {_rel(args.out / 'numbers.tex')} ({len(macros.values)} macros) and {_rel(args.out / 'results.md')}")
    if not src.quick and args.root is None and args.out == GENERATED:  # the full runs' results go in the README
        README.write_text(with_results(README.read_text(), md))
        print(f"updated the results block of {_rel(README)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The theory macros of the paper: the exponent table (base-relative and abc form), the predicted coordinate
exponents and the package's protocol constants, all from :mod:`scaling.table`, :mod:`scaling.predict` and
the training and analysis defaults; no artifact is read.
"""

from __future__ import annotations

import inspect
from typing import get_args

from paper_format import Macros, camel, fmt_exponent, fmt_power, fmt_sig
from scaling.coord import CONFIDENCE
from scaling.predict import Layer, mlp_exponents, weight_exponents
from scaling.sweep.analysis import analyze
from scaling.sweep.train import PLATEAU_FACTOR, PLATEAU_PATIENCE, PLATEAU_THRESHOLD
from scaling.table import PARAMETERIZATIONS, ROLES, Parameterization

# the drifts' seed-bootstrap interval (scaling.analysis.analyze's default)
DRIFT_CONFIDENCE: float = inspect.signature(analyze).parameters["confidence"].default

BUILTIN_ROWS = ("sp", "ntk", "mfp", "mup", "mup-table8")
ROW_LABELS = {"sp": "SP", "ntk": "NTK", "mfp": "MFP", "mup": r"$\mu$P (Table 3)", "mup-table8": r"$\mu$P (Table 8)"}
LAYERS: tuple[Layer, ...] = get_args(Layer)  # the MLP's layers, in order


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

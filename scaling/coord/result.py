"""What a coordinate check is and what it returns: its config, tidy records, fits and verdicts.

Per module output, step and statistic, :func:`fit_slopes` fits ``log2(stat) = s log2(n) + c`` by least
squares over widths and seeds, with a 95% Student-t interval on ``s``, and sets ``s`` beside the
exponent :mod:`scaling.predict` derives from the exponent table. A slope is *stable* when
``|s| <= tol`` (0.15 by default: over widths 128..1024 a spread of at most 2^0.45 = 1.37x), and
*matches* when ``|s - predicted| <= match_tol`` (0.25). Both tolerances are empirical, ours. A
slope beyond ``tol`` reads *grows* or *shrinks* only when its interval lies beyond ``tol`` too, else
*inconclusive* (:func:`scaling.coord.fit.verdict`).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from scaling import predict
from scaling.baseline import INIT_MODES, InitMode
from scaling.errors import ScalingError
from scaling.optim import optimizer_family
from scaling.table import OptimizerFamily, get_parameterization
from scaling.text import format_table

Stat = Literal["mean_abs", "mean_abs_delta"]
STATS: tuple[Stat, ...] = ("mean_abs", "mean_abs_delta")


@dataclass(frozen=True)
class CoordConfig:
    """A coordinate check. ``lr`` is the base learning rate (default: 0.1 for SGD, 0.01 for Adam)."""

    widths: tuple[int, ...] = (128, 256, 512, 1024)
    base_width: int | None = None  # default: the narrowest width
    parameterization: str = "mup"
    optimizer: str = "adam"  # sgd, adam, adamw or another torch.optim class name
    lr: float | None = None
    steps: int = 3
    seeds: tuple[int, ...] = (0, 1)
    weight_decay: float = 0.0
    zero_readout: bool = False  # zero-initialize the readout (TP-V App. D.2)
    zero_query: bool = False  # zero the query of every scaling.nn.Attention (TP-V App. D.2)
    init: InitMode = "pytorch"  # "base" for a model with its own init (scaling.parameterize's init=)
    tol: float = 0.15  # |s| <= tol is "stable"
    match_tol: float = 0.25  # |s - predicted| <= match_tol is a match

    def __post_init__(self) -> None:
        if not self.widths or min(self.widths) < 1:
            raise ScalingError(f"widths must be positive integers, got {self.widths}")
        if self.steps < 0:
            raise ScalingError(f"steps must be >= 0, got {self.steps}")
        if not self.seeds:
            raise ScalingError("give at least one seed")
        get_parameterization(self.parameterization)
        optimizer_family(self.optimizer)
        if self.init not in INIT_MODES:
            raise ScalingError(f"init must be one of {INIT_MODES}, got {self.init!r}")

    @property
    def family(self) -> OptimizerFamily:
        return optimizer_family(self.optimizer)

    @property
    def base(self) -> int:
        return self.base_width if self.base_width is not None else min(self.widths)

    @property
    def base_lr(self) -> float:
        return self.lr if self.lr is not None else (0.1 if self.family == "sgd" else 0.01)


@dataclass(frozen=True)
class Record:
    """One tidy row: a module output's statistics at one width, seed and state."""

    module: str
    width: int
    seed: int
    step: int
    mean_abs: float
    mean_abs_delta: float


@dataclass(frozen=True)
class ModuleInfo:
    """A recorded output, the module type that made it, and where its prediction comes from."""

    module: str
    type: str
    layer: str | None  # "input", "hidden", "logits", "O(1)" (maximal update), or None
    source: str  # how the prediction was assigned
    prediction: predict.LayerPrediction | None = field(default=None, repr=False)
    alias_of: str | None = None  # the earlier output this one is the very tensor of (a container's, the model's)

    def predicted(self, stat: Stat, step: int) -> float | None:
        """The width exponent the theory predicts for ``stat`` at ``step`` (``None``: no prediction)."""
        if self.layer == "O(1)":
            return None if (stat == "mean_abs_delta" and step == 0) else 0.0
        return self.prediction.predicted(stat, step) if self.prediction is not None else None


@dataclass(frozen=True)
class Fit:
    """``log2(stat) = slope log2(width) + intercept`` for one module, step and statistic."""

    module: str
    step: int
    stat: Stat
    slope: float
    ci_low: float
    ci_high: float
    predicted: float | None
    verdict: str  # "stable", "grows", "shrinks", "inconclusive", "zero" (nothing positive), "non-finite"
    match: bool | None  # |slope - predicted| <= match_tol; None without a prediction
    dropped: tuple[int, ...] = ()  # widths with a non-finite value, left out of the fit


@dataclass
class CoordResult:
    """What :func:`coord_check` returns: tidy ``records``, per-output ``modules`` and ``fits``.

    ``notes``: what the reader of a table should know about the check itself (a batch with more
    tokens than the narrowest width, no intervals from two widths, non-finite measurements).
    """

    config: CoordConfig
    records: list[Record]
    modules: list[ModuleInfo]
    fits: list[Fit]
    notes: list[str] = field(default_factory=list)

    def fit(self, module: str, step: int, stat: Stat = "mean_abs_delta") -> Fit:
        """The fit of one module output at one step."""
        for f in self.fits:
            if f.module == module and f.step == step and f.stat == stat:
                return f
        known = [m.module for m in self.modules]
        raise KeyError(f"no fit for module {module!r}, step {step}, {stat}; modules: {known}")

    def unstable(self, steps: Iterable[int] | None = None) -> list[Fit]:
        """Fits that fail the check at steps >= 1: the theory predicts stable (``|predicted| <= tol``)
        and the slope grows or shrinks (its interval beyond ``tol``), or any fit resting on dropped,
        non-finite measurements.

        Step 0 is left out: at initialization muP lets some outputs (the logits) shrink with width.
        So are changes that are exactly zero at every width (below a zero-initialized readout after
        the first step): there is nothing to scale. ``inconclusive`` fits are not failures; see
        :meth:`inconclusive`.
        """
        tol = self.config.tol
        return [f for f in self._at(steps) if f.dropped or f.verdict == "non-finite" or (
            f.predicted is not None and abs(f.predicted) <= tol and f.verdict in ("grows", "shrinks"))]

    def inconclusive(self, steps: Iterable[int] | None = None) -> list[Fit]:
        """Fits predicted stable whose slope is beyond ``tol`` but whose interval reaches back inside."""
        tol = self.config.tol
        return [f for f in self._at(steps) if f.verdict == "inconclusive" and f.predicted is not None
                and abs(f.predicted) <= tol]

    def nonfinite(self) -> dict[tuple[str, int], list[Record]]:
        """The records with a non-finite statistic, per (module, width)."""
        out: dict[tuple[str, int], list[Record]] = {}
        for r in self.records:
            if not (math.isfinite(r.mean_abs) and math.isfinite(r.mean_abs_delta)):
                out.setdefault((r.module, r.width), []).append(r)
        return out

    def _at(self, steps: Iterable[int] | None) -> list[Fit]:
        wanted = set(steps) if steps is not None else set(range(1, self.config.steps + 1))
        return [f for f in self.fits if f.step in wanted]

    def table(self, stat: Stat = "mean_abs_delta", steps: Iterable[int] | None = None, notes: bool = True) -> str:
        """Measured vs predicted slopes as a text table: module, layer, step, measured, predicted, verdict;
        then the :attr:`notes` (unless ``notes=False``)."""
        layer = {m.module: m.layer or "-" for m in self.modules}
        wanted = set(steps) if steps is not None else set(range(self.config.steps + 1))
        rows = [{
            "module": f.module, "layer": layer[f.module], "step": f.step,
            "measured": "-" if math.isnan(f.slope) else f"{f.slope:+.2f}",
            "95% CI": "-" if math.isnan(f.ci_low) else f"[{f.ci_low:+.2f}, {f.ci_high:+.2f}]",
            "predicted": "-" if f.predicted is None else f"{f.predicted:+.2f}",
            "verdict": f.verdict + ("" if f.match is None else (", matches" if f.match else ", MISMATCH"))
            + (f", dropped widths {list(f.dropped)}" if f.dropped else ""),
        } for f in self.fits if f.stat == stat and f.step in wanted]
        return format_table(rows) + "".join(f"\nnote: {n}" for n in (self.notes if notes else ()))

    def to_csv(self, path: str | Path, table: Literal["records", "fits"] = "records") -> Path:
        """Write the tidy records (or the fits) as CSV."""
        rows = [asdict(r) for r in (self.records if table == "records" else self.fits)]
        path = Path(path)
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["module"])
            writer.writeheader()
            writer.writerows(rows)
        return path

    def to_json(self, path: str | Path) -> Path:
        """Write config, modules, records and fits as one JSON document (NaN as null)."""
        doc = {
            "config": asdict(self.config),
            "modules": [{"module": m.module, "type": m.type, "layer": m.layer, "source": m.source,
                         "prediction": asdict(m.prediction) if m.prediction else None, "alias_of": m.alias_of}
                        for m in self.modules],
            "records": [asdict(r) for r in self.records],
            "fits": [asdict(f) for f in self.fits],
            "notes": self.notes,
        }
        path = Path(path)
        path.write_text(json.dumps(_nan_to_none(doc), indent=1))
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> CoordResult:
        """Read a result written by :meth:`to_json` (for plotting later)."""
        doc = json.loads(Path(path).read_text())
        cfg = doc["config"]
        config = CoordConfig(**{**cfg, "widths": tuple(cfg["widths"]), "seeds": tuple(cfg["seeds"])})
        modules = [ModuleInfo(m["module"], m["type"], m["layer"], m["source"],
                              predict.LayerPrediction(**m["prediction"]) if m["prediction"] else None,
                              m.get("alias_of")) for m in doc["modules"]]
        records = [Record(**_none_to_nan(r, ("mean_abs", "mean_abs_delta"))) for r in doc["records"]]
        fits = [Fit(**{**_none_to_nan(f, ("slope", "ci_low", "ci_high")), "dropped": tuple(f.get("dropped", ()))})
                for f in doc["fits"]]
        return cls(config, records, modules, fits, list(doc.get("notes", [])))


def _none_to_nan(row: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: (math.nan if v is None and k in keys else v) for k, v in row.items()}


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    return x

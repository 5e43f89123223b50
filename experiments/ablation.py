"""Why muP's optimum drifts: from our muP toward u-muP one ingredient at a time, and each role's exponent measured.

Two parts, each on the MLP 40-w-w-10 (MNIST-1D, Adam, 500 steps; ``transfer_mlp``'s protocol) and the
byte-level GPT (Adam, 300 steps, readout initialized as Table 3; ``transfer_gpt``'s protocol, widths
32..128 here to fit the budget):

``ingredients``: u-muP (Blake et al. 2024) shares muP's width exponents on an MLP; what it changes are
constants, read in our coordinates by matching the hidden weights' effective Adam step (u-muP moves a
weight by ``lr / fan_in``, ours by ``eta / m``: ``eta = lr / n_base``). Each ingredient is one sweep of
our muP (TP-V Table 3) with that one change:

- ``readout_init``: u-muP's readout, unit weights times ``1/fan_in``, is ``sqrt(3 n_base) / n_base`` of
  PyTorch's ``1/sqrt(3 fan_in)`` at base width (0.22 on the MLP, 0.31 on the GPT);
- ``bias_zero`` (MLP only; on the GPT the role also holds the norm gains): u-muP starts biases at 0;
- ``bias_lr``: u-muP steps biases (and norm gains) by ``lr = n_base eta``: their LR x ``n_base``;
- ``unit_init``: u-muP's effective weights have std ``1/sqrt(fan_in)``, PyTorch's ``1/sqrt(3 fan_in)``:
  input and hidden init x sqrt(3) (the GPT's embeddings are N(0, 1) in both: hidden only);
- ``input_lr``: the input layer's step ``lr / fan_in`` (MLP: x ``n_base / 40``) or the embeddings'
  ``lr / sqrt(d)`` (GPT: x ``sqrt(n_base)`` at base width; its width exponent ``-1/2`` is u-muP's own);
- ``umup_constants``: all of the above together: u-muP in our coordinates but for its unit-scaled
  backward pass, epsilon and (GPT) residual and attention details;
- ``absolute_width``: base width 1 instead of ``n_base`` (u-muP has no base model): the table's own
  factors at ``m = n_base`` as constants;
- ``eps``: Adam's epsilon 1e-16 instead of 1e-8 (u-muP's unit-scaled gradients make it negligible);
- ``base_<w>``: the base width itself (MLP 128, 256; GPT 64), widths from there up.

``exponents``: the cause, measured. For each role (input, hidden, output, vector), the base LR held at
the base width's optimum, that role's LR constant ``c`` is swept at every width: the slope
``d log2 c* / d log2 width`` is how far the table's LR exponent for that role is from the one the
task wants at this horizon (0: the table is right; +1/2: the no-alignment exponent of Everett et al.
2024 for the hidden and output roles), with a 90% seed-bootstrap interval. On the GPT it ran last, after
``confirm.py``'s decision; written down before it ran: the GPT's optimum falls with width (drift -0.16
here), so at least one role's constant falls (interval below 0), unlike the MLP's, which all rise.

    python experiments/ablation.py --quick
    python experiments/ablation.py --parts ingredients exponents     # full: ~2 h on 2 cores
    python experiments/ablation.py --models gpt --parts ingredients --ingredients absolute_width
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import common
import transfer_gpt
import transfer_mlp
from scaling.sweep import SweepConfig, log2_grid
from scaling.sweep.analysis import Analysis, analyze
from scaling.sweep.store import RunRecord, canonical_scales, write_csv
from scaling.table import MUP

NAME = "ablation"
PARTS = ("ingredients", "exponents")
ROOT3 = math.sqrt(3.0)


@dataclass(frozen=True)
class Ingredient:
    """One change to our muP: per-role constants (RoleScales as a dict), an epsilon or a base width."""

    name: str
    what: str
    scales: dict[str, dict[str, float]] = field(default_factory=dict)
    eps: float | None = None
    base_width: int | None = None
    shift: float = 0.0  # where the optimum is expected to move (log2), to centre the grid


def absolute_width(n_base: int, roles: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """Base width 1 instead of ``n_base``: the table's Adam factors at ``m = n_base`` as constants (a square
    model: ``m_in = m_out = m`` where a dimension is a width)."""
    m = float(n_base)
    widths = {"input": (1.0, m), "hidden": (m, m), "output": (m, 1.0), "vector": (m, m), "finite": (m, 1.0)}
    scales: dict[str, dict[str, float]] = {"lr": {}, "init": {}}
    for role, (m_in, m_out) in widths.items():
        if role not in roles:
            continue
        rule = MUP.rule(role)  # type: ignore[arg-type]
        for kind, power in (("lr", rule.lr("adam")), ("init", rule.init)):
            value = power(m_in, m_out)
            if value != 1.0:
                scales[kind][role] = value
    return scales


def ingredients(model: str, n_base: int) -> tuple[Ingredient, ...]:
    readout = math.sqrt(3 * n_base) / n_base
    vectors = ("vector", "finite") if model == "mlp" else ("vector",)
    bias_lr = {"lr": {r: float(n_base) for r in vectors}}
    unit = {"init": {"input": ROOT3, "hidden": ROOT3}} if model == "mlp" else {"init": {"hidden": ROOT3}}
    input_lr = {"lr": {"input": n_base / 40 if model == "mlp" else math.sqrt(n_base)}}
    together: dict[str, dict[str, float]] = {"lr": {**bias_lr["lr"], **input_lr["lr"]},
                                             "init": {**unit["init"], "output": readout}}
    if model == "mlp":
        together["init"].update({r: 0.0 for r in vectors})
    singles = [
        Ingredient("readout_init", "readout init as u-muP's", {"init": {"output": readout}}),
        *([Ingredient("bias_zero", "biases initialized at 0", {"init": {r: 0.0 for r in vectors}})]
          if model == "mlp" else []),
        Ingredient("bias_lr", "bias and gain LR as u-muP's", bias_lr, shift=-1.0),
        Ingredient("unit_init", "input and hidden init 1/sqrt(fan_in)", unit),
        Ingredient("input_lr", "input LR as u-muP's", input_lr),
    ]
    bases = (128, 256) if model == "mlp" else (64,)
    return (
        *singles,
        Ingredient("umup_constants", "all u-muP constants", together, shift=-1.0),
        Ingredient(
            "absolute_width",
            "base width 1",
            absolute_width(n_base, ("input", "hidden", "output", *vectors)),
            shift=math.log2(n_base) / 2,
        ),
        Ingredient("eps", "Adam epsilon 1e-16", eps=1e-16),
        *(Ingredient(f"base_{w}", f"base width {w}", base_width=w) for w in bases),
    )


@dataclass(frozen=True)
class Model:
    name: str
    title: str
    protocol: SweepConfig  # full size
    center: float  # log2 of our muP's base-width optimum (from transfer_mlp / transfer_gpt)


def models(mode: common.Mode) -> dict[str, Model]:
    mlp = replace(transfer_mlp.protocol(mode), parameterizations=("mup",), optimizers=("adam",))
    gpt_sweep = next(s for s in transfer_gpt.SWEEPS if s.name == "mup_initreadout")
    gpt = transfer_gpt.config_of(gpt_sweep, mode)
    if mode == "full":
        gpt = replace(gpt, widths=(32, 64, 128))
    return {"mlp": Model("mlp", "MLP, MNIST-1D, Adam", mlp, -6.2), "gpt": Model("gpt", "GPT, stdlib bytes, Adam", gpt,
                                                                               -5.6)}


def grid(mode: common.Mode, center: float, half: float = 3.0) -> tuple[float, ...]:
    step = {"full": 0.5, "quick": 1.0, "smoke": 2.0}[mode]
    c = round(center / step) * step
    h = {"full": half, "quick": half, "smoke": 2.0}[mode]
    return log2_grid(c - h, c + h, step)


def ingredient_config(m: Model, ing: Ingredient | None, mode: common.Mode) -> SweepConfig:
    """Our muP (``ing`` None) or one ingredient, on a grid centred on where its optimum should be."""
    config = replace(m.protocol, log2_lrs=grid(mode, m.center + (ing.shift if ing else 0.0)))
    if ing is None:
        return config
    if ing.base_width is not None:
        # the small sizes have no widths above a larger base: double the base instead
        base = ing.base_width if mode == "full" else 2 * config.base_width
        widths = tuple(w for w in config.widths if w >= base) or (base, 2 * base)
        config = replace(config, base_width=base, widths=widths)
    return replace(config, scales=(ing.scales,), eps=ing.eps if ing.eps is not None else config.eps)


ROLES = ("input", "hidden", "output", "vector")
ROLE_AXIS = "log2 of the role's LR constant (base LR held)"


def exponent_config(protocol: SweepConfig, role: str, mode: common.Mode, base_log2_lr: float,
                    low: float = -3.0) -> SweepConfig:
    """The role's LR constant swept at every width (2^low..2^3), the base LR at the base width's optimum."""
    step = {"full": 0.5, "quick": 1.0, "smoke": 2.0}[mode]
    xs = log2_grid(low, 3.0, step) if mode != "smoke" else (-2.0, 0.0, 2.0)
    return replace(protocol, log2_lrs=(round(base_log2_lr, 6),), scales=tuple({"lr": {role: 2.0**x}} for x in xs))


def db_of(out: Path, model: str, name: str) -> Path:
    return out / f"{model}_{name}.db"


def base_optimum(out: Path, m: Model, mode: common.Mode) -> float:
    """Our muP's optimum at the base width, from this script's own baseline sweep (grid centre if absent)."""
    db = db_of(out, m.name, "mup")
    if not db.is_file():
        return m.center
    runs = common.load_runs(db)
    a = analyze(runs, reference_width=m.protocol.base_width)
    x = a.at("mup", m.protocol.base_width).optimum.log2_lr
    return round(x, 2) if math.isfinite(x) else m.center


def run(out: Path, mode: common.Mode, parts: tuple[str, ...], workers: int, only: tuple[str, ...],
        chosen: tuple[str, ...] = ()) -> None:
    """Every sweep of ``parts`` on the models in ``only`` (all if empty); ``chosen`` restricts the ingredients."""
    for m in models(mode).values():
        if only and m.name not in only:
            continue
        common.sweep(ingredient_config(m, None, mode), db_of(out, m.name, "mup"), workers, extend=6)
        if "ingredients" in parts:
            for ing in ingredients(m.name, m.protocol.base_width):
                if chosen and ing.name not in chosen:
                    continue
                common.sweep(ingredient_config(m, ing, mode), db_of(out, m.name, ing.name), workers, extend=6)
        if "exponents" in parts:
            x = base_optimum(out, m, mode)
            for role in ROLES:
                common.sweep(exponent_config(m.protocol, role, mode, x), db_of(out, m.name, f"role_{role}"), workers)


def role_runs(db: Path, role: str) -> list[RunRecord]:
    """The role-constant sweep as ordinary runs whose "LR" axis is log2 of the role's LR constant."""
    out = []
    for r in common.load_runs(db):
        c = r.cell.scales_dict()["lr"][role]
        out.append(replace(r, cell=r.cell._replace(parameterization=role, log2_lr=round(math.log2(c), 6),
                                                   scales="")))
    return out


def plot(out: Path, mode: common.Mode) -> dict[str, Any]:
    summary: dict[str, Any] = common.header(NAME, mode)
    figures: list[str] = []
    details: dict[str, Any] = {}
    for m in models(mode).values():
        base_db = db_of(out, m.name, "mup")
        if not base_db.is_file():
            continue
        summary[common.key(m.name, "title")] = m.title
        rows: dict[str, Analysis] = {}
        all_runs: dict[str, list[RunRecord]] = {}
        names = ["mup", *(i.name for i in ingredients(m.name, m.protocol.base_width))]
        for name in names:
            db = db_of(out, m.name, name)
            if not db.is_file():
                continue
            runs = common.load_runs(db, label=name)
            config = common.read_db_config(db)
            rows[name] = analyze(runs, reference_width=config.base_width)
            all_runs[name] = runs
            summary.update(common.flat_transfer(common.key(m.name, name), rows[name], name, "adam", runs))
            summary[common.key(m.name, name, "base_width")] = config.base_width
            summary[common.key(m.name, name, "scales")] = canonical_scales(config.scales[0]) if config.scales else ""
            write_csv(runs, out / f"{m.name}_{name}_runs.csv")
        summary[common.key(m.name, "ingredients")] = ",".join(n for n in names if n in rows)
        for i in ingredients(m.name, m.protocol.base_width):
            summary[common.key(m.name, i.name, "what")] = i.what
        if rows:
            figures += figure_ingredients(out, m, rows, mode)
            details[m.name] = {n: common.nested_transfer(a) for n, a in rows.items()}
        exps: dict[str, Analysis] = {}
        for role in ROLES:
            db = db_of(out, m.name, f"role_{role}")
            if db.is_file():
                runs = role_runs(db, role)
                exps[role] = analyze(runs, reference_width=m.protocol.base_width)
                d = exps[role].drift(role)
                summary.update({common.key(m.name, "role", role, "exponent"): d.slope,
                                common.key(m.name, "role", role, "exponent_lo"): d.low,
                                common.key(m.name, "role", role, "exponent_hi"): d.high,
                                common.key(m.name, "role", role, "edges"): d.edges})
                for r in exps[role].widths:
                    summary[common.key(m.name, "role", role, f"w{r.width}", "log2_c")] = r.optimum.log2_lr
        if exps:
            analysis = Analysis.combine(list(exps.values()))
            stem = f"ablation_{m.name}_role-exponents_w{min(m.protocol.widths)}-{max(m.protocol.widths)}"
            figures += common.save_transfer(analysis, out, stem, f"{m.title}: loss vs log2 of one role's LR constant",
                                            xlabel=ROLE_AXIS)
            details[f"{m.name}_roles"] = common.nested_transfer(analysis)
    summary["figures"] = ",".join(figures)
    common.prune_figures(out, figures)
    common.write_json(out / "details.json", details)
    common.write_summary(out, summary)
    print(f"\nwrote {', '.join(figures)}, summary.json to {out}")
    return summary


def _bar(length: float) -> float:
    return length if math.isfinite(length) and length > 0 else 0.0


def figure_ingredients(out: Path, m: Model, rows: dict[str, Analysis], mode: common.Mode) -> list[str]:
    """Drift (with its interval) and best loss at the widest width, per ingredient: two bar panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    drifts = [rows[n].drift(n) for n in names]
    best = []
    for n in names:
        widest = max(r.width for r in rows[n].widths)
        best.append(rows[n].at(n, widest).optimum.loss)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 0.45 * len(names) + 1.5), layout="constrained", sharey=True)
    y = list(range(len(names)))
    # An interval can be undefined (NaN: too few seeds) or not contain the point estimate (a bootstrap
    # percentile interval need not): draw what there is, never a negative bar.
    errors = [[_bar(d.slope - d.low) for d in drifts], [_bar(d.high - d.slope) for d in drifts]]
    a.errorbar([d.slope for d in drifts], y, xerr=errors, fmt="o", color="C0", capsize=3)
    a.axvspan(-0.1, 0.1, color="green", alpha=0.1, lw=0)
    a.axvline(0, color="gray", lw=0.8)
    a.set_xlabel("drift d log2 lr* / d log2 width (90% CI)")
    a.set_yticks(y, names)
    a.invert_yaxis()
    b.barh(y, best, color="C1")
    b.axvline(best[0], color="gray", lw=0.8, ls=":")
    b.set_xlabel("best loss at the widest width")
    fig.suptitle(f"{m.title}: our muP and one u-muP ingredient at a time ({mode})", fontsize=10)
    return common.save_figure(fig, out, f"ablation_{m.name}_ingredients")


def main(argv: list[str] | None = None) -> int:
    p = common.parser(__doc__ or "")
    p.add_argument("--parts", nargs="*", default=list(PARTS), choices=PARTS)
    p.add_argument("--models", nargs="*", default=(), choices=("mlp", "gpt"))
    p.add_argument("--ingredients", nargs="*", default=(), metavar="NAME",
                   help="only these ingredients (default all), e.g. absolute_width")
    args = p.parse_args(argv)
    mode = common.mode_of(args)
    out = common.artifact_dir(NAME, args)
    if not args.plot_only:
        known = {i.name for m in ("mlp", "gpt") for i in ingredients(m, 64)}
        unknown = sorted(set(args.ingredients) - known)
        if unknown:
            p.error(f"unknown ingredients {unknown}; known: {sorted(known)}")
        run(out, mode, tuple(args.parts), args.workers, tuple(args.models), tuple(args.ingredients))
    plot(out, mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())

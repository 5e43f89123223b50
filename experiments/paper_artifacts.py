"""The paper's artifacts: where they are read from, and the macros and table rows made of them.

Every key of a flat ``summary.json`` becomes a macro (:func:`flat`); each transfer sweep in it a table of
optima (:class:`SweepRow`); ``coord_mlp``'s measured-vs-predicted table, and the two benchmarks' JSON,
their own macros and Markdown rows.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paper_format import (
    Macros,
    camel,
    edge_mark,
    fixed_or_na,
    fmt_exponent,
    fmt_fixed,
    fmt_ratio,
    fmt_sci,
    fmt_sig,
    fmt_value,
    loss_or_na,
    number_words,
    percent_or_na,
    tex_escape,
    tex_to_md,
    widths_list,
)
from paper_theory import LAYERS

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "experiments" / "results"
QUICK = ROOT / "out" / "quick"


class MissingArtifactError(Exception):
    """An artifact the paper needs is not there."""


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
                how += f" --json {rel(path)}"
            raise MissingArtifactError(f"{rel(path)} (written by `{how}`)")
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def figure(self, experiment: str, name: str) -> str:
        """A figure's path relative to the ``\\graphicspath`` root, checked to exist."""
        path = self.root / experiment / name
        if not path.is_file():
            raise MissingArtifactError(f"{rel(path)} (a figure named in {experiment}/summary.json)")
        return f"{experiment}/{name}"


def rel(path: Path) -> str:
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


SKIPPED_KEYS = frozenset({"experiment", "date", "torch", "python", "git_revision", "figures"})


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
    where = rel(src.path(experiment))
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
            m.add(f"{key}LossAtBaseLrWidest", loss_or_na(row.get(f"w{ws[-1]}", "loss_at_base_lr")), where)
        rows.append(row)
    return rows


def optima_rows(row: SweepRow) -> str:
    """Table body: width, log2 lr* (an arrow marks a grid edge), best loss, loss at the base lr*, regret."""
    lines = []
    for w in row.widths:
        cells = [str(w), fixed_or_na(row.get(f"w{w}", "log2_lr")) + edge_mark(row.get(f"w{w}", "edge")),
                 loss_or_na(row.get(f"w{w}", "best_loss")), loss_or_na(row.get(f"w{w}", "loss_at_base_lr")),
                 percent_or_na(row.get(f"w{w}", "regret"))]
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
                 f"{fixed_or_na(row.get('drift'), sign=True)} [{fixed_or_na(row.get('drift_lo'), sign=True)}, "
                 f"{fixed_or_na(row.get('drift_hi'), sign=True)}]",
                 fixed_or_na(row.get(f"w{base}", "log2_lr")) + edge_mark(row.get(f"w{base}", "edge")),
                 fixed_or_na(row.get(f"w{last}", "log2_lr")) + edge_mark(row.get(f"w{last}", "edge")),
                 str(last), loss_or_na(row.get(f"w{last}", "best_loss")), percent_or_na(row.get(f"w{last}", "regret"))]
        lines.append(r"\quad " + " & ".join(cells) + r" \\")
        previous = row.label
    m.add("TableTransferRows", "\n".join(lines), "all transfer summaries")


# --- benchmarks ------------------------------------------------------------------------------------


def bench_coord(m: Macros, prefix: str, experiment: str, data: Mapping[str, Any], src: Source) -> list[str]:
    """The coordinate-check benchmark: time of a check over the same bare training, ours and mup's."""
    where = rel(src.path(experiment, "bench_coord.json"))
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


def bench_rows(rows: Mapping[str, Any]) -> dict[str, Any]:
    """A case's timings keyed as in :data:`BENCH_RUNS` (``sp in 3 groups``, SP split into as many param
    groups as muP's, becomes ``sp in groups``)."""
    return {("sp in groups" if k.startswith("sp in ") else k): v for k, v in rows.items()}


def bench_parameterize(m: Macros, prefix: str, experiment: str, data: Mapping[str, Any], src: Source) -> list[str]:
    """Per-step time over SP's (median over interleaved rounds, CPU time, IQR) and the 7B set-up benchmark."""
    where = rel(src.path(experiment, "bench_parameterize.json"))
    cfg = data["config"]
    m.add(f"{prefix}MlpWidths", widths_list(int(w) for w in cfg["mlp_widths"]), where)
    m.add(f"{prefix}MlpBase", str(cfg["mlp_base"]), where)
    m.add(f"{prefix}GptWidth", str(cfg["gpt_width"]), where)
    m.add(f"{prefix}GptBase", str(cfg["gpt_base"]), where)
    m.add(f"{prefix}Rounds", str(cfg["rounds"]), where)
    m.add(f"{prefix}Threads", str(cfg["threads"]), where)
    m.add(f"{prefix}TargetRatio", fmt_ratio(cfg["target_ratio"]), where)
    m.add(f"{prefix}Revision", tex_escape(short_revision(revision_of(data))), where)
    mlp = {w: bench_rows(rows) for w, rows in data["mlp"].items()}
    cases = [(f"MLP 40-{w}-{w}-10", f"Mlp{number_words(int(w))}", rows) for w, rows in mlp.items()]
    for which, w in (("Widest", max(mlp, key=int)), ("Narrowest", min(mlp, key=int))):
        m.add(f"{prefix}Mlp{which}", str(w), where)
        for run, name in BENCH_RUNS.items():
            m.add(f"{prefix}Mlp{which}{name}", fmt_ratio(mlp[w][run]["cpu_ratio"]), where)
        m.add(f"{prefix}Mlp{which}SpGroupsCount", number_words(int(mlp[w]["sp in groups"]["groups"])).lower(), where)
    cases.append((f"GPT $d={cfg['gpt_width']}$", "Gpt", bench_rows(data["gpt"])))
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
        one_group = rows.get("ours mup-constant-lr")  # muP without per-layer groups (benchmarks since 2026-12)
        if one_group is not None:
            m.add(f"{prefix}{key}ConstantLr", fmt_ratio(one_group["cpu_ratio"]), where)
        md.append(f"| per-step time / SP's, {tex_to_md(label)} | {rows['ours mup']['cpu_ratio']:.2f} (Table 3), "
                  f"{rows['ours mup-table8']['cpu_ratio']:.2f} (Table 8)"
                  + (f", {one_group['cpu_ratio']:.2f} (one group, `mup-constant-lr`)" if one_group else "")
                  + f" | {rows['microsoft/mup']['cpu_ratio']:.2f} |")
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

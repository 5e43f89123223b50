"""The README's "Transfer against the peers" block: the peers, the ablation, alignment and the horizon, in tables.

Reads only the summaries the experiments wrote (``peers``, ``ablation``, ``alignment``, ``horizon``, ``confirm``,
``transfer_muon``, ``muon_updates``, ``role_tests``, ``transfer_depth``, ``transfer_hf``, ``mutransfer`` under
``experiments/results/``; a missing one is left out with a line saying so) and writes the block between the
README's ``<!-- findings:begin -->`` and ``<!-- findings:end -->`` markers, and ``paper/generated/findings.md``.
Every number in the block is one of those summaries' values; nothing is typed by hand.

    python experiments/findings.py            # rewrite the README block and paper/generated/findings.md
    python experiments/findings.py --check    # exit 1 if the README block is stale
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # loaded by path from the tests, too
from paper_readme import with_results

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
README = ROOT / "README.md"
OUT = ROOT / "paper" / "generated" / "findings.md"
TEX = ROOT / "paper" / "generated" / "findings.tex"
BEGIN, END = "<!-- findings:begin -->", "<!-- findings:end -->"

ROWS = {"sp": "SP", "mup": "ours (muP)", "microsoft_mup": "microsoft/mup 1.0.0", "u_mup": "u-muP (unit-scaling 0.3.5)"}
# The ablation's sweeps in the order the table shows them, with what each changes (ablation.py says how).
INGREDIENTS = {
    "mup": "our muP (TP-V Table 3)",
    "readout_init": "readout init as u-muP's",
    "bias_zero": "biases initialized at 0",
    "bias_lr": "bias LR as u-muP's (x n_base)",
    "unit_init": "input and hidden init 1/sqrt(fan_in)",
    "input_lr": "input LR as u-muP's",
    "umup_constants": "all u-muP constants above together",
    "absolute_width": "base width 1 (the table's factors as constants)",
    "eps": "Adam epsilon 1e-16",
}
# where the GPT's ingredient differs (ablation.py: its norm gains share the vector role; its embeddings are
# N(0, 1) under both)
GPT_INGREDIENTS = {"bias_lr": "bias and norm-gain LR as u-muP's (x n_base)",
                   "unit_init": "hidden init 1/sqrt(fan_in)"}
STEPS = ("t1", "t10", "t100")


def load(name: str, root: Path = RESULTS) -> dict[str, Any] | None:
    path = root / name / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else None


def num(x: Any, digits: int = 2, sign: bool = False) -> str:
    if not isinstance(x, (int, float)) or not math.isfinite(x):
        return "-"
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def pct(x: Any) -> str:
    return f"{x:.1%}" if isinstance(x, (int, float)) and math.isfinite(x) else "-"


def interval(s: Mapping[str, Any], k: str) -> str:
    return f"{num(s.get(k), sign=True)} [{num(s.get(k + '_lo'), sign=True)}, {num(s.get(k + '_hi'), sign=True)}]"


def widths_of(s: Mapping[str, Any], prefix: str) -> list[int]:
    found = {int(m.group(1)) for k in s if (m := re.fullmatch(re.escape(prefix) + r"_w(\d+)_best_loss", k))}
    return sorted(found)


def peers_missing(s: Mapping[str, Any], refused: Mapping[str, Any]) -> list[str]:
    """One line per (task, row) the peers' summary lacks: the peer's refusal, or "not run"."""
    out = []
    for task in (k.removesuffix("_title") for k in s if k.endswith("_title")):
        for row, label in ROWS.items():
            if f"{task}_{row}_drift" not in s:
                why = refused.get(task, {}).get(row.replace("_", "-")) if isinstance(refused.get(task), dict) else None
                out.append(f"{s[task + '_title']}: {label} {why or 'not run (budget)'}.")
    return out


def peers_table(s: Mapping[str, Any]) -> list[str]:
    tasks = [k.removesuffix("_title") for k in s if k.endswith("_title")]
    out = ["| task | row | drift, 0.5 grid, fitted optimum [90% CI] | drift, integer grid minimum "
           "| regret at widest | best loss at widest | vs tuned SP |", "|---|---|---|---|---|---|---|"]
    for task in tasks:
        for row, label in ROWS.items():
            p = f"{task}_{row}"
            if p + "_drift" not in s:
                continue
            widest = widths_of(s, p)[-1]
            out.append(f"| {s[task + '_title']} (w {widest}) | {label} | {interval(s, p + '_drift')} "
                       f"| {num(s.get(p + '_int_drift'), sign=True)} | {pct(s.get(f'{p}_w{widest}_regret'))} "
                       f"| {num(s.get(f'{p}_w{widest}_best_loss'), 3)} | {pct(s.get(p + '_gap_to_sp'))} |")
    return out


def ingredient_label(s: Mapping[str, Any], model: str, name: str) -> str:
    """What one of the ablation's sweeps changes, in words (a base width with the widths it spans)."""
    if base := re.fullmatch(r"base_(\d+)", name):
        return f"base width {base.group(1)} (widths {base.group(1)}..{s.get(f'{model}_{name}_max_width')})"
    return (GPT_INGREDIENTS if model == "gpt" else {}).get(name) or INGREDIENTS.get(name, name)


def ablation_table(s: Mapping[str, Any], model: str) -> list[str]:
    out = [f"| {s.get(model + '_title', model)}: change to our muP | drift [90% CI] | regret at widest "
           "| best loss at widest |", "|---|---|---|---|"]
    for name in str(s.get(f"{model}_ingredients", "")).split(","):
        p = f"{model}_{name}"
        if p + "_drift" in s:
            out.append(f"| {ingredient_label(s, model, name)} | {interval(s, p + '_drift')} "
                       f"| {pct(s.get(p + '_regret_max_width'))} | {num(s.get(p + '_best_loss_max_width'), 3)} |")
    return out


def role_table(s: Mapping[str, Any], model: str) -> list[str]:
    roles = [r for r in ("input", "hidden", "output", "vector") if f"{model}_role_{r}_exponent" in s]
    if not roles:
        return []
    out = ["| role | slope of its tuned LR constant, d log2 c* / d log2 width [90% CI] "
           "| log2 c* by width |", "|---|---|---|"]
    for r in roles:
        p = f"{model}_role_{r}"
        by_width = ", ".join(f"{w}: {num(s[k], sign=True)}" for k in s
                             if (m := re.fullmatch(re.escape(p) + r"_w(\d+)_log2_c", k)) and (w := m.group(1)))
        out.append(f"| {r} | {interval(s, p + '_exponent')} | {by_width} |")
    return out


def alignment_table(s: Mapping[str, Any], model: str, modules: Sequence[str]) -> list[str]:
    last = f"t{s.get(model + '_steps', '')}"
    steps = [*STEPS, last]
    out = [f"| {model}: row, layer | " + " | ".join(f"step {t[1:]}" for t in steps) + " |",
           "|---|" + "---|" * len(steps)]
    for row in ("sp", "mup"):
        for module in modules:
            p = f"{model}_{row}_{module}"
            if f"{p}_t1_exponent" not in s:
                continue
            cells = [f"{num(s.get(f'{p}_{t}_exponent'))} ({s.get(f'{p}_{t}_reading', '-')})" for t in steps]
            out.append(f"| {ROWS[row]}, {module} | " + " | ".join(cells) + " |")
    return out


def horizon_table(s: Mapping[str, Any], metric: str = "") -> list[str]:
    """Drift by row and horizon; ``metric`` "" for the training loss, "_val" for the validation loss."""
    horizons = [int(t) for t in str(s.get("horizons", "")).split(",") if t]
    rows = [r for r in str(s.get("rows", "")).split(",") if r]
    out = ["| row | " + " | ".join(f"{t} steps" for t in horizons) + " |", "|---|" + "---|" * len(horizons)]
    for row in rows:
        k = re.sub(r"[^a-z0-9_]", "_", row)
        cells = [drift_cell(s, f"{k}_n{t}", metric) for t in horizons]
        out.append(f"| {ROWS.get(k, row)} | " + " | ".join(cells) + " |")
    return out


def drift_cell(s: Mapping[str, Any], k: str, metric: str = "") -> str:
    """The drift with its interval (one seed: the value alone), marked where its optimum is a floor or a
    grid edge."""
    m = f"{k}{metric}_drift"
    value = interval(s, m) if s.get(f"{k}_seeds", 2) > 1 else num(s.get(m), sign=True)
    marks = [w for w, on in (("floor", not metric and s.get(f"{k}_floor")), ("edge", s.get(f"{m}_edges")))
             if on]
    return f"{value} ({', '.join(marks)})" if marks else value


CONFIRM_ROWS = {"sp": "SP", "sp_candidate": "SP + the candidate's constants", "mup": "ours (muP)",
                "candidate": "ours + the candidate's constants"}


def decision_table(s: Mapping[str, Any]) -> list[str]:
    out = ["| ingredient | best loss lower, MLP | regret change, MLP | best loss lower, GPT | regret change, GPT "
           "| the rule |", "|---|---|---|---|---|---|"]
    for name in str(s.get("decision_candidates", "")).split(","):
        if not name:
            continue
        k = f"decision_{name}"

        def points(x: Any) -> str:
            return "-" if x is None else f"{x * 100:+.1f} pts"

        out.append(f"| {INGREDIENTS.get(name, name)} | {pct(s.get(k + '_mlp_gain'))} | "
                   f"{points(s.get(k + '_mlp_regret_change'))} | {pct(s.get(k + '_gpt_gain'))} | "
                   f"{points(s.get(k + '_gpt_regret_change'))} | {s.get(k + '_reason', '-')} |")
    return out


def confirm_table(s: Mapping[str, Any]) -> list[str]:
    out = ["| task | row | drift [90% CI] | regret at widest | best loss at widest | vs tuned SP |",
           "|---|---|---|---|---|---|"]
    for task in ("mlp", "resmlp", "cnn"):
        for row in str(s.get(f"{task}_rows", "")).split(","):
            p = f"{task}_{row}"
            if p + "_drift" not in s:
                continue
            widest = s.get(p + "_max_width")
            out.append(f"| {s.get(task + '_title', task)} (w {widest}) | {CONFIRM_ROWS.get(row, row)} "
                       f"| {interval(s, p + '_drift')} | {pct(s.get(p + '_regret_max_width'))} "
                       f"| {num(s.get(p + '_best_loss_max_width'), 3)} | {pct(s.get(p + '_gap_to_sp'))} |")
    return out


def _muon_rows(s: Mapping[str, Any], task: str) -> list[str]:
    """transfer_muon's rows with results on ``task``, in table order (each with a ``_label``)."""
    return [r for r in str(s.get(f"{task}_rows", "")).split(",") if r]


def _loss_or_zero(x: Any) -> str:
    """A best loss to 3 decimals; a fitted optimum under 0.0005 (a run trained to zero loss, where the
    parabola's minimum can dip below 0 and the regret is undefined) as "~0"."""
    return "~0 (trained to zero)" if isinstance(x, float) and x < 5e-4 else num(x, 3)


def muon_table(s: Mapping[str, Any]) -> list[str]:
    """transfer_muon's rows read on the training loss and, in the held-out columns, the validation loss."""
    out = ["| task | row | drift [90% CI] | regret at widest | best loss at widest | held-out: drift | regret "
           "| best loss (vs SP) |", "|---|---|---|---|---|---|---|---|"]
    for task in ("mlp", "gpt"):
        for row in _muon_rows(s, task):
            p = f"{task}_{row}"
            if p + "_drift" not in s:
                continue
            v = p + "_val"
            gap = f" ({pct(s[v + '_gap_to_sp'])})" if v + "_gap_to_sp" in s else ""
            held_out = (f"{drift_cell(s, p, '_val')} | {pct(s.get(v + '_regret_max_width'))} "
                        f"| {num(s.get(v + '_best_loss_max_width'), 3)}{gap}") if v + "_drift" in s else "- | - | -"
            out.append(f"| {s.get(task + '_title', task)} (w {s.get(p + '_max_width')}) | {s[p + '_label']} "
                       f"| {drift_cell(s, p)} | {pct(s.get(p + '_regret_max_width'))} "
                       f"| {_loss_or_zero(s.get(p + '_best_loss_max_width'))} | {held_out} |")
    return out


def muon_optima_table(s: Mapping[str, Any]) -> list[str]:
    """log2 of the fitted optimum at each width, for transfer_muon's rows with one part held."""
    rows = [r for r in _muon_rows(s, "mlp") if f"mlp_{r}_fixed_part" in s and f"mlp_{r}_drift" in s]
    if not rows:
        return []
    widths = sorted({int(k.split("_w")[-1].split("_")[0]) for k in s
                     if k.startswith(f"mlp_{rows[0]}_w") and k.endswith("_log2_lr")})
    out = ["| row (batch 128 unless named) | " + " | ".join(f"w {w}" for w in widths) + " |",
           "|---|" + "---|" * len(widths)]
    for r in rows:
        out.append(f"| {s[f'mlp_{r}_label']} | " + " | ".join(num(s.get(f"mlp_{r}_w{w}_log2_lr"), 2, sign=True)
                                              + (" (grid edge)" if s.get(f"mlp_{r}_w{w}_edge") else "")
                                              for w in widths) + " |")
    return out


UPDATE_QUANTITIES = (("op", "op norm of dW"), ("effect", "rms(dW h)"),
                     ("spectral_alignment", "rms(dW h) / (op norm x rms h)"), ("srank", "stable rank"))


def muon_updates_table(u: Mapping[str, Any], muon: Mapping[str, Any]) -> list[str]:
    """muon_updates' exponents in width of the hidden weight's accumulated update at the last step, each row
    beside the drift of the transfer_muon row it looks inside."""
    rows = [r for r in str(u.get("rows", "")).split(",") if f"{r}_label" in u]
    if not rows:
        return []
    last = str(u.get("steps", "")).split(",")[-1]
    out = [f"| runs | drift of the row | {' | '.join(f'{label} at step {last}' for _, label in UPDATE_QUANTITIES)} |",
           "|---|---|" + "---|" * len(UPDATE_QUANTITIES)]
    for r in rows:
        held = u.get(f"{r}_held")
        drift = drift_cell(muon, f"mlp_{held}") if held and f"mlp_{held}_drift" in muon else "-"
        out.append(f"| {u[f'{r}_label']} | {drift} | "
                   + " | ".join(interval(u, f"{r}_{q}_t{last}_exponent") for q, _ in UPDATE_QUANTITIES) + " |")
    return out


def role_tests_table(r: Mapping[str, Any]) -> list[str]:
    """role_tests' rows (a measured role want applied), in the script's order, each under the muP row it was
    measured on (shown once for the rows that share it), on the training loss and, in the held-out
    columns, the validation loss."""
    tests = [t for t in str(r.get("tests", "")).split(",") if t]
    if not tests:
        return []
    out = ["| task | row | drift [90% CI] | regret at widest | best loss at widest | held-out: drift | regret "
           "| best loss |", "|---|---|---|---|---|---|---|---|"]
    titles = {"gpt": "GPT, stdlib bytes, Adam", "muon_mlp": "MLP, MNIST-1D, Muon + AdamW",
              "muon_gpt": "GPT, stdlib bytes, Muon + AdamW"}
    for i, name in enumerate(tests):
        task = f"{titles.get(r[f'{name}_task'], r[f'{name}_task'])} (w {r.get(name + '_max_width')})"
        shared = i > 0 and r.get(f"{name}_baseline") == r.get(f"{tests[i - 1]}_baseline")
        for p, label in ((f"{name}_baseline", "our muP (the baseline beside it)"),
                         (name, r[f"{name}_what"])):
            if p + "_drift" in r and not (shared and p.endswith("_baseline")):
                out.append(f"| {task} | {label} | {drift_cell(r, p)} | {pct(r.get(p + '_regret_max_width'))} "
                           f"| {num(r.get(p + '_best_loss_max_width'), 3)} | {drift_cell(r, p, '_val')} "
                           f"| {pct(r.get(p + '_val_regret_max_width'))} "
                           f"| {num(r.get(p + '_val_best_loss_max_width'), 3)} |")
    return out


DEPTH_ROWS = (("sp", "SP (= width-only muP at a fixed width)"), ("mup", "width-only muP"),
              ("depth_mup", "Depth-muP (alpha = 1/2)"), ("completep", "CompleteP (alpha = 1)"))


def _depth_task_title(task: str, s: Mapping[str, Any], p: str) -> str:
    lo, hi = s[p + "_base_width"], s[p + "_max_width"]
    width = s.get(f"{task}_model_width")
    if task == "wd":  # widths are the factor k of both: width (model width) x k, depth 2 k blocks
        return f"residual MLP, width {width * lo} -> {width * hi} and depth {2 * lo} -> {2 * hi} together"
    model = {"resmlp": f"residual MLP, width {width}", "gpt": f"pre-LN GPT, width {width}",
             "long": f"residual MLP, width {width}, 1000 steps"}[task]
    return f"{model} (depth {lo} -> {hi})"


def _depth_cells(s: Mapping[str, Any], p: str, row: str) -> str:
    """Drift, regret at the deepest and best loss there (with its gap to SP) of one row, as table cells."""
    gap = s.get(p + "_gap_to_sp")
    one_seed = s.get(f"{p}_w{s.get(p + '_max_width')}_seeds") == 1  # no bootstrap interval
    drift = f"{num(s.get(p + '_drift'), sign=True)} (1 seed)" if one_seed else interval(s, p + "_drift")
    return (f"{drift} | {pct(s.get(p + '_regret_max_width'))} "
            f"| {_loss_or_zero(s.get(p + '_best_loss_max_width'))}"
            + ("" if row == "sp" or gap is None else f" ({gap:+.1%})"))


DEPTH_TASKS = ("resmlp", "gpt", "wd", "long")


def depth_table(s: Mapping[str, Any]) -> list[str]:
    """transfer_depth's rows per task: drift in log2 depth (log2 k where width and depth grow together),
    regret and best loss at the deepest, on the train and on the held-out loss; the final stream's slope
    in the depth coordinate check."""
    out = ["| task | row | drift [90% CI] | regret at deepest | best loss at deepest (vs SP) "
           "| held-out: drift | regret | best loss (vs SP) "
           "| coord. check: final stream mean abs change, slope in log2 depth |",
           "|---|---|---|---|---|---|---|---|---|"]
    for task in DEPTH_TASKS:
        for row, label in DEPTH_ROWS:
            p = f"{task}_{row}"
            if p + "_drift" not in s:
                continue
            if task in ("wd", "long") and row == "sp":
                label = "SP"
            coord = s.get(f"{task}_coord_{row}_stream_mean_abs_delta_slope")
            out.append(f"| {_depth_task_title(task, s, p)} | {label} | {_depth_cells(s, p, row)} "
                       f"| {_depth_cells(s, f'{task}_val_{row}', row)} | {num(coord, sign=True)} |")
    return out


HF_ROWS = (("sp", "SP (as transformers builds it)"), ("mup", "muP (scaling.hf)"))


def hf_table(s: Mapping[str, Any]) -> list[str]:
    """transfer_hf's rows: drift, regret and best loss at the widest, on the train and the held-out loss."""
    out = ["| row | drift [90% CI] | regret at widest | best loss at widest (vs SP) | held-out: drift | regret "
           "| best loss (vs SP) |", "|---|---|---|---|---|---|---|"]
    for row, label in HF_ROWS:
        if f"llama_{row}_drift" in s:
            cells = (_depth_cells(s, f"llama_{row}", row), _depth_cells(s, f"llama_val_{row}", row))
            out.append(f"| {label} | {cells[0]} | {cells[1]} |")
    return out


ROUTE_TASKS = (("mlp", "MLP, MNIST-1D"), ("gpt", "GPT, bytes"), ("cnn", "1-D CNN, MNIST-1D (not seen)"))


def mutransfer_table(s: Mapping[str, Any]) -> list[str]:
    """mutransfer's routes: the direct SP sweep at the widest width against tune-at-base-then-train-once."""
    out = ["| task | widths | direct SP sweep: best loss (runs) | muTransfer: loss (vs direct) | FLOPs (vs direct) "
           "| training time (vs direct) | tuning runs (stopped) |", "|---|---|---|---|---|---|---|"]
    for k, label in ROUTE_TASKS:
        if f"{k}_gap" not in s:
            continue
        out.append(f"| {label} | {s[f'{k}_base_width']} -> {s[f'{k}_widest']} | {num(s[f'{k}_direct_best_loss'], 3)} "
                   f"({s[f'{k}_direct_runs']}) | {num(s[f'{k}_route_loss'], 3)} ({pct(s[f'{k}_gap'])}) | "
                   f"{pct(s[f'{k}_cost_ratio'])} | {pct(s[f'{k}_wall_ratio'])} | {s[f'{k}_tuning_runs']} "
                   f"({s[f'{k}_tuning_stopped']}) |")
    return out


def block(root: Path = RESULTS) -> str:
    """The Markdown of the findings block, from the summaries under ``root``."""
    out = ["<!-- generated by experiments/findings.py from experiments/results: do not edit by hand -->", ""]
    missing = []
    if (s := load("peers", root)) is not None:
        out += ["**The peers, side by side** (`experiments/peers.py`: the same engine, data, batches, seeds, "
                "grid and analysis for every row; drift is `d log2 lr* / d log2 width`, regret the loss lost "
                "at the widest width by keeping the base width's LR, *vs tuned SP* the best loss at the widest "
                "width over SP's best there):", "", *peers_table(s), ""]
        refused_path = root / "peers" / "refused.json"
        refused = json.loads(refused_path.read_text()) if refused_path.is_file() else {}
        out += [f"Missing: {line}" for line in peers_missing(s, refused)] + [""]
    else:
        missing.append("peers")
    if (s := load("ablation", root)) is not None:
        for model in ("mlp", "gpt"):
            if f"{model}_mup_drift" in s:
                out += [f"**From our muP toward u-muP, one change at a time** (`experiments/ablation.py`, "
                        f"{s.get(model + '_title', model)}):", "", *ablation_table(s, model), ""]
                roles = role_table(s, model)
                if roles:
                    out += ["**Each role's LR exponent, measured** (its LR constant tuned at every width, the "
                            "others held at muP; 0 means the table's exponent is what the task wants):", "",
                            *roles, ""]
    else:
        missing.append("ablation")
    if (s := load("alignment", root)) is not None:
        out += ["**Alignment over training** (`experiments/alignment.py`: the exponent of each layer's ratio "
                "`rms(dW x) / (rms(dW) rms(x))` across widths; 1 is full alignment, which muP's LRs assume, "
                "1/2 none):", "", *alignment_table(s, "mlp", ("hidden_0", "readout")), ""]
    else:
        missing.append("alignment")
    if (s := load("horizon", root)) is not None:
        out += ["**Drift against the horizon** (`experiments/horizon.py`, MLP, MNIST-1D, Adam, widths "
                "64/256/1024; the 500-step rows are the peers' runs on the integer grid; one seed from 2,000 steps, "
                "so no interval there; \"floor\": the widest model's training loss falls below "
                f"{s.get('floor', '-')} somewhere on the grid, it has fit its training set and training loss no "
                "longer locates the optimum):", "",
                *horizon_table(s), "",
                "The same runs judged on the validation loss (\"edge\": an optimum at the grid's end at some width, "
                "so the drift's size is a lower bound):", "", *horizon_table(s, "_val"), ""]
    else:
        missing.append("horizon")
    if (s := load("confirm", root)) is not None:
        decided = s.get("decision", "none")
        out += ["**A new default? The rule, applied** (`experiments/confirm.py`, written before the GPT's "
                "remaining ingredients were read: an ingredient replaces the default if its best loss at the "
                "widest width is more than 1% lower than our muP's on both the MLP and the GPT and its regret "
                "there is at most 2 points worse):", "", *decision_table(s), "",
                f"Chosen: **{INGREDIENTS.get(decided, decided)}**." if decided != "none"
                else "Chosen: **none**: the default (TP-V Table 3, PyTorch's init) stays.", "",
                f"**On tasks nothing was chosen on** (`experiments/confirm.py`, the candidate "
                f"{s.get('candidate_what', '-')}, with SP given the same constants as a control):", "",
                *confirm_table(s), "",
                "At equal constants (muP's best loss at the widest width over SP's, both with the candidate's "
                "constants): " + ", ".join(f"{name} {s[f'{t}_candidate_gap_to_sp_candidate']:+.1%}"
                                           for t, name in EQUAL_INIT_TASKS
                                           if f"{t}_candidate_gap_to_sp_candidate" in s) + ".", ""]
    else:
        missing.append("confirm")
    if (s := load("transfer_muon", root)) is not None:
        out += ["**With Muon** (`experiments/transfer_muon.py`: Muon over the hidden matrices and AdamW at 1/16 of "
                "its LR over the rest; SP is torch's Muon with its default `adjust_lr_fn`):", "",
                *muon_table(s), ""]
        optima = muon_optima_table(s)
        if optima:
            out += ["The optimum per width of the rows with one part held (log2 of the swept base LR; Muon's update "
                    "has rank min(width, batch)):", "", *optima, ""]
        roles = [f"{role} {interval(s, f'mlp_role_{role}_exponent')}" for role in ("input", "output", "vector")
                 if f"mlp_role_{role}_exponent" in s]
        if roles:
            out += ["Each AdamW role's LR exponent on the MLP with Muon, measured (its LR constant tuned at every "
                    "width, the base LR held at the base width's optimum; 0 means muP's exponent is what the task "
                    "wants): " + ", ".join(roles) + ".", ""]
        if (u := load("muon_updates", root)) is not None:
            out += ["Inside the held rows' runs (`experiments/muon_updates.py`: the hidden weight's accumulated update "
                    f"`dW = W_t - W_0` at the held point, widths {u.get('widths', '-').replace(',', ', ')}, "
                    f"{u.get('seeds')} seeds, on a fixed batch whose hidden input is `h`; each quantity's exponent "
                    "in width, the seeds' own slopes in brackets, beside the drift of the row "
                    "(Muon's LR swept, AdamW's held); the spectral condition asks for dW's operator norm to stay "
                    "constant in width):", "", *muon_updates_table(u, s), ""]
        else:
            missing.append("muon_updates")
    else:
        missing.append("transfer_muon")
    if (s := load("role_tests", root)) is not None:
        out += ["**The measured role wants, applied** (`experiments/role_tests.py`: each role that wanted about "
                "1/width less LR than muP gives it, with that exponent lowered by one, swept on its own task; "
                "equal to muP at the base width; its prediction in the docstring):", "", *role_tests_table(s),
                ""]
    else:
        missing.append("role_tests")
    if (s := load("transfer_depth", root)) is not None:
        out += ["**Across depth** (`experiments/transfer_depth.py`: the base LR tuned at 2 residual blocks and "
                "used deeper, Adam, at a fixed width; the x axis of the drift is log2 depth; where width and depth "
                "grow together, by a factor k, it is log2 k; the held-out columns redo the analysis on the validation "
                "loss):", "",
                *depth_table(s), ""]
    else:
        missing.append("transfer_depth")
    if (s := load("transfer_hf", root)) is not None:
        out += [f"**A transformers model** (`experiments/transfer_hf.py`: transformers' `LlamaForCausalLM` from a "
                f"config, widths {s.get('llama_sp_base_width')} -> {s.get('llama_sp_max_width')} at head dimension 16, "
                "the byte corpus, Adam, 300 steps):", "", *hf_table(s), ""]
    else:
        missing.append("transfer_hf")
    if (s := load("mutransfer", root)) is not None:
        out += ["**muTransfer as a workflow** (`experiments/mutransfer.py`: `scaling tune` at the base width, muP "
                "and Adam, the default search within a tenth of the direct sweep's FLOPs, the target's two runs "
                "included; then the widest model trained once per seed, `scaling train --constants`; the "
                "direct route is the committed SP sweep at the widest width, every LR, 2 seeds; "
                "FLOPs and training time are the route's over the direct sweep's):", "", *mutransfer_table(s), ""]
    else:
        missing.append("mutransfer")
    if missing:
        out += [f"Not yet run: {', '.join(missing)}.", ""]
    return "\n".join(out)


# The confirm tasks, as the equal-constants sentence names them.
EQUAL_INIT_TASKS = (("mlp", "the MLP"), ("resmlp", "the residual MLP"), ("cnn", "the CNN"))

TEX_ESCAPES = {"%": r"\%", "_": r"\_", "&": r"\&", "#": r"\#", "~": r"\textasciitilde{}", "^": r"\^{}"}
# Numbers the paper's prose quotes, as macros: (macro, summary, key, format).
MACROS = (
    ("FindMupDrift", "peers", "mlp_adam_mup_drift", "signed"),
    ("FindMsMupDrift", "peers", "mlp_adam_microsoft_mup_drift", "signed"),
    ("FindUmupDrift", "peers", "mlp_adam_u_mup_drift", "signed"),
    ("FindUmupGapToSp", "peers", "mlp_adam_u_mup_gap_to_sp", "percent"),
    ("FindMupGapToSp", "peers", "mlp_adam_mup_gap_to_sp", "percent"),
    ("FindGptPeerMupDrift", "peers", "gpt_mup_drift", "signed"),
    ("FindGptUmupDrift", "peers", "gpt_u_mup_drift", "signed"),
    ("FindGptUmupRegret", "peers", "gpt_u_mup_regret_max_width", "percent"),
    ("FindGptUmupGapToSp", "peers", "gpt_u_mup_gap_to_sp", "percent"),
    ("FindGptMupGapToSp", "peers", "gpt_mup_gap_to_sp", "percent"),
    ("FindGptMsMupGapToSp", "peers", "gpt_microsoft_mup_gap_to_sp", "percent"),
    ("FindAbsoluteDrift", "ablation", "mlp_absolute_width_drift", "signed"),
    ("FindAbsoluteRegret", "ablation", "mlp_absolute_width_regret_max_width", "percent"),
    ("FindAbsoluteBestLoss", "ablation", "mlp_absolute_width_best_loss_max_width", "loss"),
    ("FindGptAbsoluteDrift", "ablation", "gpt_absolute_width_drift", "signed"),
    ("FindGptMupDrift", "ablation", "gpt_mup_drift", "signed"),
    ("FindGptBiasLrDrift", "ablation", "gpt_bias_lr_drift", "signed"),
    ("FindGptBiasLrBestLoss", "ablation", "gpt_bias_lr_best_loss_max_width", "loss"),
    ("FindGptUmupConstantsDrift", "ablation", "gpt_umup_constants_drift", "signed"),
    ("FindGptUmupConstantsBestLoss", "ablation", "gpt_umup_constants_best_loss_max_width", "loss"),
    ("FindGptBaseSixtyFourDrift", "ablation", "gpt_base_64_drift", "signed"),
    ("FindHiddenExponent", "ablation", "mlp_role_hidden_exponent", "signed"),
    ("FindOutputExponent", "ablation", "mlp_role_output_exponent", "signed"),
    ("FindGptInputExponent", "ablation", "gpt_role_input_exponent", "signed"),
    ("FindGptHiddenExponent", "ablation", "gpt_role_hidden_exponent", "signed"),
    ("FindGptOutputExponent", "ablation", "gpt_role_output_exponent", "signed"),
    ("FindGptVectorExponent", "ablation", "gpt_role_vector_exponent", "signed"),
    ("FindReadoutAlignment", "alignment", "mlp_mup_readout_t500_exponent", "plain"),
    ("FindHiddenAlignment", "alignment", "mlp_mup_hidden_0_t500_exponent", "plain"),
    ("FindHorizonMupLong", "horizon", "mup_n4000_drift", "signed"),
    ("FindHorizonUmupLong", "horizon", "u_mup_n4000_drift", "signed"),
    ("FindHorizonSpLong", "horizon", "sp_n4000_drift", "signed"),
    ("FindHorizonMupThousand", "horizon", "mup_n1000_drift", "signed"),
    ("FindHorizonMsMupLong", "horizon", "microsoft_mup_n4000_drift", "signed"),
    ("FindHorizonMupValFiveHundred", "horizon", "mup_n500_val_drift", "signed"),
    ("FindHorizonMupValLong", "horizon", "mup_n4000_val_drift", "signed"),
    ("FindHorizonMsMupValLong", "horizon", "microsoft_mup_n4000_val_drift", "signed"),
    ("FindHorizonUmupValLong", "horizon", "u_mup_n4000_val_drift", "signed"),
    ("FindHorizonSpValLong", "horizon", "sp_n4000_val_drift", "signed"),
    ("FindHorizonMupValRegretLong", "horizon", "mup_n4000_val_regret_max_width", "percent"),
    ("FindGptUnitBestLoss", "ablation", "gpt_unit_init_best_loss_max_width", "loss"),
    ("FindGptMupBestLoss", "ablation", "gpt_mup_best_loss_max_width", "loss"),
    ("FindUnitBestLoss", "ablation", "mlp_unit_init_best_loss_max_width", "loss"),
    ("FindUnitRegret", "ablation", "mlp_unit_init_regret_max_width", "percent"),
    ("FindMupRegret", "ablation", "mlp_mup_regret_max_width", "percent"),
    ("FindDecision", "confirm", "decision", "text"),
    ("FindResmlpMupGap", "confirm", "resmlp_mup_gap_to_sp", "percent"),
    ("FindResmlpCandidateGap", "confirm", "resmlp_candidate_gap_to_sp", "percent"),
    ("FindResmlpSpCandidateGap", "confirm", "resmlp_sp_candidate_gap_to_sp", "percent"),
    ("FindCnnMupGap", "confirm", "cnn_mup_gap_to_sp", "percent"),
    ("FindCnnCandidateGap", "confirm", "cnn_candidate_gap_to_sp", "percent"),
    ("FindCnnSpCandidateGap", "confirm", "cnn_sp_candidate_gap_to_sp", "percent"),
    ("FindMlpSpCandidateGap", "confirm", "mlp_sp_candidate_gap_to_sp", "percent"),
    ("FindMlpEqualInitGap", "confirm", "mlp_candidate_gap_to_sp_candidate", "percent"),
    ("FindResmlpEqualInitGap", "confirm", "resmlp_candidate_gap_to_sp_candidate", "percent"),
    ("FindCnnEqualInitGap", "confirm", "cnn_candidate_gap_to_sp_candidate", "percent"),
    ("FindResmlpMupDrift", "confirm", "resmlp_mup_drift", "signed"),
    ("FindDepthSpDrift", "transfer_depth", "resmlp_sp_drift", "signed"),
    ("FindDepthHalfDrift", "transfer_depth", "resmlp_depth_mup_drift", "signed"),
    ("FindDepthOneDrift", "transfer_depth", "resmlp_completep_drift", "signed"),
    ("FindDepthSpRegret", "transfer_depth", "resmlp_sp_regret_max_width", "percent"),
    ("FindDepthHalfRegret", "transfer_depth", "resmlp_depth_mup_regret_max_width", "percent"),
    ("FindDepthOneRegret", "transfer_depth", "resmlp_completep_regret_max_width", "percent"),
    ("FindDepthHalfGap", "transfer_depth", "resmlp_depth_mup_gap_to_sp", "percent"),
    ("FindDepthOneGap", "transfer_depth", "resmlp_completep_gap_to_sp", "percent"),
    ("FindDepthCoordSp", "transfer_depth", "resmlp_coord_sp_stream_mean_abs_delta_slope", "signed"),
    ("FindDepthCoordHalf", "transfer_depth", "resmlp_coord_depth_mup_stream_mean_abs_delta_slope", "signed"),
    ("FindDepthCoordOne", "transfer_depth", "resmlp_coord_completep_stream_mean_abs_delta_slope", "signed"),
    ("FindDepthGptSpDrift", "transfer_depth", "gpt_sp_drift", "signed"),
    ("FindDepthGptHalfDrift", "transfer_depth", "gpt_depth_mup_drift", "signed"),
    ("FindDepthGptOneDrift", "transfer_depth", "gpt_completep_drift", "signed"),
    ("FindDepthGptSpRegret", "transfer_depth", "gpt_sp_regret_max_width", "percent"),
    ("FindDepthGptHalfRegret", "transfer_depth", "gpt_depth_mup_regret_max_width", "percent"),
    ("FindDepthGptOneRegret", "transfer_depth", "gpt_completep_regret_max_width", "percent"),
    ("FindDepthGptHalfGap", "transfer_depth", "gpt_depth_mup_gap_to_sp", "percent"),
    ("FindDepthGptOneGap", "transfer_depth", "gpt_completep_gap_to_sp", "percent"),
    ("FindWdSpRegret", "transfer_depth", "wd_sp_regret_max_width", "percent"),
    ("FindWdMupRegret", "transfer_depth", "wd_mup_regret_max_width", "percent"),
    ("FindWdHalfRegret", "transfer_depth", "wd_depth_mup_regret_max_width", "percent"),
    ("FindWdOneRegret", "transfer_depth", "wd_completep_regret_max_width", "percent"),
    ("FindWdHalfGap", "transfer_depth", "wd_depth_mup_gap_to_sp", "percent"),
    ("FindWdOneGap", "transfer_depth", "wd_completep_gap_to_sp", "percent"),
    ("FindDepthSpBest", "transfer_depth", "resmlp_sp_best_loss_max_width", "loss"),
    ("FindDepthValSpBest", "transfer_depth", "resmlp_val_sp_best_loss_max_width", "loss"),
    ("FindDepthValSpDrift", "transfer_depth", "resmlp_val_sp_drift", "signed"),
    ("FindDepthValSpRegret", "transfer_depth", "resmlp_val_sp_regret_max_width", "percent"),
    ("FindDepthValHalfDrift", "transfer_depth", "resmlp_val_depth_mup_drift", "signed"),
    ("FindDepthValHalfGap", "transfer_depth", "resmlp_val_depth_mup_gap_to_sp", "percent"),
    ("FindDepthValOneGap", "transfer_depth", "resmlp_val_completep_gap_to_sp", "percent"),
    ("FindDepthGptValHalfGap", "transfer_depth", "gpt_val_depth_mup_gap_to_sp", "percent"),
    ("FindWdValSpRegret", "transfer_depth", "wd_val_sp_regret_max_width", "percent"),
    ("FindWdValMupRegret", "transfer_depth", "wd_val_mup_regret_max_width", "percent"),
    ("FindWdValMupGap", "transfer_depth", "wd_val_mup_gap_to_sp", "percent"),
    ("FindWdValHalfRegret", "transfer_depth", "wd_val_depth_mup_regret_max_width", "percent"),
    ("FindWdValHalfGap", "transfer_depth", "wd_val_depth_mup_gap_to_sp", "percent"),
    ("FindWdValOneRegret", "transfer_depth", "wd_val_completep_regret_max_width", "percent"),
    ("FindWdValOneGap", "transfer_depth", "wd_val_completep_gap_to_sp", "percent"),
    ("FindLongSpDrift", "transfer_depth", "long_sp_drift", "signed"),
    ("FindLongSpRegret", "transfer_depth", "long_sp_regret_max_width", "percent"),
    ("FindLongOneDrift", "transfer_depth", "long_completep_drift", "signed"),
    ("FindLongOneRegret", "transfer_depth", "long_completep_regret_max_width", "percent"),
    ("FindLongOneGap", "transfer_depth", "long_completep_gap_to_sp", "percent"),
    ("FindLongValOneGap", "transfer_depth", "long_val_completep_gap_to_sp", "percent"),
    ("FindHfSpDrift", "transfer_hf", "llama_sp_drift", "signed"),
    ("FindHfSpRegret", "transfer_hf", "llama_sp_regret_max_width", "percent"),
    ("FindHfSpBest", "transfer_hf", "llama_sp_best_loss_max_width", "loss"),
    ("FindHfMupDrift", "transfer_hf", "llama_mup_drift", "signed"),
    ("FindHfMupRegret", "transfer_hf", "llama_mup_regret_max_width", "percent"),
    ("FindHfMupBest", "transfer_hf", "llama_mup_best_loss_max_width", "loss"),
    ("FindHfMupGap", "transfer_hf", "llama_mup_gap_to_sp", "percent"),
    ("FindHfValMupGap", "transfer_hf", "llama_val_mup_gap_to_sp", "percent"),
    ("FindRouteMlpGap", "mutransfer", "mlp_gap", "percent"),
    ("FindRouteMlpCost", "mutransfer", "mlp_cost_ratio", "percent"),
    ("FindRouteGptGap", "mutransfer", "gpt_gap", "percent"),
    ("FindRouteGptCost", "mutransfer", "gpt_cost_ratio", "percent"),
    ("FindRouteCnnGap", "mutransfer", "cnn_gap", "percent"),
    ("FindRouteCnnCost", "mutransfer", "cnn_cost_ratio", "percent"),
    ("FindRouteGptTuningRuns", "mutransfer", "gpt_tuning_runs", "text"),
    ("FindRouteCnnTuningRuns", "mutransfer", "cnn_tuning_runs", "text"),
    ("FindMuonMupDrift", "transfer_muon", "mlp_mup_drift", "signed"),
    ("FindMuonSpDrift", "transfer_muon", "mlp_sp_drift", "signed"),
    ("FindMuonMupGap", "transfer_muon", "mlp_mup_gap_to_sp", "percent"),
    ("FindMuonMupValDrift", "transfer_muon", "mlp_mup_val_drift", "signed"),
    ("FindMuonMupValDriftLo", "transfer_muon", "mlp_mup_val_drift_lo", "signed"),
    ("FindMuonMupValDriftHi", "transfer_muon", "mlp_mup_val_drift_hi", "signed"),
    ("FindMuonMupValRegret", "transfer_muon", "mlp_mup_val_regret_max_width", "percent"),
    ("FindMuonMupValBestLoss", "transfer_muon", "mlp_mup_val_best_loss_max_width", "loss"),
    ("FindMuonSpValDrift", "transfer_muon", "mlp_sp_val_drift", "signed"),
    ("FindMuonSpValBestLoss", "transfer_muon", "mlp_sp_val_best_loss_max_width", "loss"),
    ("FindMuonMupRegret", "transfer_muon", "mlp_mup_regret_max_width", "percent"),
    ("FindCnnMupDrift", "confirm", "cnn_mup_drift", "signed"),
    ("FindMuonMupBestLoss", "transfer_muon", "mlp_mup_best_loss_max_width", "loss"),
    ("FindMuonSpBestLoss", "transfer_muon", "mlp_sp_best_loss_max_width", "loss"),
    ("FindMuonSpRegret", "transfer_muon", "mlp_sp_regret_max_width", "percent"),
    ("FindGptMuonMupDrift", "transfer_muon", "gpt_mup_drift", "signed"),
    ("FindGptMuonInitReadoutDrift", "transfer_muon", "gpt_mup_initreadout_drift", "signed"),
    ("FindGptMuonInitReadoutRegret", "transfer_muon", "gpt_mup_initreadout_regret_max_width", "percent"),
    ("FindGptMuonInitReadoutBestLoss", "transfer_muon", "gpt_mup_initreadout_best_loss_max_width", "loss"),
    ("FindGptMuonInitReadoutGap", "transfer_muon", "gpt_mup_initreadout_gap_to_sp", "percent"),
    ("FindGptMuonMupGap", "transfer_muon", "gpt_mup_gap_to_sp", "percent"),
    ("FindMuonFixAdamDrift", "transfer_muon", "mlp_mup_fixadam_drift", "signed"),
    ("FindMuonFixAdamRegret", "transfer_muon", "mlp_mup_fixadam_regret_max_width", "percent"),
    ("FindMuonFixMuonDrift", "transfer_muon", "mlp_mup_fixmuon_drift", "signed"),
    ("FindMuonFixAdamSmallBatchDrift", "transfer_muon", "mlp_mup_fixadam_b32_drift", "signed"),
    ("FindMuonFixAdamLargeBatchDrift", "transfer_muon", "mlp_mup_fixadam_b512_drift", "signed"),
    ("FindMuonFixAdamSmallBatchEqualSamplesDrift", "transfer_muon", "mlp_mup_fixadam_b32_n2000_drift", "signed"),
    ("FindMuonFixAdamLargeBatchEqualSamplesDrift", "transfer_muon", "mlp_mup_fixadam_b512_n125_drift", "signed"),
    ("FindMuonFixMuonSmallBatchDrift", "transfer_muon", "mlp_mup_fixmuon_b32_drift", "signed"),
    ("FindMuonFixMuonLargeBatchDrift", "transfer_muon", "mlp_mup_fixmuon_b512_drift", "signed"),
    ("FindMuonRoleInput", "transfer_muon", "mlp_role_input_exponent", "signed"),
    ("FindMuonRoleOutput", "transfer_muon", "mlp_role_output_exponent", "signed"),
    ("FindMuonRoleVector", "transfer_muon", "mlp_role_vector_exponent", "signed"),
    ("FindGptMuonSpDrift", "transfer_muon", "gpt_sp_drift", "signed"),
    ("FindRoleTestEmbedDrift", "role_tests", "embed_lr_drift", "signed"),
    ("FindRoleTestIoDrift", "role_tests", "io_lr_drift", "signed"),
    ("FindRoleTestIoRegret", "role_tests", "io_lr_regret_max_width", "percent"),
    ("FindRoleTestInputDrift", "role_tests", "input_lr_drift", "signed"),
    ("FindRoleTestReadoutDrift", "role_tests", "readout_lr_drift", "signed"),
    ("FindRoleTestInputBestLoss", "role_tests", "input_lr_best_loss_max_width", "loss"),
    ("FindRoleTestInputValBestLoss", "role_tests", "input_lr_val_best_loss_max_width", "loss"),
    ("FindRoleTestInputValDrift", "role_tests", "input_lr_val_drift", "signed"),
    ("FindRoleTestInputRegret", "role_tests", "input_lr_regret_max_width", "percent"),
    ("FindRoleTestMuonGptDrift", "role_tests", "muon_gpt_embed_lr_drift", "signed"),
    ("FindRoleTestMuonGptRegret", "role_tests", "muon_gpt_embed_lr_regret_max_width", "percent"),
    ("FindRoleTestMuonGptBestLoss", "role_tests", "muon_gpt_embed_lr_best_loss_max_width", "loss"),
    ("FindMuonUpdatesOpSmallBatch", "muon_updates", "muon_b32_op_t500_exponent", "signed"),
    ("FindMuonUpdatesOp", "muon_updates", "muon_b128_op_t500_exponent", "signed"),
    ("FindMuonUpdatesOpLargeBatch", "muon_updates", "muon_b512_op_t500_exponent", "signed"),
    ("FindMuonUpdatesOpAdam", "muon_updates", "adam_b128_op_t500_exponent", "signed"),
    ("FindMuonUpdatesEffect", "muon_updates", "muon_b128_effect_t500_exponent", "signed"),
    ("FindMuonUpdatesEffectAdam", "muon_updates", "adam_b128_effect_t500_exponent", "signed"),
    ("FindMuonUpdatesAlignment", "muon_updates", "muon_b128_spectral_alignment_t500_exponent", "signed"),
    ("FindMuonUpdatesSrank", "muon_updates", "muon_b128_srank_t500_exponent", "signed"),
    ("FindMuonUpdatesSrankAdam", "muon_updates", "adam_b128_srank_t500_exponent", "signed"),
    ("FindGptMuonMupRegret", "transfer_muon", "gpt_mup_regret_max_width", "percent"),
    ("FindGptMuonSpRegret", "transfer_muon", "gpt_sp_regret_max_width", "percent"),
    ("FindGptMuonMupBestLoss", "transfer_muon", "gpt_mup_best_loss_max_width", "loss"),
    ("FindGptMuonSpBestLoss", "transfer_muon", "gpt_sp_best_loss_max_width", "loss"),
)


def tex_cell(text: str) -> str:
    return "".join(TEX_ESCAPES.get(c, c) for c in text.replace("`", "").strip())


WRAP_AFTER = 60  # characters: a column with a longer cell wraps in a paragraph column of WRAP_WIDTH
WRAP_WIDTH = "6cm"


def _spec(rows: Sequence[Sequence[str]]) -> str:
    """``l`` per column, or a ragged-right paragraph column where some cell is longer than WRAP_AFTER."""
    wrap = f">{{\\raggedright\\arraybackslash}}p{{{WRAP_WIDTH}}}"
    return "".join(wrap if max(len(r[i]) for r in rows) > WRAP_AFTER else "l" for i in range(len(rows[0])))


def tex_table(md: Sequence[str]) -> str:
    """A Markdown table (header, rule, rows) as a booktabs ``tabular``. Where the first column repeats down
    the rows (a task per group of rows, as in the peer and Muon tables), the column goes and each group
    gets a line of its own above its rows; a column with long cells wraps. Both keep the table narrow, so
    its type is scaled down less."""
    rows = [[tex_cell(c) for c in line.strip().strip("|").split("|")] for line in md if not line.startswith("|---")]
    header, body = rows[0], rows[1:]
    grouped = len(body) >= 3 and len({r[0] for r in body}) <= len(body) / 2
    if not grouped:
        lines = [r"\midrule", *(" & ".join(r) + r" \\" for r in body)]
    else:
        header, cells = header[1:], [r[1:] for r in body]
        lines = []
        for i, r in enumerate(body):
            if i == 0 or r[0] != body[i - 1][0]:
                lines += [r"\midrule", f"\\multicolumn{{{len(header)}}}{{l}}{{\\textit{{{r[0]}}}}} \\\\"]
            lines.append(" & ".join(cells[i]) + r" \\")
        body = cells
    return "\n".join([f"\\begin{{tabular}}{{{_spec(body)}}}", r"\toprule", " & ".join(header) + r" \\", *lines,
                      r"\bottomrule", r"\end{tabular}"])


def fmt(value: Any, how: str) -> str:
    if how == "text":
        return tex_cell(str(value).replace("_", " ")) if value is not None else "-"
    if how == "percent":
        return tex_cell(pct(value))
    if how == "loss":
        return num(value, 3)
    return num(value, sign=how == "signed")


def latex(root: Path = RESULTS) -> str:
    """``findings.tex``: the tables as ``\\Find...Table`` macros and the numbers the prose quotes."""
    out = ["% generated by experiments/findings.py: do not edit by hand"]
    loaded = {n: load(n, root) or {} for n in ("peers", "ablation", "alignment", "horizon", "confirm",
                                               "transfer_muon", "muon_updates", "role_tests", "transfer_depth",
                                               "transfer_hf", "mutransfer")}
    for macro, name, key, how in MACROS:
        out.append(f"\\newcommand{{\\{macro}}}{{{fmt(loaded[name].get(key), how)}}}")
    tables = {"FindPeersTable": peers_table(loaded["peers"]) if loaded["peers"] else [],
              "FindAblationTable": ablation_table(loaded["ablation"], "mlp") if loaded["ablation"] else [],
              "FindGptAblationTable": ablation_table(loaded["ablation"], "gpt") if loaded["ablation"] else [],
              "FindRoleTable": role_table(loaded["ablation"], "mlp"),
              "FindGptRoleTable": role_table(loaded["ablation"], "gpt"),
              "FindAlignmentTable": alignment_table(loaded["alignment"], "mlp", ("hidden_0", "readout"))
              if loaded["alignment"] else [],
              "FindHorizonTable": horizon_table(loaded["horizon"]) if loaded["horizon"] else [],
              "FindHorizonValTable": horizon_table(loaded["horizon"], "_val") if loaded["horizon"] else [],
              "FindDecisionTable": decision_table(loaded["confirm"]) if loaded["confirm"] else [],
              "FindConfirmTable": confirm_table(loaded["confirm"]) if loaded["confirm"] else [],
              "FindMuonTable": muon_table(loaded["transfer_muon"]) if loaded["transfer_muon"] else [],
              "FindMuonOptimaTable": muon_optima_table(loaded["transfer_muon"]) if loaded["transfer_muon"] else [],
              "FindMuonUpdatesTable": muon_updates_table(loaded["muon_updates"], loaded["transfer_muon"])
              if loaded["muon_updates"] else [],
              "FindRoleTestsTable": role_tests_table(loaded["role_tests"]) if loaded["role_tests"] else [],
              "FindDepthTable": depth_table(loaded["transfer_depth"]) if loaded["transfer_depth"] else [],
              "FindHfTable": hf_table(loaded["transfer_hf"]) if loaded["transfer_hf"] else [],
              "FindRouteTable": mutransfer_table(loaded["mutransfer"]) if loaded["mutransfer"] else []}
    for macro, md in tables.items():
        body = tex_table(md) if len(md) > 2 else "(not run)"
        out.append(f"\\newcommand{{\\{macro}}}{{%\n{body}}}")
    return "\n".join(out) + "\n"


def with_block(readme: str, md: str) -> str:
    """``readme`` with its findings block replaced by ``md``."""
    return with_results(readme, md, (BEGIN, END))


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if the README block differs from the summaries")
    args = p.parse_args(argv)
    md = block()
    readme = README.read_text()
    new = with_block(readme, md)
    if args.check:
        if new != readme:
            print("README.md's findings block is stale: run python experiments/findings.py", file=sys.stderr)
            return 1
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(md + "\n")
    TEX.write_text(latex())
    README.write_text(new)
    print(f"wrote {OUT.relative_to(ROOT)}, {TEX.relative_to(ROOT)} and the findings block of README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

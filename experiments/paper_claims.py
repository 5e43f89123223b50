"""The transfer experiments' targets (the README's table) and the claims paper.tex makes in words, checked.

The summary keys read here come from :mod:`keys`, which the scripts that write them use too: a renamed key
fails at its writer. ``coord_mlp``'s, ``coord_gpt``'s and the benchmarks' keys are read as they are named
in ``experiments/README.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keys as k
from keys import BEST_LOSS, BEST_LOSS_MAX_WIDTH, DRIFT, DRIFT_HI, DRIFT_LO, LOSS_AT_BASE_LR, MAX_WIDTH, REGRET_MAX_WIDTH
from paper_artifacts import bench_rows, widths_of
from paper_theory import DRIFT_CONFIDENCE

Artifacts = Mapping[str, Mapping[str, Any]]
Claim = tuple[str, Callable[[Artifacts], bool]]
MLP, MLP_S4, GPT, QUESTION = "transfer_mlp", "transfer_mlp_s4", "transfer_gpt", "transfer_question"
ROUTE = "mutransfer"  # experiments/mutransfer.py: optional in the targets table
QUESTION_OTHERS = ("question_mnist1d", "funnel_toy", "funnel_mnist1d")  # the tasks but 10-n-2 on toy data


def _s(a: Artifacts, experiment: str, sweep: str, field: str) -> Any:
    """``<sweep>_<field>`` of ``experiment``'s summary."""
    return a[experiment][k.sweep(sweep, field)]


def _q(a: Artifacts, task: str, p: str, field: str) -> Any:
    """``<task>_<p>_<field>`` of transfer_question's summary."""
    return a[QUESTION][k.sweep(k.task_sweep(task, p), field)]


def _mlp_target(a: Artifacts, target: str) -> Any:
    return a[MLP][target]


def _regret_target(a: Artifacts) -> float:
    return float(a[MLP][k.TARGET_MUP_REGRET_MAX])


def _widest(s: Mapping[str, Any], sweep: str, what: str) -> Any:
    return s[k.at_width(sweep, max(widths_of(s, sweep)), what)]


def _bench(a: Artifacts, case: str, run: str) -> float:
    """A per-step ratio of bench_parameterize: ``case`` an MLP width (as a string), ``narrowest`` or ``gpt``."""
    data = a["bench_parameterize"]
    if case == "narrowest":
        case = min(data["mlp"], key=int)
    rows = data["gpt"] if case == "gpt" else data["mlp"][case]
    return float(bench_rows(rows)[run]["cpu_ratio"])


def _tuned_better_everywhere(s: Mapping[str, Any]) -> bool:
    return all(s[k.at_width("adam_mup_tuned", w, BEST_LOSS)] < s[k.at_width("adam_mup", w, BEST_LOSS)]
               for w in widths_of(s, "adam_mup"))


def _holds_zero(a: Artifacts, experiment: str, sweep: str) -> bool:
    """The drift interval of ``sweep`` holds 0."""
    return bool(_s(a, experiment, sweep, DRIFT_LO) < 0 < _s(a, experiment, sweep, DRIFT_HI))


def _mlp_long(a: Artifacts) -> bool:
    drift_max, regret_max = _mlp_target(a, k.TARGET_MUP_DRIFT_ABS_MAX), _regret_target(a)
    return bool(
        _s(a, MLP, "adam_sp_long", DRIFT_HI) < 0
        and _s(a, MLP, "adam_sp_long", REGRET_MAX_WIDTH) > regret_max
        and _holds_zero(a, MLP, "adam_mup_long")
        and abs(_s(a, MLP, "adam_mup_long", DRIFT)) <= drift_max
        and _s(a, MLP, "adam_mup_long", REGRET_MAX_WIDTH) < regret_max
        and _s(a, MLP, "adam_sp_long", BEST_LOSS_MAX_WIDTH) < _s(a, MLP, "adam_mup_long", BEST_LOSS_MAX_WIDTH)
        and _s(a, MLP, "adam_sp_long", k.MLP_METRIC) == _s(a, MLP, "adam_mup_long", k.MLP_METRIC) == "val_loss"
        and max(_s(a, MLP, f"adam_{p}_long", k.MLP_MIN_TRAIN_LOSS_MAX_WIDTH) for p in ("sp", "mup")) < 0.01)


def _gpt_initreadout(a: Artifacts) -> bool:
    g = a[GPT]
    return bool(
        _holds_zero(a, GPT, "mup_initreadout")
        and abs(_s(a, GPT, "mup_initreadout", DRIFT)) <= g[k.TARGET_MUP_DRIFT_ABS_MAX]
        and _s(a, GPT, "mup_initreadout", REGRET_MAX_WIDTH) < _regret_target(a)
        and 0 < g[k.gpt_gap_best("mup_initreadout")] < g[k.gpt_gap_best("mup")] / 2
        and 0 < g[k.gpt_gap_transferred("mup_initreadout")] < g[k.gpt_gap_transferred("mup")] / 2)


# What paper.tex says in words about the numbers; each must hold on the artifacts. A failed claim is an
# error for the full runs (revise the text) and a warning for quick runs (small grids are noisy).
CLAIMS: tuple[Claim, ...] = (
    ("MLP, SP+Adam: the optimum falls with width (drift interval below 0)",
     lambda a: _s(a, MLP, "adam_sp", DRIFT_HI) < 0),
    ("MLP, muP+Adam: drift positive (interval above 0) and smaller in size than SP's",
     lambda a: _s(a, MLP, "adam_mup", DRIFT_LO) > 0
     and abs(_s(a, MLP, "adam_mup", DRIFT)) < abs(_s(a, MLP, "adam_sp", DRIFT))),
    ("MLP, muP+Adam: regret at the widest width above the target",
     lambda a: _s(a, MLP, "adam_mup", REGRET_MAX_WIDTH) > _regret_target(a)),
    ("MLP: the widest muP model at the base width's LR beats the widest SP model at its base width's LR",
     lambda a: _widest(a[MLP], "adam_mup", LOSS_AT_BASE_LR) < _widest(a[MLP], "adam_sp", LOSS_AT_BASE_LR)),
    ("MLP: tuned constants lower muP's best loss at every width",
     lambda a: _tuned_better_everywhere(a[MLP])),
    ("MLP: tuned constants shrink muP's drift but leave its regret above the target",
     lambda a: abs(_s(a, MLP, "adam_mup_tuned", DRIFT)) < abs(_s(a, MLP, "adam_mup", DRIFT))
     and _s(a, MLP, "adam_mup_tuned", REGRET_MAX_WIDTH) > _regret_target(a)),
    ("MLP: the muTransfer route beats the direct SP sweep's best run at the widest width, at less compute",
     lambda a: a[MLP][k.GAP] < 0 and a[MLP][k.GAP_COST_RATIO] < 1),
    ("MLP: tuned SP's and tuned muP's own optima at the widest width beat the transferred run",
     lambda a: _s(a, MLP, "adam_sp_tuned", BEST_LOSS_MAX_WIDTH) < a[MLP][k.GAP_TRANSFERRED_LOSS]
     and a[MLP][k.gap_vs_best("adam_mup_tuned")] > 0),
    ("MLP: tuned constants do not rescue SP (drift interval below 0)",
     lambda a: _s(a, MLP, "adam_sp_tuned", DRIFT_HI) < 0),
    ("MLP: the no-alignment readout row removes the drift (interval holds 0, |drift| within the target) and "
     "has regret below the target",
     lambda a: _holds_zero(a, MLP, "adam_mup_noalign")
     and abs(_s(a, MLP, "adam_mup_noalign", DRIFT)) <= _mlp_target(a, k.TARGET_MUP_DRIFT_ABS_MAX)
     and _s(a, MLP, "adam_mup_noalign", REGRET_MAX_WIDTH) < _regret_target(a)),
    ("MLP, 4 seeds: SP's drift interval below 0, muP's above the +-0.1 target, regret above 2%",
     lambda a: _s(a, MLP_S4, "adam_sp", DRIFT_HI) < 0
     and _s(a, MLP_S4, "adam_mup", DRIFT_LO) > _mlp_target(a, k.TARGET_MUP_DRIFT_ABS_MAX)
     and _s(a, MLP_S4, "adam_mup", REGRET_MAX_WIDTH) > _regret_target(a)),
    ("MLP: the muTransfer route's cost ratio is above a tenth with 2 seeds and below with 4",
     lambda a: a[MLP_S4][k.GAP_COST_RATIO] < _mlp_target(a, k.TARGET_COST_RATIO_MAX) < a[MLP][k.GAP_COST_RATIO]),
    ("MLP, 4x steps on the validation loss: SP's drift interval below 0 and regret above the target; muP's "
     "interval holds 0 with |drift| and regret within the targets; SP's best validation loss below muP's; the "
     "widest models memorize (best training loss below 0.01)",
     _mlp_long),
    ("MLP, SGD: SP's drift is smaller in size than with Adam",
     lambda a: abs(_s(a, MLP, "sgd_sp", DRIFT)) < abs(_s(a, MLP, "adam_sp", DRIFT))),
    ("MLP, SGD: SP's drift interval lies above -1/2",
     lambda a: _s(a, MLP, "sgd_sp", DRIFT_LO) > -0.5),
    ("GPT: SP's drift is steeper than on the MLP, and muP's regret is below the MLP target",
     lambda a: _s(a, GPT, "sp", DRIFT) < _s(a, MLP, "adam_sp", DRIFT)
     and _s(a, GPT, "mup", REGRET_MAX_WIDTH) < _regret_target(a)),
    ("Question, 10-n-2, SP: on toy data the optimum falls between the asked widths; on MNIST-1D it rises between "
     "them but drifts down overall (interval below 0); the largest usable LR does not rise on either",
     lambda a: _q(a, "question_toy", "sp", k.Q_LR_RATIO) < 1
     and _q(a, "question_mnist1d", "sp", k.Q_LR_RATIO) > 1
     and _q(a, "question_mnist1d", "sp", DRIFT_HI) < 0
     and all(_q(a, f"question_{d}", "sp", k.Q_MAX_LR_RATIO) <= 1 for d in ("toy", "mnist1d"))),
    ("GPT: muP's drift within its target but its interval reaches beyond it; muP's best and transferred losses "
     "at the widest width are above SP's best",
     lambda a: abs(_s(a, GPT, "mup", DRIFT)) <= a[GPT][k.TARGET_MUP_DRIFT_ABS_MAX] < -_s(a, GPT, "mup", DRIFT_LO)
     and a[GPT][k.gpt_gap_best("mup")] > 0 and a[GPT][k.gpt_gap_transferred("mup")] > 0),
    ("GPT: the no-alignment readout's best loss is below SP's best, its drift interval below 0, its regret above "
     "the MLP target",
     lambda a: a[GPT][k.gpt_gap_best("mup_noalign")] < 0 and _s(a, GPT, "mup_noalign", DRIFT_HI) < 0
     and _s(a, GPT, "mup_noalign", REGRET_MAX_WIDTH) > _regret_target(a)),
    ("GPT: without the zero readout muP transfers (drift interval holds 0, |drift| within the target, regret below "
     "the MLP target) and loses to SP's best by less than half the zero-readout gap, best and transferred",
     _gpt_initreadout),
    ("Question, SP: the largest usable LR falls from the small to the large width on all four tasks",
     lambda a: all(_q(a, f"{n}_{d}", "sp", k.Q_MAX_LR_RATIO) < 1
                   for n in ("question", "funnel") for d in ("toy", "mnist1d"))),
    ("Question, muP: the three tasks other than 10-n-2 on toy data share one widest width",
     lambda a: len({_q(a, t, "mup", MAX_WIDTH) for t in QUESTION_OTHERS}) == 1),
    ("Question, funnel under plateau, SP: drift interval below 0 and regret above the MLP target",
     lambda a: all(_q(a, f"funnel_{d}", "sp", DRIFT_HI) < 0
                   and _q(a, f"funnel_{d}", "sp", REGRET_MAX_WIDTH) > _regret_target(a) for d in ("toy", "mnist1d"))),
    ("Question, muP: the optimum rises with width on the three tasks other than 10-n-2 on toy data, each drift "
     "larger than the MLP's",
     lambda a: all(_q(a, t, "mup", DRIFT) > _s(a, MLP, "adam_mup", DRIFT) > 0 for t in QUESTION_OTHERS)),
    ("Question, 10-n-2 on toy data: muP's drift is smaller in size than SP's",
     lambda a: abs(_q(a, "question_toy", "mup", DRIFT)) < abs(_q(a, "question_toy", "sp", DRIFT))),
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


def check_claims(data: Artifacts) -> list[str]:
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


def targets_lines(loaded: Artifacts) -> list[str]:
    """The transfer experiments' targets (issue 4) as Markdown table rows: target, measured, met."""
    mlp, gpt, s4 = loaded[MLP], loaded[GPT], loaded[MLP_S4]

    def interval(s: Mapping[str, Any], sweep: str) -> str:
        d, lo, hi = (s[k.sweep(sweep, f)] for f in (DRIFT, DRIFT_LO, DRIFT_HI))
        return f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"

    rows = [
        (f"MLP/Adam: muP drift within +-{mlp[k.TARGET_MUP_DRIFT_ABS_MAX]:g}",
         f"{interval(mlp, 'adam_mup')}; {s4[k.MLP_SEEDS]} seeds: {interval(s4, 'adam_mup')}",
         mlp[k.check_drift_within_0p1("adam_mup")]),
        (f"MLP/Adam: SP drift at most {mlp[k.TARGET_SP_DRIFT_MAX]:g}", interval(mlp, "adam_sp"),
         mlp[k.check_drift_le_m0p5("adam_sp")]),
        (f"MLP/Adam: SP and muP {DRIFT_CONFIDENCE:.0%} intervals disjoint", "",
         mlp[k.check_intervals_disjoint("adam_mup", "sp")]),
        (f"MLP/Adam: muP regret at width {mlp[k.sweep('adam_mup', MAX_WIDTH)]} under "
         f"{mlp[k.TARGET_MUP_REGRET_MAX]:.0%}",
         f"{mlp[k.sweep('adam_mup', REGRET_MAX_WIDTH)]:.1%}", mlp[k.check_regret_lt_2pct("adam_mup")]),
        (f"MLP/Adam: muTransfer gap (constants tuned at width {mlp[k.sweep('adam_mup', k.BASE_WIDTH)]}, loss at "
         f"width {mlp[k.GAP_WIDTH]} over the direct SP sweep's best) at most {mlp[k.TARGET_GAP_MAX]:.0%} above it",
         f"{mlp[k.GAP]:+.1%}", mlp[k.CHECK_GAP_AT_MOST_2PCT_ABOVE_SP]),
        (f"MLP/Adam: ... at most {mlp[k.TARGET_COST_RATIO_MAX]:.0%} of that sweep's FLOPs",
         f"{mlp[k.GAP_COST_RATIO]:.1%} ({mlp[k.GAP_COST_RATIO_TUNING_ONLY]:.1%} tuning only); "
         f"{s4[k.MLP_SEEDS]} seeds: {s4[k.GAP_COST_RATIO]:.1%}",
         mlp[k.CHECK_COST_LE_10PCT]),
        *([(f"MLP/Adam: the muTransfer route (`scaling tune` at width {route['mlp_base_width']} within a tenth of "
             f"the direct sweep's FLOPs, then width {route['mlp_widest']} trained once; experiments/mutransfer.py): "
             f"at most {mlp[k.TARGET_GAP_MAX]:.0%} above the direct SP sweep's best, at most "
             f"{mlp[k.TARGET_COST_RATIO_MAX]:.0%} of its FLOPs",
             f"{route['mlp_gap']:+.1%} at {route['mlp_cost_ratio']:.1%} of its FLOPs",
             route["mlp_gap_met"] and route["mlp_cost_met"])] if (route := loaded.get(ROUTE)) else []),
        (f"GPT/Adam: muP drift within +-{gpt[k.TARGET_MUP_DRIFT_ABS_MAX]:g}",
         f"{interval(gpt, 'mup')} (zero readout); {interval(gpt, 'mup_initreadout')} (readout init. as Table 3)",
         gpt[k.CHECK_GPT_MUP_DRIFT_WITHIN_0P2]),
    ]
    return [f"| {t} | {m} | {'yes' if ok else '**no**'} |" for t, m, ok in rows]

"""The ``summary.json`` keys that ``paper_numbers.py`` reads by name, shared with the scripts that write them.

A writer (``transfer_mlp.py``, ``transfer_gpt.py``, ``transfer_question.py``, ``tune_base.py``) builds these
keys from the names here and, before it writes ``summary.json``, calls :func:`require` with its schema
(:func:`transfer_mlp_schema` and the like, :data:`TUNE_BASE`): a key renamed or dropped at the writer fails
there, loudly, not later as a claim of ``paper_claims.py`` that "cannot evaluate". The other keys (every
key becomes a macro) are described in ``experiments/README.md``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from typing import Any


class SchemaError(KeyError):
    """A summary lacks keys that this module declares for its experiment."""


def require(summary: Mapping[str, Any], required: Iterable[str], writer: str) -> None:
    """Raise :class:`SchemaError` naming every key of ``required`` that ``summary`` lacks."""
    missing = sorted(set(required) - set(summary))
    if missing:
        raise SchemaError(f"{writer}: the summary lacks keys that experiments/keys.py declares: {missing}")


# --- one transfer sweep: common.flat_transfer under the sweep's prefix ---------------------------------

DRIFT, DRIFT_LO, DRIFT_HI = "drift", "drift_lo", "drift_hi"
BASE_WIDTH, MAX_WIDTH = "base_width", "max_width"
REGRET_MAX_WIDTH, BEST_LOSS_MAX_WIDTH = "regret_max_width", "best_loss_max_width"
LOG2_LR, BEST_LOSS, LOSS_AT_BASE_LR = "log2_lr", "best_loss", "loss_at_base_lr"  # per width: at_width
SWEEP_FIELDS = (DRIFT, DRIFT_LO, DRIFT_HI, BASE_WIDTH, MAX_WIDTH, REGRET_MAX_WIDTH, BEST_LOSS_MAX_WIDTH)


def sweep(prefix: str, field: str) -> str:
    """``sweep("adam_mup", DRIFT_HI) == "adam_mup_drift_hi"``."""
    return f"{prefix}_{field}"


def at_width(prefix: str, width: object, field: str) -> str:
    """``at_width("adam_sp", 1024, BEST_LOSS) == "adam_sp_w1024_best_loss"``."""
    return f"{prefix}_w{width}_{field}"


def sweep_schema(prefixes: Iterable[str]) -> list[str]:
    """The keys every analysed sweep of ``prefixes`` has (``common.flat_transfer`` with at least one width)."""
    return [sweep(p, f) for p in prefixes for f in SWEEP_FIELDS]


# --- transfer_mlp ------------------------------------------------------------------------------------

TARGET_MUP_DRIFT_ABS_MAX = "target_mup_drift_abs_max"  # transfer_gpt's target too
TARGET_SP_DRIFT_MAX = "target_sp_drift_max"
TARGET_MUP_REGRET_MAX = "target_mup_regret_max"
TARGET_GAP_MAX = "target_gap_max"
TARGET_COST_RATIO_MAX = "target_cost_ratio_max"
MLP_TARGETS = (TARGET_MUP_DRIFT_ABS_MAX, TARGET_SP_DRIFT_MAX, TARGET_MUP_REGRET_MAX, TARGET_GAP_MAX,
               TARGET_COST_RATIO_MAX)
MLP_METRIC, MLP_MIN_TRAIN_LOSS_MAX_WIDTH = "metric", "min_train_loss_max_width"  # under a sweep's prefix
MLP_SEEDS = "seeds"


def check_drift_within_0p1(mup: str) -> str:
    return f"check_{mup}_drift_within_0p1"


def check_regret_lt_2pct(mup: str) -> str:
    return f"check_{mup}_regret_lt_2pct"


def check_drift_le_m0p5(sp: str) -> str:
    return f"check_{sp}_drift_le_m0p5"


def check_intervals_disjoint(mup: str, sp: str) -> str:
    """``sp`` without the optimizer: ``check_adam_mup_vs_sp_intervals_disjoint``."""
    return f"check_{mup}_vs_{sp}_intervals_disjoint"


def mlp_check_pairs(sweeps: Collection[str]) -> list[tuple[str, str, str]]:
    """``(optimizer, mup sweep, its SP sweep)`` for every muP sweep of ``sweeps`` that transfer_mlp checks."""
    out = []
    for opt in ("adam", "sgd"):
        for mup in (f"{opt}_mup", f"{opt}_mup_tuned", f"{opt}_mup_noalign"):
            if mup in sweeps:
                out.append((opt, mup, f"{opt}_sp_tuned" if mup.endswith("_tuned") else f"{opt}_sp"))
    return out


GAP = "gap"
GAP_WIDTH = "gap_width"
GAP_TRANSFERRED_LOSS = "gap_transferred_loss"
GAP_DIRECT_BEST_LOSS = "gap_direct_best_loss"
GAP_COST_RATIO = "gap_cost_ratio"
GAP_COST_RATIO_TUNING_ONLY = "gap_cost_ratio_tuning_only"
CHECK_GAP_AT_MOST_2PCT_ABOVE_SP = "check_gap_at_most_2pct_above_sp"
CHECK_COST_LE_10PCT = "check_cost_le_10pct"
MLP_GAP = (GAP, GAP_WIDTH, GAP_TRANSFERRED_LOSS, GAP_DIRECT_BEST_LOSS, GAP_COST_RATIO, GAP_COST_RATIO_TUNING_ONLY,
           CHECK_GAP_AT_MOST_2PCT_ABOVE_SP, CHECK_COST_LE_10PCT)


def gap_vs_best(sweep_name: str) -> str:
    """The transferred loss against ``sweep_name``'s own best at the widest width: ``gap_vs_adam_mup_tuned_best``."""
    return f"gap_vs_{sweep_name}_best"


def transfer_mlp_schema(sweeps: Collection[str]) -> list[str]:
    """What transfer_mlp's summary holds when ``sweeps`` were analysed (the gap route: :data:`MLP_GAP`)."""
    out = [*MLP_TARGETS, MLP_SEEDS, *sweep_schema(sweeps), *(sweep(s, MLP_METRIC) for s in sweeps)]
    for opt, mup, sp in mlp_check_pairs(sweeps):
        out += [check_drift_within_0p1(mup), check_regret_lt_2pct(mup)]
        if sp in sweeps:
            out += [check_drift_le_m0p5(sp), check_intervals_disjoint(mup, sp.removeprefix(opt + "_"))]
    return out


# --- transfer_gpt ------------------------------------------------------------------------------------

CHECK_GPT_MUP_DRIFT_WITHIN_0P2 = "check_mup_drift_within_0p2"
CHECK_GPT_DRIFT_INTERVALS_DISJOINT = "check_drift_intervals_disjoint"
GPT_SP = "sp"


def gpt_gap_best(q: str) -> str:
    """A muP variant's best loss at the widest width over SP's best, minus 1: ``gap_mup_best``."""
    return f"gap_{q}_best"


def gpt_gap_transferred(q: str) -> str:
    """Its loss at the widest width at the base width's optimal LR over SP's best, minus 1."""
    return f"gap_{q}_transferred"


def transfer_gpt_schema(sweeps: Collection[str]) -> list[str]:
    out = sweep_schema(sweeps)
    if GPT_SP in sweeps:
        out += [k for q in sweeps if q != GPT_SP for k in (gpt_gap_best(q), gpt_gap_transferred(q))]
        if "mup" in sweeps:
            out += [TARGET_MUP_DRIFT_ABS_MAX, CHECK_GPT_MUP_DRIFT_WITHIN_0P2, CHECK_GPT_DRIFT_INTERVALS_DISJOINT]
    return out


# --- transfer_question: per task (``question_toy``, ...) and parameterization (``sp``, ``mup``) --------------

Q_SMALL_WIDTH, Q_LARGE_WIDTH, Q_WIDTHS = "small_width", "large_width", "widths"  # under the task
Q_LR_RATIO, Q_MAX_LR_RATIO = "lr_ratio", "max_lr_ratio"  # under ``<task>_<p>``
QUESTION_PARAMETERIZATIONS = ("sp", "mup")


def task_sweep(task: str, p: str) -> str:
    """The sweep prefix of a parameterization of a task: ``question_toy_sp``."""
    return f"{task}_{p}"


def transfer_question_schema(tasks: Mapping[str, bool]) -> list[str]:
    """``tasks``: task -> whether its grid holds both of the question's widths (then the ratios exist)."""
    out = []
    for t, asked in tasks.items():
        prefixes = [task_sweep(t, p) for p in QUESTION_PARAMETERIZATIONS]
        out += [sweep(t, Q_SMALL_WIDTH), sweep(t, Q_LARGE_WIDTH), sweep(t, Q_WIDTHS), *sweep_schema(prefixes)]
        if asked:
            out += [sweep(p, f) for p in prefixes for f in (Q_LR_RATIO, Q_MAX_LR_RATIO)]
    return out


# --- tune_base -----------------------------------------------------------------------------------------

TUNE_BASE = ("width", "steps", "batch_size", "seeds", "base_log2_lr", "base_lr", "final_loss", "passes",
             "last_move", "converged", "tuning_flops", "tuning_runs", "tuning_train_seconds")

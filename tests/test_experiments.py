"""The experiment scripts end to end on tiny grids (``--smoke``): artifacts, flat summaries, resuming."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS = ROOT / "experiments"
sys.path.insert(0, str(EXPERIMENTS))

import common  # noqa: E402  (experiments/ is not a package: its scripts import each other by file name)
import findings  # noqa: E402
import keys  # noqa: E402


def _run(script: str, out: Path, *extra: str) -> str:
    done = subprocess.run([sys.executable, str(EXPERIMENTS / script), "--smoke", "--workers", "1", "--out", str(out),
                           *extra], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _flat(summary: dict[str, object]) -> None:
    for k, v in summary.items():
        assert re.fullmatch(r"[a-z0-9_]+", k), k
        assert v is None or isinstance(v, (bool, int, float, str)), (k, v)


def test_question_script_writes_artifacts_and_resumes(tmp_path: Path) -> None:
    _run("transfer_question.py", tmp_path, "--tasks", "question_toy")
    out = tmp_path / "transfer_question"
    summary = json.loads((out / "summary.json").read_text())
    _flat(summary)
    assert summary["experiment"] == "transfer_question" and summary["mode"] == "smoke"
    assert summary["git_revision"]
    for p in ("sp", "mup"):
        assert isinstance(summary[f"question_toy_{p}_drift"], float)
        assert summary[f"question_toy_{p}_w32_log2_lr"] in (-10.0, -7.0, -4.0) or summary[
            f"question_toy_{p}_w32_fitted"]
    figures = summary["figures"].split(",")
    assert {Path(f).suffix for f in figures} == {".png", ".pdf"}
    assert all((out / f).is_file() for f in figures)
    config = json.loads((out / "config.json").read_text())
    assert config["provenance"]["git_revision"] and config["configs"]["question_toy"]["model"] == "question"
    assert (out / "question_toy_runs.csv").read_text().count("\n") == 1 + 2 * 2 * 3  # header + p x w x lr

    with sqlite3.connect(out / "question_toy.db") as con:
        before = con.execute("SELECT worker, finished_at FROM runs ORDER BY rowid").fetchall()
    _run("transfer_question.py", tmp_path, "--tasks", "question_toy")  # resumes: nothing to train again
    with sqlite3.connect(out / "question_toy.db") as con:
        assert con.execute("SELECT worker, finished_at FROM runs ORDER BY rowid").fetchall() == before


@pytest.mark.slow
def test_coord_script_table(tmp_path: Path) -> None:
    _run("coord_mlp.py", tmp_path)
    summary = json.loads((tmp_path / "coord_mlp" / "summary.json").read_text())
    _flat(summary)
    assert summary["table_cells"] == 18
    assert summary["table_mup_adam_hidden_predicted"] == 0.0 and summary["table_sp_adam_logits_predicted"] == 1.5


def test_summary_keys_are_flat_and_macro_ready() -> None:
    assert common.key("adam", "mup-tuned", "w1024", "regret") == "adam_mup_tuned_w1024_regret"
    assert common.key("check", "within", 0.1) == "check_within_0p1"
    common.check_flat({"a_b": 1.0, "c": None, "d": "text", "e": True})
    with pytest.raises(ValueError, match="must match"):
        common.check_flat({"Bad-Key": 1})
    with pytest.raises(ValueError, match="number, bool, string or null"):
        common.check_flat({"nested": {"x": 1}})


def test_committed_summaries_hold_the_keys_the_paper_reads() -> None:
    """keys.py's schemas hold on the full runs' summaries, and a key missing from a summary is named."""
    import transfer_gpt
    import transfer_mlp
    import transfer_question

    def load(name: str) -> dict[str, object]:
        return json.loads((EXPERIMENTS / "results" / name / "summary.json").read_text())

    mlp = load("transfer_mlp")
    keys.require(mlp, [*keys.transfer_mlp_schema([s.name for s in transfer_mlp.SWEEPS]), *keys.MLP_GAP], "mlp")
    keys.require(load("transfer_gpt"), keys.transfer_gpt_schema([s.name for s in transfer_gpt.SWEEPS]), "gpt")
    asked = {t.name: {t.small, t.large} <= set(transfer_question.config_of(t, "full").widths)
             for t in transfer_question.TASKS}
    assert all(asked.values())
    keys.require(load("transfer_question"), keys.transfer_question_schema(asked), "question")
    keys.require(load("tune_base"), keys.TUNE_BASE, "tune_base")
    renamed = {k: v for k, v in mlp.items() if k != keys.check_drift_within_0p1("adam_mup")}
    with pytest.raises(keys.SchemaError, match="check_adam_mup_drift_within_0p1"):
        keys.require(renamed, keys.transfer_mlp_schema(["adam_mup"]), "transfer_mlp")


def test_gpt_script_sweeps_every_row_and_compares_with_sp(tmp_path: Path) -> None:
    """Four sweeps (SP, muP, the no-alignment readout, muP without the zero readout), each named in the
    summary, with its gap to SP's best at the widest width and the research row registered in the workers."""
    _run("transfer_gpt.py", tmp_path)
    out = tmp_path / "transfer_gpt"
    summary = json.loads((out / "summary.json").read_text())
    _flat(summary)
    assert len(summary["corpus_sha256"]) == 64
    for sweep, zero in (("sp", False), ("mup", True), ("mup_noalign", True), ("mup_initreadout", False)):
        assert isinstance(summary[f"{sweep}_drift"], float), sweep
        assert summary[f"{sweep}_zero_readout"] is zero
        assert (out / f"gpt_{sweep}.db").is_file()
        if sweep != "sp":
            best, at_base = summary[f"gap_{sweep}_best"], summary[f"gap_{sweep}_transferred"]
            assert best <= at_base + 1e-12  # the best grid point is never worse than the base width's optimum


def test_mlp_script_long_sweeps_use_the_validation_loss(tmp_path: Path) -> None:
    """The 4x-longer sweeps train 4x the protocol's steps and locate their optima on the validation loss."""
    _run("transfer_mlp.py", tmp_path, "--parts", "adam", "long")
    summary = json.loads((tmp_path / "transfer_mlp" / "summary.json").read_text())
    _flat(summary)
    assert summary["adam_sp_long_steps"] == summary["adam_mup_long_steps"] == 4 * summary["steps"]
    assert summary["adam_sp_metric"] == "train_loss" and summary["adam_mup_long_metric"] == "val_loss"
    assert summary["adam_mup_long_min_train_loss_max_width"] > 0
    assert any(f.endswith("_long.pdf") for f in summary["figures"].split(","))


def test_confirm_script_sets_the_candidate_beside_sp_and_mup(tmp_path: Path) -> None:
    """The confirming tasks' three rows, each analyzed like the peers' (drift, regret, gap to tuned SP)."""
    stdout = _run("confirm.py", tmp_path, "--candidate", "unit_init", "--tasks", "resmlp")
    summary = json.loads((tmp_path / "confirm" / "summary.json").read_text())
    _flat(summary)
    assert summary["candidate"] == "unit_init" and summary["resmlp_rows"] == "sp,sp_candidate,mup,candidate"
    assert summary["resmlp_sp_gap_to_sp"] == 0.0
    assert all(isinstance(summary[f"resmlp_{r}_drift"], float) for r in ("sp", "sp_candidate", "mup", "candidate"))
    with sqlite3.connect(tmp_path / "confirm" / "resmlp_candidate.db") as con:
        scales = {s for (s,) in con.execute("SELECT scales FROM runs")}
    assert scales == {'{"init": {"hidden": 1.7320508075688772, "input": 1.7320508075688772}}'}
    assert "| resmlp | candidate |" in stdout


def test_the_decision_rule_for_a_new_default() -> None:
    """confirm.decide: best loss more than 1% lower on both deciding models, regret at most 2 points worse."""
    import confirm

    def summary(mlp: tuple[float, float], gpt: tuple[float, float]) -> dict[str, float]:
        s = {"mlp_mup_best_loss_max_width": 0.30, "mlp_mup_regret_max_width": 0.10,
             "gpt_mup_best_loss_max_width": 2.00, "gpt_mup_regret_max_width": 0.01}
        for m, (best, regret) in (("mlp", mlp), ("gpt", gpt)):
            s[f"{m}_unit_init_best_loss_max_width"], s[f"{m}_unit_init_regret_max_width"] = best, regret
            s[f"{m}_eps_best_loss_max_width"], s[f"{m}_eps_regret_max_width"] = 0.299, 0.10  # 0.3% better only
        return s

    chosen, verdicts = confirm.decide(summary((0.27, 0.11), (1.9, 0.02)))
    assert chosen == "unit_init"
    assert {v.name: v.qualifies for v in verdicts}["eps"] is False
    assert confirm.decide(summary((0.27, 0.13), (1.9, 0.02)))[0] is None  # regret 3 points worse on the MLP
    assert confirm.decide(summary((0.27, 0.11), (1.99, 0.02)))[0] is None  # 0.5% better on the GPT only
    reasons = {v.name: v.reason for v in confirm.decide(summary((0.27, 0.11), (1.99, 0.02)))[1]}
    assert "not run on the gpt" in reasons["readout_init"] and "gpt" in reasons["unit_init"]


def test_muon_transfer_script(tmp_path: Path) -> None:
    """SP and muP with the Muon + AdamW pair (Adam at a fixed 1/16 of Muon's LR) through the sweep engine."""
    stdout = _run("transfer_muon.py", tmp_path)
    summary = json.loads((tmp_path / "transfer_muon" / "summary.json").read_text())
    _flat(summary)
    assert summary["optimizer"] == "muon-adam16" and summary["adam_lr_ratio"] == 1 / 16
    assert all(isinstance(summary[f"{t}_{r}_drift"], float) for t in ("mlp", "gpt") for r in ("sp", "mup"))
    assert "mlp mup: drift" in stdout and "gpt mup: drift" in stdout
    assert isinstance(summary["gpt_mup_initreadout_drift"], float)  # the GPT's muP without the zero readout
    # every row read on the validation loss too, beside the training loss's numbers, with its own gap to SP
    assert all(summary[f"{t}_{r}_val_best_loss_max_width"] != summary[f"{t}_{r}_best_loss_max_width"]
               for t in ("mlp", "gpt") for r in ("sp", "mup"))
    assert summary["mlp_sp_val_gap_to_sp"] == 0 and isinstance(summary["mlp_mup_val_drift_lo"], float)
    table = "\n".join(findings.muon_table(summary))
    assert "held-out: drift" in table and f"{summary['mlp_mup_val_best_loss_max_width']:.3f}" in table
    # the rows findings.py tables, each named in the summary itself
    rows = {t: summary[f"{t}_rows"].split(",") for t in ("mlp", "gpt")}
    assert {"sp", "mup", "mup_fixadam_b32_n2000"} <= set(rows["mlp"]) and "mup_initreadout" in rows["gpt"]
    assert all(summary[f"{t}_{r}_label"] for t in rows for r in rows[t])
    assert summary["mlp_mup_fixadam_b32_n2000_label"] == ("ours, only Muon's LR swept (AdamW's held), batch 32, "
                                                          "2,000 steps")
    # the parts task: one part's base LR held, the other swept
    assert {summary[f"mlp_mup_fix{p}_fixed_part"] for p in ("adam", "muon")} == {"adam", "muon"}
    assert all(isinstance(summary[f"mlp_mup_fix{p}_drift"], float)
               for p in ("adam", "muon", "adam_b32", "muon_b512", "adam_b32_n2000"))
    # the roles task: each AdamW role's LR constant swept at the base LR
    assert all(isinstance(summary[f"mlp_role_{r}_exponent"], float) for r in ("input", "output", "vector"))


def test_muon_updates_inside_the_held_runs(tmp_path: Path) -> None:
    """The hidden weight's accumulated update in the held Muon runs. Each Muon step is ``lr`` times an
    orthogonalized matrix whose singular values torch's Newton-Schulz quintic keeps at most 1.2024 (its
    maximum on (0, 1]; a square weight, so neither muP nor ``adjust_lr_fn`` rescales it), so after ``t``
    steps ``|W_t - W_0|_op <= 1.2024 t lr`` (the triangle inequality); momentum keeps the first steps
    coherent, so the bound is nearly met at step 10."""
    import muon_updates

    _run("muon_updates.py", tmp_path)
    out = tmp_path / "muon_updates"
    summary = json.loads((out / "summary.json").read_text())
    _flat(summary)
    for row in muon_updates.ROWS:
        saved = json.loads(next(out.glob(f"{row.name}_w*.json")).read_text())
        if row.held is None:
            assert saved["config"]["optimizers"] == ["adam"]
            continue
        lr = 2.0 ** saved["log2_lr"]
        for r in saved["records"]:
            bound = 1.2024 * r["step"] * lr
            assert r["op"] <= bound * (1 + 1e-4), (row.name, r)
            assert r["step"] != 10 or r["op"] >= 0.5 * bound, (row.name, r)
            assert 1 <= r["srank"] <= r["width"] and 0 < r["spectral_alignment"] <= 1 + 1e-6
    assert {summary[f"{r.name}_held"] for r in muon_updates.ROWS if r.held} == {"mup_fixadam", "mup_fixadam_b32",
                                                                                 "mup_fixadam_b512"}
    table = findings.muon_updates_table(summary, {})
    assert len(table) == 2 + len(muon_updates.ROWS) and f"{summary['muon_b128_op_t20_exponent']:+.2f}" in table[3]
    before = {f.name: f.stat().st_mtime_ns for f in out.glob("*_w*.json")}
    _run("muon_updates.py", tmp_path)  # a rerun measures nothing again
    assert before == {f.name: f.stat().st_mtime_ns for f in out.glob("*_w*.json")}


def test_depth_transfer_script(tmp_path: Path) -> None:
    """SP, Depth-muP and CompleteP swept over the LR across depths, with the depth coordinate check."""
    _run("transfer_depth.py", tmp_path, "--tasks", "resmlp", "wd")
    out = tmp_path / "transfer_depth"
    summary = json.loads((out / "summary.json").read_text())
    _flat(summary)
    assert all(isinstance(summary[f"resmlp_{r}_drift"], float) for r in ("sp", "depth_mup", "completep"))
    assert summary["resmlp_sp_max_width"] == 4  # the deepest (widths are depths in this sweep)
    assert isinstance(summary["resmlp_coord_completep_stream_mean_abs_delta_slope"], float)
    assert (out / "coord_depth_resmlp.png").exists() and (out / "transfer_depth_resmlp.png").exists()
    # width and depth together: every row at k = 2 (twice as wide and twice as deep as the base)
    assert all(isinstance(summary[f"wd_{r}_regret_max_width"], float) for r in ("sp", "mup", "depth_mup", "completep"))
    assert summary["wd_mup_max_width"] == 2
    # the tables name the models this run built (the smoke run's are narrower than the full run's)
    assert (summary["resmlp_model_width"], summary["wd_model_width"]) == (16, 8)
    titles = [row.split(" | ")[0] for row in findings.depth_table(summary)[2:]]
    assert "| residual MLP, width 16 (depth 2 -> 4)" in titles
    assert "| residual MLP, width 8 -> 16 and depth 2 -> 4 together" in titles


def test_hf_transfer_script(tmp_path: Path) -> None:
    """transformers' Llama: SP as built (init="pytorch") and muP relative to its own init, train and held-out."""
    pytest.importorskip("transformers")
    _run("transfer_hf.py", tmp_path)
    summary = json.loads((tmp_path / "transfer_hf" / "summary.json").read_text())
    _flat(summary)
    for prefix in ("llama", "llama_val"):
        assert all(isinstance(summary[f"{prefix}_{r}_drift"], float) for r in ("sp", "mup"))
    assert summary["llama_mup_max_width"] == 64
    assert isinstance(summary["llama_mup_gap_to_sp"], float)
    assert (tmp_path / "transfer_hf" / "transfer_hf_llama.png").exists()


def test_mutransfer_script_tunes_trains_the_target_and_costs_the_route(tmp_path: Path) -> None:
    """The workflow experiment: a direct sweep, scaling.sweep.tune within its FLOP budget, the target trained once
    per evaluation seed into the tuning's database; the route's FLOPs within the budget, every number finite."""
    _run("mutransfer.py", tmp_path)
    out = tmp_path / "mutransfer"
    s = json.loads((out / "summary.json").read_text())
    _flat(s)
    assert s["smoke_widest"] == 128 and s["smoke_tuning_stopped"] in ("budget", "converged", "passes")
    assert s["smoke_route_flops"] <= s["budget_share"] * s["smoke_direct_flops"] * (1 + 1e-9)
    assert s["smoke_cost_met"] is True and isinstance(s["smoke_gap"], float)
    with sqlite3.connect(out / "smoke_tune.db") as con:
        widths = dict(con.execute("SELECT width, COUNT(*) FROM runs GROUP BY width").fetchall())
    assert widths[128] == 2 and widths[32] == s["smoke_tuning_runs"]
    assert json.loads((out / "smoke_constants.json").read_text())["format"] == "scaling-constants/1"
    assert (out / "mutransfer_smoke.png").exists()


def test_horizon_reads_both_losses_and_marks_the_floor(tmp_path: Path) -> None:
    """The horizon's summary holds each row's drift on the training and the validation loss; a drift whose
    widest model has fit its training set is marked as a floor, one at a grid edge as an edge."""
    _run("horizon.py", tmp_path)
    s = json.loads((tmp_path / "horizon" / "summary.json").read_text())
    _flat(s)
    for row in ("sp", "mup", "microsoft_mup", "u_mup"):
        for t in (10, 20):
            assert isinstance(s[f"{row}_n{t}_drift"], float) and isinstance(s[f"{row}_n{t}_val_drift"], float)
            assert s[f"{row}_n{t}_floor"] is False  # 20 steps are far from fitting 10k samples
    assert len(findings.horizon_table(s)) == 2 + 4 and len(findings.horizon_table(s, "_val")) == 2 + 4

    two = {"r_n1_seeds": 2, "r_n1_drift": 0.2, "r_n1_drift_lo": 0.1, "r_n1_drift_hi": 0.3, "r_n1_floor": False}
    assert findings.drift_cell(two, "r_n1") == "+0.20 [+0.10, +0.30]"
    one = {"r_n1_seeds": 1, "r_n1_drift": -0.05, "r_n1_floor": True, "r_n1_val_drift": -0.5,
           "r_n1_val_drift_edges": 1}
    assert findings.drift_cell(one, "r_n1") == "-0.05 (floor)"
    assert findings.drift_cell(one, "r_n1", "_val") == "-0.50 (edge)"  # the floor is the training loss's


def test_tex_tables_group_a_repeated_first_column_and_wrap_long_cells() -> None:
    """A table whose first column names the task of each group of rows loses that column to a line above
    each group (the numbers stay in their columns); a short table keeps it; a long cell wraps."""
    md = ["| task | row | drift |", "|---|---|---|", "| MLP | SP | -0.50 |", "| MLP | muP | -0.16 |",
          "| GPT | SP | -0.36 |", "| GPT | muP | +0.11 |"]
    tex = findings.tex_table(md)
    assert tex.startswith("\\begin{tabular}{ll}") and "row & drift \\\\" in tex and "task" not in tex
    assert tex.count("\\multicolumn{2}{l}{\\textit{MLP}}") == 1 and tex.count("\\textit{GPT}") == 1
    assert tex.index("\\textit{GPT}") < tex.index("SP & -0.36")
    distinct = findings.tex_table(["| a | b |", "|---|---|", "| x | 1 |", "| y | 2 |", "| z | 3 |"])
    assert distinct.startswith("\\begin{tabular}{ll}") and "a & b \\\\" in distinct and "multicolumn" not in distinct
    long = findings.tex_table(["| a | rule |", "|---|---|", *(f"| {i} | {'word ' * 20} |" for i in range(3))])
    assert "{l>{\\raggedright\\arraybackslash}p{" in long


def test_role_tests_rows_equal_mup_at_base_width_and_differ_wider(tmp_path: Path) -> None:
    """Each measured role want, as a row, trains exactly muP's model at the base width (a width factor of
    1 changes nothing) and another one at twice the base width; the script sweeps both tasks."""
    import role_tests
    from scaling.sweep.store import Cell
    from scaling.sweep.train import train

    for t in role_tests.TESTS:
        cfg = role_tests.config("smoke", t)
        lr, seed, optimizer = cfg.log2_lrs[len(cfg.log2_lrs) // 2], cfg.seeds[0], cfg.optimizers[0]
        base, wider = cfg.base_width, 2 * cfg.base_width
        loss = {(row, w): train(cfg.settings, Cell(row, optimizer, w, lr, seed)).train_loss
                for row in ("mup", t.row) for w in (base, wider)}
        assert loss["mup", base] == loss[t.row, base], t.name
        assert loss["mup", wider] != loss[t.row, wider], t.name
    _run("role_tests.py", tmp_path)
    summary = json.loads((tmp_path / "role_tests" / "summary.json").read_text())
    _flat(summary)
    assert {summary[f"{t.name}_task"] for t in role_tests.TESTS} == {"gpt", "muon_mlp", "muon_gpt"}
    assert summary["tests"].split(",") == [t.name for t in role_tests.TESTS]
    table = findings.role_tests_table(summary)  # no baselines in a fresh folder: one line per test
    assert len(table) == 2 + len(role_tests.TESTS) and summary["io_lr_what"] in table[3]
    assert all(isinstance(summary[f"{t.name}_{k}"], float) for t in role_tests.TESTS
               for k in ("drift", "val_drift", "regret_max_width"))

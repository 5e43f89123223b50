"""muTransfer as a workflow: ``scaling tune`` at the base width, ``scaling train --constants`` at the target.

Every tuning here runs the original question's 10-w-2 network on its toy data (runs of milliseconds).
"""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scaling.cli import main
from scaling.errors import ScalingError
from scaling.sweep import SweepConfig
from scaling.sweep.store import canonical_scales
from scaling.sweep.tune import Search, line_search, load_constants, parse_coordinate, tune

ROOT = Path(__file__).resolve().parent.parent
TASK = ["--model", "question", "--base-width", "32", "--steps", "30", "--batch-size", "32", "--last-k", "5"]
CONFIG = SweepConfig(model="question", base_width=32, widths=(32,), steps=30, batch_size=32, last_k=5,
                     parameterizations=("mup",), seeds=(0,))
SEARCH = Search(coordinates=("lr", "lr.output", "init.output"), step=1.0, half=1, passes=2)


def rows(db: Path) -> dict[str, tuple]:
    with sqlite3.connect(db) as con:
        found = con.execute("SELECT run_id, width, log2_lr, scales, worker, finished_at FROM runs")
        return {r[0]: r[1:] for r in found}


def test_line_search_finds_a_quadratics_vertex_and_walks_off_the_grids_edge() -> None:
    calls: list[list[float]] = []

    def f(xs: list[float]) -> list[float]:
        calls.append(xs)
        return [(x - 2.3) ** 2 for x in xs]

    found = line_search(f, 0.0, 0.5, 2, -10, 10)
    assert found["fitted"] and found["x"] == pytest.approx(2.3, abs=1e-9)
    assert found["grid_x"] == 2.5 and len(calls) > 1  # it had to walk from 0 to 2.5
    assert min(calls[-1]) >= 0  # and never re-ran a point
    assert sorted(x for c in calls for x in c) == sorted({x for c in calls for x in c})
    edge = line_search(f, 0.0, 0.5, 2, -1, 1)  # the bound stops the walk
    assert edge["grid_x"] == 1.0


def test_coordinates_are_parsed_and_bad_ones_named() -> None:
    assert parse_coordinate("lr") == ("lr", None)
    assert parse_coordinate("init.hidden") == ("init", "hidden")
    for bad in ("lr.nope", "speed.output", "multiplier.vector", "output"):
        with pytest.raises(ScalingError, match="coordinate"):
            parse_coordinate(bad)


def test_a_tiny_tuning_end_to_end_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """tune -> a constants file -> train the target once, recorded beside the tuning runs."""
    db, out = tmp_path / "tune.db", tmp_path / "constants.json"
    assert main(["tune", "--db", str(db), "--out", str(out), *TASK, "--coordinates", "lr", "lr.output",
                 "init.output", "--step", "1", "--passes", "2", "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert data["format"] == "scaling-constants/1" and data["model"] == "question" and data["base_width"] == 32
    assert data["spent"]["runs"] == len(rows(db)) and data["spent"]["flops"] > 0
    assert data["provenance"]["git_revision"] and data["history"]
    assert set(data["scales"]) <= {"lr", "init"} and data["stopped"] in ("converged", "passes")
    assert data["loss"] <= min(h["grid_loss"] for h in data["history"]) + 1e-12  # the best point run is kept
    capsys.readouterr()
    assert main(["train", "--constants", str(out), "--width", "128"]) == 0
    assert "recorded in" in capsys.readouterr().out
    (target,) = [r for r in rows(db).values() if r[0] == 128]
    assert target[1] == pytest.approx(data["base_log2_lr"], abs=1e-4)
    assert target[2] == canonical_scales(data["scales"])


def test_the_budget_bounds_the_runs_and_too_small_a_budget_is_refused(tmp_path: Path) -> None:
    got = tune(CONFIG, tmp_path / "t.db", search=Search(coordinates=SEARCH.coordinates, step=1.0, half=1,
                                                        budget_runs=7), progress=False, log=None)
    assert got.runs <= 7 and got.stopped == "budget" and math.isfinite(got.loss)
    with sqlite3.connect(tmp_path / "t.db") as con:  # one seed: each point is one run; the best one is kept
        assert got.loss == pytest.approx(con.execute("SELECT MIN(train_loss) FROM runs").fetchone()[0], rel=1e-12)
    # cut short inside its first line search: still the best point run, not the start
    got = tune(CONFIG, tmp_path / "v.db", search=Search(coordinates=("lr",), start_log2_lr=-12.0, step=1.0, half=1,
                                                        budget_runs=4), progress=False, log=None)
    with sqlite3.connect(tmp_path / "v.db") as con:
        lowest = con.execute("SELECT log2_lr, MIN(train_loss) FROM runs").fetchone()
    assert got.stopped == "budget" and (got.log2_lr, got.loss) == (lowest[0], pytest.approx(lowest[1], rel=1e-12))
    assert got.log2_lr > -12.0
    with pytest.raises(ScalingError, match="pays for no line search"):
        tune(CONFIG, tmp_path / "w.db", search=Search(coordinates=("lr",), step=1.0, half=2, budget_runs=3),
             progress=False, log=None)
    with pytest.raises(ScalingError, match="too small: one point costs 2 runs"):
        tune(CONFIG.__class__(**{**CONFIG.to_dict(), "seeds": (0, 1)}), tmp_path / "u.db",
             search=Search(budget_runs=1), progress=False, log=None)
    with pytest.raises(ScalingError, match="FLOPs is too small"):
        tune(CONFIG, tmp_path / "u.db", search=Search(budget_flops=10.0), progress=False, log=None)
    assert not (tmp_path / "u.db").exists() or not rows(tmp_path / "u.db")


def test_killed_mid_search_it_resumes_without_repeating_a_finished_run(tmp_path: Path) -> None:
    """A tuning killed after some runs, then rerun, ends where an uninterrupted one ends, every run it had
    finished kept as it was (same row, same finishing time)."""
    args = ["tune", "--out", "{out}", *TASK, "--coordinates", "lr", "lr.output", "init.output", "--step", "1",
            "--passes", "2", "--quiet", "--batched", "never"]
    whole = tmp_path / "whole.db"
    assert main([a.format(out=tmp_path / "whole.json") for a in args[:1]] + ["--db", str(whole)] +
                [a.format(out=tmp_path / "whole.json") for a in args[1:]]) == 0
    db = tmp_path / "killed.db"
    cmd = [sys.executable, "-m", "scaling", "tune", "--db", str(db),
           *[a.format(out=tmp_path / "killed.json") for a in args[1:]]]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not db.exists() or len(_safe_rows(db)) < 6):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    before = _safe_rows(db)
    assert 6 <= len(before) < len(rows(whole)), "killed too late to test a resume"
    assert main(["tune", "--db", str(db), *[a.format(out=tmp_path / "killed.json") for a in args[1:]]]) == 0
    after = rows(db)
    assert {k: after[k] for k in before} == before  # nothing finished was trained again
    assert set(after) == set(rows(whole))  # and the same runs, by deterministic run id, as the whole tuning
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("whole.json", "killed.json"))
    assert (a["base_log2_lr"], a["log2_scales"], a["spent"]["runs"]) == (b["base_log2_lr"], b["log2_scales"],
                                                                          b["spent"]["runs"])


def _safe_rows(db: Path) -> dict[str, tuple]:
    try:
        return rows(db)
    except sqlite3.OperationalError:  # not created yet
        return {}


def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c.json"
    assert main(["tune", "--db", str(tmp_path / "t.db"), "--out", str(out), *TASK, "--coordinates", "lr",
                 "lr.sideways", "--quiet"]) == 2
    assert "unknown coordinate 'lr.sideways'" in capsys.readouterr().err and not out.exists()
    assert main(["tune", "--db", str(tmp_path / "t.db"), "--out", str(out), *TASK, "--budget-runs", "0"]) == 2
    assert "budget_runs must be positive" in capsys.readouterr().err
    # a constants file from another model: tuned on the 10-w-2 network, the database holds the funnel's sweep
    tune(CONFIG, tmp_path / "q.db", search=Search(coordinates=("lr",), step=1.0, half=1, passes=1),
         progress=False, log=None).save(out)
    assert main(["sweep", "--db", str(tmp_path / "f.db"), "--model", "funnel", "--widths", "32", "--base-width", "32",
                 "--steps", "5", "--last-k", "2", "--log2-lrs", "-6", "--parameterizations", "mup", "--quiet"]) == 0
    before = rows(tmp_path / "f.db")
    assert main(["train", "--constants", str(out), "--db", str(tmp_path / "f.db"), "--width", "64"]) == 2
    err = capsys.readouterr().err
    assert "was tuned on another task or settings" in err and "model: 'question' in the constants" in err
    assert rows(tmp_path / "f.db") == before
    assert main(["train", "--constants", str(out), "--width", "16"]) == 2
    assert "below the sweep's base width 32" in capsys.readouterr().err
    assert main(["train", "--constants", str(out), "--width", "64", "--log2-lr", "-3"]) == 2
    assert "the constants file sets these" in capsys.readouterr().err
    (tmp_path / "not.json").write_text('{"hello": 1}')
    with pytest.raises(ScalingError, match="not a constants file"):
        load_constants(tmp_path / "not.json")
    assert main(["train", "--constants", str(tmp_path / "none.json"), "--width", "64"]) == 2
    assert "no constants file" in capsys.readouterr().err

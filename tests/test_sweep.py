"""The sweep engine: one training run, the resumable SQLite store, kills, workers, bad input, the CLI.

Every sweep here trains the original question's 10-w-2 network on its toy data: a run takes
milliseconds, so the whole file runs in seconds on a 2-core CPU.
"""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from scaling.cli import main
from scaling.errors import ScalingError
from scaling.sweep import RunSettings, SweepConfig, log2_grid, run_sweep, train
from scaling.sweep.store import SCHEMA_VERSION, Cell, RunRecord, SweepStore

ROOT = Path(__file__).resolve().parent.parent
TINY = SweepConfig(model="question", widths=(32, 64), base_width=32, log2_lrs=(-8, -6, -4), seeds=(0,),
                   steps=20, batch_size=32, last_k=5)
TINY_ARGS = ["--model", "question", "--widths", "32", "64", "--base-width", "32", "--batch-size", "32",
             "--steps", "20", "--last-k", "5", "--seeds", "0"]


def rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT parameterization, optimizer, width, log2_lr, seed, worker, finished_at "
                           "FROM runs ORDER BY 1, 2, 3, 4, 5").fetchall()


def count(db: Path, table: str = "runs") -> int:
    try:
        with sqlite3.connect(db, timeout=10) as con:
            return int(con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def distinct_cells(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT COUNT(*) FROM (SELECT DISTINCT parameterization, optimizer, width, "
                               "log2_lr, seed FROM runs)").fetchone()[0])


def integrity(db: Path) -> str:
    with sqlite3.connect(db) as con:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])


def sweep_command(db: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "scaling", "sweep", "--db", str(db), "--quiet", *args]


@pytest.fixture
def no_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if any training run starts."""
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a run started although the input was bad")
    monkeypatch.setattr("scaling.sweep.engine.train", refuse)


# --- one run ---------------------------------------------------------------------------------------


def test_train_is_seeded_and_measures_everything() -> None:
    settings = RunSettings("question", base_width=32, steps=30, last_k=10, batch_size=32)
    cell = Cell("mup", "adam", 64, -6.0, 0)
    a, b = train(settings, cell), train(settings, cell)
    assert (a.train_loss, a.val_loss) == (b.train_loss, b.val_loss)
    assert not a.diverged and a.steps == 30 and a.seconds > 0
    # 2 FLOPs per multiply-add: forward 2*B*(10w + 2w), weight gradients as much again, and the input
    # gradient of the readout 2*B*2w (none for the first layer's input): 52*B*w per step.
    assert a.flops == 30 * 52 * 32 * 64
    assert train(settings, cell._replace(seed=1)).train_loss != a.train_loss


def test_every_parameterization_is_sp_at_base_width() -> None:
    settings = RunSettings("funnel", base_width=32, steps=15, last_k=5, batch_size=32)
    losses = {p: train(settings, Cell(p, "adam", 32, -6.0, 0)).train_loss for p in ("sp", "mup", "mup-table8", "ntk")}
    assert len(set(losses.values())) == 1, losses


@pytest.mark.parametrize(("schedule", "optimizer"), [("cosine", "sgd"), ("plateau", "adamw"), ("none", "momentum")])
def test_schedules_and_optimizers_train(schedule: str, optimizer: str) -> None:
    settings = RunSettings("question", base_width=32, steps=40, last_k=10, batch_size=32,
                           schedule=schedule)  # type: ignore[arg-type]
    result = train(settings, Cell("mup", optimizer, 64, -5.0, 0))
    assert not result.diverged and math.isfinite(result.val_loss) and result.train_loss < 0.7


def test_a_huge_learning_rate_diverges_and_stops_early() -> None:
    result = train(RunSettings("question", base_width=32, steps=200, batch_size=32), Cell("mup", "adam", 64, 12.0, 0))
    assert result.diverged and result.steps < 200
    assert result.train_loss == math.inf and math.isnan(result.val_loss)


# --- the store -------------------------------------------------------------------------------------


def test_store_never_duplicates_and_takes_over_dead_claims(tmp_path: Path) -> None:
    cell = Cell("mup", "adam", 64, -6.0, 0)
    result = RunRecord(cell, 0.5, 0.6, False, 10, 0.1, 1e6)
    with SweepStore(tmp_path / "s.db") as store:
        assert store.claim(cell)
        assert store.record(result) and not store.record(result)
        assert store.count() == 1 and not store.claim(cell)
        other = Cell("mup", "adam", 128, -6.0, 0)
        with store.transaction() as con:  # a claim held by our parent (alive) and one by a dead process
            con.execute("INSERT INTO claims VALUES (?, ?, ?, 0)", (store.run_id(other), socket.gethostname(),
                                                                  os.getppid()))
        assert not store.claim(other)
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        with store.transaction() as con:
            con.execute("UPDATE claims SET pid = ?", (dead.pid,))
        assert store.claim(other)


# --- sweeps ----------------------------------------------------------------------------------------


def test_tiny_sweep_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, figures = tmp_path / "tiny.db", tmp_path / "fig"
    args = ["sweep", "--db", str(db), *TINY_ARGS, "--log2-lr-range", "-8", "-4", "2", "--figure", str(figures)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ran 12 runs (0 diverged)" in out and "12/12 cells finished" in out
    assert "drift" in out and "regret" in out
    [png] = figures.glob("*.png")
    assert png.name.isascii() and png.name.startswith("transfer_question_toy_adam_sp-mup_w32-64")
    first = rows(db)
    assert len(first) == 12
    assert main([*args, "--quiet"]) == 0  # resumed: nothing to do, nothing changed
    assert "ran 0 runs" in capsys.readouterr().out and rows(db) == first
    with SweepStore(db) as store:
        meta = store.meta()
    assert meta["schema_version"] == str(SCHEMA_VERSION) and re.fullmatch(r"([0-9a-f]{40}(\+dirty)?|unknown)",
                                                                           meta["git_revision"])
    assert '"model": "question"' in meta["config"]


def test_the_grid_may_grow_but_settings_may_not_change(tmp_path: Path, no_runs: None) -> None:
    db = tmp_path / "s.db"
    with SweepStore(db) as store:
        store.set_meta({"fixed": {**TINY.fixed(), "steps": 999}})
    with pytest.raises(ScalingError, match=r"other settings \(steps: 999 -> 20\)"):
        run_sweep(TINY, db, progress=False)


def test_shards_split_the_grid_exactly(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    a = run_sweep(TINY, db, worker=(0, 2), progress=False)
    b = run_sweep(TINY, db, worker=(1, 2), progress=False)
    assert a.ran > 0 and b.ran > 0 and a.ran + b.ran == 12 and b.finished == 12
    grown = run_sweep(replace(TINY, widths=(32, 64, 128)), db, progress=False)
    assert grown.ran == 6 and distinct_cells(db) == 18


def test_divergence_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    config = replace(TINY, parameterizations=("sp",), log2_lrs=(-6, 12), seeds=(0, 1), steps=50)
    summary = run_sweep(config, db, progress=False)
    assert summary.ran == 8 and summary.diverged == 4 and summary.finished == 8
    with SweepStore(db) as store:
        runs = store.runs()
    for r in runs:
        assert r.diverged == (r.cell.log2_lr == 12)
        if r.diverged:
            assert r.steps < 50 and math.isnan(r.train_loss) and math.isnan(r.val_loss)
        else:
            assert r.steps == 50 and r.train_loss < 1


def test_sigkill_mid_sweep_then_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "kill.db"
    args = sweep_command(db, "--model", "question", "--widths", "32", "64", "--base-width", "32",
                         "--parameterizations", "sp", "--log2-lr-range", "-8", "-3", "1", "--seeds", "0", "1", "2",
                         "--steps", "150", "--batch-size", "32", "--last-k", "10")
    total = 2 * 6 * 3
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while count(db) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = rows(db)
    assert 3 <= len(before) < total, "the sweep finished before it could be killed: make runs longer"
    resumed = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    after = rows(db)
    assert len(after) == distinct_cells(db) == total
    assert set(before) <= set(after)  # the rows written before the kill are kept as they were
    assert count(db, "claims") == 0 and integrity(db) == "ok"
    assert f"ran {total - len(before)} runs" in resumed.stdout


def test_two_workers_share_one_database(tmp_path: Path) -> None:
    db = tmp_path / "two.db"
    args = sweep_command(db, "--model", "question", "--widths", "32", "64", "--base-width", "32",
                         "--log2-lr-range", "-8", "-3", "1", "--seeds", "0", "1", "--steps", "60",
                         "--batch-size", "32", "--last-k", "10")
    total = 2 * 2 * 6 * 2
    procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    ran = [int(re.search(r"ran (\d+) runs", out).group(1)) for out, _ in outputs]  # type: ignore[union-attr]
    assert sum(ran) == total  # every cell trained exactly once, by one worker or the other
    assert count(db) == distinct_cells(db) == total
    assert count(db, "claims") == 0 and integrity(db) == "ok"


# --- bad input: a clear error before any run -------------------------------------------------------


@pytest.mark.parametrize(("change", "message"), [
    ({"widths": ()}, "empty grid: no widths"),
    ({"seeds": ()}, "empty grid: no seeds"),
    ({"log2_lrs": (-6, math.inf)}, "log2 learning rates must be finite"),
    ({"log2_lrs": (math.nan,)}, "log2 learning rates must be finite"),
    ({"widths": (16, 64)}, r"widths \[16\] are below the base width 32"),
    ({"model": "resnet"}, "unknown model 'resnet'"),
    ({"dataset": "imagenet"}, "unknown dataset 'imagenet'"),
    ({"optimizers": ("lion",)}, "unknown optimizer 'lion'"),
    ({"parameterizations": ("mup", "xyz")}, "unknown parameterization 'xyz'"),
    ({"last_k": 50}, r"last_k \(50\) cannot exceed steps \(20\)"),
    ({"model": "mlp", "dataset": "toy"}, "model 'mlp' cannot read dataset 'toy'"),
    ({"dataset_kwargs": {"colour": 3}}, "bad dataset options"),
])
def test_bad_sweeps_fail_before_any_run(tmp_path: Path, no_runs: None, change: dict, message: str) -> None:
    with pytest.raises(ScalingError, match=message):
        run_sweep(replace(TINY, **change), tmp_path / "s.db", progress=False)


def test_several_problems_are_reported_together(no_runs: None, tmp_path: Path) -> None:
    with pytest.raises(ScalingError) as info:
        run_sweep(replace(TINY, widths=(), model="nope", steps=0), tmp_path / "s.db", progress=False)
    assert all(m in str(info.value) for m in ("empty grid", "unknown model", "steps must be at least 1"))


@pytest.mark.parametrize(("args", "message"), [
    (["--lrs", "0.01", "0"], "learning rates must be positive"),
    (["--lrs", "-0.1"], "learning rates must be positive"),
    (["--log2-lr-range", "-4", "-8", "0"], "positive step"),
    (["--widths"], "empty grid: no widths"),
    (["--model", "resnet"], "unknown model"),
    (["--worker", "2/2"], "worker must be i/n"),
])
def test_the_cli_explains_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str], no_runs: None,
                                    args: list[str], message: str) -> None:
    db = tmp_path / "s.db"
    assert main(["sweep", "--db", str(db), *TINY_ARGS, *args]) == 2
    err = capsys.readouterr().err
    assert "scaling sweep: error:" in err and message in err
    assert not db.exists()


def test_a_database_of_another_schema_version_is_refused(tmp_path: Path, no_runs: None) -> None:
    db = tmp_path / "old.db"
    with SweepStore(db) as store, store.transaction() as con:
        con.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    with pytest.raises(ScalingError, match=f"schema version 0; this one reads version {SCHEMA_VERSION}"):
        run_sweep(TINY, db, progress=False)


@pytest.mark.parametrize("content", [b"not a database at all" * 10, None])
def test_a_file_that_is_not_a_sweep_database_is_refused(tmp_path: Path, no_runs: None, content: bytes | None) -> None:
    db = tmp_path / "other.db"
    if content is None:
        with sqlite3.connect(db) as con:
            con.execute("CREATE TABLE t (x)")
    else:
        db.write_bytes(content)
    with pytest.raises(ScalingError, match="not a (usable )?sweep database"):
        run_sweep(TINY, db, progress=False)


def test_log2_grid_is_inclusive_and_exact() -> None:
    assert log2_grid(-12, -4) == tuple(float(x) for x in range(-12, -3))
    assert log2_grid(-3, -2, 0.25) == (-3.0, -2.75, -2.5, -2.25, -2.0)


def test_an_optimum_at_the_grid_edge_extends_the_grid(tmp_path: Path) -> None:
    """``extend``: a curve whose best LR is its lowest gets grid steps below it until the minimum is inside."""
    from scaling.sweep import run_parallel
    from scaling.sweep.engine import beyond_edges

    db = tmp_path / "edge.db"
    config = replace(TINY, parameterizations=("mup",), widths=(32,), log2_lrs=(-2.0, -1.0), steps=30)
    run_parallel(config, db, workers=1, progress=False, extend=6)
    with SweepStore(db) as store:
        runs = store.runs()
    xs = sorted({r.cell.log2_lr for r in runs})
    assert xs[0] < -2.0 and xs[-1] == -1.0  # grown downward only
    assert beyond_edges(runs, "train_loss", 1.0) == []  # the optimum is inside now
    assert min(runs, key=lambda r: r.train_loss).cell.log2_lr > xs[0]


@pytest.mark.parametrize(("extra", "message"), [
    (["--log2-lr-range", "-4", "-12", "0.5"], "start -4 is above stop -12"),
    (["--log2-lr-range", "-12", "-4", "4", "--db-under-file"], "is a file, not a folder"),
])
def test_cli_bad_input_is_named_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    extra: list[str], message: str) -> None:
    """A reversed LR range and a --db under a regular file end in one line naming the problem, no traceback."""
    blocker = tmp_path / "afile"
    blocker.write_text("")
    db = blocker / "x.db" if "--db-under-file" in extra else tmp_path / "x.db"
    extra = [a for a in extra if a != "--db-under-file"]
    assert main(["sweep", "--db", str(db), "--model", "mlp", "--widths", "8", "16", "--base-width", "8",
                 "--steps", "2", "--last-k", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_an_in_process_sweep_leaves_the_callers_thread_count(tmp_path: Path) -> None:
    """``run_parallel(workers=1)`` trains in the caller's process on one thread, then gives the caller
    back its own thread count (it once left 1 behind, which made later work in the process slower and
    a test order-dependent)."""
    from scaling.sweep.engine import run_parallel

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run_parallel(replace(TINY, widths=(32,), log2_lrs=(-6,)), tmp_path / "s.db", workers=1, progress=False)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


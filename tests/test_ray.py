"""Sweeps past one machine: the Ray backend (every run a Ray task, the driver the one writer) and merging
databases of shards run apart.

One local Ray with 2 CPUs serves the whole module. The sweeps train the original question's 10-w-2
network on its toy data (milliseconds a run): the time goes to starting Ray and its workers.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch.nn.functional as F
from torch import Tensor, nn

from scaling.cli import main
from scaling.errors import ScalingError
from scaling.models import REGISTRY
from scaling.sweep import SweepConfig, Task, run_sweep
from scaling.sweep.distributed import merge, run_ray
from scaling.sweep.store import RUN_COLUMNS, SweepStore, read_database
from scaling.sweep.train import reference_task

ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parent.parent
TINY = SweepConfig(model="question", widths=(32, 64), base_width=32, log2_lrs=(-8, -6, -4), seeds=(0,),
                   steps=20, batch_size=32, last_k=5)
TINY_ARGS = ["--model", "question", "--widths", "32", "64", "--base-width", "32", "--batch-size", "32",
             "--steps", "20", "--last-k", "5", "--seeds", "0", "--log2-lrs", "-8", "-6", "-4"]


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray of 2 CPUs for the module; yields its address. This module's functions (the tasks'
    builders and losses) go to the workers by value: the workers cannot import a test module."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        ray.shutdown()


def table(db: Path) -> list[tuple[Any, ...]]:
    """Every row of the runs table, every column, in grid order."""
    return read_database(db)[1]


def count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=10) as con:
            return int(con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def assert_same_runs(a: Path, b: Path) -> None:
    """The same cells with the same measurements (to float rounding: the local engine may batch runs)."""
    with SweepStore(a) as x, SweepStore(b) as y:
        ra, rb = x.runs(), y.runs()
    assert [r.cell for r in ra] == [r.cell for r in rb]
    for r, s in zip(ra, rb):
        assert (r.diverged, r.steps, r.flops) == (s.diverged, s.steps, s.flops), r.cell
        assert r.train_loss == pytest.approx(s.train_loss, rel=1e-5, nan_ok=True), r.cell
        assert r.val_loss == pytest.approx(s.val_loss, rel=1e-5, nan_ok=True), r.cell


def assert_no_duplicates(db: Path) -> None:
    rows = table(db)
    assert len({r[0] for r in rows}) == len({r[1:7] for r in rows}) == len(rows)


# --- the Ray backend -------------------------------------------------------------------------------


def test_ray_stores_the_rows_of_the_local_engine_and_a_rerun_adds_nothing(tmp_path: Path, cluster: str) -> None:
    db, local = tmp_path / "ray.db", tmp_path / "local.db"
    summary = run_ray(TINY, db, progress=False)
    assert (summary.cells, summary.ran, summary.skipped, summary.finished) == (12, 12, 0, 12)
    run_sweep(TINY, local, threads=1, progress=False)
    assert_same_runs(db, local)
    with SweepStore(db) as store:
        assert [r[0] for r in table(db)] == [store.run_id(r.cell) for r in store.runs()]
    workers = {r[RUN_COLUMNS.index("worker")] for r in table(db)}
    assert f"{socket.gethostname()}:{os.getpid()}" not in workers  # each row names the Ray worker that trained it
    first = table(db)
    again = run_ray(TINY, db, progress=False)
    assert (again.ran, again.finished) == (0, 12) and table(db) == first


class KillOnce:
    """Cross-entropy, except that the ``at``-th call in a process other than the test's (a Ray worker's
    first run, mid-way) SIGKILLs that process, once per ``flag`` file."""

    def __init__(self, flag: Path, at: int) -> None:
        self.flag, self.at, self.calls, self.driver = flag, at, 0, os.getpid()

    def __call__(self, output: Tensor, target: Tensor) -> Tensor:
        self.calls += 1
        if self.calls == self.at and os.getpid() != self.driver:
            try:
                os.close(os.open(self.flag, os.O_CREAT | os.O_EXCL))  # exactly one worker dies
            except FileExistsError:
                pass
            else:
                os.kill(os.getpid(), signal.SIGKILL)
        return F.cross_entropy(output, target)


def test_a_worker_killed_mid_run_is_retried(tmp_path: Path, cluster: str) -> None:
    db, flag = tmp_path / "kill.db", tmp_path / "killed"
    task = replace(reference_task(TINY), loss=KillOnce(flag, at=TINY.steps // 2))
    summary = run_ray(TINY, db, task=task, max_retries=2, progress=False)
    assert flag.exists(), "no worker was killed"
    assert (summary.ran, summary.finished) == (12, 12)
    assert count(db) == 12
    assert_no_duplicates(db)
    assert {r[RUN_COLUMNS.index("steps")] for r in table(db)} == {TINY.steps}  # the killed run retrained whole


def test_a_killed_driver_resumes_without_retraining(tmp_path: Path, cluster: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "driver.db"
    args = ["sweep", "--db", str(db), "--backend", "ray", "--quiet", "--model", "question", "--widths", "32", "64",
            "--base-width", "32", "--parameterizations", "sp", "--log2-lr-range", "-8", "-3", "1",
            "--seeds", "0", "1", "2", "--steps", "150", "--batch-size", "32", "--last-k", "10"]
    total = 2 * 6 * 3
    with (tmp_path / "driver.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "scaling", *args, "--address", cluster], cwd=ROOT,
                                stdout=log, stderr=log)
        deadline = time.monotonic() + 120
        while count(db) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    before = table(db)
    assert 3 <= len(before) < total, (tmp_path / "driver.log").read_text() or "finished before the kill"
    assert main(args) == 0  # this process's Ray: the module's cluster
    assert f"ran {total - len(before)} runs" in capsys.readouterr().out  # nothing ran twice
    after = table(db)
    assert len(after) == total and set(before) <= set(after)  # the rows before the kill, kept as they were
    assert_no_duplicates(db)


def test_a_diverged_run_is_a_row(tmp_path: Path, cluster: str) -> None:
    db = tmp_path / "diverge.db"
    config = replace(TINY, parameterizations=("sp",), log2_lrs=(-6, 12), steps=50)
    task = Task(lambda width, **kwargs: REGISTRY["question"].build(width, **kwargs), reference_task(config).data)
    summary = run_ray(config, db, task=task, progress=False)  # a lambda builder: cloudpickle takes it
    assert (summary.ran, summary.diverged) == (4, 2)
    with SweepStore(db) as store:
        for r in store.runs():
            assert r.diverged == (r.cell.log2_lr == 12)
            assert (r.steps < 50 and math.isnan(r.train_loss) and math.isnan(r.val_loss)) if r.diverged \
                else (r.steps == 50 and r.train_loss < 1)


def fails_at_64(width: int, **kwargs: Any) -> nn.Module:
    """The question's network, whose real build (not the shape check's, on the meta device) fails at width 64."""
    model = REGISTRY["question"].build(width, **kwargs)
    if width == 64 and next(model.parameters()).device.type != "meta":
        raise RuntimeError("no model at width 64")
    return model


def test_a_run_that_raises_ends_the_sweep_naming_it(tmp_path: Path, cluster: str) -> None:
    db = tmp_path / "bug.db"
    task = replace(reference_task(TINY), builder=fails_at_64)
    with pytest.raises(ScalingError, match=r"run .* w=64 .* failed: RuntimeError: no model at width 64"):
        run_ray(TINY, db, task=task, progress=False)
    assert {r[RUN_COLUMNS.index("width")] for r in table(db)} <= {32}  # what finished is stored


def test_without_ray_the_error_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    db = tmp_path / "s.db"
    with pytest.raises(ScalingError, match=re.escape("pip install 'scaling[ray]'")):
        run_ray(TINY, db, progress=False)
    assert main(["sweep", "--db", str(db), "--backend", "ray", *TINY_ARGS]) == 2
    assert "scaling sweep: error:" in capsys.readouterr().err and not db.exists()


# --- merging shards --------------------------------------------------------------------------------


@pytest.fixture
def shards(tmp_path: Path) -> tuple[Path, Path, Path]:
    """The TINY sweep as shards 0/2 and 1/2 in databases of their own, and whole in a third."""
    a, b, full = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "full.db"
    run_sweep(TINY, a, worker=(0, 2), threads=1, progress=False)
    run_sweep(TINY, b, worker=(1, 2), threads=1, progress=False)
    run_sweep(TINY, full, threads=1, progress=False)
    return a, b, full


def test_shards_merge_into_the_whole_sweep_once(tmp_path: Path, shards: tuple[Path, Path, Path]) -> None:
    a, b, full = shards
    out = tmp_path / "merged.db"
    summary = merge(out, [a, b])
    assert summary.rows == (count(a), count(b)) and summary.added == summary.rows and summary.total == 12
    assert sorted(table(out)) == sorted(table(a) + table(b))  # every column as the shards stored it
    assert_same_runs(out, full)
    assert read_database(out)[0]["fixed"] == read_database(a)[0]["fixed"]  # a new output: the inputs' meta
    again = merge(out, [a, b, full])
    assert again.added == (0, 0, 0) and again.total == 12 and "0 rows added, 24 already there" in str(again)
    assert sorted(table(out)) == sorted(table(a) + table(b))


def test_a_database_of_another_sweep_is_refused(tmp_path: Path, shards: tuple[Path, Path, Path]) -> None:
    a = shards[0]
    out, other = tmp_path / "merged.db", tmp_path / "other.db"
    run_sweep(replace(TINY, steps=21, widths=(32,), log2_lrs=(-6,)), other, threads=1, progress=False)
    with pytest.raises(ScalingError, match=r"another sweep .*\(steps: 20 -> 21\)"):
        merge(out, [a, other])
    assert not out.exists()  # checked before anything is written
    merge(out, [a])
    first = table(out)
    with pytest.raises(ScalingError, match=r"merged.db holds another sweep .*\(steps: 20 -> 21\)"):
        merge(out, [other])
    assert table(out) == first


def test_bad_inputs_are_refused_before_anything_is_written(tmp_path: Path, shards: tuple[Path, Path, Path]) -> None:
    a = shards[0]
    out = tmp_path / "merged.db"
    text, plain, edited = tmp_path / "notes.db", tmp_path / "plain.db", tmp_path / "edited.db"
    text.write_text("not a database at all\n" * 20)
    with sqlite3.connect(plain) as con:
        con.execute("CREATE TABLE t (x)")
    shutil.copy(a, edited)
    with sqlite3.connect(edited) as con:
        con.execute("UPDATE runs SET run_id = 'abc' WHERE rowid = (SELECT MIN(rowid) FROM runs)")
    for bad, message in [(tmp_path / "missing.db", "no sweep database there"), (tmp_path, "a directory"),
                         (text, "not a usable sweep database"), (plain, "not a sweep database"),
                         (edited, "has run_id abc, not")]:
        with pytest.raises(ScalingError, match=message):
            merge(out, [a, bad])
        assert not out.exists()
    merge(out, [a])
    with pytest.raises(ScalingError, match="is the output database itself"):
        merge(out, [out])


def test_merge_on_the_command_line(tmp_path: Path, shards: tuple[Path, Path, Path],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    a, b, _ = shards
    out = tmp_path / "merged.db"
    assert main(["sweep", "merge", "--db", str(out), str(a), str(b)]) == 0
    assert "12 rows added, 0 already there; 12 runs" in capsys.readouterr().out
    assert main(["sweep", "--db", str(out), "merge", str(a)]) == 0  # --db before the subcommand reads as well
    assert "0 rows added" in capsys.readouterr().out
    fresh = tmp_path / "fresh.db"
    assert main(["sweep", "merge", "--db", str(fresh), str(a), str(tmp_path / "missing.db")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scaling sweep: error:") and err.count("\n") == 1 and not fresh.exists()


def test_the_runs_columns_are_the_schemas(tmp_path: Path) -> None:
    with SweepStore(tmp_path / "s.db"):
        pass
    with sqlite3.connect(tmp_path / "s.db") as con:
        assert tuple(r[1] for r in con.execute("PRAGMA table_info(runs)")) == RUN_COLUMNS

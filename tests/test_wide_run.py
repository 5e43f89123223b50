"""The wide run, ``scaling train``: one cell of an existing sweep, recorded beside its base-width runs.

On one process it is the engine's own run of that cell; launched by torchrun on 2 CPU processes
(gloo), with DDP or FSDP2, it logs the same losses; bad input fails before anything is written.
Every sweep here trains a 10-w-w-w-2 MLP on the original question's toy data (milliseconds a run).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

from scaling.cli import main
from scaling.errors import ScalingError
from scaling.sweep import SweepConfig, run_sweep, train
from scaling.sweep.store import Cell, RunRecord, SweepStore
from scaling.sweep.wide import shard, train_wide

ROOT = Path(__file__).resolve().parent.parent
# The reference MLP on the toy data, 10-w-w-w-2: two hidden layers, so FSDP2 shards two blocks and the root.
SWEEP = SweepConfig(model="mlp", dataset="toy", model_kwargs={"in_dim": 10, "out_dim": 2, "depth": 3}, widths=(32,),
                    base_width=32, log2_lrs=(-6.0,), seeds=(0,), parameterizations=("sp", "mup"), steps=20,
                    batch_size=32, last_k=5)
WIDE = Cell("mup", "adam", 128, -5.0, 0)
WIDE_ARGS = ["--width", "128", "--log2-lr", "-5", "--parameterization", "mup"]
TIMEOUT_S = 120


@pytest.fixture(scope="module")
def sweep_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished base-width sweep (sp and mup at width 32); copy it before writing to it."""
    db = tmp_path_factory.mktemp("sweep") / "sweep.db"
    run_sweep(SWEEP, db, progress=False)
    return db


@pytest.fixture
def db(sweep_db: Path, tmp_path: Path) -> Path:
    """A fresh copy of the base-width sweep."""
    return Path(shutil.copy(sweep_db, tmp_path / "sweep.db"))


@pytest.fixture(scope="module")
def single() -> RunRecord:
    """The engine's own run of the wide cell."""
    return train(SWEEP, WIDE)


def stored(db: Path, cell: Cell) -> RunRecord:
    with SweepStore(db) as store:
        found = [r for r in store.runs() if r.cell == cell]
    assert len(found) == 1, found
    return found[0]


def count(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


def test_one_process_records_the_engines_run(db: Path, single: RunRecord, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--db", str(db), *WIDE_ARGS]) == 0
    assert "recorded in" in capsys.readouterr().out
    ours = stored(db, WIDE)
    assert (ours.train_loss, ours.val_loss, ours.steps, ours.flops, ours.diverged) == \
        (single.train_loss, single.val_loss, single.steps, single.flops, single.diverged)
    assert count(db) == 3  # beside the sweep's two base-width runs
    # A second time trains nothing: it says the run is there and shows it.
    assert main(["train", "--db", str(db), *WIDE_ARGS]) == 0
    assert "already holds this run" in capsys.readouterr().out
    assert count(db) == 3


def test_the_api_takes_the_defaults_of_a_one_valued_sweep(db: Path, single: RunRecord) -> None:
    record = train_wide(SWEEP, WIDE, db=db)
    assert (record.train_loss, record.val_loss) == (single.train_loss, single.val_loss)
    assert stored(db, WIDE).train_loss == single.train_loss
    assert train_wide(SWEEP, WIDE, db=db) == stored(db, WIDE)  # recorded: returned, not retrained


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="torch built without gloo")
@pytest.mark.parametrize("parallel", ["ddp", "fsdp"])
def test_torchrun_on_two_processes_matches_one(parallel: str, db: Path, single: RunRecord) -> None:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "scaling", "train", "--db", str(db), *WIDE_ARGS, "--parallel", parallel]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{parallel} over 2 processes" in done.stdout
    ours = stored(db, WIDE)
    assert not single.diverged and single.steps == SWEEP.steps
    assert ours.train_loss == pytest.approx(single.train_loss, rel=1e-5)
    assert ours.val_loss == pytest.approx(single.val_loss, rel=1e-5)
    assert (ours.steps, ours.flops) == (single.steps, single.flops)  # FLOPs summed over the ranks' halves
    assert count(db) == 3  # rank 0 alone wrote


# --- bad input: a clear error, nothing written -----------------------------------------------------


def test_no_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "none.db"
    assert main(["train", "--db", str(db), *WIDE_ARGS]) == 2
    assert "scaling train: error: no sweep database" in capsys.readouterr().err
    assert not db.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--width", "16", "--log2-lr", "-5", "--parameterization", "mup"], "below the sweep's base width 32"),
    (["--width", "128", "--log2-lr", "-5"], "several parameterizations (sp, mup): pass --parameterization"),
    (["--width", "128", "--log2-lr", "-5", "--parameterization", "nope"], "unknown parameterization 'nope'"),
    (["--width", "128", "--lr", "0", "--parameterization", "mup"], "--lr must be positive"),
])
def test_bad_cells(args: list[str], message: str, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--db", str(db), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scaling train: error:") and message in err, err
    assert count(db) == 2


@pytest.mark.parametrize(("world", "extra", "message"), [
    ("3", [], "batch size 32 does not divide over 3 ranks"),
    ("2", ["--parallel", "fsdp", "--optimizer", "muon"], "use --parallel ddp"),
])
def test_what_torchrun_cannot_split(world: str, extra: list[str], message: str, db: Path,
                                    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before any process group starts (as torchrun's environment would say: here, faked)."""
    monkeypatch.setenv("WORLD_SIZE", world)
    monkeypatch.setenv("RANK", "0")
    assert main(["train", "--db", str(db), *WIDE_ARGS, *extra]) == 2
    assert message in capsys.readouterr().err
    assert count(db) == 2


def test_a_database_of_other_settings_is_refused(db: Path) -> None:
    with pytest.raises(ScalingError, match="other settings"):
        train_wide(replace(SWEEP, steps=10, last_k=5), WIDE, db=db)
    assert count(db) == 2


def test_a_batch_splits_into_equal_contiguous_slices() -> None:
    x, y = torch.arange(12).reshape(6, 2), torch.arange(6)
    halves = [shard((x, y), r, 2) for r in range(2)]
    assert torch.equal(torch.cat([h[0] for h in halves]), x) and torch.equal(halves[1][1], y[3:])
    assert shard({"x": x}, 2, 3)["x"].tolist() == [[8, 9], [10, 11]]

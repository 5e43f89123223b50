"""Your own model in every tool: the sweep API and CLI on a builder and data the package has never seen,
per-role constants in a run's key, data loaders, and sweep databases of the previous schema."""

from __future__ import annotations

import json
import math
import sqlite3
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from scaling.cli import main
from scaling.data import LoaderData, as_data
from scaling.errors import ScalingError
from scaling.sweep import Cell, RunSettings, SweepConfig, SweepStore, lr_sweep, open_existing, read_config, train
from scaling.sweep.task import Task


class Tanh2(nn.Module):
    """A model the package does not know: 8 -> w -> w -> 3, tanh."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(8, width), nn.Linear(width, width), nn.Linear(width, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(torch.tanh(self.b(torch.tanh(self.a(x)))))


def data(n: int = 256) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, :3] * torch.tensor([1.0, -1.0, 0.5])).argmax(1)
    return x[:192], y[:192], x[192:], y[192:]


SMALL = {"steps": 15, "last_k": 5, "batch_size": 32}


def test_a_sweep_of_your_own_model_runs_resumes_and_plots(tmp_path: Path) -> None:
    db = tmp_path / "own.db"
    result = lr_sweep(Tanh2, data(), db=db, widths=(16, 32), log2_lrs=(-8, -6, -4), progress=False, **SMALL)
    assert len(result.runs) == 12 and not any(r.diverged for r in result.runs)
    assert {d.parameterization for d in result.analysis.drifts} == {"sp", "mup"}
    assert all(math.isfinite(r.val_loss) for r in result.runs)  # the (x_val, y_val) pair is the validation set
    assert "drift" in result.table()
    [png] = result.plot(tmp_path / "own")
    assert png.is_file()
    with open_existing(db) as store:
        finished = {r.cell: r.seconds for r in store.runs()}
        assert read_config(store).model.endswith(":Tanh2")
    again = lr_sweep(Tanh2, data(), db=db, widths=(16, 32), log2_lrs=(-8, -6, -4), progress=False, **SMALL)
    assert {r.cell: r.seconds for r in again.runs} == finished  # nothing retrained


def test_a_database_refuses_another_models_runs(tmp_path: Path) -> None:
    db = tmp_path / "own.db"
    lr_sweep(Tanh2, data(), db=db, widths=(16,), log2_lrs=(-6,), progress=False, **SMALL)

    def other(width: int) -> nn.Module:
        return Tanh2(width)

    with pytest.raises(ScalingError, match="other settings"):
        lr_sweep(other, data(), db=db, widths=(16,), log2_lrs=(-6,), progress=False, **SMALL)


def test_per_role_constants_are_part_of_a_runs_key(tmp_path: Path) -> None:
    """Runs that differ only in their constants are distinct cells, and separate series in the analysis."""
    scales = ({}, {"lr": {"output": 4.0}})
    result = lr_sweep(Tanh2, data(), db=tmp_path / "s.db", widths=(16, 32), log2_lrs=(-6, -5, -4),
                      parameterizations=("mup",), scales=scales, progress=False, **SMALL)
    assert len(result.runs) == 12 and len({r.cell for r in result.runs}) == 12
    assert len({r.cell.scales for r in result.runs}) == 2
    labels = {c.parameterization for c in result.analysis.curves}
    assert "mup" in labels and len(labels) == 2
    by = {(r.cell.scales, r.cell.width, r.cell.log2_lr): r.train_loss for r in result.runs}
    assert by[("", 32, -6.0)] != by[('{"lr": {"output": 4.0}}', 32, -6.0)]


def test_several_workers_need_a_builder_that_pickles(tmp_path: Path) -> None:
    with pytest.raises(ScalingError, match="pickles"):
        lr_sweep(lambda w: Tanh2(w), data(), db=tmp_path / "s.db", widths=(16,), log2_lrs=(-6,), workers=2,
                 progress=False, **SMALL)
    assert not (tmp_path / "s.db").exists()


@pytest.mark.slow
def test_several_workers_train_your_model(tmp_path: Path) -> None:
    result = lr_sweep(Tanh2, data(), db=tmp_path / "s.db", widths=(16, 32), log2_lrs=(-6, -4), workers=2,
                      optimizer=torch.optim.AdamW, progress=False, **SMALL)
    assert len(result.runs) == 8 and {r.cell.optimizer for r in result.runs} == {"adamw"}
    single = train(RunSettings(model="x", base_width=16, **SMALL), result.runs[0].cell, Task(Tanh2, data()))
    assert single.train_loss == result.runs[0].train_loss  # spawned workers train exactly what one process would


def test_a_dataloader_is_data_seeded_by_the_run() -> None:
    x, y, *_ = data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    task = Task(Tanh2, loader)
    assert isinstance(task.data, LoaderData)
    state = torch.random.get_rng_state()
    first = [next(task.data.batches(32, torch.Generator().manual_seed(s)))[1] for s in (0, 0, 1)]
    assert torch.equal(first[0], first[1]) and not torch.equal(first[0], first[2])
    assert torch.equal(state, torch.random.get_rng_state())  # the shuffle leaves the user's generator alone
    settings, cell = RunSettings(model="x", base_width=16, steps=20, last_k=5), Cell("mup", "adam", 32, -6.0, 0)
    a, b = train(settings, cell, task), train(settings, cell, task)
    assert a.train_loss == b.train_loss and math.isnan(a.val_loss)  # no validation loader: no validation loss
    assert train(settings, cell._replace(seed=1), task).train_loss != a.train_loss


def test_data_of_the_wrong_kind_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="cannot train on"):
        as_data([1, 2, 3])
    with pytest.raises(ValueError, match="differ in length"):
        as_data((torch.zeros(4, 2), torch.zeros(3)))


MODULE = textwrap.dedent('''
    import torch
    from torch import nn

    def build(width, depth=1):
        return nn.Sequential(nn.Linear(6, width), nn.ReLU(), *[nn.Sequential(nn.Linear(width, width), nn.ReLU())
                             for _ in range(depth)], nn.Linear(width, 2))

    def points(n=128):
        g = torch.Generator().manual_seed(1)
        x = torch.randn(n, 6, generator=g)
        return x, (x[:, 0] > 0).long()

    def batch():
        return points(64)
''')


def test_the_cli_takes_your_builder_and_data_as_module_function(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mynets.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    db = tmp_path / "mine.db"
    assert main(["sweep", "--db", str(db), "--model", "mynets:build", "--dataset", "mynets:points", "--widths", "16",
                 "32", "--base-width", "16", "--log2-lrs", "-6", "-4", "--steps", "10", "--last-k", "5",
                 "--batch-size", "16", "--model-option", "depth=2"]) == 0
    assert "ran 8 runs" in capsys.readouterr().out
    with open_existing(db) as store:
        assert read_config(store).model == "mynets:build" and store.count() == 8
    out = tmp_path / "coord"
    assert main(["coord-check", "--model", "mynets:build", "--data", "mynets:batch", "--widths", "32", "64", "128",
                 "--steps", "2", "--seeds", "1", "--out", str(out), "--no-plot"]) == 0
    assert (out / "coord-mynets-build-mup-adam.json").is_file()
    assert main(["coord-check", "--model", "mynets:build", "--out", str(out)]) == 2
    assert "give its fixed batch with --data" in capsys.readouterr().err
    assert main(["sweep", "--db", str(tmp_path / "x.db"), "--model", "mynets:build"]) == 2
    assert "has no built-in dataset" in capsys.readouterr().err
    assert main(["sweep", "--db", str(tmp_path / "x.db"), "--model", "mynets:nothing", "--dataset", "toy"]) == 2
    assert "has no 'nothing'" in capsys.readouterr().err


def test_a_database_of_schema_version_1_is_migrated_in_place(tmp_path: Path) -> None:
    """Version 1 kept the per-role constants among the fixed settings; they move into every run's key."""
    db = tmp_path / "v1.db"
    scales = {"lr": {"output": 2.0}}
    fixed = {**SweepConfig(model="question").fixed(), "scales": scales}
    with sqlite3.connect(db) as con:
        con.executescript(textwrap.dedent("""
            CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE runs (parameterization TEXT NOT NULL, optimizer TEXT NOT NULL, width INTEGER NOT NULL,
                log2_lr REAL NOT NULL, seed INTEGER NOT NULL, lr REAL NOT NULL, train_loss REAL, val_loss REAL,
                diverged INTEGER NOT NULL, steps INTEGER NOT NULL, seconds REAL NOT NULL, flops REAL NOT NULL,
                worker TEXT NOT NULL, finished_at TEXT NOT NULL,
                UNIQUE (parameterization, optimizer, width, log2_lr, seed));
            CREATE TABLE claims (parameterization TEXT NOT NULL, optimizer TEXT NOT NULL, width INTEGER NOT NULL,
                log2_lr REAL NOT NULL, seed INTEGER NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
                since REAL NOT NULL, PRIMARY KEY (parameterization, optimizer, width, log2_lr, seed));
        """))
        con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        con.execute("INSERT INTO meta VALUES ('fixed', ?)", (json.dumps(fixed),))
        con.execute("INSERT INTO meta VALUES ('config', ?)", (json.dumps({**fixed, "widths": [32]}),))
        con.execute("INSERT INTO runs VALUES ('mup', 'adam', 32, -6.0, 0, 0.015625, 0.5, 0.6, 0, 20, 0.1, 1e6, 'h:1', "
                    "'2026-01-01T00:00:00')")
        con.execute("INSERT INTO runs VALUES ('mup', 'adam', 32, 9.0, 0, 512.0, NULL, NULL, 1, 3, 0.1, 1e5, 'h:1', "
                    "'2026-01-01T00:00:00')")
    with SweepStore(db) as store:
        runs = store.runs()
        meta = store.meta()
        assert store.claim(runs[0].cell) is False  # done runs stay done under their new ids
    assert meta["schema_version"] == "2" and "scales" not in json.loads(meta["fixed"])
    assert [r.cell for r in runs] == [Cell("mup", "adam", 32, -6.0, 0, '{"lr": {"output": 2.0}}'),
                                      Cell("mup", "adam", 32, 9.0, 0, '{"lr": {"output": 2.0}}')]
    assert (runs[0].train_loss, runs[0].val_loss, runs[1].diverged) == (0.5, 0.6, True)
    assert math.isnan(runs[1].train_loss)
    with open_existing(db) as store:
        assert read_config(store).scales == (scales,)


class OwnInit(Tanh2):
    """Tanh2 with nanoGPT's init: every weight N(0, 0.02) at every width."""

    def __init__(self, width: int) -> None:
        super().__init__(width)
        for layer in (self.a, self.b, self.c):
            nn.init.normal_(layer.weight, 0.0, 0.02)


def test_a_sweep_of_a_model_with_its_own_init(tmp_path: Path) -> None:
    """``init="base"`` reaches the sweep's parameterize: the hidden weight's std at width 64 is the base's
    (width 16) times muP's 1/sqrt(4); under the default it stays 0.02 and the own-init warning says so."""
    from scaling.sweep.train import build_model

    cell = Cell("mup", "adam", 64, -6.0, 0, "")
    own = RunSettings(model="own", base_width=16, init="base", **SMALL)
    task = Task(OwnInit, data())
    model, _, plan = build_model(own, cell, task)
    assert plan.init == "base"
    assert float(model.b.weight.detach().std()) == pytest.approx(0.02 / 2, rel=0.1)
    with pytest.warns(Warning, match="init='base'"):
        default, _, _ = build_model(RunSettings(model="own", base_width=16, **SMALL), cell, task)
    assert float(default.b.weight.detach().std()) == pytest.approx(0.02, rel=0.1)
    # a setting added later is left out of the runs' identity at its default, so older databases resume
    assert "init" not in SweepConfig().fixed() and SweepConfig(init="base").fixed()["init"] == "base"
    result = lr_sweep(OwnInit, data(), db=tmp_path / "own.db", widths=(16, 32), log2_lrs=(-6,), progress=False,
                      init="base", **SMALL)
    assert len(result.runs) == 4  # sp and mup at two widths
    with pytest.raises(ScalingError, match="init must be one of"):
        RunSettings(init="xavier")  # type: ignore[arg-type]

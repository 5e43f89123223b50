"""Many small runs at once (``scaling.sweep.batched``): K runs of one width trained as one ``torch.func``
batched model must be the K sequential runs (``scaling.sweep.train.train``) up to float rounding.

The learning rates stay below the edge of stability: beyond it, two *sequential* runs that differ only in
torch's thread count already disagree in the third digit after 50 steps (SGD at lr 4 on this MLP), so
no implementation could be held to float tolerance there.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from scaling.errors import ScalingError
from scaling.sweep import SweepConfig, run_cells, run_sweep, train
from scaling.sweep.batched import BatchedRuns, CannotBatchError, batch_problem, group_key, probe, train_batched
from scaling.sweep.engine import groups_of
from scaling.sweep.store import Cell, SweepStore
from scaling.sweep.train import reference_task

pytestmark = pytest.mark.usefixtures("one_thread")

MLP = SweepConfig(model="mlp", widths=(64,), base_width=32, steps=50, last_k=10)
REL = 1e-5  # float32 rounding, grown over 50 steps


def assert_same_runs(batched: list, sequential: list) -> None:
    """Every record of the batched runs equals the sequential one: losses to REL, steps and FLOPs exactly."""
    for b, s in zip(batched, sequential, strict=True):
        assert b.cell == s.cell
        assert b.diverged == s.diverged and b.steps == s.steps, (b, s)
        assert b.flops == pytest.approx(s.flops, rel=1e-12)
        if not s.diverged:
            assert b.train_loss == pytest.approx(s.train_loss, rel=REL), s.cell
            assert b.val_loss == pytest.approx(s.val_loss, rel=REL), s.cell


@pytest.mark.parametrize(("optimizer", "log2_lrs", "options"), [
    ("sgd", (-4, -2, 0), {}),
    ("momentum", (-6, -4, -2), {"weight_decay": 1e-3}),
    ("adam", (-10, -8, -6), {}),
    ("adamw", (-10, -8, -6), {"weight_decay": 0.1, "schedule": "cosine"}),
    ("adam", (-10, -8, -6), {"schedule": "plateau", "steps": 60}),
])
def test_batched_runs_equal_sequential_runs_over_50_steps(optimizer: str, log2_lrs: tuple, options: dict) -> None:
    """LRs x two seeds (each model reads its own seed's batches), under muP, as one batched model."""
    settings = replace(MLP, **options)
    task = reference_task(settings)
    cells = [Cell("mup", optimizer, 64, x, s) for x in log2_lrs for s in (0, 1)]
    assert_same_runs(train_batched(settings, cells, task), [train(settings, c, task) for c in cells])


@pytest.mark.parametrize("model", ["gpt", "resmlp", "cnn"])
def test_batched_runs_equal_sequential_runs_on_the_gpt_a_normalized_residual_mlp_and_a_cnn(model: str) -> None:
    """Attention (torch has no batching rule for CPU flash attention: a loop, slow, still equal), LayerNorm,
    residual branches, convolutions (vmap makes them grouped: the FLOPs must still be one model's)."""
    width, base = {"gpt": (32, 16), "resmlp": (64, 32), "cnn": (32, 16)}[model]
    settings = SweepConfig(model=model, widths=(width,), base_width=base, steps=10, last_k=5,
                           batch_size=8 if model == "gpt" else 128)
    task = reference_task(settings)
    cells = [Cell("mup", "adam", width, x, s) for x, s in ((-8, 0), (-6, 0), (-6, 1))]
    assert_same_runs(train_batched(settings, cells, task), [train(settings, c, task) for c in cells])


def test_a_diverging_run_stops_where_its_sequential_run_stops_and_leaves_the_others_alone() -> None:
    settings = replace(MLP, steps=30)
    task = reference_task(settings)
    cells = [Cell("sp", "adam", 64, x, 0) for x in (-9, 4)]  # lr 16 under Adam: gone within a few steps
    batched, sequential = train_batched(settings, cells, task), [train(settings, c, task) for c in cells]
    assert [r.diverged for r in batched] == [False, True]
    assert batched[1].steps < settings.steps
    assert math.isinf(batched[1].train_loss) and math.isnan(batched[1].val_loss)
    assert_same_runs(batched, sequential)


def test_per_role_lr_and_init_constants_batch_together_and_multiplier_constants_do_not() -> None:
    """LR and init constants set each model's groups and initial values; a forward multiplier is the
    template's forward, so a different one is a different group."""
    settings = replace(MLP, steps=20)
    task = reference_task(settings)
    lr = Cell("mup", "adam", 64, -8, 0, '{"lr": {"output": 4.0}}')
    init = Cell("mup", "adam", 64, -8, 0, '{"init": {"output": 0.25}}')
    plain = Cell("mup", "adam", 64, -8, 1)
    mult = Cell("mup", "adam", 64, -8, 0, '{"multiplier": {"output": 2.0}}')
    assert group_key(lr) == group_key(init) == group_key(plain) != group_key(mult)
    assert groups_of([lr, mult, init, plain], 32) == [[lr, init, plain], [mult]]
    cells = [lr, init, plain]
    assert_same_runs(train_batched(settings, cells, task), [train(settings, c, task) for c in cells])
    with pytest.raises(CannotBatchError, match="share row, optimizer, width"):
        BatchedRuns(settings, [plain, mult], task)


def test_groups_split_evenly_and_never_mix_widths() -> None:
    cells = [Cell("mup", "adam", w, x, 0) for w in (32, 64) for x in range(34)]
    groups = groups_of(cells, 32)
    assert [len(g) for g in groups] == [17, 17, 17, 17]
    assert all(len({c.width for c in g}) == 1 for g in groups)
    assert sorted(c for g in groups for c in g) == sorted(cells)
    assert groups_of(cells, 1) == [[c] for c in cells]  # one by one keeps the grid's order


def test_what_cannot_be_batched_says_why_and_the_engine_trains_it_one_by_one(tmp_path: Path) -> None:
    assert "RMSprop" in (batch_problem(Cell("mup", "rmsprop", 64, -8, 0)) or "")
    assert "own model" in (batch_problem(Cell("microsoft-mup", "adam", 64, -8, 0)) or "")
    assert batch_problem(Cell("mup", "adam", 64, -8, 0)) is None
    config = replace(MLP, steps=5, last_k=2, widths=(32,), optimizers=("rmsprop",), parameterizations=("mup",),
                     log2_lrs=(-9, -8))
    summary = run_sweep(config, tmp_path / "s.db", progress=False, batched="always")
    assert summary.ran == 2 and summary.batched == 0
    assert summary.how == ("mup rmsprop width 32, 2 runs: sequential (the batched step implements SGD, Adam, "
                           "AdamW, not RMSprop)",)


def test_the_engine_trains_batched_and_records_what_sequential_training_records(tmp_path: Path) -> None:
    """``batched="always"`` and ``"never"`` fill two databases with the same rows; the summary says how."""
    config = replace(MLP, steps=20, last_k=5, widths=(32, 64), parameterizations=("sp", "mup"),
                     log2_lrs=(-9, -7), seeds=(0, 1))
    together = run_sweep(config, tmp_path / "b.db", progress=False, batched="always")
    apart = run_sweep(config, tmp_path / "s.db", progress=False, batched="never")
    assert together.ran == apart.ran == 16 and together.batched == 16 and apart.batched == 0
    assert len(together.how) == 4 and all("batched (always)" in line for line in together.how)
    assert "16 of the runs batched" in str(together)
    with SweepStore(tmp_path / "b.db") as b, SweepStore(tmp_path / "s.db") as s:
        assert_same_runs(b.runs(), s.runs())
    again = run_sweep(config, tmp_path / "b.db", progress=False, batched="always")
    assert again.ran == 0 and again.finished == 16  # resumed: nothing trained twice


def test_auto_decides_from_a_probe_and_says_which_it_used(tmp_path: Path) -> None:
    config = replace(MLP, steps=10, last_k=5, widths=(32,), parameterizations=("mup",), log2_lrs=(-9, -8, -7, -6),
                     seeds=(0, 1))
    summary = run_sweep(config, tmp_path / "a.db", progress=False, batched="auto")
    (line,) = summary.how
    assert line.startswith("mup adam width 32, 8 runs: ")
    if summary.batched:
        assert summary.batched == 8 and "batched (K=8: batched" in line and "measured" in line
    else:
        assert "sequential (batched only" in line and "in the probe" in line
    measured = probe(config, config.cells(), reference_task(config))
    assert measured.k == 8 and measured.sequential_s > 0 and measured.batched_s > 0 and measured.speedup > 0


def test_run_cells_batches_a_tuners_points(tmp_path: Path) -> None:
    config = replace(MLP, steps=10, last_k=5, widths=(32,), parameterizations=("mup",))
    cells = [Cell("mup", "adam", 32, -8, s, f'{{"lr": {{"output": {f}}}}}') for f in (0.5, 2.0) for s in (0, 1)]
    batched = run_cells(config, tmp_path / "b.db", cells, batched="always")
    sequential = run_cells(config, tmp_path / "s.db", cells, batched="never")
    assert_same_runs(batched, sequential)
    with sqlite3.connect(tmp_path / "b.db") as con:
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 4


def test_bad_batching_options_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ScalingError, match="batched must be one of auto, always, never"):
        run_sweep(MLP, tmp_path / "x.db", progress=False, batched="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ScalingError, match="max_models must be at least 1"):
        run_sweep(MLP, tmp_path / "x.db", progress=False, max_models=0)
    assert not (tmp_path / "x.db").exists()
    with pytest.raises(CannotBatchError, match="no cells"):
        BatchedRuns(MLP, [], reference_task(MLP))


def test_shared_batches_give_every_model_the_first_cells_stream() -> None:
    """The option the engine never uses: seed 1's run then sees seed 0's batches (and its own init)."""
    settings = replace(MLP, steps=20)
    task = reference_task(settings)
    cells = [Cell("mup", "adam", 64, -8, 0), Cell("mup", "adam", 64, -8, 1)]
    shared = train_batched(settings, cells, task, shared_batches=True)
    own = train_batched(settings, cells, task)
    assert shared[0].train_loss == pytest.approx(own[0].train_loss, rel=REL)
    assert shared[1].train_loss != pytest.approx(own[1].train_loss, rel=1e-3)

"""Run options that reach ``parameterize``: per-role constants, zero readout, base epsilon; custom table rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from scaling.cli import main
from scaling.errors import ScalingError
from scaling.sweep import Cell, RunSettings, SweepConfig, read_config, run_sweep, train
from scaling.sweep.store import open_existing
from scaling.sweep.train import build_model, reference_task
from scaling.table import (
    MUP,
    PARAMETERIZATIONS,
    Power,
    RoleScales,
    get_parameterization,
    register_parameterization,
)


@pytest.fixture(autouse=True)
def restore_the_table() -> Iterator[None]:
    """Rows registered by a test do not outlive it."""
    saved = dict(PARAMETERIZATIONS)
    yield
    PARAMETERIZATIONS.clear()
    PARAMETERIZATIONS.update(saved)


SETTINGS = RunSettings("question", base_width=32, steps=20, last_k=5, batch_size=32)
CELL = Cell("mup", "adam", 64, -6.0, 0)
TASK = reference_task(SETTINGS)


def groups_by_param(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, dict]:
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    return {n: group_of[id(p)] for n, p in model.named_parameters()}


def test_scales_zero_readout_and_eps_reach_the_plan() -> None:
    scaled = CELL._replace(scales=json.dumps({"init": {"input": 0.5}, "lr": {"output": 4.0}}))
    model, opt, _ = build_model(replace(SETTINGS, zero_readout=True, eps=1e-10), scaled, TASK)
    plain_model, plain_opt, _ = build_model(SETTINGS, CELL, TASK)
    g, plain = groups_by_param(model, opt), groups_by_param(plain_model, plain_opt)
    assert g["readout.weight"]["lr"] == pytest.approx(4 * plain["readout.weight"]["lr"])
    assert g["input.weight"]["lr"] == plain["input.weight"]["lr"]
    assert torch.equal(model.input.weight, 0.5 * plain_model.input.weight)  # same seed, init halved
    assert not model.readout.weight.any() and not model.readout.bias.any()
    assert g["input.weight"]["eps"] == pytest.approx(1e-10 * plain["input.weight"]["eps"] / 1e-8)


def test_default_options_change_nothing() -> None:
    a = train(SETTINGS, CELL)
    b = train(replace(SETTINGS, zero_readout=False, eps=None), CELL._replace(scales=""))
    assert (a.train_loss, a.val_loss) == (b.train_loss, b.val_loss)


def test_role_scales_from_a_dict() -> None:
    s = RoleScales.from_dict({"lr": {"input": 2}, "multiplier": {"output": 0.5}})
    assert s.factor("lr", "input") == 2.0 and s.factor("multiplier", "output") == 0.5
    with pytest.raises(ScalingError, match="unknown kinds"):
        RoleScales.from_dict({"learning_rate": {"input": 2}})
    with pytest.raises(ScalingError, match="not a role"):
        RoleScales.from_dict({"lr": {"embedding": 2}})


def test_a_sweep_records_its_scales_and_runs_a_registered_row(tmp_path: Path) -> None:
    row = register_parameterization(MUP.shifted({}, name="mup-test-readout-half"), replace_existing=True)
    row = register_parameterization(
        replace(row, rules={**row.rules, "output": row.rules["output"].with_lr("adam", Power(-0.5, 0))}),
        replace_existing=True)
    config = SweepConfig(model="question", widths=(32, 64), base_width=32, log2_lrs=(-6,), seeds=(0,), steps=10,
                         batch_size=32, last_k=5, parameterizations=("mup", row.name),
                         scales={"lr": {"output": 2.0}}, zero_readout=True, eps=1e-12)
    summary = run_sweep(config, tmp_path / "s.db", progress=False)
    assert summary.ran == 4 and summary.diverged == 0
    with open_existing(tmp_path / "s.db") as store:
        assert read_config(store) == replace(config, dataset="toy")
        losses = {(r.cell.parameterization, r.cell.width): r.train_loss for r in store.runs()}
    assert losses[("mup", 32)] == losses[(row.name, 32)]  # the rows agree at base width
    assert losses[("mup", 64)] != losses[(row.name, 64)]
    assert json.loads(json.dumps(config.to_dict()))["scales"] == [{"lr": {"output": 2.0}}]
    assert {r.cell.scales for r in store_runs(tmp_path / "s.db")} == {'{"lr": {"output": 2.0}}'}


def store_runs(db: Path) -> list:
    with open_existing(db) as store:
        return store.runs()


def test_bad_scales_fail_before_any_run(tmp_path: Path) -> None:
    config = SweepConfig(model="question", widths=(32,), base_width=32, log2_lrs=(-6,), steps=10, batch_size=32,
                         last_k=5, scales={"lr": {"embedding": 2.0}})
    with pytest.raises(ScalingError, match="bad scales"):
        run_sweep(config, tmp_path / "s.db", progress=False)
    with pytest.raises(ScalingError, match="eps must be"):
        run_sweep(replace(config, scales={}, eps=-1.0), tmp_path / "s.db", progress=False)


def test_the_cli_takes_scales_zero_readout_and_eps(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    code = main(["sweep", "--db", str(db), "--quiet", "--model", "question", "--widths", "32", "64",
                 "--base-width", "32", "--batch-size", "32", "--steps", "10", "--last-k", "5", "--seeds", "0",
                 "--log2-lrs", "-6", "--scales", '{"lr": {"output": 2}}', "--zero-readout", "--eps", "1e-12"])
    assert code == 0
    with open_existing(db) as store:
        config = read_config(store)
    assert config.scales == ({"lr": {"output": 2}},) and config.zero_readout and config.eps == 1e-12


def test_register_parameterization_guards_the_table() -> None:
    with pytest.raises(ScalingError, match="built-in"):
        register_parameterization(replace(MUP, name="mup"))
    row = register_parameterization(replace(MUP, name="mup-test-copy"), replace_existing=True)
    assert get_parameterization("mup-test-copy") is row and PARAMETERIZATIONS["mup-test-copy"] is row
    register_parameterization(row)  # the same row again: fine
    with pytest.raises(ScalingError, match="registered already"):
        register_parameterization(replace(row, attention=0.0))
    with pytest.raises(ScalingError, match="every role"):
        register_parameterization(replace(row, name="mup-test-partial", rules={"input": MUP.rules["input"]}))
    with pytest.raises(ScalingError, match="lower case"):
        register_parameterization(replace(row, name="MUP-X"))

"""The peers as rows of our sweeps: microsoft/mup and unit-scaling's u-muP, built the peers' own way."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

pytest.importorskip("mup")
uu = pytest.importorskip("unit_scaling")

from scaling.errors import ScalingError  # noqa: E402
from scaling.peers import unit_scaling as umup  # noqa: E402
from scaling.sweep import Cell, RunSettings, SweepConfig, lr_sweep, run_sweep, train  # noqa: E402
from scaling.sweep.task import Task  # noqa: E402
from scaling.sweep.train import build_run, reference_task  # noqa: E402

MLP = RunSettings(model="mlp", base_width=32, steps=30, batch_size=64, last_k=10)


@pytest.mark.parametrize(("model", "width"), [("mlp", 128), ("gpt", 64), ("cnn", 64)])
def test_microsoft_mup_trains_what_our_table8_row_trains(model: str, width: int) -> None:
    """microsoft/mup is TP-V Table 8; with epsilon negligible (mup leaves it unscaled, we scale it) the
    two packages train the same model to the same losses, bit for bit."""
    settings = RunSettings(model=model, base_width=width // 4, steps=15, batch_size=16, last_k=5, eps=1e-30)
    task = reference_task(settings)
    losses = {p: train(settings, Cell(p, "adam", width, -6.0, 0), task).train_loss
              for p in ("mup-table8", "microsoft-mup")}
    assert losses["mup-table8"] == losses["microsoft-mup"]


def test_microsoft_mup_rows_use_its_readout_and_optimizer() -> None:
    import mup

    model, optimizer, _ = build_run(MLP, Cell("microsoft-mup", "adamw", 128, -6.0, 0), reference_task(MLP))
    assert isinstance(model.readout, mup.MuReadout) and isinstance(optimizer, torch.optim.AdamW)  # MuAdamW's
    lrs = {round(g["lr"] / 2**-6, 6) for g in optimizer.param_groups}
    assert lrs == {1.0, 0.25}  # hidden weights 1/m at m = 4; the rest at the base LR (Table 8)


def test_u_mup_swaps_in_its_layers_init_and_learning_rates() -> None:
    model, optimizer, loss = build_run(MLP, Cell("u-mup", "adam", 256, 0.0, 0), reference_task(MLP))
    assert isinstance(model.input, uu.Linear) and isinstance(model.readout, uu.LinearReadout)
    assert loss is umup.loss
    # u-muP's own init: unit weights, zero biases (the forward pass scales by 1/sqrt(fan_in), 1/fan_in)
    assert model.hidden[0].weight.std().item() == pytest.approx(1.0, abs=0.02)
    assert not model.hidden[0].bias.any()
    lr = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert lr[id(model.hidden[0].weight)] == pytest.approx(256**-0.5)  # Adam: lr x fan_in^-1/2 for weights
    assert lr[id(model.input.weight)] == pytest.approx(40**-0.5)
    assert lr[id(model.readout.weight)] == lr[id(model.hidden[0].bias)] == 1.0
    x = torch.randn(64, 40)
    y = torch.randint(0, 10, (64,))
    assert loss(model(x), y).item() == pytest.approx(nn.functional.cross_entropy(model(x), y).item(), rel=1e-6)


def test_u_mup_has_its_own_gpt_and_refuses_what_it_cannot_express() -> None:
    gpt = RunSettings(model="gpt", base_width=32, steps=3, batch_size=4, last_k=1)
    model, _, _ = build_run(gpt, Cell("u-mup", "adam", 64, 0.0, 0), reference_task(gpt))
    assert isinstance(model, umup.GPT)
    tied = RunSettings(model="gpt", base_width=32, steps=3, batch_size=4, last_k=1, model_kwargs={"tied": True})
    with pytest.raises(ScalingError, match="tied"):
        build_run(tied, Cell("u-mup", "adam", 64, 0.0, 0), reference_task(tied))

    class Conv2dNet(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.conv, self.out = nn.Conv2d(1, width, 3), nn.Linear(width, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(self.conv(x).mean((2, 3)))

    task = Task(Conv2dNet, (torch.randn(8, 1, 5, 5), torch.randint(0, 10, (8,))))
    with pytest.raises(ScalingError, match="only Conv1d"):
        build_run(RunSettings(model="c", base_width=8), Cell("u-mup", "adam", 16, 0.0, 0), task)


def test_peer_rows_refuse_per_role_constants() -> None:
    for peer in ("microsoft-mup", "u-mup"):
        with pytest.raises(ScalingError, match="RoleScales"):
            build_run(MLP, Cell(peer, "adam", 64, -6.0, 0, '{"lr": {"output": 2.0}}'), reference_task(MLP))


def test_a_sweep_runs_the_four_rows_side_by_side(tmp_path: Path) -> None:
    config = SweepConfig(model="question", widths=(32, 64), base_width=32, log2_lrs=(-6, -2), seeds=(0,),
                         steps=20, batch_size=32, last_k=5,
                         parameterizations=("sp", "mup", "microsoft-mup", "u-mup"))
    summary = run_sweep(config, tmp_path / "four.db", progress=False)
    assert summary.ran == 16 and summary.finished == 16


def test_peers_run_on_your_own_model(tmp_path: Path) -> None:
    class Net(nn.Module):
        def __init__(self, width: int) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(6, width), nn.Linear(width, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.b(torch.relu(self.a(x)))

    x = torch.randn(128, 6)
    result = lr_sweep(Net, (x, (x[:, 0] > 0).long()), db=tmp_path / "own.db", widths=(16, 32), log2_lrs=(-4,),
                      parameterizations=("microsoft-mup", "u-mup"), steps=10, last_k=5, batch_size=16,
                      progress=False)
    assert len(result.runs) == 4 and all(math.isfinite(r.train_loss) for r in result.runs)

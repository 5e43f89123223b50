"""The depth coordinate check: the final residual stream stays flat in depth under Depth-muP and
CompleteP and grows under width-only muP (Yang et al. 2023, TP-VI §3; Dey et al. 2025, §4)."""

from __future__ import annotations

import pytest
import torch

from scaling.cli import main
from scaling.coord import reference_batch
from scaling.coord.depth import DepthCoordConfig, DepthCoordResult, depth_coord_check, predicted
from scaling.errors import ScalingError
from scaling.models import GPT, MLP, ResMLP
from scaling.models.gpt import GPTConfig

CONFIG = DepthCoordConfig(depths=(2, 4, 8, 16), parameterizations=("mup", "depth-mup", "completep"), steps=5,
                          seeds=(0, 1))


def _check_flat_and_growing(result: DepthCoordResult) -> None:
    for row in ("depth-mup", "completep"):
        for stat in ("mean_abs", "mean_abs_delta"):
            f = result.fit(row, "stream", CONFIG.steps, stat)  # type: ignore[arg-type]
            assert abs(f.slope) <= 0.15, (row, stat, f)
            assert f.predicted == 0.0
    grows = result.fit("mup", "stream", CONFIG.steps, "mean_abs_delta")
    assert grows.slope > 0.3 and grows.ci_low > 0.15 and grows.verdict == "grows", grows
    # CompleteP's blocks each move ~1/L (predicted -1): measured within 0.15.
    block = result.fit("completep", "block", CONFIG.steps, "mean_abs_delta")
    assert block.slope == pytest.approx(-1.0, abs=0.15), block


def test_depth_check_on_a_residual_mlp() -> None:
    result = depth_coord_check(lambda depth: ResMLP(64, depth=depth), reference_batch("resmlp"), CONFIG)
    _check_flat_and_growing(result)


def test_depth_check_on_the_gpt() -> None:
    builder = lambda depth: GPT(GPTConfig(d_model=32, n_layers=depth, n_heads=2, block_size=16))  # noqa: E731
    result = depth_coord_check(builder, reference_batch("gpt"), CONFIG)
    _check_flat_and_growing(result)


def test_predictions_written_out() -> None:
    # Final stream at t >= 1: L^1 without a depth rule (coherent updates of L blocks), L^0 with one;
    # at init L^1/2 without. Blocks' change: L^-alpha with a rule, L^0 without. SGD: not derived.
    assert predicted("mup", "stream", "mean_abs_delta", 3) == 1.0
    assert predicted("sp", "stream", "mean_abs", 0) == 0.5
    assert predicted("completep", "stream", "mean_abs", 0) == 0.0
    assert predicted("depth-mup", "block", "mean_abs_delta", 3) == -0.5
    assert predicted("completep", "block", "mean_abs_delta", 3) == -1.0
    assert predicted("mup", "block", "mean_abs_delta", 3) == 0.0
    assert predicted("completep", "stream", "mean_abs", 3, optimizer="sgd") is None


def test_json_round_trip_and_plot(tmp_path) -> None:
    config = DepthCoordConfig(depths=(2, 4), parameterizations=("completep",), steps=1, seeds=(0,))
    result = depth_coord_check(lambda depth: ResMLP(16, depth=depth), reference_batch("resmlp"), config)
    back = DepthCoordResult.from_json(result.to_json(tmp_path / "d.json"))
    assert back.config == config and back.records == result.records
    assert result.plot(tmp_path / "d.png") is not None and (tmp_path / "d.png").stat().st_size > 0


def test_bad_input() -> None:
    with pytest.raises(ScalingError, match="two distinct"):
        DepthCoordConfig(depths=(4,))
    with pytest.raises(ScalingError, match="deeper than the shallowest"):
        DepthCoordConfig(depths=(2, 4), base_depth=4)
    with pytest.raises(ScalingError, match="no residual branch"):
        depth_coord_check(lambda depth: MLP(16, depth=depth), reference_batch("mlp"),
                          DepthCoordConfig(depths=(2, 4), steps=1, seeds=(0,), parameterizations=("mup",)))


def test_cli_writes_data_and_plot(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    code = main(["depth-check", "--model", "resmlp", "--width", "16", "--depths", "2", "4", "--steps", "1",
                 "--seeds", "1", "--rows", "completep", "--out", str(tmp_path)])
    assert code == 0
    assert (tmp_path / "depth-check-resmlp.json").exists() and (tmp_path / "depth-check-resmlp.png").exists()
    assert "completep" in capsys.readouterr().out
    with pytest.raises(ScalingError, match="no residual blocks"):
        main(["depth-check", "--model", "mlp", "--out", str(tmp_path)])

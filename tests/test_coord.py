"""Coordinate checks: measured width exponents against the theory, on our models and a stranger's.

Widths are powers of two; every run is seeded. The measured-vs-predicted test trains in float64 at a
small learning rate, so that one step stays first order (the regime scaling/predict.py derives).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scaling.cli import main
from scaling.coord import CoordResult, Fit, coord_check, fit_slope, verdict
from scaling.data import load_dataset
from scaling.errors import ScalingError
from scaling.models import MLP, build

STEPS = (1, 2, 3)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def mlp_batch() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 40, generator=g), torch.randint(0, 10, (64,), generator=g)


@pytest.fixture(scope="module")
def text_batch() -> tuple[Tensor, Tensor]:
    """Four 16-byte windows of real text (the standard library's source): labels repeat, as in language."""
    data = load_dataset("stdlib-bytes", block_size=16, max_bytes=50_000)
    return data.sample(4, torch.Generator().manual_seed(0))


def _unstable_fits(result: CoordResult, steps: tuple[int, ...] = STEPS) -> list[Fit]:
    """Fits at ``steps`` that are not stable (a change that is exactly zero at every width has no slope)."""
    return [f for f in result.fits if f.step in steps and f.verdict != "stable"
            and not (f.stat == "mean_abs_delta" and f.verdict == "zero")]


@pytest.mark.parametrize(("optimizer", "lr", "zero_readout"), [("adam", 1e-2, False), ("sgd", 0.3, True)])
def test_mup_mlp_is_stable(mlp_batch: tuple[Tensor, Tensor], optimizer: str, lr: float, zero_readout: bool) -> None:
    """muP: every output and its change keep their size from width 128 to 1024 (|s| <= 0.15).

    muP's readout init makes the initial logits shrink like n^-1/2 (their size is then set by the
    change, O(1)). With SGD's smaller first steps that transient still shows at step 1 at these
    widths, so the SGD run zero-initializes the readout, as TP-V (App. D.2) recommends.
    """
    result = coord_check(lambda w: MLP(w), mlp_batch, widths=(128, 256, 512, 1024), parameterization="mup",
                         optimizer=optimizer, lr=lr, steps=3, seeds=2, zero_readout=zero_readout)
    assert not _unstable_fits(result), result.table()
    if not zero_readout:
        assert not [f for f in result.fits if f.step >= 1 and f.verdict == "zero"]
    assert {m.module: m.layer for m in result.modules} == {
        "input": "input", "hidden.0": "hidden", "readout": "logits", "<model>": "logits"}


@pytest.mark.parametrize(("optimizer", "lr"), [("adam", 1e-2), ("sgd", 0.3)])
def test_mup_gpt_is_stable(text_batch: tuple[Tensor, Tensor], optimizer: str, lr: float) -> None:
    """muP on the pre-LN GPT (1/d attention), readout and queries zero-initialized as TP-V App. D.2
    recommends: every module, attention and LayerNorm included, keeps its size from 128 to 1024."""
    result = coord_check(lambda w: build("gpt", w), text_batch, widths=(128, 256, 512, 1024),
                         parameterization="mup", optimizer=optimizer, lr=lr, steps=3, seeds=2,
                         zero_readout=True, zero_query=True)
    assert not _unstable_fits(result), result.table()
    # With a zero readout, nothing below it moves in the first step: exactly zero, not unstable.
    zero = {f.module for f in result.fits if f.verdict == "zero" and f.step >= 1}
    assert "readout" not in zero
    assert all(f.step == 1 and f.stat == "mean_abs_delta" for f in result.fits if f.verdict == "zero" and f.step >= 1)
    layers = {m.module: m.layer for m in result.modules}
    assert layers["wte"] == "input" and layers["blocks.0.attn.qkv"] == "hidden" and layers["readout"] == "logits"
    assert layers["blocks.0.ln1"] == "O(1)"  # maximal update: everything else predicted O(1)


def test_sp_adam_logits_blow_up(mlp_batch: tuple[Tensor, Tensor]) -> None:
    """SP with Adam: the logits grow faster than linearly in width (predicted 3/2), the hidden layer like n."""
    result = coord_check(lambda w: MLP(w), mlp_batch, widths=(128, 256, 512, 1024), parameterization="sp",
                         optimizer="adam", lr=1e-2, steps=1, seeds=2)
    for stat in ("mean_abs", "mean_abs_delta"):
        assert result.fit("readout", 1, stat).slope >= 0.7
    assert result.fit("readout", 1).predicted == 1.5
    assert result.fit("hidden.0", 1).slope >= 0.7


PREDICTED = {  # mean|h_1 - h_0|: (input layer, hidden layer, logits), from tests/test_predict.py
    ("sp", "sgd"): (-0.5, 0.5, 1.0),
    ("sp", "adam"): (0.0, 1.0, 1.5),
    ("ntk", "sgd"): (-0.5, -0.5, 0.0),
    ("ntk", "adam"): (-0.5, -0.5, 0.0),
    ("mup", "sgd"): (0.0, 0.0, 0.0),
    ("mup", "adam"): (0.0, 0.0, 0.0),
}


@pytest.mark.parametrize(("row", "optimizer"), sorted(PREDICTED))
def test_measured_matches_predicted(row: str, optimizer: str) -> None:
    """One small step in float64 (first order): measured slopes within 0.25 of the theory's, 256..2048."""
    g = torch.Generator().manual_seed(1)
    batch = torch.randn(64, 40, generator=g, dtype=torch.float64), torch.randint(0, 10, (64,), generator=g)
    lr = 1e-4 if optimizer == "sgd" else 1e-5
    result = coord_check(lambda w: MLP(w).double(), batch, widths=(256, 512, 1024, 2048), parameterization=row,
                         optimizer=optimizer, lr=lr, steps=1, seeds=2, modules=r"^(input|hidden\.0|readout)$")
    measured = tuple(result.fit(m, 1).slope for m in ("input", "hidden.0", "readout"))
    predicted = tuple(result.fit(m, 1).predicted for m in ("input", "hidden.0", "readout"))
    assert predicted == PREDICTED[row, optimizer]
    assert all(result.fit(m, 1).match for m in ("input", "hidden.0", "readout")), (measured, predicted)


# --- a model the package has never seen --------------------------------------------------------------


class Pair(nn.Module):
    """Returns a tuple: a hidden feature and an integer count (tolerated, not recorded)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.mix = nn.Linear(width, width)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        out = self.mix(h)
        return out, (out > 0).sum()


class Nothing(nn.Module):
    def forward(self, h: Tensor) -> None:
        return None


class UserNet(nn.Module):
    """A user's network: conv stem, GELU module, tuple-returning block, LayerNorm, dict output."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.stem = nn.Conv1d(2, width, 3, padding=1)
        self.act = nn.GELU()
        self.pair = Pair(width)
        self.norm = nn.LayerNorm(width)
        self.nothing = Nothing()
        self.head = nn.Linear(width, 3)

    def forward(self, x: Tensor) -> dict[str, Any]:
        h = self.act(self.stem(x)).mean(dim=2)  # (B, w, L) -> (B, w)
        h, count = self.pair(h)
        self.nothing(h)
        logits = self.head(self.norm(torch.relu(h)))
        return {"logits": logits, "count": count, "label": logits.argmax(dim=1)}


def _user_loss(out: dict[str, Tensor], y: Tensor) -> Tensor:
    return F.cross_entropy(out["logits"].float(), y)


@pytest.fixture(scope="module")
def user_batch() -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(32, 2, 12, generator=g), torch.randint(0, 3, (32,), generator=g)


def test_user_model_through_the_api(user_batch: tuple[Tensor, Tensor], tmp_path: Any) -> None:
    result = coord_check(UserNet, user_batch, widths=(64, 128, 256), parameterization="mup", optimizer="adamw",
                         lr=1e-2, steps=2, seeds=(0, 1), loss_fn=_user_loss)
    info = {m.module: m for m in result.modules}
    # tuple and dict outputs are split; integers and None are skipped
    assert set(info) == {"stem", "act", "pair.mix", "pair[0]", "norm", "head", "<model>[logits]"}
    assert info["stem"].layer == "input" and info["pair.mix"].layer == "hidden" and info["head"].layer == "logits"
    assert info["act"].source == "elementwise of stem" and info["act"].layer == "input"
    assert info["pair[0]"].alias_of == "pair.mix" and info["<model>[logits]"].alias_of == "head"
    assert info["norm"].layer == "O(1)"  # not in the chain; muP predicts every activation O(1)
    assert len(result.records) == len(info) * 3 * 2 * 3  # outputs x widths x seeds x states 0..2
    assert all(math.isfinite(r.mean_abs) and r.mean_abs > 0 for r in result.records)
    assert all(r.mean_abs_delta == 0 for r in result.records if r.step == 0)

    # the data round-trips
    result.to_csv(tmp_path / "records.csv")
    result.to_csv(tmp_path / "fits.csv", table="fits")
    assert (tmp_path / "records.csv").read_text().startswith("module,width,seed,step,mean_abs,mean_abs_delta")
    again = CoordResult.from_json(result.to_json(tmp_path / "coord.json"))
    assert again.records == result.records and again.config == result.config
    assert [f.slope for f in again.fits if not math.isnan(f.slope)] == [
        f.slope for f in result.fits if not math.isnan(f.slope)]


def test_module_filters(user_batch: tuple[Tensor, Tensor]) -> None:
    by_type = coord_check(UserNet, user_batch, widths=(64, 128), steps=1, seeds=1, loss_fn=_user_loss,
                          modules=[nn.Linear])
    assert {m.module for m in by_type.modules} == {"pair.mix", "head"}
    by_name = coord_check(UserNet, user_batch, widths=(64, 128), steps=1, seeds=1, loss_fn=_user_loss,
                          modules=lambda name, m: name.startswith("pair"))
    assert {m.module for m in by_name.modules} == {"pair.mix", "pair[0]"}


def test_half_precision_hooks_and_separate_training_batches(user_batch: tuple[Tensor, Tensor]) -> None:
    """bfloat16 outputs are summed in float32; measuring a fixed batch while training on others."""
    x, y = user_batch
    train = [(torch.randn_like(x), y) for _ in range(2)]
    result = coord_check(lambda w: UserNet(w).to(torch.bfloat16), (x.bfloat16(), y), widths=(64, 128), steps=2,
                         seeds=1, loss_fn=_user_loss, train_batches=[(a.bfloat16(), b) for a, b in train])
    assert all(math.isfinite(r.mean_abs) and math.isfinite(r.mean_abs_delta) for r in result.records)
    assert any(r.mean_abs_delta > 0 for r in result.records if r.step == 2)


def test_fit_and_verdict() -> None:
    widths = [128, 256, 512, 1024] * 2
    slope, low, high = fit_slope(widths, [w**0.5 for w in widths])
    assert slope == pytest.approx(0.5) and low == pytest.approx(0.5) and high == pytest.approx(0.5)
    assert math.isnan(fit_slope([128, 128], [1.0, 2.0])[0])  # one width: no slope
    assert math.isnan(fit_slope([128, 256], [0.0, 0.0])[0])  # nothing positive to fit
    assert math.isnan(fit_slope([128, 256], [1.0, 2.0])[1])  # two points: no interval
    assert [verdict(s, 0.15) for s in (0.1, -0.1, 0.2, -0.2, math.nan)] == [
        "stable", "stable", "grows", "shrinks", "zero"]


def test_cli(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["coord-check", "--model", "question", "--widths", "64", "128", "256", "--zero-readout", "--steps", "2",
            "--seeds", "2",
            "--out", str(tmp_path), "--compare", "sp", "--fail-on-unstable"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "measured" in out and "predicted" in out and "verdict" in out
    names = {p.name for p in tmp_path.iterdir()}
    assert {"coord-question-mup-adam.json", "coord-question-mup-adam.csv", "coord-question-mup-adam-fits.csv",
            "coord-question-mup-adam.png", "coord-question-sp-vs-mup-adam.png"} <= names
    doc = json.loads((tmp_path / "coord-question-mup-adam.json").read_text())
    assert doc["config"]["widths"] == [64, 128, 256] and doc["fits"]


def test_cli_fails_when_a_predicted_stable_module_is_not(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """With tolerance 0 no slope is stable, so every module muP predicts stable fails the check."""
    args = ["coord-check", "--model", "question", "--widths", "32", "64", "--steps", "1", "--seeds", "1",
            "--out", str(tmp_path), "--no-plot", "--tol", "0"]
    assert main(args) == 0
    assert main([*args, "--fail-on-unstable"]) == 1
    assert "predicted stable and the interval says otherwise" in capsys.readouterr().out


@pytest.mark.parametrize("widths", [(128,), (128, 128, 128)])
def test_fewer_than_two_distinct_widths_is_refused(mlp_batch: tuple[Tensor, Tensor], widths: tuple[int, ...]) -> None:
    """One width (or one width repeated) has no slope to fit: refused before any training, not "passed"."""
    built: list[int] = []

    def builder(w: int) -> nn.Module:
        built.append(w)
        return MLP(w)

    with pytest.raises(ScalingError, match="two distinct widths"):
        coord_check(builder, mlp_batch, widths=widths, parameterization="mup", steps=1, seeds=1)
    assert built == []
    assert main(["coord-check", "--model", "mlp", "--widths", *map(str, widths), "--steps", "1"]) == 2


def test_cli_alignment(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """``--alignment`` measures each Linear's alignment exponent beside full (1) and none (1/2)."""
    args = ["coord-check", "--model", "mlp", "--widths", "64", "128", "256", "--steps", "2", "--seeds", "1",
            "--out", str(tmp_path), "--no-plot", "--alignment"]
    assert main(args) == 0
    assert "alignment per layer and step" in capsys.readouterr().out
    rows = (tmp_path / "alignment-mlp-mup-adam.csv").read_text().splitlines()
    assert rows[0].startswith("module,role,step,exponent,ci_low,ci_high,reading,alpha_w64")
    hidden = [r.split(",") for r in rows[1:] if r.startswith("hidden.0,")]
    assert len(hidden) == 2 and all(0.5 < float(r[3]) < 1.3 for r in hidden)

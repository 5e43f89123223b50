"""What a coordinate check's verdict rests on: enough widths, finite measurements, the theory's reach.

Each test here is a case a new user hit where the check read "passed" or "MISMATCH" for the wrong
reason: two widths read as an interval, a NaN read as "zero", a diverged width dropped without a
word, an SP prediction made through a LayerNorm the chain does not have, and a correct muP model
flagged by one noisy slope at narrow widths.
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import Tensor, nn

from scaling.cli import main
from scaling.coord import coord_check, verdict
from scaling.errors import ScalingWarning
from scaling.models import MLP

pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 40, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_verdict_rests_on_the_interval() -> None:
    tol = 0.15
    assert verdict(0.2, tol, 0.16, 0.24) == "grows" and verdict(-0.2, tol, -0.24, -0.16) == "shrinks"
    assert verdict(0.2, tol, 0.1, 0.3) == "inconclusive" and verdict(-0.2, tol, -0.3, -0.1) == "inconclusive"
    assert verdict(0.2, tol) == "grows"  # no interval: the slope alone
    assert verdict(0.1, tol, -1.0, 1.0) == "stable"


def test_two_widths_give_no_interval_and_say_so() -> None:
    """Two widths x two seeds leave two residual degrees of freedom, but they measure the seeds'
    scatter only, not whether a power law fits: no interval, and a note says the verdicts rest on the
    slope alone. Three widths give intervals and no such note."""
    two = coord_check(lambda w: MLP(w), _batch(16), widths=(64, 128), steps=1, seeds=2)
    assert all(math.isnan(f.ci_low) for f in two.fits)
    assert any("two widths" in n for n in two.notes) and "note: two widths" in two.table()
    three = coord_check(lambda w: MLP(w), _batch(16), widths=(64, 128, 256), steps=1, seeds=2)
    assert all(math.isfinite(f.ci_low) for f in three.fits if f.step == 1)
    assert not any("two widths" in n for n in three.notes)


def test_a_nan_in_the_batch_fails_instead_of_reading_zero() -> None:
    """One NaN input makes every output NaN: that is not "zero" (nothing to scale), it is a failure."""
    x, y = _batch(16)
    x[3, 5] = math.nan
    with pytest.warns(ScalingWarning, match="non-finite"):
        result = coord_check(lambda w: MLP(w), (x, y), widths=(64, 128, 256), steps=1, seeds=1)
    # (the change at step 0 is zero by definition)
    assert {f.verdict for f in result.fits if f.step or f.stat == "mean_abs"} == {"non-finite"}
    assert {f.module for f in result.unstable()} == {m.module for m in result.modules}
    assert ("readout", 256) in result.nonfinite()


class DivergesWhenWide(nn.Module):
    """The MLP, whose output is NaN at width 256: its loss, gradients and weights follow."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.net, self.width = MLP(width), width

    def forward(self, x: Tensor) -> Tensor:
        out = self.net(x)
        return out * math.nan if self.width == 256 else out


def test_a_width_dropped_for_nan_is_named_and_fails() -> None:
    """NaN at the widest width alone used to leave a fit from the other two reading "stable, matches"."""
    with pytest.warns(ScalingWarning, match=r"net.readout at width 256"):
        result = coord_check(DivergesWhenWide, _batch(16), widths=(64, 128, 256), steps=2, seeds=2)
    fit = result.fit("net.readout", 2)
    assert fit.dropped == (256,) and math.isfinite(fit.slope)  # fitted from 64 and 128, and it says so
    assert "dropped widths [256]" in result.table()
    assert fit in result.unstable()
    assert set(result.nonfinite()) == {(m.module, 256) for m in result.modules}
    assert result.fit("net.readout", 0).dropped == ()  # finite before the first update


def test_cli_fails_on_nonfinite(tmp_path: object, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "nanmodel.py").write_text(  # type: ignore[operator]
        "import math, torch\nfrom scaling.models import MLP\n"
        "def build(w):\n    return MLP(w)\n"
        "def batch():\n    g = torch.Generator().manual_seed(0)\n    x = torch.randn(16, 40, generator=g)\n"
        "    x[0, 0] = math.nan\n    return x, torch.randint(0, 10, (16,), generator=g)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["coord-check", "--model", "nanmodel:build", "--data", "nanmodel:batch", "--widths", "32", "64", "128",
            "--steps", "1", "--seeds", "1", "--no-plot", "--out", str(tmp_path)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScalingWarning)
        assert main(args) == 0
        assert main([*args, "--fail-on-unstable"]) == 1
    out = capsys.readouterr().out
    assert "non-finite measurements" in out and "input at width 32" in out


class RMSNorm(nn.Module):
    """A user's own RMSNorm (not torch's): recognized by its class name, as Llama's is."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))

    def forward(self, h: Tensor) -> Tensor:
        return self.weight * h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + 1e-6)


class NormedMLP(nn.Module):
    """input -> ReLU -> hidden -> norm -> ReLU -> readout."""

    def __init__(self, width: int, norm: type[nn.Module] = nn.LayerNorm) -> None:
        super().__init__()
        self.input, self.hidden, self.norm = nn.Linear(40, width), nn.Linear(width, width), norm(width)
        self.readout = nn.Linear(width, 10)

    def forward(self, x: Tensor) -> Tensor:
        return self.readout(torch.relu(self.norm(self.hidden(torch.relu(self.input(x))))))


@pytest.mark.parametrize("norm", [nn.LayerNorm, RMSNorm])
def test_sp_predictions_stop_at_a_normalization_layer(norm: type[nn.Module]) -> None:
    """The chain predicts SP+Adam logits growing like n^1.5, and without a norm they do (+1.46 at
    the check's default LR, tests/test_coord.py). Behind a norm, whose change saturates as the
    hidden update outgrows the hidden init, they measure about +0.77, and the chain's prediction would
    read MISMATCH on a healthy SP control. Below the norm no prediction is made; above it the
    chain's stand."""
    result = coord_check(lambda w: NormedMLP(w, norm), _batch(64), widths=(128, 256, 512, 1024),
                         parameterization="sp", optimizer="adam", lr=1e-2, steps=1, seeds=2)
    readout = result.fit("readout", 1)
    assert readout.predicted is None and readout.match is None
    assert abs(readout.slope - 1.5) > 0.25  # what the chain would have predicted misses
    info = {m.module: m for m in result.modules}
    assert "after norm" in info["readout"].source and info["<model>"].prediction is None
    assert result.fit("hidden", 1).predicted == 1.0 and result.fit("hidden", 1).match  # above the norm
    assert not [f for f in result.fits if f.stat == "mean_abs_delta" and f.match is False]
    mup = coord_check(lambda w: NormedMLP(w, norm), _batch(16), widths=(64, 128), steps=1, seeds=1)
    assert mup.fit("readout", 1).predicted == 0.0  # maximal update: O(1) through a norm too


def test_correct_mup_at_narrow_widths_is_not_flagged_by_one_noisy_slope() -> None:
    """muP MLP, widths 32..128, a batch of 128 (as many tokens as the widest width): the readout's
    size at step 3 measures a slope of about +0.2 with an interval reaching below 0.15. It used to
    fail the check; it reads inconclusive, and a note says the batch is large for these widths."""
    result = coord_check(lambda w: MLP(w), _batch(128), widths=(32, 64, 128), parameterization="mup",
                         optimizer="adam", lr=1e-2, steps=3, seeds=2)
    fit = result.fit("readout", 3, "mean_abs")
    assert fit.slope > result.config.tol and fit.ci_low < result.config.tol
    assert fit.verdict == "inconclusive" and fit in result.inconclusive()
    assert not result.unstable()
    assert any("the batch has 128 tokens" in n for n in result.notes)
    small = coord_check(lambda w: MLP(w), _batch(16), widths=(32, 64, 128), steps=1, seeds=1)
    assert not any("tokens" in n for n in small.notes)

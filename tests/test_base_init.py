"""parameterize(init="base"): a model with its own init (nanoGPT's N(0, 0.02) at every width) is scaled
relative to the base model's init; the default init="pytorch" warns when the init does not scale like
PyTorch's 1/sqrt(fan_in), which the table multiplies."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import scaling


class TinyGPT(nn.Module):
    """nanoGPT's init: every Linear and Embedding weight N(0, 0.02) whatever the width, biases zero."""

    def __init__(self, d: int, vocab: int = 48, own_init: bool = True) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.fc = nn.Linear(d, 4 * d)
        self.proj = nn.Linear(4 * d, d)
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        if own_init:
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, 0.0, 0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.wte(idx)
        h = h + self.proj(torch.relu(self.fc(h)))
        return self.head(self.ln(h))


def _std(t: torch.Tensor) -> float:
    return float(t.detach().double().std(correction=0))


def _init_warnings(model: nn.Module, base: object, **kwargs: object) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scaling.parameterize(model, base=base, **kwargs)  # type: ignore[arg-type]
    return [w for w in caught if issubclass(w.category, scaling.InitScalingWarning)]


def test_base_init_scales_relative_to_the_base_std() -> None:
    base, model = TinyGPT(32), TinyGPT(128)  # width ratio 4
    plan = scaling.parameterize(model, base=base, init="base")
    b, m = dict(base.named_parameters()), dict(model.named_parameters())
    # muP (TP-V Table 3): hidden std ~ 1/sqrt(fan_in), readout ~ 1/fan_in, embedding O(1), relative to base.
    for name, factor in [("fc.weight", 0.5), ("proj.weight", 0.5), ("head.weight", 0.25), ("wte.weight", 1.0)]:
        assert _std(m[name]) == pytest.approx(_std(b[name]) * factor, rel=1e-5), name
        assert plan.init_multiplier(name) == pytest.approx(factor)
    assert _std(m["fc.weight"]) == pytest.approx(0.01, rel=0.02)  # not nanoGPT's 0.02 at every width
    assert torch.equal(m["ln.weight"], torch.ones(128)) and not m["fc.bias"].any()
    assert "base model's init" in plan.table()


def test_default_mode_leaves_a_fixed_init_unscaled_and_warns() -> None:
    model = TinyGPT(128)
    caught = _init_warnings(model, TinyGPT(32))
    assert _std(model.fc.weight) == pytest.approx(0.02, rel=0.02)  # what init="base" fixes
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "'fc.weight'" in message and "init='base'" in message
    assert caught[0].filename == __file__


@pytest.mark.parametrize("base", ["module", "builder"])
def test_no_init_warning_for_pytorch_default_init(base: str) -> None:
    spec = TinyGPT(32, own_init=False) if base == "module" else (lambda: TinyGPT(32, own_init=False))
    assert _init_warnings(TinyGPT(128, own_init=False), spec) == []


def test_builder_base_is_measured_outside_the_global_rng() -> None:
    model = TinyGPT(128)
    state = torch.get_rng_state()
    assert len(_init_warnings(model, lambda: TinyGPT(32))) == 1
    assert torch.equal(torch.get_rng_state(), state)
    fresh = TinyGPT(128)
    scaling.parameterize(fresh, base=lambda: TinyGPT(32), init="base")
    assert _std(fresh.fc.weight) == pytest.approx(0.01, rel=0.02)


def test_base_init_at_base_width_is_the_base() -> None:
    torch.manual_seed(1)
    base = TinyGPT(32)
    torch.manual_seed(1)
    same = TinyGPT(32)
    before = {n: p.detach().clone() for n, p in same.named_parameters()}
    scaling.parameterize(same, base=base, delta=TinyGPT(64), init="base")
    for n, p in same.named_parameters():
        assert torch.equal(p, before[n]), n  # the same draw: bit for bit untouched
    other = TinyGPT(32)  # another draw at base width: each std becomes the base's
    scaling.parameterize(other, base=base, delta=TinyGPT(64), init="base")
    for (n, p), q in zip(other.named_parameters(), base.parameters()):
        assert _std(p) == pytest.approx(_std(q), rel=1e-6, abs=1e-12), n


def test_base_init_needs_base_weights() -> None:
    shapes = {n: tuple(p.shape) for n, p in TinyGPT(32).named_parameters()}
    with pytest.raises(scaling.ScalingError, match="init='base'"):
        scaling.parameterize(TinyGPT(64), base=shapes, init="base")
    with torch.device("meta"):
        meta = TinyGPT(32)
    with pytest.raises(scaling.ScalingError, match="meta device"):
        scaling.parameterize(TinyGPT(64), base=meta, init="base")
    with pytest.raises(scaling.ScalingError, match="unknown init mode"):
        scaling.parameterize(TinyGPT(64), base=TinyGPT(32), init="nanogpt")  # type: ignore[arg-type]
    plan = scaling.parameterize(TinyGPT(64), base=shapes, init="base", rescale=False)  # nothing to measure
    assert plan.init_multiplier("fc.weight") == pytest.approx(2**-0.5)


def test_coord_check_of_a_model_with_its_own_init() -> None:
    """The coordinate check passes init= to parameterize: with init="base" nanoGPT-style N(0, 0.02)
    weights shrink with width as muP's init says and every module keeps its size; with the default
    the hidden projections are left at 0.02, and the check says so (an InitScalingWarning) and fails."""
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(0, 48, (4, 16), generator=g)
    batch = (idx, torch.roll(idx, -1, dims=1))
    common = {"widths": (64, 128, 256, 512), "steps": 3, "seeds": 2, "parameterization": "mup"}
    own = scaling.coord_check(TinyGPT, batch, init="base", **common)
    assert not own.unstable(), own.table()
    with pytest.warns(scaling.InitScalingWarning):
        default = scaling.coord_check(TinyGPT, batch, **common)
    assert default.unstable()
    with pytest.raises(scaling.ScalingError, match="init must be one of"):
        scaling.coord_check(TinyGPT, batch, init="xavier", **common)


def test_transposed_convolution_init_follows_the_table() -> None:
    """torch draws a ConvTranspose1d weight (in, out, k) with its fan-in read from dimension 1 (the output
    channels), so its std does not shrink with the input channels; muP's readout init (Table 3, std ~
    1/fan_in) must still hold: std(width 64) / std(width 16) = 1/4, with no own-init warning."""

    class Up(nn.Module):
        def __init__(self, w: int) -> None:
            super().__init__()
            self.conv = nn.Conv1d(1, w, 3)
            self.up = nn.ConvTranspose1d(w, 3, 3)  # a readout: fan-in w, fan-out 3

    stds = {}
    for w in (16, 64):
        torch.manual_seed(0)
        model = Up(w)
        with warnings.catch_warnings():
            warnings.simplefilter("error", scaling.InitScalingWarning)
            plan = scaling.parameterize(model, base=lambda: Up(16), delta=lambda: Up(32), parameterization="mup")
        stds[w] = _std(model.up.weight)
    assert plan.widths["up.weight"].role == "output" and plan.init_multiplier("up.weight") == pytest.approx(0.25)
    assert stds[64] / stds[16] == pytest.approx(0.25, rel=0.1)

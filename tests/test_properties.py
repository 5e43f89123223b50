"""Property tests over random MLP and CNN shapes: the exponent table, applied to any architecture.

Hypothesis draws an architecture (MLP or 1-D CNN, 1-3 widths, each with its own base size, some 4x
wider like a transformer's FFN, and a width multiplier 1-8, shared or per width, so fan-in and
fan-out multipliers may differ). The expected values are written out below from TP-V Tables 3 and 8
(and TP-IV for NTK, Everett et al. 2024 for MFP), independently of :mod:`scaling.table`, and compared
with what :func:`scaling.parameterize` does. Seeded: ``derandomize=True`` and ``torch.manual_seed``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import Tensor, nn

import scaling

ROWS = ("sp", "ntk", "mfp", "mup", "mup-table8")
FAST = settings(max_examples=60, deadline=None, derandomize=True)

# The architectures draw a multiplier per width (and multiplier 1) on purpose: what ScalingWarning's "width
# multipliers differ across the model" and "every parameter has its base shape" are for is the point here.
pytestmark = [pytest.mark.filterwarnings("ignore:the width multipliers:scaling.errors.ScalingWarning"),
              pytest.mark.filterwarnings("ignore:every parameter has its base shape:scaling.errors.ScalingWarning")]


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Small models run as fast on one thread, and steadily when other processes load the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Net(nn.Module):
    """``in -> widths[0] -> ... -> widths[-1] -> out``: Linear layers, or Conv1d layers then mean pooling."""

    def __init__(self, kind: str, in_dim: int, widths: tuple[int, ...], out_dim: int, kernel: int) -> None:
        super().__init__()
        self.kind = kind
        dims = (in_dim, *widths)
        self.body = nn.ModuleList(
            nn.Linear(a, b) if kind == "mlp" else nn.Conv1d(a, b, kernel, padding=kernel // 2)
            for a, b in itertools.pairwise(dims)
        )
        self.readout = nn.Linear(widths[-1], out_dim)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.body:
            x = F.relu(layer(x))  # (B, w) or (B, w, L)
        return self.readout(x if self.kind == "mlp" else x.mean(dim=2))


@dataclass(frozen=True)
class Arch:
    """An architecture at base width and the width multiplier of each width."""

    kind: str
    in_dim: int
    out_dim: int
    base: tuple[int, ...]
    mult: tuple[int, ...]
    kernel: int = 1

    def build(self, scale: tuple[int, ...] | None = None, seed: int = 0) -> Net:
        scale = scale if scale is not None else self.mult
        torch.manual_seed(seed)
        return Net(self.kind, self.in_dim, tuple(b * m for b, m in zip(self.base, scale)), self.out_dim, self.kernel)

    def base_builder(self) -> Callable[[], Net]:
        return lambda: self.build(scale=(1,) * len(self.base))

    def delta_builder(self) -> Callable[[], Net]:
        return lambda: self.build(scale=(2,) * len(self.base))

    def input(self) -> Tensor:
        g = torch.Generator().manual_seed(1)
        shape = (3, self.in_dim) if self.kind == "mlp" else (3, self.in_dim, 7)
        return torch.randn(shape, generator=g)

    def expected(self, with_delta: bool) -> dict[str, tuple[str, float, float]]:
        """Parameter name -> (role, m_in, m_out), read from which dimensions grew.

        Without a delta model a width is infinite when it grew (multiplier > 1); with one, always.
        """
        infinite = [with_delta or m > 1 for m in self.mult]
        out: dict[str, tuple[str, float, float]] = {}
        layers = [(f"body.{i}", i - 1, i) for i in range(len(self.base))] + [("readout", len(self.base) - 1, None)]
        for name, fan_in, fan_out in layers:
            in_inf = fan_in >= 0 and infinite[fan_in]
            out_inf = fan_out is not None and infinite[fan_out]
            m_in = float(self.mult[fan_in]) if in_inf else 1.0
            m_out = float(self.mult[fan_out]) if out_inf and fan_out is not None else 1.0
            role = {(True, True): "hidden", (True, False): "output", (False, True): "input"}.get(
                (in_inf, out_inf), "finite"
            )
            out[f"{name}.weight"] = (role, m_in, m_out)
            out[f"{name}.bias"] = ("vector" if out_inf else "finite", m_in, m_out)
        return out


@st.composite
def archs(draw: st.DrawFn, max_mult: int = 8) -> Arch:
    kind = draw(st.sampled_from(["mlp", "cnn"]))
    depth = draw(st.integers(1, 3))
    base = tuple(draw(st.sampled_from([4, 8, 16])) * draw(st.sampled_from([1, 1, 4])) for _ in range(depth))
    if draw(st.booleans()):
        mult = (draw(st.integers(1, max_mult)),) * depth  # one width multiplier, as usual
    else:
        mult = tuple(draw(st.integers(1, max_mult)) for _ in range(depth))  # non-square multipliers
    kernel = draw(st.sampled_from([1, 3])) if kind == "cnn" else 1
    return Arch(kind, draw(st.integers(1, 6)), draw(st.integers(1, 5)), base, mult, kernel)


def base_width_archs() -> st.SearchStrategy[Arch]:
    return archs().map(lambda a: Arch(a.kind, a.in_dim, a.out_dim, a.base, (1,) * len(a.base), a.kernel))


# The exponent table written out per role as functions of (m_in, m_out): TP-V Table 3 (mup), Table 8
# (mup-table8: readout multiplier 1/m_in), TP-IV §3 (ntk, one global SGD LR; Adam's LR gives SGD's
# update size), Everett et al. 2024 (mfp = muP with O(1) init everywhere).
F2 = Callable[[float, float], float]
one: F2 = lambda i, o: 1.0  # noqa: E731
LR: dict[tuple[str, str], dict[str, F2]] = {
    ("sp", "sgd"): {},
    ("sp", "adam"): {},
    ("mup", "sgd"): {"input": lambda i, o: o, "hidden": lambda i, o: o / i, "output": lambda i, o: 1 / i,
                     "vector": lambda i, o: o},
    ("mup", "adam"): {"hidden": lambda i, o: 1 / i, "output": lambda i, o: 1 / i},
    ("mup-table8", "sgd"): {"input": lambda i, o: o, "hidden": lambda i, o: o / i, "output": lambda i, o: i,
                            "vector": lambda i, o: o},
    ("mup-table8", "adam"): {"hidden": lambda i, o: 1 / i},
    ("ntk", "sgd"): {},
    ("ntk", "adam"): {"input": lambda i, o: o**-0.5, "hidden": lambda i, o: (i * o) ** -0.5,
                      "output": lambda i, o: i**-0.5, "vector": lambda i, o: o**-0.5},
    ("mfp", "sgd"): {"input": lambda i, o: o, "hidden": lambda i, o: o, "output": lambda i, o: i,
                     "vector": lambda i, o: o},
    ("mfp", "adam"): {"hidden": lambda i, o: i**-0.5},
}
INIT: dict[str, dict[str, F2]] = {  # factor on PyTorch's default init
    "sp": {},
    "mup": {"output": lambda i, o: i**-0.5, "vector": lambda i, o: i**0.5, "finite": lambda i, o: i**0.5},
    "mup-table8": {"output": lambda i, o: i**0.5, "vector": lambda i, o: i**0.5, "finite": lambda i, o: i**0.5},
    "ntk": {"hidden": lambda i, o: i**0.5, "output": lambda i, o: i**0.5, "vector": lambda i, o: i**0.5,
            "finite": lambda i, o: i**0.5},
    "mfp": {"hidden": lambda i, o: i**0.5, "output": lambda i, o: i**0.5, "vector": lambda i, o: i**0.5,
            "finite": lambda i, o: i**0.5},
}
MULTIPLIER: dict[str, dict[str, F2]] = {  # forward multiplier of the layer owning a weight
    "sp": {}, "mup": {},
    "mup-table8": {"output": lambda i, o: 1 / i},
    "ntk": {"hidden": lambda i, o: i**-0.5, "output": lambda i, o: i**-0.5},
    "mfp": {"hidden": lambda i, o: i**-0.5, "output": lambda i, o: 1 / i},
}


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12)


@FAST
@given(arch=base_width_archs(), row=st.sampled_from(ROWS), optimizer=st.sampled_from(["sgd", "adam"]),
       with_delta=st.booleans())
def test_base_width_is_pytorch_default_bit_for_bit(arch: Arch, row: str, optimizer: str, with_delta: bool) -> None:
    """At multiplier 1 every row leaves weights and outputs bit-identical and every factor exactly 1
    (with a delta model the widths are infinite, so the table's formulas do run)."""
    model, reference = arch.build(), arch.build()
    delta = arch.delta_builder() if with_delta else None
    plan = scaling.parameterize(model, arch.base_builder(), delta=delta, parameterization=row, optimizer=optimizer)
    for (n, p), q in zip(model.named_parameters(), reference.parameters()):
        assert torch.equal(p, q), n
        assert plan.init_multiplier(n) == 1.0
        assert plan.lr_multiplier(n) == 1.0
        assert plan.eps_multiplier(n) == 1.0
        assert plan.weight_decay_multiplier(n) == 1.0
    assert plan.multipliers == {}
    assert torch.equal(model(arch.input()), reference(arch.input()))
    groups = plan.param_groups(lr=0.1, weight_decay=0.01)
    assert len(groups) == 1
    assert groups[0]["lr"] == 0.1
    assert groups[0]["weight_decay"] == 0.01


@FAST
@given(arch=archs(), row=st.sampled_from(ROWS), with_delta=st.booleans())
def test_roles_and_multipliers_follow_which_dims_grew(arch: Arch, row: str, with_delta: bool) -> None:
    model = arch.build()
    delta = arch.delta_builder() if with_delta else None
    plan = scaling.parameterize(model, arch.base_builder(), delta=delta, parameterization=row)
    expected = arch.expected(with_delta)
    assert plan.widths.keys() == expected.keys()
    for n, (role, m_in, m_out) in expected.items():
        w = plan.widths[n]
        assert (w.role, w.m_in, w.m_out) == (role, m_in, m_out), n


@FAST
@given(arch=archs(), row=st.sampled_from(ROWS), with_delta=st.booleans())
def test_lr_eps_and_forward_multipliers_match_the_table(arch: Arch, row: str, with_delta: bool) -> None:
    """Per-layer LR for SGD and Adam, Adam's epsilon (scaled like the gradient, i.e. as the ratio of
    the Adam and SGD learning rates) and the forward multipliers, in closed form per role."""
    model = arch.build()
    delta = arch.delta_builder() if with_delta else None
    plan = scaling.parameterize(model, arch.base_builder(), delta=delta, parameterization=row)
    forward: dict[str, float] = {}
    for n, (role, i, o) in arch.expected(with_delta).items():
        sgd, adam = LR[row, "sgd"].get(role, one)(i, o), LR[row, "adam"].get(role, one)(i, o)
        assert close(plan.lr_multiplier(n, "sgd"), sgd), n
        assert close(plan.lr_multiplier(n, "adam"), adam), n
        assert close(plan.eps_multiplier(n), adam / sgd), n
        assert close(plan.init_multiplier(n), INIT[row].get(role, one)(i, o)), n
        if n.endswith(".weight"):
            alpha = MULTIPLIER[row].get(role, one)(i, o)
            if alpha != 1.0:
                forward[n.removesuffix(".weight")] = alpha
    assert plan.multipliers.keys() == forward.keys()
    assert all(close(plan.multipliers[k], v) for k, v in forward.items())


@FAST
@given(arch=archs(), row=st.sampled_from(ROWS), optimizer=st.sampled_from(["sgd", "adam"]),
       mode=st.sampled_from(["coupled", "independent"]),
       no_decay=st.sets(st.sampled_from(["vector", "finite", "output"])))
def test_param_groups_partition_the_parameters(
    arch: Arch, row: str, optimizer: str, mode: str, no_decay: set[str]
) -> None:
    """Every parameter in exactly one group, with its own LR; parameters that share hyperparameters
    share a group (so foreach and fused optimizers see few groups)."""
    model = arch.build()
    plan = scaling.parameterize(model, arch.base_builder(), parameterization=row, weight_decay=mode)  # type: ignore[arg-type]
    groups = plan.param_groups(optimizer, lr=0.01, weight_decay=0.1, no_decay=no_decay)  # type: ignore[arg-type]
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    group_of = {id(p): g for g in groups for p in g["params"]}
    for n, p in model.named_parameters():
        assert close(group_of[id(p)]["lr"], 0.01 * plan.lr_multiplier(n, optimizer)), n
        if plan.widths[n].role in no_decay:
            assert group_of[id(p)]["weight_decay"] == 0.0, n
    keys = [(g["lr"], g["weight_decay"], g.get("eps")) for g in groups]
    assert len(set(keys)) == len(keys)


@FAST
@given(arch=archs(), row=st.sampled_from(ROWS))
def test_init_is_the_default_times_the_table_factor(arch: Arch, row: str) -> None:
    """Elementwise: the parameterized weights are PyTorch's draw (same seed) times the table's factor."""
    model, reference = arch.build(), arch.build()
    scaling.parameterize(model, arch.base_builder(), parameterization=row)
    expected = arch.expected(with_delta=False)
    for (n, p), q in zip(model.named_parameters(), reference.parameters()):
        role, i, o = expected[n]
        torch.testing.assert_close(p, q * INIT[row].get(role, one)(i, o), rtol=1e-6, atol=0, msg=n)


def std_ratio_tolerance(n_target: int, n_base: int, sigmas: float = 5.0) -> float:
    """Relative tolerance on a ratio of two sample stds of uniform entries (PyTorch's default init).

    The sample std of n draws has relative standard error sqrt((kurtosis - 1) / 4n), and a uniform
    distribution has kurtosis 9/5.
    """
    return sigmas * math.sqrt(0.2 / n_target + 0.2 / n_base)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(arch=archs(), row=st.sampled_from(ROWS))
def test_init_std_scales_as_the_table_says(arch: Arch, row: str) -> None:
    """Statistically: std(target) / std(base) is the table's factor times PyTorch's own
    ``1/sqrt(fan_in)`` scaling, i.e. ``m_in ** -1/2`` for Linear and Conv weights and biases.

    Entries are pooled over a few seeds; tensors with fewer than 256 pooled entries are left to the
    elementwise test above.
    """
    seeds = range(4)
    targets = [arch.build(seed=s) for s in seeds]
    for t in targets:
        scaling.parameterize(t, arch.base_builder(), parameterization=row)
    bases = [arch.build(scale=(1,) * len(arch.base), seed=100 + s) for s in seeds]
    expected = arch.expected(with_delta=False)
    for n, (role, i, o) in expected.items():
        a = torch.cat([t.get_parameter(n).detach().flatten() for t in targets])
        b = torch.cat([m.get_parameter(n).detach().flatten() for m in bases])
        if min(a.numel(), b.numel()) < 256:
            continue
        ratio = (a.std() / b.std()).item()
        predicted = INIT[row].get(role, one)(i, o) * i**-0.5
        assert math.isclose(ratio, predicted, rel_tol=std_ratio_tolerance(a.numel(), b.numel())), (n, ratio, predicted)

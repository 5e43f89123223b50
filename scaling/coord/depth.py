"""Depth coordinate checks: how the residual stream and each block's update scale with depth.

At a fixed width, for depths ``L`` (powers of two) and seeds, :func:`depth_coord_check` parameterizes
``builder(L)`` against ``builder(base_depth)`` with each row of the table, trains ``T`` steps on a
fixed batch and records, at states ``t = 0..T``:

- ``stream``: the final residual stream ``h`` (the input of the first module run after the last
  residual unit: a pre-LN network's final norm), ``mean|h_t|`` and ``mean|h_t - h_0|``;
- ``block``: each unit's contribution to the stream (a :class:`scaling.nn.ResidualBlock`'s output minus
  its input; a branch's output, its multiplier included), ``mean|d_t|`` and ``mean|d_t - d_0|``
  averaged over the units.

Per row, quantity, statistic and step it fits ``log2(stat) = s log2(L) + c`` over depths and seeds
(with the 95% t-interval of :func:`scaling.coord.fit.fit_slope`) and sets ``s`` beside the exponent
the theory predicts (:func:`predicted`). CompleteP (Dey et al. 2025, §4) runs this check at depths
2..64, width 256, 10 steps, 3 seeds: the final stream flat under both depth rules, growing under SP
and muP.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from scaling import nn as snn
from scaling.coord.fit import fit_slope, verdict
from scaling.data import loss_fn as default_loss_fn
from scaling.depth import find_units
from scaling.errors import ScalingError
from scaling.optim import optimizer_spec
from scaling.plan import parameterize
from scaling.shapes import build_on_meta
from scaling.table import FAMILIES, get_parameterization
from scaling.text import format_table

Quantity = Literal["stream", "block"]
DepthStat = Literal["mean_abs", "mean_abs_delta"]
QUANTITIES: tuple[Quantity, ...] = ("stream", "block")
DEPTH_STATS: tuple[DepthStat, ...] = ("mean_abs", "mean_abs_delta")


@dataclass(frozen=True)
class DepthCoordConfig:
    """What a depth coordinate check runs: depths, rows, optimizer, learning rate, steps and seeds."""

    depths: tuple[int, ...] = (2, 4, 8, 16, 32)
    base_depth: int | None = None  # default: the shallowest depth
    parameterizations: tuple[str, ...] = ("sp", "mup", "depth-mup", "completep")
    optimizer: str = "adam"
    lr: float = 1e-2
    steps: int = 10
    seeds: tuple[int, ...] = (0, 1, 2)
    tol: float = 0.15

    def __post_init__(self) -> None:
        if len(set(self.depths)) < 2 or min(self.depths) < 1:
            raise ScalingError(f"a depth check fits a slope across depths: give at least two distinct positive "
                               f"depths (three for an interval), got {list(self.depths)}")
        if self.base_depth is not None and self.base_depth > min(self.depths):
            raise ScalingError(f"base_depth {self.base_depth} is deeper than the shallowest depth {min(self.depths)}")
        if self.steps < 1 or not self.seeds:
            raise ScalingError("a depth check needs at least one step and one seed")
        for p in self.parameterizations:
            get_parameterization(p)

    @property
    def base(self) -> int:
        """The base depth: ``base_depth``, or the shallowest depth."""
        return self.base_depth if self.base_depth is not None else min(self.depths)


@dataclass(frozen=True)
class DepthRecord:
    """One measurement: a row, depth, seed, state, quantity and its two statistics."""

    parameterization: str
    depth: int
    seed: int
    step: int
    quantity: Quantity
    mean_abs: float
    mean_abs_delta: float


@dataclass(frozen=True)
class DepthFit:
    """The depth exponent of one row, quantity, statistic and step, beside the theory's."""

    parameterization: str
    quantity: Quantity
    stat: DepthStat
    step: int
    slope: float
    ci_low: float
    ci_high: float
    predicted: float | None
    verdict: str


def predicted(parameterization: str, quantity: Quantity, stat: DepthStat, step: int,
              optimizer: str = "adam") -> float | None:
    """The exponent of ``L`` the theory gives a statistic, for Adam-like (normalized) updates.

    A pre-LN stream ``h_L = h_0 + sum_l m_L^-alpha F_l`` (``alpha = 0`` for a row without a depth
    rule), each ``F_l`` O(1) at init and independent across blocks, its updates coherent:

    - at init, ``|h_L| ~ sqrt(1 + L^(1 - 2 alpha))``: exponent ``1/2`` without a depth rule
      (asymptotically), 0 with ``alpha >= 1/2``;
    - after a step, each block's own weights move ``F_l`` by the in-branch LR, ``m_L^(alpha-1)`` under a
      depth rule (1 without: SP and muP scale no LR with depth), so its contribution by ``L^-1`` (``L^0``
      without), coherent over ``L`` blocks: ``|h_t - h_0| ~ L^0`` under a depth rule, ``L`` without
      (Yang et al. 2023, TP-VI, §3; Dey et al. 2025, §3);
    - a block's own change also carries its input's, ``m_L^-alpha x O(1)``: ``|d_t - d_0| ~ L^-alpha``
      under a depth rule with ``alpha <= 1`` (at ``alpha = 1/2`` the input's change dominates, the
      "lazy" blocks CompleteP's §3 names; at ``alpha = 1`` both are ``L^-1``), ``L^0`` without;
      ``|d_t|`` is the init's size then: ``L^-alpha``.

    ``None`` for SGD (the gradient's size through a growing stream is not derived here).
    """
    if FAMILIES[optimizer_spec(optimizer).family].gradient_power != 0:
        return None
    rule = get_parameterization(parameterization).depth
    alpha = 0.0 if rule is None else rule.alpha
    if quantity == "stream":
        if alpha >= 0.5:
            return 0.0
        if stat == "mean_abs" and step == 0:
            return 0.5 - alpha
        return 1.0 - alpha
    if stat == "mean_abs_delta" and step == 0:
        return None
    return -min(alpha, 1.0) if alpha else 0.0  # not -0.0 in the table


@dataclass
class DepthCoordResult:
    """Records and fits of a depth coordinate check; ``table()`` prints them, ``plot()`` draws them."""

    config: DepthCoordConfig
    records: list[DepthRecord]
    fits: list[DepthFit] = field(default_factory=list)

    def fit(self, parameterization: str, quantity: Quantity, step: int, stat: DepthStat = "mean_abs_delta") -> DepthFit:
        """The fit of one row, quantity, step and statistic."""
        for f in self.fits:
            if (f.parameterization, f.quantity, f.step, f.stat) == (parameterization, quantity, step, stat):
                return f
        raise ScalingError(f"no fit for {parameterization} {quantity} {stat} at step {step}")

    def table(self, steps: Iterable[int] | None = None) -> str:
        """The fits at ``steps`` (default: the last) as a text table."""
        chosen = set(steps) if steps is not None else {self.config.steps}
        rows = [{"row": f.parameterization, "quantity": f.quantity, "stat": f.stat, "step": f.step,
                 "slope": f.slope, "95% interval": _interval(f),
                 "predicted": "-" if f.predicted is None else f.predicted, "verdict": f.verdict}
                for f in self.fits if f.step in chosen]
        return format_table(rows)

    def to_json(self, path: str | Path) -> Path:
        """Write config, records and fits as JSON (NaN as null)."""
        path = Path(path)
        data = {"config": asdict(self.config), "records": [asdict(r) for r in self.records],
                "fits": [{k: _finite_or_none(v) for k, v in asdict(f).items()} for f in self.fits]}
        path.write_text(json.dumps(data, indent=1))
        return path

    @classmethod
    def from_json(cls, path: str | Path) -> DepthCoordResult:
        """Read a result written by :meth:`to_json`."""
        data = json.loads(Path(path).read_text())
        fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data["config"].items()}
        config = DepthCoordConfig(**fields)
        records = [DepthRecord(**r) for r in data["records"]]
        fits = []
        for f in data["fits"]:
            values: dict[str, Any] = {k: (math.nan if v is None and k in ("slope", "ci_low", "ci_high") else v)
                                      for k, v in f.items()}
            fits.append(DepthFit(**values))
        return cls(config, records, fits)

    def plot(self, path: str | Path | None = None, step: int | None = None) -> Any:
        """Statistic vs depth per row (log-log), the final stream and the block updates at ``step``."""
        from scaling.coord.depth_plot import plot_depth

        return plot_depth(self, path, self.config.steps if step is None else step)


def _interval(f: DepthFit) -> str:
    return "-" if math.isnan(f.ci_low) else f"[{f.ci_low:.2f}, {f.ci_high:.2f}]"


def _finite_or_none(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


class _Probe:
    """Hooks recording the final stream (the input of the module run after the last unit) and each
    unit's contribution, per state, as ``(mean|x|, mean|x - x_0|)``."""

    def __init__(self, model: nn.Module, states: int) -> None:
        units = find_units(model)
        if not units:
            raise ScalingError("the model has no residual branch marked: build its blocks from "
                               "scaling.nn.ResidualBlock (or Branch), or set scaling_branches on its class")
        self.units = units
        self.blocks = torch.zeros(states, len(units), 2, dtype=torch.float64)
        self.stream = torch.zeros(states, 2, dtype=torch.float64)
        self.state: int | None = None
        self._first: dict[int, Tensor] = {}
        self._stream0: Tensor | None = None
        self._after: nn.Module | None = None
        self._last_done = False
        inside = {id(m) for u in units for m in u.module.modules()}
        self._handles = [u.module.register_forward_hook(self._unit_hook(i, isinstance(u.module, snn.ResidualBlock)))
                         for i, u in enumerate(units)]
        self._handles += [m.register_forward_pre_hook(self._pre_hook)
                          for m in model.modules() if id(m) not in inside and m is not model]
        self._last = units[-1].module

    def _unit_hook(self, i: int, residual_block: bool) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple[Any, ...], output: Tensor) -> None:
            if self.state is None:
                return
            with torch.no_grad():
                d = (output - args[0]) if residual_block else output
                d = d.detach().double()
                if self.state == 0:
                    self._first[i] = d.clone()
                self.blocks[self.state, i, 0] = d.abs().mean()
                self.blocks[self.state, i, 1] = (d - self._first[i]).abs().mean()
            if module is self._last:
                self._last_done = True
        return hook

    def _pre_hook(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        if self.state is None or not self._last_done:
            return
        self._last_done = False
        if self._after is None:
            self._after = module
        if module is not self._after or not args or not isinstance(args[0], Tensor):
            return
        with torch.no_grad():
            h = args[0].detach().double()
            if self.state == 0:
                self._stream0 = h.clone()
            assert self._stream0 is not None
            self.stream[self.state, 0] = h.abs().mean()
            self.stream[self.state, 1] = (h - self._stream0).abs().mean()

    def close(self) -> None:
        for h in self._handles:
            h.remove()
        if self._after is None:
            raise ScalingError("no module runs after the last residual unit, so the final stream cannot be read: "
                               "give the model a final norm or readout module after its blocks")


def depth_coord_check(
    builder: Callable[[int], nn.Module],
    batch: tuple[Any, Any],
    config: DepthCoordConfig | None = None,
    *,
    loss_fn: Callable[[Any, Any], Tensor] = default_loss_fn,
    progress: bool = False,
    **options: Any,
) -> DepthCoordResult:
    """Run a depth coordinate check of ``builder`` (``depth -> nn.Module`` at a fixed width).

    >>> result = depth_coord_check(lambda L: GPT(GPTConfig(d_model=64, n_layers=L)), batch)
    >>> print(result.table())

    ``options`` (the field names of :class:`DepthCoordConfig`) override ``config``. The model's
    residual units are read as :func:`scaling.parameterize` reads them (:mod:`scaling.depth`).
    """
    for key in ("depths", "seeds", "parameterizations"):
        if key in options:
            options[key] = tuple(options[key])
    config = DepthCoordConfig(**{**asdict(config or DepthCoordConfig()), **options})
    spec = optimizer_spec(config.optimizer)
    if not find_units(build_on_meta(lambda: builder(config.base))):
        raise ScalingError("the model has no residual branch marked: build its blocks from scaling.nn.ResidualBlock "
                           "(or Branch), or name them in its class attribute scaling_branches")
    x, y = batch
    runs = [(p, d, s) for p in config.parameterizations for d in sorted(set(config.depths)) for s in config.seeds]
    records: list[DepthRecord] = []
    iterator: Iterable[tuple[str, int, int]] = runs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(runs, desc="depth coord-check", leave=False)
    for row, depth, seed in iterator:
        torch.manual_seed(seed)
        model = builder(depth)
        # The delta is twice the base depth: at a fixed width every width multiplier is 1.
        plan = parameterize(model, base=lambda: builder(config.base), delta=lambda: builder(2 * config.base),
                            parameterization=row, optimizer=spec.cls)
        optimizer = plan.optimizer_for(spec.cls, lr=config.lr, **spec.options)
        probe = _Probe(model, config.steps + 1)
        try:
            for t in range(config.steps + 1):
                probe.state = t
                if t == config.steps:
                    with torch.no_grad():
                        model(x)
                    break
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(x), y)
                probe.state = None
                loss.backward()
                optimizer.step()
        finally:
            probe.state = None
            probe.close()
        for t in range(config.steps + 1):
            records.append(DepthRecord(row, depth, seed, t, "stream", float(probe.stream[t, 0]),
                                       float(probe.stream[t, 1])))
            blocks = probe.blocks[t].mean(dim=0)
            records.append(DepthRecord(row, depth, seed, t, "block", float(blocks[0]), float(blocks[1])))
    return DepthCoordResult(config, records, fit_depth(records, config))


def fit_depth(records: Sequence[DepthRecord], config: DepthCoordConfig) -> list[DepthFit]:
    """Fit every row, quantity, statistic and step across depths (step 0's change is 0: not fitted)."""
    fits = []
    for row in config.parameterizations:
        for quantity in QUANTITIES:
            for stat in DEPTH_STATS:
                for step in range(config.steps + 1):
                    if stat == "mean_abs_delta" and step == 0:
                        continue
                    chosen = [r for r in records if (r.parameterization, r.quantity, r.step) == (row, quantity, step)]
                    slope, low, high = fit_slope([r.depth for r in chosen], [getattr(r, stat) for r in chosen])
                    fits.append(DepthFit(row, quantity, stat, step, slope, low, high,
                                         predicted(row, quantity, stat, step, config.optimizer),
                                         _verdict(slope, config.tol, low, high)))
    return fits


def _verdict(slope: float, tol: float, low: float, high: float) -> str:
    return "non-finite" if math.isnan(slope) else verdict(slope, tol, low, high)

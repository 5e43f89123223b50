"""What a sweep is: the settings every run shares (:class:`RunSettings`) and the grid (:class:`SweepConfig`).

A sweep is a grid of parameterization x optimizer x width x log2 LR x seed x per-role constants; every
cell one training run (:mod:`scaling.sweep.train`) with the same settings (model, data, steps, batch
size, schedule). One run is ``(settings, cell)``: the settings are written once, here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, ClassVar, Literal, get_args

from scaling.baseline import INIT_MODES, InitMode
from scaling.errors import ScalingError
from scaling.optim import OPTIMIZERS
from scaling.peers import PEERS
from scaling.sweep.store import Cell, canonical_scales
from scaling.table import PARAMETERIZATIONS, RoleScales, get_parameterization

Schedule = Literal["none", "cosine", "plateau"]
"""``none``: constant LR. ``cosine``: cosine decay to 0 over the run (``CosineAnnealingLR``).
``plateau``: ``ReduceLROnPlateau`` on the training loss, as the original question's network used."""

SCHEDULES: tuple[Schedule, ...] = get_args(Schedule)


def log2_grid(start: float, stop: float, step: float = 1.0) -> tuple[float, ...]:
    """``start, start + step, ..., stop`` (inclusive), rounded to 6 decimals so grid points compare equal."""
    if step <= 0 or not all(map(math.isfinite, (start, stop, step))):
        raise ScalingError(f"a log2 LR range needs finite bounds and a positive step, got {start}, {stop}, {step}")
    if start > stop:
        raise ScalingError(f"a log2 LR range runs upward: start {start:g} is above stop {stop:g}; "
                           f"swap them ({stop:g} {start:g} {step:g})")
    n = math.floor((stop - start) / step + 1e-9) + 1
    return tuple(round(start + i * step, 6) for i in range(n))


def log2_lrs_of(lrs: Sequence[float]) -> tuple[float, ...]:
    """The log2 grid of explicit learning rates, each of which must be positive."""
    bad = [lr for lr in lrs if not (lr > 0 and math.isfinite(lr))]
    if bad:
        raise ScalingError(f"learning rates must be positive and finite, got {bad}")
    return tuple(round(math.log2(lr), 6) for lr in lrs)


@dataclass(frozen=True)
class RunSettings:
    """What every run of a sweep shares. ``model`` names a reference model (:data:`scaling.models.REGISTRY`),
    a builder as ``module:function``, or a user's :class:`scaling.sweep.Task`."""

    model: str = "mlp"
    dataset: str | None = None  # default: the model's own (scaling.models.REGISTRY)
    base_width: int = 64
    steps: int = 300
    batch_size: int = 128
    schedule: Schedule = "none"
    last_k: int = 50
    weight_decay: float = 0.0
    diverge_factor: float = 100.0
    dataset_kwargs: Mapping[str, Any] = field(default_factory=dict)
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    zero_readout: bool = False
    eps: float | None = None  # the base Adam epsilon (default: the optimizer's)
    loss: str | None = None  # module:function, default cross-entropy
    init: InitMode = "pytorch"  # "base": the model draws its own init (scaling.parameterize's init=)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dataset_kwargs", dict(self.dataset_kwargs))
        object.__setattr__(self, "model_kwargs", dict(self.model_kwargs))
        if self.init not in INIT_MODES:
            raise ScalingError(f"init must be one of {INIT_MODES}, got {self.init!r}")

    @property
    def dataset_name(self) -> str:
        """The dataset the runs read."""
        if self.dataset:
            return self.dataset
        from scaling.models import REGISTRY

        entry = REGISTRY.get(self.model)
        return entry.dataset if entry is not None else ""


@dataclass(frozen=True)
class SweepConfig(RunSettings):
    """A sweep: :class:`RunSettings` and the grid axes (tuples, sorted and deduplicated).

    ``scales`` holds per-role constants (:class:`scaling.table.RoleScales` as dicts), one grid value
    each: ``({},)`` runs the table's rows as they are.
    """

    parameterizations: tuple[str, ...] = ("sp", "mup")
    optimizers: tuple[str, ...] = ("adam",)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    log2_lrs: tuple[float, ...] = log2_grid(-12, -4)
    seeds: tuple[int, ...] = (0,)
    scales: tuple[Mapping[str, Mapping[str, float]], ...] = ({},)

    GRID: ClassVar[tuple[str, ...]] = ("parameterizations", "optimizers", "widths", "log2_lrs", "seeds", "scales")

    def __post_init__(self) -> None:
        super().__post_init__()

        def unique(xs: Sequence[Any]) -> tuple[Any, ...]:
            return tuple(dict.fromkeys(xs))  # keeps order

        object.__setattr__(self, "parameterizations", unique([p.lower() for p in self.parameterizations]))
        object.__setattr__(self, "optimizers", unique([o.lower() for o in self.optimizers]))
        object.__setattr__(self, "widths", tuple(sorted(set(self.widths))))
        object.__setattr__(self, "log2_lrs", tuple(sorted({round(float(x), 6) for x in self.log2_lrs})))
        object.__setattr__(self, "seeds", tuple(sorted(set(self.seeds))))
        scales = [self.scales] if isinstance(self.scales, Mapping) else list(self.scales)
        by_key = {canonical_scales(s): {k: dict(v) for k, v in s.items()} for s in scales}
        object.__setattr__(self, "scales", tuple(by_key.values()))

    def cells(self) -> list[Cell]:
        """The grid, widths innermost: consecutive runs cost about the same on average, so the ETA holds."""
        keys = [canonical_scales(s) for s in self.scales]
        return [
            Cell(p, o, w, x, s, k)
            for k in keys
            for s in self.seeds
            for p in self.parameterizations
            for o in self.optimizers
            for x in self.log2_lrs
            for w in self.widths
        ]

    @property
    def settings(self) -> RunSettings:
        """The settings alone, without the grid."""
        return RunSettings(**{f.name: getattr(self, f.name) for f in fields(RunSettings)})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the dataset resolved)."""
        d = asdict(self)
        d["scales"] = [dict(s) for s in self.scales]
        return {**d, "dataset": self.dataset_name}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SweepConfig:
        """The inverse of :meth:`to_dict` (lists become tuples; unknown keys are an error)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ScalingError(f"unknown sweep settings {sorted(unknown)}; known: {sorted(names)}")
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**values)

    def fixed(self) -> dict[str, Any]:
        """The settings every run of the database must share (all but the grid axes). Settings added
        later are left out at their defaults, so the runs of databases made before keep their identity."""
        later = {"init": "pytorch"}
        return {k: v for k, v in self.to_dict().items() if k not in self.GRID and later.get(k, ...) != v}


def default_config(model: str = "mlp", **overrides: Any) -> SweepConfig:
    """A sensible sweep of a reference model: the MNIST-1D reference task for ``mlp``."""
    per_model: dict[str, dict[str, Any]] = {
        "question": {"widths": (32, 64, 128, 256), "base_width": 32, "batch_size": 64},
        "funnel": {"widths": (32, 64, 128, 256), "base_width": 32, "batch_size": 64},
        "gpt": {"widths": (32, 64, 128, 256), "base_width": 32, "batch_size": 16, "log2_lrs": log2_grid(-14, -4)},
    }
    return SweepConfig(model=model, **{**per_model.get(model, {}), **overrides})


def quick_config(model: str = "mlp", **overrides: Any) -> SweepConfig:
    """A sweep that runs in a minute or two on a 2-core CPU: three widths, every other LR, 100 steps."""
    full = default_config(model)
    quick = {"widths": full.widths[:3], "log2_lrs": full.log2_lrs[::2], "steps": 100, "last_k": 20}
    return replace(full, **{**quick, **overrides})


def problems(config: SweepConfig) -> list[str]:
    """Every problem of ``config`` that needs neither the model nor the data to see."""
    found = [f"empty grid: no {axis} given" for axis in config.GRID if not getattr(config, axis)]
    found += [f"unknown parameterization {p!r}; choose a row ({', '.join(PARAMETERIZATIONS)}) or a peer "
              f"({', '.join(PEERS)})"
              for p in config.parameterizations if p not in (*PARAMETERIZATIONS, *PEERS) and not _known_alias(p)]
    found += [f"unknown optimizer {o!r}; choose one of: {', '.join(OPTIMIZERS)}"
              for o in config.optimizers if o not in OPTIMIZERS]
    if config.schedule not in SCHEDULES:
        found.append(f"unknown schedule {config.schedule!r}; choose one of: {', '.join(SCHEDULES)}")
    if [x for x in config.log2_lrs if not math.isfinite(x)]:
        found.append(f"log2 learning rates must be finite (lr > 0), got {list(config.log2_lrs)}")
    if config.base_width < 1:
        found.append(f"base width must be positive, got {config.base_width}")
    narrow = [w for w in config.widths if w < config.base_width]
    if narrow:
        found.append(f"widths {narrow} are below the base width {config.base_width}: muP scales up from the "
                     "base, so pass --base-width at most the smallest width")
    for name, lower in (("steps", 1), ("batch_size", 1), ("last_k", 1)):
        if getattr(config, name) < lower:
            found.append(f"{name} must be at least {lower}, got {getattr(config, name)}")
    if config.last_k > config.steps:
        found.append(f"last_k ({config.last_k}) cannot exceed steps ({config.steps})")
    if not config.diverge_factor > 1:
        found.append(f"diverge_factor must exceed 1, got {config.diverge_factor}")
    if config.eps is not None and not (config.eps >= 0 and math.isfinite(config.eps)):
        found.append(f"eps must be a finite number >= 0, got {config.eps}")
    for scales in config.scales:
        try:
            RoleScales.from_dict(scales)
        except (ScalingError, TypeError, ValueError, AttributeError) as e:
            found.append(f"bad scales {dict(scales)!r}: {e}")
    return found


def _known_alias(name: str) -> bool:
    try:
        get_parameterization(name)
    except ScalingError:
        return False
    return True

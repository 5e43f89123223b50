"""The one registry of optimizers: a name, its ``torch.optim`` class, its family and default options.

The *family* is the column of the exponent table (:data:`scaling.table.FAMILIES`) an optimizer reads:
how its update answers a rescaled gradient. Every place that takes an optimizer by name (the plan,
the coordinate check, the sweeps, the command line) looks it up here, so a new optimizer is one
:func:`register_optimizer` call:

>>> register_optimizer("lion", Lion, family="adam")   # a sign method: entrywise normalized

``"muon"`` is :class:`MuonAdam`: ``torch.optim.Muon`` over the hidden 2-D weights, AdamW over the
rest (:class:`OptimizerPair`); ``"muon-only"`` is ``torch.optim.Muon`` alone, for 2-D parameters only.

A class that is not registered is matched by the names of its bases, so a subclass of
``torch.optim.AdamW`` is Adam-like.
"""

from __future__ import annotations

import math
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from scaling.errors import ScalingError
from scaling.table import FAMILIES, OptimizerFamily
from scaling.table import family as column


@dataclass(frozen=True)
class OptimizerSpec:
    """A registered optimizer: ``cls(groups, **options)`` with every group's lr (and eps, weight decay)
    set by the plan."""

    name: str
    cls: type[torch.optim.Optimizer]
    family: OptimizerFamily
    options: Mapping[str, Any] = field(default_factory=dict)

    def build(self, groups: Iterable[dict[str, Any]], **options: Any) -> torch.optim.Optimizer:
        """The optimizer over ready-made param groups (``options`` override the registered ones)."""
        return self.cls(list(groups), **{**self.options, **options})


OPTIMIZERS: dict[str, OptimizerSpec] = {}
"""Every optimizer known by name (lower case)."""


def register_optimizer(
    name: str, cls: type[torch.optim.Optimizer], family: OptimizerFamily, *, replace: bool = False, **options: Any
) -> OptimizerSpec:
    """Register ``cls`` under ``name`` (lower case) as a member of ``family`` (a column of the table).

    ``options`` are passed to every construction (``momentum=0.9``, say). A name registered already
    is replaced only with ``replace=True``.
    """
    key = name.lower()
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ScalingError(f"optimizer {name!r}: {cls!r} is not a torch.optim.Optimizer class")
    spec = OptimizerSpec(key, cls, column(family).name, dict(options))
    if key in OPTIMIZERS and OPTIMIZERS[key] != spec and not replace:
        raise ScalingError(f"an optimizer named {key!r} is registered already; pass replace=True")
    OPTIMIZERS[key] = spec
    return spec


# torch.optim's optimizers by family. Everything entrywise normalized by a running gradient scale is
# Adam-like (TP-V, Yang et al. 2022, App. B: Adam, Adagrad, RMSprop "behave like Adam" under muP).
_BUILTIN: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("sgd", "SGD", "sgd", {}),
    ("momentum", "SGD", "sgd", {"momentum": 0.9}),
    ("asgd", "ASGD", "sgd", {}),
    ("adam", "Adam", "adam", {}),
    ("adamw", "AdamW", "adam", {}),
    ("adamax", "Adamax", "adam", {}),
    ("nadam", "NAdam", "adam", {}),
    ("radam", "RAdam", "adam", {}),
    ("rmsprop", "RMSprop", "adam", {}),
    ("adagrad", "Adagrad", "adam", {}),
    # A step relative to RMS(theta), not Adam-like: its own column (scaling.table.ADAFACTOR_NOTE).
    ("adafactor", "Adafactor", "adafactor", {}),
    # torch.optim.Muon alone: every parameter must be 2-D (scaling.table.MUON_NOTE).
    ("muon-only", "Muon", "muon", {}),
)
for _name, _cls, _family, _options in _BUILTIN:
    if hasattr(torch.optim, _cls):  # Adafactor arrived in torch 2.5, Muon in 2.9
        register_optimizer(_name, getattr(torch.optim, _cls), _family, **_options)


def optimizer_spec(optimizer: str | type) -> OptimizerSpec:
    """The registered optimizer of a name (``"adamw"``) or class (``torch.optim.AdamW`` or a subclass)."""
    if isinstance(optimizer, str):
        spec = OPTIMIZERS.get(optimizer.lower())
        if spec is not None:
            return spec
    elif isinstance(optimizer, type):
        by_class = [s for s in OPTIMIZERS.values() if s.cls is optimizer and not s.options]
        if by_class:
            return by_class[0]
        for base in optimizer.__mro__:
            match = [s for s in OPTIMIZERS.values() if s.cls is base and not s.options]
            if match:
                return OptimizerSpec(optimizer.__name__.lower(), optimizer, match[0].family)
    else:
        raise ScalingError(f"optimizer must be a name or an optimizer class, got {optimizer!r}")
    raise ScalingError(
        f"unknown optimizer {getattr(optimizer, '__name__', optimizer)!r}; known: {', '.join(OPTIMIZERS)}. "
        "Name its family instead (optimizer='sgd' or optimizer='adam'), or register it: "
        "scaling.optim.register_optimizer(name, cls, family='adam')"
    )


def optimizer_family(optimizer: str | type) -> OptimizerFamily:
    """The family (table column) of an optimizer given by name, by class, or as a family name itself."""
    if isinstance(optimizer, str) and optimizer.lower() in FAMILIES:
        return column(optimizer.lower()).name
    return optimizer_spec(optimizer).family


def optimizer_class(optimizer: str | type) -> type[torch.optim.Optimizer]:
    """The ``torch.optim`` class of a registered name (``"adamw"`` -> ``torch.optim.AdamW``)."""
    return optimizer_spec(optimizer).cls


def default_eps(optimizer: str | type | None, fallback: float = 1e-8) -> Any:
    """The ``eps`` default of an optimizer's constructor (``fallback``, Adam's, when it has none).

    A family name stands for the optimizer registered under it (``"adafactor"``: ``(None, 1e-3)``).
    The default is returned as the constructor has it: a float for Adam, a pair for Adafactor.
    """
    import inspect

    if optimizer is None:
        return fallback
    if isinstance(optimizer, str) and optimizer.lower() in FAMILIES:
        spec = OPTIMIZERS.get(optimizer.lower())
        if spec is None:
            return fallback
        optimizer = spec.cls
    cls = optimizer if isinstance(optimizer, type) else optimizer_spec(optimizer).cls
    parameter = inspect.signature(cls).parameters.get("eps")
    if parameter is not None and isinstance(parameter.default, (float, tuple)):
        return parameter.default
    return fallback


MUON_ADJUST: tuple[str | None, ...] = (None, "original", "match_rms_adamw")
"""The ``adjust_lr_fn`` values ``torch.optim.Muon`` accepts."""


def muon_adjust(shape: Sequence[int], adjust_lr_fn: str | None) -> float:
    """The factor ``torch.optim.Muon`` multiplies a 2-D parameter's learning rate by (its ``_adjust_lr``).

    With ``A, B = shape[:2]`` (fan-out, fan-in of a ``Linear`` weight): ``None``/``"original"``
    (Keller Jordan's) ``sqrt(max(1, A/B))``; ``"match_rms_adamw"`` (Liu et al. 2025, "Muon is Scalable
    for LLM Training") ``0.2 sqrt(max(A, B))``.
    """
    if adjust_lr_fn not in MUON_ADJUST:
        raise ScalingError(f"unknown Muon adjust_lr_fn {adjust_lr_fn!r}; torch.optim.Muon takes one of {MUON_ADJUST}")
    a, b = int(shape[0]), int(shape[1])
    if adjust_lr_fn == "match_rms_adamw":
        return 0.2 * math.sqrt(max(a, b))
    return math.sqrt(max(1, a / b))


PART_KEY = "scaling_optimizer"
"""The param-group key :meth:`scaling.ScalingPlan.param_groups` sets for ``optimizer="muon"``: ``"muon"``
for the groups of hidden 2-D weights, ``"adam"`` for the rest (what :class:`MuonAdam` splits by)."""

LR_FACTOR_KEY = "scaling_lr_factor"
"""The param-group key beside :data:`PART_KEY`: the group's LR multiplier (its LR over its part's base
LR), which :class:`MuonAdam`'s ``fixed=`` needs when the groups come without the base LR."""


class OptimizerPair(torch.optim.Optimizer):
    """Two optimizers over disjoint parameters, stepped as one (Muon for hidden weights, Adam for the rest).

    ``step``, ``zero_grad``, ``state_dict`` and ``load_state_dict`` go to both; ``param_groups`` is the
    two optimizers' groups, the same dicts, so an LR scheduler (``LambdaLR``, ``CosineAnnealingLR``,
    ``ReduceLROnPlateau``) that writes a group's ``lr`` writes it in the optimizer that owns it.
    ``torch.optim.Optimizer.__init__`` is not called: the pair holds no groups of its own.
    """

    def __init__(self, first: torch.optim.Optimizer, second: torch.optim.Optimizer) -> None:
        """Pair ``first`` and ``second``, which must not share a parameter."""
        shared = {id(p) for g in first.param_groups for p in g["params"]} & {
            id(p) for g in second.param_groups for p in g["params"]
        }
        if shared:
            raise ScalingError(f"the two optimizers of a pair share {len(shared)} parameter(s); each parameter "
                               "must be in exactly one of them")
        self.optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer] = (first, second)
        self.defaults: dict[str, Any] = {}
        self._optimizer_step_pre_hooks = OrderedDict()
        self._optimizer_step_post_hooks = OrderedDict()
        self._optimizer_state_dict_pre_hooks = OrderedDict()
        self._optimizer_state_dict_post_hooks = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks = OrderedDict()
        self._optimizer_load_state_dict_post_hooks = OrderedDict()

    @property
    def param_groups(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """Both optimizers' param groups, first's then second's (the same dict objects)."""
        return [*self.optimizers[0].param_groups, *self.optimizers[1].param_groups]

    @property
    def state(self) -> defaultdict[torch.Tensor, Any]:  # type: ignore[override]
        """Both optimizers' per-parameter state."""
        return defaultdict(dict, {**self.optimizers[0].state, **self.optimizers[1].state})

    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Step both optimizers (the closure, if any, is evaluated once)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for opt in self.optimizers:
            opt.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero (or drop) the gradients of both optimizers' parameters."""
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """``{"first": ..., "second": ...}``: each optimizer's own state dict."""
        return {"first": self.optimizers[0].state_dict(), "second": self.optimizers[1].state_dict()}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load what :meth:`state_dict` returned."""
        self.optimizers[0].load_state_dict(state_dict["first"])
        self.optimizers[1].load_state_dict(state_dict["second"])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Refused: add the group to one of :attr:`optimizers` instead."""
        raise ScalingError("an OptimizerPair has no groups of its own: add the group to pair.optimizers[0] or [1]")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.optimizers[0]!r}, {self.optimizers[1]!r})"


class MuonAdam(OptimizerPair):
    """``torch.optim.Muon`` over the hidden 2-D weights and an Adam-like optimizer over the rest.

    Built from the groups of ``plan.param_groups("muon", lr=...)``, which tag each group with
    :data:`PART_KEY`; this is what the name ``"muon"`` is registered as, so the package's engines
    (``plan.optimizer_for``, the coordinate check, the sweeps) train the pair. ``lr`` is the default of
    groups that set none (the plan's set theirs). ``plan.optimizers(...)`` gives the same two optimizers
    with a learning rate each.
    """

    def __init__(
        self,
        params: Iterable[dict[str, Any]],
        lr: float = 1e-3,
        *,
        adam: type[torch.optim.Optimizer] = torch.optim.AdamW,
        muon_options: Mapping[str, Any] | None = None,
        adam_options: Mapping[str, Any] | None = None,
        adam_lr_ratio: float | None = None,
        fixed: Mapping[str, float] | None = None,
    ) -> None:
        """Split ``params`` (the plan's tagged groups) between Muon and ``adam``; ``adam_lr_ratio``
        multiplies the Adam part's learning rates (a sweep of one LR then moves both at a fixed ratio).

        ``fixed={"adam": lr0}`` (or ``"muon"``) holds that part's base LR at ``lr0`` whatever base LR the
        groups were built with: each of its groups gets the plan's factor (:data:`LR_FACTOR_KEY`) times
        ``lr0``, then ``adam_lr_ratio`` as usual, so that a sweep of the base LR moves only the other part."""
        if adam_lr_ratio is not None and not (isinstance(adam_lr_ratio, (int, float)) and adam_lr_ratio > 0):
            raise ScalingError(f"MuonAdam's adam_lr_ratio must be a positive number, got {adam_lr_ratio!r}")
        fixed = dict(fixed or {})
        bad = [k for k, v in fixed.items() if k not in ("muon", "adam") or not isinstance(v, (int, float)) or v <= 0]
        if bad or len(fixed) > 1:
            raise ScalingError(f"MuonAdam's fixed= maps one part ('muon' or 'adam') to a positive base LR, "
                               f"got {fixed!r}")
        groups = list(params)
        untagged = [i for i, g in enumerate(groups) if not isinstance(g, Mapping) or g.get(PART_KEY) not in
                    ("muon", "adam")]
        if untagged:
            raise ScalingError(f"MuonAdam takes the groups of plan.param_groups('muon', lr=...), each tagged with "
                               f"{PART_KEY!r}; groups {untagged[:5]} are not")
        if optimizer_family(adam) != "adam":
            raise ScalingError(f"MuonAdam's adam= must be an Adam-like optimizer class, got {adam!r}")
        if fixed and any(LR_FACTOR_KEY not in g for g in groups):
            raise ScalingError(f"MuonAdam's fixed= needs each group's LR factor ({LR_FACTOR_KEY!r}), which "
                               "plan.param_groups('muon', lr=...) sets")
        groups = [{**g, "lr": g[LR_FACTOR_KEY] * fixed[g[PART_KEY]]} if g[PART_KEY] in fixed else g for g in groups]
        muon = [g for g in groups if g[PART_KEY] == "muon"]
        rest = [g for g in groups if g[PART_KEY] == "adam"]
        if adam_lr_ratio is not None:
            rest = [{**g, "lr": g.get("lr", lr) * adam_lr_ratio} for g in rest]
        if not muon or not rest:
            raise ScalingError("MuonAdam needs hidden 2-D weights for Muon and other parameters for Adam; for a model "
                               "with only one kind use torch.optim.Muon ('muon-only') or an Adam alone")
        super().__init__(torch.optim.Muon(muon, lr=lr, **dict(muon_options or {})),
                         adam(rest, lr=lr, **dict(adam_options or {})))  # type: ignore[call-arg]


register_optimizer("muon", MuonAdam, "muon")

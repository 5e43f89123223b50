"""The one registry of optimizers: a name, its ``torch.optim`` class, its family and default options.

The *family* is the column of the exponent table (:data:`scaling.table.FAMILIES`) an optimizer reads:
how its update answers a rescaled gradient. Every place that takes an optimizer by name (the plan,
the coordinate check, the sweeps, the command line) looks it up here, so a new optimizer is one
:func:`register_optimizer` call:

>>> register_optimizer("lion", Lion, family="adam")   # a sign method: entrywise normalized

A class that is not registered is matched by the names of its bases, so a subclass of
``torch.optim.AdamW`` is Adam-like.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    ("adafactor", "Adafactor", "adam", {}),
)
for _name, _cls, _family, _options in _BUILTIN:
    if hasattr(torch.optim, _cls):  # Adafactor arrived in torch 2.5
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


def default_eps(optimizer: str | type | None, fallback: float = 1e-8) -> float:
    """The ``eps`` default of an optimizer's constructor (``fallback``, Adam's, when it has none)."""
    import inspect

    if optimizer is None or (isinstance(optimizer, str) and optimizer.lower() in FAMILIES):
        return fallback
    cls = optimizer if isinstance(optimizer, type) else optimizer_spec(optimizer).cls
    parameter = inspect.signature(cls).parameters.get("eps")
    if parameter is not None and isinstance(parameter.default, float):
        return parameter.default
    return fallback

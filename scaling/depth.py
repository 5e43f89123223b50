"""Depth, the table's second dimension: the residual branches of a model, its depth multiplier, and
the base model's names for a deeper model's parameters.

A row with a depth rule (:class:`scaling.table.DepthRule`) multiplies every residual branch by
``m_L^-alpha`` and corrects the learning rate and epsilon of the parameters inside a branch. Which
modules are branches is read from the model, never from parameter names:

- a module whose class has a ``scaling_branch`` attribute (:class:`scaling.nn.ResidualBlock`, whose
  forward adds its branches through ``self.branch(...)``, or :class:`scaling.nn.Branch`, a wrapper);
- a module the user names with ``parameterize(..., branches=...)``, or in the model's own class
  attribute ``scaling_branches`` (``scaling_branches = "blocks"``): the model adds its output to the
  residual stream (``h = h + block(h)``); a ``ModuleList`` or ``Sequential`` named there stands for
  its children. Its output is multiplied by a forward hook.

These are the model's *units*; their number is its depth ``L``, and ``m_L = L / L_base`` with
``L_base`` the base model's (or the ``depth_multiplier`` given). A deeper model has parameters the base
lacks: unit ``i`` of the model reads its shapes (and its base init, its attention's base head
dimension) from unit ``i mod L_base`` of the base, so blocks that alternate keep their pattern.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from torch import nn

from scaling.errors import ScalingError
from scaling.shapes import canonical_name

How = Literal["attribute", "output-hook"]
_V = TypeVar("_V")


@dataclass(frozen=True)
class Unit:
    """One residual branch (or block) of a model: its module name, the module, and how its output is scaled."""

    name: str
    module: nn.Module
    how: How


@dataclass(frozen=True)
class DepthInfo:
    """A model's depth against its base: ``multiplier = depth / base_depth`` (``m_L``), the units' names
    and the parameters (by name, as ``model.named_parameters()``) inside a unit."""

    multiplier: float
    depth: int
    base_depth: int
    units: tuple[str, ...]
    base_units: tuple[str, ...]
    in_branch: frozenset[str]


def find_units(model: nn.Module, branches: str | Iterable[str] | None = None) -> list[Unit]:
    """The model's residual branches in module order: modules marked by class (``scaling_branch``) and
    the ones named in ``branches`` (default: the model's ``scaling_branches`` attribute; a container
    name stands for its children). A unit inside another
    is refused: each parameter sits in one branch."""
    modules = dict(model.named_modules())
    if branches is None:
        branches = getattr(model, "scaling_branches", None)
    named: list[str] = []
    for name in [branches] if isinstance(branches, str) else list(branches or ()):
        if name not in modules:
            raise ScalingError(f"branches names {name!r}, which is not a module of the model "
                               f"(modules: {', '.join(repr(n) for n in list(modules)[1:6])}...)")
        module = modules[name]
        if isinstance(module, (nn.ModuleList, nn.Sequential)):
            if len(module) == 0:
                raise ScalingError(f"branches names {name!r}, an empty {type(module).__name__}")
            named += [f"{name}.{child}" if name else child for child, _ in module.named_children()]
        else:
            named.append(name)
    chosen = set(named)
    units = [Unit(n, m, "attribute" if hasattr(type(m), "scaling_branch") else "output-hook")
             for n, m in modules.items() if n in chosen or (n and hasattr(type(m), "scaling_branch"))]
    for outer in units:
        for inner in units:
            if inner is not outer and inner.name.startswith(outer.name + "."):
                raise ScalingError(f"residual branch {inner.name!r} is inside residual branch {outer.name!r}: mark "
                                   "either the blocks or the branches within them, not both")
    return units


def units_of(other: nn.Module | Mapping[str, object], units: tuple[str, ...],
             branches: str | Iterable[str] | None = None) -> tuple[str, ...]:
    """Another model's units (a base or delta): its own when it is a module; for parameter shapes by
    name, those of the model's ``units`` that have parameters there."""
    if isinstance(other, nn.Module):
        return tuple(canonical_name(u.name) for u in find_units(other, branches))
    names = set(other)
    return tuple(u for u in units if any(n.startswith(u + ".") for n in names))


def unit_of(name: str, units: tuple[str, ...]) -> int | None:
    """The index of the unit a (canonical) parameter or module name lies in, or ``None``."""
    for i, unit in enumerate(units):
        if name == unit or name.startswith(unit + "."):
            return i
    return None


def read_depth(
    model: nn.Module,
    base: nn.Module | Mapping[str, object],
    branches: str | Iterable[str] | None = None,
    depth_multiplier: float | None = None,
    found: Sequence[Unit] | None = None,
) -> DepthInfo:
    """The model's :class:`DepthInfo` against ``base`` (a module, or the base's parameter shapes by name).

    The base's units are its own (a module) or, for shapes, the model's units that have parameters
    there. ``depth_multiplier`` overrides the ratio of the counts; ``found`` are the model's units when
    the caller has them already (:func:`find_units`).
    """
    units = tuple(canonical_name(u.name) for u in (found if found is not None else find_units(model, branches)))
    base_units = units_of(base, units, branches)
    if depth_multiplier is not None:
        if isinstance(depth_multiplier, bool) or not isinstance(depth_multiplier, (int, float)) or not (
                depth_multiplier > 0 and math.isfinite(depth_multiplier)):
            raise ScalingError(f"depth_multiplier must be a positive number, got {depth_multiplier!r}")
        multiplier = float(depth_multiplier)
    elif units and base_units:
        multiplier = len(units) / len(base_units)
    else:
        multiplier = 1.0
    if units and not base_units:
        raise ScalingError(f"the model has {len(units)} residual branches but the base has none: build the base "
                           "with the same builder and fewer blocks")
    if multiplier < 1 and not math.isclose(multiplier, 1.0):
        raise ScalingError(f"the model has {len(units)} residual branches, fewer than the base's {len(base_units)}: "
                           "the base is the shallowest model (tune at base depth, train deeper)")
    in_branch = frozenset(n for n, _ in model.named_parameters() if unit_of(canonical_name(n), units) is not None)
    return DepthInfo(multiplier, len(units), len(base_units), units, base_units, in_branch)


def to_base_names(names: Iterable[str], depth: DepthInfo) -> dict[str, str]:
    """The base model's name for each (canonical) name of the model: unit ``i`` becomes base unit
    ``i mod L_base``; names outside every unit stay as they are."""
    out = {}
    for name in names:
        i = unit_of(name, depth.units)
        if i is None or not depth.base_units:
            out[name] = name
        else:
            out[name] = depth.base_units[i % len(depth.base_units)] + name[len(depth.units[i]):]
    return out


def for_target(target: Iterable[str], other: Mapping[str, _V], depth: DepthInfo | None) -> dict[str, _V]:
    """``other`` (the base's shapes or tensors by name) keyed by the model's names, a deeper model's
    units reading their base unit's entries. The other model's names outside its units that match
    nothing are kept as they are, for the name check (:func:`scaling.shapes.match_names`) to report."""
    if depth is None or depth.units == depth.base_units:
        return dict(other)
    out: dict[str, _V] = {}
    used = set()
    for t, b in to_base_names(target, depth).items():
        key = b if b in other else b.removeprefix("module.")  # DDP's prefix: the name check adds it back
        if key in other:
            out[t] = other[key]
            used.add(key)
    # The other model's names left over: those in a unit the model has no counterpart of (a delta
    # deeper than the model) are dropped; the rest are kept for the name check to report.
    out.update({b: v for b, v in other.items()
                if b not in used and b not in out and unit_of(b, depth.base_units) is None})
    return out

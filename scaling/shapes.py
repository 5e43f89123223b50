"""Width shapes: which dimensions of each parameter are widths, their multipliers, and its role.

A dimension is *infinite* (a width) when it grows with the model; its multiplier is
``m = n / n_base``. We find the infinite dimensions the way microsoft/mup does, by comparing
parameter shapes with a base model (and, optionally, a delta model of another width), all of which
may live on the ``meta`` device, or from base shapes given explicitly (a mapping or a mup ``.bsh``
file). Roles are then read from the shapes and the module type that owns the parameter (which
dimension is fan-in), never from parameter names; any role can be overridden per parameter.
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, TypeVar, Union

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from scaling.errors import ScalingError, ScalingWarning
from scaling.table import ROLES, Role

BaseShape = tuple[Union[int, None], ...]
"""A parameter's base shape: an ``int`` base size for each infinite dimension, ``None`` for a finite
one (microsoft/mup's ``.bsh`` convention)."""

ModelSpec = Union[nn.Module, Callable[[], nn.Module], Mapping[str, Sequence[Union[int, None]]], str, PathLike]
"""What can stand for a base or delta model: a module, a zero-argument builder (called on the meta
device), a mapping from parameter name to shape, or the path of a ``.bsh`` file."""

# Path components that torch wrappers insert into parameter names (torch.compile, activation
# checkpointing, FSDP1). Dropped when matching names with the base model.
_WRAPPER_COMPONENTS = frozenset({"_orig_mod", "_checkpoint_wrapped_module", "_fsdp_wrapped_module"})

BSH_HEADER = """\
# This is a base shape file encoded in yaml
# - `null` indicates a dimension is "finite", i.e. a non-"width" dimension
# - a number indicates the base dimension of an "infinite" dimension, i.e. some notion of "width"
"""


@dataclass(frozen=True)
class ParamWidth:
    """The width facts of one parameter, enough to apply any row of the exponent table.

    ``m_in`` and ``m_out`` are the fan-in and fan-out multipliers (1 when finite). For a vector or
    finite tensor ``m_in`` is the fan-in multiplier of the layer it biases (PyTorch draws a bias with
    std ``1/sqrt(fan_in)``), 1 when it biases nothing.
    """

    name: str
    shape: tuple[int, ...]
    base_shape: BaseShape
    role: Role
    m_in: float
    m_out: float

    @property
    def infinite_dims(self) -> tuple[int, ...]:
        """Indices of the dimensions that are widths."""
        return tuple(i for i, b in enumerate(self.base_shape) if b is not None)


def canonical_name(name: str) -> str:
    """A parameter name without the components torch wrappers add (``_orig_mod`` and friends)."""
    return ".".join(c for c in name.split(".") if c not in _WRAPPER_COMPONENTS)


def build_on_meta(builder: Callable[[], nn.Module]) -> nn.Module:
    """Call a model builder on the meta device: shapes without memory, instant at any size."""
    with torch.device("meta"):
        return builder()


def shapes_of(spec: ModelSpec) -> dict[str, tuple[int | None, ...]]:
    """Parameter shapes of a model, builder, mapping or ``.bsh`` file, keyed by canonical name."""
    if isinstance(spec, (str, PathLike)):
        return load_base_shapes(spec)
    if isinstance(spec, nn.Module):
        return {canonical_name(n): tuple(p.shape) for n, p in spec.named_parameters()}
    if isinstance(spec, Mapping):
        return {canonical_name(n): _as_shape(n, s) for n, s in spec.items()}
    if callable(spec):
        return shapes_of(build_on_meta(spec))
    raise ScalingError(f"cannot read shapes from {type(spec).__name__}; pass a module, a builder, "
                       "a mapping of shapes or a .bsh path")


def load_base_shapes(path: str | PathLike[str]) -> dict[str, BaseShape]:
    """Read a microsoft/mup base-shape file (``.bsh``, YAML: name -> list of base size or null)."""
    import yaml

    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise ScalingError(f"{path} is not a base-shape file: expected a mapping of name to shape")
    return {canonical_name(str(k)): _as_shape(str(k), v, str(path)) for k, v in data.items()}


def _as_shape(name: object, shape: object, source: str = "the base shapes") -> tuple[int | None, ...]:
    """A shape from a mapping or ``.bsh`` file: a sequence of sizes (``None`` for a finite dimension)."""
    def bad(why: str) -> ScalingError:
        return ScalingError(
            f"parameter {name!r} in {source}: {why}; give its shape as a sequence of sizes, e.g. "
            f"{{{name!r}: (64, 10)}} (None marks a finite dimension), not a single number"
        )

    if isinstance(shape, (str, bytes)) or not isinstance(shape, (Sequence, torch.Size)):
        raise bad(f"{shape!r} is not a shape")
    dims: list[int | None] = []
    for d in shape:
        if d is None:
            dims.append(None)
            continue
        try:
            if isinstance(d, bool):
                raise TypeError
            size = operator.index(d)
        except TypeError:
            raise bad(f"size {d!r} in {shape!r} is not an integer") from None
        if size < 0:
            raise bad(f"size {size} in {shape!r} is negative")
        dims.append(size)
    return tuple(dims)


def save_base_shapes(widths: Mapping[str, ParamWidth], path: str | PathLike[str]) -> None:
    """Write base shapes in microsoft/mup's ``.bsh`` format, readable by ``mup.load_base_shapes``."""
    import yaml

    body = {name: list(w.base_shape) for name, w in widths.items()}
    Path(path).write_text(BSH_HEADER + yaml.dump(body, indent=4))


def is_resolved(shapes: Mapping[str, tuple[int | None, ...]]) -> bool:
    """Whether shapes mark finite dimensions with ``None`` (a ``.bsh`` file) rather than being a
    plain model's shapes, whose infinite dimensions are found by comparison."""
    return any(d is None for s in shapes.values() for d in s)


def resolve_base_shapes(
    target: Mapping[str, tuple[int, ...]],
    base: Mapping[str, tuple[int | None, ...]],
    delta: Mapping[str, tuple[int | None, ...]] | None = None,
) -> dict[str, BaseShape]:
    """Decide, for every target parameter, which dimensions are infinite and their base sizes.

    With a delta model, a dimension is infinite when base and delta differ; without one, when base
    and target differ (so at base width nothing is infinite and every multiplier is 1). Shapes that
    already mark finite dimensions with ``None`` (a ``.bsh`` file) are taken as they are.

    Without a delta, *any* dimension that differs from the base is taken as a width: a base built
    with another input size, vocabulary or class count, or a typo in a shape mapping, silently turns
    the input layer into a hidden one (or the readout into a hidden one). So a
    :class:`~scaling.errors.ScalingWarning` is issued when the width multipliers (target size / base
    size) are not one number across the model's width dimensions, naming the parameters of each
    multiplier; a model whose widths really grow at different rates can silence it with
    ``warnings.filterwarnings("ignore", category=ScalingWarning)``. Another warning says when no
    delta is given and every shape equals the base's: nothing is a width then, every multiplier is 1
    and every row of the table is SP (right for a run at base width, but roles are unknown there;
    give ``delta`` to know them).
    """
    resolved_base = is_resolved(base)
    base = _match_names(target, base, "base")
    if delta is not None:
        delta = _match_names(target, delta, "delta")
    resolved: dict[str, BaseShape] = {}
    for name, shape in target.items():
        b = base[name]
        ref = delta[name] if delta is not None else shape
        _check_rank(name, shape, b, "base")
        _check_rank(name, shape, ref, "delta")
        dims: list[int | None] = []
        for i, (n, nb, nr) in enumerate(zip(shape, b, ref)):
            infinite = nb is not None and (resolved_base or nr is None or nb != nr)
            if infinite:
                assert nb is not None
                if n < nb:
                    raise ScalingError(
                        f"parameter {name!r}: dimension {i} is {n}, narrower than its base size {nb}. "
                        "Build the base model at the narrowest width you tune at, and the target at "
                        "that width or wider."
                    )
                dims.append(nb)
            else:
                if nb is not None and n != nb and not resolved_base:
                    raise ScalingError(
                        f"parameter {name!r}: dimension {i} is {n} but base and delta agree on {nb}, "
                        "so it is finite and must not change. Make the delta model differ from the "
                        "base along every width, or drop `delta`."
                    )
                dims.append(None)
        if sum(d is not None for d in dims) > 2:
            raise ScalingError(
                f"parameter {name!r} of shape {tuple(shape)} has {sum(d is not None for d in dims)} "
                "infinite dimensions; at most two are supported (fan-in and fan-out). Reshape it "
                "into a matrix, or keep the extra dimensions fixed between base and delta models."
            )
        resolved[name] = tuple(dims)
    _warn_on_widths(target, resolved, base_equals_target=delta is None and not resolved_base)
    return resolved


def _warn_on_widths(
    target: Mapping[str, tuple[int, ...]], resolved: Mapping[str, BaseShape], base_equals_target: bool
) -> None:
    """Warn when the width multipliers differ across the model, or when nothing is a width at all."""
    by_multiplier: dict[float, list[str]] = {}
    for name, dims in resolved.items():
        for n, nb in zip(target[name], dims):
            if nb is not None:
                m = n / nb if nb else math.inf
                key = next((k for k in by_multiplier if math.isclose(k, m, rel_tol=1e-9)), m)
                names = by_multiplier.setdefault(key, [])
                if name not in names:
                    names.append(name)
    if len(by_multiplier) > 1:
        listed = "; ".join(
            f"{m:g} for {', '.join(map(repr, names[:4]))}{f' and {len(names) - 4} more' if len(names) > 4 else ''}"
            for m, names in sorted(by_multiplier.items(), key=lambda kv: len(kv[1]))
        )
        warnings.warn(
            f"the width multipliers (target size / base size) differ across the model: {listed}. Every "
            "dimension that differs from the base is taken as a width; if one of these is not a width "
            "(a base built with another input size, vocabulary or class count; a typo in a shape "
            "mapping), fix the base, or give a delta model so that widths are the dimensions that "
            "differ between base and delta.",
            ScalingWarning,
            stacklevel=4,
        )
    if base_equals_target and not by_multiplier:
        warnings.warn(
            "every parameter has its base shape and no delta model is given: no dimension is a width, "
            "every multiplier is 1, and every parameterization is SP here. That is right for a run at "
            "base width; to know the roles there, give delta= (the model at another width). If the "
            "model was meant to be wider, it was built at the base's width.",
            ScalingWarning,
            stacklevel=4,
        )


def _check_rank(name: str, shape: Sequence[int], other: Sequence[int | None], what: str) -> None:
    if len(other) != len(shape):
        raise ScalingError(
            f"parameter {name!r} has rank {len(shape)} {tuple(shape)} but rank {len(other)} "
            f"{tuple(other)} in the {what} model: build the {what} model with the same "
            "architecture, changing only widths."
        )


_V = TypeVar("_V")


def match_names(target: Mapping[str, Any], other: Mapping[str, _V], what: str) -> Mapping[str, _V]:
    """Another model's mapping (shapes, tensors) keyed by the target's canonical names (DDP's ``module.``)."""
    return _match_names(target, other, what)


def _match_names(target: Mapping[str, Any], other: Mapping[str, _V], what: str) -> Mapping[str, _V]:
    """Line up another model's names with the target's, adding or dropping DDP's ``module.``."""
    names, others = set(target), set(other)
    if names == others:
        return other
    # (Distributed)DataParallel prefixes every name with "module."; microsoft/mup strips it with
    # `k.strip('module.')`, a character-set strip that also eats leading/trailing m, o, d, u, l, e, '.'.
    if all(n.startswith("module.") for n in names) and not any(n.startswith("module.") for n in others):
        other = {f"module.{k}": v for k, v in other.items()}
    elif all(n.startswith("module.") for n in others) and not any(n.startswith("module.") for n in names):
        other = {k.removeprefix("module."): v for k, v in other.items()}
    names, others = set(target), set(other)
    if names != others:
        missing, extra = sorted(names - others), sorted(others - names)
        raise ScalingError(
            f"the {what} model's parameter names do not match the model's: "
            f"missing from {what}: {missing[:5]}{'...' if len(missing) > 5 else ''}; "
            f"only in {what}: {extra[:5]}{'...' if len(extra) > 5 else ''}. "
            f"Build the {what} model with the same builder, changing only widths"
            + (" (or depth: a base with fewer blocks needs its residual branches marked, "
               "scaling.nn.ResidualBlock or parameterize(..., branches=...))." if missing and not extra else ".")
        )
    return other


@dataclass(frozen=True)
class _Layout:
    """Which dimensions of a parameter are fan-in and fan-out, from its module's type."""

    fan_in: int | None
    fan_out: int | None
    bias_of: str | None = None  # the sibling weight whose fan-in sets this bias's PyTorch init


def is_transposed_linear(module: nn.Module) -> bool:
    """A linear layer that stores its weight as (in, out): transformers' ``Conv1D`` (GPT-2), ``x @ W + b``.

    Recognized by its class name and its ``nf`` (output features) attribute, so transformers need not be
    imported."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf") and hasattr(module, "weight")


def _layout(module: nn.Module, attr: str) -> _Layout | None:
    if is_transposed_linear(module):
        if attr == "weight":
            return _Layout(fan_in=0, fan_out=1)
        if attr == "bias":
            return _Layout(None, None, bias_of="weight")
    if isinstance(module, (nn.Linear, _ConvNd)):
        transposed = isinstance(module, _ConvNd) and module.transposed
        if attr == "weight":
            return _Layout(fan_in=0, fan_out=1) if transposed else _Layout(fan_in=1, fan_out=0)
        if attr == "bias":
            return _Layout(None, None, bias_of="weight")
    if isinstance(module, (nn.Embedding, nn.EmbeddingBag)) and attr == "weight":
        return _Layout(fan_in=0, fan_out=1)  # (num_embeddings, dim): rows are looked up, not summed
    if isinstance(module, nn.MultiheadAttention):
        if attr in ("in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"):
            return _Layout(fan_in=1, fan_out=0)
        if attr == "in_proj_bias":
            return _Layout(None, None, bias_of="in_proj_weight")
    return None


def occurrences(model: nn.Module) -> list[tuple[str, nn.Module, str, nn.Parameter]]:
    """Every (module name, module, attribute, parameter) in the model, tied parameters once per owner.

    ``model.named_parameters()`` lists a tied parameter once, under its first owner; a readout tied
    to an embedding shows up here twice, once as each.
    """
    found = []
    for module_name, module in model.named_modules():
        for attr, p in module.named_parameters(recurse=False):
            found.append((module_name, module, attr, p))
    return found


def with_tied_names(model: nn.Module, base_shapes: Mapping[str, BaseShape]) -> dict[str, BaseShape]:
    """Base shapes under every name a parameter has: a tied weight's second name gets its first's."""
    out = dict(base_shapes)
    primary = {id(p): canonical_name(n) for n, p in model.named_parameters()}
    for module_name, _, attr, p in occurrences(model):
        full = canonical_name(f"{module_name}.{attr}" if module_name else attr)
        out.setdefault(full, base_shapes[primary[id(p)]])
    return out


def _mult(shape: Sequence[int], base: BaseShape, dim: int | None) -> float:
    if dim is None or base[dim] is None:
        return 1.0
    b = base[dim]
    assert b is not None
    return shape[dim] / b


def read_width(
    name: str,
    module: nn.Module,
    attr: str,
    base_shapes: Mapping[str, BaseShape],
    role: Role | None = None,
) -> ParamWidth:
    """The :class:`ParamWidth` of parameter ``module.<attr>`` (full name ``name``) as that module uses it.

    The module's type says which dimension is fan-in (see :func:`infer_widths`); ``role`` overrides
    the inferred role.
    """
    p = getattr(module, attr)
    shape = tuple(p.shape)
    base = base_shapes[canonical_name(name)]
    layout = _layout(module, attr)
    inf = [i for i, b in enumerate(base) if b is not None]
    fan_in, fan_out = _fan_dims(layout, inf, shape)
    if layout is not None and layout.bias_of is not None:
        # A bias: its own multiplier is its length's; its init follows the layer's fan-in.
        weight_name = name[: -len(attr)] + layout.bias_of
        weight_layout = _layout(module, layout.bias_of)
        weight_shape = tuple(getattr(module, layout.bias_of).shape)
        weight_base = base_shapes[canonical_name(weight_name)]
        m_in = _mult(weight_shape, weight_base, weight_layout.fan_in if weight_layout else None)
        m_out = _mult(shape, base, inf[0] if inf else None)
    else:
        m_in, m_out = _mult(shape, base, fan_in), _mult(shape, base, fan_out)
    inferred = _infer_role(name, shape, base, fan_in, fan_out)
    if role is None:
        role = inferred
    elif role not in ROLES:
        raise ScalingError(f"unknown role {role!r} for {name!r}; choose one of {ROLES}")
    elif role != inferred and layout is None:
        # An unknown module: read the multipliers the way the chosen role uses them.
        if role in ("vector", "finite"):
            m_in = 1.0
        elif role == "output" and inf:
            m_in, m_out = _mult(shape, base, inf[-1]), 1.0
    return ParamWidth(name, shape, base, role, m_in, m_out)


def infer_widths(
    model: nn.Module,
    base_shapes: Mapping[str, BaseShape],
    roles: Mapping[str, Role] | None = None,
) -> dict[str, ParamWidth]:
    """The :class:`ParamWidth` of every parameter, keyed by name as ``model.named_parameters()``.

    Roles come from the infinite dimensions and the owning module's type (``Linear`` and ``Conv``
    weights are (fan_out, fan_in, ...); ``Embedding`` weights (fan_in, fan_out); transposed
    convolutions and transformers' ``Conv1D`` the other way round). A parameter of an unknown module
    type with one infinite dimension is taken as an input weight (as microsoft/mup treats it), with two
    as a hidden weight whose fan-in is the last infinite dimension. ``roles`` overrides any of these by name.
    """
    overrides = {canonical_name(k): v for k, v in (roles or {}).items()}
    base_shapes = with_tied_names(model, base_shapes)
    first_owner: dict[int, tuple[str, nn.Module, str]] = {}
    for module_name, module, attr, p in occurrences(model):
        full = f"{module_name}.{attr}" if module_name else attr
        first_owner.setdefault(id(p), (full, module, attr))
    widths: dict[str, ParamWidth] = {}
    for name, p in model.named_parameters():
        _, module, attr = first_owner[id(p)]
        widths[name] = read_width(name, module, attr, base_shapes, overrides.pop(canonical_name(name), None))
    if overrides:
        raise ScalingError(f"role overrides name no parameter of the model: {sorted(overrides)}")
    return widths


def _fan_dims(layout: _Layout | None, inf: list[int], shape: tuple[int, ...]) -> tuple[int | None, int | None]:
    if layout is not None and layout.bias_of is None:
        return layout.fan_in, layout.fan_out
    if len(shape) <= 1 or not inf:
        return None, (inf[0] if inf else None)
    if len(inf) == 1:
        return None, inf[0]  # an input-like weight: its one width is its fan-out
    return inf[-1], inf[0]


def _infer_role(
    name: str, shape: tuple[int, ...], base: BaseShape, fan_in: int | None, fan_out: int | None
) -> Role:
    ninf = sum(b is not None for b in base)
    if ninf == 0:
        return "finite"
    if len(shape) == 1:
        return "vector"
    in_inf = fan_in is not None and base[fan_in] is not None
    out_inf = fan_out is not None and base[fan_out] is not None
    if in_inf + out_inf != ninf:
        raise ScalingError(
            f"parameter {name!r} of shape {shape} has a width along dimension(s) "
            f"{[i for i, b in enumerate(base) if b is not None]} that is neither its fan-in "
            f"({fan_in}) nor fan-out ({fan_out}); say what it is with roles={{{name!r}: ...}}."
        )
    if in_inf and out_inf:
        return "hidden"
    return "output" if in_inf else "input"

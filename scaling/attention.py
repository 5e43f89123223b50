"""Attention under a row of the table: the logit scale of the package's attention, and the others'.

muP scales attention logits by ``1/d_head`` instead of ``1/sqrt(d_head)`` (Yang et al. 2022, TP-V, §4,
"attention logit scaling"); :func:`scaling.table.attention_scale` is the formula. :func:`scaling.parameterize`
sets it on :class:`scaling.nn.Attention` (:func:`scale_of_attention`) and warns
(:class:`scaling.AttentionScalingWarning`) about attention it cannot reach (:func:`custom_attention_modules`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping

from torch import nn

from scaling.errors import AttentionScalingWarning, ScalingError
from scaling.shapes import ParamWidth
from scaling.table import SP, Parameterization, attention_multiplier


def scale_of_attention(row: Parameterization, name: str, module: nn.Module, base_module: nn.Module | None,
                       base_name: str | None = None) -> float:
    """The logit-scale multiplier the row gives a :class:`scaling.nn.Attention` ``module`` (named ``name``;
    ``base_name`` in the base model, when it is shallower: :mod:`scaling.depth`)."""
    head_dim = int(getattr(module, "head_dim"))  # noqa: B009
    base_head_dim = getattr(module, "base_head_dim", None)
    if base_head_dim is None and base_module is not None:
        base_head_dim = getattr(base_module.get_submodule(base_name or name), "head_dim", None)
    if base_head_dim is None:
        raise ScalingError(
            f"attention module {name!r}: its base head dimension is unknown (the base is a table of "
            "shapes). Pass the base as a model or builder, or construct it with base_head_dim=..."
        )
    if head_dim < base_head_dim:
        raise ScalingError(f"attention module {name!r}: head_dim {head_dim} is narrower than base {base_head_dim}")
    return attention_multiplier(row, head_dim, int(base_head_dim))


_ATTENTION_CLASS = re.compile(r"attention|attn", re.IGNORECASE)


def carries_scale(module: nn.Module) -> bool:
    """An attention module that keeps its logit scale in a float attribute ``scaling`` and says its
    ``head_dim`` (transformers 5's attention classes): :func:`scaling.parameterize` multiplies that
    scale by the row's :func:`scaling.table.attention_multiplier` (1 at the base head dimension)."""
    return (bool(_ATTENTION_CLASS.search(type(module).__name__)) and isinstance(getattr(module, "scaling", None), float)
            and isinstance(getattr(module, "head_dim", None), int) and not hasattr(type(module), "scaling_attention"))


def set_own_scale(module: nn.Module, multiplier: float) -> None:
    """Set a :func:`carries_scale` module's ``scaling`` to its own value times ``multiplier`` (idempotent:
    the own value is kept as ``scaling_own``)."""
    own = vars(module).setdefault("scaling_own", module.scaling)
    module.scaling = own * multiplier
_QKV_CHILD = re.compile(
    r"^(?:w_?|to_)?(?P<part>q|k|v|query|key|value|qkv|c_attn|in_proj)(?:_?(?:proj|lin|linear))?$", re.IGNORECASE
)


def custom_attention_modules(model: nn.Module) -> list[str]:
    """Names of the modules that look like attention computing its own softmax scale.

    A module counts when its class name contains ``Attention`` or ``Attn``, or when it has query and
    key projections as children (``q``/``k``, ``q_proj``/``k_proj``, ``query``/``key``, ``wq``/``wk``,
    ``to_q``/``to_k``) or a fused one (``qkv``, ``c_attn``, ``in_proj``). Modules that take the
    plan's scale (a class with a ``scaling_attention`` attribute, as :class:`scaling.nn.Attention`, or a
    :func:`carries_scale` module), their ancestors and the descendants of a module already counted are
    left out.
    """
    modules = list(model.named_modules())
    aware = [n for n, m in modules if hasattr(type(m), "scaling_attention") or carries_scale(m)]
    found: list[str] = []

    def inside(name: str, outer: str) -> bool:
        return outer == "" or name == outer or name.startswith(outer + ".")

    for name, module in modules:
        if any(inside(a, name) or inside(name, a) for a in aware) or any(inside(name, f) for f in found):
            continue
        parts = set()
        for child, _ in module.named_children():
            match = _QKV_CHILD.match(child)
            if match:
                part = match["part"].lower()
                parts.add({"query": "q", "key": "k", "value": "v"}.get(part, part))
        fused = bool(parts & {"qkv", "c_attn", "in_proj"})
        if _ATTENTION_CLASS.search(type(module).__name__) or fused or {"q", "k"} <= parts:
            found.append(name)
    return found


def warn_custom_attention(model: nn.Module, row: Parameterization, widths: Mapping[str, ParamWidth]) -> None:
    """Warn when the row's attention scaling cannot reach a custom attention of a model wider than base."""
    if row.attention == SP.attention:
        return
    wider = [
        name for name in custom_attention_modules(model)
        if any(
            (w.m_in != 1.0 or w.m_out != 1.0) and (name == "" or n.startswith(name + "."))
            for n, w in widths.items()
        )
    ]
    if not wider:
        return
    shown = ", ".join(
        f"{n or '(the model)'!r} ({type(model.get_submodule(n)).__name__})" for n in wider[:3]
    ) + (f" and {len(wider) - 3} more" if len(wider) > 3 else "")
    warnings.warn(
        f"{row.name} scales attention logits like 1/d_head (TP-V, Yang et al. 2022, §4), but {len(wider)} "
        f"attention module(s) compute their own softmax scale, which parameterize() cannot change: {shown}. "
        "In their forward, pass scale=scaling.attention_scale(plan, d_head, base_d_head) to "
        "F.scaled_dot_product_attention (store it on the module after parameterize), or build them from "
        "scaling.nn.Attention. If their head dimension does not grow with width (more heads instead), "
        "nothing changes and this warning (scaling.AttentionScalingWarning) can be ignored.",
        AttentionScalingWarning,
        stacklevel=3,
    )

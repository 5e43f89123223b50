"""scaling: muP-style width scaling for PyTorch, with the theory as one exponent table.

>>> plan = scaling.parameterize(model, base=lambda: MLP(width=64))
>>> optimizer = torch.optim.AdamW(plan.param_groups(lr=3e-3, weight_decay=0.1))

The core (this package's top level) imports torch and the standard library only:

- :mod:`scaling.table`: the exponent table (rows, rules per role, optimizer families as columns);
- :mod:`scaling.optim`: the registry of optimizers and their families;
- :mod:`scaling.baseline`: PyTorch's default init, the baseline every row multiplies;
- :mod:`scaling.shapes`: width shapes and roles; :mod:`scaling.depth`: residual branches and the depth
  multiplier; :mod:`scaling.plan`: :func:`parameterize` and the plan;
- :mod:`scaling.nn`: parameterized layers; :mod:`scaling.predict`: the predicted coordinate exponents.

Around it stands the lab, which imports the core and never the reverse: :mod:`scaling.coord`
(coordinate checks), :mod:`scaling.sweep` (LR-transfer sweeps), :mod:`scaling.models` and
:mod:`scaling.data` (reference models and data), :mod:`scaling.cli` (the command line), and
:mod:`scaling.hf` (Hugging Face transformers models: the ``hf`` extra).
``scaling.coord_check`` and ``scaling.lr_sweep`` load theirs on first use.

A model with its own init (nanoGPT's, Hugging Face's ``N(0, 0.02)``) takes ``parameterize(...,
init="base")``: each tensor's std is then the base model's times the row's factor relative to base
(TP-V, Yang et al. 2022, Table 3); the default ``init="pytorch"`` warns (:class:`InitScalingWarning`)
when the model's init does not scale like PyTorch's ``1/sqrt(fan_in)``, which the table multiplies. An
own init that is the same at every width (transformers' ``_init_weights``) can take ``init="own"``: the
same factors on the tensors as drawn, with nothing measured (exact at base width).

A custom attention (one calling ``F.scaled_dot_product_attention`` itself) passes
``scale=scaling.attention_scale(plan, d_head, base_d_head)``: muP's ``1/d_head`` logit scaling (TP-V,
Yang et al. 2022, §4), which :class:`scaling.nn.Attention` applies by the same formula;
:func:`parameterize` warns (:class:`AttentionScalingWarning`) about attention it cannot reach.
"""

from scaling import nn
from scaling.attention import custom_attention_modules
from scaling.depth import DepthInfo
from scaling.errors import AttentionScalingWarning, InitScalingWarning, ScalingError, ScalingWarning
from scaling.optim import OPTIMIZERS, optimizer_family, register_optimizer
from scaling.plan import ScalingPlan, check_param_groups, parameterize
from scaling.shapes import ParamWidth, build_on_meta, load_base_shapes, save_base_shapes
from scaling.table import (
    COMPLETEP,
    DEPTH_MUP,
    FAMILIES,
    MFP,
    MUP,
    MUP_TABLE8,
    NTK,
    PARAMETERIZATIONS,
    SP,
    DepthRule,
    Family,
    Parameterization,
    Power,
    Role,
    RoleScales,
    Rule,
    attention_scale,
    get_parameterization,
    register_parameterization,
)
from scaling.text import format_table

__version__ = "0.1.0"

_LAB = {"coord_check": "scaling.coord", "lr_sweep": "scaling.sweep"}


def __getattr__(name: str) -> object:
    """``scaling.coord_check`` and ``scaling.lr_sweep`` on first use: the lab pulls in scipy and tqdm."""
    if name in _LAB:
        import importlib

        return getattr(importlib.import_module(_LAB[name]), name)
    raise AttributeError(f"module 'scaling' has no attribute {name!r}")

__all__ = [
    "COMPLETEP",
    "DEPTH_MUP",
    "FAMILIES",
    "MFP",
    "MUP",
    "MUP_TABLE8",
    "NTK",
    "OPTIMIZERS",
    "PARAMETERIZATIONS",
    "SP",
    "AttentionScalingWarning",
    "DepthInfo",
    "DepthRule",
    "Family",
    "InitScalingWarning",
    "ParamWidth",
    "Parameterization",
    "Power",
    "Role",
    "RoleScales",
    "Rule",
    "ScalingError",
    "ScalingPlan",
    "ScalingWarning",
    "attention_scale",
    "build_on_meta",
    "check_param_groups",
    "coord_check",
    "custom_attention_modules",
    "format_table",
    "get_parameterization",
    "load_base_shapes",
    "lr_sweep",
    "nn",
    "optimizer_family",
    "parameterize",
    "register_optimizer",
    "register_parameterization",
    "save_base_shapes",
]

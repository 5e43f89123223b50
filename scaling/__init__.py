"""scaling: muP-style width scaling for PyTorch, with the theory as one exponent table.

>>> plan = scaling.parameterize(model, base=lambda: MLP(width=64))
>>> optimizer = torch.optim.AdamW(plan.param_groups(lr=3e-3, weight_decay=0.1))

See :mod:`scaling.table` for the exponent table, :mod:`scaling.shapes` for width shapes and roles,
:mod:`scaling.plan` for applying a row to a model, and :mod:`scaling.nn` for parameterized layers.
"""

from scaling import nn
from scaling.errors import ScalingError
from scaling.plan import ScalingPlan, check_param_groups, format_table, parameterize
from scaling.shapes import ParamWidth, build_on_meta, load_base_shapes, save_base_shapes
from scaling.table import (
    MFP,
    MUP,
    MUP_TABLE8,
    NTK,
    PARAMETERIZATIONS,
    SP,
    Parameterization,
    Power,
    Role,
    RoleScales,
    Rule,
    get_parameterization,
    optimizer_family,
    register_parameterization,
)

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``scaling.coord_check`` on first use: the coordinate check pulls in scipy, which is slow to load."""
    if name == "coord_check":
        from scaling.coord import coord_check

        return coord_check
    raise AttributeError(f"module 'scaling' has no attribute {name!r}")

__all__ = [
    "MFP",
    "MUP",
    "MUP_TABLE8",
    "NTK",
    "PARAMETERIZATIONS",
    "SP",
    "ParamWidth",
    "Parameterization",
    "Power",
    "Role",
    "RoleScales",
    "Rule",
    "ScalingError",
    "ScalingPlan",
    "build_on_meta",
    "check_param_groups",
    "coord_check",
    "format_table",
    "get_parameterization",
    "load_base_shapes",
    "nn",
    "optimizer_family",
    "parameterize",
    "register_parameterization",
    "save_base_shapes",
]

"""Coordinate checks: how each module's output scales with width, measured and set beside the theory.

- :mod:`~scaling.coord.check`: :func:`coord_check`, train each width a few steps and record;
- :mod:`~scaling.coord.hooks`: the forward hooks, and which prediction each output gets;
- :mod:`~scaling.coord.result`: :class:`CoordConfig`, the tidy records and :class:`CoordResult`;
- :mod:`~scaling.coord.fit`: slopes against log2 width with intervals, and verdicts (scipy);
- :mod:`~scaling.coord.depth`: the depth coordinate check (:func:`depth_coord_check`);
- :mod:`~scaling.coord.plot`: the figures (matplotlib, imported on first use);
- :mod:`~scaling.coord.alignment`: :func:`alignment_check`, how coherently each layer's update adds up
  against its input (Everett et al. 2024), beside full and no alignment.
"""

from scaling.coord.alignment import AlignmentFit, AlignmentRecord, AlignmentResult, alignment_check
from scaling.coord.check import coord_check, reference_batch
from scaling.coord.depth import DepthCoordConfig, DepthCoordResult, DepthFit, DepthRecord, depth_coord_check
from scaling.coord.fit import CONFIDENCE, fit_slope, fit_slopes, verdict
from scaling.coord.hooks import assign_predictions, module_layers
from scaling.coord.result import STATS, CoordConfig, CoordResult, Fit, ModuleInfo, Record, Stat

__all__ = [
    "CONFIDENCE",
    "STATS",
    "AlignmentFit",
    "AlignmentRecord",
    "AlignmentResult",
    "CoordConfig",
    "CoordResult",
    "DepthCoordConfig",
    "DepthCoordResult",
    "DepthFit",
    "DepthRecord",
    "Fit",
    "ModuleInfo",
    "Record",
    "Stat",
    "alignment_check",
    "assign_predictions",
    "coord_check",
    "depth_coord_check",
    "fit_slope",
    "fit_slopes",
    "module_layers",
    "reference_batch",
    "verdict",
]

"""Other packages' parameterizations as rows of our own experiments: microsoft/mup and u-muP.

A peer is trained by the same sweep engine, on the same data, batches, seeds, grid and analysis as the
table's rows; only the model and optimizer are built the peer's way (its layers, its init, its
optimizer). A sweep names a peer like a row: ``parameterizations=("sp", "mup", "microsoft-mup", "u-mup")``.

- ``microsoft-mup``: microsoft/mup 1.0.0 (``pip install --no-deps mup==1.0.0``), TP-V Table 8 form:
  the readout swapped for ``MuReadout`` (``MuSharedReadout`` when tied), ``set_base_shapes`` with the
  base and delta models, ``MuAdam``/``MuAdamW``/``MuSGD`` (:mod:`scaling.peers.microsoft_mup`);
- ``u-mup``: unit-scaling 0.3.5's u-muP (Blake et al. 2024): the model's layers swapped for ``uu``
  layers (unit init, forward scales, unit-scaled gradients, no base width), ``uu.optim``
  (:mod:`scaling.peers.unit_scaling`).

The peer packages are optional (``pip install 'scaling[peers]'``); a peer that cannot express a model
(u-muP has no tied readout, say) refuses it before any run, saying why.
"""

from __future__ import annotations

import importlib
from typing import Any

PEERS: dict[str, str] = {
    "microsoft-mup": "scaling.peers.microsoft_mup",
    "u-mup": "scaling.peers.unit_scaling",
}
"""Peer rows by name -> the module of their adapter (imported on first use)."""


def adapter(name: str) -> Any:
    """The adapter module of a peer row (it defines ``check(settings, task)`` and ``build(...)``)."""
    return importlib.import_module(PEERS[name])

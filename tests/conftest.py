"""Shared fixtures: every test starts from the same seed, on one CPU thread pool size."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Seed python, numpy and torch before every test, so results never depend on test order."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)

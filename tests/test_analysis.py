"""The analysis on synthetic sweeps whose answer is known: optima, edge flags, drift, regret, figure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from scaling.sweep import SweepConfig, log2_grid
from scaling.sweep.analysis import Analysis, analyze, curves, find_optimum, format_table, loss_at, seed_mean
from scaling.sweep.figures import figure_name, plot_transfer
from scaling.sweep.store import Cell, RunRecord

GRID = np.array(log2_grid(-12, -2))
WIDTHS = (64, 128, 256, 512)


def synthetic(drift: float, *, name: str = "sp", seeds: int = 4, noise: float = 0.0, a: float = -6.0,
              grid: np.ndarray = GRID, widths: tuple[int, ...] = WIDTHS, rng_seed: int = 0) -> list[RunRecord]:
    """``loss = 0.05 (log2 lr - lr*(w))^2 + 0.3`` plus noise, with ``lr*(w) = a + drift * log2(w / 64)``."""
    rng = np.random.default_rng(rng_seed)
    runs = []
    for w in widths:
        best = a + drift * math.log2(w / 64)
        for s in range(seeds):
            shift = noise * rng.standard_normal()  # a seed moves its whole curve's optimum a little
            for x in grid:
                loss = 0.05 * (x - best - shift) ** 2 + 0.3
                runs.append(RunRecord(Cell(name, "adam", w, float(x), s), loss, loss + 0.1, False, 100, 0.1, 1e9))
    return runs


def test_a_quadratic_optimum_between_grid_points_is_found_exactly() -> None:
    y = 0.05 * (GRID + 7.3) ** 2 + 0.3
    opt = find_optimum(GRID, y)
    assert opt.fitted and not opt.edge and opt.grid_log2_lr == -7
    assert opt.log2_lr == pytest.approx(-7.3, abs=1e-9) and opt.loss == pytest.approx(0.3, abs=1e-12)
    assert find_optimum(GRID, y, half_window=2).log2_lr == pytest.approx(-7.3, abs=1e-9)


@pytest.mark.parametrize(("vertex", "edge", "at"), [(-20.0, "low", -12.0), (3.0, "high", -2.0)])
def test_an_optimum_beyond_the_grid_is_flagged_at_the_edge(vertex: float, edge: str, at: float) -> None:
    opt = find_optimum(GRID, (GRID - vertex) ** 2)
    assert opt.edge == edge and not opt.fitted and opt.log2_lr == at


def test_diverged_points_are_never_fitted_and_never_optimal() -> None:
    y = 0.05 * (GRID + 7.0) ** 2 + 0.3
    y[GRID >= -5] = np.inf  # diverged from 2^-5 up
    opt = find_optimum(GRID, y)
    assert opt.fitted and opt.log2_lr == pytest.approx(-7.0, abs=1e-9)
    y[GRID == -6] = np.inf  # now the grid minimum's right neighbour diverged: no 3-point fit
    opt = find_optimum(GRID, y)
    assert not opt.fitted and opt.log2_lr == -7 and not opt.edge
    assert math.isnan(find_optimum(GRID, np.full(len(GRID), np.inf)).log2_lr)


def test_a_concave_fit_falls_back_to_the_grid_minimum() -> None:
    x = np.arange(7.0)
    y = np.array([1.0, 0.05, 0.30, 0.0, 0.30, 0.05, 1.0])  # a dip between two lower shoulders
    assert find_optimum(x, y).fitted  # 3 points: convex
    opt = find_optimum(x, y, half_window=2)  # 5 points: the parabola opens downward
    assert not opt.fitted and opt.log2_lr == 3.0 and opt.loss == 0.0 and not opt.edge


@pytest.mark.parametrize("drift", [-1.0, -0.5, 0.0])
def test_the_drift_exponent_is_recovered(drift: float) -> None:
    analysis = analyze(synthetic(drift, noise=0.15), n_boot=300)
    d = analysis.drift("sp")
    assert d.slope == pytest.approx(drift, abs=0.1)
    assert d.low <= d.slope <= d.high and d.high - d.low < 0.5 and d.edges == 0
    assert d.confidence == 0.9


def test_exact_data_gives_an_exact_drift_and_a_zero_width_interval() -> None:
    d = analyze(synthetic(-1.0, seeds=2), n_boot=50).drift("sp")
    assert d.slope == pytest.approx(-1.0, abs=1e-9) and d.intercept == pytest.approx(-6 + 6, abs=1e-9)
    assert d.low == pytest.approx(-1.0, abs=1e-9) and d.high == pytest.approx(-1.0, abs=1e-9)


def test_regret_is_the_relative_loss_at_the_reference_optimum() -> None:
    shift = 0.4  # optimum moves by 0.4 octave per doubling: inside the fit window at width 128
    analysis = analyze(synthetic(-shift, seeds=1), n_boot=10)
    assert analysis.reference_width == 64
    assert analysis.at("sp", 64).regret == pytest.approx(0.0, abs=1e-12)
    expected = (0.05 * shift**2 + 0.3) / 0.3 - 1  # the parabola at the reference optimum
    assert analysis.at("sp", 128).regret == pytest.approx(expected, rel=1e-9)
    # At 512 the reference optimum (-6) lies 1.2 octaves off: outside the fit window, so the grid
    # curve is interpolated linearly between -6 (exact grid point here).
    r512 = analysis.at("sp", 512)
    assert r512.loss_at_reference == pytest.approx(0.05 * 1.2**2 + 0.3)
    assert r512.regret == pytest.approx(r512.loss_at_reference / 0.3 - 1)


def test_loss_at_interpolates_the_grid_and_stops_at_divergence() -> None:
    x, y = np.arange(5.0), np.array([3.0, 2.0, 1.0, 2.0, np.inf])
    opt = find_optimum(x, y)
    assert opt.window == (1.0, 3.0) and loss_at(x, y, opt, 1.5) == pytest.approx(1.25)  # the parabola x^2...
    assert loss_at(x, y, opt, 0.5) == 2.5  # ...outside its window: linear
    assert loss_at(x, y, opt, 3.5) == math.inf  # next to a diverged point
    assert loss_at(x, y, opt, -4.0) == 3.0  # beyond the grid: clamped


def test_a_diverged_seed_makes_its_lr_unusable_and_missing_runs_are_ignored() -> None:
    runs = synthetic(0.0, seeds=2, widths=(64,))
    broken = [RunRecord(r.cell, math.nan, math.nan, True, 3, 0.1, 1e6) if r.cell == Cell("sp", "adam", 64, -6.0, 1)
              else r for r in runs if r.cell != Cell("sp", "adam", 64, -8.0, 0)]
    [curve] = curves(broken)
    mean = curve.mean
    assert mean[list(GRID).index(-6.0)] == math.inf
    assert mean[list(GRID).index(-8.0)] == pytest.approx(0.05 * 4 + 0.3)  # seed 1 alone
    assert seed_mean(np.array([[np.nan], [np.nan]]))[0] != seed_mean(np.array([[np.nan], [np.nan]]))[0]  # nan


def test_val_loss_is_a_metric_too() -> None:
    analysis = analyze(synthetic(0.0, seeds=1), "val_loss", n_boot=10)
    assert analysis.at("sp", 256).optimum.loss == pytest.approx(0.4)


def test_the_table_names_optima_flags_regret_and_drift() -> None:
    runs = synthetic(-1.0, seeds=2) + synthetic(0.0, name="mup", seeds=2)
    runs += synthetic(-8.0, name="ntk", seeds=1)  # optimum far below the grid at wide widths
    text = format_table(analyze(runs, n_boot=20))
    assert "regret" in text and "log2 lr*" in text
    assert "-12.00<" in text  # the edge flag
    assert "drift d log2 lr*/d log2 width" in text and "90% bootstrap" in text
    assert "optima at a grid edge" in text


def test_the_figure_is_written_under_an_ascii_name(tmp_path: Path) -> None:
    runs = synthetic(-1.0, seeds=2) + synthetic(0.0, name="mup", seeds=2)
    runs[5] = RunRecord(runs[5].cell, math.nan, math.nan, True, 3, 0.1, 1e6)  # one diverged run
    config = SweepConfig(parameterizations=("sp", "mup"), widths=WIDTHS, log2_lrs=tuple(GRID), seeds=(0, 1))
    name = figure_name(config)
    assert name == "transfer_mlp_mnist1d_adam_sp-mup_w64-512_b64_lr-12to-2_s2_n300_bs128" and name.isascii()
    paths = plot_transfer(analyze(runs, n_boot=20), tmp_path / name, logy=True, formats=("png", "pdf"))
    assert [p.suffix for p in paths] == [".png", ".pdf"] and all(p.stat().st_size > 10_000 for p in paths)


def test_combined_analyses_keep_each_parts_numbers() -> None:
    """A figure of two sweeps shows each sweep's own optima and bootstrap interval, not a second bootstrap."""
    sp = analyze(synthetic(-1.0, noise=0.2, rng_seed=1), reference_width=64)
    mup = analyze(synthetic(0.0, name="mup", noise=0.2, rng_seed=2), reference_width=64)
    both = Analysis.combine([sp, mup])
    assert both.drift("sp") == sp.drift("sp") and both.drift("mup") == mup.drift("mup")
    assert both.at("mup", WIDTHS[-1]) == mup.at("mup", WIDTHS[-1])
    assert len(both.curves) == len(sp.curves) + len(mup.curves)
    with pytest.raises(ValueError, match="one metric"):
        Analysis.combine([sp, analyze(synthetic(0.0, name="mup"), "val_loss", reference_width=64)])

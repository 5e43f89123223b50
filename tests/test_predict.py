"""The predicted width exponents, written out: they must change only when the exponent table does.

The numbers are derived by hand in scaling/predict.py's docstring from scaling/table.py; the
coordinate-check tests (tests/test_coord.py) measure them.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scaling.predict import LayerPrediction, chain, exponent, is_maximal_update, mlp_exponents
from scaling.table import BUILTIN_PARAMETERIZATIONS, MUP, Power

# The package's built-in rows (a test elsewhere may register rows of its own in the same session): a row
# added to scaling.table without its predictions written out below fails test_every_row_...
BUILTIN = sorted(BUILTIN_PARAMETERIZATIONS)

# ReLU MLP 40-w-w-10: exponent of mean|h_1 - h_0| at (input layer, hidden layer, logits).
MLP_TABLE = {
    ("sp", "sgd"): (-0.5, 0.5, 1.0),
    ("sp", "adam"): (0.0, 1.0, 1.5),  # 3/2 for the logits, as measured (test_coord)
    ("ntk", "sgd"): (-0.5, -0.5, 0.0),
    ("ntk", "adam"): (-0.5, -0.5, 0.0),  # NTK's Adam column gives SGD's update sizes
    ("mfp", "sgd"): (0.0, 0.0, 0.0),
    ("mfp", "adam"): (0.0, 0.0, 0.0),
    ("mup", "sgd"): (0.0, 0.0, 0.0),
    ("mup", "adam"): (0.0, 0.0, 0.0),
    ("mup-table8", "sgd"): (0.0, 0.0, 0.0),
    ("mup-table8", "adam"): (0.0, 0.0, 0.0),
    # Adam's LR factors moved into init and multipliers by the abc-symmetry: every column keeps muP's
    # dynamics, SGD's too (its LR takes the shift times SGD's own exponent, TP-V Sec. 3 / App. J.2.1).
    ("mup-constant-lr", "sgd"): (0.0, 0.0, 0.0),
    ("mup-constant-lr", "adam"): (0.0, 0.0, 0.0),
    # The depth rows are muP in width (their depth rule touches residual branches only, at m_L = 1 nothing).
    ("depth-mup", "sgd"): (0.0, 0.0, 0.0),
    ("depth-mup", "adam"): (0.0, 0.0, 0.0),
    ("completep", "sgd"): (0.0, 0.0, 0.0),
    ("completep", "adam"): (0.0, 0.0, 0.0),
}


@pytest.mark.parametrize(("row", "family"), sorted(MLP_TABLE))
def test_mlp_delta_exponents_written_out(row: str, family: str) -> None:
    got = mlp_exponents(row, family)
    assert (got["input"], got["hidden"], got["logits"]) == MLP_TABLE[row, family]


def test_every_row_of_the_table_is_written_out() -> None:
    assert sorted({r for r, _ in MLP_TABLE}) == BUILTIN


# The 10-w-2 network of the original question has no hidden layer: under SP with Adam the input
# layer's change is O(1) and only the readout's own update grows, like n.
QUESTION_TABLE = {("sp", "sgd"): (-0.5, 1.0), ("sp", "adam"): (0.0, 1.0), ("ntk", "adam"): (-0.5, 0.0),
                  ("mup", "sgd"): (0.0, 0.0), ("mup", "adam"): (0.0, 0.0)}


@pytest.mark.parametrize(("row", "family"), sorted(QUESTION_TABLE))
def test_no_hidden_layer(row: str, family: str) -> None:
    got = mlp_exponents(row, family, hidden_layers=0)
    assert (got["input"], got["logits"]) == QUESTION_TABLE[row, family]


def test_sp_sgd_chain_written_out() -> None:
    """Every intermediate of the calculus for SP + SGD (sigma, c, g, update, own, propagated)."""
    inp, hid, out = chain("sp", "sgd")
    assert inp == LayerPrediction("input", sigma=0, alpha=0, eta=0, forward=0, backward=-0.5, update=-0.5,
                                  own=-0.5, propagated=None, delta=-0.5)
    assert hid == LayerPrediction("hidden", sigma=-0.5, alpha=0, eta=0, forward=0, backward=-0.5, update=-0.5,
                                  own=0.5, propagated=-0.5, delta=0.5)
    assert out == LayerPrediction("logits", sigma=-0.5, alpha=0, eta=0, forward=0, backward=0, update=0,
                                  own=1, propagated=1, delta=1)


def test_sp_adam_logits_are_driven_by_the_hidden_change() -> None:
    """The readout's own update grows like n; the aligned hidden change it reads grows like n^3/2."""
    logits = chain("sp", "adam")[-1]
    assert (logits.own, logits.propagated, logits.delta) == (1.0, 1.5, 1.5)


def test_mup_table3_logits_shrink_at_init_but_not_its_bias() -> None:
    """muP's readout init (std 1/fan_in) makes W h ~ n^-1/2; its bias is O(1) (TP-V Table 3)."""
    logits = chain("mup", "adam", bias=False)[-1]
    assert (logits.forward, logits.size) == (-0.5, 0.0)
    assert chain("mup", "adam")[-1].forward == 0.0


def test_ntk_adam_equals_ntk_sgd() -> None:
    for hidden in (0, 1, 3):
        assert [p.delta for p in chain("ntk", "adam", hidden)] == [p.delta for p in chain("ntk", "sgd", hidden)]


@pytest.mark.parametrize("row", BUILTIN)
@pytest.mark.parametrize("family", ["sgd", "adam"])
def test_depth_does_not_change_the_prediction(row: str, family: str) -> None:
    """Every row keeps hidden weights at std n^-1/2, so sizes stop changing after one hidden layer."""
    assert mlp_exponents(row, family, hidden_layers=1) == mlp_exponents(row, family, hidden_layers=4)


def test_maximal_update_rows() -> None:
    maximal = {r for r in BUILTIN for f in ("sgd", "adam") if is_maximal_update(r, f)}
    assert maximal == {"mup", "mup-table8", "mup-constant-lr", "mfp", "depth-mup", "completep"}


half_integers = st.integers(-4, 4).map(lambda k: k / 2)
shifts = st.builds(Power, half_integers, half_integers)


@settings(max_examples=40, deadline=None)
@given(hidden=shifts, output=shifts, inp=shifts, family=st.sampled_from(["sgd", "adam"]))
def test_abc_symmetry_leaves_predictions_unchanged(hidden: Power, output: Power, inp: Power, family: str) -> None:
    """TP-IV §3: shifting multiplier into init and LR (Rule.shifted) is the same dynamics."""
    shifted = MUP.shifted({"hidden": hidden, "output": output, "input": inp})
    for a, b in zip(chain(MUP, family, 2), chain(shifted, family, 2)):
        assert (a.sigma, a.forward, a.backward, a.delta) == (b.sigma, b.forward, b.backward, b.delta)


def test_exponent_of_a_power() -> None:
    p = Power(fan_in=-1, fan_out=0.5)
    assert exponent(p, True, True) == -0.5
    assert exponent(p, False, True) == 0.5
    assert exponent(p, True, False) == -1


def test_predicted_by_statistic_and_step() -> None:
    hidden = chain("sp", "adam")[1]
    assert hidden.predicted("mean_abs", 0) == 0.0  # at init: the forward size
    assert hidden.predicted("mean_abs", 2) == 1.0  # then max(c, Delta)
    assert hidden.predicted("mean_abs_delta", 0) is None
    assert hidden.predicted("mean_abs_delta", 1) == 1.0
    with pytest.raises(ValueError, match="unknown statistic"):
        hidden.predicted("l2", 1)

"""Predicted width exponents of a coordinate check, derived from the exponent table.

A coordinate check measures, for each module output ``h``, ``mean|h_t|`` and ``mean|h_t - h_0|`` at
several widths ``n`` and fits ``log2(stat) = s log2(n) + c``. This module predicts ``s`` from a row of
:mod:`scaling.table`, by the one-step, first-order, full-alignment calculus of Tensor Programs IV
(Yang & Hu 2021, §3 and §5: the abc-parameterization and its "stable / trainable / feature learning"
exponents), TP-V (Yang et al. 2022, §2; its Tables 3 and 8 are rows of scaling.table) and Everett et
al. 2024 (§2-3: alignment exponents; "full alignment" takes each at its largest value). Every size
below is an exponent of ``n``: "size ``x``" means ``Theta(n^x)`` per coordinate. All widths scale
together, ``n = m n_base``.

**The chain.** ``x (finite) -> h_1 = W_1 x + b_1 (input layer) -> h_l = W_l phi(h_{l-1}) + b_l
(hidden, l = 2..L) -> f = W_out phi(h_L) + b_out (readout)``, with ``phi`` elementwise (ReLU):
``phi`` keeps a size. From the table's rule for a weight's role read three exponents:

- ``sigma``: the entry size of the effective weight ``W = alpha w`` at init: the rule's init
  exponent + its multiplier exponent + PyTorch's default (``-1/2`` for an infinite fan-in,
  ``std = 1/sqrt(fan_in)``; ``0`` for a finite one);
- ``alpha``: the multiplier exponent; ``eta``: the learning-rate exponent of the optimizer family.

A power ``m_in^p m_out^q`` has exponent ``p [fan-in infinite] + q [fan-out infinite]``.

**Forward** (init): ``c_0 = 0``; ``c_1 = sigma_in`` (finite sum); ``c_l = sigma_h + 1/2 + c_{l-1}``
(a sum of ``n`` independent terms, central limit); ``c_f = sigma_out + 1/2 + c_L``. A bias adds its
own init size (the max is kept).

**Backward** (gradient at a layer's output, loss gradient at the logits O(1)): ``g_f = 0``;
``g_L = sigma_out`` (a finite sum over the outputs); ``g_{l-1} = g_l + sigma_h + 1/2``.

**Update** of ``W``'s entries after one step: SGD moves ``w`` by ``eta x grad_w``, and
``grad_w = alpha g_l phi(h_{l-1})^T``, so ``W`` moves by ``2 alpha + eta + g_l + c_{l-1}``; Adam's
first step is ``eta sign(grad_w)`` (epsilon negligible, as the table scales it), so ``alpha + eta``.
A bias moves by ``eta_b + g_l`` (SGD) or ``eta_b`` (Adam); biases carry no multiplier.

Adafactor (:data:`scaling.table.ADAFACTOR_NOTE`) steps relative to the parameter's RMS: ``w`` moves by
``lr RMS(w)``, so ``W = alpha w`` by ``eta + sigma`` (a bias by ``eta_b`` plus its init size); it is
otherwise Adam-like. Muon (:data:`scaling.table.MUON_NOTE`) trains the hidden weights only (the rest
with Adam, as :class:`scaling.optim.MuonAdam`) and is read by operator norms (Yang, Simon & Bernstein
2023, Condition 1): ``W``'s update has operator norm ``eta_op = alpha + eta + adjust`` (``adjust`` the
exponent of torch's ``"original"`` ``sqrt(max(1, fan_out/fan_in))``, 0 for a hidden weight), and moves
the layer's output, aligned with ``phi(h_{l-1})``, by ``eta_op + 1/2 [fan-in infinite] - 1/2 [fan-out
infinite] + c_{l-1}`` per coordinate (its entries: ``eta_op - 1/2``, an orthogonal ``n x n`` matrix).

**Change** of a layer's output after one step, ``Delta_l = max(own, propagated)``:

- own: ``dW phi(h_{l-1})``: the update is an outer product with ``phi(h_{l-1})`` on the same
  batch, so the fan-in sum is coherent: ``update + 1 + c_{l-1}`` (``+ 0`` for a finite fan-in);
- propagated through a hidden layer: ``W dphi(h_{l-1})``, a sum of ``n`` terms not aligned with
  ``W_0``'s rows: ``Delta_{l-1} + sigma_h + 1/2``;
- propagated through the readout: ``dphi(h_L)`` comes from gradients ``W_out^T (dloss/df)`` over a
  *finite* fan-out, so it is aligned with ``W_out``'s rows and the sum is coherent:
  ``Delta_L + sigma_out + 1``.

``mean|h_t|`` after a step has size ``max(c, Delta)``; at ``t = 0`` it is ``c``. We take the one-step
exponent of ``Delta`` as the prediction at every later step too (it holds while training stays in
the regime the first step sets).

**ReLU MLP 40-w-w-10, (input, hidden, logits) exponents of ``mean|h_1 - h_0|``:**

==========  ================  ==================
row         SGD               Adam
==========  ================  ==================
sp          (-1/2, 1/2, 1)    (0, 1, 3/2)
ntk         (-1/2, -1/2, 0)   (-1/2, -1/2, 0)
mup, mfp    (0, 0, 0)         (0, 0, 0)
==========  ================  ==================

SP with Adam: the hidden change ``Delta_L = 1`` is ``sign(W_out^T e)``-aligned, and ``W_out`` (entries
``n^-1/2``) sums it coherently over ``n`` coordinates: ``1 - 1/2 + 1 = 3/2``, above the readout's own
update (``1``). Measured (one Adam step at LR 1e-5 in float64, 3 seeds): the logits' slope is 1.33
over widths 256..2048 and 1.41 over 512..8192; the readout's own term alone ~1.0, the propagated
term ~1.5 (empirical, ours). With no hidden layer (the 10-w-2 network) the input layer's change is
only O(1) and the logits grow like ``n`` (measured 0.85 on 40-w-10, same setting).

==========  ================  ==================
row         Adafactor         Muon (hidden; Adam)
==========  ================  ==================
sp          (0, 1/2, 1)       (0, 0, 1)
ntk         (-1/2, -1/2, 0)   (-1/2, -1/2, 0)
mup, mfp    (0, 0, 0)         (0, 0, 0)
==========  ================  ==================

SP with Adafactor: the hidden weight's relative step moves its entries by ``n^-1/2`` (its RMS), its
output by ``n^1/2``, and the readout sums that coherently: ``1/2 - 1/2 + 1 = 1``, as its own update.
SP with Muon: the hidden update has operator norm ``lr``, an O(1) change of the hidden features, and the
logits grow like ``n`` from the readout's own Adam update. NTK's Adafactor column is its Adam column
(every NTK tensor is O(1)) and its Muon column gives SGD's operator norms (ours), so both predict SGD's
kernel-regime exponents.

NTK's Adam column is defined to give SGD's update sizes, so it predicts SGD's exponents. muP is the
row where every ``Delta`` is 0 (TP-IV §5, "maximal update"); the abc-symmetry
(:meth:`scaling.table.Rule.shifted`) leaves every prediction unchanged, so ``mup``, ``mup-table8``
and ``mfp`` agree. These exponents are checked by measurement in ``tests/test_coord.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scaling.baseline import init_exponent
from scaling.errors import ScalingError
from scaling.optim import optimizer_family
from scaling.table import OptimizerFamily, Parameterization, Power, Role, get_parameterization

Layer = Literal["input", "hidden", "logits"]
"""Where a layer sits in the chain: the output of an input-, hidden- or output-role weight."""

LAYER_OF_ROLE: dict[Role, Layer] = {"input": "input", "hidden": "hidden", "output": "logits"}


def exponent(p: Power, fan_in_infinite: bool, fan_out_infinite: bool) -> float:
    """The exponent of ``n`` in ``m_in^p m_out^q`` when all infinite dimensions scale like ``n``."""
    return p.fan_in * fan_in_infinite + p.fan_out * fan_out_infinite


@dataclass(frozen=True)
class LayerPrediction:
    """Exponents of one layer of the chain (sizes as powers of the width ``n``).

    ``sigma``, ``alpha``, ``eta``: its weight's effective init, multiplier and learning rate;
    ``forward`` (``c``): its output at init; ``backward`` (``g``): the loss gradient at its output;
    ``update``: the entries of its weight's one-step change; ``own``, ``propagated``: the two terms of
    ``delta``, the one-step change of its output (``propagated`` is ``None`` for the first layer).
    """

    layer: Layer
    sigma: float
    alpha: float
    eta: float
    forward: float
    backward: float
    update: float
    own: float
    propagated: float | None
    delta: float

    @property
    def size(self) -> float:
        """The exponent of ``mean|h_t|`` after a step: ``max(c, Delta)``."""
        return max(self.forward, self.delta)

    def predicted(self, stat: str, step: int) -> float | None:
        """The predicted slope of ``stat`` (``mean_abs`` or ``mean_abs_delta``) at ``step``."""
        if stat == "mean_abs":
            return self.forward if step == 0 else self.size
        if stat == "mean_abs_delta":
            return None if step == 0 else self.delta
        raise ScalingError(f"unknown statistic {stat!r}; choose 'mean_abs' or 'mean_abs_delta'")


@dataclass(frozen=True)
class WeightExponents:
    sigma: float
    alpha: float
    eta: float
    bias_init: float
    bias_eta: float


def weight_exponents(row: Parameterization, role: Role, family: OptimizerFamily) -> WeightExponents:
    """A weight's exponents (and its bias's) read from the table row, every infinite dimension ``n``."""
    fan_in, fan_out = role in ("hidden", "output"), role in ("input", "hidden")
    rule = row.rule(role)
    default = init_exponent(fan_in)  # PyTorch: std 1/sqrt(fan_in) for weights and biases alike
    # A bias along an infinite fan-out is a vector; the readout's bias (finite length) is finite.
    # Either reads m_in as its layer's fan-in multiplier (see scaling.table.Role).
    bias_rule = row.rule("vector" if fan_out else "finite")
    return WeightExponents(
        sigma=exponent(rule.init + rule.multiplier, fan_in, fan_out) + default,
        alpha=exponent(rule.multiplier, fan_in, fan_out),
        eta=exponent(rule.lr(family), fan_in, fan_out),
        bias_init=exponent(bias_rule.init, fan_in, fan_out) + default,
        # Muon takes no vectors: a bias is Adam's (scaling.optim.MuonAdam).
        bias_eta=exponent(bias_rule.lr("adam" if family == "muon" else family), fan_in, fan_out),
    )


def chain(
    parameterization: str | Parameterization,
    optimizer: str | type = "adam",
    hidden_layers: int = 1,
    bias: bool = True,
) -> list[LayerPrediction]:
    """Predicted exponents for every layer of the chain ``input -> hidden x hidden_layers -> readout``.

    Returns one :class:`LayerPrediction` per layer, input first, logits last (see the module
    docstring for the calculus). ``bias`` says whether each layer has a bias.
    """
    if hidden_layers < 0:
        raise ScalingError(f"hidden_layers must be >= 0, got {hidden_layers}")
    row = get_parameterization(parameterization)
    family = optimizer_family(optimizer)
    hidden: list[Role] = ["hidden"] * hidden_layers
    roles: list[Role] = ["input", *hidden, "output"]
    # Muon trains the hidden weights only; the rest are Adam's (scaling.optim.MuonAdam).
    families = [family if family != "muon" or r == "hidden" else "adam" for r in roles]
    weights = [weight_exponents(row, r, f) for r, f in zip(roles, families)]

    # Backward: g at each layer's output, from the logits down.
    g = [0.0] * len(roles)
    for i in range(len(roles) - 2, -1, -1):
        above = weights[i + 1]
        g[i] = g[i + 1] + above.sigma + (0.0 if roles[i + 1] == "output" else 0.5)

    out: list[LayerPrediction] = []
    c_prev, delta_prev = 0.0, None  # the network input: O(1), does not change
    for i, (role, w) in enumerate(zip(roles, weights)):
        fan_in = 0.5 if role != "input" else 0.0  # central-limit sum over an infinite fan-in
        forward = w.sigma + fan_in + c_prev
        fan_out = 0.5 if role != "output" else 0.0
        layer_family = families[i]
        if layer_family == "sgd":
            update = 2 * w.alpha + w.eta + g[i] + c_prev
            bias_update = w.bias_eta + g[i]
        elif layer_family == "adafactor":  # a step relative to RMS(W): eta + sigma
            update = w.eta + w.sigma
            bias_update = w.bias_eta + w.bias_init
        else:
            update = w.alpha + w.eta
            bias_update = w.bias_eta
        own = update + 2 * fan_in + c_prev  # coherent sum over the fan-in (1 if infinite)
        if layer_family == "muon":
            # Operator norm alpha + eta + adjust ("original": sqrt(max(1, fan_out/fan_in))), times
            # |phi(h_{l-1})| = sqrt(fan_in) c_{l-1}, spread over fan_out coordinates.
            eta_op = w.alpha + w.eta + max(0.0, fan_out - fan_in)
            update = eta_op - 0.5
            own = eta_op + fan_in - fan_out + c_prev
        if bias:
            forward, own = max(forward, w.bias_init), max(own, bias_update)
        propagated = None
        if delta_prev is not None:
            # Through the readout the change is aligned with W_out's rows (finite fan-out): +1.
            propagated = delta_prev + w.sigma + (1.0 if role == "output" else 0.5)
        delta = own if propagated is None else max(own, propagated)
        out.append(LayerPrediction(LAYER_OF_ROLE[role], w.sigma, w.alpha, w.eta, forward, g[i], update, own,
                                   propagated, delta))
        c_prev, delta_prev = forward, delta
    return out


def mlp_exponents(
    parameterization: str | Parameterization, optimizer: str | type = "adam", hidden_layers: int = 1
) -> dict[Layer, float]:
    """The predicted exponent of ``mean|h_1 - h_0|`` of a ReLU MLP's input layer, hidden layer, logits."""
    layers = chain(parameterization, optimizer, hidden_layers)
    by_layer = {p.layer: p.delta for p in layers}  # the last hidden layer stands for the hidden ones
    return {"input": by_layer["input"], "hidden": by_layer.get("hidden", float("nan")), "logits": by_layer["logits"]}


def is_maximal_update(parameterization: str | Parameterization, optimizer: str | type = "adam") -> bool:
    """Whether every layer's features and logits change by O(1) in one step (muP's desideratum).

    TP-IV §5: the maximal update parameterization is the one where every layer's ``Delta`` is
    ``Theta(1)``. Under such a row every other activation (norms, attention, residual sums) is
    predicted O(1) too, which is what a coordinate check expects of modules outside the chain.
    """
    return all(abs(p.delta) < 1e-12 and p.size <= 1e-12 for p in chain(parameterization, optimizer))

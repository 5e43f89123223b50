"""The exponent table: every width parameterization as one row of data.

A parameterization says, for each parameter *role* and each optimizer family, how four quantities
scale with the width multipliers of the tensor's infinite dimensions (``m = n / n_base``):

- ``init``: the initialization std, relative to PyTorch's default init of that tensor;
- ``multiplier``: a constant the layer multiplies its input by in the forward pass;
- ``lr``: the learning rate, relative to the base learning rate (one column per optimizer family);
- ``eps``: Adam's epsilon, derived (see :meth:`Rule.eps`).

Every entry is a :class:`Power` ``m_in ** p * m_out ** q``, where ``m_in`` / ``m_out`` are the fan-in /
fan-out multipliers (1 for a finite dimension). At ``m_in = m_out = 1`` every power is 1, so every
row reproduces PyTorch's default model at base width, bit for bit.

This is the abc-parameterization of Tensor Programs IV (Yang & Hu 2021, §3: ``W = n^-a w``,
``w_0 ~ N(0, n^-2b)``, learning rate ``eta n^-c``) written relative to PyTorch's defaults. Rows:

- ``sp``: PyTorch's default ("standard") parameterization with one global learning rate;
- ``ntk``: the neural tangent parameterization (TP-IV §3, Jacot et al. 2018);
- ``mfp``: the mean-field parameterization, all parameters initialized at O(1) (Everett et al. 2024, §2);
- ``mup``: the maximal update parameterization, TP-V Table 3 form (no forward multipliers);
- ``mup-table8``: TP-V Table 8 form, microsoft/mup's choice (readout multiplier ``1/m_in``);
- ``depth-mup`` and ``completep``: ``mup`` in width with a second dimension, depth (:class:`DepthRule`):
  residual branches multiplied by ``m_L^-alpha`` with ``alpha = 1/2`` (Depth-muP, TP-VI) or ``alpha = 1``
  (CompleteP, Dey et al. 2025), and their in-branch learning-rate and epsilon corrections.

``mup`` and ``mup-table8`` (and ``mfp``) are the same training dynamics by the abc-symmetry
(:meth:`Rule.shifted`). ``sp`` and ``ntk`` use one global learning rate and are different dynamics
(both lie in Everett et al. 2024's other class, §2.1, only with per-layer learning rates).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, get_args

from scaling.errors import ScalingError

Role = Literal["input", "hidden", "output", "vector", "finite"]
"""What a parameter does, read from which of its dimensions are infinite (width-like).

- ``input``: finite fan-in, infinite fan-out (first ``Linear``; an ``Embedding`` whose dim is a width);
- ``hidden``: infinite fan-in and fan-out;
- ``output``: infinite fan-in, finite fan-out (the readout);
- ``vector``: a 1-D tensor along a width (biases, norm gains). Its fan-in multiplier ``m_in`` is the
  fan-in multiplier of the layer it biases, because PyTorch draws a bias with std ``1/sqrt(fan_in)``;
- ``finite``: no infinite dimension (the readout bias, scalars). Its ``m_in`` is read like a vector's.
"""

OptimizerFamily = str
"""The name of an optimizer family: a column of the table (see :data:`FAMILIES`)."""

WeightDecayMode = Literal["coupled", "independent"]

ROLES: tuple[Role, ...] = get_args(Role)
WEIGHT_DECAY_MODES: tuple[WeightDecayMode, ...] = get_args(WeightDecayMode)


@dataclass(frozen=True)
class Power:
    """The monomial ``m_in ** fan_in * m_out ** fan_out`` in the width multipliers of one tensor."""

    fan_in: float = 0.0
    fan_out: float = 0.0

    def __call__(self, m_in: float, m_out: float) -> float:
        # Exact 1.0 at base width: `1.0 ** p == 1.0` for every p, so base width is bit-for-bit SP.
        return float(m_in**self.fan_in * m_out**self.fan_out)

    def __add__(self, other: Power) -> Power:
        return Power(self.fan_in + other.fan_in, self.fan_out + other.fan_out)

    def __sub__(self, other: Power) -> Power:
        return Power(self.fan_in - other.fan_in, self.fan_out - other.fan_out)

    def __mul__(self, k: float) -> Power:
        return Power(self.fan_in * k, self.fan_out * k)

    __rmul__ = __mul__

    def __neg__(self) -> Power:
        return Power(-self.fan_in, -self.fan_out)

    def __str__(self) -> str:
        parts = [_factor("m_in", self.fan_in), _factor("m_out", self.fan_out)]
        return " ".join(p for p in parts if p) or "1"


def _factor(symbol: str, p: float) -> str:
    if p == 0:
        return ""
    if p == 1:
        return symbol
    exponent = {0.5: "1/2", -0.5: "-1/2", 1.5: "3/2", -1.5: "-3/2"}.get(p, f"{p:g}")
    return f"{symbol}^{exponent}"


ONE = Power()
M_IN = Power(fan_in=1)
M_OUT = Power(fan_out=1)


EpsKind = Literal["gradient", "pair"]
"""How a family's epsilon option scales per tensor (see :meth:`Rule.eps_for`).

- ``gradient``: one float added to the gradient's normalizer (Adam's ``eps``), scaled like the gradient;
- ``pair``: Adafactor's ``(eps1, eps2)``: ``eps1`` (``None`` or a float) a floor on squared-gradient
  statistics, scaled like the gradient squared; ``eps2`` a floor on the parameter's RMS, scaled like the
  tensor's init std relative to base.
"""


@dataclass(frozen=True)
class Family:
    """An optimizer family: a column of the exponent table.

    ``shift`` is how the family's learning-rate exponent answers the abc-symmetry (TP-IV, Yang & Hu
    2021, §3, Eq. 2): with ``w -> n^-t w`` (and the multiplier ``x n^t``) the gradient of ``w`` gains
    ``n^t``, so an update proportional to the gradient (SGD) keeps ``W``'s update only if its learning
    rate takes ``n^-2t`` (``shift = 2``), an update normalized entrywise (Adam) or orthogonalized
    (Muon) if it takes ``n^-t`` (``shift = 1``), and an update relative to the parameter's own RMS
    (Adafactor: ``w`` moves by ``lr RMS(w)``, which rescales with ``w`` itself) if it keeps it
    (``shift = 0``). ``eps`` names the optimizer option that is an epsilon (Adam's ``eps``), which the
    plan scales per tensor as ``eps_kind`` says (:data:`EpsKind`, :meth:`Rule.eps_for`); ``None`` when
    the family has none the plan should set.
    """

    name: str
    shift: float
    eps: str | None
    summary: str
    eps_kind: EpsKind = "gradient"
    gradient_power: float = 0.0
    """How the update answers a gradient scaled by ``k`` with the parameter unchanged: ``k ** gradient_power``
    (SGD 1; Adam, Muon and Adafactor 0: their updates are normalized). A residual branch multiplier scales
    the gradients of its parameters and nothing else, so this sets the depth column (:class:`DepthRule`)."""


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("sgd", shift=2.0, eps=None, gradient_power=1.0,
               summary="updates proportional to the gradient (SGD, momentum, ASGD)"),
        Family("adam", shift=1.0, eps="eps", summary="entrywise-normalized updates (Adam, AdamW, Adamax, NAdam, "
               "RAdam, RMSprop, Adagrad, sign methods)"),
        # torch.optim.Adafactor: theta -= max(eps2, RMS(theta)) min(lr, 1/sqrt(t)) U_hat, with U_hat the
        # gradient normalized by its factored second moment and clipped to RMS <= d: a step relative to
        # RMS(theta) (Shazeer & Stern 2018, §5-8), hence shift 0.
        Family("adafactor", shift=0.0, eps="eps", eps_kind="pair",
               summary="updates relative to the parameter's RMS (Adafactor)"),
        # torch.optim.Muon: theta -= lr adjust(A, B) NS(momentum), an orthogonalized update of operator
        # norm ~1, whatever the gradient's scale (Jordan et al. 2024): shift 1, as Adam. Its eps only
        # stabilizes the Newton-Schulz normalization; the plan leaves it alone.
        Family("muon", shift=1.0, eps=None,
               summary="orthogonalized updates of 2-D hidden weights (Muon; the rest with Adam)"),
    )
}
"""The families the table has a column for, by name."""

PYTORCH_STD = Power(fan_in=-0.5)
"""The width power of PyTorch's default std of a ``Linear`` weight or bias (``1/sqrt(fan_in)``); every
other default (embeddings, norm gains) is width-independent, and such tensors have ``m_in = 1``, where
this power is 1 too (see :mod:`scaling.baseline`)."""


def family(name: str) -> Family:
    """The :class:`Family` of a column name, or a :class:`ScalingError` listing the columns."""
    if name not in FAMILIES:
        raise ScalingError(f"the table has no column for optimizer family {name!r}; columns: {', '.join(FAMILIES)}")
    return FAMILIES[name]


@dataclass(frozen=True)
class Rule:
    """How one role scales: init std, forward multiplier and a learning rate per optimizer family.

    ``lrs`` maps a family (a column, :data:`FAMILIES`) to its learning-rate power; a family left out
    keeps the base learning rate (power 1), as in SP.
    """

    init: Power = ONE
    multiplier: Power = ONE
    lrs: Mapping[str, Power] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.lrs) - set(FAMILIES)
        if unknown:
            raise ScalingError(f"a rule gives learning rates for {sorted(unknown)}, which are not columns of the "
                               f"table ({', '.join(FAMILIES)})")
        object.__setattr__(self, "lrs", {f: self.lrs.get(f, ONE) for f in FAMILIES})

    def lr(self, family_name: OptimizerFamily) -> Power:
        """The learning-rate multiplier for an optimizer family."""
        return self.lrs[family(family_name).name]

    def with_lr(self, family_name: OptimizerFamily, power: Power) -> Rule:
        """This rule with one family's learning-rate power replaced (a research row's one change, say)."""
        return replace(self, lrs={**self.lrs, family(family_name).name: power})

    def gradient(self) -> Power:
        """How the gradient of this tensor scales.

        SGD moves a tensor by ``lr_sgd * grad`` and Adam by ``lr_adam * O(1)``; the two columns of a
        row are defined to give updates of the same size, so the gradient scales like
        ``lr_adam / lr_sgd``.
        """
        return self.lrs["adam"] - self.lrs["sgd"]

    def eps(self) -> Power:
        """Adam's epsilon, scaled like the gradient of this tensor (:meth:`gradient`).

        An epsilon that does not shrink with the gradient swamps the update at large width (TP-V,
        Yang et al. 2022, App. B.3; Everett et al. 2024, §4.3).
        """
        return self.gradient()

    def std(self) -> Power:
        """The init std of the stored tensor ``w`` relative to the base model's: the row's factor times
        PyTorch's default power (:data:`PYTORCH_STD`). It does not see :class:`RoleScales` constants or a
        zero init: a zero-initialized tensor keeps the relation its init would have had."""
        return self.init + PYTORCH_STD

    def eps_for(self, family_name: OptimizerFamily) -> tuple[Power, ...]:
        """The epsilon powers of a family's ``eps`` option (:data:`EpsKind`): ``(eps,)`` for Adam's kind,
        ``(eps1, eps2)`` for Adafactor's; ``()`` when the family has no epsilon the plan sets.

        Adafactor (``torch.optim.Adafactor``): ``eps1`` floors squared-gradient statistics (the row mean
        of the factored second moment), so it scales like the gradient squared, ``2 x`` :meth:`gradient`
        (where torch also floors the variance estimate by ``eps1 ** 2``, that floor then shrinks with a
        shrinking gradient and never swamps the update); ``eps2`` floors ``RMS(theta)`` in the relative
        step, so it scales like the tensor's init std, :meth:`std`.
        """
        column = family(family_name)
        if column.eps is None:
            return ()
        if column.eps_kind == "pair":
            return (2 * self.gradient(), self.std())
        return (self.eps(),)

    def shifted(self, t: Power) -> Rule:
        """The abc-symmetry: the same training dynamics with the multiplier moved into init and LR.

        With ``W = a * w``, replacing ``a -> a * n^t`` and ``w -> w * n^-t`` leaves ``W`` unchanged;
        the update of ``W`` stays the same if each family's learning rate takes ``n^(-shift t)``
        (:class:`Family`: SGD ``n^-2t``, Adam and Muon ``n^-t``, Adafactor ``n^0``; Adam's epsilon
        follows the gradient, see :meth:`eps`). TP-IV (Yang & Hu 2021) §3, Eq. (2); Everett et al. 2024, §2.1.
        """
        return Rule(
            init=self.init - t,
            multiplier=self.multiplier + t,
            lrs={f: p - FAMILIES[f].shift * t for f, p in self.lrs.items()},
        )


@dataclass(frozen=True)
class DepthRule:
    """How a row scales with depth: residual branches multiplied by ``m_L^-alpha``, ``m_L = L / L_base``.

    ``L`` counts the model's residual branches (or blocks) and ``L_base`` the base model's. A pre-LN
    network's stream is ``h_{l+1} = h_l + m_L^-alpha F_l(h_l)``. The desiderata (Yang et al. 2023,
    "Tensor Programs VI", §3; Bordelon et al. 2023; Dey et al. 2025, "CompleteP", §3 and Table 1):
    the stream stays O(1) at init and its change after a step stays O(1), each block contributing
    ``O(1/L)`` of it, coherent across the ``L`` blocks. The branch multiplier scales the gradient of
    every parameter in the branch by ``m_L^-alpha`` and nothing else, so:

    - learning rate of every in-branch parameter (hidden weights, their biases, pre-LN gains):
      ``F_l`` must move by ``m_L^(alpha-1)``. A normalized update (Adam, Muon, Adafactor:
      :attr:`Family.gradient_power` 0) moves a parameter by its learning rate, hence
      ``m_L^(alpha-1)`` (CompleteP Table 1; TP-VI's Adam rule ``eta/sqrt(L)`` at ``alpha = 1/2``); an
      SGD update by its learning rate times the gradient, hence ``m_L^(alpha-1) / m_L^-alpha =
      m_L^(2 alpha - 1)`` (TP-VI's SGD rule at ``alpha = 1/2``: depth-independent; ours at ``alpha = 1``);
    - Adam's epsilon follows the in-branch gradient, ``m_L^-alpha`` (CompleteP Table 1, "AdamW eps,
      residual blocks"); Adafactor's ``eps1`` (the gradient squared) ``m_L^-2 alpha``, ``eps2`` (the
      parameter's RMS, whose init depth does not change) 1;
    - init: unchanged (CompleteP Table 1); weight decay: AdamW's ``weight_decay`` unchanged with depth
      (CompleteP Table 1; nanoGPT-mup's ``completep`` branch), so the coupled weight-decay multiplier
      reads the width part of the learning rate only (:func:`weight_decay_multiplier`);
    - the embedding, the final norm and the readout are in no branch: nothing changes for them.

    ``alpha = 1/2`` is Depth-muP (TP-VI), ``alpha = 1`` is CompleteP. At ``m_L = 1`` every factor is
    exactly 1. Every exponent here is of ``m_L``.
    """

    alpha: float

    def __post_init__(self) -> None:
        if not (isinstance(self.alpha, (int, float)) and 0 <= self.alpha <= 2 and math.isfinite(self.alpha)):
            raise ScalingError(f"a depth rule's alpha must be a number in [0, 2] (1/2: Depth-muP, 1: CompleteP), "
                               f"got {self.alpha!r}")

    @property
    def branch(self) -> float:
        """The exponent of the residual-branch multiplier: ``-alpha``."""
        return -float(self.alpha)

    def lr(self, family_name: OptimizerFamily) -> float:
        """The exponent of the in-branch learning-rate factor for a family: ``alpha - 1 + gradient_power alpha``."""
        column = family(family_name)
        return float(self.alpha - 1 + column.gradient_power * self.alpha)

    def eps_for(self, family_name: OptimizerFamily) -> tuple[float, ...]:
        """The exponents of a family's in-branch epsilon factors, like :meth:`Rule.eps_for`: ``(-alpha,)``
        for Adam's kind, ``(-2 alpha, 0)`` for Adafactor's pair, ``()`` without an epsilon."""
        column = family(family_name)
        if column.eps is None:
            return ()
        if column.eps_kind == "pair":
            return (-2.0 * self.alpha, 0.0)
        return (-float(self.alpha),)


def depth_factor(exponent: float, m_depth: float) -> float:
    """``m_depth ** exponent``: exactly 1.0 at base depth (``1.0 ** p == 1.0``)."""
    return float(m_depth**exponent)


@dataclass(frozen=True)
class Parameterization:
    """One row of the exponent table: a :class:`Rule` per role and the attention-logit scaling.

    ``attention`` is the exponent of the head-dimension multiplier in the attention-logit scale,
    relative to PyTorch's ``1/sqrt(d_head)``: 0 keeps ``1/sqrt(d_head)``, -1/2 gives muP's
    ``1/d_head`` (TP-V §4, "attention logit scaling"), equal to SP at the base head dimension.
    """

    name: str
    rules: dict[Role, Rule]
    attention: float = 0.0
    citation: str = ""
    equivalent_to: str | None = field(default=None, compare=False)
    depth: DepthRule | None = None
    """The row's depth scaling (:class:`DepthRule`), or ``None``: residual branches unscaled at every
    depth and no depth factor on any learning rate (SP, muP: width-only rows)."""

    def rule(self, role: Role) -> Rule:
        """The scaling rule for a role."""
        return self.rules[role]

    def with_depth(self, alpha: float, name: str | None = None, citation: str = "") -> Parameterization:
        """This row with the depth rule of exponent ``alpha`` (:class:`DepthRule`): residual branches
        multiplied by ``m_L^-alpha`` and the depth corrections of in-branch learning rates and epsilon."""
        return replace(self, name=name or f"{self.name}-depth{alpha:g}", depth=DepthRule(alpha),
                       citation=citation or self.citation, equivalent_to=None)

    def shifted(self, shifts: dict[Role, Power], name: str | None = None) -> Parameterization:
        """Apply the abc-symmetry :meth:`Rule.shifted` to some roles: the same dynamics, new form."""
        rules = {r: (rule.shifted(shifts[r]) if r in shifts else rule) for r, rule in self.rules.items()}
        return replace(self, name=name or f"{self.name}-shifted", rules=rules)

    def without_multipliers(self, name: str | None = None) -> Parameterization:
        """The equivalent row with every forward multiplier absorbed into init and learning rate."""
        return self.shifted({r: -rule.multiplier for r, rule in self.rules.items()}, name)

    def constant_lr(self, family_name: OptimizerFamily = "adam", name: str | None = None) -> Parameterization:
        """The equivalent row whose learning rate for ``family_name`` is the base LR for every role.

        The abc-symmetry (:meth:`Rule.shifted`) moves each role's LR factor into its init and forward
        multiplier: with a shift ``t`` equal to the role's LR power for a family of shift 1 (Adam, Muon),
        ``w`` is stored ``n^-t`` larger and multiplied by ``n^t`` in the forward pass, and its LR is 1.
        After :func:`scaling.parameterize`, a plain ``torch.optim.AdamW(model.parameters(), lr=...)``
        trains the same dynamics as the per-group form (OLMo-core calls this strategy ``constant_lr``).
        What differs is epsilon: each tensor's gradient scales like :meth:`Rule.gradient`, and one
        global ``eps`` cannot follow it (the per-group form of this row still scales it). Weight decay
        does not change: it is multiplicative (``w`` and ``W = n^t w`` decay alike), and the plan's
        per-group decay already gives every tensor the base model's per-step rate ``lr x weight_decay``
        (:func:`weight_decay_multiplier`), which is what one group applies.
        """
        column = family(family_name)
        if column.shift == 0:
            raise ScalingError(f"{column.name}'s learning rate does not answer the abc-symmetry (shift 0): "
                               "no row moves its factors into init and multipliers")
        if self.depth is not None:
            raise ScalingError(f"{self.name} scales in-branch learning rates with depth, and a branch's norm "
                               "gains and biases cannot carry a forward multiplier: it has no form without "
                               "per-layer groups")
        shifts = {r: rule.lr(column.name) * (1 / column.shift) for r, rule in self.rules.items()
                  if rule.lr(column.name) != ONE}
        return self.shifted(shifts, name or f"{self.name}-constant-lr")

    @property
    def has_multipliers(self) -> bool:
        """Whether any role needs a forward multiplier (only then are hooks or layer attributes set)."""
        return any(rule.multiplier != ONE for rule in self.rules.values())


HALF_IN = 0.5 * M_IN

ADAFACTOR_NOTE = """Adafactor's column (``torch.optim.Adafactor``; Shazeer & Stern 2018, §5-8).

torch steps ``theta -= max(eps2, RMS(theta)) min(lr, 1/sqrt(t)) U_hat``, ``U_hat`` the gradient
normalized entrywise by its factored second moment and clipped to ``RMS <= d``: the entries of ``w``
move by ``lr RMS(w)``. Under the abc-symmetry ``w -> n^-t w`` that step rescales with ``w`` itself, so
the column's shift is 0 (TP-IV, Yang & Hu 2021, §3, Eq. 2 argument). muP wants ``W``'s entries to move
as under muP with Adam (``lr_adam``), so ``lr_adafactor = lr_adam / (init std of w relative to base)``
(:meth:`Rule.std`): muP (Table 3 form) input 1, hidden ``m_in^-1/2``, output 1 (its init is
``1/fan_in``), vector 1, finite 1. Everett et al. 2024 (§2, Table 1) write ``W = n^-a w``,
``w_0 ~ n^-b``, LR ``n^-c`` for Adafactor ("Adam with parameter scaling"), so ``W`` moves by
``n^-(a+b+c)``: muP's ``W`` update sizes (1, ``1/n``, ``1/n``) with its ``a+b`` (0, 1/2, 1) give their
``c = (0, 1/2, 0)``, our (1, ``m_in^-1/2``, 1): any split of ``a+b`` is one of our abc-equivalent rows.
(Derived from their update rule; we did not transcribe their printed table.) ``min(lr, 1/sqrt(t))``
caps the relative step at ``1/sqrt(t)``: width scaling only lowers muP's LRs, so a base LR below
``1/sqrt(t)`` stays the one in force.
"""

MUON_NOTE = """Muon's column (``torch.optim.Muon``, 2-D parameters only; Jordan et al. 2024).

The spectral condition (Yang, Simon & Bernstein 2023, "A Spectral Condition for Feature Learning",
Condition 1) fixes a weight update's operator norm at ``~ sqrt(fan_out / fan_in)``. Muon's
orthogonalized update has operator norm ~1, times ``lr adjust(A, B)`` with ``A, B = fan_out, fan_in``
and torch's ``adjust_lr_fn``: ``None``/``"original"`` ``sqrt(max(1, A/B))``, ``"match_rms_adamw"``
``0.2 sqrt(max(A, B))``. The LR multiplier that keeps the condition is ``[sqrt(A/B) / adjust(A, B)] /
[sqrt(A0/B0) / adjust(A0, B0)]`` (``A0, B0`` the base shape). The column is written for "original"
(muP: input 1, hidden 1, output ``m_in^-1/2`` when the readout is given to Muon); the plan converts it
for another ``adjust_lr_fn`` (:func:`scaling.optim.muon_adjust`). Shift 1: the update does not see the
gradient's scale, as Adam's.
"""

SP = Parameterization(
    name="sp",
    rules={role: Rule() for role in ROLES},
    citation="PyTorch's default init and one global learning rate (TP-IV, Yang & Hu 2021, §3: "
    "the 'standard parametrization').",
)
"""Standard parameterization: PyTorch's defaults, every multiplier 1 at every width."""

MUP = Parameterization(
    name="mup",
    rules={
        # TP-V Table 3, "input weights & all biases": init var 1/fan_in (O(1) here), SGD LR fan_out,
        # Adam LR 1.
        # Adafactor LR = Adam LR / init std relative to base (ADAFACTOR_NOTE): 1. Muon: ~ sqrt(fan_out /
        # fan_in) / adjust (MUON_NOTE), 1 with torch's "original" adjust sqrt(max(1, A/B)).
        "input": Rule(lrs={"sgd": M_OUT}),
        # TP-V Table 3, "hidden weights": init var 1/fan_in (PyTorch's default), SGD LR 1
        # (fan_out/fan_in for non-square multipliers, as microsoft/mup), Adam LR 1/fan_in.
        # Adafactor: m_in^-1 / m_in^-1/2 = m_in^-1/2. Muon: the spectral condition (Yang, Simon &
        # Bernstein 2023, Condition 1) sqrt(fan_out/fan_in) over adjust sqrt(A/B): 1.
        "hidden": Rule(lrs={"sgd": M_OUT - M_IN, "adam": -M_IN, "adafactor": -HALF_IN}),
        # TP-V Table 3, "output weights": init var 1/fan_in^2 (PyTorch gives 1/fan_in: x m_in^-1/2),
        # SGD and Adam LR 1/fan_in. Adafactor: m_in^-1 / m_in^-1 = 1. Muon (a readout given to Muon):
        # sqrt(fan_out/fan_in) = m_in^-1/2, adjust sqrt(max(1, A/B)) = 1 for a wide readout.
        "output": Rule(init=-HALF_IN, lrs={"sgd": -M_IN, "adam": -M_IN, "muon": -HALF_IN}),
        # Biases are input weights with fan_in 1: O(1) init (PyTorch's shrinks like the layer's
        # 1/sqrt(fan_in), so x sqrt(m_in)), SGD LR fan_out, Adam LR 1. Adafactor 1 (O(1) init); Muon
        # takes no vectors (the plan refuses them).
        "vector": Rule(init=HALF_IN, lrs={"sgd": M_OUT}),
        "finite": Rule(init=HALF_IN),
    },
    attention=-0.5,
    citation="TP-V (Yang et al. 2022), Table 3; biases per its 'input weights & all biases' column; "
    "attention 1/d_head per §4.",
    equivalent_to="mup-table8",
)
"""muP in the form of TP-V Table 3: no forward multipliers; works on any model."""

MUP_TABLE8 = Parameterization(
    name="mup-table8",
    rules={
        **MUP.rules,
        # TP-V Table 8: output weights get a forward multiplier 1/fan_in, init var 1 (x sqrt(m_in)
        # relative to PyTorch), SGD LR fan_in, Adam LR 1. This is Table 3's output rule shifted by
        # t = -1 (see Rule.shifted); what microsoft/mup's MuReadout implements. Adafactor (shift 0):
        # Adam's 1 over the stored tensor's std relative to base (m_in^1/2 m_in^-1/2 = 1): 1. Muon
        # (shift 1): Table 3's m_in^-1/2 times m_in: W = w / m_in must move by m_in^-1/2 in operator
        # norm, so w by m_in^1/2.
        "output": Rule(init=HALF_IN, multiplier=-M_IN, lrs={"sgd": M_IN, "adam": ONE, "muon": HALF_IN}),
    },
    attention=-0.5,
    citation="TP-V (Yang et al. 2022), Table 8 (microsoft/mup's MuReadout); attention per §4.",
    equivalent_to="mup",
)
"""muP in the form of TP-V Table 8 (microsoft/mup's): readout multiplier ``1/m_in``. Needed for a
readout tied to an input embedding, whose rules must then equal the input's."""

NTK = Parameterization(
    name="ntk",
    rules={
        # W = w / sqrt(fan_in), w ~ N(0, 1): multiplier m_in^-1/2, init x sqrt(m_in) relative to
        # PyTorch; one global SGD learning rate (TP-IV §3, "NTK parametrization"). The gradient of
        # w is (backprop ~ m_out^-1/2 into the fan-out space) x (multiplier): Adam's LR is SGD's
        # times that, so that Adam moves W as much as SGD does.
        # Adafactor: Adam's LR over the stored tensor's init std relative to base, which is O(1) for
        # every NTK tensor (w ~ N(0, 1)): Adafactor's column is Adam's. Muon (ours, as Adam's): the LR
        # that gives SGD's operator-norm update, lr_sgd |g| |x| / fan_in (input m_out^0, hidden and
        # output m_in^-1/2), over Muon's multiplier x adjust ("original": input m_out^1/2, hidden
        # (m_out/m_in)^1/2 m_in^-1/2, output m_in^-1/2).
        "input": Rule(lrs={"adam": -0.5 * M_OUT, "adafactor": -0.5 * M_OUT, "muon": -0.5 * M_OUT}),
        "hidden": Rule(init=HALF_IN, multiplier=-HALF_IN, lrs={"adam": Power(-0.5, -0.5),
                                                               "adafactor": Power(-0.5, -0.5),
                                                               "muon": Power(0.5, -0.5)}),
        "output": Rule(init=HALF_IN, multiplier=-HALF_IN, lrs={"adam": -HALF_IN, "adafactor": -HALF_IN}),
        "vector": Rule(init=HALF_IN, lrs={"adam": -0.5 * M_OUT, "adafactor": -0.5 * M_OUT}),
        "finite": Rule(init=HALF_IN),
    },
    citation="TP-IV (Yang & Hu 2021), §3 (NTK parametrization, global SGD learning rate). Adam's "
    "column is ours: the learning rate that gives SGD's update size (see Rule.eps).",
)
"""Neural tangent parameterization. Its Adam column gives the same one-step update sizes as SGD, so
both optimizers stay in the kernel regime (features move like ``1/sqrt(n)``)."""

MFP = replace(
    # Mean-field: every parameter O(1) at init (b = 0), the 1/fan_in scaling carried by multipliers.
    MUP.shifted({"hidden": -HALF_IN, "output": -M_IN}, name="mfp"),
    citation="Mean-field parametrization as in Everett et al. 2024, §2 (Table 1): muP shifted by "
    "the abc-symmetry so that every initialization is O(1).",
    equivalent_to="mup",
)
"""Mean-field parameterization: O(1) init everywhere, multipliers ``m_in^-1/2`` (hidden) and
``m_in^-1`` (output). The same dynamics as muP (Everett et al. 2024, §2.1)."""

@dataclass(frozen=True)
class RoleScales:
    """Width-independent constants per role, on top of a row's width scaling.

    TP-V (Yang et al. 2022, §3 and App. F) tunes such constants at base width (the learning rate, the
    init scale, the input and output multipliers) and transfers them as they are: the table scales
    with width, these do not. Each maps a role to a factor (missing roles: 1):

    - ``lr``: multiplies the learning rate of the role's parameters;
    - ``init``: multiplies their initialization (0 zero-initializes);
    - ``multiplier``: multiplies the forward multiplier of the role's weights (``input``, ``hidden``,
      ``output``; a layer gets a hook or attribute where the product is not 1).
    """

    lr: dict[str, float] = field(default_factory=dict)
    init: dict[str, float] = field(default_factory=dict)
    multiplier: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind, mapping in (("lr", self.lr), ("init", self.init), ("multiplier", self.multiplier)):
            for role, value in mapping.items():
                if role not in ROLES:
                    raise ScalingError(f"RoleScales.{kind} names {role!r}, not a role; choose from {ROLES}")
                low_ok = kind == "init"  # a zero init is a choice; a zero LR or multiplier is a bug
                if not math.isfinite(value) or value < 0 or (value == 0 and not low_ok):
                    raise ScalingError(f"RoleScales.{kind}[{role!r}] must be a positive number, got {value}")
        if any(r in self.multiplier for r in ("vector", "finite")):
            raise ScalingError("RoleScales.multiplier applies to weights (input, hidden, output), not vectors")

    @classmethod
    def from_dict(cls, scales: Mapping[str, Mapping[str, float]]) -> RoleScales:
        """From the dict form sweeps and configs store: ``{"lr": {...}, "init": {...}, "multiplier": {...}}``."""
        unknown = set(scales) - {"lr", "init", "multiplier"}
        if unknown:
            raise ScalingError(f"scales has unknown kinds {sorted(unknown)}; use 'lr', 'init' and 'multiplier'")
        return cls(**{kind: {str(r): float(v) for r, v in roles.items()} for kind, roles in scales.items()})

    def factor(self, kind: str, role: str) -> float:
        """The constant of ``kind`` (``lr``, ``init`` or ``multiplier``) for ``role``."""
        return float(getattr(self, kind).get(role, 1.0))

    def __bool__(self) -> bool:
        return bool(self.lr or self.init or self.multiplier)


MUP_CONSTANT_LR = replace(
    MUP.constant_lr("adam", name="mup-constant-lr"),
    citation="TP-V (Yang et al. 2022), Table 3 shifted by the abc-symmetry (TP-IV, Yang & Hu 2021, §3, Eq. 2) "
    "so that every Adam learning rate is the base LR: muP without per-layer groups.",
    equivalent_to="mup",
)
"""muP for an optimizer built from ``model.parameters()``: hidden weights stored ``m_in`` times PyTorch's
init and multiplied by ``1/m_in``, the readout as Table 8; every Adam LR 1 (epsilon aside, see
:meth:`Parameterization.constant_lr`)."""

DEPTH_MUP = MUP.with_depth(
    0.5, name="depth-mup",
    citation="TP-V (Yang et al. 2022) Table 3 in width; Depth-muP in depth (Yang et al. 2023, Tensor Programs VI, "
    "§3; Bordelon et al. 2023): residual branches x m_L^-1/2, in-branch Adam LR m_L^-1/2, eps m_L^-1/2.",
)
"""muP with Depth-muP's depth rule (``alpha = 1/2``, :class:`DepthRule`)."""

COMPLETEP = MUP.with_depth(
    1.0, name="completep",
    citation="TP-V (Yang et al. 2022) Table 3 in width; CompleteP in depth (Dey et al. 2025, Table 1): residual "
    "branches x m_L^-1, in-branch AdamW LR m_L^0, eps m_L^-1.",
)
"""muP with CompleteP's depth rule (``alpha = 1``, :class:`DepthRule`)."""

PARAMETERIZATIONS: dict[str, Parameterization] = {
    p.name: p for p in (SP, NTK, MFP, MUP, MUP_TABLE8, MUP_CONSTANT_LR, DEPTH_MUP, COMPLETEP)}
BUILTIN_PARAMETERIZATIONS = frozenset(PARAMETERIZATIONS)


def register_parameterization(row: Parameterization, *, replace_existing: bool = False) -> Parameterization:
    """Add a custom row to the table, so that sweeps and ``parameterize`` find it by name.

    A row of one's own (a per-layer learning-rate exponent under study, say) is registered in this
    process only; a sweep worker in another process must register it too. Built-in rows cannot be
    replaced, and a registered name only with ``replace_existing=True``.
    """
    if not row.name or row.name != row.name.lower():
        raise ScalingError(f"a row's name must be non-empty and lower case, got {row.name!r}")
    if set(row.rules) != set(ROLES):
        raise ScalingError(f"row {row.name!r} must give a rule for every role {ROLES}, got {sorted(row.rules)}")
    if row.name in BUILTIN_PARAMETERIZATIONS:
        raise ScalingError(f"{row.name!r} is a built-in row of the table; give the new row another name")
    if row.name in PARAMETERIZATIONS and not replace_existing and PARAMETERIZATIONS[row.name] != row:
        raise ScalingError(f"a row named {row.name!r} is registered already; pass replace_existing=True")
    PARAMETERIZATIONS[row.name] = row
    return row


def get_parameterization(name: str | Parameterization) -> Parameterization:
    """Look up a row of the table by name (``sp``, ``ntk``, ``mfp``, ``mup``, ``mup-table8``)."""
    if isinstance(name, Parameterization):
        return name
    key = name.lower().replace("_", "-")
    aliases = {"mup3": "mup", "mup-table3": "mup", "mup8": "mup-table8", "mf": "mfp", "standard": "sp"}
    key = aliases.get(key, key)
    if key not in PARAMETERIZATIONS:
        known = ", ".join(PARAMETERIZATIONS)
        raise ScalingError(f"unknown parameterization {name!r}; choose one of: {known}")
    return PARAMETERIZATIONS[key]


def weight_decay_multiplier(lr_multiplier: float, base_lr: float, mode: WeightDecayMode) -> float:
    """The per-group ``weight_decay`` to hand PyTorch, as a multiple of the base weight decay.

    PyTorch decays a tensor by ``lr * weight_decay`` per step (AdamW; an L2 term for SGD and Adam).

    - ``coupled`` (microsoft/mup's choice): ``weight_decay x 1/lr_multiplier``, so the per-step decay
      ``lr * wd`` is the base model's at every width, and still proportional to the base LR and its
      schedule (Wang & Aitchison 2024 argue for exactly this width-invariant timescale).
    - ``independent``: ``weight_decay / (base_lr * lr_multiplier)``, so the per-step decay is the base
      weight decay times the schedule factor, independent of the learning rate and the width
      (Loshchilov & Hutter 2019's decoupled form; Wortsman et al. 2023, §3.2.2).
    """
    if mode == "coupled":
        return 1.0 / lr_multiplier
    if mode == "independent":
        return 1.0 / (base_lr * lr_multiplier)
    raise ScalingError(f"unknown weight-decay mode {mode!r}; choose 'coupled' or 'independent'")


def describe(parameterization: Parameterization, family_name: OptimizerFamily) -> list[dict[str, str]]:
    """The row written out per role, for printing: init, multiplier, LR and epsilon as formulas."""
    column = family(family_name)
    rows = [
        {
            "role": role,
            "init": str(rule.init),
            "multiplier": str(rule.multiplier),
            "lr": str(rule.lr(column.name)),
            "eps": ", ".join(str(p) for p in rule.eps_for(column.name)) or "-",
        }
        for role, rule in parameterization.rules.items()
    ]
    depth = parameterization.depth
    if depth is not None:  # the depth dimension: factors on top of the width rule of every in-branch tensor
        rows.append({
            "role": "in a residual branch (x)",
            "init": "x 1",
            "multiplier": f"branch x {_factor('m_L', depth.branch) or '1'}",
            "lr": f"x {_factor('m_L', depth.lr(column.name)) or '1'}",
            "eps": ", ".join(f"x {_factor('m_L', e) or '1'}" for e in depth.eps_for(column.name)) or "-",
        })
    return rows


def isclose(a: Power, b: Power) -> bool:
    """Whether two powers agree (their exponents are sums of halves, so tolerance is only for float)."""
    return math.isclose(a.fan_in, b.fan_in, abs_tol=1e-12) and math.isclose(
        a.fan_out, b.fan_out, abs_tol=1e-12
    )


class _Planned(Protocol):
    parameterization: Parameterization


def attention_multiplier(row: Parameterization, d_head: int, base_d_head: int) -> float:
    """The row's attention-logit multiplier on PyTorch's ``1/sqrt(d_head)``: ``(d_head / base_d_head) ** attention``.

    1 for SP and NTK; ``sqrt(base_d_head / d_head)`` for muP, whose logits then scale like ``1/d_head``
    (TP-V, Yang et al. 2022, §4). Exactly 1 at the base head dimension. This is the value
    :func:`scaling.parameterize` sets as ``scaling_attention`` on :class:`scaling.nn.Attention`.
    """
    if d_head <= 0 or base_d_head <= 0:
        raise ScalingError(f"head dimensions must be positive, got d_head={d_head}, base_d_head={base_d_head}")
    if d_head < base_d_head:
        raise ScalingError(f"d_head {d_head} is narrower than base_d_head {base_d_head}: the base is the "
                           "narrowest model")
    return float((d_head / base_d_head) ** row.attention)


def softmax_scale(multiplier: float, d_head: int) -> float:
    """The ``scale=`` of ``F.scaled_dot_product_attention``: an attention multiplier over ``sqrt(d_head)``."""
    return multiplier / math.sqrt(d_head)


def attention_scale(plan_or_row: _Planned | Parameterization | str, d_head: int, base_d_head: int) -> float:
    """The softmax scale a custom attention must pass to ``F.scaled_dot_product_attention(..., scale=)``.

    muP scales attention logits by ``1/d_head`` rather than PyTorch's ``1/sqrt(d_head)`` (TP-V, Yang et
    al. 2022, §4, "attention logit scaling": query and key become correlated during training, so their
    dot product grows like ``d_head``, not ``sqrt(d_head)``). Written relative to the base model, the
    scale is ``(d_head / base_d_head) ** attention / sqrt(d_head)``: ``1/sqrt(d_head)`` for SP (and at
    the base head dimension for every row), ``sqrt(base_d_head) / d_head`` for muP.

    :func:`scaling.parameterize` sets this on :class:`scaling.nn.Attention` (which computes it with the
    same two functions, :func:`attention_multiplier` and :func:`softmax_scale`) but cannot reach an
    attention that calls SDPA itself; it warns (:class:`scaling.AttentionScalingWarning`), and such a
    module should store ``attention_scale(plan, d_head, base_d_head)`` after ``parameterize`` and pass
    it as ``scale=``.

    Args:
        plan_or_row: a :class:`scaling.ScalingPlan`, a row of the table or its name.
        d_head: the head dimension of the model at hand.
        base_d_head: the head dimension of the base model (the one tuned).
    """
    planned = plan_or_row if isinstance(plan_or_row, (str, Parameterization)) else plan_or_row.parameterization
    row = get_parameterization(planned)
    return softmax_scale(attention_multiplier(row, int(d_head), int(base_d_head)), int(d_head))

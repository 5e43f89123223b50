"""Applying a row of the exponent table to a model: :func:`parameterize` and :class:`ScalingPlan`.

``parameterize`` reads the model's width shapes against a base model, rescales the initialization in
place, sets the forward multipliers and attention-logit scales, and returns a plan keyed by parameter
name. The plan turns a base learning rate (and weight decay, epsilon) into param groups for any
``torch.optim`` optimizer, and prints itself as a table. Nothing is stored on ``Parameter`` objects.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import torch
from torch import nn
from torch.nn.modules.conv import _ConvNd

from scaling import nn as snn
from scaling.attention import carries_scale, scale_of_attention, set_own_scale, warn_custom_attention
from scaling.baseline import (
    INIT_MODES,
    InitMode,
    default_correction,
    init_power,
    measured_base,
    to_base,
    warn_own_init,
    warn_width_dependent_init,
)
from scaling.depth import DepthInfo, Unit, find_units, for_target, read_depth, to_base_names, unit_of, units_of
from scaling.errors import ScalingError
from scaling.optim import (
    LR_FACTOR_KEY,
    MUON_ADJUST,
    PART_KEY,
    OptimizerPair,
    default_eps,
    muon_adjust,
    optimizer_family,
)
from scaling.shapes import (
    ModelSpec,
    ParamWidth,
    build_on_meta,
    canonical_name,
    infer_widths,
    is_transposed_linear,
    match_names,
    occurrences,
    read_width,
    resolve_base_shapes,
    shapes_of,
    with_tied_names,
)
from scaling.table import (
    FAMILIES,
    ONE,
    WEIGHT_DECAY_MODES,
    OptimizerFamily,
    Parameterization,
    Role,
    RoleScales,
    WeightDecayMode,
    depth_factor,
    get_parameterization,
    weight_decay_multiplier,
)
from scaling.text import format_table

_MARKER = "_scaling_parameterization"  # plain attribute on the root module: survives deepcopy/pickle


@dataclass
class ScalingPlan:
    """A parameterized model's scaling, by parameter name: what :func:`parameterize` returns.

    ``widths`` has each parameter's role and width multipliers; ``multipliers`` the forward multiplier
    set on each module (by module name, 1 omitted); ``attention_scales`` the logit-scale multiplier of
    each attention module. ``depth`` has the model's residual branches and depth multiplier ``m_L``
    (:mod:`scaling.depth`), ``branches`` the multiplier set on each branch (a depth row's ``m_L^-alpha``).
    The learning rate, epsilon and weight decay of a parameter are the base
    values times the multipliers given by :meth:`lr_multiplier`, :meth:`eps_multiplier` and
    :meth:`weight_decay_multiplier`. ``init`` says what :meth:`init_multiplier` is relative to:
    PyTorch's default init of the tensor (``"pytorch"``) or the base model's tensor (``"base"``, the
    factors in ``base_init``; ``"own"``: the tensor as the model drew it, its own init being the same at
    every width).
    """

    parameterization: Parameterization
    widths: dict[str, ParamWidth]
    multipliers: dict[str, float]
    attention_scales: dict[str, float]
    optimizer: OptimizerFamily = "adam"
    weight_decay: WeightDecayMode = "coupled"
    scales: RoleScales = field(default_factory=RoleScales)
    model: nn.Module | None = field(default=None, repr=False, compare=False)
    init: InitMode = "pytorch"
    base_init: dict[str, float] = field(default_factory=dict)
    init_corrections: dict[str, float] = field(default_factory=dict)  # where PyTorch draws unlike 1/sqrt(fan_in)
    depth: DepthInfo | None = None
    branches: dict[str, float] = field(default_factory=dict)  # residual unit -> its branch multiplier

    def _width(self, name: str) -> ParamWidth:
        w = self.widths.get(name) or self._by_canonical.get(canonical_name(name).removeprefix("module."))
        if w is None:
            raise ScalingError(
                f"parameter {name!r} is not in the plan: the model changed after parameterize(); "
                "call parameterize() on it again (rescale=False keeps its weights)."
            )
        return w

    @cached_property
    def _by_canonical(self) -> dict[str, ParamWidth]:
        # Built once per plan: rebuilt per lookup, wrapped names (DDP's ``module.``, compile's
        # ``_orig_mod.``) made param_groups quadratic in the number of parameters.
        return {canonical_name(n).removeprefix("module."): w for n, w in self.widths.items()}

    def _family(self, optimizer: str | type | None) -> OptimizerFamily:
        return self.optimizer if optimizer is None else optimizer_family(optimizer)

    def init_multiplier(self, name: str) -> float:
        """The factor on ``name``'s init std: on PyTorch's default init of it (``init="pytorch"``, the
        factor :func:`parameterize` multiplied the weights by), or on the std of the base model's tensor
        (``init="base"``, or ``"own"`` for an own init that does not change with width: the row's factor
        times the width power of PyTorch's default)."""
        w = self._width(name)
        if self.init in ("base", "own"):
            return self.base_init[w.name]
        return (self.parameterization.rule(w.role).init(w.m_in, w.m_out) * self.scales.factor("init", w.role)
                * self.init_corrections.get(w.name, 1.0))

    def lr_multiplier(
        self, name: str, optimizer: str | type | None = None, *, adjust_lr_fn: str | None = None
    ) -> float:
        """The learning rate of ``name`` as a multiple of the base learning rate.

        For Muon (``adjust_lr_fn`` as ``torch.optim.Muon`` takes it) the table's column is written for
        torch's default ``"original"`` adjustment; another one is converted here, by the ratio of the two
        adjustments at this shape and at the base shape (:data:`scaling.table.MUON_NOTE`), when the row
        scales Muon's LRs at all (SP keeps plain torch, LR 1 for every role, whatever the adjustment).
        """
        w = self._width(name)
        family = self._family(optimizer)
        row = self.parameterization
        lr = row.rule(w.role).lr(family)(w.m_in, w.m_out)
        if family == "muon":
            if adjust_lr_fn not in MUON_ADJUST:
                raise ScalingError(f"unknown Muon adjust_lr_fn {adjust_lr_fn!r}; torch.optim.Muon takes one of "
                                   f"{MUON_ADJUST}")
            scales_lr = any(r.lr("muon") != ONE for r in row.rules.values())
            if adjust_lr_fn not in (None, "original") and scales_lr and len(w.shape) == 2:
                base = tuple(b if b is not None else s for b, s in zip(w.base_shape, w.shape))
                lr *= (muon_adjust(w.shape, "original") / muon_adjust(base, "original")) / (
                    muon_adjust(w.shape, adjust_lr_fn) / muon_adjust(base, adjust_lr_fn))
        return lr * self.depth_lr_multiplier(name, family) * self.scales.factor("lr", w.role)

    def in_branch(self, name: str) -> bool:
        """Whether parameter ``name`` sits in a residual branch (:mod:`scaling.depth`)."""
        return self.depth is not None and self._width(name).name in self.depth.in_branch

    def depth_lr_multiplier(self, name: str, optimizer: str | type | None = None) -> float:
        """The depth part of :meth:`lr_multiplier`: ``m_L`` to the row's in-branch exponent for the family
        (:meth:`scaling.table.DepthRule.lr`) inside a residual branch, 1 elsewhere and for width-only rows."""
        rule = self.parameterization.depth
        if rule is None or self.depth is None or not self.in_branch(name):
            return 1.0
        return depth_factor(rule.lr(self._family(optimizer)), self.depth.multiplier)

    def eps_multiplier(self, name: str, optimizer: str | type | None = None) -> float | tuple[float, float]:
        """The optimizer's epsilon for ``name`` as a multiple of the base epsilon (:meth:`Rule.eps_for`).

        Adam-like: one float, the gradient's scaling (``optimizer`` left out: Adam's, whatever the plan's
        family). Adafactor: a pair, ``eps1``'s (the gradient squared) and ``eps2``'s (the tensor's init
        std relative to base).
        """
        w = self._width(name)
        rule = self.parameterization.rule(w.role)
        family = "adam" if optimizer is None or not FAMILIES[self._family(optimizer)].eps else self._family(optimizer)
        powers = [p(w.m_in, w.m_out) for p in rule.eps_for(family)]
        depth = self.parameterization.depth
        if depth is not None and self.depth is not None and self.in_branch(name):
            powers = [p * depth_factor(e, self.depth.multiplier) for p, e in zip(powers, depth.eps_for(family))]
        return (powers[0], powers[1]) if len(powers) == 2 else powers[0]

    def weight_decay_multiplier(self, name: str, lr: float = 1.0, optimizer: str | type | None = None) -> float:
        """The ``weight_decay`` of ``name``'s group as a multiple of the base weight decay."""
        return self._decay(name, self._family(optimizer), self.lr_multiplier(name, optimizer), lr)

    def _decay(self, name: str, family: OptimizerFamily, lr_mult: float, base_lr: float) -> float:
        """:func:`scaling.table.weight_decay_multiplier` of a parameter: coupled decay reads the width part
        of its learning rate (a depth rule leaves AdamW's weight decay unchanged, CompleteP Table 1)."""
        if self.weight_decay == "coupled":
            lr_mult /= self.depth_lr_multiplier(name, family)
        return weight_decay_multiplier(lr_mult, base_lr, self.weight_decay)

    def param_groups(
        self,
        optimizer: str | type | None = None,
        *,
        lr: float | None = None,
        weight_decay: float = 0.0,
        eps: float | None = None,
        model: nn.Module | None = None,
        no_decay: Iterable[Role] = (),
        groups: Iterable[Mapping[str, Any] | torch.Tensor] | None = None,
        scale_eps: bool = True,
        adam_lr: float | None = None,
        **group_options: Any,
    ) -> list[dict[str, Any]]:
        """Param groups for ``torch.optim``: ``torch.optim.AdamW(plan.param_groups(lr=1e-3))``.

        Parameters sharing a learning rate, weight decay and epsilon share a group, so a model needs
        a handful of groups whatever its size (foreach and fused optimizers stay fast). Every group
        sets ``lr`` and ``weight_decay`` (and ``eps`` for Adam-like optimizers, default Adam's
        ``1e-8`` or the optimizer class's own): pass them here, not to the optimizer.

        Groups of one's own (a no-decay group, a group with its own learning rate) are refined, as
        unit-scaling's ``scaled_parameters`` does: pass them as ``groups=[{"params": [...],
        "weight_decay": 0.0}, ...]`` (torch.optim's form). Each is split by scaling factors and keeps
        its own options; its ``lr``, ``weight_decay`` and ``eps``, where it sets them, are the base
        values that get multiplied (the arguments here are the defaults for groups that do not).
        Parameters left out of every group are left out of the result, as torch.optim would.

        Args:
            optimizer: the optimizer class or family name (``"sgd"``, ``"adam"``); defaults to the one
                given to :func:`parameterize`.
            lr: the base learning rate, the one tuned at base width (optional when every one of
                ``groups`` sets its own).
            weight_decay: the base weight decay (see :func:`scaling.table.weight_decay_multiplier`).
            eps: the base epsilon of an Adam-like optimizer.
            model: the model to take parameters from, if not the one planned (a deep copy, the same
                model wrapped in DDP or sharded by FSDP2: parameters are matched by name).
            no_decay: roles whose weight decay is 0 (often ``("vector", "finite")``).
            groups: the user's param groups to refine (dicts with ``params``, or bare tensors, which
                form one group); default: every parameter of the model in one group.
            scale_eps: scale the epsilon per tensor (:meth:`eps_multiplier`: Adam's like its gradient,
                Adafactor's pair ``(eps1, eps2)`` like the gradient squared and the init std; ``eps1=None``
                stays ``None``); ``False`` gives every group the base ``eps`` unchanged, as
                microsoft/mup's ``MuAdam``.
            adam_lr: with ``optimizer="muon"``, the base learning rate of the Adam part (default ``lr``).
            group_options: other options set in every group (``betas``, ``momentum``...) unless the
                user's group sets them. Muon's ``adjust_lr_fn`` here also converts its column
                (:meth:`lr_multiplier`).

        With ``optimizer="muon"`` (:class:`scaling.optim.MuonAdam`) the hidden-role 2-D weights get Muon's
        column and the rest Adam's, each group tagged ``scaling_optimizer: "muon" | "adam"``;
        ``torch.optim.Muon`` itself takes 2-D parameters only, and a model with others is refused.
        """
        family = self._family(optimizer)
        muon = _muon_mode(family, optimizer if optimizer is not None else family)
        eps_option = FAMILIES[family].eps
        if eps is None and eps_option is not None:
            eps = default_eps(optimizer if optimizer is not None else family)
        model = model if model is not None else self.model
        if model is None:
            raise ScalingError("this plan holds no model; pass model=...")
        names = {id(p): n for n, p in model.named_parameters()}
        user_groups = self._user_groups(model, names, groups)
        skip = set(no_decay)
        if muon == "all":
            flat = [p for params, _ in user_groups for p in params if p.ndim != 2]
            if flat:
                shown = ", ".join(f"{names[id(p)]!r} {tuple(p.shape)}" for p in flat[:3])
                raise ScalingError(f"torch.optim.Muon takes 2-D parameters only, and {len(flat)} are not: {shown}. "
                                   "Use optimizer='muon' or plan.optimizers(...): Muon for the hidden weights, "
                                   "Adam for the rest")
        adjust_default = group_options.pop("adjust_lr_fn", None)
        result: list[dict[str, Any]] = []
        for params, options in user_groups:
            own_lr = "lr" in options  # a group's own lr is the base of both parts
            base_lr = _positive_lr(options.pop("lr", lr))
            base_adam_lr = base_lr if adam_lr is None or own_lr else _positive_lr(adam_lr)
            adjust = options.pop("adjust_lr_fn", adjust_default)
            base_wd = options.pop("weight_decay", weight_decay)
            base_eps = options.pop(eps_option, eps) if eps_option is not None else None
            adam_eps = options.pop("eps", eps if eps is not None else default_eps("adam")) if muon == "split" else None
            if eps_option is not None and FAMILIES[family].eps_kind == "pair":
                _check_eps_pair(base_eps)
            split: dict[tuple[Any, ...], dict[str, Any]] = {}
            for p in params:
                name = names[id(p)]
                w = self._width(name)
                part = ("muon" if w.role == "hidden" and p.ndim == 2 else "adam") if muon == "split" else None
                part_family = "adam" if part == "adam" else family
                part_lr = base_adam_lr if part == "adam" else base_lr
                lr_mult = self.lr_multiplier(name, part_family, adjust_lr_fn=adjust if part_family == "muon" else None)
                wd_mult = 0.0 if w.role in skip else self._decay(name, part_family, lr_mult, part_lr)
                option = FAMILIES[part_family].eps
                value = adam_eps if part == "adam" else base_eps
                eps_mult = self.eps_multiplier(name, part_family) if option is not None and scale_eps else None
                key = (part, lr_mult, wd_mult, eps_mult)
                if key not in split:
                    group: dict[str, Any] = {"params": [], "lr": part_lr * lr_mult,
                                             "weight_decay": base_wd * wd_mult}
                    if option is not None:
                        group[option] = _scaled_eps(value, eps_mult)
                    if part is not None:
                        group[PART_KEY] = part
                        group[LR_FACTOR_KEY] = lr_mult
                    if part_family == "muon" and adjust is not None:
                        group["adjust_lr_fn"] = adjust
                    split[key] = {**group_options, **options, **group}
                split[key]["params"].append(p)
            result.extend(split.values())
        if groups is None:
            check_param_groups(model, result)
        return result

    @staticmethod
    def _user_groups(
        model: nn.Module, names: Mapping[int, str], groups: Iterable[Mapping[str, Any] | torch.Tensor] | None
    ) -> list[tuple[list[torch.Tensor], dict[str, Any]]]:
        """The user's groups as (parameters, options), every parameter checked to be the model's, once."""
        if groups is None:
            return [([p for _, p in model.named_parameters()], {})]
        if isinstance(groups, (torch.Tensor, Mapping)):
            groups = [groups]
        out: list[tuple[list[torch.Tensor], dict[str, Any]]] = []
        loose: list[torch.Tensor] = []
        for g in groups:
            if isinstance(g, torch.Tensor):
                loose.append(g)
                continue
            if not isinstance(g, Mapping) or "params" not in g:
                raise ScalingError(f"a param group must be a dict with 'params' (torch.optim's form) or a "
                                   f"tensor, got {type(g).__name__}")
            params = g["params"]
            params = [params] if isinstance(params, torch.Tensor) else list(params)
            out.append((params, {k: v for k, v in g.items() if k != "params"}))
        if loose:
            out.append((loose, {}))
        seen: dict[int, int] = {}
        for i, (params, _) in enumerate(out):
            for p in params:
                if id(p) not in names:
                    raise ScalingError(f"param group {i} holds a tensor of shape {tuple(p.shape)} that is not a "
                                       "parameter of the model (a stale copy?): build the groups from the model "
                                       "you train, or pass model=...")
                if id(p) in seen:
                    raise ScalingError(f"parameter {names[id(p)]!r} is in param groups {seen[id(p)]} and {i}: "
                                       "each parameter must be in exactly one group")
                seen[id(p)] = i
        return out

    def optimizer_for(
        self, optimizer_class: type[torch.optim.Optimizer], *, lr: float, **options: Any
    ) -> torch.optim.Optimizer:
        """Build ``optimizer_class`` over :meth:`param_groups`: ``plan.optimizer_for(torch.optim.AdamW, lr=1e-3)``.

        ``weight_decay``, ``eps``, ``model``, ``no_decay``, ``groups`` and ``scale_eps`` go to
        :meth:`param_groups`; other options (``betas``, ``foreach``, ``fused``, ``momentum``) to the
        optimizer.
        """
        group_keys = ("weight_decay", "eps", "model", "no_decay", "groups", "scale_eps", "adjust_lr_fn")
        group_args = {k: options.pop(k) for k in group_keys if k in options}
        muon_adjust_fn = dict(options.get("muon_options") or {}).get("adjust_lr_fn")
        if muon_adjust_fn is not None:  # MuonAdam's Muon part: the groups' LRs follow its adjustment
            group_args.setdefault("adjust_lr_fn", muon_adjust_fn)
        groups = self.param_groups(optimizer_class, lr=lr, **group_args)
        return optimizer_class(groups, lr=lr, **options)  # type: ignore[call-arg]

    def optimizers(
        self,
        *,
        muon_lr: float,
        adam_lr: float,
        weight_decay: float = 0.0,
        eps: float | None = None,
        muon_options: Mapping[str, Any] | None = None,
        adam: type[torch.optim.Optimizer] = torch.optim.AdamW,
        adam_options: Mapping[str, Any] | None = None,
        no_decay: Iterable[Role] = (),
        model: nn.Module | None = None,
    ) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
        """``(torch.optim.Muon, adam)``: Muon over the hidden-role 2-D weights with the table's Muon
        column, ``adam`` over everything else (input, output, vectors, finite) with Adam's column.

        ``muon_lr`` and ``adam_lr`` are the two base learning rates (tuned at base width);
        ``muon_options`` go to ``torch.optim.Muon`` (``momentum``, ``adjust_lr_fn``, which also converts
        the Muon column: :meth:`lr_multiplier`), ``adam_options`` to ``adam`` (``betas``...), ``eps`` is
        Adam's base epsilon. Every parameter of the model is in exactly one of the two. As in
        :meth:`param_groups`, every group sets its weight decay from ``weight_decay`` (default 0, not
        Muon's 0.1 or AdamW's 0.01).
        """
        if optimizer_family(adam) != "adam":
            raise ScalingError(f"adam= must be an Adam-like optimizer class, got {adam!r}")
        muon_options = dict(muon_options or {})
        model = model if model is not None else self.model
        groups = self.param_groups("muon", lr=muon_lr, adam_lr=adam_lr, weight_decay=weight_decay, eps=eps,
                                   no_decay=no_decay, model=model,
                                   **({"adjust_lr_fn": muon_options["adjust_lr_fn"]}
                                      if muon_options.get("adjust_lr_fn") is not None else {}))
        hidden = [g for g in groups if g[PART_KEY] == "muon"]
        rest = [g for g in groups if g[PART_KEY] == "adam"]
        if not hidden:
            raise ScalingError("no hidden-role 2-D weight for Muon (is the model wider than base, or a delta given?)")
        muon = torch.optim.Muon(hidden, lr=muon_lr, **muon_options)
        other = adam(rest, lr=adam_lr, **dict(adam_options or {}))  # type: ignore[call-arg]
        assert model is not None
        check_param_groups(model, [*muon.param_groups, *other.param_groups])  # a partition of the model
        return muon, other

    def check_optimizer(self, optimizer: torch.optim.Optimizer, model: nn.Module | None = None) -> float:
        """Check that an optimizer's groups partition the model and follow the plan; return the base LR.

        Raises :class:`ScalingError` naming the first parameter that is missing, duplicated, or whose
        learning rate is not the base learning rate times its multiplier. A wrapper that keeps the real
        optimizer as ``.optimizer`` (accelerate's ``AcceleratedOptimizer``, inside ``transformers.Trainer``)
        is checked through it.
        """
        while isinstance(getattr(optimizer, "optimizer", None), torch.optim.Optimizer):
            optimizer = optimizer.optimizer  # type: ignore[attr-defined]
        model = model if model is not None else self.model
        if model is None:
            raise ScalingError("this plan holds no model; pass model=...")
        check_param_groups(model, optimizer.param_groups)
        group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
        base_lr: float | None = None
        first = ""
        for name, p in model.named_parameters():
            group = group_of[id(p)]
            lr = group["lr"]
            implied = lr / self._group_multiplier(name, optimizer, group)
            if base_lr is None:
                base_lr, first = implied, name
            elif not math.isclose(implied, base_lr, rel_tol=1e-9):
                raise ScalingError(self._lr_mismatch(model, name, lr, implied, first, base_lr, optimizer))
        return base_lr if base_lr is not None else 0.0

    def _group_multiplier(self, name: str, optimizer: torch.optim.Optimizer, group: Mapping[str, Any]) -> float:
        """The plan's LR multiplier of ``name`` in ``group`` of ``optimizer`` (a pair's part read by its tag)."""
        family = self._family(type(optimizer)) if group.get(PART_KEY) != "adam" else "adam"
        if isinstance(optimizer, OptimizerPair) and PART_KEY not in group:
            family = "adam"
        adjust = group.get("adjust_lr_fn") if family == "muon" else None
        return self.lr_multiplier(name, family, adjust_lr_fn=adjust)

    def _lr_mismatch(
        self, model: nn.Module, name: str, lr: float, implied: float, first: str, base_lr: float,
        optimizer: torch.optim.Optimizer,
    ) -> str:
        """Why two parameters' learning rates are not in the plan's ratio, with what to do about it."""
        group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
        multiplier = {id(p): self._group_multiplier(n, optimizer, group_of[id(p)]) for n, p in model.named_parameters()}
        at_lr: dict[float, set[float]] = {}
        for g in optimizer.param_groups:
            at_lr.setdefault(g["lr"], set()).update(round(multiplier[id(p)], 12) for p in g["params"])
        # Parameters the plan gives different multipliers, at one LR: what a scheduler's floor leaves.
        shared = [r for r, ms in at_lr.items() if len(ms) > 1 and r == min(at_lr)]
        head = (f"the optimizer's learning rates are not in the plan's ratios: parameter {name!r} has "
                f"learning rate {lr:g}, which implies a base learning rate of {implied:g}, but {first!r}'s "
                f"learning rate implies {base_lr:g}. ")
        floor = ("An absolute LR floor does this to groups built by plan.param_groups(): ReduceLROnPlateau's "
                 "scalar min_lr clamps every group to one LR, and its eps (default 1e-8) stops the "
                 "small-LR groups first. Give it per-group floors scaled like the groups, "
                 "min_lr=plan.scaled_for_groups(optimizer, floor) computed before training, and eps=0.")
        if len(optimizer.param_groups) < 2:
            return head + ("One group holds parameters the plan gives different learning rates: build the "
                           "groups with plan.param_groups().")
        if shared:
            return head + (f"Parameters with different multipliers share the lowest learning rate, "
                           f"{shared[0]:g}, as a scheduler's floor leaves them. ") + floor
        return head + ("Groups built by hand (or by torch.optim from plain parameters) need plan.param_groups(); "
                       "groups given their own lr (param_groups(groups=...)) have no single base LR. " + floor)

    def scaled_for_groups(self, optimizer: torch.optim.Optimizer, value: float) -> list[float]:
        """``value`` (a base-width LR floor, say) scaled like each group's learning rate, one per group.

        Schedulers' floors are absolute and would break the per-layer ratios; this gives
        ``ReduceLROnPlateau(opt, min_lr=plan.scaled_for_groups(opt, 1e-6), eps=0)`` floors that keep them.
        """
        base_lr = self.check_optimizer(optimizer)
        return [value * g["lr"] / base_lr for g in optimizer.param_groups]

    def rows(self, optimizer: str | type | None = None, lr: float = 1.0) -> list[dict[str, Any]]:
        """One dict per parameter: name, shape, role, width multipliers and every scaling factor."""
        family = self._family(optimizer)
        out = []
        for name, w in self.widths.items():
            rule = self.parameterization.rule(w.role)
            out.append({
                "parameter": name,
                "shape": "x".join(map(str, w.shape)),
                "role": w.role,
                "m_in": w.m_in,
                "m_out": w.m_out,
                "init": self.init_multiplier(name),
                "mult": rule.multiplier(w.m_in, w.m_out) * self.scales.factor("multiplier", w.role),
                "lr": self.lr_multiplier(name, family),
                "eps": self._eps_cell(name, family),
                "wd": self.weight_decay_multiplier(name, lr, family),
                **({"branch": self._branch_cell(name)} if self._shows_depth else {}),
            })
        return out

    @property
    def _shows_depth(self) -> bool:
        return self.depth is not None and (self.parameterization.depth is not None or self.depth.multiplier != 1.0)

    def _branch_cell(self, name: str) -> float | str:
        """The branch multiplier of the residual unit ``name`` lies in, ``-`` outside every unit."""
        assert self.depth is not None
        i = unit_of(canonical_name(name), self.depth.units)
        return "-" if i is None else self.branches.get(self.depth.units[i], 1.0)

    def _eps_cell(self, name: str, family: OptimizerFamily) -> float | str:
        if not FAMILIES[family].eps:
            return float("nan")
        value = self.eps_multiplier(name, family)
        return value if isinstance(value, float) else f"({value[0]:.4g}, {value[1]:.4g})"

    def table(self, optimizer: str | type | None = None, lr: float = 1.0) -> str:
        """The plan as a text table: parameter, shape, role, width multipliers and scaling factors."""
        family = self._family(optimizer)
        head = (f"{self.parameterization.name} ({self.parameterization.citation})\n"
                f"optimizer family: {family}; weight decay: {self.weight_decay}; "
                f"factors multiply {_INIT_WORDS[self.init]} and the base lr / eps / weight decay\n")
        if self._shows_depth:
            assert self.depth is not None
            rule = self.parameterization.depth
            branches = f"branches x m_L^-{rule.alpha:g}\n" if rule else "no depth rule\n"
            head += (f"depth: m_L = {self.depth.multiplier:g} ({self.depth.depth} residual branches, base "
                     f"{self.depth.base_depth}); " + branches)
        return head + format_table(self.rows(family, lr))

    def __str__(self) -> str:
        return self.table()


_INIT_WORDS = {"pytorch": "PyTorch's default init", "base": "the base model's init std (per tensor)",
               "own": "the model's own init (the same at every width)"}


def check_param_groups(model: nn.Module, groups: Iterable[Mapping[str, Any]]) -> None:
    """Raise :class:`ScalingError` unless the groups hold every parameter of the model exactly once."""
    seen: dict[int, int] = {}
    for i, g in enumerate(groups):
        for p in g["params"]:
            if id(p) in seen:
                name = _name_of(model, p)
                raise ScalingError(f"parameter {name} is in param groups {seen[id(p)]} and {i}: "
                                   "each parameter must be in exactly one group")
            seen[id(p)] = i
    names = {id(p): n for n, p in model.named_parameters()}
    missing = [n for pid, n in names.items() if pid not in seen]
    if missing:
        raise ScalingError(f"param groups miss {len(missing)} parameter(s) of the model: {missing[:5]}; "
                           "build them with plan.param_groups(model=...) from the model you train")
    extra = [pid for pid in seen if pid not in names]
    if extra:
        raise ScalingError(f"param groups hold {len(extra)} tensor(s) that are not parameters of the model "
                           "(a stale copy?): build them from the model you train")


def _muon_mode(family: OptimizerFamily, optimizer: str | type) -> str | None:
    """How Muon takes the parameters: ``"all"`` for ``torch.optim.Muon`` itself (2-D only), ``"split"``
    for the pair (Muon for hidden 2-D weights, Adam for the rest), ``None`` for other families."""
    if family != "muon":
        return None
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Muon):
        return "all"
    if isinstance(optimizer, str) and optimizer.lower() == "muon-only":
        return "all"
    return "split"


def _positive_lr(value: Any) -> float:
    if value is None:
        raise ScalingError("give the base learning rate: param_groups(lr=...), or an lr in every group")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 and math.isfinite(value)):
        raise ScalingError(f"lr must be a positive number, got {value}")
    return float(value)


def _check_eps_pair(value: Any) -> None:
    """Adafactor's ``eps`` must be ``(eps1, eps2)``: ``eps1`` ``None`` or a float >= 0, ``eps2`` a float >= 0."""
    def number(x: Any) -> bool:
        return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x) and x >= 0

    if not (isinstance(value, (tuple, list)) and len(value) == 2 and (value[0] is None or number(value[0]))
            and number(value[1])):
        raise ScalingError(f"Adafactor's eps is the pair (eps1, eps2), eps1 None or a number >= 0 and eps2 a "
                           f"number >= 0 (torch's default (None, 1e-3)); got eps={value!r}")


def _scaled_eps(value: Any, multiplier: float | tuple[float, float] | None) -> Any:
    """A base epsilon times its per-tensor multiplier: a float, or Adafactor's pair (``eps1=None`` kept)."""
    if multiplier is None:
        return value
    if isinstance(multiplier, tuple):
        eps1, eps2 = value
        return (None if eps1 is None else eps1 * multiplier[0], eps2 * multiplier[1])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ScalingError(f"eps must be a number for this optimizer, got {value!r}")
    return value * multiplier


def _name_of(model: nn.Module, p: torch.Tensor) -> str:
    return next((repr(n) for n, q in model.named_parameters() if q is p), f"of shape {tuple(p.shape)}")


def _supports_multiplier(module: nn.Module) -> str | None:
    """How a multiplier is applied to this module: its own attribute, a hook, or not at all (None)."""
    if hasattr(type(module), "scaling_multiplier"):
        return "attribute"
    if isinstance(module, (nn.Linear, _ConvNd)) or is_transposed_linear(module):
        return "input-hook"
    if isinstance(module, nn.Embedding):
        return "output-hook"
    return None


@dataclass
class _Edits:
    """Everything parameterize() will change, computed before anything is changed."""

    scales: dict[str, float] = field(default_factory=dict)  # parameter -> init factor
    multipliers: dict[str, tuple[nn.Module, float]] = field(default_factory=dict)
    attention: dict[str, tuple[nn.Module, float]] = field(default_factory=dict)
    zero: set[str] = field(default_factory=set)
    zero_query: list[snn.Attention] = field(default_factory=list)
    base_init: dict[str, float] = field(default_factory=dict)  # init="base": factor on the base's std
    corrections: dict[str, float] = field(default_factory=dict)  # PyTorch's draw -> the table's default
    branches: list[tuple[Unit, float]] = field(default_factory=list)  # residual unit -> branch multiplier


def parameterize(
    model: nn.Module,
    base: ModelSpec,
    *,
    delta: ModelSpec | None = None,
    parameterization: str | Parameterization = "mup",
    optimizer: str | type = "adam",
    weight_decay: WeightDecayMode = "coupled",
    roles: Mapping[str, Role] | None = None,
    zero_readout: bool = False,
    zero_query: bool = False,
    zero_init: Iterable[str] = (),
    absorb_multipliers: bool = False,
    scales: RoleScales | None = None,
    rescale: bool = True,
    init: InitMode = "pytorch",
    branches: str | Iterable[str] | None = None,
    depth_multiplier: float | None = None,
) -> ScalingPlan:
    """Parameterize ``model`` relative to ``base``: rescale its init in place, set forward multipliers.

    At base width every parameterization leaves the model exactly as PyTorch built it. With the
    default ``init="pytorch"`` the table's init factors multiply the weights as they are, so the model
    must carry PyTorch's default initialization (or one that scales like it: std ``1/sqrt(fan_in)``
    for ``Linear``/``Conv``, width-independent for embeddings and norms) when ``rescale`` is true.
    A model with its own init (nanoGPT and Hugging Face: ``N(0, 0.02)`` at every width) needs
    ``init="base"``: each tensor's std becomes the std of the base model's tensor (measured, at base
    width) times the row's factor relative to base, e.g. ``m_in^-1/2`` for muP's hidden weights and
    ``m_in^-1`` for its readout (TP-V, Yang et al. 2022, Table 3); at base width the std is the base's.
    When that own init is the same at every width (transformers' ``_init_weights``), ``init="own"``
    applies the same factors to the tensors as drawn, without measuring: at base width the model is
    unchanged bit for bit.

    Args:
        model: the model to train, at its target width.
        base: the model at base width (the one you tune): a module, a zero-argument builder (built
            on the meta device), a mapping of parameter name to shape, or a microsoft/mup ``.bsh`` file.
        delta: optionally the model at another width, so that widths are known even at base width.
        parameterization: a row of the exponent table: ``sp``, ``ntk``, ``mfp``, ``mup`` (TP-V Table 3,
            no multipliers) or ``mup-table8`` (microsoft/mup's form).
        optimizer: the optimizer class or family (``"sgd"``, ``"adam"``) the plan's groups default to.
        weight_decay: ``"coupled"`` (microsoft/mup's) or ``"independent"``; see
            :func:`scaling.table.weight_decay_multiplier`.
        roles: role overrides by parameter name.
        zero_readout: zero-initialize the output layers (TP-V, App. D.2).
        zero_query: zero the query projection of every :class:`scaling.nn.Attention`.
        zero_init: other parameters to zero-initialize, by name.
        absorb_multipliers: fold every forward multiplier into init and learning rate by the
            abc-symmetry (same dynamics), so no layer needs one.
        scales: width-independent per-role constants (learning rate, init, multiplier) tuned at base
            width and transferred unchanged; see :class:`scaling.table.RoleScales`.
        rescale: change the weights; ``False`` only recomputes the plan and multipliers, e.g. for a
            model that is parameterized already or that will load a parameterized checkpoint.
        init: what the row's init factors are relative to: ``"pytorch"`` (PyTorch's default init,
            which the model must carry), ``"base"`` (the base model's own init, measured per tensor
            on the base given as a module or builder, which is then built on the CPU, outside the
            global random state) or ``"own"`` (the model's own init as drawn, the same at every width;
            checked against the base when it is built to measure).
        branches: the model's residual branches, for a model not built from
            :class:`scaling.nn.ResidualBlock` or :class:`scaling.nn.Branch`: module names (a
            ``ModuleList`` stands for its children) whose output the model adds to its residual
            stream (``h = h + block(h)``). The depth is their number; see :mod:`scaling.depth`.
        depth_multiplier: ``m_L`` given explicitly (default: the model's number of residual branches
            over the base's).

    Returns:
        The :class:`ScalingPlan`; ``plan.param_groups(lr=...)`` feeds any ``torch.optim`` optimizer.

    Depth: the base may have fewer residual blocks than the model (``m_L = L / L_base``). A row with a
    depth rule (``depth-mup``, ``completep``: :class:`scaling.table.DepthRule`) then multiplies every
    branch by ``m_L^-alpha`` and scales the learning rate and epsilon of in-branch parameters; every
    row reads the deeper blocks' base shapes from the base's blocks. At base depth nothing changes.

    Raises:
        ScalingError: on mismatched base models, narrower-than-base widths, more than two infinite
            dimensions, unknown names, a second call with ``rescale=True``, or a depth row on a model
            deeper than its base with no residual branch marked; nothing is changed then.

    Warns:
        ScalingWarning: when the width multipliers differ across the model (without ``delta`` any
            dimension that differs from the base is a width, so a base built with another input size
            makes the input layer hidden), or when no delta is given and every shape is the base's
            (see :func:`scaling.shapes.resolve_base_shapes`).
        InitScalingWarning: with ``init="pytorch"``, when a ``Linear``/``Conv`` weight's measured std
            does not follow PyTorch's ``1/sqrt(fan_in)`` from base to model (off by more than 25%):
            the model has its own init, and ``init="base"`` is what it needs. Checked when the base
            has weights (a module, or a builder of a base under 50M parameters, built to measure).
        AttentionScalingWarning: when the row scales attention logits unlike SP (muP's ``1/d_head``,
            TP-V §4) and the model, wider than its base, has attention modules that compute their own
            softmax scale (a class named ``*Attention*``/``*Attn*``, or query/key/value projections
            as children) instead of :class:`scaling.nn.Attention`. ``parameterize`` cannot change
            such a module's scale: its forward must pass ``scale=scaling.attention_scale(plan,
            d_head, base_d_head)`` to ``F.scaled_dot_product_attention`` (store it on the module
            after ``parameterize``), or the model must use :class:`scaling.nn.Attention`. A head
            dimension that does not grow with width (more heads instead) needs nothing.
    """
    row = get_parameterization(parameterization)
    if absorb_multipliers:
        row = row.without_multipliers(name=row.name)
    family = optimizer_family(optimizer)
    if weight_decay not in WEIGHT_DECAY_MODES:
        raise ScalingError(f"unknown weight-decay mode {weight_decay!r}; choose one of {WEIGHT_DECAY_MODES}")
    if rescale and getattr(model, _MARKER, None) is not None:
        raise ScalingError(
            f"this model is parameterized already ({getattr(model, _MARKER)}); rescaling it again would "
            "scale its init twice. To re-apply the plan without touching the weights (after loading a "
            "checkpoint, say), pass rescale=False."
        )
    if init not in INIT_MODES:
        raise ScalingError(f"unknown init mode {init!r}; choose one of {INIT_MODES}")
    base_given = base
    base_module = base if isinstance(base, nn.Module) else None
    if base_module is None and callable(base) and not isinstance(base, (str, Mapping)):
        base_module = build_on_meta(base)
        base = base_module
    target = {canonical_name(n): tuple(p.shape) for n, p in model.named_parameters()}
    base_shapes = shapes_of(base)
    units = find_units(model, branches)
    depth = read_depth(model, base_module if base_module is not None else base_shapes, branches, depth_multiplier,
                       found=units)
    _check_depth(row, depth)
    delta_shapes = None
    if delta is not None:
        delta_module = delta if isinstance(delta, nn.Module) else (
            build_on_meta(delta) if callable(delta) and not isinstance(delta, (str, Mapping)) else None)
        delta_shapes = shapes_of(delta_module if delta_module is not None else delta)
        delta_units = units_of(delta_module if delta_module is not None else delta_shapes, depth.units, branches)
        delta_shapes = for_target(target, delta_shapes, replace(depth, base_units=delta_units))
    resolved = resolve_base_shapes(target, for_target(target, base_shapes, depth), delta_shapes)
    widths = infer_widths(model, resolved, roles)
    scales = scales or RoleScales()
    _check_scales(scales, widths)
    measured = measured_base(base_given, base_module, init, rescale)
    base_tensors = None if measured is None else match_names(
        target, for_target(target, {canonical_name(n): p for n, p in measured.named_parameters()}, depth), "base"
    )
    edits = _plan_edits(model, row, widths, resolved, base_module, scales, init, base_tensors, depth)
    _plan_branches(units, row, depth, edits)
    if init == "pytorch" and base_tensors is not None:
        warn_own_init(model, widths, base_tensors)
    if init == "own" and base_tensors is not None:
        warn_width_dependent_init(model, base_tensors)
    _plan_zeroing(model, widths, edits, zero_readout, zero_query, zero_init)
    warn_custom_attention(model, row, widths)

    if rescale:
        _rescale(model, edits)
    _apply_forward(edits)
    setattr(model, _MARKER, row.name)
    return ScalingPlan(
        parameterization=row,
        widths=widths,
        multipliers={n: m for n, (_, m) in edits.multipliers.items() if m != 1.0},
        attention_scales={n: s for n, (_, s) in edits.attention.items()},
        optimizer=family,
        weight_decay=weight_decay,
        scales=scales,
        model=model,
        init=init,
        base_init=edits.base_init,
        init_corrections=edits.corrections if init == "pytorch" else {},
        depth=depth,
        branches={u.name: m for u, m in edits.branches},
    )


def _check_depth(row: Parameterization, depth: DepthInfo) -> None:
    """A depth row on a model deeper than its base needs the residual branches marked."""
    if row.depth is not None and depth.multiplier != 1.0 and not depth.units:
        raise ScalingError(
            f"{row.name} scales residual branches with depth (m_L = {depth.multiplier:g}), but no residual branch "
            "is marked: build the blocks from scaling.nn.ResidualBlock (or wrap branches in scaling.nn.Branch), "
            "or name them with parameterize(..., branches='blocks')."
        )


def _plan_branches(units: Iterable[Unit], row: Parameterization, depth: DepthInfo, edits: _Edits) -> None:
    """Each residual unit's multiplier: ``m_L^-alpha`` under a depth row, 1 otherwise."""
    value = 1.0 if row.depth is None else depth_factor(row.depth.branch, depth.multiplier)
    edits.branches = [(u, value) for u in units]


def _plan_edits(
    model: nn.Module,
    row: Parameterization,
    widths: dict[str, ParamWidth],
    resolved: Mapping[str, tuple[int | None, ...]],
    base_module: nn.Module | None,
    scales: RoleScales,
    init: InitMode = "pytorch",
    base_tensors: Mapping[str, torch.Tensor] | None = None,
    depth: DepthInfo | None = None,
) -> _Edits:
    edits = _Edits()
    resolved = with_tied_names(model, resolved)
    modules = dict(model.named_modules())
    params = dict(model.named_parameters())
    for name, w in widths.items():
        rule = row.rule(w.role)
        correction = default_correction(_owner(modules, name))(w.m_in, w.m_out)
        if correction != 1.0:  # a transposed convolution: PyTorch's draw is not the table's default
            edits.corrections[name] = correction
        edits.scales[name] = rule.init(w.m_in, w.m_out) * correction * scales.factor("init", w.role)
        if init in ("base", "own"):
            relative = (rule.init + init_power(_owner(modules, name)))(w.m_in, w.m_out) * scales.factor("init", w.role)
            edits.base_init[name] = relative
            if init == "own":  # the tensor as drawn is the base's init: the relative factor is the whole change
                edits.scales[name] = relative
            elif base_tensors is not None:
                edits.scales[name] = relative * to_base(name, base_tensors[canonical_name(name)], params[name])
    primary = {id(p): n for n, p in model.named_parameters()}
    for module_name, module, attr, p in occurrences(model):
        full = f"{module_name}.{attr}" if module_name else attr
        name = primary[id(p)]
        own = widths[name]
        w = own if full == name else read_width(full, module, attr, resolved)
        rule = row.rule(w.role)
        alpha = rule.multiplier(w.m_in, w.m_out) * scales.factor("multiplier", w.role)
        if full != name:
            _check_tie(row, name, own, full, w, model)
        if w.role in ("vector", "finite"):
            if alpha != 1.0:  # pragma: no cover - no row of the table does this
                raise ScalingError(f"{row.name} gives vector {full!r} a forward multiplier; not supported")
            continue
        how = _supports_multiplier(module)
        if alpha != 1.0 and how is None:
            raise ScalingError(
                f"{row.name} needs a forward multiplier of {alpha:.4g} on {full!r} ({w.role} role), but its "
                f"module is a {type(module).__name__}, which scaling cannot rescale. Pass "
                "absorb_multipliers=True (the same training dynamics, the multiplier folded into init "
                "and learning rate), build it from scaling.nn layers, or use parameterization='mup'."
            )
        if how is not None:
            edits.multipliers[module_name] = (module, alpha)
    base_names = to_base_names([canonical_name(n) for n, _ in model.named_modules()], depth) if depth else {}
    for module_name, module in model.named_modules():
        if hasattr(type(module), "scaling_attention") or carries_scale(module):
            base_name = base_names.get(canonical_name(module_name), module_name)
            edits.attention[module_name] = (module, scale_of_attention(row, module_name, module, base_module,
                                                                       base_name=base_name))
    return edits


def _check_scales(scales: RoleScales, widths: Mapping[str, ParamWidth]) -> None:
    present = {w.role for w in widths.values()}
    named = set(scales.lr) | set(scales.init) | set(scales.multiplier)
    if named - present:
        raise ScalingError(
            f"RoleScales names role(s) {sorted(named - present)} that no parameter has (roles here: "
            f"{sorted(present)}). At base width every dimension looks finite: give a delta model."
        )


def _check_tie(
    row: Parameterization, name: str, own: ParamWidth, full: str, other: ParamWidth, model: nn.Module
) -> None:
    """A parameter used by two modules (a tied readout) must get the same init and LR under both.

    The tensor is initialized and trained once, by its first owner's rule. That is harmless when the
    row gives both roles the same factors (init, every family's LR and so epsilon): SP rescales
    nothing, so a tied model under SP is PyTorch's tied model. Otherwise both uses must end at the
    same init (the row's factor times PyTorch's default for each module) and the same LR.
    """
    if own.role == other.role:
        return
    a, b = row.rule(own.role), row.rule(other.role)
    # Muon trains hidden 2-D weights only (a tied embedding/readout goes to the pair's Adam), so its
    # column is not compared.
    families = [f for f in FAMILIES if f != "muon"]
    if math.isclose(a.init(own.m_in, own.m_out), b.init(other.m_in, other.m_out)) and all(
        math.isclose(a.lr(f)(own.m_in, own.m_out), b.lr(f)(other.m_in, other.m_out)) for f in families
    ):
        return
    first = dict(model.named_modules())
    own_mod, other_mod = _owner(first, name), _owner(first, full)
    same_init = math.isclose(
        (a.init + init_power(own_mod))(own.m_in, own.m_out),
        (b.init + init_power(other_mod))(other.m_in, other.m_out),
    )
    same_lr = all(
        math.isclose(a.lr(f)(own.m_in, own.m_out), b.lr(f)(other.m_in, other.m_out)) for f in families
    )
    if not (same_init and same_lr):
        raise ScalingError(
            f"{name!r} is tied: an {own.role} weight there and an {other.role} weight as {full!r}. "
            f"{row.name} scales those roles differently, so one tensor cannot follow both. Use "
            "parameterization='mup-table8' (TP-V Table 8: input and output weights scale alike, the "
            "readout carries a 1/m multiplier), or untie the weights."
        )


def _owner(modules: dict[str, nn.Module], full: str) -> nn.Module:
    return modules[full.rpartition(".")[0]]


def _plan_zeroing(
    model: nn.Module, widths: dict[str, ParamWidth], edits: _Edits, zero_readout: bool, zero_query: bool,
    zero_init: Iterable[str],
) -> None:
    names = set(widths)
    for n in zero_init:
        if n not in names:
            raise ScalingError(f"zero_init names {n!r}, which is not a parameter of the model")
        edits.zero.add(n)
    if zero_readout:
        readouts = {n.rpartition(".")[0] for n, w in widths.items() if w.role == "output"}
        if not readouts:
            raise ScalingError("zero_readout=True but no parameter has the output role (is the model wider "
                               "than base, or a delta model given?)")
        edits.zero |= {n for n in names if n.rpartition(".")[0] in readouts}
    if zero_query:
        edits.zero_query = [m for m in model.modules() if isinstance(m, snn.Attention)]
        if not edits.zero_query:
            raise ScalingError("zero_query=True but the model has no scaling.nn.Attention; "
                               "name the query parameters in zero_init=[...] instead")


@torch.no_grad()
def _rescale(model: nn.Module, edits: _Edits) -> None:
    params = dict(model.named_parameters())
    for name, factor in edits.scales.items():
        if name in edits.zero:
            params[name].zero_()
        elif factor != 1.0:
            params[name].mul_(factor)
    for attention in edits.zero_query:
        attention.zero_query_()


def _apply_forward(edits: _Edits) -> None:
    for module, alpha in edits.multipliers.values():
        how = _supports_multiplier(module)
        if how == "attribute":
            setattr(module, "scaling_multiplier", alpha)  # noqa: B010
        elif alpha != 1.0 or hasattr(module, "scaling_multiplier"):
            setattr(module, "scaling_multiplier", alpha)  # noqa: B010
            hooks = module._forward_pre_hooks if how == "input-hook" else module._forward_hooks
            if not any(h in (snn.scale_input_hook, snn.scale_output_hook) for h in hooks.values()):
                if how == "input-hook":
                    module.register_forward_pre_hook(snn.scale_input_hook)
                else:
                    module.register_forward_hook(snn.scale_output_hook)
    for module, scale in edits.attention.values():
        if carries_scale(module):
            set_own_scale(module, scale)
        else:
            setattr(module, "scaling_attention", scale)  # noqa: B010
    for unit, value in edits.branches:
        if unit.how == "attribute" or value != 1.0 or "scaling_branch" in vars(unit.module):
            setattr(unit.module, "scaling_branch", value)  # noqa: B010
        hooked = snn.scale_branch_hook in unit.module._forward_hooks.values()
        if unit.how == "output-hook" and value != 1.0 and not hooked:
            unit.module.register_forward_hook(snn.scale_branch_hook)

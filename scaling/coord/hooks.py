"""Recording a coordinate check: forward hooks on every module, and a prediction for each output.

The hooks write ``mean|h|`` and ``mean|h - h_0|`` of every floating-point tensor a module outputs
(tuples, lists and dicts are searched; integer tensors and ``None`` are skipped) into one tensor on
the output's device, in float32 for half types (float64 stays float64), with no ``.item()`` per step.
State 0 discovers the outputs in execution order, keeps ``h_0``, and notes which outputs are the very
tensor of an earlier one (a container's output, the model's own) and which module consumed which.

Predictions: a module with a weight is a layer of :func:`scaling.predict.chain` by its weight's role in
the plan (input -> "input", hidden -> "hidden", output -> "logits"; hidden layers numbered in execution
order), never by its name; an alias or an elementwise activation of a recorded output inherits that
output's prediction; anything else is O(1) under a maximal-update row (TP-IV §5: muP's desideratum is
that every activation and its change stay O(1)), unpredicted otherwise.

Normalization: the chain has none. A LayerNorm, RMSNorm, BatchNorm or GroupNorm divides its input by
its own size, so its change saturates once the update outgrows the init, and below it the sizes the
chain adds up no longer hold at the widths one measures: under SP with Adam at LR 1e-2, an MLP with
a LayerNorm before its readout measures logits growing like ``n^0.77`` (``n^1.2`` at LR 1e-3;
widths 128..1024), where without it they follow the chain's ``n^1.5`` (tests/test_coord_verdicts.py,
empirical, ours). Where between the first-order value and the cap a width sits depends on the LR. So under
a row that is not maximal-update, every output recorded after the first normalization layer has run
(in execution order) gets no prediction. Under a maximal-update row every size is O(1) and a norm of
an O(1) vector is O(1), so the predictions (all 0) stand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Union

import numpy as np
import torch
from torch import Tensor, nn

from scaling import predict
from scaling.coord.result import CoordConfig, ModuleInfo
from scaling.plan import ScalingPlan
from scaling.shapes import occurrences, read_width, with_tied_names

ModuleFilter = Union[str, Sequence[type], Callable[[str, nn.Module], bool], None]
"""Which modules to record: a regular expression on the module name, module types, or a predicate."""

ROOT = "<model>"  # the name under which the model's own output is recorded

# Elementwise activations keep the size exponent of their input: exactly for the positively
# homogeneous ReLU family, to first order for smooth ones while their inputs stay O(1).
ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Tanh,
    nn.Sigmoid, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Softsign, nn.Dropout, nn.Identity,
)


NORMALIZATION: tuple[type[nn.Module], ...] = (
    nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm, nn.modules.batchnorm._NormBase,  # BatchNorm, InstanceNorm
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),  # torch >= 2.4
)


def is_normalization(module: nn.Module) -> bool:
    """A normalization layer: one of :data:`NORMALIZATION`, or a class named ``...Norm`` (``LlamaRMSNorm``)."""
    return isinstance(module, NORMALIZATION) or type(module).__name__.endswith("Norm")


def _tensors(output: Any, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
    """The floating-point tensors in a module output (tuples, lists and dicts searched; ints and None skipped)."""
    if isinstance(output, Tensor):
        if output.is_floating_point() and output.numel() > 0:
            yield prefix, output
    elif isinstance(output, (tuple, list)):
        for i, o in enumerate(output):
            yield from _tensors(o, f"{prefix}[{i}]")
    elif isinstance(output, Mapping):
        for k, o in output.items():
            yield from _tensors(o, f"{prefix}[{k}]")


class Recorder:
    """Forward hooks writing ``mean|h|`` and ``mean|h - h_0|`` of each output into one tensor.

    State 0 discovers the outputs (in execution order), keeps ``h_0`` and notes which outputs alias
    or feed which; later states look their slot up by name. ``state = None`` pauses recording.
    """

    def __init__(self, model: nn.Module, include: Callable[[str, nn.Module], bool], states: int) -> None:
        self.states = states
        self.state: int | None = None
        self.names: list[str] = []
        self.slot: dict[str, int] = {}
        self.h0: list[Tensor] = []
        self.first: list[Tensor] = []  # state 0's statistics, until the buffer exists
        self.buffer: Tensor | None = None
        self.meta: list[tuple[nn.Module, str, int | None, int | None]] = []  # module, its name, alias, input
        self.rows: list[int] = []  # per output: its number of rows (tokens), all dimensions but the last
        self.after_norm: list[str | None] = []  # per output: the normalization layer that ran before it
        self._norm: str | None = None  # the first normalization layer that ran in state 0
        self._seen: dict[int, int] = {}  # id(tensor) -> slot, during state 0 only
        self._alive: list[Tensor] = []  # keeps state 0's outputs alive so their ids stay unique
        self._calls: dict[str, int] = {}
        self.handles = [m.register_forward_hook(self._hook(name or ROOT))
                        for name, m in model.named_modules() if include(name, m)]
        self.handles += [m.register_forward_hook(self._norm_hook(name))
                         for name, m in model.named_modules() if is_normalization(m)]

    def begin(self, state: int | None) -> None:
        """Start recording training state ``state`` (``None``: record nothing, e.g. during a training step)."""
        self.state = state
        self._calls.clear()

    def close(self) -> None:
        """Remove every hook from the model."""
        for h in self.handles:
            h.remove()
        self._seen.clear()
        self._alive.clear()

    def _hook(self, name: str) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            if self.state is None:
                return
            k = self._calls.get(name, 0)
            self._calls[name] = k + 1
            base = name if k == 0 else f"{name}#{k}"
            with torch.no_grad():
                for suffix, h in _tensors(output):
                    self._record(module, name, base + suffix, h, args)
        return hook

    def _norm_hook(self, name: str) -> Callable[[nn.Module, tuple[Any, ...], Any], None]:
        def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            if self.state == 0 and self._norm is None:
                self._norm = f"{name} ({type(module).__name__})"
        return hook

    def _record(self, module: nn.Module, name: str, key: str, out: Tensor, args: tuple[Any, ...]) -> None:
        h = out.detach()
        wide = h.dtype if h.dtype == torch.float64 else torch.float32  # statistics of half types in float32
        if self.state == 0:
            if key in self.slot:
                return
            alias = self._seen.get(id(out))  # ids of the very objects modules pass on
            src = self._seen.get(id(args[0])) if args and isinstance(args[0], Tensor) else None
            self.slot[key] = len(self.names)
            self.names.append(key)
            self.meta.append((module, name, alias, src))
            self.rows.append(h.numel() // h.shape[-1] if h.ndim else 1)
            self.after_norm.append(self._norm)
            self._seen.setdefault(id(out), self.slot[key])
            self._alive.append(out)
            self.h0.append(h.to(wide, copy=True))
            self.first.append(torch.stack([h.abs().mean(dtype=wide), h.new_zeros((), dtype=wide)]))
            return
        i = self.slot.get(key)
        if i is None:
            return  # an output that state 0 did not have (a branch not taken then)
        if self.buffer is None:
            self.buffer = torch.zeros(self.states, len(self.names), 2, dtype=torch.float64, device=h.device)
            self.buffer[0] = torch.stack(self.first).to(self.buffer)
            self._seen.clear()
            self._alive.clear()
        h = h.to(wide)
        # torch.dist(h, h0, 1) = sum |h - h0| in one pass, without materializing h - h0
        self.buffer[self.state, i] = torch.stack([h.abs().mean(), torch.dist(h, self.h0[i], 1) / h.numel()])

    def result(self) -> np.ndarray:
        """Statistics as an array (states, outputs, 2): one copy to the host."""
        if self.buffer is None:  # only state 0 was recorded
            out = np.full((self.states, len(self.names), 2), np.nan)
            if self.first:
                out[0] = torch.stack(self.first).double().cpu().numpy()
            return out
        return self.buffer.cpu().numpy()


def module_filter(modules: ModuleFilter) -> Callable[[str, nn.Module], bool]:
    """A predicate ``(name, module) -> bool`` from a regex, a sequence of module types or a predicate."""
    if modules is None:
        return lambda name, m: True
    if isinstance(modules, str):
        pattern = re.compile(modules)
        return lambda name, m: bool(pattern.search(name or ROOT))
    if isinstance(modules, Sequence):
        types: tuple[type, ...] = tuple(t for t in modules if isinstance(t, type))
        return lambda name, m: isinstance(m, types)
    return modules


def module_layers(model: nn.Module, plan: ScalingPlan) -> dict[int, predict.Layer]:
    """The chain layer (input / hidden / logits) of each module with a weight, by ``id(module)``.

    A module's layer is its weight's role in the plan (never read from names); a weight tied into a
    second module (a tied readout) takes the role it has there.
    """
    base = {n: w.base_shape for n, w in plan.widths.items()}
    base = with_tied_names(model, base)
    primary = {id(p): n for n, p in model.named_parameters()}
    out: dict[int, predict.Layer] = {}
    for module_name, module, attr, p in occurrences(model):
        if p.ndim < 2 or id(module) in out:
            continue
        full = f"{module_name}.{attr}" if module_name else attr
        name = primary[id(p)]
        role = plan.widths[name].role if full == name else read_width(full, module, attr, base).role
        if role in predict.LAYER_OF_ROLE:
            out[id(module)] = predict.LAYER_OF_ROLE[role]
    return out


def assign_predictions(rec: Recorder, layers: Mapping[int, predict.Layer], config: CoordConfig) -> list[ModuleInfo]:
    """Give each recorded output its prediction (see the module docstring)."""
    kinds: list[tuple[str | None, str]] = []
    hidden = 0
    for module, _, alias, src in rec.meta:
        if alias is not None:
            kinds.append((kinds[alias][0], f"same tensor as {rec.names[alias]}"))
        elif id(module) in layers:
            layer = layers[id(module)]
            if layer == "hidden":
                hidden += 1
                kinds.append((f"hidden{hidden}", "weight role: hidden"))
            else:
                kinds.append((layer, f"weight role: {'output' if layer == 'logits' else layer}"))
        elif isinstance(module, ELEMENTWISE) and src is not None:
            kinds.append((kinds[src][0], f"elementwise of {rec.names[src]}"))
        else:
            kinds.append((None, ""))
    chain = predict.chain(config.parameterization, config.family, hidden_layers=hidden)
    by_kind: dict[str, predict.LayerPrediction] = {"input": chain[0], "logits": chain[-1]}
    by_kind.update({f"hidden{i}": p for i, p in enumerate(chain[1:-1], 1)})
    maximal = predict.is_maximal_update(config.parameterization, config.family)
    infos = []
    for name, (module, _, alias_slot, _), (kind, source), norm in zip(rec.names, rec.meta, kinds, rec.after_norm):
        alias_of = rec.names[alias_slot] if alias_slot is not None else None
        if norm is not None and not maximal:
            infos.append(ModuleInfo(name, type(module).__name__, None,
                                    f"no prediction: after {norm}, and the chain has no normalization",
                                    alias_of=alias_of))
        elif kind is None or kind not in by_kind:
            what, source = ("O(1)", "maximal update: O(1)") if maximal else (None, "no prediction")
            infos.append(ModuleInfo(name, type(module).__name__, what, source, alias_of=alias_of))
        else:
            pred = by_kind[kind]
            infos.append(ModuleInfo(name, type(module).__name__, pred.layer, source, pred, alias_of))
    return infos



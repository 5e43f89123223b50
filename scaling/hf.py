"""Hugging Face transformers models under the table (the optional extra ``scaling[hf]``, transformers 5.x).

A model built from a config (random init; nothing is downloaded) is parameterized against the same
family at a smaller width, the base built from the same config with a smaller ``hidden_size`` and, in
proportion, ``intermediate_size`` and the number of heads (:func:`scaled_config`)::

    config = LlamaConfig(hidden_size=1024, intermediate_size=2816, num_attention_heads=16, ...)
    model = LlamaForCausalLM(config)
    plan = scaling.hf.parameterize(model, base=scaling.hf.scaled_config(config, 256))
    optimizer = torch.optim.AdamW(plan.param_groups(lr=3e-3))

What is particular to transformers, and handled here or in the core:

- GPT-2's ``Conv1D`` stores its weight as (in, out): fan-in is dimension 0 (:mod:`scaling.shapes`).
- Attention modules carry their logit scale as a ``scaling`` attribute (``head_dim ** -0.5``); muP's
  ``1/d_head`` (TP-V, Yang et al. 2022, §4) multiplies it by ``sqrt(base_head_dim / head_dim)``, so it is
  the model's own at the base head dimension. An attention module whose head dimension grows but that
  computes its scale inline is an error naming it.
- transformers draws ``N(0, initializer_range)`` at every width (``_init_weights``), so the table's init
  factors are taken relative to that own init (``init="own"``): at base width the model is unchanged
  bit for bit; wider, hidden weights shrink by ``m^-1/2`` and the readout by ``m^-1`` from the base's
  std (TP-V Table 3).
- The readout is ``get_output_embeddings()``. A tied ``lm_head`` (GPT-2's default) cannot take Table 3's
  readout init (it is the embedding), so the default row there is ``mup-table8`` (TP-V Table 8: the
  readout keeps the embedding's init and carries a ``1/m`` forward multiplier); untied models get ``mup``.
- The parameterization is recorded in the config (``config.scaling``), so :func:`save_pretrained` /
  :func:`from_pretrained` restore the forward multipliers and attention scales, which are not weights.
  A checkpoint of an unparameterized model loaded into a parameterized one, or the reverse, is an error.

For the coordinate check and the sweeps, :func:`causal_lm` builds a family's model at a width from a tiny
template config (``scaling.models`` registers ``hf-gpt2`` and ``hf-llama``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from scaling.baseline import InitMode
from scaling.errors import ScalingError
from scaling.plan import ScalingPlan
from scaling.plan import parameterize as _parameterize
from scaling.table import RoleScales

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

RECORD = "scaling"  # the config attribute that records a parameterization
WIDTH_KEYS = ("hidden_size", "intermediate_size", "n_inner", "num_attention_heads", "num_key_value_heads", "head_dim")
"""The config keys :func:`scaled_config` changes (GPT-2 maps ``hidden_size`` to ``n_embd``, heads to ``n_head``)."""


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as e:  # pragma: no cover - the extra is installed in CI
        raise ImportError("scaling.hf needs transformers 5.x: pip install 'scaling[hf]'") from e
    return transformers


def _families() -> dict[str, tuple[Any, Any]]:
    t = _transformers()
    return {"gpt2": (t.GPT2Config, t.GPT2LMHeadModel), "llama": (t.LlamaConfig, t.LlamaForCausalLM)}


TEMPLATES: dict[str, dict[str, Any]] = {
    # Tiny byte-level models for the checks and sweeps: head dimension 16, no dropout, vocab 256.
    "gpt2": {"vocab_size": 256, "n_positions": 256, "n_embd": 64, "n_layer": 2, "n_head": 4,
             "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0, "bos_token_id": None, "eos_token_id": None},
    "llama": {"vocab_size": 256, "max_position_embeddings": 256, "hidden_size": 64, "intermediate_size": 176,
              "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
              "tie_word_embeddings": False},
}
"""The template config of each family :func:`causal_lm` scales (GPT-2 ties its readout, Llama does not)."""


def _head_dim(config: PretrainedConfig) -> int:
    return int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)


def scaled_config(config: PretrainedConfig, hidden_size: int, *, keep: str = "head_dim") -> PretrainedConfig:
    """A copy of ``config`` at ``hidden_size``, the other widths in proportion.

    ``intermediate_size`` (GPT-2's ``n_inner`` when set) scales with ``hidden_size``; so does the number of
    heads (and of key-value heads) with ``keep="head_dim"``, or the head dimension with ``keep="heads"``.
    Every scaled value must stay a positive integer. ``config`` is not changed.
    """
    if keep not in ("head_dim", "heads"):
        raise ScalingError(f"keep must be 'head_dim' or 'heads', got {keep!r}")
    if not isinstance(hidden_size, int) or hidden_size < 1:
        raise ScalingError(f"hidden_size must be a positive integer, got {hidden_size!r}")
    factor = Fraction(hidden_size, config.hidden_size)

    def scaled(value: int, what: str) -> int:
        x = value * factor
        if x.denominator != 1 or x < 1:
            raise ScalingError(f"hidden_size {hidden_size}: {what} {value} x {factor} is not a positive integer; "
                               "choose a hidden_size that keeps every width whole")
        return int(x)

    head_dim = _head_dim(config)
    out = copy.deepcopy(config)
    out.hidden_size = hidden_size
    for key in ("intermediate_size", "n_inner"):
        if getattr(config, key, None) is not None:
            setattr(out, key, scaled(getattr(config, key), key))
    if keep == "head_dim":
        out.num_attention_heads = scaled(config.num_attention_heads, "num_attention_heads")
        if getattr(config, "num_key_value_heads", None) is not None:
            out.num_key_value_heads = scaled(config.num_key_value_heads, "num_key_value_heads")
    elif hidden_size % config.num_attention_heads:
        raise ScalingError(f"hidden_size {hidden_size} is not a multiple of {config.num_attention_heads} heads")
    if hasattr(config, "head_dim"):
        out.head_dim = head_dim if keep == "head_dim" else scaled(head_dim, "head_dim")
    return out


def causal_lm_config(family: str, width: int, **options: Any) -> PretrainedConfig:
    """The template config of ``family`` (:data:`TEMPLATES`, updated with ``options``) at ``width``."""
    families = _families()
    if family not in families:
        raise ScalingError(f"unknown transformers family {family!r}; choose one of {sorted(families)}")
    config_cls = families[family][0]
    aliases = dict(getattr(config_cls, "attribute_map", {}))  # GPT-2: num_hidden_layers -> n_layer, ...
    options = {aliases.get(k, k): v for k, v in options.items()}
    unknown = sorted(set(options) - set(config_cls().to_dict()))
    if unknown:
        raise ScalingError(f"{config_cls.__name__} has no option(s) {unknown}")
    template = config_cls(**{**TEMPLATES[family], **options})
    return scaled_config(template, width)


class CausalLM(nn.Module):
    """A transformers causal LM as the package's engines call models: ``logits = model(input_ids)``."""

    def __init__(self, lm: PreTrainedModel) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.lm(input_ids=input_ids).logits


def causal_lm(family: str, width: int, **options: Any) -> CausalLM:
    """``family``'s causal LM (``"gpt2"``, ``"llama"``) at ``width`` from its template (:func:`causal_lm_config`),
    wrapped as :class:`CausalLM`; parameterize it with ``init="own"`` (transformers' init is the same at
    every width)."""
    config = causal_lm_config(family, width, **options)
    return CausalLM(_families()[family][1](config))


def _is_hf(model: Any) -> bool:
    return isinstance(model, _transformers().PreTrainedModel)


def _attention_modules(model: nn.Module) -> dict[str, nn.Module]:
    return {n: m for n, m in model.named_modules() if "Attention" in type(m).__name__ and hasattr(m, "head_dim")}


def _check_attention(model: nn.Module, base: nn.Module) -> None:
    """An attention whose head dimension grows must carry its scale as ``scaling``, or muP cannot reach it."""
    base_modules = _attention_modules(base)
    for name, module in _attention_modules(model).items():
        other = base_modules.get(name)
        head_dim, base_head_dim = getattr(module, "head_dim"), getattr(other, "head_dim", None)  # noqa: B009
        if other is None or head_dim == base_head_dim:
            continue
        if not isinstance(getattr(module, "scaling", None), float):
            raise ScalingError(
                f"attention module {name!r} ({type(module).__name__}) has head_dim {head_dim} against the "
                f"base's {base_head_dim}, but computes its softmax scale inline (no float attribute 'scaling'), "
                "so muP's 1/d_head cannot reach it. Keep the head dimension fixed (more heads instead: "
                "scaled_config(..., keep='head_dim')), or give the module a 'scaling' attribute."
            )


def _base_model(model: PreTrainedModel, base: Any) -> tuple[Any, PretrainedConfig]:
    """The base as a builder, and its config: ``base`` is a config, a model or a builder of one."""
    transformers = _transformers()
    if isinstance(base, transformers.PretrainedConfig):
        config = base
    elif isinstance(base, transformers.PreTrainedModel):
        config = base.config
    elif callable(base):
        with torch.device("meta"):
            config = base().config
    else:
        raise ScalingError(f"base must be a transformers config, model or builder, got {type(base).__name__}")
    if type(config) is not type(model.config):
        raise ScalingError(f"the base is a {type(config).__name__}, the model a {type(model.config).__name__}: "
                           "build the base from the model's own config (scaling.hf.scaled_config)")
    if isinstance(base, transformers.PreTrainedModel):
        return base, config
    return (lambda: type(model)(copy.deepcopy(config))), config


def _widths_of(config: PretrainedConfig) -> dict[str, int]:
    return {k: getattr(config, k) for k in WIDTH_KEYS if getattr(config, k, None) is not None}


def parameterize(
    model: PreTrainedModel,
    base: Any,
    *,
    delta: Any = None,
    parameterization: str | None = None,
    init: InitMode = "own",
    **kwargs: Any,
) -> ScalingPlan:
    """:func:`scaling.parameterize` for a transformers model; the parameterization is recorded in its config.

    ``base`` is the same family's config at the base width (:func:`scaled_config`), or a model or builder
    of one (built on the meta device). ``parameterization`` defaults to ``mup`` for an untied readout and
    ``mup-table8`` for a tied one (see the module docstring). ``init="own"``: the table's init factors
    act on transformers' own (width-independent) init. ``delta`` (a config, model or builder) makes the
    widths known at base width, where the model is then unchanged bit for bit. Other keyword arguments
    go to :func:`scaling.parameterize`.

    Raises:
        ScalingError: a base of another family; no width that differs from the base (and no delta); an
            attention that computes its scale inline while its head dimension grows; nothing is changed.
    """
    if not _is_hf(model):
        raise ScalingError(f"scaling.hf.parameterize takes a transformers PreTrainedModel, got {type(model).__name__}")
    builder, base_config = _base_model(model, base)
    delta_builder, delta_config = None, None
    if delta is not None:
        delta_builder, delta_config = _base_model(model, delta)
    elif _widths_of(base_config) == _widths_of(model.config):
        raise ScalingError(
            f"no width of the model differs from the base's ({_widths_of(base_config)}): give a base config at a "
            "smaller hidden_size (scaling.hf.scaled_config), or a delta model to parameterize at base width"
        )
    if parameterization is None:
        parameterization = "mup-table8" if _tied(model) else "mup"
    if isinstance(builder, nn.Module):
        base_meta = builder
    else:
        with torch.device("meta"):
            base_meta = builder()
    _check_attention(model, base_meta)
    _check_readout(model, base_meta)
    plan = _parameterize(model, builder, delta=delta_builder, parameterization=parameterization, init=init, **kwargs)
    scales = kwargs.get("scales")
    setattr(model.config, RECORD, {
        "parameterization": plan.parameterization.name,
        "base": _widths_of(base_config),
        "delta": None if delta_config is None else _widths_of(delta_config),
        "init": init,
        "scales": {"lr": scales.lr, "init": scales.init, "multiplier": scales.multiplier}
        if isinstance(scales, RoleScales) else None,
        "absorb_multipliers": bool(kwargs.get("absorb_multipliers", False)),
    })
    return plan


def _check_readout(model: PreTrainedModel, base: Any) -> None:
    """The readout (``get_output_embeddings()``) keeps the base's vocabulary: only its fan-in is a width,
    so the core reads it as the output layer."""
    ours, theirs = model.get_output_embeddings(), base.get_output_embeddings()
    if ours is not None and theirs is not None and ours.weight.shape[0] != theirs.weight.shape[0]:
        raise ScalingError(f"the readout has {ours.weight.shape[0]} outputs against the base's "
                           f"{theirs.weight.shape[0]}: build the base with the model's vocab_size (only widths may "
                           "differ)")


def _tied(model: PreTrainedModel) -> bool:
    out, inp = model.get_output_embeddings(), model.get_input_embeddings()
    return out is not None and inp is not None and out.weight is inp.weight


def record_of(config: PretrainedConfig) -> dict[str, Any] | None:
    """The parameterization recorded in a config by :func:`parameterize`, or None."""
    record = getattr(config, RECORD, None)
    return dict(record) if isinstance(record, Mapping) else None


def _config_at(config: PretrainedConfig, widths: Mapping[str, int]) -> PretrainedConfig:
    out = copy.deepcopy(config)
    for k, v in widths.items():
        setattr(out, k, v)
    setattr(out, RECORD, None)
    return out


def _reapply(model: PreTrainedModel, record: Mapping[str, Any]) -> ScalingPlan:
    """parameterize(rescale=False) as the record says: the forward multipliers and attention scales again."""
    scales = RoleScales.from_dict(record["scales"]) if record.get("scales") else None
    delta = _config_at(model.config, record["delta"]) if record.get("delta") else None
    return parameterize(model, _config_at(model.config, record["base"]), delta=delta,
                        parameterization=record["parameterization"], init=record.get("init", "own"),
                        rescale=False, scales=scales, absorb_multipliers=record.get("absorb_multipliers", False))


def save_pretrained(model: PreTrainedModel, path: str | Path, **kwargs: Any) -> None:
    """``model.save_pretrained(path)`` of a parameterized model; its config carries the parameterization."""
    if record_of(model.config) is None:
        raise ScalingError("this model was not parameterized by scaling.hf.parameterize: save it with "
                           "model.save_pretrained")
    model.save_pretrained(path, **kwargs)


def from_pretrained(path: str | Path, model_class: Any = None, **kwargs: Any) -> tuple[PreTrainedModel, ScalingPlan]:
    """Load a checkpoint saved by :func:`save_pretrained` and restore its forward multipliers and attention
    scales; returns the model and its plan. ``model_class`` defaults to ``AutoModelForCausalLM``.

    Raises:
        ScalingError: the checkpoint's config records no parameterization (an unparameterized model: load
            it with transformers' own ``from_pretrained``).
    """
    transformers = _transformers()
    config = transformers.AutoConfig.from_pretrained(path)
    record = record_of(config)
    if record is None:
        raise ScalingError(f"{path}: the checkpoint is of an unparameterized model (its config has no "
                           f"{RECORD!r} record); load it with transformers' from_pretrained")
    cls = model_class or transformers.AutoModelForCausalLM
    model = cls.from_pretrained(path, **kwargs)
    setattr(model.config, RECORD, None)  # parameterize records it again
    return model, _reapply(model, record)


def load_checkpoint(model: PreTrainedModel, path: str | Path) -> None:
    """Load the weights of checkpoint ``path`` into ``model``, after checking that both are parameterized
    alike (the same row and base widths) or both not at all.

    Raises:
        ScalingError: a parameterized checkpoint into an unparameterized model, the reverse, or two
            different parameterizations; the model is unchanged then.
    """
    transformers = _transformers()
    ours, theirs = record_of(model.config), record_of(transformers.AutoConfig.from_pretrained(path))
    if (ours is None) != (theirs is None):
        what = "an unparameterized checkpoint into a parameterized model" if theirs is None else \
            "a parameterized checkpoint into an unparameterized model"
        raise ScalingError(f"{path}: loading {what}; the weights' init and the forward multipliers would not match "
                           "(load parameterized checkpoints with scaling.hf.from_pretrained)")
    if ours is not None and theirs is not None:
        differ = {k for k in ("parameterization", "base", "scales") if ours.get(k) != theirs.get(k)}
        if differ:
            raise ScalingError(f"{path}: the checkpoint was parameterized differently ({sorted(differ)}): "
                               f"{json.dumps({k: theirs.get(k) for k in differ})} against "
                               f"{json.dumps({k: ours.get(k) for k in differ})}")
    from safetensors.torch import load_file

    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise ScalingError(f"{path}: no .safetensors weights")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        state.update(load_file(str(f)))
    own = model.state_dict()
    tied = {n for n, _ in model.named_parameters(remove_duplicate=False)} - {n for n, _ in model.named_parameters()}
    missing = sorted(set(own) - set(state) - tied)
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(n for n in set(own) & set(state) if own[n].shape != state[n].shape)
    if missing or unexpected or wrong:
        raise ScalingError(f"{path}: the checkpoint does not fit the model (missing {missing[:5]}, unexpected "
                           f"{unexpected[:5]}, other shapes {wrong[:5]})")
    model.load_state_dict(state, strict=False)

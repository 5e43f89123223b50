"""The package's one exception type, and its warning types."""


class ScalingError(ValueError):
    """Bad input to the parameterization layer. The message names the parameter and the fix.

    Raised before anything is changed: a model that failed to parameterize is left as it was.
    """


class ScalingWarning(UserWarning):
    """Input that is accepted but probably not what was meant (a width read from a dimension that may
    not be one, a model at exactly its base's shapes). The message names the parameters."""


class InitScalingWarning(ScalingWarning):
    """The model's own init does not scale with width like PyTorch's default, which the table multiplies.

    muP (Yang et al. 2022, TP-V, Table 3) fixes each init's std as a power of the width; the table
    states it as a factor on PyTorch's ``1/sqrt(fan_in)`` default. A model that draws its own init
    (nanoGPT's and Hugging Face's ``N(0, 0.02)`` at every width) needs ``parameterize(init="base")``,
    which scales each tensor relative to the base model's own init.
    """


class AttentionScalingWarning(ScalingWarning):
    """An attention module computes its own softmax scale, so the row's ``1/d_head`` cannot reach it.

    muP scales attention logits by ``1/d_head`` instead of ``1/sqrt(d_head)`` (Yang et al. 2022, TP-V,
    §4, "attention logit scaling"). :func:`scaling.parameterize` sets it on :class:`scaling.nn.Attention`
    only; a custom attention must pass ``scale=scaling.attention_scale(plan, d_head, base_d_head)`` to
    ``F.scaled_dot_product_attention`` itself.
    """

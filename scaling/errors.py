"""The package's one exception type, and its one warning type."""


class ScalingError(ValueError):
    """Bad input to the parameterization layer. The message names the parameter and the fix.

    Raised before anything is changed: a model that failed to parameterize is left as it was.
    """


class ScalingWarning(UserWarning):
    """Input that is accepted but probably not what was meant (a width read from a dimension that may
    not be one, a model at exactly its base's shapes). The message names the parameters."""

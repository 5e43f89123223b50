"""The package's one exception type."""


class ScalingError(ValueError):
    """Bad input to the parameterization layer. The message names the parameter and the fix.

    Raised before anything is changed: a model that failed to parameterize is left as it was.
    """

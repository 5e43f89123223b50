"""What a sweep trains: a model at any width, its data and its loss, as one :class:`Task`.

A task is the user's own (``Task(builder, data)``, or ``module:function`` names on the command line)
or a reference model with its built-in dataset (:func:`task_for`, from the names in
:class:`scaling.sweep.config.RunSettings`). Its ``name`` is what the sweep database records: a database
refuses runs of another task.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from scaling.data import Data, as_data, load_dataset
from scaling.data import loss_fn as cross_entropy
from scaling.errors import ScalingError


@dataclass(frozen=True)
class Task:
    """A model builder ``(width, **model_kwargs) -> nn.Module`` (PyTorch's default init), the data it
    trains on (anything :func:`scaling.data.as_data` takes) and the loss ``loss(output, targets)``.

    ``name`` identifies the task in a sweep database (default: the builder's ``module:qualname``).
    """

    builder: Callable[..., nn.Module]
    data: Any
    loss: Callable[[Any, Any], Tensor] = cross_entropy
    name: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not callable(self.builder):
            raise ScalingError(f"a task's builder must be callable (width -> nn.Module), got {self.builder!r}")
        object.__setattr__(self, "data", as_data(self.data))
        if not self.name:
            object.__setattr__(self, "name", qualified_name(self.builder))

    def build(self, width: int, **kwargs: Any) -> nn.Module:
        """The model at ``width``."""
        return self.builder(width, **kwargs)


def qualified_name(obj: Any) -> str:
    """``module:qualname`` of a function or class (what ``--model module:function`` takes)."""
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', type(obj).__name__)}"


def import_object(spec: str, what: str) -> Any:
    """The object a ``module:attribute`` string names, with a clear error when it names nothing."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ScalingError(f"{what} {spec!r}: give a built-in name or module:function")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as e:
        raise ScalingError(f"{what} {spec!r}: cannot import module {module_name!r} ({e})") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ScalingError(f"{what} {spec!r}: module {module_name!r} has no {attr!r}")
        obj = getattr(obj, part)
    return obj


def is_import_spec(name: str | None) -> bool:
    """Whether a model, dataset or loss name is a ``module:function`` reference."""
    return bool(name) and ":" in str(name)


def task_for(model: str, dataset: str, dataset_kwargs: dict[str, Any] | None = None,
             loss: str | None = None) -> Task:
    """The task a sweep's names stand for: a reference model or ``module:function`` builder, a built-in
    dataset or a ``module:function`` returning data, and the default loss or a ``module:function``."""
    from scaling.models import REGISTRY

    kwargs = dict(dataset_kwargs or {})
    if is_import_spec(model):
        builder = import_object(model, "model")
    elif model in REGISTRY:
        builder = REGISTRY[model].build
    else:
        raise ScalingError(f"unknown model {model!r}; choose one of: {', '.join(REGISTRY)}, or module:function")
    if is_import_spec(dataset):
        data: Data = as_data(import_object(dataset, "dataset")(**kwargs), name=dataset)
    else:
        try:
            data = load_dataset(dataset, **kwargs)
        except TypeError as e:
            raise ScalingError(f"bad dataset options {kwargs} for {dataset!r}: {e}") from e
        except ValueError as e:
            raise ScalingError(str(e)) from e
    loss_fn = import_object(loss, "loss") if loss else cross_entropy
    return Task(builder, data, loss_fn, name=model, info=dict(getattr(data, "info", {})))

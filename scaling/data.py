"""Data for the lab: the built-in datasets (MNIST-1D, a byte corpus of Python's own standard library,
the original question's toy problem), all generated or read offline, and the user's own data.

What a training run reads is a :class:`Data`: batches drawn from a seeded ``torch.Generator``, and
fixed validation batches. :class:`Dataset` holds tensors in memory (the built-in datasets, or a
user's ``(x, y)`` pair); :class:`LoaderData` wraps a ``torch.utils.data.DataLoader``;
:func:`as_data` takes any of these. :data:`DATASETS` is the registry of built-in datasets by name
and :func:`load_dataset` builds one. Generated data is cached under ``~/.cache/scaling``
(``SCALING_CACHE`` overrides), keyed by every argument that changes it.
"""

from __future__ import annotations

import hashlib
import os
import sysconfig
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from scaling.errors import ScalingError

Batch = tuple[Any, Any]


@runtime_checkable
class Data(Protocol):
    """What a training run reads: an endless stream of training batches and fixed validation batches."""

    name: str

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """Training batches, forever, in an order fixed by ``generator``."""
        ...

    def validation(self) -> list[Batch]:
        """Fixed validation batches (the same on every call; empty if there are none)."""
        ...

    def steps_per_epoch(self, batch_size: int) -> int:
        """Batches in one pass over the training data (for ``ReduceLROnPlateau``'s window)."""
        ...


def cache_dir() -> Path:
    """Where generated datasets are cached."""
    path = Path(os.environ.get("SCALING_CACHE", Path.home() / ".cache" / "scaling"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class Dataset:
    """A classification or next-byte dataset held in memory.

    ``x_train``/``y_train`` are sampled for training; ``x_val``/``y_val`` are the fixed validation set.
    For a token corpus (``block_size > 0``) ``x_*`` are 1-D byte streams and a sample is a window
    of ``block_size`` bytes with the next bytes as targets.
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    block_size: int = 0
    info: dict[str, Any] = field(default_factory=dict)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """A random training batch (with replacement across batches)."""
        return self._take(self.x_train, self.y_train, batch_size, generator)

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """Random training batches (:meth:`sample`), forever."""
        while True:
            yield self.sample(batch_size, generator)

    def steps_per_epoch(self, batch_size: int) -> int:
        """Batches of ``batch_size`` examples (or windows) in one pass over the training data."""
        return len(self.x_train) // max(batch_size * max(self.block_size, 1), 1)

    def validation(self, batch_size: int = 512, max_batches: int = 8) -> list[Batch]:
        """Fixed validation batches (the same on every call)."""
        if len(self.x_val) == 0:
            return []
        g = torch.Generator().manual_seed(1234)
        if self.block_size:
            return [self._take(self.x_val, self.y_val, batch_size // 8 or 1, g) for _ in range(max_batches)]
        n = min(len(self.x_val), batch_size * max_batches)
        return [(self.x_val[i : i + batch_size], self.y_val[i : i + batch_size]) for i in range(0, n, batch_size)]

    def _take(self, x: Tensor, y: Tensor, batch_size: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        if self.block_size:
            starts = torch.randint(0, len(x) - self.block_size - 1, (batch_size,), generator=g)
            offsets = torch.arange(self.block_size)
            idx = starts[:, None] + offsets  # (B, T)
            return x[idx].long(), x[idx + 1].long()
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        return x[idx], y[idx]


def loss_fn(logits: Tensor, y: Tensor) -> Tensor:
    """Cross-entropy for class logits (B, C) or per-position logits (B, T, V)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def mnist1d(num_samples: int = 10_000, seed: int = 42, standardize: bool = True) -> Dataset:
    """MNIST-1D (Greydanus & Kobak 2024), generated offline by the ``mnist1d`` package.

    ``num_samples`` are split 80/20 into train and validation (the package's own split). Inputs are
    standardized with the training mean and std.
    """
    path = cache_dir() / f"mnist1d-n{num_samples}-s{seed}.npz"
    if not path.exists():
        try:
            from mnist1d.data import get_dataset_args, make_dataset
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("MNIST-1D needs the mnist1d package: pip install 'scaling[data]'") from e
        args = get_dataset_args()
        args.num_samples, args.seed = num_samples, seed
        d = make_dataset(args)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")  # per process: parallel workers may race here
        np.savez(tmp, x=d["x"], y=d["y"], x_test=d["x_test"], y_test=d["y_test"])
        tmp.replace(path)
    with np.load(path) as d:
        x, y, xv, yv = (torch.as_tensor(d[k]) for k in ("x", "y", "x_test", "y_test"))
    x, xv = x.float(), xv.float()
    if standardize:
        mean, std = x.mean(), x.std()
        x, xv = (x - mean) / std, (xv - mean) / std
    return Dataset("mnist1d", x, y.long(), xv, yv.long(), info={"num_samples": num_samples, "seed": seed})


def stdlib_bytes(block_size: int = 64, max_bytes: int = 4_000_000, val_fraction: float = 0.05) -> Dataset:
    """A byte-level corpus made of the Python standard library's own ``.py`` files.

    Files are read in sorted path order until ``max_bytes``; the corpus is the same on every machine
    with the same Python version, and its SHA-256 is recorded in ``info["sha256"]``.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    chunks, total = [], 0
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts or "test" in path.parts:
            continue
        data = path.read_bytes()
        chunks.append(data)
        total += len(data)
        if total >= max_bytes:
            break
    corpus = b"".join(chunks)[:max_bytes]
    digest = hashlib.sha256(corpus).hexdigest()
    tokens = torch.frombuffer(bytearray(corpus), dtype=torch.uint8)
    split = int(len(tokens) * (1 - val_fraction))
    train, val = tokens[:split], tokens[split:]
    info = {"sha256": digest, "bytes": len(corpus), "files": len(chunks), "python": sysconfig.get_python_version()}
    return Dataset("stdlib-bytes", train, train, val, val, block_size=block_size, info=info)


def toy(num_samples: int = 2000, dim: int = 10, classes: int = 2, seed: int = 0, labels: str = "teacher") -> Dataset:
    """The original question's data: random ``dim``-d Gaussian inputs, ``classes`` classes.

    ``labels="teacher"`` labels each input by the argmax of a fixed random ReLU network
    (10-32-classes), a learnable rule; ``labels="random"`` draws them uniformly (memorization).
    """
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(num_samples, dim, generator=g)
    if labels == "teacher":
        w1 = torch.randn(dim, 32, generator=g) / dim**0.5
        w2 = torch.randn(32, classes, generator=g) / 32**0.5
        y = (torch.relu(x @ w1) @ w2).argmax(dim=1)
    elif labels == "random":
        y = torch.randint(0, classes, (num_samples,), generator=g)
    else:
        raise ScalingError(f"labels must be 'teacher' or 'random', got {labels!r}")
    split = int(0.8 * num_samples)
    info = {"num_samples": num_samples, "dim": dim, "classes": classes, "seed": seed, "labels": labels}
    return Dataset("toy", x[:split], y[:split], x[split:], y[split:], info=info)


@dataclass
class LoaderData:
    """A ``DataLoader`` as :class:`Data`: its batches (its own batch size), cycled, in a seeded order.

    Each pass over the loader starts under a seed drawn from the run's generator, so a run's batches
    depend on its seed only (a shuffling loader draws its order from torch's global generator, which
    is set for that moment and restored after).
    """

    loader: Iterable[Batch]
    val_loader: Iterable[Batch] | None = None
    name: str = "loader"
    info: dict[str, Any] = field(default_factory=dict)

    def batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """The loader's batches, pass after pass (``batch_size`` is the loader's own)."""
        while True:
            seed = int(torch.randint(0, 2**62, (), generator=generator))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                it = iter(self.loader)
                first = next(it, None)
            if first is None:
                raise ScalingError(f"data {self.name!r}: the loader yields no batches")
            yield first
            yield from it

    def validation(self) -> list[Batch]:
        """Every batch of the validation loader (none without one)."""
        return list(self.val_loader) if self.val_loader is not None else []

    def steps_per_epoch(self, batch_size: int) -> int:
        """The loader's length (1 if it has none)."""
        try:
            return len(self.loader)  # type: ignore[arg-type]
        except TypeError:
            return 1


def as_data(data: Any, name: str | None = None) -> Data:
    """The user's data as :class:`Data`: a :class:`Data` as it is, an ``(x, y)`` or ``(x, y, x_val, y_val)``
    tuple of tensors (batches sampled with replacement, like the built-in datasets), or a ``DataLoader``
    (optionally with a validation loader: ``(train_loader, val_loader)``)."""
    if isinstance(data, Data):
        return data
    if isinstance(data, (tuple, list)) and len(data) in (2, 4) and all(isinstance(t, Tensor) for t in data):
        x, y, *val = data
        if len(x) != len(y) or (val and len(val[0]) != len(val[1])):
            raise ScalingError(f"inputs and targets differ in length: {[len(t) for t in data]}")
        xv, yv = val if val else (x[:0], y[:0])
        return Dataset(name or "tensors", x, y, xv, yv, info={"shape": list(x.shape), "sha256": _digest(x, y)})
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(_is_loader(d) for d in data):
        return LoaderData(data[0], data[1], name=name or "loader")
    if _is_loader(data):
        return LoaderData(data, name=name or "loader")
    raise ScalingError(f"cannot train on {type(data).__name__}: pass (x, y) tensors, (x, y, x_val, y_val), a "
                         "DataLoader, or a scaling.data.Dataset")


def _is_loader(obj: Any) -> bool:
    return isinstance(obj, torch.utils.data.DataLoader)


def _digest(*tensors: Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


DATASETS: dict[str, Callable[..., Dataset]] = {"mnist1d": mnist1d, "stdlib-bytes": stdlib_bytes, "toy": toy}
"""The built-in datasets by name; each function's arguments are the dataset's options."""


def load_dataset(name: str, **kwargs: Any) -> Dataset:
    """Build a built-in dataset by name (:data:`DATASETS`): ``mnist1d``, ``stdlib-bytes`` or ``toy``."""
    if name not in DATASETS:
        raise ScalingError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name](**kwargs)

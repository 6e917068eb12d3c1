"""The types, errors and small helpers that every nnjax dataset loader shares.

Kept apart from ``nnjax/data/__init__.py`` so that the loaders (``book``,
``tfds_source``, ``idx``) can import them without a circular import of the
package; ``nnjax.data`` re-exports the public names.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Callable

import numpy as np


class DataError(Exception):
    """A dataset could not be found, obtained or read (one-line message)."""


class DataDirError(DataError):
    """The data directory itself cannot be used (a file, a mistyped path, not writable):
    the fault of where the data go, not of the dataset."""


@dataclasses.dataclass(frozen=True)
class Split:
    """One split: ``x`` float32 (N, features) in [0, 1], ``y`` int32 (N,)."""

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self):
        if self.x.ndim != 2 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise ValueError(
                f"Split needs x (N, D) and y (N,), got {self.x.shape} and {self.y.shape}"
            )

    def __len__(self) -> int:
        return len(self.y)


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A loaded dataset: its three splits (x float32 (N, H·W·C) in [0, 1], y int32 (N,)),
    the shape of one image and the number of classes."""

    name: str
    train: Split
    validation: Split
    test: Split
    image_shape: tuple  # (H, W, C), e.g. (28, 28, 1)
    num_classes: int


# The public API lives in the package: report these as nnjax.data.* (reprs,
# tracebacks, pickles) wherever they are defined.
for _cls in (DataError, Split, Dataset):
    _cls.__module__ = "nnjax.data"
del _cls


Progress = Callable[[str], object]


def default_data_dir() -> pathlib.Path:
    """$NNJAX_DATA_DIR, else $XDG_CACHE_HOME/nnjax, else ~/.cache/nnjax."""
    env = os.environ.get("NNJAX_DATA_DIR")
    if env:
        return pathlib.Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return pathlib.Path(xdg).expanduser() / "nnjax"
    return pathlib.Path.home() / ".cache" / "nnjax"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def validation_share(n: int) -> int:
    """How many of ``n`` training examples a ``tfds:`` or ``idx:`` dataset holds out for
    validation unless told: the book's 10,000 (of MNIST's 60,000), or a sixth of them (as
    in MNIST) where there are fewer than 20,000, which 10,000 would leave half or less."""
    return 10000 if n >= 20000 else n // 6


def _split_train(name: str, x: np.ndarray, y: np.ndarray, validation_size: int | None):
    """Train = first N - validation_size, validation = the last validation_size
    (``validation_share(N)`` if None)."""
    n = len(y)
    if validation_size is None:
        validation_size = validation_share(n)
        if validation_size == 0:
            raise DataError(
                f"{name}: {n} training examples are too few: a sixth of them is held out "
                "for validation, so at least 6 are needed"
            )
    if not 0 <= validation_size < n:
        raise DataError(
            f"{name}: validation_size={validation_size} must be >= 0 and smaller than "
            f"the {n} training examples; pass a smaller validation_size"
        )
    cut = n - validation_size
    return Split(x[:cut], y[:cut]), Split(x[cut:], y[cut:])


def _to_unit_float(images_u8: np.ndarray) -> np.ndarray:
    """uint8 (N, ...) -> float32 (N, prod(...)) in [0, 1]."""
    flat = images_u8.reshape(len(images_u8), -1)
    return flat.astype(np.float32) / np.float32(255.0)

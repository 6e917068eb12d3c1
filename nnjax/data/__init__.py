"""Datasets for nnjax: the book's MNIST, TFDS datasets and raw IDX directories.

Everything here returns plain numpy arrays in host memory::

    ds = load("mnist")                 # Nielsen's mnist.pkl.gz, 50000/10000/10000
    ds = load("tfds:fashion_mnist")    # a prepared TFDS dataset (array_record)
    ds = load("idx:/usr/share/datasets/fashion-mnist")   # raw IDX files

``ds.train.x`` is float32 ``(N, H*W*C)`` in ``[0, 1]``, ``ds.train.y`` int32
``(N,)``.  Every user-facing failure is a :class:`DataError` whose message is a
single line naming the file or dataset and saying what to do.

One module per source: :mod:`nnjax.data.book` (``mnist``),
:mod:`nnjax.data.tfds_source` (``tfds:NAME``; imports tensorflow_datasets only
when used) and :mod:`nnjax.data.idx` (``idx:DIR``); the shared types and
helpers are in :mod:`nnjax.data.common`.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from nnjax.data import book, idx, tfds_source
from nnjax.data.book import fetch_book_mnist
from nnjax.data.common import (
    DataDirError,
    DataError,
    Dataset,
    Progress,
    Split,
    default_data_dir,
)
from nnjax.data.fetch import verify_file
from nnjax.data.idx import read_idx

__all__ = [
    "DataDirError",
    "DataError",
    "Split",
    "Dataset",
    "default_data_dir",
    "load",
    "sources",
    "fetch_book_mnist",
    "verify_file",
    "read_idx",
]


def load(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    *,
    progress: Progress | None = print,
    validation_size: int | None = None,
) -> Dataset:
    """Loads a dataset by name: ``mnist``, ``tfds:NAME`` or ``idx:DIR``.

    ``data_dir`` (default :func:`default_data_dir`) holds the book's
    ``mnist.pkl.gz`` and, under ``tfds/``, TFDS data.  ``validation_size`` is
    the tail of the training data held out for validation for ``tfds:`` and
    ``idx:`` datasets (default: 10,000, or a sixth of the training data where it holds
    fewer than 20,000); ``mnist`` always uses the book's own 50000/10000 split.
    ``progress`` receives one-line status messages (``None`` for silence). A ``data_dir``
    given is created if its parent exists (never the parent: a typo is an error).
    """
    if not isinstance(name, str):
        raise DataError(f"a dataset is named by a string (mnist, tfds:NAME, idx:DIR), got {name!r}")
    if validation_size is not None and not (  # nnjax.inputs.is_whole, without JAX
        isinstance(validation_size, (int, np.integer)) and not isinstance(validation_size, bool)
    ):
        raise DataError(f"validation_size must be a whole number, got {validation_size!r}")
    progress = progress or (lambda msg: None)
    given, data_dir = data_dir, (pathlib.Path(data_dir).expanduser() if data_dir else None)
    data_dir = data_dir or default_data_dir()
    if name.lower() == "mnist":
        _check_data_dir(data_dir, given)
        return book.load_book_mnist(data_dir, progress)
    if name.startswith("tfds:"):
        tfds_name = name[len("tfds:") :].strip()
        if not tfds_name:
            raise DataError(
                "dataset 'tfds:' names no TFDS dataset: use mnist, tfds:NAME "
                "(e.g. tfds:fashion_mnist) or idx:DIR"
            )
        _check_data_dir(data_dir, given)
        return tfds_source.load_tfds(tfds_name, data_dir / "tfds", progress, validation_size)
    if name.startswith("idx:"):
        idx_dir = name[len("idx:") :].strip()
        if not idx_dir:
            raise DataError(
                "dataset 'idx:' names no directory: use mnist, tfds:NAME or idx:DIR "
                "(DIR holding train-/t10k- IDX files)"
            )
        return idx.load_idx_dir(pathlib.Path(idx_dir).expanduser(), validation_size)
    raise DataError(f"unknown dataset {name!r}: use mnist, tfds:NAME or idx:DIR")


def _check_data_dir(data_dir: pathlib.Path, given) -> None:
    """DataError unless ``data_dir`` is a directory or can be made one: not a file, and,
    where it was ``given`` or set by $NNJAX_DATA_DIR (not a default), with a parent that
    exists (a mistyped path is not created with all its parents)."""
    if data_dir.exists() and not data_dir.is_dir():
        raise DataDirError(
            f"data directory {data_dir} is a file: set --data_dir / NNJAX_DATA_DIR to a directory"
        )
    named = "--data_dir" if given else "NNJAX_DATA_DIR" if os.environ.get("NNJAX_DATA_DIR") else ""
    if named and not data_dir.exists() and not data_dir.parent.is_dir():
        raise DataDirError(
            f"data directory {data_dir}: its parent {data_dir.parent} does not exist (is "
            f"{named} mistyped? nnjax creates the directory, not its parents)"
        )


def sources(name: str = "mnist", data_dir: str | os.PathLike | None = None) -> list[pathlib.Path]:
    """What ``load(name, data_dir)`` reads, which no output may overwrite: the files of the
    book's MNIST or of ``idx:DIR``, or the TFDS data directory (everything under it). Empty
    for a name ``load`` would refuse."""
    data_dir = pathlib.Path(data_dir).expanduser() if data_dir else default_data_dir()
    if name.lower() == "mnist":
        return book.book_files(data_dir)
    if name.startswith("tfds:"):
        return [data_dir / "tfds"]
    if name.startswith("idx:") and name[len("idx:") :].strip():
        return idx.idx_files(pathlib.Path(name[len("idx:") :].strip()).expanduser())
    return []

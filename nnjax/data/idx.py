"""Raw IDX directories (e.g. Debian's dataset-fashion-mnist).

``idx:DIR`` reads ``train-``/``t10k-`` ``images-idx3-ubyte`` and
``labels-idx1-ubyte`` files (``-`` or ``.`` before ``idx``, optionally ``.gz``).
"""

from __future__ import annotations

import gzip
import os
import pathlib
import struct
import zlib

import numpy as np

from nnjax.data.common import DataError, Dataset, Split, _one_line, _split_train, _to_unit_float

_IDX_UBYTE = 0x08


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """Reads an (optionally gzipped) IDX file of unsigned bytes with ``ndim`` dims: a
    read-only uint8 array shaped as the file's header says (copy it to change it). Raises
    DataError naming the file."""
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"cannot read IDX file {path} ({_one_line(e)}); re-download or replace it"
        ) from e
    expected_magic = (_IDX_UBYTE << 8) | ndim
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(
            f"{path} is too short to be an IDX file ({len(raw)} bytes); re-download or replace it"
        )
    (magic,) = struct.unpack(">I", raw[:4])
    if magic != expected_magic:
        raise DataError(
            f"{path} has IDX magic 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"(uint8, {ndim}-D); check the file name/type or re-download it"
        )
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != size:
        raise DataError(
            f"{path} holds {len(raw) - header} data bytes but its header {dims} says {size}; "
            "it is truncated or corrupt: re-download or replace it"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _names(prefix: str, kind: str, ndim: int) -> list[str]:
    """The file names ``idx:DIR`` accepts for one file, in the order it looks for them."""
    names = []
    for sep in ("-", "."):
        base = f"{prefix}-{kind}{sep}idx{ndim}-ubyte"
        names += [base, base + ".gz"]
    return names


def idx_files(directory: pathlib.Path) -> list[pathlib.Path]:
    """Every path ``load_idx_dir(directory)`` may read (whether or not it exists)."""
    return [
        directory / name
        for prefix in ("train", "t10k")
        for kind, ndim in (("images", 3), ("labels", 1))
        for name in _names(prefix, kind, ndim)
    ]


def _find_idx(directory: pathlib.Path, prefix: str, kind: str, ndim: int) -> pathlib.Path:
    candidates = _names(prefix, kind, ndim)
    for c in candidates:
        if (directory / c).is_file():
            return directory / c
    raise DataError(
        f"IDX file {directory / candidates[0]}(.gz) not found; idx:DIR needs "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
        "t10k-labels-idx1-ubyte (optionally .gz)"
    )


def _read_idx_pair(directory: pathlib.Path, prefix: str):
    img_path = _find_idx(directory, prefix, "images", 3)
    lbl_path = _find_idx(directory, prefix, "labels", 1)
    images = read_idx(img_path, 3)
    labels = read_idx(lbl_path, 1)
    if not len(images) or 0 in images.shape[1:]:
        pixels = "×".join(map(str, images.shape[1:]))
        raise DataError(f"{img_path} holds {len(images)} images of {pixels} pixels: none to use")
    if len(images) != len(labels):
        raise DataError(
            f"{img_path} has {len(images)} images but {lbl_path} has {len(labels)} labels; "
            "the files do not belong together: re-download them"
        )
    return images, labels, img_path


def load_idx_dir(directory: pathlib.Path, validation_size: int | None) -> Dataset:
    """The ``train-``/``t10k-`` IDX image and label files in ``directory`` as a ``Dataset``:
    x float32 (N, H·W) in [0, 1], y int32 (N,), the last ``validation_size`` training images
    held out for validation (None: ``common.validation_share``). Raises DataError naming the
    directory or file."""
    label = f"idx:{directory}"
    if not directory.is_dir():
        raise DataError(
            f"{label}: {directory} is not a directory; pass idx:DIR with the IDX files in DIR"
        )
    x_train, y_train, train_path = _read_idx_pair(directory, "train")
    x_test, y_test, test_path = _read_idx_pair(directory, "t10k")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{train_path} has {x_train.shape[1:]} images but {test_path} has {x_test.shape[1:]}; "
            "the files do not belong together: re-download them"
        )
    image_shape = (*x_train.shape[1:], 1)
    num_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    train, validation = _split_train(
        label, _to_unit_float(x_train), y_train.astype(np.int32), validation_size
    )
    test = Split(_to_unit_float(x_test), y_test.astype(np.int32))
    return Dataset(label, train, validation, test, image_shape=image_shape, num_classes=num_classes)

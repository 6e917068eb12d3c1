"""Tests for nnjax.data.idx, raw IDX directories (offline)."""

from __future__ import annotations

import gzip
import pathlib
import struct

import numpy as np
import pytest

from nnjax import data
from nnjax.data import DataError
from tests.helpers import assert_one_line


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
    if arrays["train-images"].size:
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
    np.testing.assert_array_equal(ds.train.y, arrays["train-labels"][:20])
    np.testing.assert_array_equal(ds.test.x, arrays["t10k-images"].reshape(7, -1) / np.float32(255))
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
    assert victim in assert_one_line(e)


def test_idx_bad_directory_and_validation_size(tmp_path):
    with pytest.raises(DataError) as e:
        data.load(f"idx:{tmp_path / 'nope'}")
    assert "nope" in assert_one_line(e)
    _write_idx_dir(tmp_path)
    with pytest.raises(DataError) as e:
        data.load(f"idx:{tmp_path}", validation_size=25)
    assert "validation_size=25 must be >= 0 and smaller than the 25" in assert_one_line(e)


@pytest.mark.parametrize(
    "n_train, validation", [(25, 4), (600, 100), (19999, 3333), (20000, 10000), (60000, 10000)]
)
def test_a_sixth_of_a_small_training_set_is_held_out(tmp_path, n_train, validation):
    """MNIST's 10,000 where 20,000 or more leave at least as many to train on (CIFAR-10's
    50,000 as before); a sixth, as MNIST's, of fewer."""
    _write_idx_dir(tmp_path, n_train=n_train, hw=(2, 2))
    ds = data.load(f"idx:{tmp_path}", progress=None)
    assert (len(ds.train), len(ds.validation)) == (n_train - validation, validation)


@pytest.mark.parametrize(
    "layout, message",
    [
        (dict(n_train=5), "5 training examples are too few: a sixth of them is held out"),
        (dict(n_test=0), "t10k-images-idx3-ubyte holds 0 images of 5×4 pixels: none to use"),
        (dict(n_train=0), "train-images-idx3-ubyte holds 0 images of 5×4 pixels: none to use"),
        (dict(hw=(0, 0)), "train-images-idx3-ubyte holds 25 images of 0×0 pixels: none to use"),
    ],
)
def test_an_idx_set_with_nothing_to_learn_from_is_one_line(tmp_path, layout, message):
    _write_idx_dir(tmp_path, **layout)
    with pytest.raises(DataError) as e:
        data.load(f"idx:{tmp_path}", progress=None)
    assert message in assert_one_line(e)


FASHION_DIR = pathlib.Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_idx_debian_fashion_mnist():
    ds = data.load(f"idx:{FASHION_DIR}", progress=None)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (50000, 10000, 10000)
    assert ds.image_shape == (28, 28, 1) and ds.num_classes == 10
    assert ds.train.x.shape == (50000, 784) and ds.train.x.max() == 1.0


@pytest.mark.parametrize(
    "runner, flags, what",
    [
        ("experiments.digits", ["--png={d}/d.png"], "experiments.digits"),
        ("experiments.conv", ["--epochs=1", "--expand=none"], "experiments.conv"),
        (
            "experiments.mnist",
            ["--epochs=1", "--misclassified_png={d}/w.png"],
            "--misclassified_png",
        ),
    ],
)
def test_what_draws_or_convolves_square_digits_refuses_other_images(tmp_path, runner, flags, what):
    """5×4 images: one line naming --dataset and the shape, nothing written."""
    from tests.helpers import assert_failed_with_one_error, run_module

    _write_idx_dir(tmp_path / "idx", n_train=10_050)
    args = [f"--dataset=idx:{tmp_path / 'idx'}", *(f.format(d=tmp_path) for f in flags)]
    result = run_module(runner, *args, timeout=120)
    assert_failed_with_one_error(
        result, f"--dataset=idx:{tmp_path / 'idx'}: {what} needs square greyscale images, not 5×4×1"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]

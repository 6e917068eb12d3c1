"""`python -m experiments.digits`: chapter 1's first MNIST digits with their labels."""

import gzip
import pickle

import numpy as np
import pytest
from PIL import Image

from nnjax import data
from tests.helpers import assert_failed_with_one_error, run_module


def run_digits(*flags):
    return run_module("experiments.digits", *flags)


def book_labels(split: str, count: int) -> list[int]:
    """The first ``count`` labels of ``split``, read straight from the book's mnist.pkl.gz
    (training, validation, test: its three (x, y) pairs in that order)."""
    path = data.default_data_dir() / "mnist.pkl.gz"
    if not path.exists():
        pytest.skip(f"needs the book's {path}")
    with gzip.open(path, "rb") as f:
        splits = pickle.load(f, encoding="latin1")
    index = {"train": 0, "validation": 1, "test": 2}[split]
    return [int(d) for d in splits[index][1][:count]]


def printed_labels(stdout: str) -> list[int]:
    line = next(line for line in stdout.splitlines() if "their labels:" in line)
    return [int(d) for d in line.split("their labels:")[1].split()]


def png_shape(path):
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("L")).shape


@pytest.mark.parametrize("split, count", [("train", 20), ("test", 7)])
def test_draws_the_first_digits_with_their_labels(tmp_path, split, count):
    png = tmp_path / "digits.png"
    result = run_digits(f"--split={split}", f"--count={count}", f"--png={png}")
    assert result.returncode == 0, result.stderr
    assert printed_labels(result.stdout) == book_labels(split, count)
    assert f"Drew the first {count} " in result.stdout and str(png) in result.stdout
    height, width = png_shape(png)
    rows, columns = -(-count // 10), min(count, 10)
    assert 100 * rows <= height <= 130 * rows and 90 * columns <= width <= 110 * columns


def test_the_book_starts_with_5_0_4_1_9(tmp_path):
    result = run_digits("--count=5", f"--png={tmp_path / 'd.png'}")
    assert printed_labels(result.stdout) == [5, 0, 4, 1, 9]


@pytest.mark.parametrize(
    "flags, names",
    [
        (["--count=0", "--png={d}/d.png"], "--count"),
        (["--count=101", "--png={d}/d.png"], "--count"),
        (["--count=ten", "--png={d}/d.png"], "--count"),
        (["--split=training", "--png={d}/d.png"], "--split"),
        ([], "--png is required"),
        (["--png=/nonexistent/dir/d.png"], "--png=/nonexistent/dir/d.png"),
        (["--png={d}"], "must name a .png file"),
        (["--png={d}/d.png", "--dataset=idx:/nonexistent/dir"], "/nonexistent/dir"),
        (["--png={d}/d.png", "stray"], "stray"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag_and_writes_nothing(tmp_path, flags, names):
    result = run_digits(*(f.format(d=tmp_path) for f in flags))
    assert_failed_with_one_error(result, names)
    assert not (tmp_path / "d.png").exists()


def test_a_failed_run_leaves_an_existing_png_untouched(tmp_path):
    png = tmp_path / "d.png"
    png.write_bytes(b"an earlier figure")
    result = run_digits(f"--png={png}", "--dataset=idx:/nonexistent/dir")
    assert_failed_with_one_error(result, "/nonexistent/dir")
    assert png.read_bytes() == b"an earlier figure"

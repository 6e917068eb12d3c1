"""Chapters 1 and 6's figures: first-layer filters, digits, and misclassified digits."""

import numpy as np
import pytest
from PIL import Image

from experiments import figures
from tests.helpers import assert_one_line


def read_png(path):
    """The written PNG as a greyscale uint8 array (height, width)."""
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("L"))


def dark_fraction(pixels):
    return (pixels < 128).mean()


@pytest.mark.parametrize("shape", [(20, 5, 5), (20, 1, 5, 5), (3, 4, 7)])
def test_filters_figure(tmp_path, shape):
    w = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    path = tmp_path / "filters.png"
    assert figures.draw_filters(w, path, title="layer 1") == path
    pixels = read_png(path)
    h, wd = pixels.shape
    assert 100 <= h <= 600 and 200 <= wd <= 1200, pixels.shape
    assert 0.02 < dark_fraction(pixels) < 0.9  # drawn, neither blank nor black


def test_filters_share_a_scale_symmetric_around_zero(tmp_path):
    # Constant filters +1, −1, 0, +0.5 on one scale [−1, 1], grey reversed: black, white,
    # mid grey, dark grey. (Each filter on its own range could not tell them apart.)
    w = np.stack([np.full((5, 5), v, np.float32) for v in (1.0, -1.0, 0.0, 0.5)])
    pixels = read_png(figures.draw_filters(w, tmp_path / "f.png"))
    row = pixels[pixels.shape[0] // 2]
    edges = np.flatnonzero(np.diff(row.astype(int))) + 1
    runs = [(a, b - a, row[a]) for a, b in zip(np.r_[0, edges], np.r_[edges, len(row)])]
    cells = [int(value) for start, length, value in runs if start > 0 and length >= 40]
    assert len(cells) == 4, runs
    assert cells[0] < 10 and cells[1] > 245 and 115 < cells[2] < 140 and 50 < cells[3] < 76


def test_misclassified_figure(tmp_path):
    rng = np.random.default_rng(1)
    k = 33
    images = (rng.random((k, 784)) > 0.7).astype(np.float32)
    labels = rng.integers(0, 10, k)
    path = figures.draw_misclassified(
        images, labels, (labels + 1) % 10, tmp_path / "wrong.png", title="33 wrong"
    )
    pixels = read_png(path)
    h, w = pixels.shape
    assert 300 <= h <= 800 and 600 <= w <= 1400, pixels.shape
    assert 0.05 < dark_fraction(pixels) < 0.7


def test_misclassified_figure_sizes(tmp_path):
    small = read_png(
        figures.draw_misclassified(
            np.ones((2, 16), np.float32), [1, 2], [3, 4], tmp_path / "two.png", side=4
        )
    )
    many = read_png(
        figures.draw_misclassified(
            np.ones((100, 784), np.float32) * 0.5,
            np.zeros(100, int),
            np.ones(100, int),
            tmp_path / "many.png",
        )
    )
    assert many.shape[0] > 3 * small.shape[0] and many.shape[0] <= 2000
    assert many.shape[1] <= 1400


def test_digits_figure_draws_each_digit_in_its_cell(tmp_path):
    # Digit i is black in its top i rows (of 4): the cells darken from left to right.
    images = np.stack([(np.arange(16) < 4 * i).astype(np.float32) for i in range(5)])
    path = figures.draw_digits(images, list("01234"), tmp_path / "d.png", side=4)
    pixels = read_png(path)
    columns = np.array_split(pixels[pixels.shape[0] // 5 :], 5, axis=1)
    darkness = [dark_fraction(c) for c in columns]
    assert darkness == sorted(darkness) and darkness[0] < 0.05 < darkness[-1], darkness


@pytest.mark.parametrize("seed, limit", [(0, 100), (1, 5), (2, 0)])
def test_mistakes_are_the_first_wrong_indices(seed, limit):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, 500)
    predictions = np.where(rng.random(500) < 0.3, rng.integers(0, 10, 500), labels)
    wrong = [i for i in range(500) if predictions[i] != labels[i]]
    shown, total = figures.mistakes(labels, predictions, limit)
    assert shown.tolist() == wrong[:limit] and total == len(wrong)


def test_no_misclassified_digits(tmp_path):
    pixels = read_png(
        figures.draw_misclassified(np.zeros((0, 784), np.float32), [], [], tmp_path / "none.png")
    )
    assert 0 < dark_fraction(pixels) < 0.1  # some text on white


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda p: figures.draw_filters(np.zeros((20, 3, 5, 5)), p), "filters"),
        (lambda p: figures.draw_filters(np.zeros((5, 5)), p), "filters"),
        (lambda p: figures.draw_filters(np.zeros((0, 5, 5)), p), "filters"),
        (
            lambda p: figures.draw_misclassified(np.zeros((3, 783)), [1] * 3, [1] * 3, p),
            "images",
        ),
        (
            lambda p: figures.draw_misclassified(np.zeros((3, 16)), [1] * 3, [1] * 3, p),
            "images",
        ),
        (
            lambda p: figures.draw_misclassified(np.zeros((3, 784)), [1] * 2, [1] * 3, p),
            "labels",
        ),
        (
            lambda p: figures.draw_misclassified(np.zeros((3, 784)), [1] * 3, [[1]] * 3, p),
            "predictions",
        ),
        (lambda p: figures.draw_digits(np.zeros((3, 784)), ["1"] * 2, p), "titles"),
        (lambda p: figures.draw_digits(np.zeros(784), ["1"], p), "images"),
    ],
)
def test_bad_shapes_are_one_line_errors(tmp_path, call, name):
    path = tmp_path / "x.png"
    with pytest.raises(ValueError) as e:
        call(path)
    assert assert_one_line(e).startswith(name)
    assert not path.exists()


WITHOUT_MATPLOTLIB = """
import runpy, sys
sys.modules["matplotlib"] = None  # as if `pip install -e .` left the [plots] extra out
module = sys.argv.pop(1)
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(
    "module, flag",
    [
        ("experiments.mnist", "misclassified_png"),
        ("experiments.conv", "filters_png"),
        ("experiments.sweep", "png"),
        ("experiments.plots", "out"),
        ("experiments.universality", "png"),
        ("experiments.slowdown", "png"),
        ("experiments.digits", "png"),
    ],
)
def test_a_figure_without_matplotlib_is_refused_before_any_work(tmp_path, module, flag):
    """Every figure flag goes through checks.check_png, which names the extra to install,
    before data loads or training starts (not after hours of training)."""
    import subprocess
    import sys

    from tests.helpers import ROOT, assert_failed_with_one_error

    png = tmp_path / "f.png"
    out = subprocess.run(
        [sys.executable, "-c", WITHOUT_MATPLOTLIB, module, f"--{flag}={png}", "--run=a=m.jsonl"]
        if module == "experiments.plots"
        else [sys.executable, "-c", WITHOUT_MATPLOTLIB, module, f"--{flag}={png}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_failed_with_one_error(out, f'--{flag} draws with matplotlib: pip install -e ".[plots]"')
    assert "Epoch" not in out.stdout and not png.exists()


def test_running_the_drawing_module_names_the_runner_that_draws():
    from tests.helpers import assert_failed_with_one_error, run_module

    result = run_module("experiments.figures", timeout=60)
    assert_failed_with_one_error(result, "python -m experiments.plots draws the book's figures")

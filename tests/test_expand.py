"""The expanded MNIST: one-pixel shifts, the 5× training set, per-epoch random shifts."""

import jax
import numpy as np
import pytest

from nnjax import expand
from tests.helpers import assert_one_line

# The book's expand_mnist.py: (d, axis, which line it zeroes: row/column index).
BOOK = [(1, 0, "row", 0), (-1, 0, "row", -1), (1, 1, "col", 0), (-1, 1, "col", -1)]


def book_shift(x, d, axis, side):
    """The book's loop, image by image with np.roll; the wrapped line(s) zeroed."""
    out = []
    for row in x:
        img = np.roll(row.reshape(side, side), d, axis)
        lines = range(min(d, side)) if d > 0 else range(max(side + d, 0), side)
        for i in lines:
            if axis == 0:
                img[i, :] = 0
            else:
                img[:, i] = 0
        out.append(img.reshape(-1))
    return np.array(out)


def images(n, side, seed=0):
    return np.random.default_rng(seed).random((n, side * side), dtype=np.float32)


@pytest.mark.parametrize("side", [1, 3, 5, 28])
@pytest.mark.parametrize("d, axis", [(1, 0), (-1, 0), (1, 1), (-1, 1), (2, 0), (-3, 1), (0, 1)])
def test_shift_is_roll_with_the_wrapped_lines_zeroed(side, d, axis):
    x = images(7, side, seed=side)
    got = np.asarray(expand.shift(x, d, axis))
    np.testing.assert_array_equal(got, book_shift(x, d, axis, side))
    assert got.dtype == x.dtype


def test_book_shifts_zero_the_book_lines():
    side = 6
    x = np.ones((2, side * side), np.float32)
    for (d, axis), (bd, baxis, kind, index) in zip(expand.SHIFTS, BOOK):
        assert (d, axis) == (bd, baxis)
        img = np.asarray(expand.shift(x, d, axis)).reshape(2, side, side)
        line = img[:, index, :] if kind == "row" else img[:, :, index]
        assert (line == 0).all() and img.sum() == 2 * side * (side - 1)


def test_shift_inside_jit_and_explicit_side():
    x = images(4, 5)
    got = jax.jit(lambda x: expand.shift(x, -1, 0, side=5))(x)
    np.testing.assert_array_equal(got, book_shift(x, -1, 0, 5))


def test_expand_is_shift_major_with_labels_repeated():
    side, n = 28, 11
    x = images(n, side)
    y = np.arange(n, dtype=np.int32) % 10
    x5, y5 = expand.expand(x, y)
    assert x5.shape == (5 * n, side * side) and y5.shape == (5 * n,)
    x5, y5 = np.asarray(x5), np.asarray(y5)
    np.testing.assert_array_equal(x5[:n], x)
    for k, (d, axis) in enumerate(expand.SHIFTS, start=1):
        np.testing.assert_array_equal(x5[k * n : (k + 1) * n], book_shift(x, d, axis, side))
    np.testing.assert_array_equal(y5, np.tile(y, 5))
    assert y5.dtype == y.dtype and x5.dtype == x.dtype


def test_expand_as_a_set_equals_the_books_list():
    side, n = 4, 6
    x, y = images(n, side), np.arange(n, dtype=np.int32)
    book = []
    for i in range(n):
        book.append((x[i].tobytes(), y[i]))
        for d, axis in expand.SHIFTS:
            book.append((book_shift(x[i : i + 1], d, axis, side)[0].tobytes(), y[i]))
    x5, y5 = expand.expand(x, y)
    ours = [(row.tobytes(), label) for row, label in zip(np.asarray(x5), np.asarray(y5))]
    assert sorted(ours) == sorted(book)


def variants(x, side):
    return np.stack([x] + [book_shift(x, d, axis, side) for d, axis in expand.SHIFTS])


def which_variant(out, x, side):
    """For each row of ``out``, the index of the variant of its input that it equals (an
    assertion if it equals none). Random images make the five variants distinct."""
    match = (variants(x, side) == out[None]).all(axis=2)  # (5, n)
    assert match.any(axis=0).all(), "a row is none of its input's variants"
    return match.argmax(axis=0)


def test_random_shifts_picks_one_variant_per_image_uniformly():
    side, n = 6, 5000
    x = images(n, side)
    out = np.asarray(jax.jit(expand.random_shifts)(jax.random.key(1), x))
    assert out.shape == x.shape and out.dtype == x.dtype
    counts = np.bincount(which_variant(out, x, side), minlength=5)
    # Binomial(5000, 0.2): sd ≈ 28; 150 is over 5 sd.
    assert np.abs(counts - n / 5).max() < 150, counts


def test_random_shifts_depends_on_the_key_only():
    side, n = 5, 200
    x = images(n, side)
    a = which_variant(np.asarray(expand.random_shifts(jax.random.key(3), x)), x, side)
    b = which_variant(np.asarray(expand.random_shifts(jax.random.key(3), x)), x, side)
    c = which_variant(np.asarray(expand.random_shifts(jax.random.key(4), x)), x, side)
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.5


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: expand.shift(np.zeros(784, np.float32), 1, 0), "x must be 2-D"),
        (lambda: expand.shift(np.zeros((2, 783), np.float32), 1, 0), "not square"),
        (lambda: expand.shift(np.zeros((2, 784), np.float32), 1, 0, side=27), "side 27"),
        (lambda: expand.shift(np.zeros((2, 784), np.float32), 1, 2), "axis"),
        (lambda: expand.expand(np.zeros((2, 784), np.float32), np.zeros(3, np.int32)), "y must"),
        (
            lambda: expand.random_shifts(jax.random.key(0), np.zeros((2, 10), np.float32)),
            "not square",
        ),
    ],
)
def test_bad_shapes_are_one_line_errors(call, message):
    with pytest.raises(ValueError) as e:
        call()
    assert message in assert_one_line(e)

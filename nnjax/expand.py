"""The book's expanded MNIST (chapter 6, ``expand_mnist.py``): each training image and its
four one-pixel shifts, on the device.

A shift is ``np.roll(image, d, axis)`` with the row or column that wrapped around set to
zero, i.e. the image moves by ``d`` pixels and the pixels it leaves behind are blank. The
book's four shifts, in its order, are ``SHIFTS``: down one row, up one row, right one
column, left one column. Images are rows of ``x``, flattened ``(side * side,)``; ``side``
is inferred from ``x.shape[1]`` when not given.

    x5, y5 = expand(x, y)                  # 5n images, shift-major (see expand)
    x_epoch = random_shifts(key, x)        # one random variant per image, for one epoch
"""

import functools
import math

import jax
import jax.numpy as jnp

# (d, axis) of the book's shifts, in its order; the wrapped line it zeroes is row 0, row
# side−1, column 0, column side−1 respectively.
SHIFTS = ((1, 0), (-1, 0), (1, 1), (-1, 1))


def image_side(x, side=None) -> int:
    """The side of the square images stored as rows of ``x`` (n, side*side); ValueError
    (one line) if ``x`` is not 2-D or its rows are not square images."""
    if getattr(x, "ndim", None) != 2:
        raise ValueError(f"x must be 2-D (n, side*side), got shape {getattr(x, 'shape', None)}")
    pixels = x.shape[1]
    if side is None:
        side = math.isqrt(pixels)
    if side < 1 or side * side != pixels:
        raise ValueError(
            f"x has rows of {pixels} pixels, not square images"
            + (f" of side {side}" if side else "")
        )
    return int(side)


def _shift_images(images, d: int, axis: int):
    """``images`` (n, side, side) moved by ``d`` pixels along image axis ``axis`` (0 rows,
    1 columns), zero-filled: np.roll with the wrapped lines zeroed."""
    side = images.shape[1]
    a = axis + 1
    if d == 0:
        return images
    if abs(d) >= side:
        return jnp.zeros_like(images)
    pad = [(0, 0)] * 3
    if d > 0:
        kept = jax.lax.slice_in_dim(images, 0, side - d, axis=a)
        pad[a] = (d, 0)
    else:
        kept = jax.lax.slice_in_dim(images, -d, side, axis=a)
        pad[a] = (0, -d)
    return jnp.pad(kept, pad)


def shift(x, d: int, axis: int, side=None):
    """Every image of ``x`` (n, side*side) shifted by ``d`` pixels along ``axis`` (0: rows,
    i.e. down for d > 0; 1: columns, i.e. right for d > 0), the lines that wrapped around
    set to zero. Returns an array of the shape and dtype of ``x``. ``d`` and ``axis`` are
    Python ints."""
    side = image_side(x, side)
    if axis not in (0, 1):
        raise ValueError(f"axis must be 0 (rows) or 1 (columns), got {axis!r}")
    n = x.shape[0]
    return _shift_images(x.reshape(n, side, side), int(d), axis).reshape(x.shape)


@functools.partial(jax.jit, static_argnames="side")
def _expand(x, y, side):
    return (
        jnp.concatenate([x] + [shift(x, d, axis, side) for d, axis in SHIFTS]),
        jnp.tile(y, 1 + len(SHIFTS)),
    )


def expand(x, y, side=None):
    """The book's expanded training set: ``(x5, y5)``, ``x5`` (5n, side*side) of ``x``'s
    dtype and ``y5`` (5n,), on the device.

    Shift-major layout: rows ``k*n .. (k+1)*n − 1`` hold variant ``k`` of every image, with
    variant 0 the originals (``x5[:n] == x``) and variants 1–4 the ``SHIFTS`` in the book's
    order; ``y5`` is ``y`` repeated 5 times in the same way. (The book lists each image
    followed by its shifts and then shuffles; as every epoch shuffles, only the set of
    pairs matters. Shift-major is one concatenation, no interleaving.)"""
    side = image_side(x, side)
    if getattr(y, "shape", None) != (x.shape[0],):
        raise ValueError(
            f"y must have shape ({x.shape[0]},) to match x, got {getattr(y, 'shape', None)}"
        )
    return _expand(jnp.asarray(x), jnp.asarray(y), side)


def random_shifts(key, x, side=None):
    """One epoch's augmentation: each image of ``x`` (n, side*side) replaced by one of its
    five variants (itself or one of the four ``SHIFTS``), chosen uniformly and independently
    with ``key``. Returns an array of the shape and dtype of ``x``. Pure and traceable: it
    can run inside a jitted epoch."""
    side = image_side(x, side)
    n = x.shape[0]
    images = x.reshape(n, side, side)
    choice = jax.random.randint(key, (n, 1, 1), 0, 1 + len(SHIFTS))
    out = images
    # Elementwise selects of shifted copies: XLA fuses them into one pass over the images.
    for k, (d, axis) in enumerate(SHIFTS, start=1):
        out = jnp.where(choice == k, _shift_images(images, d, axis), out)
    return out.reshape(x.shape)

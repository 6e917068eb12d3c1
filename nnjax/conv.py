"""Valid 2-D convolution and 2×2 max-pooling, the arithmetic of chapter 6's ``ConvPoolLayer``.

Images are NHWC: ``x`` (N, H, W, C); filters are HWIO: ``w`` (kh, kw, C, F). The
convolution is a cross-correlation (no filter flip, like every deep-learning library;
Theano's ``conv2d`` flipped the filters, which changes nothing that is learned except the
picture of the filters, which is mirrored).

On the CPU, XLA's own convolution at the book's mini-batch of 10 is very slow, so ``conv2d``
lowers it there to one matrix product over the unrolled patches ("im2col": the kh·kw shifted
views of the input side by side), which XLA runs — and differentiates — much faster. It
does the same on CUDA GPUs, where it also beats cuDNN's convolution at these sizes, most of
all for several networks vmapped (grouped convolutions); docs/performance.md has the
timings, ``benchmarks.conv_speed --convolution=xla,im2col`` measures them. Other backends
(TPUs, ROCm; not measured) use ``lax.conv_general_dilated``.
"""

import jax.numpy as jnp
from jax import lax

_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def conv2d_xla(x, w):
    """The valid convolution by XLA's convolution: (N, H−kh+1, W−kw+1, F)."""
    return lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=_DIMENSIONS)


def patches(x, kh: int, kw: int):
    """The kh × kw patches of ``x`` (N, H, W, C) at every valid position:
    (N, H−kh+1, W−kw+1, kh·kw·C), ordered (row offset, column offset, channel) — the order of
    ``w.reshape(kh·kw·C, F)`` for HWIO filters."""
    n, h, wd, c = x.shape
    oh, ow = h - kh + 1, wd - kw + 1
    views = [x[:, i : i + oh, j : j + ow, :] for i in range(kh) for j in range(kw)]
    return jnp.stack(views, axis=3).reshape(n, oh, ow, kh * kw * c)


def conv2d_im2col(x, w):
    """The valid convolution as one matrix product over ``patches``: (N, H−kh+1, W−kw+1, F)."""
    kh, kw, c, f = w.shape
    if c == 1:
        return _conv2d_one_channel(x, w)
    return patches(x, kh, kw) @ w.reshape(kh * kw * c, f)


def _conv2d_one_channel(x, w):
    """``conv2d_im2col`` for one input channel (a first layer), with the patches laid out
    offset-major, (kh·kw, N·oh·ow): then the product is w (F, kh·kw) times a short, wide
    matrix, which XLA's CPU matmul runs faster than the tall, narrow (N·oh·ow, kh·kw) one,
    even with the transpose back to NHWC."""
    kh, kw, _, f = w.shape
    n, h, wd, _ = x.shape
    oh, ow = h - kh + 1, wd - kw + 1
    views = jnp.stack([x[:, i : i + oh, j : j + ow, 0] for i in range(kh) for j in range(kw)])
    y = w.reshape(kh * kw, f).T @ views.reshape(kh * kw, n * oh * ow)  # (F, N·oh·ow)
    return y.reshape(f, n, oh, ow).transpose(1, 2, 3, 0)


def conv2d(x, w):
    """Valid convolution of ``x`` (N, H, W, C) with ``w`` (kh, kw, C, F): returns
    (N, H−kh+1, W−kw+1, F), by im2col on the CPU and CUDA GPUs and by XLA's convolution
    elsewhere (the choice is made when the program is lowered for its platform)."""
    if x.ndim != 4 or w.ndim != 4 or x.shape[-1] != w.shape[2]:
        raise ValueError(
            f"conv2d needs x (N, H, W, C) and w (kh, kw, C, F), got {x.shape} and {w.shape}"
        )
    if w.shape[0] > x.shape[1] or w.shape[1] > x.shape[2]:
        raise ValueError(f"a {w.shape[0]}×{w.shape[1]} kernel does not fit images {x.shape[1:3]}")
    return lax.platform_dependent(x, w, cpu=conv2d_im2col, cuda=conv2d_im2col, default=conv2d_xla)


# What a conv-pool layer convolves with (``layers.conv_pool``'s ``convolution``): the same
# arithmetic up to float rounding; "auto" picks per platform as ``conv2d`` says.
CONVOLUTIONS = {"auto": conv2d, "xla": conv2d_xla, "im2col": conv2d_im2col}


def max_pool(x, pool: tuple = (2, 2)):
    """Max over non-overlapping ``pool`` windows of ``x`` (N, H, W, C), dropping a ragged
    border (Theano's ``ignore_border=True``): (N, H // ph, W // pw, C)."""
    if not (isinstance(pool, (tuple, list)) and len(pool) == 2 and min(pool) >= 1):
        raise ValueError(f"pool must be a pair of positive sizes (ph, pw), got {pool!r}")
    ph, pw = pool
    n, h, w, c = x.shape
    x = x[:, : h - h % ph, : w - w % pw, :]
    return x.reshape(n, h // ph, ph, w // pw, pw, c).max(axis=(2, 4))

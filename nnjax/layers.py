"""Chapter 6's layers (the book's ``network3.py``) as pairs of pure functions.

A ``Layer`` is

* ``init(key, in_shape) → (params, out_shape)``: its parameters for inputs of shape
  ``in_shape`` (one example, without the batch axis) and the shape of one output;
* ``apply(params, x, key, training) → y``: its output for a batch ``x`` (N, *in_shape);
  ``key`` (a PRNG key, or None when not training) draws the dropout mask; ``training`` is a
  Python bool.

Three types, as in ``network3.py``:

* ``conv_pool``: valid convolution, 2×2 max-pool, bias, activation (no dropout);
* ``fully_connected``: dropout on its *inputs* while training, then ``w x + b``, activation;
* ``softmax``: like ``fully_connected`` with zero initial parameters; its ``apply``
  returns the weighted input z (the cost takes the log-softmax of it, stably; the
  prediction is its argmax).

Dropout has the book's semantics (``dropout="book"``: inputs kept with probability 1 − p and
not rescaled while training; at test time the product w x is scaled by 1 − p) or the usual
inverted one (``"inverted"``: kept inputs scaled by 1/(1 − p) while training, nothing at test
time). Both make the expected training-time weighted input equal the test-time one.

Initialisation (``init="book"``) is network3's: conv filters and biases from
N(0, 1/n_out) with n_out = filters·kh·kw / pool area, and N(0, 1); fully connected weights
from N(0, 1/n_out) — a bug the author confirmed, which produced the published numbers —
and biases from N(0, 1). ``init="corrected"`` draws fully connected weights from
N(0, 1/n_in). Softmax layers start at zero either way.

A new layer type is one more constructor returning a ``Layer`` here and one entry in
``KINDS`` (its name for ``parse``): a hidden layer, as a network must end with the one
``softmax`` layer, whose weighted inputs z the cost reads.
"""

import math
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from nnjax import activations, conv
from nnjax.inputs import is_whole

INITS = ("book", "corrected")
DROPOUTS = ("book", "inverted")


class Layer(NamedTuple):
    name: str  # e.g. "conv-pool 20 5×5", for printing
    init: Callable  # (key, in_shape) -> (params, out_shape)
    apply: Callable  # (params, x, key, training) -> y


class LayerError(ValueError):
    """A layer that cannot be built (bad specification, or inputs of the wrong shape);
    its message is one line."""


def _check_choice(what: str, value: str, choices) -> None:
    if value not in choices:
        raise LayerError(f"unknown {what} {value!r}: choose one of {', '.join(choices)}")


def _check_sizes(given: str, *sizes) -> None:
    if not all(is_whole(s) and s > 0 for s in sizes):
        raise LayerError(f"a layer's sizes are positive integers, got {given}")


def _check_dropout(p_dropout: float, dropout: str) -> None:
    if not 0 <= p_dropout < 1:
        raise LayerError(f"the dropout probability must be in [0, 1), got {p_dropout}")
    _check_choice("dropout", dropout, DROPOUTS)


def drop(x, key, p_dropout: float, dropout: str = "book"):
    """``x`` with each entry kept with probability 1 − p and zeroed otherwise (training
    time), divided by 1 − p for ``dropout="inverted"``; same shape as ``x``."""
    if not p_dropout:
        return x
    keep = jax.random.bernoulli(key, 1 - p_dropout, x.shape).astype(x.dtype)
    return x * keep / (1 - p_dropout) if dropout == "inverted" else x * keep


def _affine(params, x, key, training: bool, p_dropout: float, dropout: str):
    """w x + b over flattened inputs, with dropout on x: (N, n_out)."""
    x = x.reshape(x.shape[0], -1)
    if training:
        return drop(x, key, p_dropout, dropout) @ params["w"] + params["b"]
    scale = 1 - p_dropout if dropout == "book" else 1
    return scale * (x @ params["w"]) + params["b"]


def conv_pool(
    filters: int,
    kernel: tuple = (5, 5),
    pool: tuple = (2, 2),
    activation: str | activations.Activation = "sigmoid",
    convolution: str = "auto",
) -> Layer:
    """network3's ``ConvPoolLayer``: ``filters`` kernels of shape ``kernel`` over an image
    (H, W, C), max-pooled over ``pool``; output (H', W', filters) with
    H' = (H − kh + 1) // ph. Params: ``{"w": (kh, kw, C, filters), "b": (filters,)}``.
    ``convolution`` names how it convolves (``conv.CONVOLUTIONS``: ``auto``, ``xla`` or
    ``im2col``), which changes the speed and the float rounding, nothing else."""
    act = activations.get(activation)
    _check_choice("convolution", convolution, conv.CONVOLUTIONS)
    convolve = conv.CONVOLUTIONS[convolution]
    if not all(isinstance(p, (tuple, list)) and len(p) == 2 for p in (kernel, pool)):
        raise LayerError(f"a conv-pool layer's kernel and pool are pairs, got {kernel}, {pool}")
    (kh, kw), pool = kernel, tuple(pool)
    _check_sizes(f"{filters!r} filters of {kernel!r}, pool {pool!r}", filters, kh, kw, *pool)
    name = f"conv-pool {filters} {kh}×{kw}, pool {pool[0]}×{pool[1]}, {act.name}"

    def init(key, in_shape):
        if len(in_shape) != 3:
            raise LayerError(
                f"{name} needs image inputs (H, W, C), got shape {tuple(in_shape)}: the "
                "input_shape must be one, and a fully connected layer's output is not"
            )
        h, w, c = in_shape
        oh, ow = (h - kh + 1) // pool[0], (w - kw + 1) // pool[1]
        if oh <= 0 or ow <= 0:
            raise LayerError(f"{name} does not fit inputs of {h}×{w}")
        n_out = filters * kh * kw / (pool[0] * pool[1])
        wkey, bkey = jax.random.split(key)
        params = {
            "w": jax.random.normal(wkey, (kh, kw, c, filters)) / math.sqrt(n_out),
            "b": jax.random.normal(bkey, (filters,)),
        }
        return params, (oh, ow, filters)

    def apply(params, x, key=None, training=False):
        return act.fn(conv.max_pool(convolve(x, params["w"]), pool) + params["b"])

    return Layer(name, init, apply)


def fully_connected(
    n_out: int,
    activation: str | activations.Activation = "sigmoid",
    p_dropout: float = 0.0,
    dropout: str = "book",
    init: str = "book",
) -> Layer:
    """network3's ``FullyConnectedLayer``: (N, ...) inputs flattened to n_in, output
    (N, n_out). Params: ``{"w": (n_in, n_out), "b": (n_out,)}``."""
    act = activations.get(activation)
    _check_dropout(p_dropout, dropout)
    _check_choice("initialisation", init, INITS)
    _check_sizes(f"a fully connected layer of {n_out!r}", n_out)
    name = f"fully connected {n_out}, {act.name}" + (
        f", dropout {p_dropout:g} ({dropout})" if p_dropout else ""
    )

    def init_fn(key, in_shape):
        n_in = math.prod(in_shape)
        wkey, bkey = jax.random.split(key)
        std = math.sqrt(1 / (n_out if init == "book" else n_in))
        params = {
            "w": std * jax.random.normal(wkey, (n_in, n_out)),
            "b": jax.random.normal(bkey, (n_out,)),
        }
        return params, (n_out,)

    def apply(params, x, key=None, training=False):
        return act.fn(_affine(params, x, key, training, p_dropout, dropout))

    return Layer(name, init_fn, apply)


def softmax(n_out: int, p_dropout: float = 0.0, dropout: str = "book") -> Layer:
    """network3's ``SoftmaxLayer``, zero-initialised. ``apply`` returns the weighted input
    z (N, n_out); the network's output is softmax(z). Params: ``{"w": (n_in, n_out),
    "b": (n_out,)}``."""
    _check_dropout(p_dropout, dropout)
    _check_sizes(f"a softmax layer of {n_out!r}", n_out)
    name = f"softmax {n_out}" + (f", dropout {p_dropout:g} ({dropout})" if p_dropout else "")

    def init(key, in_shape):
        n_in = math.prod(in_shape)
        return {"w": jnp.zeros((n_in, n_out)), "b": jnp.zeros((n_out,))}, (n_out,)

    def apply(params, x, key=None, training=False):
        return _affine(params, x, key, training, p_dropout, dropout)

    return Layer(name, init, apply)


def _ints(text: str, spec: str) -> list[int]:
    try:
        return [int(v) for v in text.split("x")]
    except ValueError:
        raise LayerError(f"bad layer {spec!r}: {text!r} is not a size") from None


def _parse_conv(args, spec, **options):
    if not 1 <= len(args) <= 3:
        raise LayerError(f"bad layer {spec!r}: write conv:FILTERS[:KxK[:PxP]], e.g. conv:20:5x5")
    (filters,) = _ints(args[0], spec)
    kernel = _ints(args[1], spec) if len(args) > 1 else [5, 5]
    pool = _ints(args[2], spec) if len(args) > 2 else [2, 2]
    if len(kernel) == 1:
        kernel = kernel * 2
    if len(pool) == 1:
        pool = pool * 2
    if len(kernel) != 2 or len(pool) != 2:
        raise LayerError(f"bad layer {spec!r}: kernel and pool are KxK")
    return conv_pool(
        filters, tuple(kernel), tuple(pool), options["activation"], options["convolution"]
    )


def _parse_fc(args, spec, **options):
    if len(args) != 1:
        raise LayerError(f"bad layer {spec!r}: write fc:SIZE, e.g. fc:100")
    (n,) = _ints(args[0], spec)
    return fully_connected(
        n, options["activation"], options["p_dropout"], options["dropout"], options["init"]
    )


def _parse_softmax(args, spec, **options):
    if len(args) > 1:
        raise LayerError(f"bad layer {spec!r}: write softmax or softmax:SIZE")
    (n,) = _ints(args[0], spec) if args else (options["num_classes"],)
    return softmax(n, options["p_dropout"], options["dropout"])


KINDS = {"conv": _parse_conv, "fc": _parse_fc, "softmax": _parse_softmax}


def parse(
    text: str,
    activation: str | activations.Activation = "sigmoid",
    p_dropout: float = 0.0,
    dropout: str = "book",
    init: str = "book",
    num_classes: int = 10,
    convolution: str = "auto",
) -> list[Layer]:
    """Layers from a comma-separated specification such as
    ``"conv:20:5x5,conv:40:5x5,fc:100,softmax"``:

    * ``conv:FILTERS[:KxK[:PxP]]`` — a conv-pool layer (5×5 kernels, 2×2 pool by default);
    * ``fc:SIZE`` — a fully connected layer;
    * ``softmax[:SIZE]`` — the softmax output layer (``num_classes`` outputs by default).

    Every conv and fully connected layer uses ``activation``; every fully connected and
    softmax layer drops its inputs with probability ``p_dropout`` (network3's chapter 6
    networks do exactly this); every conv layer convolves by ``convolution`` (``conv_pool``).
    The last layer must be the softmax layer. Raises
    ``LayerError`` with a one-line message for anything else.
    """
    try:
        activation = activations.get(activation)
    except (ValueError, TypeError) as e:
        raise LayerError(str(e)) from None
    _check_choice("convolution", convolution, conv.CONVOLUTIONS)
    options = dict(
        activation=activation,
        p_dropout=p_dropout,
        dropout=dropout,
        init=init,
        num_classes=num_classes,
        convolution=convolution,
    )
    specs = [s.strip() for s in text.split(",")]
    if not text.strip() or not all(specs):
        raise LayerError(
            f"empty layer in {text!r}: layers are comma separated, e.g. conv:20,fc:100,softmax"
        )
    layers = []
    for spec in specs:
        kind, *args = spec.split(":")
        if kind not in KINDS:
            raise LayerError(
                f"unknown layer {spec!r}: layers are {', '.join(KINDS)} "
                "(e.g. conv:20:5x5, fc:100, softmax)"
            )
        try:
            layers.append(KINDS[kind](args, spec, **options))
        except (ValueError, TypeError, LookupError) as e:  # a parser registered from outside
            if isinstance(e, LayerError):
                raise
            raise LayerError(f"layer {spec!r}: {e}") from None
    kinds = [spec.split(":")[0] for spec in specs]
    if kinds[-1] != "softmax" or "softmax" in kinds[:-1]:
        raise LayerError(f"the last layer, and only the last, must be softmax: got {text!r}")
    return layers


def describe(layers: list[Layer]) -> str:
    """One line naming the layers in order."""
    return " → ".join(layer.name for layer in layers)


def check_input_shape(shape) -> tuple:
    """``shape`` as a tuple of positive ints, else LayerError."""
    shape = tuple(shape)
    if not shape or any(not isinstance(s, int) or s <= 0 for s in shape):
        raise LayerError(f"the input shape must be positive integers, got {shape}")
    return shape

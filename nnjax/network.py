"""The feedforward network of chapter 1, as pure functions over a parameter pytree.

Parameters follow the book's `network.py`: for layer sizes ``sizes = [784, 30, 10]``

    params = {"weights": [w2 (30, 784), w3 (10, 30)],
              "biases":  [b2 (30,),     b3 (10,)]}

so that layer l computes ``z = w a + b`` and ``a' = σ(z)``, with ``w[j, k]`` the weight
from neuron k of the previous layer to neuron j.
"""

from typing import Callable, Sequence

import jax
import jax.numpy as jnp

Params = dict  # {"weights": [array (n_out, n_in), ...], "biases": [array (n_out,), ...]}


def sigmoid(z):
    """σ(z) = 1 / (1 + e^{-z}), elementwise; same shape as z."""
    return jax.nn.sigmoid(z)


def sigmoid_prime(z):
    """σ'(z) = σ(z) (1 − σ(z)), elementwise; same shape as z."""
    s = sigmoid(z)
    return s * (1 - s)


def check_sizes(sizes: Sequence[int]) -> list[int]:
    """Returns ``sizes`` as a list of ints, or raises ValueError saying what is wrong."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"a network needs at least an input and an output layer, got sizes={sizes}")
    for n in sizes:
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise ValueError(f"layer sizes must be positive integers, got sizes={sizes}")
    return sizes


def init(key, sizes: Sequence[int], dtype=jnp.float32) -> Params:
    """The book's initialisation: every weight and bias drawn from N(0, 1).

    Returns ``{"weights": [(sizes[l+1], sizes[l]) ...], "biases": [(sizes[l+1],) ...]}``.
    """
    sizes = check_sizes(sizes)
    keys = jax.random.split(key, 2 * (len(sizes) - 1))
    weights = [jax.random.normal(k, (n_out, n_in), dtype)
               for k, n_in, n_out in zip(keys[0::2], sizes[:-1], sizes[1:])]
    biases = [jax.random.normal(k, (n_out,), dtype) for k, n_out in zip(keys[1::2], sizes[1:])]
    return {"weights": weights, "biases": biases}


def sizes_of(params: Params) -> list[int]:
    """The layer sizes ``[n_in, ..., n_out]`` of a parameter pytree."""
    weights = params["weights"]
    return [int(weights[0].shape[1])] + [int(w.shape[0]) for w in weights]


def feedforward(params: Params, x, activation: Callable = sigmoid):
    """The network's output ``a^L`` for input ``x``.

    ``x`` is one example of shape (n_in,) or a batch of shape (N, n_in); returns (n_out,) or
    (N, n_out) respectively. Every layer applies ``activation`` (sigmoid in chapter 1).
    """
    a = x
    for w, b in zip(params["weights"], params["biases"]):
        a = activation(a @ w.T + b)
    return a


def predict(params: Params, x):
    """The digit each example is classified as: argmax of the output layer; int (N,) or ()."""
    return jnp.argmax(feedforward(params, x), axis=-1)


@jax.jit
def evaluate(params: Params, x, y):
    """The number of examples in ``x`` (N, n_in) whose prediction equals the label ``y`` (N,).

    Returns an int32 scalar, like the book's ``evaluate`` (the ``<correct>`` of
    ``Epoch k: <correct> / 10000``).
    """
    return jnp.sum(predict(params, x) == y, dtype=jnp.int32)

"""The feedforward network of chapter 1, as pure functions over a parameter pytree.

Parameters follow the book's `network.py`: for layer sizes ``sizes = [784, 30, 10]``

    params = {"weights": [w2 (30, 784), w3 (10, 30)],
              "biases":  [b2 (30,),     b3 (10,)]}

so that layer l computes ``z = w a + b`` and ``a' = σ(z)``, with ``w[j, k]`` the weight
from neuron k of the previous layer to neuron j. Chapter 3's networks may use another
activation for the hidden layers and softmax for the output (``nnjax.activations``).
"""

import functools
from typing import Sequence

import jax
import jax.numpy as jnp

from nnjax import activations
from nnjax.activations import Activation

Params = dict  # {"weights": [array (n_out, n_in), ...], "biases": [array (n_out,), ...]}


def check_sizes(sizes: Sequence[int]) -> list[int]:
    """Returns ``sizes`` as a list of ints, or raises ValueError saying what is wrong."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(
            f"a network needs at least an input and an output layer, got sizes={sizes}"
        )
    for n in sizes:
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise ValueError(f"layer sizes must be positive integers, got sizes={sizes}")
    return sizes


INITS = ("normal", "scaled")


def init(key, sizes: Sequence[int], dtype=jnp.float32, init: str = "normal") -> Params:
    """Weights and biases drawn from N(0, 1) (``"normal"``, chapter 1's initialisation), or
    weights from N(0, 1/n_in) and biases from N(0, 1) (``"scaled"``, chapter 3's default).

    Returns ``{"weights": [(sizes[l+1], sizes[l]) ...], "biases": [(sizes[l+1],) ...]}``.
    """
    sizes = check_sizes(sizes)
    if init not in INITS:
        raise ValueError(f"unknown initialisation {init!r}: choose one of {', '.join(INITS)}")
    keys = jax.random.split(key, 2 * (len(sizes) - 1))
    weights = [
        jax.random.normal(k, (n_out, n_in), dtype)
        / (jnp.sqrt(jnp.asarray(n_in, dtype)) if init == "scaled" else 1)
        for k, n_in, n_out in zip(keys[0::2], sizes[:-1], sizes[1:])
    ]
    biases = [jax.random.normal(k, (n_out,), dtype) for k, n_out in zip(keys[1::2], sizes[1:])]
    return {"weights": weights, "biases": biases}


def sizes_of(params: Params) -> list[int]:
    """The layer sizes ``[n_in, ..., n_out]`` of a parameter pytree."""
    weights = params["weights"]
    return [int(weights[0].shape[1])] + [int(w.shape[0]) for w in weights]


def logits(params: Params, x, activation: Activation = activations.sigmoid):
    """The output layer's weighted input z^L for input ``x`` ((n_in,) or (N, n_in)): every
    layer but the last applies ``activation``. Returns (n_out,) or (N, n_out)."""
    a = x
    for w, b in zip(params["weights"][:-1], params["biases"][:-1]):
        a = activation.fn(a @ w.T + b)
    return a @ params["weights"][-1].T + params["biases"][-1]


def feedforward(
    params: Params,
    x,
    activation: Activation = activations.sigmoid,
    output: Activation = activations.sigmoid,
):
    """The network's output ``a^L`` for input ``x``.

    ``x`` is one example of shape (n_in,) or a batch of shape (N, n_in); returns (n_out,) or
    (N, n_out) respectively. Hidden layers apply ``activation``, the output layer ``output``
    (chapter 1: sigmoid everywhere).
    """
    return output.fn(logits(params, x, activation))


def predict(params: Params, x, activation: Activation = activations.sigmoid):
    """The class each example is assigned: the argmax of the output layer (every output
    activation here is increasing, so the argmax of z^L); int (N,) or ()."""
    return jnp.argmax(logits(params, x, activation), axis=-1)


@functools.partial(jax.jit, static_argnames="activation")
def evaluate(params: Params, x, y, activation: Activation = activations.sigmoid):
    """The number of examples in ``x`` (N, n_in) whose prediction equals the label ``y`` (N,).

    Returns an int32 scalar, like the book's ``evaluate`` (the ``<correct>`` of
    ``Epoch k: <correct> / 10000``).
    """
    return jnp.sum(predict(params, x, activation) == y, dtype=jnp.int32)

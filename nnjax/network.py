"""The feedforward network of chapter 1, as pure functions over a parameter pytree.

Parameters follow the book's `network.py`: for layer sizes ``sizes = [784, 30, 10]``

    params = {"weights": [w2 (30, 784), w3 (10, 30)],
              "biases":  [b2 (30,),     b3 (10,)]}

so that layer l computes ``z = w a + b`` and ``a' = σ(z)``, with ``w[j, k]`` the weight
from neuron k of the previous layer to neuron j. Chapter 3's networks may use another
activation for the hidden layers and softmax for the output (``nnjax.activations``).
Every ``cost`` and ``activation`` argument is a ``Cost`` or ``Activation``, or its name.
"""

import functools
from typing import Sequence

import jax
import jax.numpy as jnp

from nnjax import activations, costs, inputs, optimizers
from nnjax.activations import Activation
from nnjax.epoch import Model, correct

Params = dict  # {"weights": [array (n_out, n_in), ...], "biases": [array (n_out,), ...]}


def check_sizes(sizes: Sequence[int]) -> list[int]:
    """Returns ``sizes`` as a list of ints, or raises ValueError saying what is wrong."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(
            f"a network needs at least an input and an output layer, got sizes={sizes}"
        )
    if not all(inputs.is_whole(n) and n > 0 for n in sizes):
        raise ValueError(f"layer sizes must be positive integers, got sizes={sizes}")
    return [int(n) for n in sizes]


INITS = ("normal", "scaled")


def init(key, sizes: Sequence[int], dtype=jnp.float32, init: str = "normal") -> Params:
    """Weights and biases drawn from N(0, 1) (``"normal"``, chapter 1's initialisation), or
    weights from N(0, 1/n_in) and biases from N(0, 1) (``"scaled"``, chapter 3's default).

    Returns ``{"weights": [(sizes[l+1], sizes[l]) ...], "biases": [(sizes[l+1],) ...]}``.
    """
    inputs.check_key(key)
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
    return logits_after_first_product(params, x @ params["weights"][0].T, activation)


def logits_after_first_product(params: Params, xw, activation: Activation = activations.sigmoid):
    """``logits`` given the first layer's product ``xw = x (w²)ᵀ`` (w² the first weight
    matrix, as the book numbers layers; (n_1,) or (N, n_1)) instead of ``x``: the rest of
    the network, from the first bias on. The blocked epoch (``nnjax.blocked``) computes
    that product its own way."""
    activation = activations.get(activation)
    z = xw + params["biases"][0]
    for w, b in zip(params["weights"][1:], params["biases"][1:]):
        z = activation.fn(z) @ w.T + b
    return z


def feedforward(
    params: Params,
    x,
    activation: Activation = activations.sigmoid,
    cost: costs.Cost = costs.quadratic,
):
    """The network's output ``a^L`` for input ``x``.

    ``x`` is one example of shape (n_in,) or a batch of shape (N, n_in); returns (n_out,) or
    (N, n_out) respectively. Hidden layers apply ``activation``, the output layer the
    ``cost``'s own (sigmoid, or softmax for the log-likelihood; chapter 1: sigmoid
    everywhere).
    """
    return costs.get(cost).output.fn(logits(params, x, activation))


def predict(params: Params, x, activation: Activation = activations.sigmoid):
    """The class each example is assigned: the argmax of the output layer (every output
    activation here is increasing, so the argmax of z^L); int (N,) or ()."""
    return jnp.argmax(logits(params, x, activation), axis=-1)


def evaluate(params: Params, x, y, activation: Activation = activations.sigmoid):
    """The number of examples in ``x`` (N, n_in) whose prediction equals the label ``y`` (N,).

    Returns an int32 scalar, like the book's ``evaluate`` (the ``<correct>`` of
    ``Epoch k: <correct> / 10000``).
    """
    return correct(params, x, y, model=model(activation=activation))


def loss(
    params, x, y, cost: costs.Cost = costs.quadratic, activation: Activation = activations.sigmoid
):
    """The cost of the network on inputs ``x`` (N, n_in) with desired outputs ``y`` (N, n_out).

    A scalar: summed over output neurons, averaged over the N examples (for one example of
    shape (n_in,), its own cost). Hidden layers use ``activation``, the output layer the
    cost's own (sigmoid, or softmax for the log-likelihood).
    """
    return loss_after_first_product(params, x @ params["weights"][0].T, y, cost, activation)


def loss_after_first_product(
    params, xw, y, cost: costs.Cost = costs.quadratic, activation: Activation = activations.sigmoid
):
    """``loss`` given the first layer's product ``xw`` instead of ``x`` (as
    ``logits_after_first_product``): the blocked epoch's loss."""
    cost = costs.get(cost)
    z = logits_after_first_product(params, xw, activation)
    if jnp.shape(y) != z.shape:  # labels (N,) would broadcast against (N, n_out) outputs
        raise ValueError(
            f"desired outputs y {jnp.shape(y)} must be shaped like the network's outputs "
            f"{z.shape} (labels as costs.one_hot(y, n_out))"
        )
    return cost.fn(z, cost.output.fn(z), y)


def total_cost(
    params,
    x,
    y,
    cost: costs.Cost = costs.quadratic,
    activation: Activation = activations.sigmoid,
    lmbda=0.0,
    regularization: str = "l2",
):
    """The cost on ``x`` (N, n_in), integer labels ``y`` (N,), as the book's ``total_cost``
    reports it: a scalar, the mean cost plus ½ (λ/N) Σ‖w‖² (``regularization="l2"``) or
    (λ/N) Σ|w| (``"l1"``, chapter 3's L1 cost), N being the size of *this* set (the book's
    quirk; training itself uses the training-set size; N = 1 for one example ``x`` (n_in,))."""
    cost = costs.get(cost)
    z = logits(params, x, activation)
    y1 = costs.one_hot(y, z.shape[-1], z.dtype)
    penalty = sum(map(optimizers.regularizer(regularization).penalty, params["weights"]))
    n = x.shape[0] if x.ndim > 1 else 1
    return cost.fn(z, cost.output.fn(z), y1) + (lmbda / n) * penalty


def model(
    cost: costs.Cost = costs.quadratic,
    activation: Activation = activations.sigmoid,
    lmbda: float = 0.0,
    regularization: str = "l2",
) -> Model:
    """Chapters 1-5's network as an ``epoch.Model``: the loss is ``loss`` on one-hot desired
    outputs (no randomness), the prediction ``predict``, the monitored cost ``total_cost``.
    ``cost`` and ``activation`` are a ``Cost`` and an ``Activation`` or their names.

    ``lmbda`` and ``regularization`` only set the L2/L1 term that monitored cost reports (the
    book's ``total_cost``): training decays the weights through the optimizer, with
    ``optimizers.init(..., weight_decay=lmbda / n)``. Give both the same λ, as
    ``experiments.mnist`` does, or the cost reported is not the cost trained on. The same
    arguments give the same object, so compiled epochs are reused."""
    optimizers.regularizer(regularization)  # a ValueError now, not when the cost is reported
    return _model(costs.get(cost), activations.get(activation), float(lmbda), regularization)


@functools.cache
def _model(cost, activation, lmbda, regularization) -> Model:

    def train_loss(params, x, y, key=None):
        return loss(
            params, x, costs.one_hot(y, params["biases"][-1].shape[-1], x.dtype), cost, activation
        )

    return Model(
        loss=train_loss,
        predict=lambda params, x: predict(params, x, activation),
        cost=lambda params, x, y: total_cost(params, x, y, cost, activation, lmbda, regularization),
        name=f"{activation.name} network, {cost.name} cost",
        book_network=(cost, activation),
        classes=lambda params: params["biases"][-1].shape[-1],
    )


@functools.cache
def regression_model(cost: costs.Cost = costs.quadratic) -> Model:
    """A network fitted to real-valued desired outputs, as an ``epoch.Model``: the loss is
    ``loss`` on ``y`` (m, n_out) (or (m,) for one output) as given, not as labels; for
    chapter 3's single neuron and chapter 4's trained comparison. ``predict`` is unused
    (every example is class 0: there are no classes)."""

    def train_loss(params, x, y, key=None):
        return loss(params, x, y.reshape(x.shape[0], -1), cost)

    return Model(
        loss=train_loss,
        predict=lambda params, x: jnp.zeros(x.shape[0], jnp.int32),
        name=f"sigmoid network, {cost.name} cost, real-valued outputs",
    )

"""Chapter 3's learning slowdown: one sigmoid neuron, one input x, one desired output y,
trained by gradient descent on a cost from ``nnjax.costs``; and the softmax layer that the
chapter offers as another cure.

    history = train(costs.quadratic, w=2.0, b=2.0, x=1.0, y=0.0, eta=0.15, epochs=300)
    history["a"][150], history["cost"][150]

The gradients are ``jax.grad`` of the cost; the book's closed forms (quadratic:
∂C/∂w = (a − y) σ'(z) x, cross-entropy: ∂C/∂w = x (a − y)) are BP1's δ = ``cost.delta``
times BP4's x, as ``closed_form_grad`` writes them out.
"""

import jax
import jax.numpy as jnp

from nnjax import activations, costs, fit, network, neurons, optimizers
from nnjax.history import History


def forward(w, b, x):
    """The neuron's weighted input z = w x + b and output a = σ(z) for scalars ``w``, ``b``,
    ``x``: a pair of arrays of shape (1,) (one output neuron, as the costs expect)."""
    z = neurons.weighted_input(jnp.reshape(w, (1, 1)), jnp.reshape(b, (1,)), jnp.reshape(x, (1,)))
    return z, neurons.sigmoid(z)


def neuron_cost(cost) -> costs.Cost:
    """The ``Cost`` (or its name) as the sigmoid neuron's; ValueError for one whose output
    is a softmax: over one neuron it is always 1, and such a cost learns nothing."""
    cost = costs.get(cost)
    if cost.output is activations.softmax:
        raise ValueError(
            f"the {cost.name} cost's softmax over one neuron is always 1: it needs a layer "
            "(softmax_delta)"
        )
    return cost


def cost_of(w, b, x, y, cost: costs.Cost):
    """The cost ``cost.fn`` (a ``Cost`` or its name, ``neuron_cost``) of the neuron's output
    for input ``x`` and desired output ``y``: a scalar."""
    cost = neuron_cost(cost)
    z, a = forward(w, b, x)
    return cost.fn(z, a, jnp.reshape(y, (1,)))


def grad(w, b, x, y, cost: costs.Cost):
    """(∂C/∂w, ∂C/∂b) by ``jax.grad`` of ``cost_of``: two scalars."""
    return jax.grad(cost_of, argnums=(0, 1))(w, b, x, y, cost)


def closed_form_grad(w, b, x, y, cost: costs.Cost):
    """(∂C/∂w, ∂C/∂b) from the book's equations: δ = ∂C/∂z by BP1 (``cost.delta``: (a − y)
    σ'(z) for the quadratic cost, a − y for cross-entropy), ∂C/∂w = x δ (BP4), ∂C/∂b = δ
    (BP3). Two scalars."""
    cost = neuron_cost(cost)
    z, a = forward(w, b, x)
    delta = cost.delta(z, a, jnp.reshape(y, (1,)))[0]
    return x * delta, delta


def train(cost: costs.Cost, w, b, x, y, eta, epochs: int):
    """Gradient descent w → w − η ∂C/∂w, b → b − η ∂C/∂b, one step per epoch (one training
    example, a mini-batch of one), as the book's demonstration does: the neuron is a [1, 1]
    network trained by ``nnjax.fit`` and the book's SGD, as every network here is.

    Returns a dict of arrays of shape (epochs + 1,): ``w``, ``b``, the output ``a`` and the
    cost ``cost`` at the start (index 0) and after each epoch (index k after k steps).
    """
    cost = neuron_cost(cost)
    dtype = jnp.result_type(float)  # float64 under jax.enable_x64, as the book computes
    params = {"weights": [jnp.full((1, 1), w, dtype)], "biases": [jnp.full((1,), b, dtype)]}
    tx = optimizers.make("sgd")
    run = History(params, optimizers.init(tx, params, eta=eta))
    seen = [params]
    fit.fit(
        network.regression_model(cost),
        tx,
        run,
        (jnp.full((1, 1), x, dtype), jnp.full((1,), y, dtype)),
        epochs=epochs,
        mini_batch_size=1,
        key=jax.random.key(0),  # one example: nothing to shuffle
        after_epoch=lambda runs: seen.append(runs[0].params),
    )
    ws = jnp.stack([p["weights"][0][0, 0] for p in seen])
    bs = jnp.stack([p["biases"][0][0] for p in seen])
    a = jax.vmap(lambda w, b: forward(w, b, x)[1][0])(ws, bs)
    c = jax.vmap(lambda w, b: cost_of(w, b, x, y, cost))(ws, bs)
    return {"w": ws, "b": bs, "a": a, "cost": c}


def softmax_delta(z, y):
    """A softmax output layer with the log-likelihood cost C = −ln a_y: its activations
    a = softmax(z) and δ = ∂C/∂z by ``jax.grad`` (the book: δ = a − y), for weighted inputs
    ``z`` (n,) and one-hot ``y`` (n,). Returns ``(a, delta)``, each of shape (n,)."""
    z, y = jnp.asarray(z, jnp.result_type(float)), jnp.asarray(y, jnp.result_type(float))
    if z.ndim != 1 or y.shape != z.shape:  # a class index would broadcast into δ = 0
        raise ValueError(f"z {z.shape} and the one-hot y {y.shape} must both be (n,)")

    def cost(z):
        return costs.log_likelihood.fn(z, activations.softmax.fn(z), y)

    return activations.softmax.fn(z), jax.grad(cost)(z)

"""Gradients of the cost: by ``jax.grad``, and by the book's four equations written out.

``backprop`` is chapter 2's algorithm in matrix form, kept as a reader's reference and as
an independent check of autodiff (the tests compare the two in float64):

    BP1  δ^L = ∇_a C ⊙ σ'(z^L)
    BP2  δ^l = ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l)
    BP3  ∂C/∂b^l_j = δ^l_j
    BP4  ∂C/∂w^l_jk = a^{l-1}_k δ^l_j
"""

import jax
import jax.numpy as jnp

from nnjax import activations, costs, network
from nnjax.activations import Activation


def grad(
    params, x, y, cost: costs.Cost = costs.quadratic, activation: Activation = activations.sigmoid
):
    """∇C by autodiff: a pytree shaped like ``params``, for the mean cost over the batch."""
    return jax.grad(network.loss)(params, x, y, cost, activation)


def per_example_grads(
    params, x, y, cost: costs.Cost = costs.quadratic, activation: Activation = activations.sigmoid
):
    """∇C_x for each example separately: ``params``' pytree with a leading axis of size N.

    Their mean over that axis is ``grad(params, x, y)``.
    """
    return jax.vmap(jax.grad(network.loss), in_axes=(None, 0, 0, None, None))(
        params, x, y, cost, activation
    )


def backprop(
    params, x, y, cost: costs.Cost = costs.quadratic, activation: Activation = activations.sigmoid
):
    """∇C from the equations BP1–BP4, for one example (x (n_in,), y (n_out,)) or a batch.

    Returns a pytree shaped like ``params``: for a batch, the gradient of the mean cost,
    i.e. the average of the per-example gradients the book's ``backprop`` returns.
    ``cost`` and ``activation`` may be given by name; y must be shaped like the outputs.
    """
    cost, activation = costs.get(cost), activations.get(activation)
    hidden = len(params["weights"]) > 1  # BP2, which needs σ', runs only through hidden layers
    if cost.delta is None or (hidden and activation.prime is None):
        raise ValueError(
            f"BP1-BP4 need the cost's δ^L and the activation's derivative: {cost.name} or "
            f"{activation.name} lacks one (backprop.grad takes any)"
        )
    single = x.ndim == 1
    if single:
        x, y = x[None], jnp.reshape(y, (1, -1))  # a scalar y: one output
    weights, biases = params["weights"], params["biases"]
    # Forward pass, keeping every z^l and a^l (a^1 = x).
    outputs, zs = [x], []
    for l, (w, b) in enumerate(zip(weights, biases)):
        zs.append(outputs[-1] @ w.T + b)
        layer = cost.output if l == len(weights) - 1 else activation
        outputs.append(layer.fn(zs[-1]))
    if jnp.shape(y) != zs[-1].shape:  # labels (N,) would broadcast into a wrong δ
        raise ValueError(
            f"desired outputs y {jnp.shape(y)[single:]} must be shaped like the network's "
            f"outputs {zs[-1].shape[single:]} (labels as costs.one_hot(y, n_out))"
        )
    n = x.shape[0]
    delta = cost.delta(zs[-1], outputs[-1], y)  # BP1, (N, n_L)
    nabla_w, nabla_b = [None] * len(weights), [None] * len(biases)
    for l in range(len(weights) - 1, -1, -1):
        if l < len(weights) - 1:
            delta = (delta @ weights[l + 1]) * activation.prime(zs[l])  # BP2
        nabla_b[l] = jnp.sum(delta, axis=0) / n  # BP3
        nabla_w[l] = delta.T @ outputs[l] / n  # BP4
    return {"weights": nabla_w, "biases": nabla_b}


def hidden_layer_speeds(
    params, x, y, cost: costs.Cost = costs.quadratic, activation: Activation = activations.sigmoid
):
    """Chapter 5's "speed of learning" of each hidden layer: ‖∂C/∂b^l‖ for the gradient of
    the mean cost over ``x`` (N, n_in), ``y`` (N, n_out). Returns a float array of shape
    (number of hidden layers,); the first entry is the layer nearest the input."""
    nabla_b = grad(params, x, y, cost, activation)["biases"][:-1]
    return jnp.stack([jnp.linalg.norm(b) for b in nabla_b]) if nabla_b else jnp.zeros(0)

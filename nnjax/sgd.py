"""Mini-batch stochastic gradient descent, one compiled program per epoch.

``sgd_epoch`` shuffles the training data with a PRNG key and runs every mini-batch's update
inside one ``lax.scan``: the data stay on the device and the host is not involved until the
epoch ends. On the CPU, chapter 1's network runs the same updates in a compiled C++ kernel
instead (``nnjax.cpu_kernel``), still inside the one compiled epoch.

Each update is the book's

    w → w − (η/m) Σ_x ∂C_x/∂w,    b → b − (η/m) Σ_x ∂C_x/∂b

over the m examples of the mini-batch. As in the book's code, when the training-set size n
is not a multiple of m the last, smaller mini-batch of n mod m examples is still used, with
η divided by its own size.
"""

import functools

import jax
import jax.numpy as jnp

from nnjax import activations, backprop, costs, cpu_kernel, shuffle
from nnjax.activations import Activation


REGULARIZATIONS = ("l2", "l1")


def sgd_step(params, x, y, eta, cost: costs.Cost = costs.quadratic,
             activation: Activation = activations.sigmoid, lmbda=0.0, n: int = 1,
             regularization: str = "l2"):
    """One update on the mini-batch ``x`` (m, n_in), ``y`` (m, n_out); returns new params.

    With ``lmbda`` = λ > 0 the weights (not the biases) are also regularised as in the
    book's ``network2.py``, n being the size of the whole training set:

        L2:  w → (1 − ηλ/n) w − (η/m) Σ_x ∂C_x/∂w
        L1:  w → w − (ηλ/n) sgn(w) − (η/m) Σ_x ∂C_x/∂w

    (in optax terms, L2 is ``add_decayed_weights(λ/n)`` on the weights before ``sgd(η)``).
    """
    if regularization not in REGULARIZATIONS:
        raise ValueError(f"regularization must be one of {REGULARIZATIONS}, got {regularization!r}")
    nabla = backprop.grad(params, x, y, cost, activation)
    penalty = (lambda w: w) if regularization == "l2" else jnp.sign
    weights = [w - eta * (g + (lmbda / n) * penalty(w))
               for w, g in zip(params["weights"], nabla["weights"])]
    biases = [b - eta * g for b, g in zip(params["biases"], nabla["biases"])]
    return {"weights": weights, "biases": biases}


def mini_batches(key, n: int, mini_batch_size: int):
    """A shuffled split of the indices 0..n−1 into mini-batches.

    Returns ``(full, rest)``: int32 arrays of shapes (n // m, m) and (n mod m,).
    """
    perm = shuffle.permutation(key, n)
    n_full = (n // mini_batch_size) * mini_batch_size
    return perm[:n_full].reshape(-1, mini_batch_size), perm[n_full:]


KERNELS = ("auto", "xla")


@functools.partial(jax.jit, static_argnames=("mini_batch_size", "cost", "activation", "kernel",
                                             "regularization"))
def sgd_epoch(params, x, y, key, eta, mini_batch_size: int, cost: costs.Cost = costs.quadratic,
              activation: Activation = activations.sigmoid, kernel: str = "auto", lmbda=0.0,
              regularization: str = "l2"):
    """One epoch of SGD over the training data ``x`` (n, n_in) with integer labels ``y`` (n,).

    ``key`` decides the shuffle; ``cost`` and ``activation`` (of the hidden layers) are those
    of ``backprop.loss``; ``lmbda`` and ``regularization`` those of ``sgd_step``, with n the
    number of training examples. ``kernel="auto"`` uses the CPU kernel where it applies,
    ``"xla"`` always the ``lax.scan`` of ``sgd_step``. Returns the updated params (same
    pytree and shapes).
    """
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")
    n_out = params["biases"][-1].shape[0]
    full, rest = mini_batches(key, x.shape[0], mini_batch_size)

    def update(params, idx):
        return sgd_step(params, x[idx], costs.one_hot(y[idx], n_out, x.dtype), eta, cost,
                        activation, lmbda, x.shape[0], regularization)

    if (kernel == "auto" and full.shape[0] and regularization == "l2"
            and cpu_kernel.supports(params, x, mini_batch_size, cost, activation)):
        decay = 1 - eta * lmbda / x.shape[0]
        params = cpu_kernel.sgd_epoch(params, x, y, full, eta, cost=cost, decay=decay)
    else:
        params, _ = jax.lax.scan(lambda p, idx: (update(p, idx), None), params, full)
    if rest.shape[0]:
        params = update(params, rest)
    return params

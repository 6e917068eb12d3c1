"""Cost functions, each with its output activation and the error δ^L that backprop starts from.

A cost is a ``Cost``: its ``name`` and three things in the book's terms:

* ``output``: the output layer's activation (sigmoid, or softmax for the log-likelihood);
* ``fn(z, a, y)``: the cost of output weighted inputs ``z``, activations ``a = output(z)``
  and desired outputs ``y`` (one-hot), each (N, n_out) or (n_out,): summed over the output
  neurons, averaged over the examples; a scalar;
* ``delta(z, a, y)``: ∂C_x/∂z^L for each example (BP1), shaped like ``a``; used only by
  the hand-written backpropagation (``nnjax.backprop``) and chapter 3's closed-form
  gradient (``nnjax.slowdown``), so a new cost may leave it None (training takes
  ``jax.grad`` of ``fn``).

Adding a cost is one more ``Cost`` in this file and its entry in ``COSTS``.
"""

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from nnjax import activations
from nnjax.activations import Activation


class Cost(NamedTuple):
    name: str
    fn: Callable
    delta: Optional[Callable]
    output: Activation


def _mean_over_examples(per_example):
    return jnp.mean(per_example) if per_example.ndim else per_example


def quadratic_fn(z, a, y):
    """C = (1/2n) Σ_x ‖y(x) − a(x)‖²: a scalar (for one example, ½‖y − a‖²)."""
    return _mean_over_examples(0.5 * jnp.sum((a - y) ** 2, axis=-1))


def quadratic_delta(z, a, y):
    """BP1 for the quadratic cost: δ^L = (a − y) ⊙ σ'(z)."""
    return (a - y) * activations.sigmoid.prime(z)


def cross_entropy_fn(z, a, y):
    """C = −(1/n) Σ_x Σ_j [y_j ln a_j + (1 − y_j) ln(1 − a_j)], a = σ(z).

    Computed from z as Σ_j softplus(z_j) − y_j z_j, which is the same number wherever the
    book's formula is finite and stays finite (with the right gradient) where σ(z) rounds
    to 0 or 1: the book guards that case with ``nan_to_num`` instead.
    """
    return _mean_over_examples(jnp.sum(jax.nn.softplus(z) - y * z, axis=-1))


def output_error(z, a, y):
    """BP1 for cross-entropy with sigmoid outputs and log-likelihood with softmax: a − y."""
    return a - y


def log_likelihood_fn(z, a, y):
    """C = −(1/n) Σ_x ln a_{y(x)}, a = softmax(z), from z by a stable log-softmax."""
    return _mean_over_examples(-jnp.sum(y * jax.nn.log_softmax(z, axis=-1), axis=-1))


quadratic = Cost("quadratic", quadratic_fn, quadratic_delta, activations.sigmoid)
cross_entropy = Cost("cross_entropy", cross_entropy_fn, output_error, activations.sigmoid)
log_likelihood = Cost("log_likelihood", log_likelihood_fn, output_error, activations.softmax)

COSTS = {c.name: c for c in (quadratic, cross_entropy, log_likelihood)}


def get(name) -> Cost:
    """The cost called ``name`` (a ``Cost`` is returned as it is); raises ValueError listing
    the known ones."""
    if isinstance(name, Cost):
        return name
    if not isinstance(name, str):
        raise TypeError(f"a cost is a Cost or its name, got {type(name).__name__}")
    try:
        return COSTS[name]
    except KeyError:
        raise ValueError(f"unknown cost {name!r}: choose one of {', '.join(COSTS)}") from None


def one_hot(y, n_out: int, dtype=jnp.float32):
    """The desired outputs e_y for integer labels ``y`` (N,) or (): (N, n_out) or (n_out,).
    TypeError if ``y`` is not integers (desired outputs already one-hot, say)."""
    if not jnp.issubdtype(jnp.asarray(y).dtype, jnp.integer) or jnp.ndim(y) > 1:
        raise TypeError(
            f"labels must be integers (N,), got {jnp.asarray(y).dtype} {jnp.shape(y)}: "
            "pass the digit labels, not one-hot vectors"
        )
    return (y[..., None] == jnp.arange(n_out)).astype(dtype)

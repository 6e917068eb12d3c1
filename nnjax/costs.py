"""Cost functions, each with the output error δ^L that backpropagation starts from.

A cost is a pair of pure functions of the output activations ``a`` and the desired
outputs ``y`` (one-hot), both of shape (N, n_out) or (n_out,):

* ``fn(a, y)``: the cost, summed over the output neurons and averaged over the examples;
* ``delta(z, a, y)``: ∂C_x/∂z^L for each example (BP1), same shape as ``a``.
"""

from typing import Callable, NamedTuple

import jax.numpy as jnp

from nnjax import network


class Cost(NamedTuple):
    name: str
    fn: Callable
    delta: Callable


def _mean_over_examples(per_example):
    return jnp.mean(per_example) if per_example.ndim else per_example


def quadratic_fn(a, y):
    """C = (1/2n) Σ_x ‖y(x) − a(x)‖²: a scalar (for one example, ½‖y − a‖²)."""
    return _mean_over_examples(0.5 * jnp.sum((a - y) ** 2, axis=-1))


def quadratic_delta(z, a, y):
    """BP1 for the quadratic cost: δ^L = (a − y) ⊙ σ'(z)."""
    return (a - y) * network.sigmoid_prime(z)


quadratic = Cost("quadratic", quadratic_fn, quadratic_delta)

COSTS = {c.name: c for c in (quadratic,)}


def get(name: str) -> Cost:
    """The cost called ``name``; raises ValueError listing the known ones."""
    try:
        return COSTS[name]
    except KeyError:
        raise ValueError(f"unknown cost {name!r}: choose one of {', '.join(COSTS)}") from None


def one_hot(y, n_out: int, dtype=jnp.float32):
    """The desired outputs e_y for integer labels ``y`` (N,) or (): (N, n_out) or (n_out,)."""
    return (y[..., None] == jnp.arange(n_out)).astype(dtype)

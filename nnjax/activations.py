"""Neuron activation functions, each with the derivative backpropagation needs (BP2).

An activation is a pair of elementwise pure functions of the weighted input z: ``fn(z)``
(the neuron's output a) and ``prime(z)`` (da/dz). ``softmax`` acts on a whole layer and is
only an output layer (chapter 3); its cost supplies δ^L directly.
"""

from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp


class Activation(NamedTuple):
    name: str
    fn: Callable
    prime: Optional[Callable]  # used only by chapter 2's hand-written backprop; may be None


def _sigmoid_prime(z):
    s = jax.nn.sigmoid(z)
    return s * (1 - s)


sigmoid = Activation("sigmoid", jax.nn.sigmoid, _sigmoid_prime)
tanh = Activation("tanh", jnp.tanh, lambda z: 1 - jnp.tanh(z) ** 2)
relu = Activation("relu", jax.nn.relu, lambda z: (z > 0).astype(z.dtype))
linear = Activation("linear", lambda z: z, jnp.ones_like)  # chapter 6's network3 offers it
softmax = Activation("softmax", lambda z: jax.nn.softmax(z, axis=-1), None)

HIDDEN = {a.name: a for a in (sigmoid, tanh, relu, linear)}


def get(name) -> Activation:
    """The hidden-layer activation called ``name`` (an ``Activation`` is returned as it is);
    ValueError listing the known ones."""
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str):
        raise TypeError(f"an activation is an Activation or its name, got {type(name).__name__}")
    try:
        return HIDDEN[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}: choose one of {', '.join(HIDDEN)}"
        ) from None

"""Chapter 1's neurons as pure JAX functions.

Notation follows the book: ``w`` are weights, ``b`` biases, ``x`` inputs and
``z = w . x + b`` the weighted input.

Shape convention shared by :func:`weighted_input`, :func:`perceptron`,
:func:`sigmoid_neuron` and :func:`scaled_sigmoid_neuron`:

==========  ==========  ==============  ============
``w``       ``b``       ``x``           output
==========  ==========  ==============  ============
``(n,)``    ``()``      ``(n,)``        ``()``
``(n,)``    ``()``      ``(N, n)``      ``(N,)``
``(k, n)``  ``(k,)``    ``(n,)``        ``(k,)``
``(k, n)``  ``(k,)``    ``(N, n)``      ``(N, k)``
==========  ==========  ==============  ============

That is ``z = x @ w.T + b``: a single neuron (``w`` 1-D) or a layer of ``k``
neurons (``w`` 2-D, one row per neuron), applied to one input or to a batch
of ``N`` inputs (one per row). More leading batch axes on ``x`` also work.
"""

import jax.numpy as jnp

from nnjax.activations import sigmoid as _sigmoid

sigmoid = _sigmoid.fn  # σ(z), as chapter 1 writes it


def weighted_input(w, b, x):
    """Return ``z = w . x + b``, shaped as in the module's table."""
    w = jnp.asarray(w)
    return jnp.matmul(jnp.asarray(x), w.T) + b


def perceptron(w, b, x):
    """Perceptron: 1 where ``w . x + b > 0``, else 0 (``b`` = -threshold).

    Returns 0/1 values in the dtype of ``w . x + b``, shaped as in the module's
    table: ``()`` or ``(N,)`` for one neuron, ``(k,)`` or ``(N, k)`` for a
    layer of ``k`` perceptrons. ``w . x + b == 0`` gives 0, as in the book.
    """
    z = weighted_input(w, b, x)
    return (z > 0).astype(z.dtype)


def nand(x1, x2):
    """The book's NAND perceptron: weights (-2, -2), bias 3.

    ``x1``, ``x2``: bits (0/1), scalars or arrays of one shape. Returns
    ``NOT (x1 AND x2)`` as 0/1 values of that shape.
    """
    x = jnp.stack(jnp.broadcast_arrays(x1, x2), axis=-1)  # (..., 2)
    return perceptron(jnp.array([-2, -2]), 3, x)


def adder(x1, x2):
    """Add two bits with the book's network of NAND perceptrons.

    Wired as in the book's figure::

        n1    = NAND(x1, x2)
        sum   = NAND(NAND(x1, n1), NAND(x2, n1))   # x1 XOR x2
        carry = NAND(n1, n1)                       # x1 AND x2

    ``x1``, ``x2``: bits, scalars or arrays of one shape. Returns the pair
    ``(sum, carry)``, each of that shape.
    """
    n1 = nand(x1, x2)
    total = nand(nand(x1, n1), nand(x2, n1))
    carry = nand(n1, n1)
    return total, carry


def sigmoid_neuron(w, b, x):
    """Sigmoid neuron(s): ``sigmoid(w . x + b)``, shaped as in the module's table."""
    return sigmoid(weighted_input(w, b, x))


def scaled_sigmoid_neuron(w, b, x, c):
    """Sigmoid neuron with ``w`` and ``b`` multiplied by a constant ``c > 0``.

    Equals ``sigmoid(c * (w . x + b))``, shaped as in the module's table. As
    ``c -> inf`` it tends to ``perceptron(w, b, x)`` wherever
    ``w . x + b != 0`` and to 1/2 wherever ``w . x + b == 0``.
    """
    return sigmoid_neuron(c * jnp.asarray(w), c * jnp.asarray(b), x)


def binary_output_layer():
    """Weights and biases of a sigmoid layer from 10 digit outputs to 4 bits.

    Returns ``(w, b)`` with ``w`` shape ``(4, 10)`` and ``b`` shape ``(4,)``.
    Output ``j`` is bit ``j`` of the digit with bit 0 the MOST significant
    (digit 6 -> ``[0, 1, 1, 0]``). ``w[j, d] = s`` if digit ``d`` has bit
    ``j`` set, else 0; every bias is ``-s / 2``; ``s = 20``.

    Worst case, for inputs with the correct digit's output ``a_d >= 0.99``
    and each other output ``a_i`` in ``[0, 0.01]`` (all ``a`` in ``[0, 1]``):

    * 1-bit: the correct term gives ``s * a_d >= 0.99 s``; the others add
      ``>= 0`` (weights are non-negative), so ``z >= 0.99 s - s/2 = 0.49 s
      = 9.8`` and the output is ``>= sigmoid(9.8) ~ 0.99994 > 0.99``.
    * 0-bit: the correct term is 0; at most nine wrong digits add
      ``<= 0.01 s`` each, so ``z <= 0.09 s - s/2 = -0.41 s = -8.2`` and the
      output is ``<= sigmoid(-8.2) ~ 0.00027 < 0.01``.

    Both need ``|z| > ln 99 ~ 4.6``, i.e. ``0.41 s > 4.6``: ``s = 20`` leaves
    a margin (``s = 10`` would not do).
    """
    s = 20.0
    digits = jnp.arange(10)
    shifts = jnp.arange(3, -1, -1)  # bit 0 is the most significant (2**3)
    bits = (digits[None, :] >> shifts[:, None]) & 1  # (4, 10)
    w = s * bits.astype(jnp.float32)
    b = jnp.full((4,), -s / 2)
    return w, b


def to_binary(a):
    """Apply :func:`binary_output_layer` to digit outputs ``a``.

    ``a``: shape ``(10,)`` or ``(N, 10)``. Returns the sigmoid outputs, shape
    ``(4,)`` or ``(N, 4)``, bit 0 the most significant.
    """
    w, b = binary_output_layer()
    return sigmoid_neuron(w, b, a)

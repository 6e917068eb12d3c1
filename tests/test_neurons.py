import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax.neurons import (
    adder,
    binary_output_layer,
    nand,
    perceptron,
    scaled_sigmoid_neuron,
    sigmoid,
    sigmoid_neuron,
    to_binary,
)

BITS = list(itertools.product([0, 1], repeat=2))


# --- perceptrons -------------------------------------------------------------


@pytest.mark.parametrize("x1, x2", BITS)
def test_nand_perceptron_truth_table(x1, x2):
    expected = 0 if (x1 and x2) else 1
    assert int(perceptron(jnp.array([-2, -2]), 3, jnp.array([x1, x2]))) == expected
    assert int(nand(x1, x2)) == expected


def test_nand_vectorised():
    x1, x2 = jnp.array(BITS).T
    np.testing.assert_array_equal(nand(x1, x2), [1, 1, 1, 0])


def test_perceptron_threshold_is_strict():
    # w.x + b == 0 gives 0; just above gives 1.
    w = jnp.array([1.0, 1.0])
    assert perceptron(w, -2.0, jnp.array([1.0, 1.0])) == 0
    assert perceptron(w, -1.75, jnp.array([1.0, 1.0])) == 1


@pytest.mark.parametrize("x1, x2", BITS)
def test_adder_truth_table_scalar(x1, x2):
    total, carry = adder(x1, x2)
    assert total.shape == () and carry.shape == ()
    assert int(total) == (x1 + x2) % 2
    assert int(carry) == (x1 + x2) // 2


def test_adder_truth_table_vectorised():
    x1, x2 = jnp.array(BITS).T
    total, carry = adder(x1, x2)
    np.testing.assert_array_equal(total, [0, 1, 1, 0])
    np.testing.assert_array_equal(carry, [0, 0, 0, 1])
    # 2-D arrays of bits keep their shape.
    total, carry = adder(x1.reshape(2, 2), x2.reshape(2, 2))
    np.testing.assert_array_equal(total, [[0, 1], [1, 0]])
    np.testing.assert_array_equal(carry, [[0, 0], [0, 1]])


def test_adder_under_jit():
    x1, x2 = jnp.array(BITS).T
    total, carry = jax.jit(adder)(x1, x2)
    np.testing.assert_array_equal(2 * carry + total, x1 + x2)


def _random_layer(key, k=3, n=5, N=4):
    kw, kb, kx = jax.random.split(key, 3)
    w = jax.random.normal(kw, (k, n))
    b = jax.random.normal(kb, (k,))
    x = jax.random.normal(kx, (N, n))
    return w, b, x


@pytest.mark.parametrize("neuron", [perceptron, sigmoid_neuron])
def test_batch_and_layer_match_single(neuron):
    w, b, x = _random_layer(jax.random.key(0))
    k, N = w.shape[0], x.shape[0]
    single = np.array([[neuron(w[j], b[j], x[i]) for j in range(k)] for i in range(N)])
    assert single.shape == (N, k)
    layer_batch = neuron(w, b, x)
    assert layer_batch.shape == (N, k)
    np.testing.assert_allclose(layer_batch, single, rtol=1e-6, atol=1e-6)
    for i in range(N):  # layer, one input
        assert neuron(w, b, x[i]).shape == (k,)
        np.testing.assert_allclose(neuron(w, b, x[i]), single[i], rtol=1e-6, atol=1e-6)
    for j in range(k):  # one neuron, a batch
        assert neuron(w[j], b[j], x).shape == (N,)
        np.testing.assert_allclose(neuron(w[j], b[j], x), single[:, j], rtol=1e-6, atol=1e-6)
    if neuron is perceptron:
        assert set(np.unique(single)) == {0.0, 1.0}


# --- sigmoid neurons ---------------------------------------------------------


def test_sigmoid_values():
    np.testing.assert_allclose(
        sigmoid(jnp.array([0.0, 2.0, -2.0])),
        [0.5, 1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(2.0))],
        rtol=1e-6,
    )
    # Stable at the extremes: no NaN, saturates to 0 and 1.
    np.testing.assert_array_equal(sigmoid(jnp.array([-1e4, 1e4])), [0.0, 1.0])


def test_scaled_sigmoid_tends_to_perceptron():
    w, b, x = _random_layer(jax.random.key(0), k=4, n=6, N=200)
    z = x @ w.T + b
    away = jnp.abs(z) > 0.05
    assert away.mean() > 0.9  # the check below covers most entries
    p = perceptron(w, b, x)
    assert 0 < p.mean() < 1  # both outputs occur
    # At c = 1 the sigmoid neuron is far from the perceptron ...
    small = scaled_sigmoid_neuron(w, b, x, 1.0)
    assert jnp.max(jnp.where(away, jnp.abs(small - p), 0.0)) > 0.1
    # ... and the gap shrinks as c grows, to within 1e-6 at c = 1e3.
    gaps = [
        jnp.max(jnp.where(away, jnp.abs(scaled_sigmoid_neuron(w, b, x, c) - p), 0.0))
        for c in (1.0, 10.0, 100.0, 1e3)
    ]
    assert all(a > b_ for a, b_ in zip(gaps[:2], gaps[1:3]))
    assert gaps[-1] < 1e-6


def test_scaled_sigmoid_is_half_where_weighted_input_is_zero():
    # Integer data so that w.x + b == 0 exactly, also after scaling by c.
    kw, kx = jax.random.split(jax.random.key(0))
    w = jax.random.randint(kw, (3, 5), -5, 6).astype(jnp.float32)
    x = jax.random.randint(kx, (5,), -5, 6).astype(jnp.float32)
    b = -(w @ x)
    for c in (1.0, 1e3, 1e6):
        out = scaled_sigmoid_neuron(w, b, x, c)
        assert out.shape == (3,)
        np.testing.assert_array_equal(out, 0.5)
    # The perceptron gives 0 there, so the limit differs from it only here.
    np.testing.assert_array_equal(perceptron(w, b, x), 0.0)


# --- binary output layer -----------------------------------------------------

DIGITS = np.arange(10)
BINARY = np.array([[(d >> s) & 1 for s in (3, 2, 1, 0)] for d in DIGITS])  # MSB first


def _assert_bits(out, digits):
    bits = BINARY[digits]
    out = np.asarray(out)
    assert out.shape == bits.shape
    assert np.all(out[bits == 1] > 0.99), out
    assert np.all(out[bits == 0] < 0.01), out


def test_binary_output_layer_shapes():
    w, b = binary_output_layer()
    assert w.shape == (4, 10) and b.shape == (4,)
    assert to_binary(jnp.zeros(10)).shape == (4,)
    assert to_binary(jnp.zeros((3, 10))).shape == (3, 4)


def test_binary_code_msb_first():
    """The library's bits for 6 and 9, written out by hand (not from BINARY above)."""
    eye = jnp.eye(10)
    np.testing.assert_array_equal(np.round(to_binary(eye[6])), [0, 1, 1, 0])
    np.testing.assert_array_equal(np.round(to_binary(eye[9])), [1, 0, 0, 1])
    np.testing.assert_array_equal(np.round(to_binary(eye[1])), [0, 0, 0, 1])


def test_to_binary_one_hot():
    a = jnp.eye(10)
    _assert_bits(to_binary(a), DIGITS)
    for d in DIGITS:  # single input, shape (10,)
        _assert_bits(to_binary(a[d]), d)


@pytest.mark.parametrize("others", [0.0, 0.01])
def test_to_binary_adversarial(others):
    # Correct output at its lowest (0.99), the others all at 0 or all at 0.01:
    # the worst cases for the 1-bits and the 0-bits respectively.
    a = np.full((10, 10), others)
    np.fill_diagonal(a, 0.99)
    _assert_bits(to_binary(jnp.asarray(a)), DIGITS)


def test_to_binary_random_allowed_inputs():
    kd, ka, kc = jax.random.split(jax.random.key(0), 3)
    N = 1000
    digits = jax.random.randint(kd, (N,), 0, 10)
    wrong = jax.random.uniform(ka, (N, 10), maxval=0.01)
    right = jax.random.uniform(kc, (N,), minval=0.99, maxval=1.0)
    a = wrong.at[jnp.arange(N), digits].set(right)
    _assert_bits(to_binary(a), np.asarray(digits))


def test_to_binary_rejects_ambiguous_input():
    # Not a valid input (two digits high): shows the checks can fail.
    a = jnp.zeros(10).at[1].set(1.0).at[2].set(1.0)  # 0001 and 0010
    out = np.asarray(to_binary(a))
    with pytest.raises(AssertionError):
        _assert_bits(out, 1)
    with pytest.raises(AssertionError):
        _assert_bits(out, 2)

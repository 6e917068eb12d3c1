"""Chapter 5's chain of one neuron per layer: the book's product for ∂C/∂b_1 against
jax.grad and a NumPy backward pass, the vanishing and the exploding case."""

import pathlib

import jax
import numpy as np
import pytest

from nnjax import vanishing
from tests.helpers import assert_failed_with_one_error, run_module

ROOT = pathlib.Path(__file__).resolve().parents[1]


def numpy_chain(w, b, x, y):
    """z_j, σ'(z_j) and ∂C/∂b_j of the chain with C = ½ (a_n − y)², in NumPy."""
    zs, a = [], x
    for wj, bj in zip(w, b):
        zs.append(wj * a + bj)
        a = 1 / (1 + np.exp(-zs[-1]))
    z = np.array(zs)
    s = 1 / (1 + np.exp(-z))
    prime = s * (1 - s)
    grads, dC_da = np.zeros(len(w)), s[-1] - y
    for j in range(len(w) - 1, -1, -1):
        grads[j] = prime[j] * dC_da
        dC_da = w[j] * prime[j] * dC_da
    return z, prime, grads


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [2, 4, 7])
def test_the_books_product_is_jax_grad(seed, n):
    with jax.enable_x64(True):
        params = vanishing.random_chain(jax.random.key(seed), n)
        w, b = (np.asarray(v) for v in vanishing.weights_and_biases(params))
        f = {k: np.asarray(v) for k, v in vanishing.factors(params, 0.8, 0.1).items()}
        grads = np.asarray(vanishing.bias_grads(params, 0.8, 0.1))
    z, prime, expected = numpy_chain(w, b, 0.8, 0.1)
    np.testing.assert_allclose(grads, expected, rtol=1e-12)
    np.testing.assert_allclose(f["product"], grads[0], rtol=1e-12)
    np.testing.assert_allclose(f["sigma_prime"], prime, rtol=1e-12)
    np.testing.assert_allclose(f["layer"][1:], w[1:] * prime[1:], rtol=1e-12)
    assert f["dC_da"] == pytest.approx(1 / (1 + np.exp(-z[-1])) - 0.1, rel=1e-12)
    assert np.all(f["sigma_prime"] <= 0.25)


def test_small_weights_shrink_the_gradient_fourfold_a_layer():
    """With |w_j| < 1, ∂C/∂a_{j−1} = w_j σ'(z_j) ∂C/∂a_j is at most a quarter of ∂C/∂a_j."""
    rng = np.random.default_rng(0)
    w, b = rng.uniform(-1, 1, 6), rng.normal(size=6)
    with jax.enable_x64(True):
        params = vanishing.chain(w, b)
        grads = np.asarray(vanishing.bias_grads(params, 1.0, 0.0))
        prime = np.asarray(vanishing.factors(params, 1.0, 0.0)["sigma_prime"])
    dC_da = grads / prime  # ∂C/∂b_j = σ'(z_j) ∂C/∂a_j
    assert np.all(np.abs(dC_da[:-1]) <= np.abs(dC_da[1:]) / 4)


@pytest.mark.parametrize("n", [2, 4, 5])
def test_large_weights_with_z_zero_explode(n):
    """The book's example: w_j = 100 and biases with z_j = 0 make each factor 100/4 = 25, so
    ∂C/∂b_1 = ¼ 25^(n−1) (½ − y)."""
    with jax.enable_x64(True):
        params = vanishing.exploding_chain(n, 100.0, 0.7)
        z, a = (np.asarray(v) for v in vanishing.forward(params, 0.7))
        f = {k: np.asarray(v) for k, v in vanishing.factors(params, 0.7, 0.0).items()}
        grads = np.asarray(vanishing.bias_grads(params, 0.7, 0.0))
    np.testing.assert_allclose(z, 0, atol=1e-12)
    np.testing.assert_allclose(f["layer"][1:], 25.0)
    assert grads[0] == pytest.approx(0.25 * 25.0 ** (n - 1) * 0.5, rel=1e-12)
    assert f["product"] == pytest.approx(grads[0], rel=1e-12)
    assert np.all(np.abs(grads[:-1]) > np.abs(grads[1:]))


def test_chain_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="one shape"):
        vanishing.chain([1.0, 2.0], [0.0])


def vanishing_runner(*flags):
    return run_module("experiments.vanishing", *flags)


def test_the_runner_prints_the_product_and_jax_grad():
    result = vanishing_runner("--w=0.5,-0.8,0.9,0.3", "--b=0.1,0.2,-0.3,0.4", "--y=0.2")
    assert result.returncode == 0, result.stderr
    _, _, grads = numpy_chain([0.5, -0.8, 0.9, 0.3], [0.1, 0.2, -0.3, 0.4], 1.0, 0.2)
    product = next(line for line in result.stdout.splitlines() if line.strip().startswith("= "))
    assert product.endswith(f" = {grads[0]:.10g}")
    assert f"∂C/∂b_1 by jax.grad = {grads[0]:.10g}" in result.stdout
    assert "layer 2 → 1: |w_2 σ′(z_2)|" in result.stdout and "shrinks" in result.stdout
    result = vanishing_runner("--exploding")
    assert result.returncode == 0, result.stderr
    assert "= 0.25 × 25 × 25 × 25 × 0.5 = 1953.125" in result.stdout
    assert "grows 25×" in result.stdout


@pytest.mark.parametrize(
    "flags, names",
    [
        (["--neurons=1"], "--neurons"),
        (["--w=1,2"], "--w"),
        (["--b=a,b,c,d"], "--b"),
        (["--exploding", "--w=1,1,1,1"], "--exploding"),
    ],
)
def test_bad_flags_are_one_line(flags, names):
    assert_failed_with_one_error(vanishing_runner(*flags), names)

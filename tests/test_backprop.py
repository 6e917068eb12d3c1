"""Gradients: hand-written BP1–BP4 against jax.grad, and both against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from nnjax import activations, backprop, costs, network

ARCHITECTURES = [[3, 2], [5, 4, 3], [784, 30, 10], [7, 6, 5, 4, 3], [4, 1, 4]]


def random_problem(seed, sizes, n):
    """Float64 params from N(0,1), inputs in [0,1), one-hot desired outputs."""
    k_params, k_x, k_y = jax.random.split(jax.random.key(seed), 3)
    params = network.init(k_params, sizes, jnp.float64)
    x = jax.random.uniform(k_x, (n, sizes[0]), jnp.float64)
    y = costs.one_hot(jax.random.randint(k_y, (n,), 0, sizes[-1]), sizes[-1], jnp.float64)
    return params, x, y


def assert_trees_close(a, b, rtol=1e-10, atol=1e-12):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert u.shape == v.shape
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("sizes", ARCHITECTURES)
def test_backprop_equals_autodiff_float64(sizes, seed):
    with jax.enable_x64(True):
        params, x, y = random_problem(seed, sizes, n=7)
        assert_trees_close(backprop.backprop(params, x, y), backprop.grad(params, x, y))


# Every entry a hand-written backprop can take (a cost or activation registered without its
# derivative, delta or prime None, trains only through jax.grad).
@pytest.mark.parametrize(
    "cost", [c for c in costs.COSTS.values() if c.delta is not None], ids=lambda c: c.name
)
@pytest.mark.parametrize(
    "activation",
    [a for a in activations.HIDDEN.values() if a.prime is not None],
    ids=lambda a: a.name,
)
def test_backprop_equals_autodiff_for_every_cost_and_activation(cost, activation):
    with jax.enable_x64(True):
        for seed, sizes in enumerate([[5, 4, 3], [6, 5, 4, 3]]):
            params, x, y = random_problem(seed, sizes, n=6)
            assert_trees_close(
                backprop.backprop(params, x, y, cost, activation),
                backprop.grad(params, x, y, cost, activation),
            )


def test_backprop_single_example_matches_batch_of_one():
    with jax.enable_x64(True):
        params, x, y = random_problem(0, [5, 4, 3], n=1)
        assert_trees_close(backprop.backprop(params, x[0], y[0]), backprop.backprop(params, x, y))


@pytest.mark.parametrize("sizes", [[5, 4, 3], [6, 3, 3, 2]])
def test_gradient_matches_central_differences(sizes):
    """An independent reference: (C(p + h e) − C(p − h e)) / 2h for every parameter."""
    with jax.enable_x64(True):
        params, x, y = random_problem(1, sizes, n=4)
        flat, unravel = ravel_pytree(params)

        def cost(v):
            return float(network.loss(unravel(v), x, y))

        h = 1e-6
        numeric = np.array(
            [
                (cost(flat.at[i].add(h)) - cost(flat.at[i].add(-h))) / (2 * h)
                for i in range(flat.size)
            ]
        )
        analytic = np.asarray(ravel_pytree(backprop.backprop(params, x, y))[0])
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("sizes", [[784, 30, 10], [6, 5, 4, 3]])
def test_mean_of_per_example_gradients_is_batch_gradient(sizes):
    with jax.enable_x64(True):
        params, x, y = random_problem(2, sizes, n=10)
        per_example = backprop.per_example_grads(params, x, y)
        for leaf, p in zip(jax.tree.leaves(per_example), jax.tree.leaves(params)):
            assert leaf.shape == (10, *p.shape)
        assert_trees_close(
            jax.tree.map(lambda g: g.mean(axis=0), per_example), backprop.grad(params, x, y)
        )


def test_quadratic_cost_is_the_books_definition():
    a = jnp.array([[0.2, 0.8], [1.0, 0.0], [0.5, 0.5]])
    y = jnp.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    # (1/2n) Σ ‖y − a‖² with n = 3: (0.08 + 0 + 0.5) / 6
    np.testing.assert_allclose(costs.quadratic.fn(None, a, y), 0.58 / 6, rtol=1e-6)
    np.testing.assert_allclose(costs.quadratic.fn(None, a[0], y[0]), 0.04, rtol=1e-6)


def test_cross_entropy_is_the_books_formula_and_stays_finite():
    with jax.enable_x64(True):
        z = jnp.array([[-2.0, 0.5, 3.0], [1.0, -1.0, 0.0]])
        y = jnp.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
        a = jax.nn.sigmoid(z)
        book = np.mean(np.sum(np.nan_to_num(-y * np.log(a) - (1 - y) * np.log(1 - a)), axis=1))
        np.testing.assert_allclose(costs.cross_entropy.fn(z, a, y), book, rtol=1e-12)
    # σ(40) rounds to 1 in float32: the book's formula gives nan/inf there, this does not.
    z = jnp.array([[40.0, -40.0]])
    y = jnp.array([[0.0, 1.0]])
    value = costs.cross_entropy.fn(z, jax.nn.sigmoid(z), y)
    np.testing.assert_allclose(value, 80.0, rtol=1e-6)
    g = jax.grad(lambda z: costs.cross_entropy.fn(z, jax.nn.sigmoid(z), y))(z)
    np.testing.assert_allclose(g, jax.nn.sigmoid(z) - y, atol=1e-6)


def test_log_likelihood_is_minus_log_of_the_right_softmax_output():
    with jax.enable_x64(True):
        z = jnp.array([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]])
        y = costs.one_hot(jnp.array([1, 0]), 3, jnp.float64)
        a = jax.nn.softmax(z, axis=-1)
        want = -(np.log(a[0, 1]) + np.log(a[1, 0])) / 2
        np.testing.assert_allclose(costs.log_likelihood.fn(z, a, y), want, rtol=1e-12)
        assert costs.log_likelihood.output is activations.softmax


def test_scaled_initialisation_has_variance_one_over_n_in():
    params = network.init(jax.random.key(0), [400, 300, 10], init="scaled")
    np.testing.assert_allclose(np.var(np.asarray(params["weights"][0])), 1 / 400, rtol=0.05)
    np.testing.assert_allclose(np.var(np.asarray(params["weights"][1])), 1 / 300, rtol=0.2)
    np.testing.assert_allclose(np.var(np.asarray(params["biases"][0])), 1.0, rtol=0.3)
    normal = network.init(jax.random.key(0), [400, 300, 10])
    np.testing.assert_allclose(np.var(np.asarray(normal["weights"][0])), 1.0, rtol=0.05)
    with pytest.raises(ValueError, match="unknown initialisation"):
        network.init(jax.random.key(0), [2, 2], init="xavier")


def test_unknown_cost_and_activation_are_named():
    with pytest.raises(ValueError, match="unknown cost 'hinge'"):
        costs.get("hinge")
    with pytest.raises(ValueError, match="unknown activation 'no_such_activation'"):
        activations.get("no_such_activation")


def test_hidden_layer_speeds_are_the_bias_gradient_norms():
    with jax.enable_x64(True):
        params, x, y = random_problem(4, [8, 6, 5, 4, 3], n=12)
        speeds = np.asarray(backprop.hidden_layer_speeds(params, x, y, costs.cross_entropy))
        nabla_b = backprop.backprop(params, x, y, costs.cross_entropy)["biases"]
        assert speeds.shape == (3,)
        np.testing.assert_allclose(speeds, [np.linalg.norm(b) for b in nabla_b[:-1]], rtol=1e-10)
        assert backprop.hidden_layer_speeds(*random_problem(0, [4, 3], n=2)).shape == (0,)

"""The library's functions other than fit refuse, in one error naming what is wrong, the
inputs a fuzz found them computing garbage from (labels gathered past their end, a class
without a mean, a grid of a string's characters) or failing on deep inside JAX."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import (
    activations,
    backprop,
    baselines,
    chunks,
    costs,
    epoch,
    grid,
    network,
    optimizers,
    parallel,
    seeds,
    stacked,
    universality,
)
from tests.helpers import assert_one_line

PARAMS = network.init(jax.random.key(0), [4, 3, 2])
TX = optimizers.make("sgd")
X, Y = jnp.zeros((20, 4)), jnp.zeros(20, jnp.int32)


def one_epoch(x=X, y=Y, mini_batch_size=5):
    state = optimizers.init(TX, PARAMS, eta=1.0)
    return epoch.epoch(
        PARAMS, state, x, y, jax.random.key(0), model=network.model(), tx=TX,
        mini_batch_size=mini_batch_size,
    )  # fmt: skip


@pytest.mark.parametrize(
    "call, words",
    [
        # a gather past the end of y would repeat its last label for the rest
        (lambda: one_epoch(y=Y[:10]), "x (20, 4) and y (10,) hold different numbers"),
        (lambda: one_epoch(mini_batch_size=0), "mini_batch_size must be a positive integer"),
        (lambda: one_epoch(mini_batch_size=5.0), "got 5.0"),
        (lambda: epoch.permutation(jax.random.key(0), 10.5), "n must be an integer from 0"),
        (lambda: epoch.mini_batches(jax.random.key(0), 10, -5), "mini_batch_size -5 from 1"),
        (lambda: seeds.run_keys(-1), "seed -1 is outside 0"),
        (lambda: chunks.split_evenly(10, -2), "split_evenly needs n ≥ 0 and chunk ≥ 1"),
        (lambda: parallel.device_count(1.7), "devices must be a positive integer or 'all'"),
        (lambda: stacked.unstack(stacked.stack([PARAMS] * 2), 3), "leading axis of 3: [2]"),
        # (N, 1) against (N,) would broadcast into an (N, N) difference
        (
            lambda: universality.max_error(np.sin, lambda x: np.sin(x)[:, None]),
            "approximation's values (1000, 1) are not shaped like the function's (1000,)",
        ),
        # a class without images has a NaN mean, which argmin would pick for every image
        (
            lambda: baselines.darkness_fit(np.ones((3, 4)), np.array([0, 1, 1]), 3),
            "no training image of class 2",
        ),
        (lambda: grid.grid("10", [0.5], [0.0], [100]), "seeds must be a sequence of integers"),
        (lambda: grid.grid([0], [0.5], [0.0], [100.9]), "train_sizes must be a sequence"),
        (lambda: grid.grid([0], [-0.5], [0.0], [100]), "setting 0's η -0.5 is not positive"),
        # labels (N,) against (N, n_out) outputs would broadcast into a wrong δ
        (
            lambda: backprop.backprop(PARAMS, X[:2], Y[:2]),
            "desired outputs y (2,) must be shaped like the network's outputs (2, 2)",
        ),
        (
            lambda: optimizers.set_hyperparams(
                optimizers.init(TX, PARAMS, eta=1.0), learning_rate=float("nan")
            ),
            "learning_rate: η must be positive and finite",
        ),
    ],
)
def test_bad_input_is_one_value_error(call, words):
    with pytest.raises(ValueError) as e:
        call()
    assert words in assert_one_line(e)


def test_what_they_take_still_works():
    assert [len(r) for r in chunks.split_evenly(10, 3)] == [3, 3, 3, 1]
    assert chunks.split_evenly(0, 3) == []
    assert parallel.device_count(np.int64(1)) == parallel.device_count("1") == 1
    assert [s.seed for s in grid.grid(np.arange(2), np.array([0.5]), [0], [100])] == [0, 1]
    # iterators are read once, JAX arrays and 0-d arrays are numbers
    assert len(grid.grid((s for s in [0, 1]), iter([0.5, 1.0]), [0.0], [100])) == 4
    assert len(grid.grid([0], jnp.array([0.1, 0.5]), [np.array(0.0)], [100])) == 2
    # a constant approximation broadcasts against every point, as it did
    assert universality.max_error(np.sin, lambda x: 0.5) == pytest.approx(0.4995, abs=1e-4)
    # without a hidden layer BP2 never runs: an activation without a derivative will do
    linear_only = network.init(jax.random.key(1), [3, 1])
    no_prime = activations.Activation("mine", jnp.tanh, None)
    one = backprop.backprop(linear_only, X[0, :3], jnp.array(1.0), activation=no_prime)
    assert one["biases"][0].shape == (1,)
    params, _ = one_epoch(mini_batch_size=np.int64(5))
    assert jax.tree.structure(params) == jax.tree.structure(PARAMS)
    named = backprop.backprop(PARAMS, X[:2], costs.one_hot(Y[:2], 2), "cross_entropy", "tanh")
    given = backprop.grad(PARAMS, X[:2], costs.one_hot(Y[:2], 2), "cross_entropy", "tanh")
    for a, b in zip(jax.tree.leaves(named), jax.tree.leaves(given), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)

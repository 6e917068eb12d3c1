"""Training images stored as bfloat16 with float32 parameters: every product is computed in
float32, so pixels that bfloat16 holds exactly (the book's k/256) train bit for bit as their
float32 copy does, in the plain and the blocked epoch, one network or K vmapped."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import costs, network, optimizers, sweep
from nnjax.epoch import epoch

SIZES, N, M, EPOCHS = [20, 6, 4], 53, 5, 3  # a short last block and a last mini-batch of 3
KERNELS = [{}, {"kernel": "blocked", "block": 4}]


def pixels(n=N, seed=0):
    """``n`` images of k/256 (k = 0..255), mostly zeros as MNIST's are: float32 (n, n_in),
    and integer labels (n,)."""
    k_x, k_keep, k_y = jax.random.split(jax.random.key(seed), 3)
    k = jax.random.randint(k_x, (n, SIZES[0]), 0, 256)
    x = jnp.where(jax.random.uniform(k_keep, k.shape) < 0.6, 0, k) / 256
    return x.astype(jnp.float32), jax.random.randint(k_y, (n,), 0, SIZES[-1]).astype(jnp.int32)


def train(x, y, stacked, model=None, **kernel):
    """``EPOCHS`` epochs of the book's SGD from seeds 0, 1, 2 (η 3.0, 0.5, 1.0; λ 0, 5, 0.5)
    if ``stacked``, else of seed 0's network alone; returns the parameters."""
    tx = optimizers.make("sgd")
    params, keys = sweep.init_networks([0, 1, 2], SIZES)
    state = optimizers.set_hyperparams(
        jax.vmap(tx.init)(params),
        learning_rate=jnp.asarray([3.0, 0.5, 1.0]),
        weight_decay=jnp.asarray([0.0, 5.0, 0.5]) / N,
    )
    if not stacked:
        params, state, keys = jax.tree.map(lambda a: a[0], (params, state, keys))
    fold = jax.vmap(jax.random.fold_in, in_axes=(0, None)) if stacked else jax.random.fold_in
    for e in range(EPOCHS):
        params, state = epoch(params, state, x, y, fold(keys, e),
                              model=model or network.model(), tx=tx, mini_batch_size=M,
                              stacked=stacked, **kernel)  # fmt: skip
    return params


def leaves(params):
    return [np.asarray(a) for a in jax.tree.leaves(params)]


@pytest.mark.parametrize("stacked", [False, True])
@pytest.mark.parametrize("kernel", KERNELS, ids=["jax", "blocked"])
def test_bfloat16_pixels_train_exactly_as_float32(kernel, stacked):
    x, y = pixels()
    assert np.array_equal(x.astype(jnp.bfloat16).astype(jnp.float32), x)  # exact in bfloat16
    want = train(x, y, stacked, **kernel)
    got = train(x.astype(jnp.bfloat16), y, stacked, **kernel)
    for u, v in zip(leaves(got), leaves(want), strict=True):
        assert u.dtype == np.float32
        np.testing.assert_array_equal(u, v)
    w = sweep.init_networks([0, 1, 2], SIZES)[0]["weights"][0]
    assert not np.allclose(want["weights"][0], w if stacked else w[0])  # it trained


@pytest.mark.parametrize(
    "kernel, cost",
    [(KERNELS[0], costs.cross_entropy), (KERNELS[1], costs.log_likelihood)],
    ids=["jax", "blocked"],
)
def test_other_costs_train_exactly_as_float32(kernel, cost):
    """The one-hot desired outputs take the data's dtype in ``network.model``: 0 and 1 are
    exact in bfloat16, so the cross-entropy and log-likelihood costs are unchanged too."""
    x, y = pixels(seed=1)
    want = train(x, y, False, network.model(cost), **kernel)
    got = train(x.astype(jnp.bfloat16), y, False, network.model(cost), **kernel)
    for u, v in zip(leaves(got), leaves(want), strict=True):
        np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("kernel", KERNELS, ids=["jax", "blocked"])
def test_pixels_bfloat16_rounds_train_differently(kernel):
    """Pixels bfloat16 cannot hold (k/256 + 1/1000) are rounded by the conversion, and the
    network trained on them is not the float32 one: the exact test above can fail."""
    x, y = pixels()
    x = jnp.where(x > 0, x + 1e-3, 0)
    assert not np.array_equal(x.astype(jnp.bfloat16).astype(jnp.float32), x)
    want = train(x, y, True, **kernel)
    got = train(x.astype(jnp.bfloat16), y, True, **kernel)
    assert any(not np.array_equal(u, v) for u, v in zip(leaves(got), leaves(want), strict=True))

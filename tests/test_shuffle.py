"""The epoch's shuffle is a permutation, depends on the key, and looks uniform."""

import jax
import numpy as np
import pytest

from nnjax import epoch as epoch_lib


@pytest.mark.parametrize("n", [1, 2, 3, 10, 255, 256, 257, 1000, 50000])
def test_is_a_permutation(n):
    perm = np.asarray(epoch_lib.permutation(jax.random.key(n), n))
    assert perm.dtype == np.int32 and perm.shape == (n,)
    np.testing.assert_array_equal(np.sort(perm), np.arange(n))


def test_same_key_same_order_other_key_other_order():
    a = np.asarray(epoch_lib.permutation(jax.random.key(0), 1000))
    b = np.asarray(epoch_lib.permutation(jax.random.key(0), 1000))
    c = np.asarray(epoch_lib.permutation(jax.random.key(1), 1000))
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.9
    assert (a != np.arange(1000)).mean() > 0.9


def test_positions_are_uniform():
    """Over 3,000 keys, each of 10 items lands in each of 10 places ~300 times."""
    perms = jax.jit(jax.vmap(lambda k: epoch_lib.permutation(k, 10)))(
        jax.random.split(jax.random.key(7), 3000)
    )
    counts = np.zeros((10, 10))
    for perm in np.asarray(perms):
        counts[np.arange(10), perm] += 1
    chi2 = ((counts - 300) ** 2 / 300).sum()
    assert chi2 < 150, counts  # 81 degrees of freedom: p ≈ 1e-6 at 150
    # And neighbours are not kept together: items 0 and 1 adjacent ~ 2/10 of the time.
    where = np.asarray(perms)[:, :2]  # the places of items 0 and 1
    adjacent = np.mean(np.abs(where[:, 0] - where[:, 1]) == 1)
    assert 0.13 < adjacent < 0.27

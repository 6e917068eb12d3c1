"""Checks that only mean something on a GPU (skipped elsewhere): a sweep's memory estimate at
the sizes a GPU trains at once, the blocked epoch against the plain one in float32 and TF32
on the GPU's own products, and the Pallas epoch compiled by Triton against the JAX epoch.
Run them with ``python -m pytest -m gpu`` on a GPU machine (``benchmarks/gpu_session.sh``
does)."""

import jax
import jax.numpy as jnp
import pytest

from nnjax import chunks, gpu_kernel, network, optimizers, sweep
from nnjax.epoch import epoch, mini_batches

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(jax.default_backend() != "gpu", reason="needs a GPU"),
]

SIZES = [784, 30, 10]


def compiled_epoch(k, n, **kernel):
    x, y = jnp.zeros((n, SIZES[0])), jnp.zeros((n,), jnp.int32)
    params, keys = sweep.init_networks(range(k), SIZES)
    tx = optimizers.make("sgd")
    return epoch.lower(
        params, jax.vmap(tx.init)(params), x, y, keys, model=network.model(), tx=tx,
        mini_batch_size=10, stacked=True, **kernel,
    ).compile()  # fmt: skip


@pytest.mark.parametrize("kernel", [{}, {"kernel": "blocked", "block": 8}])
def test_4096_networks_fit_the_estimate_that_sizes_the_chunks(kernel):
    """XLA's memory plan for K = 4,096 networks on 50,000 images, within
    ``chunks.bytes_per_network`` per network, and the chunking trains them in one program."""
    k, n = 4096, 50000
    memory = compiled_epoch(k, n, **kernel).memory_analysis()
    if memory is None:
        pytest.skip("this backend gives no memory analysis")
    block = kernel.get("block", 1)
    estimate = k * chunks.bytes_per_network(SIZES, 10, n, block=block)
    assert memory.temp_size_in_bytes <= estimate, (memory.temp_size_in_bytes, estimate)
    assert chunks.chunk_size(k, SIZES, 10, n, block=block) == k


@pytest.mark.parametrize("precision, share", [("highest", 1e-3), ("default", 0.1)])
def test_blocked_epoch_follows_the_plain_epoch_on_the_gpu(precision, share):
    """64 networks on 2,000 MNIST-like images (multiples of 1/256, as the book's), one epoch
    each way under the same precision: the two differ by a small share of what training
    changed (TF32 rounds the products' inputs to 10 bits, float32 only the sums)."""
    k, n = 64, 2000
    keys = jax.random.split(jax.random.key(0), 2)
    x = jax.random.uniform(keys[0], (n, SIZES[0]))
    x = jnp.where(x < 0.8, 0.0, jnp.floor(x * 256) / 256)
    y = jax.random.randint(keys[1], (n,), 0, 10)
    params, shuffle = sweep.init_networks(range(k), SIZES)
    tx = optimizers.make("sgd")
    state = jax.vmap(lambda p: optimizers.init(tx, p, eta=0.5))(params)
    common = dict(model=network.model(), tx=tx, mini_batch_size=10, stacked=True)
    with jax.default_matmul_precision(precision):
        plain = epoch(params, state, x, y, shuffle, **common)[0]
        fast = epoch(params, state, x, y, shuffle, kernel="blocked", block=8, **common)[0]
    for start, a, b in zip(*map(jax.tree.leaves, (params, plain, fast))):
        changed = float(jnp.max(jnp.abs(a - start)))
        assert changed > 0
        assert float(jnp.max(jnp.abs(b - a))) <= share * changed


def pallas_problem(n=5000):
    """Chapter 1's network, MNIST-like images (multiples of 1/256, mostly 0), labels, an
    optimizer state with η = 3, and a key for the epoch's shuffle."""
    keys = jax.random.split(jax.random.key(1), 3)
    x = jax.random.uniform(keys[0], (n, SIZES[0]))
    x = jnp.where(x < 0.8, 0.0, jnp.floor(x * 256) / 256)
    y = jax.random.randint(keys[1], (n,), 0, 10)
    params = network.init(keys[2], SIZES)
    state = optimizers.init(optimizers.make("sgd"), params, eta=3.0)
    return params, state, x, y, keys[2]


def pallas_epoch(params, x, y, key, programs):
    """The kernel's epoch over the mini-batches ``epoch`` draws with ``key`` (5,000 images
    leave no last partial one); returns the params and how often a program gave up waiting."""
    batches = mini_batches(jax.random.split(key)[0], x.shape[0], 10)[0]
    return gpu_kernel.sgd_epoch_and_waits(params, x, y, batches, 3.0, programs=programs)


@pytest.mark.parametrize("programs", [1, 4])
def test_the_pallas_epoch_follows_the_jax_epoch_on_the_gpu(programs):
    """Chapter 1's network on 5,000 MNIST-like images, one epoch by the JAX epoch in float32
    and one by the Triton kernel compiled for this GPU (the CPU tests run it in Pallas's
    interpreter), in one program (through ``epoch``) and split between four that meet every
    step: the same steps, up to float32 rounding."""
    params, state, x, y, key = pallas_problem()
    common = dict(model=network.model(), tx=optimizers.make("sgd"), mini_batch_size=10)
    with jax.default_matmul_precision("highest"):
        plain = epoch(params, state, x, y, key, **common)[0]
    if programs == 1:
        fused = epoch(params, state, x, y, key, kernel="pallas", **common)[0]
    else:
        fused, waits = pallas_epoch(params, x, y, key, programs)
        assert int(waits) == 0  # no program stopped waiting for the others
    for start, a, b in zip(*map(jax.tree.leaves, (params, plain, fused))):
        changed = float(jnp.max(jnp.abs(a - start)))
        assert changed > 0
        assert float(jnp.max(jnp.abs(b - a))) <= 1e-3 * changed


@pytest.mark.parametrize("programs", [2, 8])
def test_pallas_programs_that_meet_give_the_same_floats_every_time(programs):
    """The programs add their shares in program order, so two runs give the same floats to
    the bit (a race would not), close to one program's."""
    params, _, x, y, key = pallas_problem()
    first, waits = pallas_epoch(params, x, y, key, programs)
    again, _ = pallas_epoch(params, x, y, key, programs)
    one, _ = pallas_epoch(params, x, y, key, 1)
    assert int(waits) == 0
    for start, a, b, c in zip(*map(jax.tree.leaves, (params, first, again, one))):
        assert bool(jnp.all(a == b))
        assert float(jnp.max(jnp.abs(a - c))) <= 1e-3 * float(jnp.max(jnp.abs(c - start)))

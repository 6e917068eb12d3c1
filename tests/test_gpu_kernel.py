"""The Pallas GPU epoch (``nnjax.gpu_kernel``) against nnjax's pure-JAX epoch: same steps,
same mini-batches. Off a GPU the kernel runs in Pallas's interpreter, which executes the
kernel's own code (its padding, masks, chunks and in-place updates); and it is lowered for a
CUDA GPU here too, so that the Triton lowering of every operation it uses is checked on any
machine."""

import functools

import jax
import jax.numpy as jnp
import pytest

from nnjax import costs, gpu_kernel, layers, network, network3, optimizers
from nnjax.fit import fit
from nnjax.history import History
from tests import helpers, test_cpu_kernel
from tests.test_cpu_kernel import max_difference, problem

check = functools.partial(test_cpu_kernel.check, kernel=gpu_kernel)


def test_check_says_what_the_kernel_cannot_train():
    """What the C++ epoch cannot train either (``nnjax.fused.reason``, tested in full in
    test_cpu_kernel.py), and its own limits, each with its reason."""
    params, x, _ = problem(40, [12, 6, 4])
    assert check(params, x, 10) == ""
    assert check(params, x, 40, costs.cross_entropy) == ""
    assert "plain SGD" in check(params, x, 10, momentum=0.5)
    assert "1 to 64" in check(params, x, 65)
    wide, _, _ = problem(40, [12, 129, 4])
    assert "128 hidden" in check(wide, x, 10)
    many, _, _ = problem(40, [12, 6, 65])
    assert "64 output" in check(many, x, 10)
    conv = network3.model((layers.softmax(4),), (12,))
    with pytest.raises(ValueError, match="chapter 1-5 networks only"):
        gpu_kernel.check(conv, optimizers.make("sgd"), params, x, 10)


@pytest.mark.parametrize(
    "sizes, n, m, cost, lmbda",
    [
        ([784, 30, 10], 200, 10, costs.quadratic, 0.0),  # chapter 1's network
        ([784, 30, 10], 160, 10, costs.cross_entropy, 5.0),  # chapter 3's, with L2
        ([20, 7, 3], 53, 5, costs.quadratic, 1.0),  # nothing a power of two; a last batch of 3
        ([50, 100, 12], 96, 16, costs.cross_entropy, 0.0),  # hidden padded to 128, 2 chunks
    ],
    ids=["chapter1", "chapter3", "odd", "wide"],
)
def test_the_kernel_trains_as_the_jax_epoch(sizes, n, m, cost, lmbda):
    params, x, y = problem(n, sizes)
    args = (params, x, y, jax.random.key(1), 0.5, m, cost)
    with jax.default_matmul_precision("highest"):  # a GPU's default is TF32
        plain = helpers.sgd_epoch(*args, lmbda=lmbda)
    fused, state = helpers.sgd_epoch(
        *args,
        kernel="pallas",
        lmbda=lmbda,
        opt_state=optimizers.init(optimizers.make("sgd"), params, 0.5, lmbda / n),
    )
    assert max_difference(plain, params) > 1e-2  # the epoch moved the weights
    assert max_difference(fused, plain) < 2e-5  # float32 rounding
    assert int(state.count) == -(-n // m)  # the kernel's steps and the JAX one's last
    for a, b in zip(jax.tree.leaves(fused), jax.tree.leaves(params)):
        assert a.shape == b.shape and a.dtype == b.dtype


def test_the_weight_decay_reaches_the_kernel():
    params, x, y = problem(60, [12, 6, 4])
    args = (params, x, y, jax.random.key(2), 0.5, 10)
    decayed = helpers.sgd_epoch(*args, kernel="pallas", lmbda=20.0)
    with jax.default_matmul_precision("highest"):
        assert max_difference(decayed, helpers.sgd_epoch(*args, lmbda=20.0)) < 1e-5
    assert max_difference(decayed, helpers.sgd_epoch(*args, kernel="pallas")) > 1e-3


def test_fit_refuses_the_kernel_for_many_networks_at_once():
    params, x, y = problem(40, [12, 6, 4])
    tx = optimizers.make("sgd")
    runs = [History(params, optimizers.init(tx, params, 0.5)) for _ in range(2)]
    with pytest.raises(ValueError, match="Pallas GPU epoch trains one network"):
        fit(
            network.model(), tx, runs, (x, y), epochs=1, mini_batch_size=10,
            keys=[jax.random.key(0)] * 2, strategy="vmap", kernel="pallas",
        )  # fmt: skip


@pytest.mark.parametrize("programs", [1, 4])
def test_the_kernel_lowers_to_one_triton_call_for_a_cuda_gpu(programs):
    """The whole epoch is one Triton kernel for a GPU: lowered (not compiled, which needs
    the GPU) on any machine, which checks that Pallas's Triton lowering takes every
    operation the kernel uses, the programs' meeting (atomics, a spin loop) included."""
    params = jax.eval_shape(lambda: network.init(jax.random.key(0), [784, 30, 10]))
    x = jax.ShapeDtypeStruct((50_000, 784), jnp.float32)
    y = jax.ShapeDtypeStruct((50_000,), jnp.int32)
    batches = jax.ShapeDtypeStruct((5_000, 10), jnp.int32)
    epoch = jax.jit(
        functools.partial(gpu_kernel.sgd_epoch, eta=3.0, programs=programs, interpret=False)
    )
    text = epoch.trace(params, x, y, batches).lower(lowering_platforms=("cuda",)).as_text()
    assert text.count("xla.gpu.triton") == 1
    assert 'name = "nnjax_sgd_epoch"' in text and "num_warps = 4" in text
    assert f"grid_x = {programs} : i32" in text
    assert ("atomic_rmw" in text) == (programs > 1)


@pytest.mark.parametrize("sizes, n, m", [([784, 30, 10], 100, 10), ([20, 7, 3], 53, 5)])
def test_programs_split_the_columns_as_one_program_does(sizes, n, m):
    """In the interpreter one program plays every program's part (it cannot run them at
    once), adding their shares in program order as they do on a GPU: 2, 4 and 8 programs
    give one program's result up to float rounding, padding columns and all (8 programs of
    chapter 1's network leave the last with padding only)."""
    params, x, y = problem(n, sizes)
    batches = jax.random.permutation(jax.random.key(3), n)[: n // m * m].reshape(-1, m)
    one, waits = gpu_kernel.sgd_epoch_and_waits(params, x, y, batches, 0.5, interpret=True)
    assert int(waits) == 0  # no program waited for another
    assert max_difference(one, params) > 1e-2
    for programs in (2, 4, 8):
        split = gpu_kernel.sgd_epoch(params, x, y, batches, 0.5, programs=programs)
        assert max_difference(split, one) < 1e-5, programs
    for programs in (3, 64):
        with pytest.raises(ValueError, match="power of two up to 32"):
            gpu_kernel.sgd_epoch(params, x, y, batches, 0.5, programs=programs)

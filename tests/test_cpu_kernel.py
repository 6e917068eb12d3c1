"""The C++ CPU epoch against nnjax's pure-JAX epoch: same steps, same mini-batches."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import activations, costs, cpu_kernel, network, sgd

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="CPU kernel")


def problem(n, sizes, seed=0):
    k_params, k_x, k_y = jax.random.split(jax.random.key(seed), 3)
    params = network.init(k_params, sizes)
    # Like MNIST: mostly zeros, the rest in [0, 1).
    x = jax.random.uniform(k_x, (n, sizes[0]))
    x = jnp.where(x < 0.7, 0.0, x)
    y = jax.random.randint(k_y, (n,), 0, sizes[-1]).astype(jnp.int32)
    return params, x, y


def max_difference(a, b):
    return max(
        float(jnp.max(jnp.abs(u - v))) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))
    )


def test_uses_cpu_kernel_says_which_epoch_runs():
    """What the runner's header reports: the kernel for chapter 1's run, XLA for what the
    kernel does not do."""
    params, x, _ = problem(40, [12, 6, 4])
    assert sgd.uses_cpu_kernel(params, x, 10)
    assert sgd.uses_cpu_kernel(params, x, 10, costs.cross_entropy)
    assert not sgd.uses_cpu_kernel(params, x, 10, kernel="xla")
    assert not sgd.uses_cpu_kernel(params, x, 10, regularization="l1")
    assert not sgd.uses_cpu_kernel(params, x, 10, momentum=0.5)
    assert not sgd.uses_cpu_kernel(params, x, 10, costs.log_likelihood)
    assert not sgd.uses_cpu_kernel(params, x, 10, activation=activations.relu)
    assert not sgd.uses_cpu_kernel(params, x, 41)  # no full mini-batch
    assert not sgd.uses_cpu_kernel(params, x, 33)  # more than the kernel takes
    deep, _, _ = problem(40, [12, 6, 5, 4])
    assert not sgd.uses_cpu_kernel(deep, x, 10)


@pytest.mark.parametrize(
    "sizes, n, m, cost",
    [
        ([784, 30, 10], 200, 10, costs.quadratic),  # the book's chapter 1 network
        ([784, 30, 10], 200, 10, costs.cross_entropy),  # and chapter 3's
        ([13, 7, 3], 90, 1, costs.quadratic),  # n_in not a multiple of the vector width, odd hidden
        ([40, 5, 10], 64, 32, costs.cross_entropy),  # the largest mini-batch the kernel takes
        ([20, 9, 4], 53, 4, costs.quadratic),  # a last partial mini-batch of 1 (handled by XLA)
    ],
)
def test_kernel_epoch_matches_xla_epoch(sizes, n, m, cost):
    params, x, y = problem(n, sizes)
    assert cpu_kernel.supports(params, x, m, cost)
    key = jax.random.key(1)
    fast = sgd.sgd_epoch(params, x, y, key, 0.5, m, cost)
    plain = sgd.sgd_epoch(params, x, y, key, 0.5, m, cost, kernel="xla")
    assert max_difference(fast, plain) < 1e-5
    assert max_difference(fast, params) > 1e-3  # it did train


def test_kernel_applies_eta_and_every_step():
    """Zero η leaves the parameters unchanged; one step with η = 1 is ``sgd_step``'s."""
    params, x, y = problem(100, [16, 6, 10])
    key = jax.random.key(2)
    assert cpu_kernel.supports(params, x, 10, costs.quadratic)  # builds and registers it
    batches, _ = sgd.mini_batches(key, 100, 10)
    same = jax.jit(cpu_kernel.sgd_epoch)(params, x, y, batches, 0.0)
    assert max_difference(same, params) == 0.0
    one_step = jax.jit(cpu_kernel.sgd_epoch)(params, x, y, batches[:1], 1.0)
    want, _ = sgd.sgd_step(
        params,
        sgd.init_state(params),
        x[batches[0]],
        costs.one_hot(y[batches[0]], 10),
        sgd.optimizer(1.0),
    )
    assert max_difference(one_step, want) < 1e-6


def test_not_used_where_it_does_not_apply():
    params, x, y = problem(20, [8, 4, 3, 2])
    assert not cpu_kernel.supports(params, x, 10, costs.quadratic)  # two hidden layers
    params, x, y = problem(20, [8, 4, 2])
    assert not cpu_kernel.supports(params, x, 33, costs.quadratic)  # mini-batch too big
    assert not cpu_kernel.supports(params, x.astype(jnp.bfloat16), 10, costs.quadratic)
    assert not cpu_kernel.supports(params, x, 10, costs.log_likelihood)  # softmax output
    assert not cpu_kernel.supports(params, x, 10, costs.quadratic, activations.relu)


def test_failed_build_reports_the_compiler_error(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="failed"):
        cpu_kernel.build(compiler="/bin/false", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # no partial library left behind
    monkeypatch.setattr(cpu_kernel, "_compiler", lambda: None)
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        cpu_kernel.build(cache_dir=tmp_path)


def test_build_is_cached(tmp_path):
    first = cpu_kernel.build(cache_dir=tmp_path)
    mtime = first.stat().st_mtime_ns
    assert cpu_kernel.build(cache_dir=tmp_path) == first
    assert first.stat().st_mtime_ns == mtime
    assert [p.name for p in tmp_path.iterdir()] == [first.name]


def test_thread_count_does_not_change_the_result():
    params, x, y = problem(300, [100, 21, 10])
    batches, _ = sgd.mini_batches(jax.random.key(8), 300, 10)
    runs = [
        jax.jit(cpu_kernel.sgd_epoch, static_argnames="threads")(
            params, x, y, batches, 1.0, threads=t
        )
        for t in (1, 2, 3)
    ]
    for run in runs[1:]:
        for u, v in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(run)):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_kernel_l2_matches_xla_and_l1_falls_back():
    params, x, y = problem(150, [50, 12, 10])
    key = jax.random.key(9)
    args = (params, x, y, key, 0.5, 10, costs.cross_entropy)
    fast = sgd.sgd_epoch(*args, lmbda=5.0)
    plain = sgd.sgd_epoch(*args, kernel="xla", lmbda=5.0)
    assert max_difference(fast, plain) < 1e-5
    assert max_difference(fast, sgd.sgd_epoch(*args)) > 1e-3  # λ made a difference
    l1 = sgd.sgd_epoch(*args, lmbda=5.0, regularization="l1")
    assert (
        max_difference(l1, sgd.sgd_epoch(*args, kernel="xla", lmbda=5.0, regularization="l1"))
        == 0.0
    )


def test_going_on_on_one_thread_mid_epoch_does_not_change_the_result():
    """On busy cores the kernel stops its threads mid-epoch and runs the remaining steps on
    one; ``stop_after`` takes that path at a chosen step. Every split gives the same bits as
    one thread throughout, and the kernel reports the threads it ended on."""
    params, x, y = problem(300, [100, 21, 10])
    batches, _ = sgd.mini_batches(jax.random.key(8), 300, 10)
    epoch = jax.jit(
        cpu_kernel.sgd_epoch_and_threads, static_argnames=("threads", "stop_after", "cost")
    )
    # decay ≠ 1 (L2): the update that ends the first part must decay the weights once
    args = (params, x, y, batches, 1.0)
    kwargs = dict(cost=costs.cross_entropy, decay=0.99)
    want, used = epoch(*args, threads=1, **kwargs)
    assert int(used) == 1
    for threads, stop_after, ends_on in [
        (2, 1, 1),
        (3, 17, 1),
        (2, 29, 1),
        (2, 30, 2),
        (2, -1, 2),
        (None, -1, None),
    ]:
        got, used = epoch(*args, threads=threads, stop_after=stop_after, **kwargs)
        assert ends_on is None or int(used) == ends_on  # None: the kernel's own choice
        for u, v in zip(jax.tree.leaves(want), jax.tree.leaves(got)):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_thread_count_from_the_environment(monkeypatch, caplog):
    cpu_kernel._warn_bad_threads.cache_clear()  # it warns once per value
    monkeypatch.setenv("NNJAX_CPU_THREADS", "3")
    assert cpu_kernel.default_threads() == 3
    assert cpu_kernel.describe_threads() == "3 threads (NNJAX_CPU_THREADS)"
    monkeypatch.setenv("NNJAX_CPU_THREADS", "two")  # ignored, with a warning
    monkeypatch.setattr(cpu_kernel.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5})
    with caplog.at_level(logging.WARNING):
        assert cpu_kernel.default_threads() == 4  # the usable cores, at most 4
    assert "NNJAX_CPU_THREADS='two' is not a positive integer" in caplog.text
    monkeypatch.delenv("NNJAX_CPU_THREADS")
    assert cpu_kernel.describe_threads() == "up to 4 threads (1 on busy cores)"
    monkeypatch.setattr(cpu_kernel.os, "sched_getaffinity", lambda pid: {3})
    assert cpu_kernel.describe_threads() == "1 thread"

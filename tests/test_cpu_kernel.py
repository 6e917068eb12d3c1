"""The C++ CPU epoch against nnjax's pure-JAX epoch: same steps, same mini-batches."""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import activations, costs, cpu_kernel, layers, network, network3, optimizers
from tests import helpers

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


def check(
    params,
    x,
    m,
    cost=costs.quadratic,
    activation=activations.sigmoid,
    kernel=cpu_kernel,
    **optimizer,
):
    """``kernel.check`` (the C++ epoch's, or ``nnjax.gpu_kernel``'s) for chapter 1-5's
    network with these choices: "" where the kernel can run, else the one-line reason."""
    tx = optimizers.make("sgd", **optimizer)
    try:
        kernel.check(network.model(cost, activation), tx, params, x, m)
        return ""
    except ValueError as e:
        what = "C++ CPU" if kernel is cpu_kernel else "Pallas GPU"
        assert "\n" not in str(e) and str(e).startswith(f"the {what} epoch cannot train")
        return str(e)


def test_check_says_what_the_kernel_cannot_train():
    """Chapter 1's and 3's one-hidden-layer sigmoid networks with plain SGD and L2; nothing
    else, each with its reason."""
    params, x, _ = problem(40, [12, 6, 4])
    assert check(params, x, 10) == ""
    assert check(params, x, 10, costs.cross_entropy) == ""
    assert "plain SGD" in check(params, x, 10, regularization="l1")
    assert "plain SGD" in check(params, x, 10, momentum=0.5)
    assert "log_likelihood" in check(params, x, 10, costs.log_likelihood)
    assert "relu" in check(params, x, 10, activation=activations.relu)
    assert "full mini-batch" in check(params, x[:20], 30)
    assert "1 to 32" in check(params, x, 33)
    assert "float32" in check(params, x.astype(jnp.bfloat16), 10)
    deep, _, _ = problem(40, [12, 6, 5, 4])
    assert "one hidden layer" in check(deep, x, 10)
    conv = network3.model((layers.softmax(4),), (12,))
    with pytest.raises(ValueError, match="chapter 1-5 networks only"):
        cpu_kernel.check(conv, optimizers.make("sgd"), [{}], x, 10)
    with pytest.raises(ValueError, match="plain SGD"):
        cpu_kernel.check(network.model(), optimizers.make("adam"), params, x, 10)


def test_nothing_builds_the_kernel_unless_asked(tmp_path):
    """The default run (the JAX epoch) compiles no C++: a fresh data directory has no
    kernels/ folder after a training run (the next test: --kernel=cpp builds it there)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "NNJAX_DATA_DIR": str(tmp_path), "JAX_PLATFORMS": "cpu"}
    code = (
        "import jax; from nnjax import network, fit, optimizers, history\n"
        "p = network.init(jax.random.key(0), [8, 4, 2]); tx = optimizers.make('sgd')\n"
        "x = jax.numpy.ones((20, 8)); y = jax.numpy.zeros(20, 'int32')\n"
        "fit.fit(network.model(), tx, history.History(p, optimizers.init(tx, p, 1.0)), (x, y),"
        " epochs=1, mini_batch_size=10, key=jax.random.key(1))\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    assert not (tmp_path / "kernels").exists()


def test_the_runner_says_once_that_it_compiles_the_kernel(tmp_path):
    """The first --kernel=cpp run on a machine compiles for some seconds: one plain line
    says so (no log line of absl's), and a later run finds the kernel built."""
    import os
    import subprocess
    import sys

    from nnjax.data import default_data_dir

    data = default_data_dir()  # the book's MNIST; the kernel goes to a fresh directory
    env = {**os.environ, "NNJAX_DATA_DIR": str(tmp_path), "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "experiments.mnist", "--kernel=cpp", "--epochs=1"]
    command += ["--train_size=500", f"--data_dir={data}"]
    saying = "Compiling the C++ CPU epoch (once for this CPU and jaxlib)"
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert saying in first.stdout and "compiling" not in first.stderr.lower()
    assert any((tmp_path / "kernels").glob("*.so"))
    again = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert saying not in again.stdout and "Epoch 0" in again.stdout


def test_a_run_the_kernel_cannot_train_compiles_nothing(tmp_path):
    """--kernel=cpp with Adam is refused in one line, without first saying (or doing) a
    compile in a fresh directory."""
    import os
    import subprocess
    import sys

    from nnjax.data import default_data_dir

    env = {**os.environ, "NNJAX_DATA_DIR": str(tmp_path), "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "experiments.mnist", "--kernel=cpp", "--optimizer=adam"]
    command += ["--epochs=1", "--train_size=500", f"--data_dir={default_data_dir()}"]
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    helpers.assert_failed_with_one_error(result, "--kernel=cpp: the C++ CPU epoch cannot train")
    assert "Compiling" not in result.stdout and not (tmp_path / "kernels").exists()


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
    assert check(params, x, m, cost) == ""
    key = jax.random.key(1)
    fast = helpers.sgd_epoch(params, x, y, key, 0.5, m, cost, kernel="cpp")
    plain = helpers.sgd_epoch(params, x, y, key, 0.5, m, cost, kernel="jax")
    assert max_difference(fast, plain) < 1e-5
    assert max_difference(fast, params) > 1e-3  # it did train


def test_kernel_applies_eta_and_every_step():
    """Zero η leaves the parameters unchanged; one step with η = 1 is ``sgd_step``'s."""
    params, x, y = problem(100, [16, 6, 10])
    key = jax.random.key(2)
    assert check(params, x, 10) == ""  # builds and registers it
    batches, _ = helpers.mini_batches(key, 100, 10)
    same = jax.jit(cpu_kernel.sgd_epoch)(params, x, y, batches, 0.0)
    assert max_difference(same, params) == 0.0
    one_step = jax.jit(cpu_kernel.sgd_epoch)(params, x, y, batches[:1], 1.0)
    g = jax.grad(network.loss)(params, x[batches[0]], costs.one_hot(y[batches[0]], 10))
    want = jax.tree.map(lambda p, d: p - 1.0 * d, params, g)
    assert max_difference(one_step, want) < 1e-6


def test_failed_build_reports_the_compiler_error(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="failed"):
        cpu_kernel.build(compiler="/bin/false", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # no partial library left behind
    monkeypatch.setattr(cpu_kernel, "_compiler", lambda: None)
    with pytest.raises(RuntimeError, match="no C\\+\\+ compiler"):
        cpu_kernel.build(cache_dir=tmp_path)


def test_build_is_cached(tmp_path):
    assert cpu_kernel.needs_build(cache_dir=tmp_path)  # what the runner says it is doing
    first = cpu_kernel.build(cache_dir=tmp_path)
    assert not cpu_kernel.needs_build(cache_dir=tmp_path)
    mtime = first.stat().st_mtime_ns
    assert cpu_kernel.build(cache_dir=tmp_path) == first
    assert first.stat().st_mtime_ns == mtime
    digest = first.with_suffix(".sha256")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([first.name, digest.name])


def test_a_damaged_cached_library_is_built_again(tmp_path, monkeypatch):
    """Loading a truncated shared library crashes Python (a bus error), so one whose bytes
    no longer match the digest kept beside it is never returned: it is built again."""
    first = cpu_kernel.build(cache_dir=tmp_path)
    whole = first.read_bytes()
    first.write_bytes(whole[:1000])
    assert cpu_kernel.needs_build(cache_dir=tmp_path)
    assert cpu_kernel.build(cache_dir=tmp_path) == first
    assert first.read_bytes() == whole
    first.with_suffix(".sha256").unlink()  # a library cached before digests were kept
    mtime = first.stat().st_mtime_ns
    compiler = cpu_kernel._compiler()  # found before os.access says nothing is writable
    monkeypatch.setattr(cpu_kernel.os, "access", lambda *a: False)  # a read-only cache
    # used as it is, since no digest can be written
    assert cpu_kernel.build(compiler=compiler, cache_dir=tmp_path) == first
    assert first.stat().st_mtime_ns == mtime
    monkeypatch.undo()
    assert cpu_kernel.build(cache_dir=tmp_path) == first and first.read_bytes() == whole


def test_thread_count_does_not_change_the_result():
    params, x, y = problem(300, [100, 21, 10])
    batches, _ = helpers.mini_batches(jax.random.key(8), 300, 10)
    runs = [
        jax.jit(cpu_kernel.sgd_epoch, static_argnames="threads")(
            params, x, y, batches, 1.0, threads=t
        )
        for t in (1, 2, 3)
    ]
    for run in runs[1:]:
        for u, v in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(run)):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_kernel_l2_matches_the_jax_epoch():
    params, x, y = problem(150, [50, 12, 10])
    key = jax.random.key(9)
    args = (params, x, y, key, 0.5, 10, costs.cross_entropy)
    fast = helpers.sgd_epoch(*args, kernel="cpp", lmbda=5.0)
    plain = helpers.sgd_epoch(*args, kernel="jax", lmbda=5.0)
    assert max_difference(fast, plain) < 1e-5
    assert max_difference(fast, helpers.sgd_epoch(*args, kernel="cpp")) > 1e-3  # λ showed


def test_going_on_on_one_thread_mid_epoch_does_not_change_the_result():
    """On busy cores the kernel stops its threads mid-epoch and runs the remaining steps on
    one; ``stop_after`` takes that path at a chosen step. Every split gives the same bits as
    one thread throughout, and the kernel reports the threads it ended on."""
    params, x, y = problem(300, [100, 21, 10])
    batches, _ = helpers.mini_batches(jax.random.key(8), 300, 10)
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

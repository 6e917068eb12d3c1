"""The blocked epoch (``kernel="blocked"``) against the plain JAX epoch: the same updates,
B mini-batches at a time, for single and vmapped networks."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import activations, blocked, chunks, costs, layers, network, network3, optimizers, sweep
from nnjax.epoch import epoch
from tests.helpers import run_module


@pytest.fixture(autouse=True)
def float64():
    with jax.enable_x64(True):
        yield


def problem(n, sizes, seed=0):
    k_params, k_x, k_y = jax.random.split(jax.random.key(seed), 3)
    params = network.init(k_params, sizes, jnp.float64)
    x = jax.random.uniform(k_x, (n, sizes[0]), jnp.float64)
    x = jnp.where(x < 0.6, 0.0, x)  # like MNIST: mostly zeros
    y = jax.random.randint(k_y, (n,), 0, sizes[-1]).astype(jnp.int32)
    return params, x, y


def one_epoch(params, state, x, y, key, model, m, **kernel):
    return epoch(params, state, x, y, key, model=model, tx=optimizers.make("sgd"),
                 mini_batch_size=m, **kernel)  # fmt: skip


def assert_trees_close(a, b, tol=1e-12):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=tol, atol=tol)


CASES = [
    # sizes, cost, hidden activation, n, m, block
    ([12, 6, 4], costs.quadratic, activations.sigmoid, 53, 5, 4),  # short last block, last batch
    ([12, 6, 4], costs.cross_entropy, activations.sigmoid, 60, 5, 3),  # blocks fill the epoch
    ([12, 6, 5, 4], costs.cross_entropy, activations.tanh, 47, 4, 8),  # two hidden layers
    ([12, 4], costs.log_likelihood, activations.sigmoid, 40, 10, 2),  # no hidden layer
    ([12, 7, 4], costs.log_likelihood, activations.relu, 30, 3, 1),  # a block of one step
    ([12, 6, 4], costs.quadratic, activations.sigmoid, 30, 5, 16),  # block longer than the epoch
]


@pytest.mark.parametrize("sizes, cost, activation, n, m, block", CASES)
@pytest.mark.parametrize("lmbda", [0.0, 5.0])
def test_blocked_epoch_is_the_plain_epoch(sizes, cost, activation, n, m, block, lmbda):
    """Two epochs, in float64: every parameter and the optimizer's step count equal the
    plain epoch's to rounding, with and without L2 weight decay."""
    params, x, y = problem(n, sizes)
    tx = optimizers.make("sgd")
    model = network.model(cost, activation)
    plain = fast = (params, optimizers.init(tx, params, 0.5, lmbda / n))
    for k in range(2):
        key = jax.random.key(k)
        plain = one_epoch(*plain, x, y, key, model, m)
        fast = one_epoch(*fast, x, y, key, model, m, kernel="blocked", block=block)
    assert_trees_close(fast[0], plain[0])
    assert int(fast[1].count) == int(plain[1].count) == 2 * -(-n // m)
    assert not np.allclose(plain[0]["weights"][0], params["weights"][0])  # it trained


def test_vmapped_blocked_networks_are_their_single_runs():
    """Three networks with their own seeds, η and λ, vmapped through the blocked epoch: each
    equals its own plain single run."""
    sizes, n, m = [12, 6, 4], 53, 5
    _, x, y = problem(n, sizes)
    etas, lmbdas = jnp.asarray([0.5, 3.0, 1.0]), jnp.asarray([0.0, 5.0, 0.5])
    params, keys = sweep.init_networks([0, 7, 3], sizes, dtype=jnp.float64)
    tx = optimizers.make("sgd")
    state = optimizers.set_hyperparams(
        jax.vmap(tx.init)(params), learning_rate=etas, weight_decay=lmbdas / n
    )
    model = network.model(costs.cross_entropy)
    stacked = one_epoch(params, state, x, y, keys, model, m, kernel="blocked", stacked=True)
    for i in range(3):
        single = jax.tree.map(lambda a, i=i: a[i], (params, state))
        want = one_epoch(*single, x, y, keys[i], model, m)
        assert_trees_close(jax.tree.map(lambda a, i=i: a[i], stacked), want)  # and the state


def test_float32_stays_within_rounding_of_the_plain_epoch():
    """In float32 the two epochs add in different orders; after 300 steps the blocked one
    is within 10× of the plain vmapped epoch's own distance from the plain one (the rounding
    every sweep accepts; a few 1e-6 here), or 1e-5."""
    params, x, y = problem(3000, [64, 16, 10])
    params, x = jax.tree.map(lambda a: a.astype(jnp.float32), (params, x))
    tx = optimizers.make("sgd")
    state = optimizers.init(tx, params, 3.0)
    model, key = network.model(), jax.random.key(1)
    plain = one_epoch(params, state, x, y, key, model, 10)[0]
    fast = one_epoch(params, state, x, y, key, model, 10, kernel="blocked")[0]
    one = jax.tree.map(lambda a: a[None], (params, state))
    vmapped = one_epoch(*one, x, y, key[None], model, 10, stacked=True)[0]

    def distance(a, b):
        return max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(*map(jax.tree.leaves, (a, b))))

    vmap_drift = distance(plain, jax.tree.map(lambda a: a[0], vmapped))
    assert 0 < distance(plain, fast) < max(10 * vmap_drift, 1e-5)


def test_forward_pass_from_the_first_product_is_the_books_loop():
    """``logits`` (which starts from the first product) and the blocked epoch's loss from a
    given product are the book's layer-by-layer loop, a' = σ(w a + b), bit for bit."""
    params, x, y = problem(7, [12, 6, 5, 4])

    def books(params, x):
        a = x
        for w, b in zip(params["weights"][:-1], params["biases"][:-1]):
            a = activations.tanh.fn(a @ w.T + b)
        return a @ params["weights"][-1].T + params["biases"][-1]

    xw = x @ params["weights"][0].T
    want = books(params, x)
    np.testing.assert_array_equal(network.logits(params, x, activations.tanh), want)
    np.testing.assert_array_equal(
        network.logits_after_first_product(params, xw, activations.tanh), want
    )
    model = network.model(costs.cross_entropy, activations.tanh)
    np.testing.assert_array_equal(
        blocked._tail_loss(xw, params, y, costs.cross_entropy, activations.tanh),
        model.loss(params, x, y),
    )


def test_check_says_what_the_blocked_epoch_cannot_train():
    model = network.model()

    def why(model=model, **optimizer):
        with pytest.raises(ValueError) as e:
            blocked.check(model, optimizers.make(**optimizer))
        assert str(e.value).startswith("the blocked epoch cannot train this network: ")
        return str(e.value)

    blocked.check(model, optimizers.make("sgd"))  # the book's SGD: fine
    assert "plain SGD" in why(name="sgd", momentum=0.5)
    assert "plain SGD" in why(name="adam")
    assert "plain SGD" in why(name="sgd", regularization="l1")
    assert "chapter 1-5 networks only" in why(network3.model((layers.softmax(4),), (12,)))
    assert "chapter 1-5 networks only" in why(network.regression_model())
    with pytest.raises(ValueError, match="one device"):
        blocked.check(model, optimizers.make("sgd"), mesh=object())
    with pytest.raises(ValueError, match="block must be a positive integer"):
        params, x, y = problem(10, [12, 6, 4])
        tx = optimizers.make("sgd")
        one_epoch(params, tx.init(params), x, y, jax.random.key(0), model, 5,
                  kernel="blocked", block=0)  # fmt: skip


def test_no_per_network_copy_of_the_data_and_within_the_estimate():
    """Vmapped, the blocked epoch gathers each block from the one copy of the data, and
    needs no more than the estimate that sizes a sweep's chunks."""
    k, n, sizes, block = 32, 4000, [784, 30, 10], 8
    with jax.enable_x64(False):
        x, y = jnp.zeros((n, 784)), jnp.zeros((n,), jnp.int32)
        params, keys = sweep.init_networks(range(k), sizes)
        tx = optimizers.make("sgd")
        compiled = epoch.lower(
            params, jax.vmap(tx.init)(params), x, y, keys, model=network.model(), tx=tx,
            mini_batch_size=10, stacked=True, kernel="blocked", block=block,
        ).compile()  # fmt: skip
    memory = compiled.memory_analysis()
    if memory is None:
        pytest.skip("this backend gives no memory analysis")
    assert memory.temp_size_in_bytes < k * n * 784 * 4 / 10
    assert memory.temp_size_in_bytes <= k * chunks.bytes_per_network(sizes, 10, n, block=block)


def test_runners_train_with_the_blocked_epoch(tmp_path):
    """``experiments.mnist --kernel=blocked`` says so and learns; ``experiments.sweep
    --kernel=blocked`` vmaps and its networks learn as the plain sweep's do."""
    small = ["--dataset=mnist", "--train_size=2000", "--epochs=2", "--eta=3.0"]
    best = {}
    for kernel in ("jax", "blocked"):
        block = ["--block=4"] if kernel == "blocked" else []
        result = run_module("experiments.mnist", *small, f"--kernel={kernel}", *block)
        assert result.returncode == 0, result.stderr[-2000:]
        says = "(blocked epoch, 4 mini-batches a block)" in result.stdout
        assert says == (kernel == "blocked")
        best[kernel] = float(result.stdout.split("Best: epoch ")[1].split("(")[1].split("%")[0])
    assert best["blocked"] > 50 and abs(best["blocked"] - best["jax"]) < 2
    rows = {}
    for kernel in ("jax", "blocked"):
        out = tmp_path / f"{kernel}.jsonl"
        result = run_module("experiments.sweep", *small, "--seeds=0:2", "--strategy=vmap",
                            f"--kernel={kernel}", f"--jsonl={out}")  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        rows[kernel] = out.read_text().splitlines()
        assert ("(blocked epoch, 8 mini-batches a block)" in result.stdout) == (kernel == "blocked")
    for plain, fast in zip(*(map(json.loads, rows[k]) for k in ("jax", "blocked"))):
        assert plain["seed"] == fast["seed"]
        assert abs(plain["best_accuracy"] - fast["best_accuracy"]) < 0.02

"""The compiled epoch against a plain Python loop that follows the book's update rule."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nnjax import activations, backprop, costs, network, optimizers
from nnjax.history import EpochResult, History
from tests import helpers


def step(params, state, x, y1, tx, cost=costs.quadratic):
    """One update of ``tx`` by jax.grad of the book's loss on (x, y1 one-hot)."""
    g = jax.grad(network.loss)(params, x, y1, cost)
    updates, state = tx.update(g, state, params)
    return optax.apply_updates(params, updates), state


def small_problem(n, sizes=(12, 6, 4), seed=0, dtype=jnp.float32):
    k_params, k_x, k_y = jax.random.split(jax.random.key(seed), 3)
    params = network.init(k_params, list(sizes), dtype)
    x = jax.random.uniform(k_x, (n, sizes[0]), dtype)
    y = jax.random.randint(k_y, (n,), 0, sizes[-1]).astype(jnp.int32)
    return params, x, y


def book_epoch(
    params,
    x,
    y,
    perm,
    eta,
    m,
    cost=costs.quadratic,
    activation=activations.sigmoid,
    lmbda=0.0,
    regularization="l2",
):
    """The book's ``SGD`` inner loop in NumPy: mini-batches of m in ``perm`` order, the
    last one possibly smaller, each updating with η/len(mini_batch) times the summed
    per-example gradients of ``backprop.backprop`` (the book's equations), and network2's
    weight decay (1 − ηλ/n) w (L2) or w − (ηλ/n) sgn(w) (L1), n = len(x), biases undecayed."""
    params = jax.tree.map(np.asarray, params)
    decay = eta * lmbda / len(x)
    n_out = params["biases"][-1].shape[0]
    for start in range(0, len(perm), m):
        batch = perm[start : start + m]
        sums = jax.tree.map(np.zeros_like, params)
        for i in batch:  # one example at a time, as network.py does
            g = backprop.backprop(
                params, x[i], costs.one_hot(y[i], n_out, x.dtype), cost, activation
            )
            sums = jax.tree.map(lambda s, gi: s + np.asarray(gi), sums, g)
        weights = [
            (1 - decay) * w if regularization == "l2" else w - decay * np.sign(w)
            for w in params["weights"]
        ]
        params = {
            "weights": [w - (eta / len(batch)) * s for w, s in zip(weights, sums["weights"])],
            "biases": [
                b - (eta / len(batch)) * s for b, s in zip(params["biases"], sums["biases"])
            ],
        }
    return params


@pytest.mark.parametrize("regularization", ["l2", "l1"])
def test_scanned_epoch_decays_weights_by_the_training_set_size(regularization):
    """λ is divided by n, the training set's size (25), not the mini-batch's (10) nor the
    number of mini-batches; biases are not decayed."""
    with jax.enable_x64(True):
        params, x, y = small_problem(25, dtype=jnp.float64)
        key = jax.random.key(5)
        full, rest = helpers.mini_batches(key, 25, 10)
        perm = np.concatenate([np.asarray(full).ravel(), np.asarray(rest)])
        got = helpers.sgd_epoch(
            params,
            x,
            y,
            key,
            0.5,
            10,
            costs.cross_entropy,
            lmbda=5.0,
            regularization=regularization,
            kernel="jax",
        )
        want = book_epoch(
            params,
            np.asarray(x),
            np.asarray(y),
            perm,
            0.5,
            10,
            costs.cross_entropy,
            lmbda=5.0,
            regularization=regularization,
        )
        plain = book_epoch(params, np.asarray(x), np.asarray(y), perm, 0.5, 10, costs.cross_entropy)
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(np.asarray(g), w, rtol=1e-10, atol=1e-12)
        assert not np.allclose(want["weights"][0], plain["weights"][0])  # the decay shows


@pytest.mark.parametrize("n, m", [(60, 10), (23, 5), (7, 10)])
def test_scanned_epoch_equals_book_loop(n, m):
    """Same permutation, same updates; (23, 5) and (7, 10) end with a partial mini-batch."""
    with jax.enable_x64(True):
        params, x, y = small_problem(n, dtype=jnp.float64)
        key = jax.random.key(3)
        full, rest = helpers.mini_batches(key, n, m)
        perm = np.concatenate([np.asarray(full).ravel(), np.asarray(rest)])
        assert sorted(perm) == list(range(n))
        got = helpers.sgd_epoch(params, x, y, key, 0.7, m)
        want = book_epoch(params, np.asarray(x), np.asarray(y), perm, 0.7, m)
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(np.asarray(g), w, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "cost, activation",
    [
        (costs.cross_entropy, activations.sigmoid),
        (costs.log_likelihood, activations.relu),
        (costs.quadratic, activations.tanh),
    ],
)
def test_scanned_epoch_equals_book_loop_for_chapter3_networks(cost, activation):
    with jax.enable_x64(True):
        params, x, y = small_problem(25, dtype=jnp.float64)
        key = jax.random.key(4)
        full, rest = helpers.mini_batches(key, 25, 10)
        perm = np.concatenate([np.asarray(full).ravel(), np.asarray(rest)])
        got = helpers.sgd_epoch(params, x, y, key, 0.3, 10, cost, activation)
        want = book_epoch(params, np.asarray(x), np.asarray(y), perm, 0.3, 10, cost, activation)
        for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(np.asarray(g), w, rtol=1e-10, atol=1e-12)


def test_epoch_changes_parameters_and_lowers_cost():
    params, x, y = small_problem(200)
    new = helpers.sgd_epoch(params, x, y, jax.random.key(1), 3.0, 10)
    y1 = costs.one_hot(y, 4)
    assert float(network.loss(new, x, y1)) < float(network.loss(params, x, y1))


def test_same_seed_same_parameters_and_different_seed_differs():
    params, x, y = small_problem(100)

    def run(seed):
        return helpers.train(
            params,
            (x, y),
            epochs=2,
            mini_batch_size=10,
            eta=1.0,
            key=jax.random.key(seed),
            eval_data=(x, y),
        )

    (a, _, ha), (b, _, hb), (c, _, _) = run(5), run(5), run(6)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    assert [r.correct for r in ha.epochs] == [r.correct for r in hb.epochs]
    assert any(not np.array_equal(u, w) for u, w in zip(jax.tree.leaves(a), jax.tree.leaves(c)))


def test_train_reports_every_epoch():
    params, x, y = small_problem(50)
    seen = []
    _, _, history = helpers.train(
        params,
        (x, y),
        epochs=3,
        mini_batch_size=10,
        eta=1.0,
        key=jax.random.key(0),
        eval_data=(x[:20], y[:20]),
        on_epoch=seen.append,
    )
    assert [r.epoch for r in seen] == [0, 1, 2] == [r.epoch for r in history.epochs]
    assert all(r.total == 20 and 0 <= r.correct <= 20 and r.seconds > 0 for r in seen)
    best = max(r.correct for r in seen)
    assert history.best.epoch == min(r.epoch for r in seen if r.correct == best)
    assert seen[0].as_dict()["accuracy"] == seen[0].correct / 20


def test_history_best_is_the_first_of_tied_epochs():
    """network.py's "Best: epoch N" is the first epoch with the highest count; chapter 6's
    protocol (best_rule="last", network3's >=) keeps the last."""
    epochs = [EpochResult(k, correct, 100, 1.0, 0.1) for k, correct in enumerate([90, 95, 93, 95])]
    assert History(None, epochs=epochs).best.epoch == 1
    assert History(None, epochs=epochs, best_rule="last").best.epoch == 3
    with pytest.raises(ValueError, match="best_rule"):
        History(None, best_rule="best")
    assert History([], 0.0).best is None


def test_evaluate_counts_correct_predictions():
    params = {"weights": [jnp.eye(3)], "biases": [jnp.zeros(3)]}
    x = jnp.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 1.0, 0]])
    assert int(network.evaluate(params, x, jnp.array([0, 1, 2, 0]))) == 3


@pytest.mark.parametrize("regularization", ["l2", "l1"])
def test_regularised_step_is_the_books_update(regularization):
    """network2.py: w → (1 − ηλ/n) w − (η/m) Σ∇ (L2), w → w − (ηλ/n) sgn(w) − (η/m) Σ∇ (L1);
    biases are not regularised."""
    with jax.enable_x64(True):
        params, x, y = small_problem(10, dtype=jnp.float64)
        y1 = costs.one_hot(y, 4, jnp.float64)
        eta, lmbda, n = 0.5, 5.0, 1000
        tx = optimizers.make("sgd", regularization=regularization)
        state = optimizers.init(tx, params, eta, lmbda / n)
        got, _ = step(params, state, x, y1, tx, costs.cross_entropy)
        sums = jax.tree.map(np.zeros_like, jax.tree.map(np.asarray, params))
        for i in range(10):
            g = backprop.backprop(params, x[i], y1[i], costs.cross_entropy)
            sums = jax.tree.map(lambda s, gi: s + np.asarray(gi), sums, g)
        for w, s_w, g_w in zip(params["weights"], sums["weights"], got["weights"]):
            w = np.asarray(w)
            if regularization == "l2":
                want = (1 - eta * lmbda / n) * w - (eta / 10) * s_w
            else:
                want = w - (eta * lmbda / n) * np.sign(w) - (eta / 10) * s_w
            np.testing.assert_allclose(np.asarray(g_w), want, rtol=1e-12, atol=1e-14)
        for b, s_b, g_b in zip(params["biases"], sums["biases"], got["biases"]):
            np.testing.assert_allclose(
                np.asarray(g_b), np.asarray(b) - (eta / 10) * s_b, rtol=1e-12, atol=1e-14
            )


def test_plain_sgd_through_optax_is_the_books_update_bit_for_bit():
    with jax.enable_x64(True):
        params, x, y = small_problem(10, dtype=jnp.float64)
        y1 = costs.one_hot(y, 4, jnp.float64)
        tx = optimizers.make("sgd")
        got, _ = step(params, optimizers.init(tx, params, 0.7), x, y1, tx)
        nabla = backprop.grad(params, x, y1)
        for p, g, new in zip(jax.tree.leaves(params), jax.tree.leaves(nabla), jax.tree.leaves(got)):
            np.testing.assert_array_equal(np.asarray(new), np.asarray(p - 0.7 * g))


def test_momentum_is_the_books_rule():
    """v → μv − η∇C, w → w + v, over two steps with a change of η between them."""
    with jax.enable_x64(True):
        params, x, y = small_problem(20, dtype=jnp.float64)
        y1 = costs.one_hot(y, 4, jnp.float64)
        mu, tx = 0.9, optimizers.make("sgd", 0.9)
        state = optimizers.init(tx, params, 0.5)
        want, velocity = jax.tree.map(np.asarray, params), jax.tree.map(np.zeros_like, params)
        got = params
        for eta, rows in ((0.5, slice(0, 10)), (0.25, slice(10, 20))):
            state = optimizers.set_hyperparams(state, learning_rate=eta)
            got, state = step(got, state, x[rows], y1[rows], tx)
            g = backprop.grad(want, x[rows], y1[rows])
            velocity = jax.tree.map(
                lambda v, gi, eta=eta: mu * v - eta * np.asarray(gi), velocity, g
            )
            want = jax.tree.map(lambda w, v: w + v, want, velocity)
        for u, v in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(np.asarray(u), v, rtol=1e-12, atol=1e-14)


def test_momentum_epoch_returns_the_state():
    params, x, y = small_problem(60)
    new, state = helpers.sgd_epoch(
        params,
        x,
        y,
        jax.random.key(0),
        0.5,
        10,
        momentum=0.5,
        opt_state=optimizers.init(optimizers.make("sgd", 0.5), params, 1.0),
    )
    assert any(float(jnp.abs(v).max()) > 0 for v in jax.tree.leaves(state))
    plain = helpers.sgd_epoch(params, x, y, jax.random.key(0), 0.5, 10)
    assert any(
        not np.array_equal(u, v) for u, v in zip(jax.tree.leaves(new), jax.tree.leaves(plain))
    )

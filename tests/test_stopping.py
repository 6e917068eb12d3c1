"""Early stopping and the η-halving schedule on scripted accuracy sequences."""

import jax
import numpy as np
import pytest

from nnjax import backprop, costs, network, optimizers
from nnjax import history as rules
from tests import helpers


def test_epochs_without_improvement_counts_from_the_first_best():
    assert rules.epochs_without_improvement([]) == 0
    assert rules.epochs_without_improvement([1, 2, 3]) == 0
    assert rules.epochs_without_improvement([1, 3, 2, 3, 1]) == 3  # a tie is no improvement


@pytest.mark.parametrize(
    "accuracies, patience, stop",
    [
        ([90, 91, 92], 2, False),
        ([90, 92, 91, 91], 2, True),
        ([90, 92, 91], 2, False),
        ([90, 92, 91, 91], 0, False),  # 0: never
        ([90, 90, 90, 90], 3, True),
    ],
)
def test_early_stop(accuracies, patience, stop):
    assert rules.early_stop(accuracies, patience) == stop


@pytest.mark.parametrize(
    "correct, patience, why",
    [
        ([90, 92, 91], 1, "no improvement in 1 epoch after epoch 2"),
        ([92, 91, 91], 2, "no improvement in 2 epochs after epoch 2"),
    ],
)
def test_decide_says_why_it_stops(correct, patience, why):
    run = rules.History(params=None)
    run.epochs = [rules.EpochResult(e, c, 100, 1.0, 0.5) for e, c in enumerate(correct)]
    assert rules.decide(run, patience, 0, 0.5) == (0.5, why)


def test_halving_schedule_halves_after_each_plateau_and_stops_at_one_128th():
    eta = 0.5
    assert rules.halving_schedule([90, 91, 92], eta, 2) == (0.5, False)
    assert rules.halving_schedule([90, 91, 91, 91], eta, 2) == (0.25, False)
    # The count restarts after a halving: two more flat epochs halve again.
    assert rules.halving_schedule([90, 91, 91, 91, 90, 91], eta, 2) == (0.125, False)
    # A new best resets the count.
    assert rules.halving_schedule([90, 91, 91, 92, 91], eta, 2) == (0.5, False)
    # Seven halvings reach η/128: stop.
    flat = [90] + [89] * 14
    assert rules.halving_schedule(flat, eta, 2) == (eta / 128, True)
    assert rules.halving_schedule(flat[:-1], eta, 2) == (eta / 64, False)
    assert rules.halving_schedule(flat, eta, 0) == (eta, False)


def _numpy_cross_entropy(params, x, y):
    """The book's network2 ``total_cost`` without regularisation, in float64 NumPy: the
    mean over examples of Σ_j −y_j ln a_j − (1 − y_j) ln(1 − a_j), sigmoid everywhere."""
    a = np.asarray(x, np.float64)
    for w, b in zip(params["weights"], params["biases"]):
        a = 1 / (1 + np.exp(-(a @ np.asarray(w, np.float64).T + np.asarray(b, np.float64))))
    target = np.eye(a.shape[1])[np.asarray(y)]
    return float(np.mean(np.sum(-target * np.log(a) - (1 - target) * np.log(1 - a), axis=1)))


def _problem():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    params = network.init(k1, [8, 5, 3])
    x = jax.random.uniform(k2, (60, 8))
    y = jax.random.randint(k3, (60,), 0, 3)
    return params, x, y


def test_training_stops_early_and_records_eta():
    params, x, y = _problem()
    _, _, history = helpers.train(
        params,
        (x, y),
        epochs=200,
        mini_batch_size=10,
        eta=0.1,
        key=jax.random.key(1),
        eval_data=(x[:20], y[:20]),
        early_stopping=3,
        halve_eta_after=2,
    )
    assert history.stopped and len(history.epochs) < 200
    accuracies = [r.correct for r in history.epochs]

    def rule(acc):  # which of the two stops (if any) holds after the epochs ``acc``
        if rules.halving_schedule(acc, 0.1, 2)[1]:
            return "η fell to 1/128"
        return "no improvement in 3 epochs" if rules.early_stop(acc, 3) else None

    # It stops at the first epoch where a rule holds, not later, and says which.
    assert [rule(accuracies[:k]) for k in range(1, len(accuracies))] == [None] * (
        len(accuracies) - 1
    )
    assert rule(accuracies) and history.stopped.startswith(rule(accuracies))
    for k, r in enumerate(history.epochs):  # exactly: 0.1 (float32's shortest), not 0.10000000149
        assert r.eta == rules.halving_schedule(accuracies[:k], 0.1, 2)[0]
    with pytest.raises(ValueError, match="evaluation data"):
        helpers.train(
            params,
            (x, y),
            epochs=1,
            mini_batch_size=10,
            eta=0.1,
            key=jax.random.key(1),
            early_stopping=3,
        )


def test_monitoring_reports_the_books_four_lists():
    params, x, y = _problem()
    seen = []
    trained, _, history = helpers.train(
        params,
        (x, y),
        epochs=2,
        mini_batch_size=10,
        eta=0.5,
        key=jax.random.key(2),
        eval_data=(x[:20], y[:20]),
        cost=costs.cross_entropy,
        lmbda=1.0,
        monitor=True,
        gradient_norms=30,
        on_epoch=seen.append,
    )
    last = seen[-1].as_dict()
    for field in ("training_cost", "evaluation_cost", "training_correct", "training_accuracy"):
        assert field in last
    assert last["training_total"] == 60
    # Chapter 5's speed of learning: ‖∂C/∂b‖ of the hidden layer, on the first 30 images.
    nabla = backprop.backprop(trained, x[:30], costs.one_hot(y[:30], 3), costs.cross_entropy)
    assert len(last["gradient_norms"]) == 1
    assert last["gradient_norms"][0] == pytest.approx(
        float(np.linalg.norm(nabla["biases"][0])), rel=1e-4
    )
    assert last["training_correct"] == int(network.evaluate(trained, x, y))
    # The book's quirk: the L2 term of a reported cost divides by that set's own size.
    squares = sum(float(np.sum(np.asarray(w) ** 2)) for w in trained["weights"])
    plain = _numpy_cross_entropy(trained, x[:20], y[:20])
    assert last["evaluation_cost"] == pytest.approx(plain + 0.5 * (1.0 / 20) * squares, rel=1e-5)
    plain = _numpy_cross_entropy(trained, x, y)
    assert last["training_cost"] == pytest.approx(plain + 0.5 * (1.0 / 60) * squares, rel=1e-5)
    assert last["training_accuracy"] == last["training_correct"] / 60


def test_monitored_cost_under_l1_is_the_l1_cost():
    """Chapter 3's L1 cost, C₀ + (λ/N) Σ|w|, not the L2 term, when training with L1."""
    params, x, y = _problem()
    seen = []
    trained, _, _ = helpers.train(
        params,
        (x, y),
        epochs=1,
        mini_batch_size=10,
        eta=0.5,
        key=jax.random.key(2),
        eval_data=(x[:20], y[:20]),
        cost=costs.cross_entropy,
        lmbda=2.0,
        regularization="l1",
        monitor=True,
        on_epoch=seen.append,
    )
    plain = _numpy_cross_entropy(trained, x[:20], y[:20])
    absolute = sum(float(np.sum(np.abs(np.asarray(w)))) for w in trained["weights"])
    assert seen[-1].as_dict()["evaluation_cost"] == pytest.approx(
        plain + (2.0 / 20) * absolute, rel=1e-5
    )


def test_each_regularization_decays_by_the_gradient_of_the_penalty_it_reports():
    """One table (``optimizers.REGULARIZATIONS``) gives the reported cost's term and the
    weight decay; the decay is the term's gradient (away from w = 0, where sgn is 0)."""
    w = jax.numpy.array([[0.5, -2.0], [3.0, -0.25]])
    for entry in optimizers.REGULARIZATIONS.values():
        np.testing.assert_allclose(jax.grad(entry.penalty)(w), entry.gradient(w))
    with pytest.raises(ValueError, match="regularization must be one of l2, l1, got 'L1'"):
        network.model(regularization="L1")  # a typo once reported the L2 cost


def test_diverged_names_the_epoch_and_the_networks():
    jnp = jax.numpy
    ok = {"weights": [jnp.ones((3, 2, 3))], "biases": [jnp.zeros((3, 2))]}
    assert rules.finite_networks(ok).tolist() == [True, True, True]
    for bad in (jnp.inf, -jnp.inf, jnp.nan):
        broken = {"weights": [jnp.ones((3, 2, 3)).at[1, 1, 2].set(bad)], "biases": ok["biases"]}
        assert rules.finite_networks(broken).tolist() == [True, False, True]
    assert str(rules.Diverged(7)).startswith("training diverged in epoch 7: the network's")
    assert str(rules.Diverged(7, [2], 5)).startswith("training diverged in epoch 7: network 2's")
    assert "2 networks' (the first: 1)" in str(rules.Diverged(0, [1, 3], 5))

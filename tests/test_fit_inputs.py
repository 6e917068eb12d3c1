"""nnjax.fit.fit refuses, in one error naming what is wrong, the inputs that would otherwise
train to chance without a word (one-hot labels, x and y of different lengths, an η never set)
or fail deep inside JAX (no key, no optimizer state, an empty mini-batch)."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nnjax import activations, costs, epoch, network, optimizers
from nnjax.fit import fit
from nnjax.history import History


def problem(n=40):
    x = jax.random.normal(jax.random.key(0), (n, 5))
    y = (x[:, 0] > 0).astype(jnp.int32)
    params = network.init(jax.random.key(1), [5, 4, 2])
    return x, y, params


def train(run=None, data=None, model=None, **kw):
    x, y, params = problem()
    tx = optimizers.make("sgd")
    run = run or History(params, optimizers.init(tx, params, eta=1.0))
    args = dict(epochs=1, mini_batch_size=10, key=jax.random.key(2), eval_data=(x, y))
    return fit(model or network.model(), tx, run, data or (x, y), **{**args, **kw})


def test_good_inputs_train():
    run = train()
    assert len(run.epochs) == 1 and run.epochs[0].total == 40


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda x, y: dict(data=(x, y[:20])), r"x \(40, 5\) and y \(20,\) hold different"),
        (lambda x, y: dict(eval_data=(x[:10], y)), "eval_data's x"),
        (lambda x, y: dict(test_data=(x, y[:30])), "test_data's x"),
        (lambda x, y: dict(data=(x[:0], y[:0])), "train_data holds no examples"),
        (lambda x, y: dict(eval_data=x), r"eval_data must be a pair \(x, y\)"),
        (lambda x, y: dict(data=(x.tolist(), y.tolist())), "must be arrays"),
        (lambda x, y: dict(mini_batch_size=0), "mini_batch_size must be a positive integer"),
        (lambda x, y: dict(mini_batch_size=2.5), "mini_batch_size must be a positive integer"),
        (lambda x, y: dict(mini_batch_size=41, drop_last=True), "leaves no mini-batch of the 40"),
        (lambda x, y: dict(epochs=-1), "epochs must be a whole number"),
        (lambda x, y: dict(key=None), "fit needs a PRNG key"),
        (lambda x, y: dict(key=1), "key must be a PRNG key, jax.random.key\\(seed\\); got int"),
        (lambda x, y: dict(key=jax.random.split(jax.random.key(0))), r"got key<fry> \(2,\)"),
        (lambda x, y: dict(key=np.zeros(2, np.float32)), r"got float32 \(2,\)"),
        (lambda x, y: dict(keep_best=True, eval_data=None), "keep_best need evaluation data"),
        (lambda x, y: dict(metrics=lambda p: {"speed": 1.0}), "'speed', which is no EpochResult"),
        # labels the network has no output for would train towards all-zero desired outputs
        (
            lambda x, y: dict(data=(x, y + 1)),
            "train_data's labels run from 1 to 2, but the "
            r"network has 2 outputs \(classes 0 to 1\)",
        ),
        (lambda x, y: dict(eval_data=(x, y - 1)), "eval_data's labels run from -1 to 0"),
        # (N, 1) labels would broadcast against (N,) predictions into N² comparisons
        (lambda x, y: dict(eval_data=(x, y[:, None])), r"eval_data's y is int32 \(40, 1\)"),
        (
            lambda x, y: dict(data=(x.astype(jnp.int32), y)),
            "train_data's x is int32: the networks take floating-point inputs",
        ),
        (lambda x, y: dict(data=(x.at[3, 2].set(jnp.nan), y)), "train_data's x holds NaN or inf"),
        (lambda x, y: dict(test_data=(x.at[0, 0].set(jnp.inf), y)), "test_data's x holds NaN"),
        (
            lambda x, y: dict(data=(x[:, :4], y)),
            r"train_data's x \(40, 4\) does not fit the "
            "network",
        ),
        (lambda x, y: dict(eval_data=(x.reshape(40, 5, 1), y)), r"eval_data's x \(40, 5, 1\)"),
        (lambda x, y: dict(keys=[jax.random.key(0)]), "key .* or keys .*, not both"),
        (lambda x, y: dict(early_stopping=-1), "early_stopping must be a whole number from 0"),
        (lambda x, y: dict(halve_eta_after=1.5), "halve_eta_after must be a whole number"),
        (lambda x, y: dict(shuffle="no"), "shuffle must be True or False, got 'no'"),
    ],
)
def test_bad_inputs_are_one_value_error(change, message):
    x, y, _ = problem()
    with pytest.raises(ValueError, match=message):
        train(**change(x, y))


def test_raw_and_typed_keys_train_alike():
    typed, raw = train(key=jax.random.key(2)), train(key=jax.random.PRNGKey(2))
    assert jax.tree.all(jax.tree.map(np.array_equal, typed.params, raw.params))


@pytest.mark.parametrize(
    "labels",
    [lambda y: costs.one_hot(y, 2), lambda y: costs.one_hot(y, 2).astype(jnp.int32)],
)
def test_one_hot_labels_are_refused(labels):
    """The book's networks take digit labels; one-hot vectors, float or integer, would
    broadcast into a wrong loss (training) or a wrong count (evaluation); without fit's check
    the loss still refuses them."""
    x, y, params = problem()
    for data in ("data", "eval_data", "test_data"):
        with pytest.raises(ValueError, match=f"{data}'s y .*not one-hot vectors"):
            train(**{data: (x, labels(y))})
    with pytest.raises(TypeError, match="pass the digit labels, not one-hot vectors"):
        network.model().loss(params, x, labels(y))


def test_a_run_without_optimizer_state_or_eta_is_refused():
    _, _, params = problem()
    with pytest.raises(ValueError, match="History has no optimizer state"):
        train(run=History(params))
    unset = History(params, optimizers.init(optimizers.make("sgd"), params))  # η = 0
    with pytest.raises(ValueError, match=r"network 0's η is 0.0: it must be positive \(optimizers"):
        train(run=unset)


def test_numpy_integers_and_a_short_last_batch_are_fine():
    run = train(mini_batch_size=np.int64(16), epochs=np.int32(2))
    assert len(run.epochs) == 2
    run = train(mini_batch_size=41)  # one short mini-batch of all 40
    assert len(run.epochs) == 1


def test_one_hot_refuses_labels_that_are_not_integers():
    with pytest.raises(TypeError, match="labels must be integers"):
        costs.one_hot(jnp.ones((3, 10)), 10)
    np.testing.assert_array_equal(costs.one_hot(jnp.array([1, 0]), 2), [[0, 1], [1, 0]])


def test_monitoring_a_model_without_a_cost_is_refused():
    """network3's models report no cost: monitor=True says so before training, instead of a
    TypeError after the first epoch."""
    _, _, params = problem()
    run = History(params, optimizers.init(optimizers.make("sgd"), params, eta=1.0))
    model = network.model()._replace(cost=None, name="a model of no cost")
    with pytest.raises(ValueError, match="monitor reports model.cost, which a model of no cost"):
        train(run, model=model, monitor=True)
    assert run.epochs == []


def test_a_model_or_optimizer_that_is_not_one_is_named():
    with pytest.raises(TypeError, match=r"model must be an epoch.Model, got function \(call it"):
        train(model=network.model)
    x, y, params = problem()
    run = History(params, optimizers.init(optimizers.make("sgd"), params, eta=1.0))
    with pytest.raises(TypeError, match="tx must be an optax transformation"):
        fit(
            network.model(), "sgd", run, (x, y), epochs=1, mini_batch_size=10, key=jax.random.key(0)
        )


@pytest.mark.parametrize(
    "state",
    [
        # another optimizer's state: Adam's moments would be read as plain SGD's nothing
        lambda params: optimizers.init(optimizers.make("adam"), params, eta=0.01),
        # another network's: momentum velocities of other shapes
        lambda params: optimizers.init(
            optimizers.make("sgd", momentum=0.5),
            network.init(jax.random.key(0), [5, 3, 2]),
            eta=0.01,
        ),
    ],
)
def test_an_optimizer_state_that_tx_did_not_make_is_refused(state):
    _, _, params = problem()
    tx = optimizers.make("sgd", momentum=0.5)
    run = History(params, state(params))
    x, y, _ = problem()
    with pytest.raises(ValueError, match="network 0's optimizer state is not the one tx makes"):
        fit(network.model(), tx, run, (x, y), epochs=1, mini_batch_size=10, key=jax.random.key(0))


def test_the_epoch_count_refuses_labels_that_are_not_one_per_example():
    x, y, params = problem()
    model = network.model()
    assert int(epoch.correct(params, x, y, model=model)) == int(
        jnp.sum(network.predict(params, x) == y)
    )
    with pytest.raises(ValueError, match=r"labels y \(40, 1\) must be one class per example"):
        epoch.correct(params, x, y[:, None], model=model)


def test_the_books_total_cost_of_one_example_divides_by_one():
    """N is the number of examples; one example x (n_in,) is one, not n_in."""
    x, y, params = problem()
    one = network.total_cost(params, x[0], y[0], lmbda=5.0)
    batch = network.total_cost(params, x[:1], y[:1], lmbda=5.0)
    np.testing.assert_allclose(one, batch, rtol=1e-6)


def test_keys_and_weight_decay_are_checked_where_they_are_given():
    with pytest.raises(
        ValueError, match="key must be a PRNG key, jax.random.key\\(seed\\); got int"
    ):
        network.init(0, [5, 4, 2])
    _, _, params = problem()
    tx = optimizers.make("sgd")
    for kw, words in (
        (dict(eta=1.0, weight_decay=-1.0), "weight_decay: λ/n must be from 0 and finite"),
        (dict(eta=-3.0), "learning_rate: η must be positive and finite in float32, got -3.0"),
        (dict(eta=float("nan")), "learning_rate: η must be positive"),
        (dict(eta=1e40), "η must be positive and finite in float32, got 1e+40"),  # inf there
        (dict(eta=1.0, weight_decay=1e40), "λ/n must be from 0 and finite in float32"),
    ):
        with pytest.raises(ValueError, match=re.escape(words)):
            optimizers.init(tx, params, **kw)


def test_the_networks_functions_take_names_and_refuse_labels_for_desired_outputs():
    x, y, params = problem()
    np.testing.assert_array_equal(
        network.predict(params, x, "tanh"), network.predict(params, x, activations.tanh)
    )
    by_name = network.loss(params, x, costs.one_hot(y, 2), "cross_entropy", "relu")
    assert by_name == network.loss(
        params, x, costs.one_hot(y, 2), costs.cross_entropy, activations.relu
    )
    # (2,) labels against (2, 2) outputs would broadcast into a plausible wrong cost
    with pytest.raises(ValueError, match=r"desired outputs y \(2,\) must be shaped like"):
        network.loss(params, x[:2], y[:2])


def test_a_model_without_classes_takes_any_inputs_and_labels_its_loss_takes():
    """Only a classifier (a model with ``classes``, as the book's are) has its x and labels
    checked as such: a model of its own may take integer x and labels that are no classes,
    though scored labels must still be shaped like its predictions."""
    x, y, params = problem()
    pixels = jnp.round(127 * (x + 1)).astype(jnp.uint8)  # 0-254: the model scales them

    def loss(p, xb, yb, key=None):
        return network.loss(p, xb / 255, costs.one_hot(yb % 2, 2))

    own = epoch.Model(loss=loss, predict=lambda p, xb: network.predict(p, xb / 255))
    labels = y + 2  # classes 2 and 3, the loss takes them modulo 2
    run = train(model=own, data=(pixels, labels), eval_data=(pixels, labels))
    assert len(run.epochs) == 1 and run.epochs[0].total == 40
    with pytest.raises(ValueError, match=r"eval_data's y \(40, 1\) is not shaped like"):
        train(model=own, data=(pixels, labels), eval_data=(pixels, labels[:, None]))
    with pytest.raises(ValueError, match="train_data's x is uint8"):
        train(data=(pixels, y))  # the book's network takes floats


def test_a_traced_weight_decay_is_set_not_checked():
    _, _, params = problem()
    tx = optimizers.make("sgd")
    states = jax.vmap(lambda wd: optimizers.init(tx, params, eta=0.1, weight_decay=wd))(
        jnp.array([0.1, 0.2])
    )
    np.testing.assert_allclose(optimizers.hyperparam(states, "weight_decay"), [0.1, 0.2])

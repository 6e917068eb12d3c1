"""Chapter 6's training through the one epoch and host loop: network3's update and L2
convention, its best-validation protocol, and ensembles trained by loop or vmap."""

import jax
import jax.numpy as jnp
import numpy as np

from nnjax import epoch as epoch_lib
from nnjax import layers, network3, optimizers
from nnjax.epoch import epoch
from nnjax.fit import fit
from nnjax.history import EpochResult, History

SHAPE = (8, 8, 1)


def tiny(seed=0, n=60, spec="conv:3:3x3,fc:8,softmax:4", **options):
    net = tuple(layers.parse(spec, **options))
    params = network3.init(jax.random.key(seed), net, SHAPE)
    x = jax.random.uniform(jax.random.key(seed + 100), (n, 64))
    y = jax.random.randint(jax.random.key(seed + 200), (n,), 0, 4)
    return net, params, x, y


def init_state(params, momentum=0.0):
    return optimizers.init(optimizers.make("sgd", momentum), params)


def sgd_epoch(
    params,
    opt_state,
    x,
    y,
    key,
    eta,
    lmbda,
    *,
    layers,
    input_shape,
    mini_batch_size,
    momentum=0.0,
    shuffle=True,
    random_shifts=False,
    unroll=1,
):
    """One chapter 6 epoch: network3's λ (per mini-batch, over the number of mini-batches)
    is the optimizer's weight decay λ / (n // m)."""
    tx = optimizers.make("sgd", momentum)
    steps = x.shape[0] // mini_batch_size
    opt_state = optimizers.set_hyperparams(opt_state, learning_rate=eta, weight_decay=lmbda / steps)
    return epoch(
        params,
        opt_state,
        x,
        y,
        key,
        model=network3.model(layers, input_shape, random_shifts),
        tx=tx,
        mini_batch_size=mini_batch_size,
        shuffle=shuffle,
        drop_last=True,
        unroll=unroll,
    )


def book_epoch(params, net, x, y, epoch_key, m, step):
    """An unshuffled epoch written out: ``step(params, grads)`` → params for each
    mini-batch of ``m`` in order, with the dropout key the epoch gives that step."""
    step_key = jax.random.split(epoch_key)[1]
    for i in range(len(y) // m):
        xb, yb = x[i * m : (i + 1) * m], y[i * m : (i + 1) * m]
        params = step(
            params,
            jax.grad(network3.loss)(params, net, xb, yb, SHAPE, jax.random.fold_in(step_key, i)),
        )
    return params


def test_epoch_is_network3s_sgd_with_l2_over_the_number_of_batches():
    """Without shuffling, an epoch is the mini-batches in order, each step
    w → w − η (∇C_mean + (λ / steps) w), biases undecayed."""
    net, params, x, y = tiny(n=30)
    eta, lmbda, m = 0.5, 0.3, 10
    out, _ = sgd_epoch(
        params,
        init_state(params),
        x,
        y,
        jax.random.key(7),
        eta,
        lmbda,
        layers=net,
        input_shape=SHAPE,
        mini_batch_size=m,
        shuffle=False,
    )
    expected = book_epoch(
        params,
        net,
        x,
        y,
        jax.random.key(7),
        m,
        lambda ps, g: [
            {"w": p["w"] - eta * (gp["w"] + lmbda / 3 * p["w"]), "b": p["b"] - eta * gp["b"]}
            for p, gp in zip(ps, g)
        ],
    )
    for got, want in zip(jax.tree.leaves(out), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_epoch_is_reproducible_and_the_key_matters():
    net, params, x, y = tiny(spec="fc:8,softmax:4", p_dropout=0.5)

    def run(key, **kw):
        return sgd_epoch(
            params,
            init_state(params),
            x,
            y,
            key,
            0.1,
            0.0,
            layers=net,
            input_shape=SHAPE,
            mini_batch_size=10,
            **kw,
        )[0]

    a, b, c = run(jax.random.key(1)), run(jax.random.key(1)), run(jax.random.key(2))
    assert all(np.array_equal(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert not np.allclose(a[0]["w"], c[0]["w"])
    shifted = run(jax.random.key(1), random_shifts=True)
    assert not np.allclose(a[0]["w"], shifted[0]["w"])


def test_unrolled_epoch_takes_the_same_steps():
    """unroll=4 over 7 mini-batches (one full unrolled block of 4, then 3): the same
    shuffle, dropout masks and updates as one step per loop iteration."""
    net, params, x, y = tiny(n=70, p_dropout=0.3)

    def run(unroll):
        return sgd_epoch(
            params,
            init_state(params),
            x,
            y,
            jax.random.key(3),
            0.1,
            0.2,
            layers=net,
            input_shape=SHAPE,
            mini_batch_size=10,
            unroll=unroll,
        )[0]

    one, four = run(1), run(4)
    assert not np.allclose(one[0]["w"], params[0]["w"])
    for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(four)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_momentum_epoch_is_the_books_rule_and_carries_velocity_into_the_next():
    """With momentum μ, each step is v → μv − η∇C, w → w + v, and the velocity an epoch
    returns is where the next epoch starts from."""
    net, params, x, y = tiny(n=30)
    eta, mu, m = 0.5, 0.9, 10
    state = init_state(params, mu)
    out = params
    velocity = jax.tree.map(jnp.zeros_like, params)

    def step(ps, g):
        nonlocal velocity
        velocity = jax.tree.map(lambda v, gp: mu * v - eta * gp, velocity, g)
        return jax.tree.map(lambda w, v: w + v, ps, velocity)

    expected = params
    for epoch_key in (jax.random.key(7), jax.random.key(8)):
        out, state = sgd_epoch(
            out,
            state,
            x,
            y,
            epoch_key,
            eta,
            0.0,
            layers=net,
            input_shape=SHAPE,
            mini_batch_size=m,
            momentum=mu,
            shuffle=False,
        )
        expected = book_epoch(expected, net, x, y, epoch_key, m, step)
        for got, want in zip(jax.tree.leaves(out), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        for got, want in zip(
            jax.tree.leaves(state.inner_state[1]), jax.tree.leaves(velocity), strict=True
        ):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert any(float(jnp.abs(v).max()) > 0 for v in jax.tree.leaves(velocity))


def test_the_last_best_validation_epoch_is_best():
    net = History(params="p0", best_rule="last")
    for e, correct in enumerate([90, 95, 93, 95]):
        net.epochs.append(EpochResult(e, correct, 100, 0.0, 0.1))
    assert net.best.epoch == 3  # network3's >=


def test_train_scores_test_data_only_when_validation_is_at_its_best():
    # Random labels and validation images not trained on: validation accuracy goes up
    # and down, so some epochs are not at their best.
    net, params, x, y = tiny(spec="fc:8,softmax:4", n=200)
    val, test = (x[100:150], y[100:150]), (x[150:], y[150:])
    tx = optimizers.make("sgd")
    networks = fit(
        network3.model(net, SHAPE),
        tx,
        [History(params, optimizers.init(tx, params, 1.0), best_rule="last")],
        (x[:100], y[:100]),
        eval_data=val,
        test_data=test,
        epochs=8,
        mini_batch_size=10,
        keys=[jax.random.key(0)],
        drop_last=True,
        keep_best=True,
    )
    epochs = networks[0].epochs
    best = -1
    for r in epochs:
        assert (r.test_correct is not None) == (r.correct >= best)
        best = max(best, r.correct)
    assert any(r.test_correct is None for r in epochs)
    model = network3.model(net, SHAPE)
    assert networks[0].best.test_correct == epoch_lib.correct(
        networks[0].best_params, *test, model=model
    )
    assert networks[0].best.correct == max(r.correct for r in epochs)
    assert networks[0].best.epoch == max(r.epoch for r in epochs if r.correct == best)


def test_vmap_and_loop_train_the_same_networks():
    net, _, x, y = tiny(spec="conv:2:3x3,fc:6,softmax:4", n=40, p_dropout=0.2)
    inits = [network3.init(jax.random.key(s), net, SHAPE) for s in (1, 2, 3)]
    keys = [jax.random.key(10 + s) for s in (1, 2, 3)]
    results = {}
    for strategy in ("loop", "vmap"):
        tx = optimizers.make("sgd")
        networks = [History(p, optimizers.init(tx, p, 0.5, 0.1 / 4)) for p in inits]
        fit(
            network3.model(net, SHAPE),
            tx,
            networks,
            (x, y),
            eval_data=(x, y),
            epochs=2,
            mini_batch_size=10,
            keys=keys,
            strategy=strategy,
            drop_last=True,
        )
        results[strategy] = networks
    for a, b in zip(results["loop"], results["vmap"]):
        for u, v in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
            np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)
        assert [r.correct for r in a.epochs] == [r.correct for r in b.epochs]
    # three different networks, not one trained three times
    assert not np.allclose(results["loop"][0].params[0]["w"], results["loop"][1].params[0]["w"])


def test_a_network_that_stops_early_keeps_its_parameters_beside_vmapped_others():
    """With early stopping, vmapped networks stop at their own epochs: a stopped network's
    parameters are those of its last epoch, as when trained alone by the loop."""
    net, _, x, y = tiny(spec="fc:6,softmax:4", n=60)
    inits = [network3.init(jax.random.key(s), net, SHAPE) for s in (1, 2, 3)]
    keys = [jax.random.key(20 + s) for s in (1, 2, 3)]
    results = {}
    for strategy in ("loop", "vmap"):
        tx = optimizers.make("sgd")
        networks = [History(p, optimizers.init(tx, p, 2.0)) for p in inits]
        fit(
            network3.model(net, SHAPE),
            tx,
            networks,
            (x[:40], y[:40]),
            eval_data=(x[40:], y[40:]),
            epochs=12,
            mini_batch_size=10,
            keys=keys,
            strategy=strategy,
            drop_last=True,
            early_stopping=2,
        )
        results[strategy] = networks
    lengths = [len(n.epochs) for n in results["vmap"]]
    assert lengths == [len(n.epochs) for n in results["loop"]] and min(lengths) < 12
    for a, b in zip(results["loop"], results["vmap"]):
        assert a.stopped == b.stopped
        for u, v in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
            np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)

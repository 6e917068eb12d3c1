"""Extending nnjax from outside the package, with no edit to nnjax/: a new cost, a new
layer whose parameters are not {"w", "b"}, and an optax optimizer, each trained through the
public API (``nnjax.fit.fit``) on a small problem a network can learn."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nnjax import layers, network, network3, optimizers, saving
from nnjax.checkpoint import CheckpointError
from nnjax.epoch import Model
from nnjax.fit import fit
from nnjax.history import History


def separable(n=400, seed=0):
    """Two classes of 8-pixel inputs, told apart by the sign of a fixed direction."""
    x = jax.random.normal(jax.random.key(seed), (n, 8))
    y = (x @ jnp.arange(1.0, 9.0) > 0).astype(jnp.int32)
    return x, y


def gated(n_out: int) -> layers.Layer:
    """A fully connected layer with a per-unit gain: params {"w", "gain"}, no bias."""

    def init(key, in_shape):
        n_in = int(np.prod(in_shape))
        w = jax.random.normal(key, (n_in, n_out)) / np.sqrt(n_in)
        return {"w": w, "gain": jnp.ones(n_out)}, (n_out,)

    def apply(params, x, key=None, training=False):
        return jnp.tanh(x.reshape(x.shape[0], -1) @ params["w"] * params["gain"])

    return layers.Layer(f"gated {n_out}", init, apply)


def test_a_new_layer_trains_and_weight_decay_masks_by_name():
    x, y = separable()
    net = (gated(6), layers.softmax(2))
    params = network3.init(jax.random.key(1), net, (8,))
    assert optimizers.weight_mask(params) == [{"w": True, "gain": False}, {"w": True, "b": False}]
    tx = optimizers.make("sgd")
    run = History(params, optimizers.init(tx, params, eta=0.5, weight_decay=1e-3))
    fit(
        network3.model(net, (8,)),
        tx,
        run,
        (x, y),
        epochs=5,
        mini_batch_size=10,
        key=jax.random.key(2),
        eval_data=(x, y),
    )
    assert run.best.accuracy > 0.9, run.accuracies()
    assert not np.allclose(run.params[0]["gain"], 1.0)  # the gain trained too


def test_a_new_cost_trains_through_fit():
    """A margin (hinge) cost on chapter 1's network: the model is two pure functions."""
    x, y = separable(seed=3)

    def hinge(params, xb, yb, key=None):
        z = network.logits(params, xb)
        margin = (2 * yb - 1) * (z[:, 1] - z[:, 0])
        return jnp.mean(jnp.maximum(0.0, 1.0 - margin))

    model = Model(loss=hinge, predict=lambda params, xb: network.predict(params, xb))
    params = network.init(jax.random.key(4), [8, 5, 2], init="scaled")
    tx = optimizers.make("sgd")
    run = fit(
        model,
        tx,
        History(params, optimizers.init(tx, params, eta=0.3)),
        (x, y),
        epochs=5,
        mini_batch_size=10,
        key=jax.random.key(5),
        eval_data=(x, y),
    )
    assert run.best.accuracy > 0.9, run.accuracies()


def test_any_optax_optimizer_trains_and_resumes_exactly():
    """optax.adam as it is (no nnjax hyperparameters): it trains, each epoch reports no η,
    and two epochs then one more from the saved History equal three at once."""
    x, y = separable(seed=6)
    params = network.init(jax.random.key(7), [8, 5, 2], init="scaled")
    tx = optax.adam(1e-2)
    model = network.model()

    def trained(epochs, run):
        return fit(
            model,
            tx,
            run,
            (x, y),
            epochs=epochs,
            mini_batch_size=10,
            key=jax.random.key(8),
            eval_data=(x, y),
        )

    whole = trained(3, History(params, optimizers.init(tx, params)))  # tx.init's state
    with pytest.raises(ValueError, match="no hyperparameter 'learning_rate': only those of"):
        optimizers.init(tx, params, eta=0.1)  # η is optax.adam's own argument
    assert whole.best.accuracy > 0.9 and whole.epochs[0].eta is None
    part = trained(2, History(params, tx.init(params)))
    part = trained(3, History(part.params, part.opt_state, part.epochs))
    for a, b in zip(
        jax.tree.leaves((whole.params, whole.opt_state)),
        jax.tree.leaves((part.params, part.opt_state)),
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


RUNNER = """
import runpy, sys
import jax, jax.numpy as jnp, numpy as np, optax
from nnjax import activations, costs, layers, optimizers

def brier(z, a, y):  # a cost: the Brier score of softmax outputs, sum_j (a_j - y_j)^2
    return jnp.mean(jnp.sum((a - y) ** 2, axis=-1))

def gated(args, spec, **options):  # a layer kind for --layers: gated:SIZE
    n_out = int(args[0])
    def init(key, in_shape):
        n_in = int(np.prod(in_shape))
        return {"w": jax.random.normal(key, (n_in, n_out)) / np.sqrt(n_in),
                "gain": jnp.ones(n_out)}, (n_out,)
    def apply(params, x, key=None, training=False):
        return jnp.tanh(x.reshape(x.shape[0], -1) @ params["w"] * params["gain"])
    return layers.Layer(f"gated {n_out}", init, apply)

costs.COSTS["brier"] = costs.Cost("brier", brier, None, activations.softmax)
activations.HIDDEN["softplus"] = activations.Activation("softplus", jax.nn.softplus, jax.nn.sigmoid)
layers.KINDS["gated"] = gated
optimizers.STEPS["rmsprop"] = optimizers.Step(lambda lr, mu: optax.rmsprop(lr), "optax.rmsprop")
module = sys.argv.pop(1)
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def run_extended(module, *flags):
    import pathlib
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", RUNNER, module, *flags],
        cwd=pathlib.Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_registered_cost_activation_and_optimizer_train_through_the_mnist_runner(tmp_path):
    """Registered from outside (one entry each in costs.COSTS, activations.HIDDEN and
    optimizers.STEPS), a cost, an activation and an optimizer become --cost, --activation
    and --optimizer choices of experiments.mnist. The saved network names its cost, which a
    process that has not registered it cannot load."""
    out = run_extended(
        "experiments.mnist",
        f"--save={tmp_path / 'net.json'}",
        "--cost=brier",
        "--activation=softplus",
        "--optimizer=rmsprop",
        "--eta=0.003",
        "--init=scaled",
        "--epochs=2",
        "--train_size=5000",
    )
    assert out.returncode == 0, out.stderr
    assert "brier cost" in out.stdout and "rmsprop η=0.003" in out.stdout, out.stdout
    assert "softplus" in out.stdout, out.stdout
    best = float(out.stdout.split("Best: epoch ")[1].split("(")[1].split("%")[0])
    assert best > 80, out.stdout
    with pytest.raises(CheckpointError, match="unknown cost 'brier'.*must be registered here"):
        saving.load(tmp_path / "net.json")


def test_a_registered_layer_and_activation_train_through_the_conv_runner(tmp_path):
    """A layer kind registered in layers.KINDS, with parameters {"w", "gain"}, is a --layers
    name of experiments.conv, trained with Adam; a registered activation is an --activation
    choice of its fully connected layers. A process that has not registered them cannot
    load the saved networks, and says why."""
    out = run_extended(
        "experiments.conv",
        f"--save={tmp_path / 'nets.npz'}",
        "--layers=gated:30,fc:20,softmax",
        "--activation=softplus",
        "--optimizer=adam",
        "--eta=0.003",
        "--epochs=2",
        "--train_size=2000",
        "--l2=1",
    )
    assert out.returncode == 0, out.stderr
    assert "gated 30 → fully connected 20, softplus → softmax 10; adam" in out.stdout, out.stdout
    final = float(out.stdout.split("Final test accuracy ")[1].split("%")[0])
    assert final > 80, out.stdout
    with pytest.raises(
        CheckpointError, match="unknown activation 'softplus'.*must be registered here"
    ):
        saving.load_networks(tmp_path / "nets.npz")


def test_a_step_registered_again_under_its_name_is_the_new_one():
    """optimizers.make caches on the entry, not the name: replacing an entry of STEPS takes
    effect at once."""
    tx = optimizers.make("sgd")
    saved = optimizers.STEPS["sgd"]
    try:
        optimizers.STEPS["sgd"] = optimizers.Step(lambda lr, mu: optax.adam(lr), "adam here")
        assert optimizers.make("sgd") is not tx
    finally:
        optimizers.STEPS["sgd"] = saved
    assert optimizers.make("sgd") is tx


def test_a_layer_parser_that_raises_value_error_is_a_layer_error():
    """A kind registered from outside that rejects its arguments with a plain ValueError (an
    int() of a bad size) is reported as a LayerError naming the spec, as the runners expect."""

    def sized(args, spec, **options):
        return layers.Layer(spec, None, None) if int(args[0]) else None

    layers.KINDS["sized"] = layers.KINDS["softmax2"] = sized
    try:
        with pytest.raises(layers.LayerError, match="'sized:x'"):
            layers.parse("sized:x,softmax")
        with pytest.raises(layers.LayerError, match="'sized'"):  # its args[0]: an IndexError
            layers.parse("sized,softmax")
        with pytest.raises(layers.LayerError, match="only the last, must be softmax"):
            layers.parse("fc:10,softmax2:3")  # another kind, whatever its name starts with
    finally:
        del layers.KINDS["sized"], layers.KINDS["softmax2"]


def test_a_registered_step_takes_no_momentum_unless_it_says_so():
    """A --momentum given to a step that would ignore it is refused, not silently dropped."""
    optimizers.STEPS["plain"] = optimizers.Step(lambda lr, mu: optax.rmsprop(lr), "rmsprop")
    try:
        with pytest.raises(ValueError, match="takes no momentum"):
            optimizers.make("plain", momentum=0.9)
        assert optimizers.make("plain") is not None
    finally:
        del optimizers.STEPS["plain"]


def test_network3_model_takes_the_list_that_parse_returns():
    net = layers.parse("fc:6,softmax:2")
    x, y = separable(n=40)
    params = network3.init(jax.random.key(0), net, (8,))
    model = network3.model(net, [8])
    assert model is network3.model(tuple(net), (8,))
    assert np.isfinite(float(model.loss(params, x, y, jax.random.key(1))))


def test_costs_and_activations_are_given_as_objects_or_names():
    """network.model and the layers take a Cost / Activation or its name alike; the wrong
    kind (an activation where the cost goes) is one TypeError naming what was given."""
    from nnjax import activations, costs

    assert network.model("cross_entropy", "relu") is network.model(
        costs.cross_entropy, activations.relu
    )
    assert (
        layers.fully_connected(5, activations.tanh).name == layers.fully_connected(5, "tanh").name
    )
    assert [layer.name for layer in layers.parse("fc:5,softmax", activation=activations.tanh)] == [
        layer.name for layer in layers.parse("fc:5,softmax", activation="tanh")
    ]
    with pytest.raises(layers.LayerError, match="an activation is an Activation or its name"):
        layers.parse("fc:5,softmax", activation=costs.quadratic)
    with pytest.raises(TypeError, match="a cost is a Cost or its name, got Activation"):
        network.model(activations.relu)
    with pytest.raises(ValueError, match="unknown activation 'softsign'"):
        network.model(costs.quadratic, "softsign")


def test_the_script_in_library_md_registers_a_cost_for_the_mnist_runner(tmp_path):
    """docs/library.md's script, as written: its cost is a --cost choice, --help lists the
    runner's flags, and training with it learns."""
    import pathlib
    import re
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    blocks = re.findall(r"```python\n(.*?)```", (root / "docs/library.md").read_text(), re.S)
    script = next(b for b in blocks if "python my_mnist.py" in b)
    (tmp_path / "my_mnist.py").write_text(script)

    def run(*flags):
        command = [sys.executable, str(tmp_path / "my_mnist.py"), *flags]
        env = {**os.environ, "PYTHONPATH": str(root)}
        return subprocess.run(
            command, cwd=root, env=env, capture_output=True, text=True, timeout=300
        )

    assert "--mini_batch_size" in run("--help").stdout
    out = run("--cost=brier", "--eta=0.5", "--epochs=2", "--train_size=5000")
    assert out.returncode == 0 and "brier cost" in out.stdout, out.stderr
    assert float(out.stdout.split("Final: ")[1].split("(")[1].split("%")[0]) > 60, out.stdout

r"""nnjax's epoch side by side with the way a Flax user trains the same network.

    python -m benchmarks.flax_speed                           # one network, then K networks
    python -m benchmarks.flax_speed --k=1,64,1024 --flax_steps=200

Every variant trains chapter 1's [784, 30, 10] sigmoid network (quadratic cost, N(0, 1)
initial weights and biases, plain SGD, η = 3.0, mini-batches of 10) on the book's training
images, one or K networks at a time, each network with its own seed and shuffle:

* ``nnjax``: ``nnjax.epoch.epoch``, one compiled program per epoch (a ``lax.scan`` over the
  mini-batches, the data on the device); K networks vmapped in that program, by the plain
  step (``jax``) and by the blocked one (``blocked(B)``, ``--block``);
* ``flax``: what Flax's MNIST example does: a ``flax.linen`` Module, ``optax.sgd`` in a
  ``TrainState``, and an epoch that draws a permutation and, for each mini-batch, gathers
  the images from host NumPy arrays and calls one jitted ``train_step`` from Python; for K
  networks the same loop with ``train_step`` vmapped over K stacked states;
* ``flax, data on device``: the same, with the data on the device and gathered inside the
  jitted step (only the indices cross from the host).

Flax's loops are timed over ``--flax_steps`` mini-batches after a warm-up and scaled to the
epoch (a K = 4,096 epoch of host gathers would take hours); nnjax's over whole epochs.
Prints seconds per epoch and network-epochs per second, best of ``--repeats``, and each
variant's test accuracy after its first epoch of one network (they train the same network,
so they agree to seed noise). Flax is not a dependency of nnjax: where it is not installed
its rows are left out, with a note.
"""

import numpy as np
from absl import app, flags

from benchmarks.networks import ETA, SIZES, M, strategy_epochs
from benchmarks.timing import rounds
from experiments.cli import DATA_DIR_HELP, parse_flags, run_guarded
from experiments.flag_lists import parse_positive_ints

FLAGS = flags.FLAGS
flags.DEFINE_list("k", None, "Numbers of networks (default: 1,4,16 on the CPU; 1,64,1024,4096).")
flags.DEFINE_integer("flax_steps", 500, "Mini-batches timed per Flax measurement.", lower_bound=1)
flags.DEFINE_integer("repeats", 2, "Timed runs per variant; the best is reported.", lower_bound=1)
flags.DEFINE_integer(
    "train_size", 50000, "Training images per epoch.", lower_bound=10, upper_bound=50000
)
flags.DEFINE_integer(
    "block", 8, "Mini-batches per block of nnjax's blocked epoch.", lower_bound=1, upper_bound=64
)
flags.DEFINE_string("data_dir", None, DATA_DIR_HELP)


def flax_trainer(k, x_host, y_host, on_device):
    """Flax's way, for K networks (K = 1: unbatched): returns ``(steps(n, seed), params)``,
    where ``steps`` runs n mini-batches of one epoch drawn with ``seed`` and ``params()``
    gives the first network's trained weights as nnjax's pytree."""
    import jax
    import jax.numpy as jnp
    import optax
    from flax import linen as nn
    from flax.training import train_state

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            normal = nn.initializers.normal(1.0)
            for width in SIZES[1:-1]:
                x = nn.sigmoid(nn.Dense(width, kernel_init=normal, bias_init=normal)(x))
            return nn.Dense(SIZES[-1], kernel_init=normal, bias_init=normal)(x)

    model, tx = MLP(), optax.sgd(ETA)

    def create(seed):
        params = model.init(jax.random.key(seed), jnp.zeros((1, SIZES[0])))["params"]
        return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)

    def loss_fn(params, images, labels):
        a = nn.sigmoid(model.apply({"params": params}, images))
        return 0.5 * jnp.mean(jnp.sum((a - jax.nn.one_hot(labels, SIZES[-1])) ** 2, axis=-1))

    def step(state, images, labels):
        return state.apply_gradients(grads=jax.grad(loss_fn)(state.params, images, labels))

    x_dev, y_dev = jax.device_put(x_host), jax.device_put(y_host)

    def step_on_device(state, idx):
        return step(state, x_dev[idx], y_dev[idx])

    one = step_on_device if on_device else step
    train_step = jax.jit(one if k == 1 else jax.vmap(one))
    state = [create(0) if k == 1 else jax.vmap(create)(jnp.arange(k))]
    n = x_host.shape[0]

    def steps(count, seed):
        rng = np.random.default_rng(seed)
        perms = np.stack([rng.permutation(n)[: count * M].reshape(count, M) for _ in range(k)], 1)
        for idx in perms:  # (K, m) indices: one mini-batch of every network
            idx = idx[0] if k == 1 else idx
            args = (idx,) if on_device else (x_host[idx], y_host[idx])
            state[0] = train_step(state[0], *args)
        jax.block_until_ready(state[0])

    def params():
        p = state[0].params if k == 1 else jax.tree.map(lambda a: a[0], state[0].params)
        dense = [p[f"Dense_{i}"] for i in range(len(SIZES) - 1)]
        return {"weights": [d["kernel"].T for d in dense], "biases": [d["bias"] for d in dense]}

    return steps, params


def time_best(run, repeats):
    """The least of ``repeats`` timings of ``run(i)``, in seconds."""
    return min(rounds(lambda i, _: run(i), repeats)[0])


def main(argv):
    run_guarded(run, argv)


def run():
    ks = parse_positive_ints("k", FLAGS.k) if FLAGS.k is not None else None
    import jax

    from nnjax import data, network

    try:
        import flax

        flax_version = flax.__version__
    except ImportError:
        flax_version = None
    ks = ks or ([1, 4, 16] if jax.default_backend() == "cpu" else [1, 64, 1024, 4096])
    dataset = data.load("mnist", FLAGS.data_dir, progress=print)
    x_host = np.asarray(dataset.train.x[: FLAGS.train_size])
    y_host = np.asarray(dataset.train.y[: FLAGS.train_size])
    x, y = jax.device_put(x_host), jax.device_put(y_host)
    test_x, test_y = dataset.test.x, dataset.test.y
    steps = -(-FLAGS.train_size // M)
    flax_steps = min(FLAGS.flax_steps, FLAGS.train_size // M)
    print(
        f"backend {jax.default_backend()}: {jax.devices()[0].device_kind}; {list(SIZES)}, "
        f"mini-batch {M}, η = {ETA}, {FLAGS.train_size} images ({steps} steps an epoch); "
        + (
            f"Flax {flax_version}, timed over {flax_steps} steps and scaled to the epoch"
            if flax_version
            else "Flax not installed: its rows are left out"
        ),
        flush=True,
    )
    print(f"{'K':>6s} {'variant':32s} {'s per epoch':>12s} {'network-epochs/s':>17s} {'test':>7s}")

    def row(k, name, seconds, params=None):
        accuracy = ""
        if params is not None:
            correct = int(network.evaluate(params, test_x, test_y))
            accuracy = f"{100 * correct / len(test_y):6.2f}%"
        print(f"{k:6d} {name:32s} {seconds:12.3f} {k / seconds:17.1f} {accuracy:>7s}", flush=True)

    for k in ks:
        variants = [("loop", None)] if k == 1 else [("vmap", None), ("vmap", FLAGS.block)]
        for strategy, block in variants:
            one_epoch, _, first = strategy_epochs(strategy, k, x, y, block=block)
            one_epoch(0)  # the first epoch (to score it); compile was excluded
            params = first() if k == 1 else None
            name = "nnjax" + ("" if block is None else f", blocked({block})")
            row(k, name, time_best(lambda e, f=one_epoch: f(e + 1), FLAGS.repeats), params)
        if not flax_version:
            continue
        for on_device in (False, True):
            train, params = flax_trainer(k, x_host, y_host, on_device)
            if k == 1:
                train(steps, 0)  # one whole epoch, to score it (and to compile)
                trained = params()
            else:
                train(2, 0)  # compile
                trained = None
            seconds = time_best(lambda e, f=train: f(flax_steps, e + 1), FLAGS.repeats)
            name = "flax" + (", data on device" if on_device else " (its MNIST example's loop)")
            row(k, name, seconds * steps / flax_steps, trained)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
